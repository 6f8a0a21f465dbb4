//! Configuration: a TOML document or an environment map from the input, loaded, checked and built
//! into a provider. No input may panic, and a loaded configuration's durations fit a clock.
//!
//! Input layout: 1 byte choosing the form (even: the rest is a TOML document; odd: the rest is an
//! environment, one `NAME=value` per line), then the text (lossy UTF-8). The same property runs on
//! stable as `tests/tests/config_props.rs`.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tokensmith::config::Config;

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let env: HashMap<String, String> = if form % 2 == 1 {
        text.lines()
            .filter_map(|line| line.split_once('='))
            // Never read a configuration file named by the input.
            .filter(|(name, _)| *name != "TOKENSMITH_CONFIG")
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    } else {
        HashMap::new()
    };
    let lookup = |name: &str| env.get(name).cloned();
    let loaded = if form % 2 == 1 { Config::load_with(lookup) } else { Config::from_toml_str(&text) };
    let mut config = match loaded {
        Ok(config) => config,
        Err(error) => {
            let _ = format!("{error} {error:?}");
            return;
        }
    };
    let _ = format!("{config:?}");
    if let Ok(policy) = config.retry_policy() {
        assert!(policy.timeout_per_attempt() <= Duration::from_secs(3600));
        assert!(Instant::now().checked_add(policy.overall_deadline()).is_some());
    }
    if let Ok(Some(lifetime)) = config.fallback_lifetime() {
        assert!(lifetime <= Duration::from_secs(30 * 24 * 3600));
    }
    if config.resolve_secrets_with(&lookup).is_err() {
        return;
    }
    match tokensmith::from_config(&config) {
        Ok(provider) => drop(format!("{provider:?}")),
        Err(error) => drop(format!("{error} {error:?}")),
    }
});
