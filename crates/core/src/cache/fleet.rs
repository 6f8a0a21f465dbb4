//! Fleet coordination: with a store that [coordinates](crate::TokenStore::coordination), a fetch
//! takes the store's refresh lock first, so that across every process sharing the store one refresh
//! of a key is in flight; the others wait for the set it saves and adopt it.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::{BoxError, Error, Result};
use crate::store::{Coordinator, LockGuard, RefreshLock};
use crate::token::AccessToken;

use super::cached::Erased;

/// How often the store is polled while another process holds the lock: 10 ms, doubling to 100 ms.
const LOCK_POLL: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));

impl Erased {
    /// Takes the fleet-wide refresh lock, or waits for the process holding it to save a new token set.
    ///
    /// While another process holds the lock, the store is polled (10 ms, doubling to 100 ms) for a
    /// fresh token set and the lock is tried again (it is free again once the holder unlocks, or its
    /// lease lapses because the holder died). After [`RefreshPolicy::lock_wait`](crate::cache::RefreshPolicy::lock_wait) of elapsed time
    /// (round-trips included) the failure policy applies.
    pub(super) async fn fetch_coordinated(self: &Arc<Self>, fleet: &dyn Coordinator) -> Result<AccessToken> {
        let started = self.clock.monotonic();
        let mut polls = LOCK_POLL.delays();
        loop {
            match fleet.lock_refresh(&self.key, self.policy.lock_lease).await {
                Ok(RefreshLock::Acquired(guard)) => {
                    let (result, release) = self.fetch_locked(fleet, &guard).await;
                    if release {
                        if let Err(e) = fleet.unlock(&self.key, &guard).await {
                            tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be released; it lapses with its lease");
                        }
                    }
                    return result;
                }
                Ok(RefreshLock::HeldElsewhere) => {}
                Err(e) => return self.store_failed(fleet, e).await,
            }
            if self.clock.monotonic().saturating_sub(started) >= self.policy.lock_wait {
                let cause = Error::store(
                    format!(
                        "another process has held the refresh lock for over {:?} without saving a new token set",
                        self.policy.lock_wait
                    ),
                    None,
                );
                return self.fetch_unlocked(cause).await;
            }
            tokio::time::sleep(polls.next().unwrap_or(LOCK_POLL.max())).await;
            match self.store.load_versioned(&self.key).await {
                Ok(Some(stored)) => {
                    if let Some(token) = self.adopt(stored) {
                        tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                        return Ok(token);
                    }
                }
                Ok(None) => {}
                Err(e) => return self.store_failed(fleet, e).await,
            }
        }
    }

