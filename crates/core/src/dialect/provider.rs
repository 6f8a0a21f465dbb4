//! [`Declared`] dialects and the [`Provider`] that speaks one.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use url::Url;

use super::Dialect;
use super::builder::Builder;
use crate::cache::{CachedProvider, ClientCredentialsSource};
use crate::error::Result;
use crate::provider::{SharedTokenProvider, TokenProvider};
use crate::request::{Grant, TokenRequest};
use crate::token::{AccessToken, Scopes};

/// A type that names a [`Dialect`]: the parameter of [`Provider`] and [`Builder`], so that
/// `ProbitProvider::builder()` knows its dialect with no value at hand. Usually an empty enum.
pub trait Declared: Send + Sync + 'static {
    /// The dialect.
    const DIALECT: Dialect;
}

/// A cached client-credentials token provider for the dialect `D`.
///
/// Cloning is cheap and clones share the cache. [`token`](Provider::token) returns the cached token
/// while it is fresh and fetches a new one (one request, however many callers wait) when it is due.
pub struct Provider<D> {
    pub(super) inner: CachedProvider<ClientCredentialsSource>,
    pub(super) dialect: PhantomData<fn() -> D>,
}

impl<D> Clone for Provider<D> {
    fn clone(&self) -> Self {
        Provider { inner: self.inner.clone(), dialect: PhantomData }
    }
}

impl<D: Declared> fmt::Debug for Provider<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider").field("dialect", &D::DIALECT.name).field("inner", &self.inner).finish()
    }
}

impl<D: Declared> Provider<D> {
    /// Starts configuring a provider (same as [`Builder::new`]).
    pub fn builder() -> Builder<D> {
        Builder::new()
    }

    /// A provider configured from the process environment; see [`Builder::from_env`].
    pub fn from_env() -> Result<Self> {
        Builder::from_env().build()
    }

    /// The exact request this provider sends for a token, with no I/O (for snapshot tests; its
    /// `Debug` and `Serialize` renderings redact the secret).
    pub fn token_request(&self) -> Result<TokenRequest> {
        let source = self.inner.source();
        source.client().build_request(&Grant::ClientCredentials, source.scopes())
    }

    /// The token URL requests go to.
    pub fn token_url(&self) -> &Url {
        self.inner.source().client().endpoint().token_url()
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.source().client().credentials().client_id()
    }

    /// The scopes requested (the granted ones are on each token: [`AccessToken::scopes`]).
    pub fn scopes(&self) -> &Scopes {
        self.inner.source().scopes()
    }

    /// The cache this provider is made of.
    pub fn cache(&self) -> &CachedProvider<ClientCredentialsSource> {
        &self.inner
    }

    /// A valid token: the cached one while it is fresh, read without a lock, an allocation or a
    /// boxed future (this inherent method is what `provider.token()` calls, also with the
    /// [`TokenProvider`] trait in scope); otherwise fetched, one request however many callers wait.
    pub fn token(&self) -> impl std::future::Future<Output = Result<AccessToken>> + Send + '_ {
        self.inner.token()
    }

    /// Wraps the provider in a cloneable [`SharedTokenProvider`] (for
    /// [`AuthorizedClient`](crate::AuthorizedClient) or the facade).
    pub fn shared(self) -> SharedTokenProvider {
        SharedTokenProvider::new(self)
    }
}

#[async_trait]
impl<D: Declared> TokenProvider for Provider<D> {
    async fn token(&self) -> Result<AccessToken> {
        self.inner.token().await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        self.inner.cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        self.inner.invalidate(token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        TokenProvider::unsaved(&self.inner)
    }
}
