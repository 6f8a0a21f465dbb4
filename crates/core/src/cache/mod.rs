//! The token cache: cheap cached reads, early refresh, single-flight fetches, back-off on failure.
//!
//! [`CachedProvider`] is at the crate root; this module has what configures
//! it and feeds it: [`CachedProviderBuilder`], [`RefreshPolicy`], and the [`TokenSource`] trait with
//! its implementations ([`ClientCredentialsSource`], [`RefreshTokenSource`], [`ProviderSource`]).
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
//! - **Fleet coordination**: with a store that [coordinates](crate::TokenStore::coordination) (Redis, a [`FileStore`](crate::store::FileStore)), a fetch
//!   first takes the store's refresh lock, so that across every process sharing the store one refresh
//!   of a key is in flight; the others wait (at most [`RefreshPolicy::lock_wait`] of elapsed time)
//!   for the token set it saves and adopt it. The lock's lease is renewed right before the request is
//!   sent (no request goes out on a lease that may have lapsed) and while it runs, and the new set is
//!   saved *fenced*, so that a process that lost its lock cannot overwrite a newer set; a fenced save
//!   that fails keeps the lock and is retried in the background. When the store is unreachable, a
//!   source that does not rotate its grant (client credentials) fetches for its process alone, with
//!   a warning; a rotating refresh token ([`TokenSource::rotates_grant`]) is never refreshed without
//!   the lock: the fetch fails with [`Error::Store`] and the still-valid token keeps being served.
//!
//! [`TokenProvider`]: crate::TokenProvider
//! [`TokenStore`]: crate::TokenStore
//! [`Clock`]: crate::clock::Clock
//! [`Error::Runtime`]: crate::Error::Runtime
//! [`Error::Store`]: crate::Error::Store

pub(crate) mod cached;
mod entry;
mod fleet;
mod flight;
mod policy;
mod save;
mod source;
#[cfg(test)]
pub(crate) mod testkit;

pub use cached::CachedProviderBuilder;
pub use policy::RefreshPolicy;
pub use source::{ClientCredentialsSource, ProviderSource, RefreshTokenSource, TokenSource};

// For this crate: `CachedProvider` is public at the crate root only (one path per item).
pub(crate) use cached::CachedProvider;

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
