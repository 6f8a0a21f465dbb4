//! A token for programs that are not async (cargo feature `blocking`): [`BlockingProvider`] runs any
//! provider on a small runtime of its own, so a synchronous program writes no async code.
//!
//! ```
//! # let sandbox_runtime = tokio::runtime::Runtime::new().unwrap();
//! # let sandbox = sandbox_runtime.block_on(tokensmith_sandbox::Sandbox::start()).unwrap();
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::Probit);
//! use tokensmith::blocking::BlockingProvider;
//! use tokensmith::config::{Config, Secret};
//!
//! let mut config = Config::default();
//! config.provider = Some("probit".into());
//! config.client_id = Some("my-client".into());
//! config.client_secret = Some(Secret::Env("PROBIT_SECRET".into()));
//! # config.client_id = Some(demo.client_id.clone());
//! # config.client_secret = Some(Secret::value(demo.client_secret.clone()));
//! # config.base_url = Some(sandbox.base_url(tokensmith_sandbox::Dialect::Probit));
//! let provider = BlockingProvider::from_config(&config)?;
//! let token = provider.token()?; // blocks until a token is at hand
//! assert_eq!(token.token_type(), "Bearer");
//! # Ok::<(), tokensmith::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use tokensmith_core::{AccessToken, Error, Result, SharedTokenProvider, TokenProvider as _};

use crate::config::Config;

/// A provider for synchronous code: [`token`](BlockingProvider::token) blocks the calling thread until
/// a token is at hand. It owns a one-worker Tokio runtime on which the provider fetches, refreshes
/// and saves in the background; everything a provider guarantees (one request for many callers,
/// early refresh, serve-valid-on-failure) holds as in async code.
///
/// Cloning is cheap; clones share the runtime and the cache. It must not be used from inside an async
/// runtime (use the [`SharedTokenProvider`] there): [`token`](BlockingProvider::token) then returns
/// [`Error::Runtime`] instead of blocking a runtime thread. Dropping the last clone stops the runtime
/// without waiting, also from async code.
#[derive(Clone)]
pub struct BlockingProvider {
    inner: Arc<Inner>,
}

struct Inner {
    // Declared first: dropped before the runtime that its background tasks run on.
    provider: SharedTokenProvider,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so it is safe wherever the last clone is dropped.
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for BlockingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingProvider").field("provider", &self.inner.provider).finish_non_exhaustive()
    }
}

impl BlockingProvider {
    /// The provider `config` describes (as [`from_config`](crate::from_config) builds it), with a
    /// runtime of its own.
    ///
    /// # Errors
    ///
    /// What [`from_config`](crate::from_config) reports, or [`Error::Runtime`] when the runtime
    /// cannot be started.
    pub fn from_config(config: &Config) -> Result<Self> {
        let runtime = runtime()?;
        // Built inside the runtime, for providers that look for one while being built.
        let provider = {
            let _entered = runtime.enter();
            crate::from_config(config)?
        };
        Ok(Self::with_runtime(provider, runtime))
    }

    /// The provider [`from_env`](crate::from_env) describes (the `TOKENSMITH_*` variables and the
    /// file `TOKENSMITH_CONFIG` names), with a runtime of its own.
    ///
    /// # Errors
    ///
    /// As [`BlockingProvider::from_config`].
    pub fn from_env() -> Result<Self> {
        Self::from_config(&Config::load()?)
    }

    /// Any provider (a provider crate's, your own), with a runtime of its own.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] when the runtime cannot be started.
    pub fn new(provider: SharedTokenProvider) -> Result<Self> {
        Ok(Self::with_runtime(provider, runtime()?))
    }

    fn with_runtime(provider: SharedTokenProvider, runtime: tokio::runtime::Runtime) -> Self {
        BlockingProvider { inner: Arc::new(Inner { provider, runtime: Some(runtime) }) }
    }

    /// A valid token: the cached one while it is fresh (no waiting), else fetched, one request however
    /// many threads wait.
    ///
    /// # Errors
    ///
    /// What the provider reports; [`Error::Runtime`] when called from inside an async runtime.
    pub fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.inner.provider.cached_token() {
            return Ok(token);
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime {
                message: "BlockingProvider::token was called from async code, where blocking would stall the \
                          runtime; await SharedTokenProvider::token there (BlockingProvider::shared gives it)"
                    .to_owned(),
            });
        }
        match &self.inner.runtime {
            Some(runtime) => runtime.block_on(self.inner.provider.token()),
            None => Err(Error::Runtime { message: "the provider's runtime has shut down".to_owned() }),
        }
    }

    /// The cached token if it is fresh; never blocks.
    pub fn cached_token(&self) -> Option<AccessToken> {
        self.inner.provider.cached_token()
    }

    /// Reports that a resource server rejected `token` (an HTTP 401): the next
    /// [`token`](BlockingProvider::token) fetches a new one.
    pub fn invalidate(&self, token: &AccessToken) {
        self.inner.provider.invalidate(token)
    }

    /// The provider behind it, for async code in the same program.
    pub fn shared(&self) -> &SharedTokenProvider {
        &self.inner.provider
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tokensmith-blocking")
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime { message: format!("could not start a runtime for the blocking provider ({e})") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::provide_token_fn;

    fn counting() -> (SharedTokenProvider, Arc<std::sync::atomic::AtomicUsize>) {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let provider = SharedTokenProvider::new(provide_token_fn(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok(AccessToken::builder("t").build()) }
        }));
        (provider, calls)
    }

    #[test]
    fn blocks_until_a_token_is_at_hand_from_any_thread() {
        let (provider, calls) = counting();
        let blocking = BlockingProvider::new(provider).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = blocking.clone();
                std::thread::spawn(move || b.token().unwrap().secret().expose_secret().to_owned())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), "t");
        }
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "an uncached closure provider fetches each time"
        );
    }

    #[tokio::test]
    async fn inside_async_code_it_refuses_instead_of_blocking_and_drops_cleanly() {
        let (provider, _) = counting();
        let blocking = tokio::task::spawn_blocking(move || BlockingProvider::new(provider).unwrap()).await.unwrap();
        let err = blocking.token().unwrap_err();
        assert!(matches!(err, Error::Runtime { .. }), "{err}");
        assert!(err.to_string().contains("SharedTokenProvider"), "{err}");
        drop(blocking); // would panic if the runtime were shut down by blocking
    }

    use tokensmith_core::secrecy::ExposeSecret as _;
}
