//! WhiteBIT's authorization callback parser (`PendingAuthorization::verify_callback`): any text,
//! as given and with the genuine `state` appended (to get past the state check).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokensmith_core::{Error, error::CallbackError};
use tokensmith_whitebit::WhitebitProvider;

fn provider() -> Option<&'static WhitebitProvider> {
    static PROVIDER: OnceLock<Option<WhitebitProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| WhitebitProvider::builder().client_id("fuzz-client").client_secret("fuzz-secret").build().ok())
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(provider) = provider() else { return };
    let text = String::from_utf8_lossy(data);
    for with_state in [false, true] {
        let pending = provider.authorize();
        let input = if with_state { format!("{text}&state={}", pending.state()) } else { text.to_string() };
        match pending.verify_callback(&input) {
            Ok(code) => {
                // Accepted only with the genuine state, and only once.
                assert!(input.contains(pending.state()));
                let _ = format!("{code:?}");
                assert!(matches!(pending.verify_callback(&input), Err(Error::Callback(CallbackError::AlreadyUsed))));
            }
            Err(Error::Callback(e)) => {
                let _ = e.to_string();
            }
            Err(other) => panic!("a callback failure that is not a callback error: {other:?}"),
        }
    }
});
