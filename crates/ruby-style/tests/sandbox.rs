//! The Rails/Doorkeeper-style provider against the sandbox's ruby dialect: success, every error shape,
//! and the sandbox's conformance kit (refresh under concurrency, a secret full of characters encodings
//! disagree on, invalid client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokensmith_core::{AuthorizedClient, Error, Scopes, error::OAuthErrorCode};
use tokensmith_ruby_style::{RubyStyleBuilder, RubyStyleProvider};
use tokensmith_sandbox::conformance::{ClientCredentialsKit, KitContext};
use tokensmith_sandbox::{Dialect, Sandbox};

const D: Dialect = Dialect::RubyStyle;

fn builder(sandbox: &Sandbox) -> RubyStyleBuilder {
    let demo = sandbox.credentials(D);
    RubyStyleProvider::builder()
        .base_url(sandbox.base_url(D))
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
    let provider = builder(&sandbox).base_url(format!("{}/v2", sandbox.base_url(D))).build().unwrap();
    match fetch_error(&provider).await {
        Error::Http(e) => {
            assert_eq!(e.status, 404);
            assert!(e.excerpt.contains("doesn't exist"), "{}", e.excerpt);
            assert!(e.to_string().contains("check the token URL"), "{e}");
        }
        other => panic!("expected Error::Http, got {other:?}"),
    }
}

/// The special-secret round trip, the invalid-client error (with Doorkeeper's description), one request
/// for concurrent first callers and 2-second tokens refreshed once per refresh under concurrency: the
/// checks every client-credentials provider runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_client_credentials_kit() {
    ClientCredentialsKit::new(D, |cx: KitContext| {
        RubyStyleProvider::builder()
            .base_url(cx.base_url())
            .client_id(cx.client_id)
            .client_secret(cx.client_secret)
            .clock(cx.clock)
            .build()
    })
    .invalid_client_mentions("Client authentication failed")
    .run()
    .await;
}
