//! The fuzz targets of `fuzz/` (`parse_response`, `whitebit_callback`) as `proptest` properties, so
//! that they run on the stable toolchain and in CI: 20,000 cases each by default (set
//! `TOKENSMITH_FUZZ_CASES` for more). `cargo fuzz` needs nightly; see docs/reliability.md.
//!
//! Each target has a raw property (arbitrary bytes or text, the same checks as the libFuzzer target)
//! and a structured one that builds inputs a random byte string rarely reaches (token responses and
//! error bodies with a known token in them; callbacks with the genuine state) and checks the result
//! against an oracle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tokensmith_core::parse::{ResponseFormat, parse_response};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{
    Error, RefreshToken,
    error::{CallbackError, OAuthErrorCode},
    http::HttpResponse,
};
use tokensmith_whitebit::WhitebitProvider;

const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

fn config() -> ProptestConfig {
    let cases = std::env::var("TOKENSMITH_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(20_000);
    ProptestConfig { cases, max_shrink_iters: 2_000, ..ProptestConfig::default() }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The checks every parse result must pass (the same as `fuzz/fuzz_targets/parse_response.rs`).
/// A token is never already expired: an `expires_in` below one second is refused like 0.
fn check_parse(status: u16, result: &Result<tokensmith_core::AccessToken, Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(token) => {
            prop_assert!((200..300).contains(&status), "a token from status {}", status);
            prop_assert!(token.lifetime() >= Duration::from_secs(1), "a token that is already expired");
            prop_assert!(token.lifetime() <= MAX_LIFETIME, "the lifetime cap was not applied");
        }
        Err(error) => {
            let _ = format!("{error} {error:?}");
            if !(200..300).contains(&status) {
                prop_assert_eq!(error.status(), Some(status), "{:?}", error);
            }
            if let Error::Http(e) = error {
                prop_assert!(e.excerpt.chars().count() <= 121);
            }
            // A retryable status stays retryable whatever the body says.
            if status == 429 || (500..600).contains(&status) {
                prop_assert!(error.is_retryable(), "{:?}", error);
            }
        }
    }
    Ok(())
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("text/html; charset=iso-8859-1".to_owned()),
        Just("text/plain".to_owned()),
        Just(String::new()),
        "[ -~]{0,40}",
    ]
}

/// A string of token characters long enough to be masked (at least 20), as real tokens are.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._~+/=-]{23,47}"
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => Just(200u16),
        1 => prop::sample::select(vec![201u16, 204, 400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 504]),
        1 => 100u16..600,
    ]
}

/// A JSON value that is sometimes the secret token itself.
fn value_or(secret: String) -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::String(secret.clone())),
        Just(Value::String(format!("echo: {secret} (rejected)"))),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,30}".prop_map(Value::String),
        Just(json!(["a", secret])),
        Just(json!({"nested": secret})),
    ]
}

