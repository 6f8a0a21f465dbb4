//! The token cache: cheap cached reads, early refresh, single-flight fetches, back-off on failure.
//!
//! [`CachedProvider`] wraps a [`TokenSource`] (anything that can fetch a token) and implements
//! [`TokenProvider`]:
//!
//! - **Cached reads** ([`CachedProvider::cached_token`], [`CachedProvider::with_cached`]) load the
//!   current entry through `arc-swap` and compare two timestamps from the [`Clock`] (coarse
//!   monotonic and coarse wall clock, so that a token that expired while the machine slept is not
//!   served): no lock, no allocation. `with_cached` lends the token without cloning it (no write to
//!   memory shared between threads); `cached_token` clones it (one reference-count increment).
//! - **Early refresh** — see [`RefreshPolicy`]: a token is refreshed when a margin proportional to its
//!   lifetime remains, minus jitter.
//! - **Single flight**: however many callers need a token at once, one fetch runs (in its own task on
//!   the caller's Tokio runtime, so that a caller that gives up cannot cancel a refresh whose response
//!   would carry a rotated refresh token); everyone waits for its result. A rotated refresh token is
//!   therefore never sent twice. Whatever happens to the task (it panics, or its runtime shuts down
//!   before polling it), the flight ends with [`Error::Runtime`] and a back-off; a miss outside any
//!   Tokio runtime is [`Error::Runtime`] at once.
//! - **Failures**: while fetches fail, callers keep getting the still-valid token; once it has expired
//!   they get the error. A failed fetch starts an exponential back-off during which no new fetch is
//!   made; failures are never cached as tokens, and neither is a fetched token that is already
//!   expired (that is a failure too).
//! - **Invalidate**: reporting a rejected token drops it only if it is still current.
//! - **Store**: every new token set is saved in the [`TokenStore`] before it is handed out; the store
//!   is read before every fetch, and a set in it with a larger store version than the cached one
//!   (saved by an earlier run or another process) is adopted instead of fetching, or refreshed from.
//!   Recency is the store's version, never a comparison of expiry instants written by different
//!   hosts. A set that cannot be saved is still handed out, and saved again in the background (1 s,
//!   doubling to 60 s) until a save succeeds or a newer set replaces it: with a rotating refresh
//!   token it holds the only refresh token the provider still accepts. A store that does not
//!   coordinate and lost the newest set (its version went backwards) gets it written back.
//! - **Fleet coordination**: with a store that [coordinates](TokenStore::coordination) (Redis, a [`FileStore`](crate::FileStore)), a fetch
//!   first takes the store's refresh lock, so that across every process sharing the store one refresh
//!   of a key is in flight; the others wait (at most [`RefreshPolicy::lock_wait`] of elapsed time)
//!   for the token set it saves and adopt it. The lock's lease is renewed right before the request is
//!   sent (no request goes out on a lease that may have lapsed) and while it runs, and the new set is
//!   saved *fenced*, so that a process that lost its lock cannot overwrite a newer set; a fenced save
//!   that fails keeps the lock and is retried in the background. When the store is unreachable, a
//!   source that does not rotate its grant (client credentials) fetches for its process alone, with
//!   a warning; a rotating refresh token ([`TokenSource::rotates_grant`]) is never refreshed without
//!   the lock: the fetch fails with [`Error::Store`] and the still-valid token keeps being served.

mod entry;
mod fleet;
mod flight;
mod policy;
mod save;
mod source;
#[cfg(test)]
pub(crate) mod testkit;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::error::{BoxError, Error, Result};
use crate::provider::TokenProvider;
use crate::store::{MemoryStore, TokenStore};
use crate::token::AccessToken;

use entry::{Entry, millis};
use flight::State;
pub use policy::RefreshPolicy;
pub use source::{ClientCredentialsSource, ProviderSource, RefreshTokenSource, TokenSource};

struct Shared<S> {
    source: S,
    key: String,
    /// Read, and copied to `key`, when `key` holds nothing (see [`TokenSource::legacy_cache_key`]).
    legacy_key: Option<String>,
    legacy_checked: AtomicBool,
    current: ArcSwapOption<Entry>,
    state: Mutex<State>,
    /// Held around every save of a token set and the publication that follows, so that a
    /// background re-save never puts an older set over a newer one saved by this process.
    save_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    store: Arc<dyn TokenStore>,
}

