//! The store around a fetch: the stored set is read before every fetch (and adopted when it is
//! newer), a new set is saved before it is handed out, and a set the store did not take is saved
//! again in the background.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::Result;
use crate::store::{LockGuard, Versioned};
use crate::token::AccessToken;

use super::cached::Erased;

/// The background re-save of a set the store did not take: 1 s, doubling to 60 s.
const RESAVE: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

impl Erased {
    /// Loads the stored set, falling back once to the legacy key (copying what it holds to the
    /// current key, so that an upgrade loses no grant).
    async fn load(&self) -> Result<Option<Versioned>> {
        let stored = self.store.load_versioned(&self.key).await?;
        if stored.is_some() {
            return Ok(stored);
        }
        let Some(legacy) = self.legacy_key.as_deref().filter(|_| !self.legacy_checked.load(Ordering::Relaxed)) else {
            return Ok(None);
        };
        let old = self.store.load(legacy).await?;
        self.legacy_checked.store(true, Ordering::Relaxed);
        let Some(old) = old else { return Ok(None) };
        // Copied, not moved: a rollback to the earlier version still finds it.
        let version = self.store.save_versioned(&self.key, &old).await?;
        tracing::info!(key = %self.key, legacy_key = %legacy, "token set copied from the key earlier versions stored it under");
        Ok(Some(Versioned::new(old, version)))
    }

    /// One fetch: read the store, fetch, save, publish. Runs in its own task.
    ///
    /// The store is read before every fetch: a set in it that is newer than the cached one (by the
    /// store's version) was saved by an earlier run or by another process sharing the store. It is
    /// adopted; if it is fresh no request is made, otherwise its refresh token (the latest, with
    /// rotating refresh tokens) is the one refreshed from. A coordinating store is then locked (see
    /// [`fetch_coordinated`](Self::fetch_coordinated)).
    pub(super) async fn run_fetch(self: &Arc<Self>) -> Result<AccessToken> {
        let fleet = self.store.coordination();
        match self.load().await {
            Ok(stored) => {
                if fleet.is_none() {
                    self.write_back_if_lost(stored.as_ref()).await;
                }
                if let Some(token) = stored.and_then(|stored| self.adopt(stored)) {
                    tracing::debug!(key = %self.key, "fresh token found in the token store; no request made");
                    return Ok(token);
                }
            }
            Err(e) => match fleet {
                Some(fleet) => return self.store_failed(fleet, e).await,
                None => {
                    tracing::warn!(key = %self.key, error = %e, "token store could not be read");
                    return Err(e);
                }
            },
        }
        match fleet {
            Some(fleet) => self.fetch_coordinated(fleet).await,
            None => self.fetch_and_save().await,
        }
    }

    /// Adopts `stored` if it is newer than the cached set; returns it if it is fresh.
    ///
    /// Newer means a larger store version. Only when the store or the cached set has no version
    /// (a store that keeps none, a set fetched while the store was unreachable) does a different
    /// set that expires later count as newer.
    pub(super) fn adopt(&self, stored: Versioned) -> Option<AccessToken> {
        let newer = match self.current.load().as_ref() {
            None => true,
            Some(entry) => match (stored.version, entry.version) {
                (Some(stored_version), Some(cached_version)) => stored_version > cached_version,
                (Some(_), None) => !stored.token.same_token(&entry.token),
                (None, _) => {
                    !stored.token.same_token(&entry.token) && stored.token.expires_at() > entry.token.expires_at()
                }
            },
        };
        if !newer {
            return None;
        }
        self.publish(stored.token, stored.version, true);
        self.fresh()
    }

