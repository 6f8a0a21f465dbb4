//! WhiteBIT OAuth 2.0 for tokensmith: the authorization code flow (with `state`, and PKCE for the
//! partner "Fast API Key" flow), rotating refresh tokens kept in a [`TokenStore`], and a loopback
//! listener for CLIs. It implements seed 003 (WhiteBIT's published OAuth API documentation); the
//! [`tokensmith`](https://docs.rs/tokensmith) facade builds it from configuration.
//!
//! Use it when your application acts on behalf of a WhiteBIT user. The flow:
//!
//! 1. [`WhitebitProvider::authorize`] gives a [`PendingAuthorization`]: the URL to send the user to,
//!    and the `state` (and PKCE verifier) to keep until the callback.
//! 2. WhiteBIT redirects the user back to your redirect URI (a web handler, or a
//!    [`LoopbackListener`] for a CLI) with `code` and `state`.
//! 3. [`WhitebitProvider::complete`] verifies the callback (state in constant time, once only,
//!    `error=` as [`CallbackError::Denied`](tokensmith_core::error::CallbackError::Denied)), exchanges the
//!    code and saves the tokens in the store.
//! 4. From then on the provider is a [`TokenProvider`]: `token()` hands out the cached access token
//!    and refreshes it early with the refresh token (one refresh at a time; the rotated refresh token
//!    is saved before the new access token is handed out). When the refresh token has expired (600 s)
//!    or is rejected, it fails with [`Error::ReauthorizationRequired`](tokensmith_core::Error::ReauthorizationRequired).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokensmith_core::{store::FileStore, TokenProvider};
//! use tokensmith_whitebit::{LoopbackListener, WhitebitProvider};
//!
//! # async fn run() -> tokensmith_core::Result<()> {
//! let listener = LoopbackListener::bind(8765)?;
//! let provider = WhitebitProvider::builder()
//!     .client_id("my-client")
//!     .client_secret("my-secret")
//!     .redirect_uri(&listener.redirect_uri())
//!     .store(Arc::new(FileStore::new("whitebit-tokens.json")))
//!     .build()?;
//!
//! let pending = provider.authorize();
//! println!("open {} in your browser", pending.url());
//! let callback = listener.wait_for(&pending, Duration::from_secs(300)).await?;
//! provider.complete(&pending, &callback).await?;
//!
//! // Later, or in the next run of the program (the store keeps the refresh token):
//! let token = provider.token().await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! # The dialect
//!
//! | | WhiteBIT | RFC 6749 |
//! | --- | --- | --- |
//! | authorize | `GET {base}/auth/login?clientId=..&state=..` | `response_type=code&client_id=..` |
//! | scopes | fixed when the client is set up; none in the URL | `scope=` |
//! | exchange | `POST {base}/oauth2/token`, form `client_id`, `client_secret`, `code` | adds `grant_type=authorization_code` |
//! | refresh | `POST {base}/oauth2/refresh_token`, form `client_id`, `client_secret`, `token` | `grant_type=refresh_token&refresh_token=..` at the token URL |
//! | response | `{"data":{"access_token",..,"scope":"a,b"}}` | top-level fields, space-separated scope |
//! | lifetimes | access 300 s, refresh 600 s and rotated on every refresh, at most 1 refresh/s | — |
//! | errors | `401 {"data":{"message":[..]}}`, `422 {"errors":{..}}`, `400 {"data":{"token":[..]}}` | `{"error":..}` |
//! | PKCE ("Fast API Key") | `redirect_uri`, `code_challenge`, `code_challenge_method=S256` in the URL, `code_verifier` in the exchange; a 4 h token, no refresh token | RFC 7636 |
//!
//! Choices made here:
//! - The authorization request, the callback check and the loopback listener are core's
//!   ([`tokensmith_core::flows`]), given WhiteBIT's differences as data: no `response_type`,
//!   `clientId`, the `/auth/login` path, and no `redirect_uri` in the exchange.
//! - Requests go through core's [`TokenEndpoint`](tokensmith_core::TokenEndpoint): the refresh's
//!   `token=` is core's refresh-token parameter renamed, not separate refresh code; no `grant_type`.
//! - `400 {"data":{"token":[..]}}` on a refresh or exchange becomes `ReauthorizationRequired`.
//! - A `429` on refresh is retried after its `Retry-After` by core's retry policy.
//! - The exchange sends no `redirect_uri` (WhiteBIT's documentation does not list it), in the PKCE
//!   flow too, where only `code_verifier` is added.
//! - A response without `expires_in` is taken to live 300 s.
//! - The store key is [`store_key`](tokensmith_core::store::store_key) of `whitebit`, the token URL, the
//!   client id and `refresh_token`, so two WhiteBIT hosts never share a grant; a set stored by
//!   earlier versions under `whitebit/{client_id}/{base_url}` is still found (and copied).
//!
//! # Many users
//!
//! A service acting for each of its users holds one token set per user: build a
//! [`TokenManager`](tokensmith_core::manager::TokenManager) on
//! [`WhitebitProvider::user_source`], give it each user's set from
//! [`WhitebitProvider::redeem`] (the code exchange, without this provider's own cache) with
//! `insert(&user, token)`, and ask it for `token(&user)`. With a Redis store every replica serves
//! every user and each user's rotating refresh token is sent once. The guide: `docs/many-users.md`.
//!
//! # Environment
//!
//! [`WhitebitBuilder::from_env`] reads `TOKENSMITH_WHITEBIT_BASE_URL`, `_CLIENT_ID`, `_CLIENT_SECRET`,
//! `_REDIRECT_URI`, `_STORE` (a file path for a [`FileStore`](tokensmith_core::store::FileStore)) and
//! `_ALLOW_INSECURE_HTTP`.
//!
//! # Feature flags
//!
//! - `loopback` (default): [`LoopbackListener`] (tokensmith-core's `loopback`), which needs tokio's
//!   `net` and `io-util`.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod provider;
mod scope;

// The flow itself lives in tokensmith-core (`tokensmith_core::flows`), shared by every dialect; these
// are the same types under the names this crate has always had.
pub use provider::{
    ACCESS_TOKEN_LIFETIME, DEFAULT_BASE_URL, ENV_PREFIX, EU_BASE_URL, REFRESH_TOKEN_LIFETIME, UserRefresh,
    WhitebitBuilder, WhitebitProvider,
};
pub use scope::Scope;
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use tokensmith_core::flows::LoopbackListener;
pub use tokensmith_core::flows::{AuthorizationCode, PendingAuthorization, pkce_challenge};

#[doc(no_inline)]
pub use tokensmith_core::{TokenProvider, TokenStore};

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
