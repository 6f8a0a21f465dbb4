//! Nothing a user or a store can hand tokensmith makes it panic (issue 15 item 3): `proptest`
//! properties over configuration (TOML documents and environment maps with arbitrary strings and
//! numbers for every key), stored file-store records (arbitrary JSON, huge numbers included) and
//! `Retry-After` headers. The configuration property is also a `cargo fuzz` target
//! (`fuzz/fuzz_targets/config.rs`).
//!
//! Building providers costs a few milliseconds each, so the configuration properties run 1,000 cases
//! by default and the others 5,000; `TOKENSMITH_FUZZ_CASES` sets both (docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tokensmith::config::{Config, ENV_VARS, KEYS};
use tokensmith_core::parse::{ResponseFormat, parse_error, parse_response};
use tokensmith_core::{RetryPolicy, TokenStore as _, http::HttpResponse, store::FileStore, store::StoredToken};

/// A secret value placed only where secrets go (inline secrets, `*_ENV` names, `{ env = .. }`): it
/// must appear in no error and no `Debug` output. Not a valid variable name, so never named.
const MARKER: &str = "Sup3r-S3cret!marker";

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("TOKENSMITH_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, max_shrink_iters: 1_000, ..ProptestConfig::default() }
}

/// A TOML basic string holding `s` (JSON's escapes are TOML's; an odd character makes the document
/// invalid, which is one more input).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Words a configuration uses, so that generated documents often get past the first check.
const WORDS: &[&str] = &[
    "probit",
    "generic-django",
    "ruby-style",
    "whitebit",
    "custom",
    "memory",
    "file",
    "redis",
    "client_credentials",
    "refresh_token",
    "basic",
    "basic-raw",
    "body",
    "none",
    "form",
    "json",
    "/data",
    ",",
    "id",
    "token",
    "https://auth.example.com/token",
    "http://127.0.0.1:1/token",
    "http://auth.example.com",
    "redis://:pw@127.0.0.1:1/0",
    "redis+unix:///tmp/tokensmith-props.sock?pass=pw",
    "rediss://h:99999/0",
];

/// Numbers around every range edge, and the extremes.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "10",
    "3600",
    "3601",
    "2592000",
    "2592001",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999999",
    "-1",
    "-9223372036854775808",
    "1.5",
    "1e308",
    "inf",
    "nan",
];

/// A value as text: arbitrary, a known word, a number, or (`toml`) a TOML value of another type.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,24}",
        prop::sample::select(WORDS).prop_map(str::to_owned),
        prop::sample::select(NUMBERS).prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{1,40}",
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text_value().prop_map(|s| quote(&s)),
        2 => prop::sample::select(NUMBERS).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => text_value().prop_map(|s| format!("{{ env = {} }}", quote(&s))),
        1 => text_value().prop_map(|s| format!("{{ file = {} }}", quote(&s))),
        1 => (text_value(), text_value()).prop_map(|(k, v)| format!("{{ {} = {} }}", quote(&k), quote(&v))),
        1 => Just("[]".to_owned()),
    ]
}

/// A value for a secret key: sometimes the marker, inline or where a variable name goes.
fn toml_secret() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => toml_value(),
        1 => Just(quote(MARKER)),
        1 => Just(format!("{{ env = {} }}", quote(MARKER))),
        1 => Just(format!("{{ value = {} }}", quote(MARKER))),
        1 => Just("{ env = \"TOKENSMITH_PROPS_SET\" }".to_owned()),
    ]
}

const SECRET_KEYS: &[&str] = &["client_secret", "refresh_token"];

