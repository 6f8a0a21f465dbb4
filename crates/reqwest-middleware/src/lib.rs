//! tokensmith's access tokens on every request of a [`reqwest_middleware`] client.
//!
//! [`AuthMiddleware`] takes any provider as a [`SharedTokenProvider`], sets
//! `Authorization: Bearer <token>` on each request, and on a `401` reports the token to the provider
//! ([`invalidate`](SharedTokenProvider::invalidate)) and sends the request again, once, with a new
//! token — when the request can be cloned (`reqwest::Request::try_clone`: any body but a stream);
//! otherwise the `401` is returned. Concurrent requests share one token request (the provider's
//! cache), so a burst of calls, or a burst of `401`s for one token, costs one token request.
//!
//! It composes with the rest of the stack: put it after `reqwest-retry`'s middleware so that a retried
//! request gets the current token, and anywhere relative to `reqwest-tracing`'s.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use tokensmith_reqwest_middleware::AuthMiddleware;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::Probit);
//! let provider = tokensmith_probit::ProbitProvider::builder()
//!     .client_id("my-client")
//!     .client_secret("my-secret")
//! #   .client_id(demo.client_id).client_secret(demo.client_secret)
//! #   .base_url(sandbox.base_url(tokensmith_sandbox::Dialect::Probit))
//!     .build()?;
//! let client = ClientBuilder::new(reqwest::Client::new()).with(AuthMiddleware::new(provider.shared())).build();
//! let balance = "https://api.probit.com/api/exchange/v1/balance";
//! # let balance = sandbox.protected_url(tokensmith_sandbox::Dialect::Probit);
//! let response = client.get(balance).send().await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]

use async_trait::async_trait;
use http::{Extensions, StatusCode, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tokensmith_core::{AccessToken, SharedTokenProvider};

/// Puts the provider's token on every request; see the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    provider: SharedTokenProvider,
}

impl AuthMiddleware {
    /// A middleware that takes its tokens from `provider`.
    pub fn new(provider: SharedTokenProvider) -> Self {
        AuthMiddleware { provider }
    }

    async fn authorize(&self, request: &mut Request) -> reqwest_middleware::Result<AccessToken> {
        let token = self.provider.token().await.map_err(reqwest_middleware::Error::middleware)?;
        // `Bearer <token>`, marked sensitive so that no `Debug` of the request shows it.
        let value = token.header_value().map_err(reqwest_middleware::Error::middleware)?;
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(token)
    }
}

#[async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // Cloned before the token goes on, so that a replay gets the new token and nothing else.
        let replay = request.try_clone();
        let token = self.authorize(&mut request).await?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(mut again) = replay else { return Ok(response) };
        // The resource server refused this token: the provider drops it (if it is still the current
        // one) and the retry waits for one new token, however many requests were refused with it.
        self.provider.invalidate(&token);
        self.authorize(&mut again).await?;
        next.run(again, extensions).await
    }
}

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
