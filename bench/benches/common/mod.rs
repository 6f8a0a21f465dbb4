//! What both benchmarks share: the sandbox and the three clients, each doing one full
//! client-credentials fetch with the same request shape (see `side_by_side.rs`).
#![allow(dead_code)]

use std::time::Duration;

use oauth2::{ClientId, ClientSecret, TokenResponse as _, TokenUrl};
use serde::Deserialize;
use tokensmith_core::{ClientCredentials, Scopes, TokenClient, request::Grant};
use tokensmith_sandbox::{Dialect, Sandbox};

pub const D: Dialect = Dialect::GenericDjango;

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
pub fn start_sandbox() -> (Sandbox, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sandbox = runtime.block_on(Sandbox::start()).unwrap();
    (sandbox, runtime)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The three clients against one sandbox.
pub struct Clients {
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
    pub fn new(sandbox: &Sandbox) -> Clients {
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

    pub async fn tokensmith(&self) {
        let token = self.tokensmith.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
        assert!(token.lifetime() > Duration::ZERO);
        std::hint::black_box(token);
    }

    /// The same POST by hand: Basic credentials (form-encoded per RFC 6749 §2.3.1; the demo
    /// credentials need no encoding), `Accept: application/json`, the form body, the JSON parsed.
    pub async fn raw(&self) {
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
    pub async fn oauth2(&self) {
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

/// The three contenders, by name.
pub const CONTENDERS: [&str; 3] = ["tokensmith", "raw_reqwest", "oauth2"];

impl Clients {
    /// One fetch by the named contender.
    pub async fn fetch(&self, name: &str) {
        match name {
            "tokensmith" => self.tokensmith().await,
            "raw_reqwest" => self.raw().await,
            _ => self.oauth2().await,
        }
    }
}