    /// A store that does not coordinate (memory, file) and lost the set this process saved (its
    /// version went backwards, or the set is gone: a restored backup, a deleted file) gets it back,
    /// so that the newest refresh token is not lost.
    async fn write_back_if_lost(&self, stored: Option<&Versioned>) {
        let current = self.current.load_full();
        let Some(entry) = current.as_ref().filter(|e| e.saved) else { return };
        let Some(cached_version) = entry.version else { return };
        let lost = match stored {
            None => true,
            Some(stored) => stored.version.is_some_and(|v| v < cached_version),
        };
        if !lost {
            return;
        }
        let _writing = self.save_lock.lock().await;
        tracing::warn!(
            key = %self.key,
            cached_version,
            stored_version = stored.and_then(|s| s.version),
            "the token store lost the newest token set this process saved; writing it back"
        );
        match self.store.save_versioned(&self.key, &entry.token).await {
            Ok(version) => self.mark_saved(&entry.token, version),
            Err(e) => tracing::warn!(key = %self.key, error = %e, "the lost token set could not be written back"),
        }
    }

    /// Fetches, saves (unconditionally) and publishes: a store that does not coordinate.
    ///
    /// A token set that cannot be saved is still valid: it is served from memory, and saved again in
    /// the background (see [`save_later`](Self::save_later)), because with a rotating refresh token
    /// the set in memory holds the only refresh token the provider still accepts.
    async fn fetch_and_save(self: &Arc<Self>) -> Result<AccessToken> {
        let current = self.current.load_full();
        let token = self.source.fetch(current.as_ref().map(|e| &e.token)).await?;
        {
            let _writing = self.save_lock.lock().await;
            // The version of the set this one replaces, read now: a background re-save may have
            // saved it since the fetch started.
            let base = self.current.load().as_ref().and_then(|e| e.version);
            match self.store.save_versioned(&self.key, &token).await {
                Ok(version) => self.publish(token.clone(), version, true),
                Err(e) => {
                    tracing::error!(key = %self.key, error = %e, "new token could not be saved in the token store; retrying in the background");
                    self.publish(token.clone(), base, false);
                    self.save_later(token.clone(), None);
                }
            }
        }
        self.usable_or_error(token)
    }

    /// Saves `token` in the background after a failed save: from 1 s, doubling up to 60 s, until a
    /// save succeeds, a newer set replaces it (in the cache or, by version, in the store), or the
    /// cache is dropped.
    ///
    /// With `guard` (a fleet refresh whose fenced save failed) the lock is re-asserted and the save
    /// is fenced, so that the store decides atomically whether a newer set is there; the lock is
    /// released only once the set is saved, so that no other process refreshes from the spent
    /// refresh token meanwhile. Without it (a store that does not coordinate) the check and the save
    /// run under this process's save lock.
    pub(super) fn save_later(self: &Arc<Self>, token: AccessToken, guard: Option<LockGuard>) {
        let shared = Arc::downgrade(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(key = %self.key, "no Tokio runtime to save the token set again in the background; it is kept in memory only");
            return;
        };
        runtime.spawn(async move {
            let mut attempt: u32 = 1;
            for delay in RESAVE.delays() {
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
                let Some(shared) = shared.upgrade() else { return };
                let done = match (&guard, shared.store.coordination()) {
                    (Some(guard), Some(fleet)) => shared.save_fenced_again(fleet, &token, guard, attempt).await,
                    (Some(_), None) => true, // unreachable: the guard came from the store's coordinator
                    (None, _) => shared.save_again(&token, attempt).await,
                };
                if done {
                    return;
                }
            }
        });
    }

