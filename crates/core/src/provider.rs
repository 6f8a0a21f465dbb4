//! [`TokenProvider`]: "give me a valid token".

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::token::AccessToken;

/// Gives out valid access tokens.
///
/// Every provider crate implements it; the facade hands out a [`SharedTokenProvider`]; the cache
/// ([`CachedProvider`](crate::CachedProvider)) implements it around any token source.
///
/// # Contract
/// - [`token`](TokenProvider::token) returns a token that is not expired at the time of return, or an
///   error. It may fetch from the network; concurrent callers should not each cause a request (the
///   cache guarantees one request for any number of concurrent callers).
/// - [`cached_token`](TokenProvider::cached_token) never blocks and never does I/O: it returns a token
///   only if one is at hand and fresh. The default returns `None`.
/// - [`invalidate`](TokenProvider::invalidate) reports that a resource server rejected `token` (an HTTP
///   401). A provider that caches drops the token only if it is still the current one, so a burst of
///   401s for the same token causes one new fetch. The default does nothing.
/// - Implementations are `Send + Sync` and cheap to share behind an `Arc`; `Debug` never shows a secret.
///
/// # Implementing your own
///
/// ```
/// use async_trait::async_trait;
/// use tokensmith_core::{AccessToken, Result, SharedTokenProvider, TokenProvider};
///
/// /// Reads a token that another process keeps fresh in an environment variable.
/// #[derive(Debug)]
/// struct FromEnv;
///
/// #[async_trait]
/// impl TokenProvider for FromEnv {
///     async fn token(&self) -> Result<AccessToken> {
///         let value = std::env::var("MY_TOKEN").map_err(|_| {
///             tokensmith_core::Error::config("MY_TOKEN", "the variable is not set; export it")
///         })?;
///         Ok(AccessToken::builder(value).build())
///     }
/// }
///
/// # async fn run() -> Result<()> {
/// let provider = SharedTokenProvider::new(FromEnv);
/// let token = provider.token().await?;
/// # let _ = token; Ok(()) }
/// ```
#[async_trait]
pub trait TokenProvider: Send + Sync + fmt::Debug + 'static {
    /// Returns a valid access token, fetching one if needed.
    async fn token(&self) -> Result<AccessToken>;

    /// Returns a fresh token if one is at hand, without blocking or I/O.
    fn cached_token(&self) -> Option<AccessToken> {
        None
    }

    /// Reports that a resource server rejected `token`.
    fn invalidate(&self, token: &AccessToken) {
        let _ = token;
    }

    /// The current token set and its store key if the provider's token store does not hold it yet
    /// (a save failed and is being retried in the background), so that a program about to exit can
    /// write it somewhere safe instead of losing a rotated refresh token. Default: `None`.
    fn unsaved(&self) -> Option<(String, AccessToken)> {
        None
    }
}

#[async_trait]
impl<T: TokenProvider + ?Sized> TokenProvider for Arc<T> {
    async fn token(&self) -> Result<AccessToken> {
        (**self).token().await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        (**self).cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        (**self).invalidate(token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        (**self).unsaved()
    }
}

#[async_trait]
impl<T: TokenProvider + ?Sized> TokenProvider for Box<T> {
    async fn token(&self) -> Result<AccessToken> {
        (**self).token().await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        (**self).cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        (**self).invalidate(token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        (**self).unsaved()
    }
}

/// A cloneable, shareable handle to any [`TokenProvider`].
///
/// Its [`token`](SharedTokenProvider::token) tries the provider's synchronous cached path first, so
/// a cached read does not allocate a boxed future.
#[derive(Clone)]
pub struct SharedTokenProvider(Arc<dyn TokenProvider>);

impl SharedTokenProvider {
    /// Wraps a provider.
    pub fn new(provider: impl TokenProvider) -> Self {
        SharedTokenProvider(Arc::new(provider))
    }

    /// Returns a valid token: the cached one if fresh, else whatever the provider fetches.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.0.cached_token() {
            return Ok(token);
        }
        self.0.token().await
    }

    /// Reports that a resource server rejected `token`.
    pub fn invalidate(&self, token: &AccessToken) {
        self.0.invalidate(token)
    }

    /// The provider behind the handle.
    pub fn as_dyn(&self) -> &dyn TokenProvider {
        self.0.as_ref()
    }
}

impl fmt::Debug for SharedTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedTokenProvider").field(&self.0).finish()
    }
}

impl From<Arc<dyn TokenProvider>> for SharedTokenProvider {
    fn from(provider: Arc<dyn TokenProvider>) -> Self {
        SharedTokenProvider(provider)
    }
}

#[async_trait]
impl TokenProvider for SharedTokenProvider {
    async fn token(&self) -> Result<AccessToken> {
        SharedTokenProvider::token(self).await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        self.0.cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        self.0.invalidate(token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        self.0.unsaved()
    }
}

/// A provider made from an async closure; see [`provide_token_fn`].
pub struct ProvideTokenFn<F> {
    f: F,
}

impl<F> fmt::Debug for ProvideTokenFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProvideTokenFn")
    }
}

/// Makes a [`TokenProvider`] from an async closure. Wrap it in a
/// [`CachedProvider`](crate::CachedProvider) to cache what it returns.
///
/// ```
/// use tokensmith_core::{AccessToken, SharedTokenProvider, provide_token_fn};
///
/// # async fn run() -> tokensmith_core::Result<()> {
/// let provider = SharedTokenProvider::new(provide_token_fn(|| async {
///     Ok(AccessToken::builder("from-somewhere").build())
/// }));
/// assert_eq!(provider.token().await?.token_type(), "Bearer");
/// # Ok(()) }
/// ```
pub fn provide_token_fn<F, Fut>(f: F) -> ProvideTokenFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken>> + Send + 'static,
{
    ProvideTokenFn { f }
}

#[async_trait]
impl<F, Fut> TokenProvider for ProvideTokenFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken>> + Send + 'static,
{
    async fn token(&self) -> Result<AccessToken> {
        (self.f)().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_sync() {
        assert_send_sync::<SharedTokenProvider>();
        assert_send_sync::<Arc<dyn TokenProvider>>();
    }

    #[tokio::test]
    async fn closure_provider_through_every_wrapper() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let provider = provide_token_fn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(AccessToken::builder("t").build()) }
        });
        let boxed: Box<dyn TokenProvider> = Box::new(provider);
        let arc: Arc<dyn TokenProvider> = Arc::new(boxed);
        let shared = SharedTokenProvider::from(arc.clone());
        shared.token().await.unwrap();
        arc.token().await.unwrap();
        shared.clone().token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(shared.cached_token().is_none());
        assert!(format!("{shared:?}").contains("ProvideTokenFn"));
    }
}
