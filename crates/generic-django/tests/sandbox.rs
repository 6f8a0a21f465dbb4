//! The Django OAuth Toolkit provider against the sandbox's Django dialect: success in both credential
//! styles, every error shape, and the sandbox's conformance kit in both styles (refresh under
//! concurrency, a secret full of characters encodings disagree on, invalid client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::{
    AuthorizedClient, Error, Scopes,
    error::{OAuthErrorCode, TransportError, TransportErrorKind},
    http::{HttpResponse, ReqwestTransport, Transport},
    request::TokenRequest,
};
use tokensmith_generic_django::{DjangoBuilder, DjangoCredentials, DjangoProvider};
use tokensmith_sandbox::conformance::{ClientCredentialsKit, KitContext};
use tokensmith_sandbox::{Dialect, Sandbox};

const D: Dialect = Dialect::GenericDjango;

fn builder(sandbox: &Sandbox) -> DjangoBuilder {
    let demo = sandbox.credentials(D);
    DjangoProvider::builder().base_url(sandbox.base_url(D)).client_id(demo.client_id).client_secret(demo.client_secret)
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

/// The special-secret round trip, the invalid-client error, one request for concurrent first callers
/// and 2-second tokens refreshed once per refresh under concurrency, in both credential styles: the
/// checks every client-credentials provider runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_client_credentials_kit_in_both_styles() {
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        ClientCredentialsKit::new(D, move |cx: KitContext| {
            DjangoProvider::builder()
                .base_url(cx.base_url())
                .client_id(cx.client_id)
                .client_secret(cx.client_secret)
                .credential_style(style)
                .scopes(Scopes::parse("read"))
                .clock(cx.clock)
                .build()
        })
        .run()
        .await;
    }
}