    /// One background re-save of an unsaved set (no coordination); whether to stop.
    async fn save_again(&self, token: &AccessToken, attempt: u32) -> bool {
        let _writing = self.save_lock.lock().await;
        let current = self.current.load_full();
        let Some(entry) = current.as_ref().filter(|e| e.token.same_token(token) && !e.saved) else {
            return true; // replaced by a newer set, which had its own save, or saved meanwhile
        };
        match self.store.load_versioned(&self.key).await {
            Ok(Some(stored)) => {
                let newer = match (stored.version, entry.version) {
                    (Some(stored_version), Some(base)) => stored_version > base,
                    (Some(_), None) => !stored.token.same_token(token),
                    (None, _) => stored.token.expires_at() >= token.expires_at(),
                };
                if newer {
                    tracing::warn!(key = %self.key, attempt, "a newer token set was saved by another process since this one failed to save; keeping the store's");
                    return true;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token store still unreadable; the token set is not saved yet");
                return false;
            }
        }
        match self.store.save_versioned(&self.key, token).await {
            Ok(version) => {
                self.mark_saved(token, version);
                tracing::info!(key = %self.key, attempt, "token set saved in the token store after an earlier failure");
                true
            }
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token set still not saved in the token store");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::super::CachedProvider;
    use super::super::testkit::{FlakyStore, Source, cache, exact, secret, token_for};
    use crate::store::{MemoryStore, TokenStore};

    const S: fn(u64) -> Duration = Duration::from_secs;
    const KEY: &str = "test-key";

    #[tokio::test(start_paused = true)]
    async fn a_fresh_stored_set_is_adopted_instead_of_fetching() {
        let store = Arc::new(MemoryStore::new());
        let source = Source::new(S(300), false);
        store.save(KEY, &token_for(&source.0.clock, "stored", S(300))).await.unwrap();
        let cache = cache(&source, Some(store.clone()), exact());
        assert_eq!(secret(&cache.token().await.unwrap()), "stored");
        assert_eq!(source.0.fetches(), 0);
        // A newer set saved by another process is adopted at the next refresh.
        tokio::time::advance(S(240)).await;
        store.save(KEY, &token_for(&source.0.clock, "newer", S(300))).await.unwrap();
        assert_eq!(secret(&cache.token().await.unwrap()), "newer");
        assert_eq!(source.0.fetches(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsaved_set_is_served_and_saved_again_in_the_background() {
        let store = Arc::new(FlakyStore::default());
        store.fail_saves.store(true, Ordering::SeqCst);
        let source = Source::new(S(300), true);
        let cache = cache(&source, Some(store.clone()), exact());
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1");
        assert!(cache.unsaved().is_some());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(cache.unsaved().is_some(), "the first re-save (1 s) failed too");
        store.fail_saves.store(false, Ordering::SeqCst);
        tokio::time::sleep(S(2)).await; // the second re-save comes 2 s after the first
        assert!(cache.unsaved().is_none());
        assert_eq!(store.load(KEY).await.unwrap().map(|t| secret(&t)).as_deref(), Some("token-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_set_the_store_lost_is_written_back_before_the_next_fetch() {
        let store = Arc::new(MemoryStore::new());
        let source = Source::new(S(300), true);
        let cache = cache(&source, Some(store.clone()), exact());
        cache.token().await.unwrap();
        store.remove(KEY).await.unwrap(); // a restored backup, a deleted file
        source.0.set_failing(true);
        cache.clear();
        assert!(cache.token().await.is_err());
        let back = store.load(KEY).await.unwrap().expect("written back");
        assert_eq!(secret(&back), "token-1");
        assert!(back.refresh_token().is_some(), "with its refresh token");
    }

    #[tokio::test(start_paused = true)]
    async fn a_set_under_the_legacy_key_is_copied_to_the_key_once() {
        let store = Arc::new(MemoryStore::new());
        let source = Source::new(S(300), false);
        store.save("old-key", &token_for(&source.0.clock, "legacy", S(300))).await.unwrap();
        let cache = CachedProvider::builder(source.clone())
            .clock(Arc::new(source.0.clock))
            .policy(exact())
            .store(store.clone())
            .legacy_key("old-key")
            .build();
        assert_eq!(secret(&cache.token().await.unwrap()), "legacy");
        assert_eq!(source.0.fetches(), 0);
        assert_eq!(store.load(KEY).await.unwrap().map(|t| secret(&t)).as_deref(), Some("legacy"));
        assert!(store.load("old-key").await.unwrap().is_some(), "copied, not moved");
    }
}
