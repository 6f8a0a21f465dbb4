//! The ProBit provider against the sandbox's ProBit dialect: success, every error shape, refresh under
//! concurrency and a secret full of characters encodings disagree on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::ManualClock;
use tokensmith_core::{
    AuthorizedClient, Error, HttpResponse, OAuthErrorCode, ReqwestTransport, TokenRequest, Transport, TransportError,
};
use tokensmith_probit::{ProbitBuilder, ProbitProvider};
use tokensmith_sandbox::{Dialect, Fault, Sandbox, SandboxConfig};

const D: Dialect = Dialect::Probit;

fn builder(sandbox: &Sandbox) -> ProbitBuilder {
    let demo = sandbox.credentials(D);
    ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .token_url(&sandbox.token_url(D))
}

async fn fetch_error(provider: &ProbitProvider) -> Error {
    match provider.token().await {
        Ok(_) => panic!("expected an error, got a token"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn gets_a_token_the_balance_api_accepts() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().probit_expires_in_as_string(true)).await.unwrap();
    let provider = builder(&sandbox).build().unwrap();
    let token = provider.token().await.unwrap();
    // `"expires_in":"900"` (a string) is understood.
    assert_eq!(token.lifetime(), Duration::from_secs(900));
    let client = AuthorizedClient::new(provider.clone().shared());
    let response = client.send(client.get(sandbox.protected_url(D))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sandbox.request_count(D, "/token"), 1);
    let recorded = &sandbox.requests(D)[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.body, r#"{"grant_type":"client_credentials"}"#);
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(recorded.header("authorization"), Some("Basic [redacted]"));
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).client_secret("not-the-secret").build().unwrap();
    let error = fetch_error(&provider).await;
    // 401 {"errorCode":"UNAUTHORIZED","message":"Invalid client credentials","details":{}}
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient), "{error:?}");
    assert_eq!(error.status(), Some(401));
    let text = error.to_string();
    assert!(text.contains("Invalid client credentials") && text.contains("check the client id and secret"), "{text}");
    assert!(!text.contains("not-the-secret"));
}

#[tokio::test]
async fn other_error_codes_keep_code_and_message() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).build().unwrap();
    sandbox.inject(D, "/token", Fault::Status(404), 1);
    match fetch_error(&provider).await {
        Error::Http(e) => {
            assert_eq!(e.status, 404);
            assert_eq!(e.code.as_deref(), Some("NOT_FOUND"));
            assert_eq!(e.message.as_deref(), Some("Not Found"));
        }
        other => panic!("expected Error::Http, got {other:?}"),
    }
}

/// Sends the provider's request with another grant type, to meet ProBit's `{"error":"invalid_grant"}`.
#[derive(Debug)]
struct WrongGrantType(ReqwestTransport);

#[async_trait]
impl Transport for WrongGrantType {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.0.send(&request.clone().param("grant_type", "password")).await
    }
}

#[tokio::test]
async fn invalid_grant_is_typed() {
    let sandbox = Sandbox::start().await.unwrap();
    let transport = WrongGrantType(ReqwestTransport::builder().build().unwrap());
    let provider = builder(&sandbox).transport(std::sync::Arc::new(transport)).build().unwrap();
    let error = fetch_error(&provider).await;
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    assert_eq!(error.status(), Some(400));
}

#[tokio::test]
async fn html_403_from_the_cdn_is_an_http_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).build().unwrap();
    sandbox.inject(D, "/token", Fault::HtmlErrorPage(403), 1);
    match fetch_error(&provider).await {
        Error::Http(e) => {
            assert_eq!(e.status, 403);
            assert_eq!(e.code, None);
            assert!(e.excerpt.contains("could not be satisfied"), "{}", e.excerpt);
            assert!(!e.excerpt.contains('<'), "tags must be stripped: {}", e.excerpt);
        }
        other => panic!("expected Error::Http, got {other:?}"),
    }
    // Not retried: one request.
    assert_eq!(sandbox.request_count(D, "/token"), 1);
}

#[tokio::test]
async fn special_secret_round_trips() {
    let sandbox = Sandbox::start().await.unwrap();
    let special = sandbox.special_credentials(D);
    for c in [':', '%', '+', '/', '&', '=', ' '] {
        assert!(special.client_secret.contains(c), "the special secret lacks {c:?}");
    }
    let provider = builder(&sandbox).client_id(special.client_id).client_secret(special.client_secret).build().unwrap();
    let client = AuthorizedClient::new(provider.shared());
    assert_eq!(client.send(client.get(sandbox.protected_url(D))).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_second_token_refreshed_once_per_refresh_under_concurrency() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().lifetime(D, Duration::from_secs(2))).await.unwrap();
    // Simulated time: the cache reads a manual clock and the sandbox's clock moves by the same
    // steps, so 3.5 s of 2 s tokens pass without waiting for them.
    let clock = Arc::new(ManualClock::new());
    let provider = builder(&sandbox).clock(clock.clone()).build().unwrap();
    let http = reqwest::Client::new();
    let mut seen: HashSet<String> = HashSet::new();
    let step = Duration::from_millis(100);
    for _ in 0..35 {
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.token().await })
            })
            .collect();
        let mut round: HashSet<String> = HashSet::new();
        for caller in callers {
            round.insert(caller.await.unwrap().unwrap().secret().expose_secret().to_owned());
        }
        for token in &round {
            let status = http.get(sandbox.protected_url(D)).bearer_auth(token).send().await.unwrap().status();
            assert_eq!(status, 200, "a caller got a token the balance API rejects");
        }
        seen.extend(round);
        clock.advance(step);
        sandbox.advance_clock(step);
    }
    // Each token serves until at most half its life is left: 3 or 4 tokens in 3.5 s, never one per round.
    assert!((3..=5).contains(&seen.len()), "expected 3 to 5 tokens in 3.5 s of 2 s tokens, saw {}", seen.len());
    assert_eq!(sandbox.request_count(D, "/token"), seen.len(), "one request per refresh");
}
