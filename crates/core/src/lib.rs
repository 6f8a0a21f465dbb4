//! The core of tokensmith: the traits and machinery every provider stands on.
//!
//! Use this crate directly when you write your own provider or need the building blocks; services
//! that just need a token depend on one provider crate (`tokensmith-probit`, ...) or on the
//! `tokensmith` facade.
//!
//! - [`TokenProvider`]: "give me a valid token"; [`SharedTokenProvider`] is the cloneable handle,
//!   [`provide_token_fn`] makes one from a closure.
//! - [`TokenEndpoint`] and [`TokenClient`]: a provider's dialect, and the client that speaks it with
//!   retries ([`RetryPolicy`]). A dialect declared as data is a [`dialect::Dialect`].
//! - [`request::TokenRequest`]: one token request as a plain value, snapshot-testable with secrets
//!   redacted; [`style::CredentialStyle`] says how client credentials go on it.
//! - [`http::Transport`]: the HTTP layer (`http::ReqwestTransport` by default).
//! - [`parse`]: lenient, strict-where-it-matters token response parsing.
//! - [`CachedProvider`]: the cache with early refresh, single-flight fetches and back-off; its
//!   [`TokenStore`] keeps token sets ([`MemoryStore`] by default). What configures and feeds the
//!   cache ([`cache::RefreshPolicy`], [`cache::TokenSource`] and its implementations) is in [`cache`];
//!   what store implementations name ([`store::Coordinator`], [`store::StoredToken`],
//!   [`store::store_key`], ...) and the file store are in [`store`]; the injectable time source
//!   ([`clock::Clock`], [`clock::TokioClock`] for tests) is in [`clock`].
//! - `AuthorizedClient`: puts the token on resource requests.
//! - [`flows`]: the authorization code grant with PKCE (and its loopback listener), server metadata
//!   discovery (RFC 8414), the device authorization grant (RFC 8628) and token revocation (RFC 7009),
//!   for any RFC-compliant server.
//! - [`manager::TokenManager`]: one cached token per key, for thousands of users or clients.
//! - [`Error`]: one error type, never holding a secret; [`error`] has what it carries.
//!
//! Every public item has one path: the root holds what most code names, each module what belongs to
//! one topic. `tests/public_surface.rs` lists the root's names, so a change to them shows in review.
//!
//! # Example
//!
//! A client-credentials provider for an RFC 6749 endpoint, cached:
//!
//! ```no_run
//! use tokensmith_core::cache::ClientCredentialsSource;
//! use tokensmith_core::{CachedProvider, ClientCredentials, Scopes, TokenClient, TokenEndpoint};
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
//! - `reqwest` (default): `http::ReqwestTransport`, the transport a [`TokenClient`] uses unless given
//!   another, and `AuthorizedClient`. Without it no part of reqwest is compiled: a crate that only
//!   implements the traits (a store, a tower layer) depends on `tokensmith-core` with
//!   `default-features = false`.
//! - TLS, passed through to reqwest (and by every provider crate and the facade): `rustls` (default;
//!   rustls with aws-lc-rs), `rustls-ring` (rustls with ring: no aws-lc-sys to build, a lighter
//!   build), `native-tls` (the platform's library; OpenSSL headers on Linux). `http2` (default)
//!   negotiates HTTP/2; without it, HTTP/1.1 only. A proxy, extra roots or a client certificate go on a
//!   `reqwest::ClientBuilder` given to `ReqwestTransportBuilder::build_from`, which keeps the token
//!   rules (no redirects, body cap, HTTPS).
//! - `file-store` (default): `store::FileStore`, token sets in a file shared between processes.
//! - `flows` (default): the `flows` module, the user-facing flows of any RFC server (authorization
//!   code with PKCE, the device grant, discovery, revocation). A service that only gets
//!   client-credentials or refresh-token grants can leave it out and compile less. `loopback` adds
//!   `flows::LoopbackListener` (the authorization callback on 127.0.0.1) and implies `flows`.
//! - `testing`: `http::MockTransport`, a `mockall` mock of [`http::Transport`], and the helpers of
//!   `testing`, for your own tests.
//! - `encryption`: `store::StoreEncryption`, AES-256-GCM encryption of stored token sets, e.g.
//!   `store::FileStore::with_encryption`.
//! - `jwt`: JWT client authentication (RFC 7523 §2.2), the `private_key_jwt` and `client_secret_jwt`
//!   credential styles `style::PrivateKeyJwt` (RS256, ES256) and `style::ClientSecretJwt` (HS256);
//!   signs with `jsonwebtoken` on aws-lc-rs.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Implementation modules: private. What they hold that users need is re-exported below, at the root,
// or is reached through one of the public modules that follow.
#[cfg(feature = "reqwest")]
mod authorized;
mod backoff;
mod endpoint;
mod failure;
#[cfg(feature = "file-store")]
mod file_store;
#[cfg(feature = "jwt")]
mod jwt;
mod options;
mod provider;
mod retry;
#[cfg(feature = "encryption")]
mod seal;
mod token;

// Public modules: everything of one topic, none of it also at the root.
pub mod cache;
pub mod clock;
pub mod dialect;
pub mod error;
#[cfg(feature = "flows")]
#[cfg_attr(docsrs, doc(cfg(feature = "flows")))]
pub mod flows;
pub mod http;
pub mod manager;
pub mod parse;
pub mod request;
pub mod store;
pub mod style;
#[doc(hidden)]
pub mod support;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use authorized::AuthorizedClient;
pub use cache::cached::CachedProvider;
pub use endpoint::{TokenClient, TokenClientBuilder, TokenEndpoint};
pub use failure::{Error, Result};
pub use provider::{ProvideTokenFn, SharedTokenProvider, TokenProvider, provide_token_fn};
pub use retry::RetryPolicy;
pub use store::memory::MemoryStore;
pub use store::token_store::TokenStore;
pub use token::{AccessToken, AccessTokenBuilder, ClientCredentials, RefreshToken, Scopes};

/// Re-exported so that implementing [`TokenProvider`], [`TokenStore`] or [`http::Transport`] needs
/// no `async-trait` line in your own `Cargo.toml`: write `#[tokensmith_core::async_trait::async_trait]`.
pub use async_trait;
/// Re-exported so that users need not name `secrecy` in their own `Cargo.toml`.
pub use secrecy;

// The README's sample is compiled as a doctest, so that it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
