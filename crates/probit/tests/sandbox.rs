//! The ProBit provider against the sandbox's ProBit dialect: success, every error shape, and the
//! sandbox's conformance kit (refresh under concurrency, a secret full of characters encodings
//! disagree on, invalid client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::{
    AuthorizedClient, Error,
    error::{OAuthErrorCode, TransportError},
    http::{HttpResponse, ReqwestTransport, Transport},
    request::TokenRequest,
};
use tokensmith_probit::{ProbitBuilder, ProbitProvider};
use tokensmith_sandbox::conformance::{ClientCredentialsKit, KitContext};
use tokensmith_sandbox::{Dialect, Fault, Sandbox, SandboxConfig};

const D: Dialect = Dialect::Probit;

fn builder(sandbox: &Sandbox) -> ProbitBuilder {
    let demo = sandbox.credentials(D);
    ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .token_url(sandbox.token_url(D))
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

/// The special-secret round trip, the invalid-client error (with ProBit's own text and the provider's
/// hint), one request for concurrent first callers and 2-second tokens refreshed once per refresh under
/// concurrency: the checks every client-credentials provider runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_client_credentials_kit() {
    ClientCredentialsKit::new(D, |cx: KitContext| {
        ProbitProvider::builder()
            .token_url(cx.token_url())
            .client_id(cx.client_id)
            .client_secret(cx.client_secret)
            .clock(cx.clock)
            .build()
    })
    // 401 {"errorCode":"UNAUTHORIZED","message":"Invalid client credentials","details":{}}
    .invalid_client_mentions("Invalid client credentials")
    .invalid_client_mentions("check the client id and secret")
    .run()
    .await;
}
