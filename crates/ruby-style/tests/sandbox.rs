//! The Rails/Doorkeeper-style provider against the sandbox's ruby dialect: success, every error shape,
//! refresh under concurrency and a secret full of characters encodings disagree on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::ManualClock;
use tokensmith_core::{AuthorizedClient, Error, OAuthErrorCode, Scopes};
use tokensmith_ruby_style::{RubyStyleBuilder, RubyStyleProvider};
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig};

const D: Dialect = Dialect::RubyStyle;

fn builder(sandbox: &Sandbox) -> RubyStyleBuilder {
    let demo = sandbox.credentials(D);
    RubyStyleProvider::builder()
        .base_url(&sandbox.base_url(D))
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
}

async fn fetch_error(provider: &RubyStyleProvider) -> Error {
    match provider.token().await {
        Ok(_) => panic!("expected an error, got a token"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn posts_json_and_gets_a_token_the_api_accepts() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(7200));
    assert_eq!(token.scopes().to_string(), "public", "the server's default scope");
    assert!(token.extra().contains_key("created_at"), "Doorkeeper's created_at is kept");
    let client = AuthorizedClient::new(provider.shared());
    assert_eq!(client.send(client.get(sandbox.protected_url(D))).await.unwrap().status(), 200);

    let recorded = &sandbox.requests(D)[0];
    assert_eq!((recorded.method.as_str(), recorded.path.as_str()), ("POST", "/oauth/token"));
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(recorded.header("authorization"), None);
    let body: serde_json::Value = serde_json::from_str(&recorded.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"grant_type":"client_credentials","client_id":"ruby-demo-client","client_secret":"[redacted]"})
    );
}

#[tokio::test]
async fn optional_scope_is_requested_and_granted() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).scopes(Scopes::parse("read write")).build().unwrap();
    assert_eq!(provider.token().await.unwrap().scopes().to_string(), "read write");
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_401() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).client_secret("not-the-secret").build().unwrap();
    let error = fetch_error(&provider).await;
    assert!(matches!(error, Error::OAuth(_)), "{error:?}");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
    assert_eq!(error.status(), Some(401));
    let text = error.to_string();
    assert!(text.contains("Client authentication failed"), "{text}");
    assert!(!text.contains("not-the-secret"));
}

#[tokio::test]
async fn unknown_scope_is_invalid_scope() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).scopes(Scopes::parse("admin")).build().unwrap();
    let error = fetch_error(&provider).await;
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidScope), "{error:?}");
    assert_eq!(error.status(), Some(400));
}

#[tokio::test]
async fn wrong_base_url_is_rails_html_404() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).base_url(&format!("{}/v2", sandbox.base_url(D))).build().unwrap();
    match fetch_error(&provider).await {
        Error::Http(e) => {
            assert_eq!(e.status, 404);
            assert!(e.excerpt.contains("doesn't exist"), "{}", e.excerpt);
            assert!(e.to_string().contains("check the token URL"), "{e}");
        }
        other => panic!("expected Error::Http, got {other:?}"),
    }
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
            assert_eq!(status, 200, "a caller got a token the API rejects");
        }
        seen.extend(round);
        clock.advance(step);
        sandbox.advance_clock(step);
    }
    // Each token serves until at most half its life is left: 3 or 4 tokens in 3.5 s, never one per round.
    assert!((3..=5).contains(&seen.len()), "expected 3 to 5 tokens in 3.5 s of 2 s tokens, saw {}", seen.len());
    assert_eq!(sandbox.request_count(D, "/oauth/token"), seen.len(), "one request per refresh");
}
