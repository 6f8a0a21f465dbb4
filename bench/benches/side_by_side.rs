//! One full client-credentials fetch against the sandbox on loopback, three ways, same request shape
//! (`POST` form `grant_type=client_credentials`, HTTP Basic credentials, JSON answer parsed):
//!
//! - `tokensmith`: `TokenClient::request_token` with the generic-django dialect (no cache: every
//!   iteration is a request), default `ReqwestTransport`;
//! - `raw_reqwest`: a `reqwest::Client` doing the same POST and parsing the JSON into a struct;
//! - `oauth2`: the `oauth2` crate's `exchange_client_credentials().request_async(..)`, driven through
//!   the same reqwest version (oauth2's own `reqwest` feature needs reqwest 0.12; its closure-based
//!   `AsyncHttpClient` does the same thing with ours).
//!
//! All three keep their connection alive between iterations and never follow redirects. The sandbox
//! runs on its own runtime thread; the clients on a current-thread runtime.
//!
//! `cargo bench -p tokensmith-bench --bench side_by_side` (results in docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth2::{ClientId, ClientSecret, TokenResponse as _, TokenUrl};
use serde::Deserialize;
use tokensmith_core::{ClientCredentials, Grant, Scopes, TokenClient};
use tokensmith_sandbox::{Dialect, Sandbox};

const D: Dialect = Dialect::GenericDjango;

/// What the raw client parses.
#[derive(Deserialize)]
#[allow(dead_code)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The sandbox, served by a runtime on its own thread.
fn start_sandbox() -> (Sandbox, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sandbox = runtime.block_on(Sandbox::start()).unwrap();
    (sandbox, runtime)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The three clients against one sandbox.
struct Clients {
    token_url: String,
    client_id: String,
    client_secret: String,
    tokensmith: TokenClient,
    raw: reqwest::Client,
    oauth: BasicClient<oauth2::EndpointSet>,
    oauth_http: reqwest::Client,
}

type BasicClient<T> = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    T,
>;

impl Clients {
    fn new(sandbox: &Sandbox) -> Clients {
        let client = sandbox.credentials(D);
        let token_url = sandbox.token_url(D);
        // tokensmith: the dialect's TokenClient, no cache.
        let tokensmith = TokenClient::builder(
            "generic-django",
            tokensmith_generic_django::endpoint(token_url.parse().unwrap()),
            ClientCredentials::new(client.client_id.clone(), client.client_secret.clone()),
        )
        .build()
        .unwrap();
        let oauth = oauth2::basic::BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_client_secret(ClientSecret::new(client.client_secret.clone()))
            .set_token_uri(TokenUrl::new(token_url.clone()).unwrap());
        Clients {
            token_url,
            client_id: client.client_id,
            client_secret: client.client_secret,
            tokensmith,
            raw: http_client(),
            oauth,
            oauth_http: http_client(),
        }
    }

    async fn tokensmith(&self) {
        let token = self.tokensmith.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
        assert!(token.lifetime() > Duration::ZERO);
        std::hint::black_box(token);
    }

    /// The same POST by hand: Basic credentials (form-encoded per RFC 6749 §2.3.1; the demo
    /// credentials need no encoding), `Accept: application/json`, the form body, the JSON parsed.
    async fn raw(&self) {
        let response = self
            .raw
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("accept", "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: TokenAnswer = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        std::hint::black_box(answer);
    }

    /// oauth2's exchange, through the same reqwest.
    async fn oauth2(&self) {
        let send = |request: oauth2::HttpRequest| {
            let http = self.oauth_http.clone();
            async move {
                let (parts, body) = request.into_parts();
                let response = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(std::io::Error::other)?;
                let mut out = http::Response::builder().status(response.status());
                if let Some(headers) = out.headers_mut() {
                    *headers = response.headers().clone();
                }
                let body = response.bytes().await.map_err(std::io::Error::other)?;
                out.body(body.to_vec()).map_err(std::io::Error::other)
            }
        };
        let token = self.oauth.exchange_client_credentials().request_async(&send).await.unwrap();
        assert!(!token.access_token().secret().is_empty());
        std::hint::black_box(token);
    }
}

/// Each contender gets a fresh sandbox (the sandbox keeps every token it issued and its last 10,000
/// requests, so a later contender would otherwise meet a fuller server) and 2,000 untimed requests
/// before criterion's own warm-up.
fn side_by_side(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("client_credentials_fetch");
    group.measurement_time(Duration::from_secs(10));
    for name in ["tokensmith", "raw_reqwest", "oauth2"] {
        let (sandbox, server) = start_sandbox();
        let clients = Clients::new(&sandbox);
        rt.block_on(async {
            for _ in 0..2_000 {
                match name {
                    "tokensmith" => clients.tokensmith().await,
                    "raw_reqwest" => clients.raw().await,
                    _ => clients.oauth2().await,
                }
            }
        });
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                match name {
                    "tokensmith" => clients.tokensmith().await,
                    "raw_reqwest" => clients.raw().await,
                    _ => clients.oauth2().await,
                }
            })
        });
        assert!(sandbox.request_count(D, "/o/token/") >= 2_000, "the benchmark reached the sandbox");
        drop(sandbox);
        drop(server);
    }
    group.finish();
}

criterion_group!(benches, side_by_side);
criterion_main!(benches);
