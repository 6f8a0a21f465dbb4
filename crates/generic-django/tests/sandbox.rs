//! The Django OAuth Toolkit provider against the sandbox's Django dialect: success in both credential
//! styles, every error shape, refresh under concurrency and a secret full of characters encodings
//! disagree on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::ManualClock;
use tokensmith_core::{
    AuthorizedClient, Error, HttpResponse, OAuthErrorCode, ReqwestTransport, Scopes, TokenRequest, Transport,
    TransportError, TransportErrorKind,
};
use tokensmith_generic_django::{DjangoBuilder, DjangoCredentials, DjangoProvider};
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig};

const D: Dialect = Dialect::GenericDjango;

fn builder(sandbox: &Sandbox) -> DjangoBuilder {
    let demo = sandbox.credentials(D);
    DjangoProvider::builder().base_url(&sandbox.base_url(D)).client_id(demo.client_id).client_secret(demo.client_secret)
}

async fn fetch_error(provider: &DjangoProvider) -> Error {
    match provider.token().await {
        Ok(_) => panic!("expected an error, got a token"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn both_credential_styles_get_tokens_with_granted_scopes() {
    let sandbox = Sandbox::start().await.unwrap();
    for (style, scope) in [(DjangoCredentials::Basic, "read write"), (DjangoCredentials::Body, "read write admin")] {
        let provider = builder(&sandbox).credential_style(style).scopes(Scopes::parse(scope)).build().unwrap();
        let token = provider.token().await.unwrap();
        assert_eq!(token.scopes().to_string(), scope, "granted scopes for {style}");
        assert_eq!(token.lifetime(), Duration::from_secs(36_000));
        let client = AuthorizedClient::new(provider.shared());
        assert_eq!(client.send(client.get(sandbox.protected_url(D))).await.unwrap().status(), 200);
    }
    let log = sandbox.requests(D);
    let tokens: Vec<_> = log.iter().filter(|r| r.path == "/o/token/").collect();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].header("authorization"), Some("Basic [redacted]"));
    assert_eq!(tokens[0].body, "grant_type=client_credentials&scope=read+write");
    assert_eq!(tokens[1].header("authorization"), None);
    assert!(tokens[1].body.contains("client_id=django-demo-client"), "{}", tokens[1].body);
    assert!(
        tokens[1].body.contains("client_secret=[redacted]") || tokens[1].body.contains("client_secret=%5Bredacted%5D")
    );
}

#[tokio::test]
async fn no_scope_requested_gets_the_server_default() {
    let sandbox = Sandbox::start().await.unwrap();
    let token = builder(&sandbox).build().unwrap().token().await.unwrap();
    assert_eq!(token.scopes().to_string(), "read write");
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_401() {
    let sandbox = Sandbox::start().await.unwrap();
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        let provider = builder(&sandbox).credential_style(style).client_secret("not-the-secret").build().unwrap();
        let error = fetch_error(&provider).await;
        assert!(matches!(error, Error::OAuth(_)), "{error:?}");
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
        assert_eq!(error.status(), Some(401));
        assert!(!error.to_string().contains("not-the-secret"));
    }
}

/// Drops `grant_type` from the provider's request, to meet DOT's `invalid_request`.
#[derive(Debug)]
struct WithoutGrantType(ReqwestTransport);

#[async_trait]
impl Transport for WithoutGrantType {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.0.send(&request.clone().without_param("grant_type")).await
    }
}

#[tokio::test]
async fn malformed_request_is_invalid_request_400() {
    let sandbox = Sandbox::start().await.unwrap();
    let transport = Arc::new(WithoutGrantType(ReqwestTransport::builder().build().unwrap()));
    let provider = builder(&sandbox).transport(transport).build().unwrap();
    let error = fetch_error(&provider).await;
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidRequest), "{error:?}");
    assert_eq!(error.status(), Some(400));
    assert!(error.to_string().contains("missing grant type"), "{error}");
}

#[tokio::test]
async fn unknown_custom_scope_is_invalid_scope() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).scopes(Scopes::parse("read reports:export")).build().unwrap();
    let error = fetch_error(&provider).await;
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidScope), "{error:?}");
    // The custom scope was sent as given.
    assert!(sandbox.requests(D)[0].body.ends_with("scope=read+reports%3Aexport"), "{}", sandbox.requests(D)[0].body);
}

#[tokio::test]
async fn token_path_without_trailing_slash_is_refused_redirect() {
    let sandbox = Sandbox::start().await.unwrap();
    let provider = builder(&sandbox).token_path("/o/token").build().unwrap();
    match fetch_error(&provider).await {
        Error::Transport(e) => assert_eq!(e.kind(), TransportErrorKind::RedirectRefused, "{e}"),
        other => panic!("expected a refused redirect, got {other:?}"),
    }
}

#[tokio::test]
async fn special_secret_round_trips_in_both_styles() {
    let sandbox = Sandbox::start().await.unwrap();
    let special = sandbox.special_credentials(D);
    for c in [':', '%', '+', '/', '&', '=', ' '] {
        assert!(special.client_secret.contains(c), "the special secret lacks {c:?}");
    }
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        let provider = builder(&sandbox)
            .client_id(special.client_id.clone())
            .client_secret(special.client_secret.clone())
            .credential_style(style)
            .build()
            .unwrap();
        let client = AuthorizedClient::new(provider.shared());
        let status = client.send(client.get(sandbox.protected_url(D))).await.unwrap().status();
        assert_eq!(status, 200, "special secret with {style} credentials");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_second_token_refreshed_once_per_refresh_under_concurrency() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().lifetime(D, Duration::from_secs(2))).await.unwrap();
    // Simulated time: the cache reads a manual clock and the sandbox's clock moves by the same
    // steps, so 3.5 s of 2 s tokens pass without waiting for them.
    let clock = Arc::new(ManualClock::new());
    let provider = builder(&sandbox).scopes(Scopes::parse("read")).clock(clock.clone()).build().unwrap();
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
            assert_eq!(status, 200, "a caller got a token the payments API rejects");
        }
        seen.extend(round);
        clock.advance(step);
        sandbox.advance_clock(step);
    }
    // Each token serves until at most half its life is left: 3 or 4 tokens in 3.5 s, never one per round.
    assert!((3..=5).contains(&seen.len()), "expected 3 to 5 tokens in 3.5 s of 2 s tokens, saw {}", seen.len());
    assert_eq!(sandbox.request_count(D, "/o/token/"), seen.len(), "one request per refresh");
}