    /// Holding the lock: re-reads the store, renews the lease right before sending, fetches while
    /// renewing it, saves fenced, publishes. Returns the result and whether to release the lock: a
    /// set whose fenced save failed keeps it (see [`save_later`](Self::save_later)).
    async fn fetch_locked(self: &Arc<Self>, fleet: &dyn Coordinator, guard: &LockGuard) -> (Result<AccessToken>, bool) {
        // Another process may have saved a new set between our load and our lock.
        match self.store.load_versioned(&self.key).await {
            Ok(Some(stored)) => {
                if let Some(token) = self.adopt(stored) {
                    tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                    return (Ok(token), true);
                }
            }
            Ok(None) => {}
            Err(e) => return (self.store_failed(fleet, e).await, true),
        }
        // Never send with a lease that may have lapsed (this process may have stalled since it took
        // the lock): renew it right before sending, and do not send if that fails.
        match fleet.extend_lock(&self.key, guard, self.policy.lock_lease).await {
            Ok(true) => {}
            Ok(false) => {
                let error = Error::store(
                    "the refresh lock's lease lapsed before the refresh was sent (this process stalled for longer than the lease); not refreshing, since another process may be: the next call tries again",
                    None,
                );
                tracing::warn!(key = %self.key, fence = guard.fence(), "{error}");
                return (Err(error), true);
            }
            Err(e) => return (self.store_failed(fleet, e).await, true),
        }
        let current = self.current.load_full();
        let fetched = {
            let fetch = self.source.fetch(current.as_ref().map(|e| &e.token));
            let renew = self.renew_lock(fleet, guard);
            tokio::pin!(fetch, renew);
            tokio::select! {
                biased;
                result = &mut fetch => result,
                never = &mut renew => match never {},
            }
        };
        let token = match fetched {
            Ok(token) => token,
            Err(e) => return (Err(e), true),
        };
        let _writing = self.save_lock.lock().await;
        match fleet.save_fenced(&self.key, &token, guard).await {
            Ok(true) => self.publish(token.clone(), Some(guard.fence()), true),
            Ok(false) => {
                tracing::warn!(
                    key = %self.key,
                    fence = guard.fence(),
                    "another process saved a newer token set while this one refreshed (the lock's lease lapsed); adopting it"
                );
                if let Ok(Some(stored)) = self.store.load_versioned(&self.key).await {
                    if let Some(token) = self.adopt(stored) {
                        return (Ok(token), true);
                    }
                }
                // The store holds a newer set; this one is served but not to be saved.
                self.publish(token.clone(), None, true);
            }
            Err(e) => {
                // The token is valid and may hold the only refresh token the provider still accepts:
                // serve it from memory, keep the lock, and save it again in the background.
                tracing::error!(key = %self.key, error = %e, "new token could not be saved in the shared store; keeping the refresh lock and retrying in the background");
                let base = current.as_ref().and_then(|e| e.version);
                self.publish(token.clone(), base, false);
                self.save_later(token.clone(), Some(guard.clone()));
                return (self.usable_or_error(token), false);
            }
        }
        (self.usable_or_error(token), true)
    }

