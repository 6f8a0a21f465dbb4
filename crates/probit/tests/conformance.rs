//! The core's conformance suite, run against the ProBit provider.

use tokensmith_core::testing::Conformance;
use tokensmith_probit::ProbitProvider;

#[tokio::test]
async fn probit_provider_conforms() {
    Conformance::new(|h| {
        ProbitProvider::builder()
            .client_id(h.client_id)
            .client_secret(h.client_secret)
            .token_url(format!("{}/token", h.base_url))
            .transport(h.transport)
            .clock(h.clock)
            .build()
    })
    .run()
    .await;
}
