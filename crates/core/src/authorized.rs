//! [`AuthorizedClient`]: a thin wrapper over `reqwest::Client` that puts the bearer token on resource
//! requests and, on a 401, invalidates it and retries once with a new one.

use std::fmt;

use crate::error::{Error, Result};
use crate::provider::SharedTokenProvider;

/// Sends requests to a resource server with `Authorization: Bearer <token>`.
///
/// On a `401 Unauthorized` it reports the token as rejected (so the cache drops it, once, however many
/// requests saw the 401) and retries the request once with a new token, if the request can be cloned
/// and the new token differs.
///
/// ```no_run
/// use tokensmith_core::{AuthorizedClient, SharedTokenProvider};
///
/// # async fn run(provider: SharedTokenProvider) -> tokensmith_core::Result<()> {
/// let client = AuthorizedClient::new(provider);
/// let response = client.send(client.get("https://api.probit.com/api/exchange/v1/balance")).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthorizedClient {
    http: reqwest::Client,
    provider: SharedTokenProvider,
}

impl fmt::Debug for AuthorizedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedClient").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl AuthorizedClient {
    /// A client with a default `reqwest::Client`.
    pub fn new(provider: SharedTokenProvider) -> Self {
        Self::with_client(reqwest::Client::new(), provider)
    }

    /// A client using your `reqwest::Client`.
    pub fn with_client(http: reqwest::Client, provider: SharedTokenProvider) -> Self {
        AuthorizedClient { http, provider }
    }

    /// The token provider.
    pub fn provider(&self) -> &SharedTokenProvider {
        &self.provider
    }

    /// A `GET` request builder (send it with [`send`](Self::send)).
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    /// A `POST` request builder (send it with [`send`](Self::send)).
    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.http.post(url)
    }

    /// A request builder for any method (send it with [`send`](Self::send)).
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Builds and sends `builder` with the bearer token; see [`execute`](Self::execute).
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let request = builder.build().map_err(|e| resource_error(e, "building the request failed"))?;
        self.execute(request).await
    }

    /// Sends `request` with the bearer token; on a 401 invalidates the token and retries once.
    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response> {
        let retry = request.try_clone();
        let token = self.provider.token().await?;
        let response = self.send_with(request, &token).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.provider.invalidate(&token);
        let Some(retry) = retry else {
            return Ok(response);
        };
        let fresh = self.provider.token().await?;
        if fresh.same_token(&token) {
            return Ok(response);
        }
        tracing::debug!("resource server answered 401; retrying once with a new token");
        self.send_with(retry, &fresh).await
    }

    async fn send_with(&self, mut request: reqwest::Request, token: &crate::AccessToken) -> Result<reqwest::Response> {
        request.headers_mut().insert(reqwest::header::AUTHORIZATION, token.header_value()?);
        self.http.execute(request).await.map_err(|e| resource_error(e, "the resource request failed"))
    }
}

fn resource_error(e: reqwest::Error, what: &str) -> Error {
    Error::Transport(crate::http::transport_error(e, what))
}