/// A token response or error body: a random subset of the fields providers send, some of them
/// holding `secret`, sometimes in WhiteBIT's `data` envelope.
fn body_with(secret: String) -> impl Strategy<Value = (Value, bool)> {
    let fields = [
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "error",
        "error_description",
        "error_uri",
        "message",
        "detail",
        "errorCode",
        "errors",
    ];
    let field = (prop::sample::select(fields.to_vec()), value_or(secret.clone()));
    let expires = prop_oneof![
        (1i64..100_000).prop_map(Value::from),
        (-5i64..1).prop_map(Value::from),
        Just(json!(i64::MAX)),
        (1u32..100_000).prop_map(|n| Value::String(n.to_string())),
        Just(json!(1.5)),
    ];
    (prop::collection::vec(field, 0..8), any::<bool>(), any::<bool>(), expires, any::<bool>()).prop_map(
        move |(fields, with_token, envelope, expires, bearer)| {
            let mut obj = Map::new();
            if with_token {
                obj.insert("access_token".to_owned(), Value::String(secret.clone()));
                obj.insert("token_type".to_owned(), json!(if bearer { "Bearer" } else { "bearer" }));
                obj.insert("expires_in".to_owned(), expires);
            }
            for (name, value) in fields {
                obj.insert(name.to_owned(), value);
            }
            let body = if envelope { json!({ "data": Value::Object(obj) }) } else { Value::Object(obj) };
            (body, envelope)
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// Any status, content type and bytes: never a panic, and the invariants of `check_parse`.
    #[test]
    fn parse_response_raw(
        status in 100u16..600,
        content_type in content_type(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        envelope in any::<bool>(),
        previous in any::<bool>(),
    ) {
        let response = HttpResponse::new(status, &content_type, body);
        let format = if envelope { ResponseFormat::default().envelope("/data") } else { ResponseFormat::default() };
        let previous = previous.then(|| RefreshToken::new("previous-refresh-token"));
        let result = parse_response(&response, &format, now(), previous.as_ref());
        check_parse(status, &result)?;
    }

    /// Token responses and error bodies of every shape, carrying a token: the invariants hold, and the
    /// token never appears in the error's `Display` or `Debug`, whatever field it was put in.
    #[test]
    fn parse_response_structured_never_leaks(
        (secret, (body, envelope)) in token().prop_flat_map(|t| (Just(t.clone()), body_with(t))),
        status in status(),
        as_form in prop::bool::weighted(0.15),
        html in prop::bool::weighted(0.05),
        use_envelope in any::<bool>(),
    ) {
        let (content_type, bytes) = if html {
            ("text/html", format!("<html><body><h1>{status}</h1><p>{body}</p></body></html>").into_bytes())
        } else if as_form {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            let fields = if envelope { body["data"].clone() } else { body.clone() };
            for (k, v) in fields.as_object().into_iter().flatten() {
                form.append_pair(k, &v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            }
            ("application/x-www-form-urlencoded", form.finish().into_bytes())
        } else {
            ("application/json", body.to_string().into_bytes())
        };
        let response = HttpResponse::new(status, content_type, bytes);
        let format =
            if use_envelope { ResponseFormat::default().envelope("/data") } else { ResponseFormat::default() };
        let result = parse_response(&response, &format, now(), None);
        check_parse(status, &result)?;
        if let Err(error) = &result {
            let text = format!("{error} | {error:?}");
            prop_assert!(!text.contains(&secret), "the token leaked into the error: {}", text);
        }
        if let Ok(token) = &result {
            prop_assert!(!token.secret().expose_secret().is_empty());
        }
    }
}

// ------------------------------------------------------------------ the WhiteBIT callback

fn provider() -> &'static WhitebitProvider {
    static PROVIDER: std::sync::OnceLock<WhitebitProvider> = std::sync::OnceLock::new();
    PROVIDER.get_or_init(|| {
        WhitebitProvider::builder().client_id("fuzz-client").client_secret("fuzz-secret").build().unwrap()
    })
}

/// How the state parameter of a generated callback is set.
#[derive(Clone, Copy, Debug)]
enum State {
    Genuine,
    Wrong,
    Empty,
}

#[derive(Clone, Debug)]
enum Param {
    Named(&'static str, String),
    State(State),
}

fn param() -> impl Strategy<Value = Param> {
    let value = "[ -~]{0,24}";
    prop_oneof![
        3 => (prop::sample::select(vec!["code", "error", "error_description", "x", "Code", "redirect"]), value)
            .prop_map(|(n, v)| Param::Named(n, v)),
        2 => prop_oneof![Just(State::Genuine), Just(State::Wrong), Just(State::Empty)].prop_map(Param::State),
    ]
}

/// What `verify_callback` must answer for `params` (the parser's documented rules).
#[derive(Debug, PartialEq)]
enum Verdict {
    Code(String),
    Denied(OAuthErrorCode),
    StateMismatch,
    Malformed,
}

fn oracle(params: &[(String, String)], state: &str) -> Verdict {
    if params.is_empty() {
        return Verdict::Malformed;
    }
    for name in ["code", "state", "error", "error_description"] {
        if params.iter().filter(|(n, _)| n == name).count() > 1 {
            return Verdict::Malformed;
        }
    }
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    // The state is checked first, for `error=` callbacks too.
    if get("state") != Some(state) {
        return Verdict::StateMismatch;
    }
    let error = get("error").filter(|e| !e.is_empty());
    let code = get("code").filter(|c| !c.is_empty());
    match (error, code) {
        (Some(e), _) => Verdict::Denied(OAuthErrorCode::parse(e)),
        (None, Some(c)) => Verdict::Code(c.to_owned()),
        (None, None) => Verdict::Malformed,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text, as given and with the genuine state appended: never a panic, only callback errors,
    /// a code only with the genuine state, and only once.
    #[test]
    fn whitebit_callback_raw(text in "\\PC{0,300}", append_state in any::<bool>()) {
        let pending = provider().authorize();
        let input = if append_state { format!("{text}&state={}", pending.state()) } else { text };
        match pending.verify_callback(&input) {
            Ok(_) => {
                prop_assert!(input.contains(pending.state()));
                prop_assert!(matches!(pending.verify_callback(&input), Err(Error::Callback(CallbackError::AlreadyUsed))));
            }
            Err(Error::Callback(_)) => {}
            Err(other) => prop_assert!(false, "not a callback error: {:?}", other),
        }
    }

    /// Well-formed callbacks of every mix of parameters (values with `&`, `=`, `#`, `%`, `+` and
    /// spaces, form-encoded), behind every kind of prefix: the answer is exactly the oracle's.
    #[test]
    fn whitebit_callback_structured(
        params in prop::collection::vec(param(), 0..7),
        prefix in prop::sample::select(vec!["", "?", "http://127.0.0.1/callback?", "/callback?", "  https://app.example/cb?"]),
        // Any printable text, `?` included: the fragment is cut off before the query is looked for.
        fragment in prop::option::of("[ -~]{0,10}"),
    ) {
        let pending = provider().authorize();
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|p| match p {
                Param::Named(n, v) => ((*n).to_owned(), v.clone()),
                Param::State(State::Genuine) => ("state".to_owned(), pending.state().to_owned()),
                Param::State(State::Wrong) => ("state".to_owned(), format!("{}x", pending.state())),
                Param::State(State::Empty) => ("state".to_owned(), String::new()),
            })
            .collect();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (n, v) in &pairs {
            query.append_pair(n, v);
        }
        let mut input = format!("{prefix}{}", query.finish());
        if let Some(f) = fragment {
            input.push('#');
            input.push_str(&f);
        }
        let want = oracle(&pairs, pending.state());
        let got = match pending.verify_callback(&input) {
            Ok(code) => Verdict::Code(code.secret().expose_secret().to_owned()),
            Err(Error::Callback(CallbackError::Denied { code, .. })) => Verdict::Denied(code),
            Err(Error::Callback(CallbackError::StateMismatch)) => Verdict::StateMismatch,
            Err(Error::Callback(CallbackError::Malformed(_))) => Verdict::Malformed,
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?} for {input:?}"))),
        };
        let used = matches!(got, Verdict::Code(_) | Verdict::Denied(_));
        prop_assert_eq!(got, want, "{}", input);
        if used {
            prop_assert!(matches!(pending.verify_callback(&input), Err(Error::Callback(CallbackError::AlreadyUsed))));
        }
    }
}
