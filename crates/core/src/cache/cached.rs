//! [`CachedProvider`] and its builder: the cache's state and its read path.

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

use super::entry::{Entry, millis};
use super::flight::State;
use super::policy::RefreshPolicy;
use super::source::TokenSource;

/// The cache's state. The source is the last field, so that `Shared<S>` unsizes to [`Erased`]: the
/// fetch path (store, fleet, flight) is written against `Erased` and compiled once, whatever the
/// number of source types a program caches (only the read path is generic).
pub(super) struct Shared<S: ?Sized> {
    pub(super) key: String,
    /// Read, and copied to `key`, when `key` holds nothing (see [`TokenSource::legacy_cache_key`]).
    pub(super) legacy_key: Option<String>,
    pub(super) legacy_checked: AtomicBool,
    pub(super) current: ArcSwapOption<Entry>,
    pub(super) state: Mutex<State>,
    /// Held around every save of a token set and the publication that follows, so that a
    /// background re-save never puts an older set over a newer one saved by this process.
    pub(super) save_lock: tokio::sync::Mutex<()>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) policy: RefreshPolicy,
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) source: S,
}

/// [`Shared`] with its source type erased: what the fetch path runs on.
pub(super) type Erased = Shared<dyn TokenSource>;

/// A caching [`TokenProvider`] around a [`TokenSource`]: lock-free cached reads, early refresh
/// ([`RefreshPolicy`]), single-flight fetches, back-off on failure, invalidation, and a [`TokenStore`].
///
/// Cloning is cheap and clones share the cache.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tokensmith_core::{AccessToken, CachedProvider, cache::ProviderSource, TokenProvider, provide_token_fn};
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
    pub(super) shared: Arc<Shared<S>>,
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
    /// The clock (default [`SystemClock`]; use [`TokioClock`](crate::clock::TokioClock) with paused time).
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

    /// [`invalidate`](Self::invalidate) for a cache that may hold nothing yet (a keyed manager's
    /// entry that was evicted): `token` is remembered as stale, so the same set read back from the
    /// store is not served again and the next call fetches with its refresh token.
    pub(crate) fn invalidate_unloaded(&self, token: &AccessToken) {
        let current = self.shared.current.load();
        if current.is_some() {
            return self.invalidate(token);
        }
        let stale = Entry::new(token.clone(), &*self.shared.clock, &self.shared.policy, None, true).stale();
        let _ = self.shared.current.compare_and_swap(&current, Some(Arc::new(stale)));
        tracing::debug!(key = %self.shared.key, "token invalidated after a rejection before it was loaded");
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
        let shared: Arc<Erased> = self.shared.clone();
        shared.insert(token).await
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

impl<S: TokenSource + ?Sized> Shared<S> {
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

impl Erased {
    /// [`CachedProvider::insert`].
    pub(super) async fn insert(self: &Arc<Self>, token: AccessToken) -> Result<()> {
        let saved = {
            let _writing = self.save_lock.lock().await;
            let base = self.current.load().as_ref().and_then(|e| e.version);
            match self.store.save_versioned(&self.key, &token).await {
                Ok(version) => {
                    self.publish(token, version, true);
                    Ok(())
                }
                Err(e) => {
                    self.publish(token.clone(), base, false);
                    self.save_later(token, None);
                    Err(e)
                }
            }
        };
        self.lock_state().reset();
        saved.map_err(|e| {
            tracing::error!(key = %self.key, error = %e, "new token set could not be saved; kept in memory and saved again in the background");
            Error::store(
                format!(
                    "the new token set could not be saved ({e}); this provider keeps it in memory, serves it, and saves it again in the background until the store accepts it: fix the store (its path, permissions, or server) before this process exits"
                ),
                Some(Arc::new(e) as BoxError),
            )
        })
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