/// A TOML document: a valid custom provider with some keys replaced by arbitrary values, or added,
/// and sometimes a `[store]` table.
fn toml_document() -> impl Strategy<Value = String> {
    let plain: Vec<&str> = KEYS.iter().copied().filter(|k| *k != "store" && !SECRET_KEYS.contains(k)).collect();
    let overrides = prop::collection::btree_map(prop::sample::select(plain), toml_value(), 0..6);
    let secrets = prop::collection::btree_map(prop::sample::select(SECRET_KEYS), toml_secret(), 0..3);
    let store_key = prop::sample::select(&["kind", "path", "url", "prefix", "encryption_key", "mode"][..]);
    let store = prop::option::of(prop::collection::btree_map(store_key, toml_value(), 0..4));
    (overrides, secrets, store, any::<bool>()).prop_map(|(overrides, secrets, store, base)| {
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        if base {
            for (k, v) in [
                ("provider", "\"custom\""),
                ("client_id", "\"id\""),
                ("client_secret", "\"s\""),
                ("token_url", "\"https://auth.example.com/token\""),
            ] {
                keys.insert(k.to_owned(), v.to_owned());
            }
        }
        keys.extend(overrides.into_iter().map(|(k, v)| (k.to_owned(), v)));
        keys.extend(secrets.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let mut text: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        if let Some(store) = store {
            text.push_str("[store]\n");
            for (k, v) in store {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text
    })
}

/// An environment: a valid custom provider, some variables replaced by arbitrary text, and the
/// secret-bearing ones sometimes set to the marker.
fn environment() -> impl Strategy<Value = BTreeMap<String, String>> {
    let names: Vec<&str> = ENV_VARS.iter().map(|(name, _)| *name).collect();
    let overrides = prop::collection::btree_map(prop::sample::select(names), text_value(), 0..6);
    let secret_vars = prop::sample::select(
        &[
            "TOKENSMITH_CLIENT_SECRET",
            "TOKENSMITH_CLIENT_SECRET_ENV",
            "TOKENSMITH_REFRESH_TOKEN",
            "TOKENSMITH_REFRESH_TOKEN_ENV",
            "TOKENSMITH_STORE_ENCRYPTION_KEY",
            "TOKENSMITH_STORE_ENCRYPTION_KEY_ENV",
        ][..],
    );
    let marked = prop::collection::btree_set(secret_vars, 0..2);
    (overrides, marked, any::<bool>()).prop_map(|(overrides, marked, base)| {
        let mut env = BTreeMap::new();
        if base {
            for (k, v) in [
                ("TOKENSMITH_PROVIDER", "custom"),
                ("TOKENSMITH_CLIENT_ID", "id"),
                ("TOKENSMITH_CLIENT_SECRET_ENV", "TOKENSMITH_PROPS_SET"),
                ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/token"),
            ] {
                env.insert(k.to_owned(), v.to_owned());
            }
        }
        env.extend(overrides.into_iter().map(|(k, v)| (k.to_owned(), v)));
        env.extend(marked.into_iter().map(|k| (k.to_owned(), MARKER.to_owned())));
        // Never read a configuration file from generated text.
        env.remove("TOKENSMITH_CONFIG");
        env.insert("TOKENSMITH_PROPS_SET".to_owned(), "a-secret-from-the-env".to_owned());
        env
    })
}

fn no_marker(what: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.contains(MARKER), "{} shows the secret: {}", what, text);
    Ok(())
}

/// What every configuration that loads must satisfy: its durations fit a clock, building the
/// provider returns (a provider or a typed error), and nothing shown holds the secret.
fn check_config(mut config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), TestCaseError> {
    no_marker("Config's Debug", &format!("{config:?}"))?;
    if let Ok(policy) = config.retry_policy() {
        prop_assert!(policy.get_attempt_timeout() <= Duration::from_secs(3600));
        prop_assert!(Instant::now().checked_add(policy.get_deadline()).is_some());
    }
    if let Ok(Some(lifetime)) = config.fallback_lifetime() {
        prop_assert!(lifetime <= Duration::from_secs(30 * 24 * 3600));
        prop_assert!(SystemTime::now().checked_add(lifetime).is_some());
    }
    if let Some(store) = &config.store {
        let _ = format!("{store} {store:?}");
    }
    if let Err(e) = config.resolve_secrets_with(env) {
        return no_marker("a secret resolution error", &format!("{e} {e:?}"));
    }
    match tokensmith::from_config(&config) {
        Ok(provider) => no_marker("the provider's Debug", &format!("{provider:?}")),
        Err(e) => no_marker("a build error", &format!("{e} {e:?}")),
    }
}

proptest! {
    #![proptest_config(cases(1_000))]

    #[test]
    fn any_toml_document_loads_or_fails_cleanly(text in toml_document()) {
        let env = |name: &str| (name == "TOKENSMITH_PROPS_SET").then(|| "a-secret-from-the-env".to_owned());
        match Config::from_toml_str(&text) {
            Ok(config) => check_config(config, &env)?,
            Err(e) => no_marker("a TOML error", &format!("{e} {e:?}"))?,
        }
    }

    #[test]
    fn any_toml_text_loads_or_fails_cleanly(text in any::<String>()) {
        if let Ok(config) = Config::from_toml_str(&text) {
            let _ = format!("{config:?}");
            let _ = tokensmith::from_config(&config);
        }
    }

    #[test]
    fn any_environment_loads_or_fails_cleanly(env in environment()) {
        let lookup = |name: &str| env.get(name).cloned();
        match Config::load_with(lookup) {
            Ok(config) => check_config(config, &lookup)?,
            Err(e) => no_marker("an environment error", &format!("{e} {e:?}"))?,
        }
        if let Err(e) = tokensmith::from_env_with(lookup) {
            no_marker("from_env_with's error", &format!("{e} {e:?}"))?;
        }
    }
}

/// A JSON number or value for a numeric field of a stored record: huge, negative, fractional, or
/// of another type.
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![0u64, 1, u64::MAX, u64::MAX / 1000, 253_402_300_799, 253_402_300_800])
            .prop_map(Value::from),
        "[0-9]{20,40}".prop_map(|digits| serde_json::from_str(&digits).unwrap_or(Value::Null)),
        any::<String>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![json_number(), any::<bool>().prop_map(Value::from), "[ -~]{0,16}".prop_map(Value::from)]
}

