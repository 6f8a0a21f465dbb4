//! The authorization code flow with PKCE against a generic RFC 6749 server, on a scripted transport:
//! a wrong `state` sends nothing, `access_denied` is typed, the code is exchanged once (never resent
//! after it may have reached the server) with the verifier, and the tokens then refresh with rotation
//! through the store. No code, verifier or token shows in `Debug`, errors or logs.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::error::{CallbackError, OAuthErrorCode, TransportError, TransportErrorKind};
use tokensmith_core::flows::{AuthorizationRequest, CodeExchange, PendingAuthorization};
use tokensmith_core::http::{HttpResponse, Transport};
use tokensmith_core::request::TokenRequest;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::LogCapture;
use tokensmith_core::{
    CachedProvider, ClientCredentials, Error, MemoryStore, RetryPolicy, Scopes, TokenClient, TokenEndpoint, TokenStore,
    cache::RefreshTokenSource, clock::TokioClock,
};

const CLIENT_SECRET: &str = "client-secret-5e1f";
const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// What the scripted server does with one request.
enum Step {
    Reply(HttpResponse),
    Fail(TransportErrorKind),
    /// Never answers (the attempt times out).
    Hang,
}

/// A token endpoint that follows a script and records every request it was sent.
#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<TokenRequest>>,
}

impl Script {
    fn push(&self, step: Step) {
        self.steps.lock().unwrap().push_back(step);
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The form parameters of request `i`, secrets exposed (as sent on the wire).
    fn params(&self, i: usize) -> Vec<(String, String)> {
        let body = self.requests()[i].wire_body();
        url::form_urlencoded::parse(&body).into_owned().collect()
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script")
    }
}

#[async_trait]
impl Transport for Script {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.requests.lock().unwrap().push(request.clone());
        let step = self.steps.lock().unwrap().pop_front();
        match step {
            Some(Step::Reply(response)) => Ok(response),
            Some(Step::Fail(kind)) => Err(TransportError::new(kind, "simulated")),
            Some(Step::Hang) => std::future::pending().await,
            None => panic!("an unexpected request: {request:?}"),
        }
    }
}

fn tokens(access: &str, refresh: &str, lifetime: u64) -> Step {
    Step::Reply(HttpResponse::json(
        200,
        format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{lifetime},"refresh_token":"{refresh}","scope":"read write"}}"#
        ),
    ))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

struct Fixture {
    script: Arc<Script>,
    store: Arc<MemoryStore>,
    provider: CachedProvider<RefreshTokenSource>,
    request: AuthorizationRequest,
}

/// A generic RFC 6749 server at `https://as.example`: Basic client authentication, the code and
/// refresh grants at `/token`; the provider refreshes through a shared store.
fn fixture() -> Fixture {
    let script = Arc::new(Script::default());
    let store = Arc::new(MemoryStore::new());
    let endpoint = TokenEndpoint::new("https://as.example/token".parse().unwrap());
    let client = TokenClient::builder("generic", endpoint, ClientCredentials::new("my-app", CLIENT_SECRET))
        .transport(script.clone())
        .clock(Arc::new(TokioClock::new()))
        .retry(RetryPolicy::default().jitter(false).attempt_timeout(Duration::from_secs(5)))
        .build()
        .unwrap();
    let provider = CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty()))
        .store(store.clone())
        .clock(Arc::new(TokioClock::new()))
        .build();
    let request = AuthorizationRequest::new("https://as.example/authorize".parse().unwrap(), "my-app")
        .redirect_uri(REDIRECT_URI)
        .scopes(Scopes::parse("read write"));
    Fixture { script, store, provider, request }
}

fn callback(pending: &PendingAuthorization, code: &str) -> String {
    format!("{REDIRECT_URI}?code={code}&state={}", pending.state())
}

fn callback_error(result: tokensmith_core::Result<impl std::fmt::Debug>) -> CallbackError {
    match result {
        Err(Error::Callback(e)) => e,
        other => panic!("expected a callback error, got {other:?}"),
    }
}