/// A caching [`TokenProvider`] around a [`TokenSource`]: lock-free cached reads, early refresh
/// ([`RefreshPolicy`]), single-flight fetches, back-off on failure, invalidation, and a [`TokenStore`].
///
/// Cloning is cheap and clones share the cache.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tokensmith_core::{AccessToken, CachedProvider, ProviderSource, TokenProvider, provide_token_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith_core::Result<()> {
/// let fetches = Arc::new(AtomicUsize::new(0));
/// let counter = fetches.clone();
/// let source = provide_token_fn(move || {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async { Ok(AccessToken::builder("t").build()) }
/// });
/// let cached = CachedProvider::new(ProviderSource::new(source, "demo"));
/// cached.token().await?;
/// cached.token().await?;
/// assert_eq!(fetches.load(Ordering::SeqCst), 1);
/// # Ok(()) }
/// ```
pub struct CachedProvider<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for CachedProvider<S> {
    fn clone(&self) -> Self {
        CachedProvider { shared: self.shared.clone() }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedProvider<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.shared.current.load();
        f.debug_struct("CachedProvider")
            .field("source", &self.shared.source)
            .field("key", &self.shared.key)
            .field("cached", &current.as_ref().map(|e| &e.token))
            .field("policy", &self.shared.policy)
            .field("store", &self.shared.store)
            .finish()
    }
}

/// Configures a [`CachedProvider`].
pub struct CachedProviderBuilder<S> {
    source: S,
    key: Option<String>,
    legacy_key: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    policy: RefreshPolicy,
    store: Option<Arc<dyn TokenStore>>,
}