fn json_any() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A stored record: the fields a file store writes, each often present and sometimes anything.
fn record() -> impl Strategy<Value = Value> {
    let field = |name: &'static str, value: BoxedStrategy<Value>| {
        prop::option::weighted(0.8, value).prop_map(move |v| v.map(|v| (name.to_owned(), v)))
    };
    (
        field("access_token", prop_oneof![3 => "[A-Za-z0-9]{1,30}".prop_map(Value::from), 1 => json_any()].boxed()),
        field("expires_at", json_number().boxed()),
        field("lifetime", json_number().boxed()),
        field("version", json_number().boxed()),
        field("scopes", prop_oneof![Just(json!(["read", "write"])), json_any()].boxed()),
        field("refresh_token", prop_oneof![Just(json!("rt")), json_any()].boxed()),
        field("extra", json_any().boxed()),
        field("sealed", "[ -~]{0,40}".prop_map(Value::from).boxed()),
    )
        .prop_map(|fields| {
            let (a, b, c, d, e, f, g, h) = fields;
            Value::Object([a, b, c, d, e, f, g, h].into_iter().flatten().collect())
        })
}

proptest! {
    #![proptest_config(cases(5_000))]

    /// A stored record, however corrupt (huge or negative expiries and lifetimes, wrong types), is
    /// read as a token or refused with an error: never a panic, in the store or in the token.
    #[test]
    fn any_stored_record_loads_or_fails_cleanly(record in record()) {
        if let Ok(stored) = serde_json::from_value::<StoredToken>(record.clone()) {
            let token = tokensmith_core::AccessToken::from(stored);
            let now = SystemTime::now();
            let _ = (format!("{token:?}"), token.expires_in(now), token.is_expired_at(now), token.lifetime());
            let _ = StoredToken::from(&token);
        }
        let path = std::env::temp_dir().join(format!("tokensmith-props-{}-records.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(&json!({ "key": record })).unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let loaded = runtime.block_on(FileStore::new(&path).load_versioned("key"));
        if let Ok(Some(versioned)) = loaded {
            let now = SystemTime::now();
            let _ = (format!("{:?}", versioned.token), versioned.token.expires_in(now));
        }
        let _ = std::fs::remove_file(&path);
    }

    /// Any `Retry-After` value (seconds of any length, HTTP dates of any year, anything) gives a
    /// wait of at most a day, and the backoff built on it never overflows.
    #[test]
    fn any_retry_after_header_is_capped(
        value in prop_oneof![
            any::<String>(),
            "[0-9]{1,40}",
            (0u32..100_000, 0u32..7).prop_map(|(year, day)| {
                let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                format!("{}, 06 Nov {year:04} 08:49:37 GMT", days[day as usize])
            }),
        ],
        status in prop::sample::select(vec![200u16, 400, 429, 500, 503]),
        attempt in any::<u32>(),
    ) {
        let response = HttpResponse::json(status, r#"{"error":"slow_down"}"#).with_header("retry-after", &value);
        let error = parse_error(&response, std::time::SystemTime::now());
        let wait = error.retry_after();
        if let Some(wait) = wait {
            prop_assert!(wait <= Duration::from_secs(86_400), "{:?}", wait);
        }
        let backoff = RetryPolicy::default().backoff(attempt, wait);
        prop_assert!(Instant::now().checked_add(backoff).is_some());
        let _ = parse_response(&response, &ResponseFormat::default(), SystemTime::now(), None);
    }
}