#[test]
fn the_url_is_rfc_6749_with_pkce() {
    let f = fixture();
    let pending = f.request.start();
    let query: Vec<(String, String)> = pending.url().query_pairs().into_owned().collect();
    let verifier = pending.code_verifier().unwrap().expose_secret().to_owned();
    let expected = [
        ("response_type", "code".to_owned()),
        ("client_id", "my-app".to_owned()),
        ("state", pending.state().to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("scope", "read write".to_owned()),
        ("code_challenge", tokensmith_core::flows::pkce_challenge(&verifier)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    let expected: Vec<(String, String)> = expected.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(query, expected);
    assert_eq!(pending.state().len(), 43, "256 bits of base64url");
    assert_ne!(f.request.start().state(), pending.state());
}

#[tokio::test(start_paused = true)]
async fn a_wrong_state_sends_nothing_and_the_genuine_callback_still_works() {
    let f = fixture();
    let pending = f.request.start();
    let exchange = CodeExchange::saving_to(&f.provider);
    for forged in ["code=stolen&state=wrong", "code=stolen", "error=access_denied&state=nope"] {
        let err = callback_error(exchange.complete(&pending, forged).await);
        assert_eq!(err, CallbackError::StateMismatch, "{forged}");
    }
    assert!(f.script.requests().is_empty(), "no token request for a forged callback");
    assert!(!pending.is_used());
    f.script.push(tokens("at-1", "rt-1", 300));
    exchange.complete(&pending, &callback(&pending, "c0de")).await.unwrap();
    assert_eq!(f.script.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn access_denied_is_typed_and_sends_nothing() {
    let f = fixture();
    let pending = f.request.start();
    let denied = format!("error=access_denied&error_description=The+user+said+no&state={}", pending.state());
    let err = callback_error(CodeExchange::saving_to(&f.provider).complete(&pending, &denied).await);
    assert_eq!(
        err,
        CallbackError::Denied { code: OAuthErrorCode::AccessDenied, description: Some("The user said no".into()) }
    );
    assert!(f.script.requests().is_empty());
    assert!(pending.is_used(), "the authorization is over");
    assert!(f.store.load(f.provider.key()).await.unwrap().is_none());
}

/// The code goes once, with the verifier and the redirect URI; the tokens are in the store when
/// `complete` returns; then each refresh sends the latest refresh token and the store keeps the
/// rotated one.
#[tokio::test(start_paused = true)]
async fn the_code_is_exchanged_once_and_the_refresh_token_rotates_through_the_store() {
    let f = fixture();
    let pending = f.request.start();
    let verifier = pending.code_verifier().unwrap().expose_secret().to_owned();
    let exchange = CodeExchange::saving_to(&f.provider);
    f.script.push(tokens("at-1", "rt-1", 300));
    let token = exchange.complete(&pending, &callback(&pending, "c0de")).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "at-1");

    let sent = f.script.params(0);
    assert_eq!(param(&sent, "grant_type"), Some("authorization_code"));
    assert_eq!(param(&sent, "code"), Some("c0de"));
    assert_eq!(param(&sent, "redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(param(&sent, "code_verifier"), Some(verifier.as_str()));
    assert_eq!(param(&sent, "scope"), None, "the exchange asks for no scope (RFC 6749 §4.1.3)");
    assert!(f.script.requests()[0].has_header("authorization"), "client authentication (Basic)");

    let stored = f.store.load(f.provider.key()).await.unwrap().expect("saved before complete returned");
    assert_eq!(stored.refresh_token().unwrap().secret().expose_secret(), "rt-1");

    // The same callback again (a double submit, a replay): refused, nothing sent.
    let again = exchange.complete(&pending, &callback(&pending, "c0de")).await;
    assert_eq!(callback_error(again), CallbackError::AlreadyUsed);
    assert_eq!(f.script.requests().len(), 1);

    // Served from the cache while fresh.
    assert_eq!(f.provider.token().await.unwrap().secret().expose_secret(), "at-1");
    assert_eq!(f.script.requests().len(), 1);

    for round in 1..=3 {
        tokio::time::advance(Duration::from_secs(300)).await;
        f.script.push(tokens(&format!("at-{}", round + 1), &format!("rt-{}", round + 1), 300));
        let token = f.provider.token().await.unwrap();
        assert_eq!(token.secret().expose_secret(), format!("at-{}", round + 1));
        let sent = f.script.params(round);
        assert_eq!(param(&sent, "grant_type"), Some("refresh_token"));
        assert_eq!(param(&sent, "refresh_token"), Some(format!("rt-{round}").as_str()), "the latest refresh token");
        let stored = f.store.load(f.provider.key()).await.unwrap().unwrap();
        assert_eq!(stored.refresh_token().unwrap().secret().expose_secret(), format!("rt-{}", round + 1));
    }
    assert_eq!(f.script.requests().len(), 4);
}

/// After a timeout or a 5xx the code may have reached the server: it is not sent again (the
/// default policy would retry other grants). Only a failure that proves the server never saw it
/// (no connection) is retried.
#[tokio::test(start_paused = true)]
async fn a_code_that_may_have_reached_the_server_is_never_resent() {
    for (step, what) in [
        (Step::Hang, "a timeout"),
        (Step::Fail(TransportErrorKind::Timeout), "a transport timeout"),
        (Step::Fail(TransportErrorKind::Other), "a broken connection"),
        (Step::Reply(HttpResponse::json(500, r#"{"error":"server_error"}"#)), "a 500"),
        (Step::Reply(HttpResponse::json(502, "bad gateway")), "a 502"),
    ] {
        let f = fixture();
        let pending = f.request.start();
        f.script.push(step);
        let err = CodeExchange::saving_to(&f.provider).complete(&pending, &callback(&pending, "c0de")).await;
        assert!(err.is_err(), "{what}");
        assert_eq!(f.script.requests().len(), 1, "{what}: the code was sent once");
        assert!(f.store.load(f.provider.key()).await.unwrap().is_none());
    }
    // The connection was never made: the server cannot have seen the code; one retry gets through.
    let f = fixture();
    let pending = f.request.start();
    f.script.push(Step::Fail(TransportErrorKind::Connect));
    f.script.push(tokens("at-1", "rt-1", 300));
    CodeExchange::saving_to(&f.provider).complete(&pending, &callback(&pending, "c0de")).await.unwrap();
    assert_eq!(f.script.requests().len(), 2);
}

/// A spent or expired code (`invalid_grant`) means: authorize again.
#[tokio::test(start_paused = true)]
async fn a_refused_code_asks_to_authorize_again() {
    let f = fixture();
    let pending = f.request.start();
    f.script.push(Step::Reply(HttpResponse::json(400, r#"{"error":"invalid_grant"}"#)));
    let err = CodeExchange::saving_to(&f.provider).complete(&pending, &callback(&pending, "c0de")).await.unwrap_err();
    assert!(matches!(err, Error::ReauthorizationRequired { .. }), "{err:?}");
    assert!(err.to_string().contains("authorization code"), "{err}");
    assert_eq!(f.script.requests().len(), 1);
}

/// `send_redirect_uri(false)` (WhiteBIT's exchange) leaves it out; `CodeExchange::new` saves nothing.
#[tokio::test(start_paused = true)]
async fn the_exchange_shape_is_data() {
    let f = fixture();
    let pending = f.request.start();
    f.script.push(tokens("at-1", "rt-1", 300));
    let client = f.provider.source().client();
    CodeExchange::new(client).send_redirect_uri(false).complete(&pending, &callback(&pending, "c0de")).await.unwrap();
    let sent = f.script.params(0);
    assert_eq!(param(&sent, "redirect_uri"), None);
    assert!(param(&sent, "code_verifier").is_some());
    assert!(f.store.load(f.provider.key()).await.unwrap().is_none(), "CodeExchange::new saves nothing");
    // Without PKCE, no verifier.
    let plain = f.request.clone().pkce(false).start();
    let code = plain.verify_callback(&callback(&plain, "c0de")).unwrap();
    let request = CodeExchange::new(client).request(&plain, &code).unwrap();
    assert!(!request.has_param("code_verifier") && request.has_param("redirect_uri"));
}

/// Nothing secret in `Debug`, errors or logs, even when the server echoes what it was sent.
#[tokio::test(start_paused = true)]
async fn no_code_verifier_or_token_leaks() {
    let (logs, _guard) = LogCapture::install();
    let f = fixture();
    let pending = f.request.start();
    let verifier = pending.code_verifier().unwrap().expose_secret().to_owned();
    let code = "c0de-5ecret-7a1b";
    let echo = format!(
        r#"{{"error":"invalid_request","error_description":"bad code {code} for verifier {verifier} and {CLIENT_SECRET}"}}"#
    );
    f.script.push(Step::Reply(HttpResponse::json(400, echo)));
    let err = CodeExchange::saving_to(&f.provider).complete(&pending, &callback(&pending, code)).await.unwrap_err();

    let pending2 = f.request.start();
    let verifier2 = pending2.code_verifier().unwrap().expose_secret().to_owned();
    f.script.push(tokens("access-9f8e7d", "refresh-6c5b4a", 1));
    let exchange = CodeExchange::saving_to(&f.provider);
    let token = exchange.complete(&pending2, &callback(&pending2, code)).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    f.script.push(Step::Reply(HttpResponse::json(
        400,
        r#"{"error":"invalid_grant","error_description":"refresh-6c5b4a"}"#,
    )));
    let refresh_err = f.provider.token().await.unwrap_err();

    let shown = [
        format!("{err}"),
        format!("{err:?}"),
        format!("{refresh_err}"),
        format!("{refresh_err:?}"),
        format!("{pending:?}"),
        format!("{pending2:?}"),
        format!("{exchange:?}"),
        format!("{token:?}"),
        format!("{:?}", pending.verify_callback("x")),
        format!("{:?}", f.script.requests()),
        format!("{:?}", f.provider),
        logs.text(),
    ];
    for text in &shown {
        for secret in [code, verifier.as_str(), verifier2.as_str(), CLIENT_SECRET, "access-9f8e7d", "refresh-6c5b4a"] {
            assert!(!text.contains(secret), "{secret} shown in: {text}");
        }
    }
    assert!(logs.text().contains("authorization completed"), "{}", logs.text());
}
