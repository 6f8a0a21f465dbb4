//! The core of tokensmith: the traits and machinery every provider stands on.
//!
//! Use this crate directly when you write your own provider or need the building blocks; services
//! that just need a token depend on one provider crate (`tokensmith-probit`, ...) or on the
//! `tokensmith` facade.
//!
//! - [`TokenProvider`]: "give me a valid token"; [`SharedTokenProvider`] is the cloneable handle,
//!   [`provide_token_fn`] makes one from a closure.
//! - [`CredentialStyle`]: how client credentials go on a request ([`style`] has the built-ins).
//! - [`TokenRequest`]: one token request as a plain value, snapshot-testable with secrets redacted.
//! - [`TokenEndpoint`] and [`TokenClient`]: a provider's dialect, and the client that speaks it with
//!   retries ([`RetryPolicy`]).
//! - [`Transport`]: the HTTP layer ([`http::ReqwestTransport`] by default).
//! - [`parse`]: lenient, strict-where-it-matters token response parsing.
//! - [`CachedProvider`]: the cache with early refresh, single-flight fetches and back-off; its
//!   [`TokenStore`] keeps token sets.
//! - [`AuthorizedClient`]: puts the token on resource requests.
//! - [`Error`]: one error type, never holding a secret.
//!
//! # Example
//!
//! A client-credentials provider for an RFC 6749 endpoint, cached:
//!
//! ```no_run
//! use tokensmith_core::{CachedProvider, ClientCredentials, ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
//!
//! # async fn run() -> tokensmith_core::Result<()> {
//! let endpoint = TokenEndpoint::new("https://auth.example.com/oauth/token".parse().unwrap());
//! let client = TokenClient::builder("example", endpoint, ClientCredentials::new("id", "secret")).build()?;
//! let provider = CachedProvider::new(ClientCredentialsSource::new(client, Scopes::parse("read")));
//! let token = provider.token().await?;
//! println!("expires at {:?}", token.expires_at());
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! - `testing`: `MockTransport`, a `mockall` mock of [`Transport`], for your own tests.
//! - `encryption`: `StoreEncryption` (module `seal`), AES-256-GCM encryption of stored token sets,
//!   e.g. `FileStore::with_encryption`.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorized;
mod backoff;
mod cache;
pub mod clock;
pub mod dialect;
mod endpoint;
pub mod error;
mod file_store;
pub mod http;
pub mod options;
pub mod parse;
mod provider;
pub mod request;
mod retry;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub mod seal;
mod store;
pub mod style;
#[cfg(feature = "testing")]
pub mod testing;
mod token;

pub use authorized::AuthorizedClient;
pub use cache::{
    CachedProvider, CachedProviderBuilder, ClientCredentialsSource, ProviderSource, RefreshPolicy, RefreshTokenSource,
    TokenSource,
};
pub use clock::{Clock, SystemClock, TokioClock};
pub use endpoint::{ErrorMapper, TokenClient, TokenClientBuilder, TokenEndpoint};
pub use error::{
    CallbackError, Error, HttpError, OAuthError, OAuthErrorCode, Result, TransportError, TransportErrorKind,
};
pub use file_store::FileStore;
#[cfg(feature = "testing")]
pub use http::MockTransport;
pub use http::{HttpResponse, ReqwestTransport, Transport};
pub use provider::{ProvideTokenFn, SharedTokenProvider, TokenProvider, provide_token_fn};
pub use request::{BodyFormat, Grant, TokenRequest};
pub use retry::RetryPolicy;
#[cfg(feature = "encryption")]
pub use seal::StoreEncryption;
pub use store::{Coordinator, LockGuard, MemoryStore, RefreshLock, StoredToken, TokenStore, Versioned, store_key};
pub use style::CredentialStyle;
pub use token::{AccessToken, AccessTokenBuilder, ClientCredentials, RefreshToken, Scopes, constant_time_eq};

/// Re-exported so that users need not name `secrecy` in their own `Cargo.toml`.
pub use secrecy;
