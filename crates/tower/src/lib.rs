//! tokensmith's access tokens on every request of a [`tower`](https://docs.rs/tower) HTTP client: a
//! hyper-util client, an axum/tower client, a `tonic` channel.
//!
//! [`AuthLayer::new(provider)`](AuthLayer::new) wraps any `Service<http::Request<B>>`. Its service
//! sets `Authorization: Bearer <token>` (marked sensitive) on each request. When the answer says the
//! token was refused — HTTP `401`, or a gRPC `UNAUTHENTICATED` status in the response headers (a
//! trailers-only gRPC answer, what tonic's interceptors send) — it reports the token to the provider
//! ([`invalidate`](SharedTokenProvider::invalidate)) and, when the request can be replayed (its body is
//! [`ReplayBody`]: bytes, a string, `Full`, `Empty`), sends it again, once, with a new token;
//! otherwise it returns the refusal, and the next request gets a new token. Concurrent requests share
//! one token request (the provider's cache).
//!
//! With the cargo feature `tonic`, it wraps a `tonic::transport::Channel` (see
//! `tests/tonic.rs`): `HealthClient::new(AuthLayer::new(provider).layer(channel))`.
//!
//! ```
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tokensmith_tower::AuthLayer;
//! use tower::{Layer as _, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::Probit);
//! let provider = tokensmith_probit::ProbitProvider::builder()
//!     .client_id("my-client")
//!     .client_secret("my-secret")
//! #   .client_id(demo.client_id).client_secret(demo.client_secret)
//! #   .base_url(sandbox.base_url(tokensmith_sandbox::Dialect::Probit))
//!     .build()?;
//! let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
//! let client = AuthLayer::new(provider.shared()).layer(hyper);
//! let uri = "http://127.0.0.1:8080/probit/api/exchange/v1/balance";
//! # let uri = sandbox.protected_url(tokensmith_sandbox::Dialect::Probit);
//! let response = client.oneshot(http::Request::get(uri).body(Full::default())?).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use tokensmith_core::SharedTokenProvider;
use tower_layer::Layer;
use tower_service::Service;

/// The error of an [`AuthService`]: the inner service's, or the provider's (a
/// [`tokensmith_core::Error`]), boxed as tower's middleware errors are.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that may be sent twice: [`try_clone_body`](ReplayBody::try_clone_body) returns a
/// copy, or `None` for a body that can be read once only (a stream), whose refused request is then
/// not replayed. Implement it for your own body type.
pub trait ReplayBody: Sized {
    /// A copy of the body to send again, if it can be had.
    fn try_clone_body(&self) -> Option<Self>;
}

macro_rules! replay_by_clone {
    ($($body:ty),* $(,)?) => {$(
        impl ReplayBody for $body {
            fn try_clone_body(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replay_by_clone!(
    (),
    String,
    Vec<u8>,
    Bytes,
    &'static str,
    &'static [u8],
    http_body_util::Full<Bytes>,
    http_body_util::Empty<Bytes>
);

/// A gRPC request body is a stream: tonic's requests are not replayed. A call refused with
/// `UNAUTHENTICATED` is answered with that status, and the next call gets a new token.
#[cfg(feature = "tonic")]
impl ReplayBody for tonic::body::Body {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}

/// Puts a provider's token on every request of the service it wraps; see the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    provider: SharedTokenProvider,
}

impl AuthLayer {
    /// A layer that takes its tokens from `provider`.
    pub fn new(provider: SharedTokenProvider) -> Self {
        AuthLayer { provider }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, provider: self.provider.clone() }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    provider: SharedTokenProvider,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: ReplayBody + Send + 'static,
    ResBody: Send,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The readied service serves this request; a clone takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let provider = self.provider.clone();
        Box::pin(async move {
            // Copied before the token goes on, so that a replay gets the new token and nothing else.
            let replay = try_clone_request(&request);
            let token = provider.token().await?;
            request.headers_mut().insert(AUTHORIZATION, token.header_value()?);
            let response = inner.call(request).await.map_err(Into::into)?;
            if !refused(&response) {
                return Ok(response);
            }
            // The token was refused: the provider drops it (if it is still the current one), so the
            // next request, or the replay, waits for one new token however many were refused.
            provider.invalidate(&token);
            let Some(mut again) = replay else { return Ok(response) };
            let token = provider.token().await?;
            again.headers_mut().insert(AUTHORIZATION, token.header_value()?);
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
            inner.call(again).await.map_err(Into::into)
        })
    }
}

/// A `401`, or gRPC's `UNAUTHENTICATED` (16) in the headers of a trailers-only answer.
fn refused<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response.headers().get("grpc-status").is_some_and(|status| status.as_bytes() == b"16")
}

fn try_clone_request<B: ReplayBody>(request: &Request<B>) -> Option<Request<B>> {
    let mut copy = Request::new(request.body().try_clone_body()?);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