impl<S: fmt::Debug> fmt::Debug for CachedProviderBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProviderBuilder")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> CachedProviderBuilder<S> {
    /// The clock (default [`SystemClock`]; use [`TokioClock`](crate::TokioClock) with paused time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The refresh policy.
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The token store (default: a private [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The store key (default: the source's [`cache_key`](TokenSource::cache_key)).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// A key earlier versions stored this cache's token sets under: read, and copied to the key,
    /// when the key holds nothing, so that a change of key loses no stored grant (default: the
    /// source's [`legacy_cache_key`](TokenSource::legacy_cache_key) when no [`key`](Self::key) is set).
    pub fn legacy_key(mut self, key: impl Into<String>) -> Self {
        self.legacy_key = Some(key.into());
        self
    }

    /// Builds the cache. It starts empty; the store is read when a token is first needed.
    pub fn build(self) -> CachedProvider<S> {
        let legacy_key = match &self.key {
            Some(_) => self.legacy_key,
            None => self.legacy_key.or_else(|| self.source.legacy_cache_key()),
        };
        let key = self.key.unwrap_or_else(|| self.source.cache_key());
        CachedProvider {
            shared: Arc::new(Shared {
                source: self.source,
                legacy_key: legacy_key.filter(|legacy| *legacy != key),
                key,
                legacy_checked: AtomicBool::new(false),
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                save_lock: tokio::sync::Mutex::new(()),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                policy: self.policy,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            }),
        }
    }
}

impl<S: TokenSource> CachedProvider<S> {
    /// A cache around `source` with the defaults.
    pub fn new(source: S) -> Self {
        Self::builder(source).build()
    }

    /// Starts configuring a cache around `source`.
    pub fn builder(source: S) -> CachedProviderBuilder<S> {
        CachedProviderBuilder {
            source,
            key: None,
            legacy_key: None,
            clock: None,
            policy: RefreshPolicy::default(),
            store: None,
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// The store key of this cache's token sets.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Calls `f` with the cached token if it is fresh, without cloning it: the cheapest read, for hot
    /// paths that only need to look at the token (e.g. to format a header).
    #[inline]
    pub fn with_cached<R>(&self, f: impl FnOnce(&AccessToken) -> R) -> Option<R> {
        let guard = self.shared.current.load();
        let entry = guard.as_ref()?;
        entry.fresh(&*self.shared.clock).then(|| f(&entry.token))
    }

    /// The cached token if it is fresh (not yet due for refresh).
    ///
    /// No lock and no allocation: the token is cloned (a reference-count increment, shared by every
    /// clone of the token). For the hottest paths, [`with_cached`](Self::with_cached) lends it without
    /// even that write.
    #[inline]
    pub fn cached_token(&self) -> Option<AccessToken> {
        let guard = self.shared.current.load();
        let entry = guard.as_ref()?;
        entry.fresh(&*self.shared.clock).then(|| entry.token.clone())
    }

    /// Reports that `token` was rejected; it is dropped if it is still the current token, so that the
    /// next call fetches a new one. Its refresh token is kept for that fetch.
    pub fn invalidate(&self, token: &AccessToken) {
        let current = self.shared.current.load();
        if let Some(entry) = current.as_ref() {
            if entry.token.same_token(token) && entry.usable_until > Duration::ZERO {
                let _ = self.shared.current.compare_and_swap(&current, Some(Arc::new(entry.stale())));
                tracing::debug!(key = %self.shared.key, "cached token invalidated after a rejection");
            }
        }
    }

    /// Stops handing out the cached token and forgets failures, so the next call fetches. The store
    /// is kept, and so is the token's refresh token for that fetch; the same token read back from the
    /// store is not adopted again.
    pub fn clear(&self) {
        let current = self.shared.current.load();
        if let Some(entry) = current.as_ref() {
            // If a fetch published a new token meanwhile, that one stays.
            let _ = self.shared.current.compare_and_swap(&current, Some(Arc::new(entry.stale())));
        }
        self.shared.lock_state().reset();
    }

    /// Puts `token` in the cache and the store, e.g. after an authorization-code exchange.
    ///
    /// The set is cached whatever happens to the save, so that a grant whose code is already spent
    /// is never lost: when the save fails, the set is served from this cache, saved again in the
    /// background (as after any failed save), and the error ([`Error::Store`]) says so. Probe the
    /// store with [`check_store`](Self::check_store) before an authorization to fail before the code
    /// is spent instead.
    pub async fn insert(&self, token: AccessToken) -> Result<()> {
        let saved = {
            let _writing = self.shared.save_lock.lock().await;
            let base = self.shared.current.load().as_ref().and_then(|e| e.version);
            match self.shared.store.save_versioned(&self.shared.key, &token).await {
                Ok(version) => {
                    self.shared.publish(token, version, true);
                    Ok(())
                }
                Err(e) => {
                    self.shared.publish(token.clone(), base, false);
                    self.shared.save_later(token, None);
                    Err(e)
                }
            }
        };
        self.shared.lock_state().reset();
        saved.map_err(|e| {
            tracing::error!(key = %self.shared.key, error = %e, "new token set could not be saved; kept in memory and saved again in the background");
            Error::store(
                format!(
                    "the new token set could not be saved ({e}); this provider keeps it in memory, serves it, and saves it again in the background until the store accepts it: fix the store (its path, permissions, or server) before this process exits"
                ),
                Some(Arc::new(e) as BoxError),
            )
        })
    }

    /// Checks that the store can save token sets ([`TokenStore::probe`]): call it before sending a
    /// user to consent, since the code the consent yields is spent by the exchange.
    pub async fn check_store(&self) -> Result<()> {
        self.shared.store.probe().await
    }

    /// Whether dropping this handle loses nothing: no clone of it exists (no caller holds it, no
    /// fetch is in flight) and the store holds its current set. The [keyed
    /// manager](crate::manager::TokenManager) evicts only such entries, so that eviction never lets a
    /// second fetch of a key start beside one in flight.
    pub(crate) fn is_idle(&self) -> bool {
        Arc::strong_count(&self.shared) == 1 && self.unsaved().is_none()
    }

    /// The current token set if it is not yet saved in the store (a save failed and is being retried
    /// in the background), e.g. to write it somewhere safe before the process exits.
    pub fn unsaved(&self) -> Option<AccessToken> {
        let current = self.shared.current.load();
        current.as_ref().filter(|e| !e.saved).map(|e| e.token.clone())
    }
}

impl<S: TokenSource> Shared<S> {
    /// The state, also after a panic elsewhere while it was held (it is consistent at every point a
    /// panic could happen: a few plain fields).
    pub(super) fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn fresh(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| e.fresh(&*self.clock)).map(|e| e.token.clone())
    }

    pub(super) fn usable(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| e.usable(&*self.clock)).map(|e| e.token.clone())
    }

    /// Caches `token` as the current set: `version` is its store version (or, unsaved, the version
    /// of the set it was fetched from), `saved` whether the store holds it.
    pub(super) fn publish(&self, token: AccessToken, version: Option<u64>, saved: bool) {
        let now = self.clock.monotonic();
        let entry = Entry::new(token, &*self.clock, &self.policy, version, saved);
        tracing::debug!(
            key = %self.key,
            lifetime_s = entry.token.lifetime().as_secs(),
            refresh_in_ms = millis(entry.refresh_at.saturating_sub(now)),
            version,
            saved,
            "token cached"
        );
        self.current.store(Some(Arc::new(entry)));
    }

    /// Records that the store now holds `token` at `version`, if it is still the current set.
    pub(super) fn mark_saved(&self, token: &AccessToken, version: Option<u64>) {
        let current = self.current.load();
        if let Some(entry) = current.as_ref().filter(|e| e.token.same_token(token)) {
            let _ = self.current.compare_and_swap(&current, Some(Arc::new(entry.saved_at(version))));
        }
    }

    /// A fetched token, or an error if it is already expired or expires within the skew: such a
    /// token is never handed out, and the fetch counts as failed (so it backs off).
    pub(super) fn usable_or_error(&self, token: AccessToken) -> Result<AccessToken> {
        let remaining = token.expires_in(self.clock.system_time());
        let skew = self.policy.expiry_skew(token.lifetime().max(remaining));
        if remaining.is_zero() || remaining <= skew {
            return Err(Error::invalid_response(format!(
                "the token source returned a token that expires in {} ms, too soon to be used (a zero or negative `expires_in`, an expiry in the past, or a clock far off)",
                millis(remaining)
            )));
        }
        Ok(token)
    }
}

#[async_trait]
impl<S: TokenSource> TokenProvider for CachedProvider<S> {
    async fn token(&self) -> Result<AccessToken> {
        CachedProvider::token(self).await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        CachedProvider::cached_token(self)
    }

    fn invalidate(&self, token: &AccessToken) {
        CachedProvider::invalidate(self, token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        CachedProvider::unsaved(self).map(|token| (self.shared.key.clone(), token))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::testkit::{FlakyStore, Source, cache, exact, secret, token_for};
    use crate::error::Error;
    use crate::store::TokenStore;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn invalidate_drops_only_the_current_token_and_keeps_its_refresh_token() {
        let source = Source::new(S(300), true);
        let cache = cache(&source, None, exact());
        let first = cache.token().await.unwrap();
        cache.invalidate(&token_for(&source.0.clock, "someone-else", S(300)));
        assert!(cache.cached_token().is_some(), "another token's rejection changes nothing");
        cache.invalidate(&first);
        assert!(cache.cached_token().is_none());
        assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
        assert_eq!(*source.0.used.lock().unwrap(), ["refresh-1"], "refreshed from the dropped set");
        cache.invalidate(&first);
        assert_eq!(secret(&cache.cached_token().unwrap()), "token-2", "a stale rejection is ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn clear_forgets_the_back_off() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact().initial_backoff(S(60)));
        source.0.set_failing(true);
        assert!(cache.token().await.is_err());
        assert!(matches!(cache.token().await, Err(Error::BackingOff { .. })));
        source.0.set_failing(false);
        cache.clear();
        assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn insert_caches_even_when_the_save_fails_and_says_so() {
        let store = Arc::new(FlakyStore::default());
        let source = Source::new(S(300), true);
        let cache = cache(&source, Some(store.clone()), exact());
        cache.insert(token_for(&source.0.clock, "from-a-code", S(300))).await.unwrap();
        assert_eq!(secret(&cache.token().await.unwrap()), "from-a-code");
        store.fail_saves.store(true, Ordering::SeqCst);
        let err = cache.insert(token_for(&source.0.clock, "second-code", S(300))).await.unwrap_err();
        assert!(matches!(err, Error::Store { .. }) && !err.to_string().contains("second-code"), "{err}");
        assert_eq!(secret(&cache.cached_token().unwrap()), "second-code", "served anyway");
        assert_eq!(cache.unsaved().map(|t| secret(&t)).as_deref(), Some("second-code"));
        assert_eq!(source.0.fetches(), 0);
        store.fail_saves.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(cache.unsaved().is_none());
        assert_eq!(store.load("test-key").await.unwrap().map(|t| secret(&t)).as_deref(), Some("second-code"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact());
        let debug = format!("{cache:?}");
        assert!(debug.contains("test-key") && debug.contains("CachedProvider"), "{debug}");
    }
}