    /// Renews the lock every third of its lease while the fetch runs; never returns.
    async fn renew_lock(&self, fleet: &dyn Coordinator, guard: &LockGuard) -> std::convert::Infallible {
        let lease = self.policy.lock_lease;
        loop {
            tokio::time::sleep(lease.checked_div(3).unwrap_or_default()).await;
            match fleet.extend_lock(&self.key, guard, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(key = %self.key, fence = guard.fence(), "the refresh lock was lost while refreshing; the new token set is saved only if no newer one was");
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be renewed");
                }
            }
        }
    }

    /// A coordinating store failed: the failure policy of [`fetch_unlocked`](Self::fetch_unlocked) for
    /// a store that may be briefly unreachable (Redis), the error itself for one whose failure will
    /// not pass by waiting (a file that cannot be read, a lock file that cannot be created).
    pub(super) async fn store_failed(&self, fleet: &dyn Coordinator, error: Error) -> Result<AccessToken> {
        if fleet.may_be_unreachable() {
            self.fetch_unlocked(error).await
        } else {
            tracing::warn!(key = %self.key, error = %error, "token store failed");
            Err(error)
        }
    }

    /// The failure policy when the coordinating store fails (or the lock is never freed): a source that
    /// does not rotate its grant fetches for this process alone, with a warning, and the token is not
    /// saved; a rotating grant is never refreshed without the lock.
    async fn fetch_unlocked(&self, cause: Error) -> Result<AccessToken> {
        if self.source.rotates_grant() {
            tracing::error!(
                key = %self.key,
                error = %cause,
                "the refresh was refused: a rotating refresh token is never refreshed without the fleet-wide lock"
            );
            return Err(Error::store(
                format!(
                    "the refresh was refused because the fleet-wide refresh lock could not be taken ({cause}); a rotating refresh token is never refreshed without it, since two processes refreshing it would invalidate each other: make the token store usable again (the cache retries after a back-off and serves the current token while it is valid)"
                ),
                Some(Arc::new(cause) as BoxError),
            ));
        }
        tracing::warn!(
            key = %self.key,
            error = %cause,
            "the shared token store cannot coordinate this refresh; fetching a token for this process alone"
        );
        let current = self.current.load_full();
        let token = self.source.fetch(current.as_ref().map(|e| &e.token)).await?;
        // Not saved, and not to be: it is this process's alone (see `Entry::saved`).
        self.publish(token.clone(), None, true);
        self.usable_or_error(token)
    }

    /// One background re-save of a fleet refresh's set whose fenced save failed; whether to stop.
    pub(super) async fn save_fenced_again(
        &self,
        fleet: &dyn Coordinator,
        token: &AccessToken,
        guard: &LockGuard,
        attempt: u32,
    ) -> bool {
        // Re-asserted first, so that the lock is held again if the store lost or lapsed it; the
        // fence decides below either way.
        if let Err(e) = fleet.extend_lock(&self.key, guard, self.policy.lock_lease).await {
            tracing::warn!(key = %self.key, attempt, error = %e, "the refresh lock could not be renewed; the saved set is still pending");
        }
        match fleet.save_fenced(&self.key, token, guard).await {
            Ok(written) => {
                if written {
                    self.mark_saved(token, Some(guard.fence()));
                    tracing::info!(key = %self.key, attempt, fence = guard.fence(), "token set saved in the shared store after an earlier failure");
                } else {
                    tracing::warn!(key = %self.key, attempt, fence = guard.fence(), "a newer token set is in the shared store; this one was not written");
                }
                if let Err(e) = fleet.unlock(&self.key, guard).await {
                    tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be released; it lapses with its lease");
                }
                true
            }
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token set still not saved in the shared store; the refresh lock is kept");
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

    use super::super::testkit::{Fleet, FleetStore, Source, cache, exact, secret, token_for};
    use super::Erased;
    use crate::error::Error;
    use crate::store::TokenStore;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const KEY: &str = "test-key";

    fn process(
        source: &Source,
        fleet: &Arc<Fleet>,
        policy: crate::cache::RefreshPolicy,
    ) -> super::super::CachedProvider<Source> {
        cache(source, Some(Arc::new(FleetStore(fleet.clone())) as Arc<dyn TokenStore>), policy)
    }

    #[tokio::test(start_paused = true)]
    async fn one_refresh_across_the_fleet_and_the_others_adopt_its_set() {
        let fleet = Fleet::new();
        let source = Source::new(S(300), true);
        *source.0.delay.lock().unwrap() = S(1);
        let processes: Vec<_> = (0..3).map(|_| process(&source, &fleet, exact())).collect();
        let mut callers = tokio::task::JoinSet::new();
        for p in &processes {
            for _ in 0..10 {
                let p = p.clone();
                callers.spawn(async move { p.token().await });
            }
        }
        let tokens: Vec<String> = callers.join_all().await.into_iter().map(|r| secret(&r.unwrap())).collect();
        assert!(tokens.iter().all(|t| t == "token-1"), "{tokens:?}");
        assert_eq!((source.0.fetches(), fleet.acquired.load(Ordering::SeqCst)), (1, 1));
        let (version, stored) = fleet.stored(KEY).unwrap();
        assert_eq!((version, secret(&stored)), (1, "token-1".to_owned()), "saved with the lock's fence");
        assert!(!fleet.locked(KEY), "released");
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_is_renewed_while_a_slow_refresh_runs() {
        let fleet = Fleet::new();
        let source = Source::new(S(300), true);
        *source.0.delay.lock().unwrap() = S(10);
        let holder = process(&source, &fleet, exact().lock_lease(S(3)).lock_wait(S(30)));
        let waiter = process(&source, &fleet, exact().lock_lease(S(3)).lock_wait(S(30)));
        let first = tokio::spawn({
            let holder = holder.clone();
            async move { holder.token().await }
        });
        tokio::time::sleep(S(5)).await;
        assert!(fleet.locked(KEY), "still held past the first lease");
        assert_eq!(secret(&waiter.token().await.unwrap()), "token-1", "the waiter adopted the holder's set");
        assert_eq!(secret(&first.await.unwrap().unwrap()), "token-1");
        assert_eq!(source.0.fetches(), 1);
        assert!(fleet.renewed.load(Ordering::SeqCst) >= 3, "renewed before sending and every lease / 3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_adopts_the_set_the_holder_saves_without_fetching() {
        let fleet = Fleet::new();
        fleet.hold_lock(KEY, S(3600));
        let source = Source::new(S(300), true);
        let cache = process(&source, &fleet, exact());
        let saver = tokio::spawn({
            let (fleet, clock) = (fleet.clone(), source.0.clock);
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                fleet.put(KEY, token_for(&clock, "from-the-holder", S(300)));
            }
        });
        assert_eq!(secret(&cache.token().await.unwrap()), "from-the-holder");
        saver.await.unwrap();
        assert_eq!(source.0.fetches(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_store_refuses_a_rotating_refresh_but_not_client_credentials() {
        let fleet = Fleet::new();
        fleet.down.store(true, Ordering::SeqCst);
        let rotating = Source::new(S(300), true);
        let err = process(&rotating, &fleet, exact()).token().await.unwrap_err();
        assert!(matches!(err, Error::Store { .. }) && err.to_string().contains("never refreshed without"), "{err}");
        assert_eq!(rotating.0.fetches(), 0, "nothing was sent");
        let cc = Source::new(S(300), false);
        let cache = process(&cc, &fleet, exact());
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1", "fetched for this process alone");
        assert!(cache.unsaved().is_none(), "nobody's to save");
        fleet.down.store(false, Ordering::SeqCst);
        assert!(fleet.stored(KEY).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_never_freed_is_waited_for_lock_wait_of_elapsed_time() {
        let fleet = Fleet::new();
        fleet.hold_lock(KEY, S(3600));
        let cc = Source::new(S(300), false);
        let started = tokio::time::Instant::now();
        process(&cc, &fleet, exact().lock_wait(S(2))).token().await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= S(2) && waited < Duration::from_millis(2200), "{waited:?}");
        let rotating = Source::new(S(300), true);
        let err = process(&rotating, &fleet, exact().lock_wait(S(2))).token().await.unwrap_err();
        assert!(err.to_string().contains("held the refresh lock for over"), "{err}");
        assert_eq!(rotating.0.fetches(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fenced_save_keeps_the_lock_and_is_saved_in_the_background() {
        let fleet = Fleet::new();
        fleet.fail_fenced.store(true, Ordering::SeqCst);
        let source = Source::new(S(300), true);
        let cache = process(&source, &fleet, exact());
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1", "served from memory");
        assert!(cache.unsaved().is_some() && fleet.locked(KEY), "unsaved, and the lock is kept");
        fleet.fail_fenced.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(cache.unsaved().is_none(), "saved by the first background attempt (after 1 s)");
        assert_eq!(fleet.stored(KEY).map(|(v, t)| (v, secret(&t))), Some((1, "token-1".to_owned())));
        assert!(!fleet.locked(KEY), "released once saved");
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_whose_renewal_is_refused_before_sending_does_not_send() {
        let fleet = Fleet::new();
        let source = Source::new(S(300), true);
        let cache = process(&source, &fleet, exact());
        let stalled = FleetStore(fleet.clone());
        let crate::store::RefreshLock::Acquired(guard) =
            crate::store::Coordinator::lock_refresh(&stalled, KEY, Duration::from_millis(100)).await.unwrap()
        else {
            panic!("no lock")
        };
        tokio::time::advance(S(1)).await; // the holder stalled past its lease
        let shared: Arc<Erased> = cache.shared.clone();
        let (result, release) = shared.fetch_locked(&stalled, &guard).await;
        assert!(release && result.unwrap_err().to_string().contains("lease lapsed"));
        assert_eq!(source.0.fetches(), 0);
    }
}
