//! The cache with a store that coordinates a fleet of processes (as the Redis store does): one refresh
//! in flight across all of them, waiters adopt the holder's token set, lease renewal and lapse,
//! fencing, and the failure policy when the store is unreachable.
//!
//! Each `CachedProvider` stands for one process; they share a `FleetStore`, an in-memory store with
//! the lock, lease and fencing semantics of the Redis store, whose lease runs on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::cache::{RefreshPolicy, RefreshTokenSource, TokenSource};
use tokensmith_core::clock::{Clock, TokioClock};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::store::{Coordinator, LockGuard, RefreshLock, Versioned};
use tokensmith_core::*;
use tokensmith_core::{
    error::TransportError,
    http::{HttpResponse, Transport},
    request::TokenRequest,
};
use tokio::time::Instant;

const S: fn(u64) -> Duration = Duration::from_secs;

// ---------------------------------------------------------------------------------------------------
// A coordinating store

#[derive(Debug, Default)]
struct Shared {
    /// key -> (version, token set)
    tokens: HashMap<String, (u64, AccessToken)>,
    /// key -> (owner, lease end)
    locks: HashMap<String, (String, Instant)>,
    fences: HashMap<String, u64>,
    owners: u64,
}

/// The fleet's shared state plus switches and counters; `handle()` gives one process's store.
#[derive(Debug, Default)]
struct Fleet {
    shared: Mutex<Shared>,
    down: AtomicBool,
    /// Renewals of locks whose fence is at most this are refused (as if the lease lapsed before the
    /// renewal arrived); 0 refuses none.
    refuse_renewal: AtomicU64,
    /// When set, fenced saves fail (the process lost the store after the provider answered).
    fail_saves: AtomicBool,
    acquired: AtomicUsize,
    renewed: AtomicUsize,
    refused_saves: AtomicUsize,
}

#[derive(Debug)]
struct FleetStore(Arc<Fleet>);

impl Fleet {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("the shared store is unreachable (connection refused)", None));
        }
        Ok(())
    }

    /// A lock held by a process that died: it lapses after `lease`.
    fn ghost_lock(&self, key: &str, lease: Duration) {
        let mut shared = self.shared.lock().unwrap();
        shared.locks.insert(key.to_owned(), ("ghost".to_owned(), Instant::now() + lease));
    }

    fn stored(&self, key: &str) -> Option<(u64, AccessToken)> {
        self.shared.lock().unwrap().tokens.get(key).cloned()
    }
}

#[async_trait]
impl TokenStore for FleetStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        Ok(self.load_versioned(key).await?.map(|v| v.token))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.check()?;
        Ok(self.0.stored(key).map(|(v, t)| Versioned::new(t, Some(v))))
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        self.0.check()?;
        let mut shared = self.0.shared.lock().unwrap();
        let fence = shared.fences.entry(key.to_owned()).or_default();
        *fence += 1;
        let fence = *fence;
        shared.tokens.insert(key.to_owned(), (fence, token.clone()));
        Ok(Some(fence))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.0.check()?;
        self.0.shared.lock().unwrap().tokens.remove(key);
        Ok(())
    }

    fn coordination(&self) -> Option<&dyn Coordinator> {
        Some(self)
    }
}

#[async_trait]
impl Coordinator for FleetStore {
    fn may_be_unreachable(&self) -> bool {
        true
    }

    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
        self.0.check()?;
        let mut shared = self.0.shared.lock().unwrap();
        let now = Instant::now();
        if shared.locks.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(RefreshLock::HeldElsewhere);
        }
        shared.owners += 1;
        let owner = format!("owner-{}", shared.owners);
        shared.locks.insert(key.to_owned(), (owner.clone(), now + lease));
        let fence = shared.fences.entry(key.to_owned()).or_default();
        *fence += 1;
        let fence = *fence;
        self.0.acquired.fetch_add(1, Ordering::SeqCst);
        Ok(RefreshLock::Acquired(LockGuard::new(owner, fence)))
    }

    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
        self.0.check()?;
        if guard.fence() <= self.0.refuse_renewal.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let mut shared = self.0.shared.lock().unwrap();
        let now = Instant::now();
        match shared.locks.get_mut(key) {
            Some((owner, until)) if owner == guard.owner() && *until > now => {
                *until = now + lease;
                self.0.renewed.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
        self.0.check()?;
        if self.0.fail_saves.load(Ordering::SeqCst) {
            return Err(Error::store("the shared store is unreachable (connection reset)", None));
        }
        let mut shared = self.0.shared.lock().unwrap();
        if shared.tokens.get(key).is_some_and(|(version, _)| *version >= guard.fence()) {
            self.0.refused_saves.fetch_add(1, Ordering::SeqCst);
            return Ok(false);
        }
        shared.tokens.insert(key.to_owned(), (guard.fence(), token.clone()));
        Ok(true)
    }

    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
        self.0.check()?;
        let mut shared = self.0.shared.lock().unwrap();
        if shared.locks.get(key).is_some_and(|(owner, _)| owner == guard.owner()) {
            shared.locks.remove(key);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Sources

/// A client-credentials-like source shared by the whole fleet's counter: issues `token-N`.
#[derive(Debug)]
struct CountingSource {
    clock: Arc<dyn Clock>,
    fetches: Arc<AtomicUsize>,
    lifetime: Duration,
    delay: Duration,
}

#[async_trait]
impl TokenSource for CountingSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        Ok(AccessToken::builder(format!("token-{n}")).expires_in(self.clock.system_time(), self.lifetime).build())
    }

    fn cache_key(&self) -> String {
        "cc".to_owned()
    }
}

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

fn policy() -> RefreshPolicy {
    RefreshPolicy::default().jitter(0.0)
}

struct CcFleet {
    fleet: Arc<Fleet>,
    fetches: Arc<AtomicUsize>,
    caches: Vec<CachedProvider<CountingSource>>,
}

fn cc_fleet(processes: usize, lifetime: Duration, delay: Duration, policy: RefreshPolicy) -> CcFleet {
    let fleet = Arc::new(Fleet::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let caches = (0..processes)
        .map(|_| {
            let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
            let source = CountingSource { clock: clock.clone(), fetches: fetches.clone(), lifetime, delay };
            CachedProvider::builder(source)
                .clock(clock)
                .policy(policy.clone())
                .store(Arc::new(FleetStore(fleet.clone())))
                .build()
        })
        .collect();
    CcFleet { fleet, fetches, caches }
}

/// Every cache asks for a token `per_cache` times at once; returns the secrets handed out.
async fn fleet_burst<S: TokenSource>(caches: &[CachedProvider<S>], per_cache: usize) -> Vec<Result<AccessToken>> {
    let mut handles = Vec::new();
    for cache in caches {
        for _ in 0..per_cache {
            let cache = cache.clone();
            handles.push(tokio::spawn(async move { cache.token().await }));
        }
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Client credentials

#[tokio::test(start_paused = true)]
async fn a_fleet_fetches_once_per_refresh_not_once_per_process() {
    let f = cc_fleet(4, S(300), Duration::from_millis(200), policy());
    for round in 1..=5 {
        for r in fleet_burst(&f.caches, 50).await {
            assert_eq!(secret(&r.unwrap()), format!("token-{round}"));
        }
        assert_eq!(f.fetches.load(Ordering::SeqCst), round, "one fetch for the whole fleet in round {round}");
        tokio::time::advance(S(241)).await; // due for refresh (60 s margin), still usable
    }
    // The stored set is the newest, and cached reads never touch the store.
    assert_eq!(secret(&f.fleet.stored("cc").unwrap().1), "token-5");
    assert_eq!(f.fleet.acquired.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn waiters_adopt_the_token_set_the_lock_holder_saves() {
    let f = cc_fleet(2, S(300), S(2), policy());
    let (a, b) = (f.caches[0].clone(), f.caches[1].clone());
    let first = tokio::spawn(async move { a.token().await });
    tokio::time::sleep(Duration::from_millis(500)).await; // a holds the lock, its fetch is in flight
    let started = Instant::now();
    let second = b.token().await.unwrap();
    assert_eq!(secret(&second), "token-1");
    assert!(started.elapsed() < Duration::from_millis(1700), "b waited for a's refresh only");
    assert_eq!(secret(&first.await.unwrap().unwrap()), "token-1");
    assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_renewed_while_a_slow_refresh_runs() {
    // A 12 s fetch outlives the 5 s lease many times over; the renewals keep the others waiting.
    let f = cc_fleet(3, S(300), S(12), policy().lock_wait(S(30)));
    for r in fleet_burst(&f.caches, 10).await {
        assert_eq!(secret(&r.unwrap()), "token-1");
    }
    assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
    assert!(f.fleet.renewed.load(Ordering::SeqCst) >= 6, "renewed every third of the lease");
}

#[tokio::test(start_paused = true)]
async fn a_dead_holders_lock_lapses_after_its_lease() {
    let f = cc_fleet(1, S(300), Duration::ZERO, policy());
    f.fleet.ghost_lock("cc", S(5));
    let started = Instant::now();
    assert_eq!(secret(&f.caches[0].token().await.unwrap()), "token-1");
    let waited = started.elapsed();
    assert!(waited >= S(5) && waited < Duration::from_millis(5200), "waited for the lease: {waited:?}");
    assert_eq!(f.fleet.acquired.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_lost_its_lock_does_not_overwrite_a_newer_set() {
    // a's refresh takes 8 s and its renewals are refused, so its lease lapses at 5 s; b then takes the
    // lock (a larger fencing number), refreshes and saves first. a's fenced save is refused and a
    // adopts b's set.
    let f = cc_fleet(2, S(300), Duration::ZERO, policy().lock_wait(S(30)));
    let fleet = f.fleet.clone();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let slow = CountingSource { clock: clock.clone(), fetches: f.fetches.clone(), lifetime: S(300), delay: S(8) };
    let a =
        CachedProvider::builder(slow).clock(clock).policy(policy()).store(Arc::new(FleetStore(fleet.clone()))).build();
    let a_task = tokio::spawn(async move { a.token().await });
    // a renews right before sending; the renewals after that are refused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    fleet.refuse_renewal.store(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let b = f.caches[1].token().await.unwrap();
    assert_eq!(secret(&b), "token-2", "b refreshed after a's lease lapsed");
    let a_result = a_task.await.unwrap().unwrap();
    assert_eq!(secret(&a_result), "token-2", "a adopted the newer set instead of its own");
    assert_eq!(fleet.refused_saves.load(Ordering::SeqCst), 1);
    let (version, stored) = fleet.stored("cc").unwrap();
    assert_eq!((version, secret(&stored).as_str()), (2, "token-2"));
}

#[tokio::test(start_paused = true)]
async fn a_fenced_save_that_fails_keeps_the_lock_and_is_saved_again_in_the_background() {
    // Issue 14, item 5: the provider answered but the save failed. The set is served from memory;
    // the lock is not released (releasing it would let another process refresh from the spent
    // refresh token); the save is retried, fenced, until it lands, and only then is the lock released.
    let f = cc_fleet(1, S(300), Duration::ZERO, policy().lock_lease(S(60)));
    f.fleet.fail_saves.store(true, Ordering::SeqCst);
    let token = f.caches[0].token().await.expect("served although not saved");
    assert!(f.fleet.stored("cc").is_none());
    let held = |fleet: &Fleet| fleet.shared.lock().unwrap().locks.contains_key("cc");
    assert!(held(&f.fleet), "the lock is kept while the set is not saved");
    tokio::time::sleep(S(5)).await;
    assert!(held(&f.fleet) && f.fleet.stored("cc").is_none(), "still failing: still held");
    f.fleet.fail_saves.store(false, Ordering::SeqCst);
    tokio::time::sleep(S(10)).await;
    let (version, stored) = f.fleet.stored("cc").expect("saved once the store answered");
    assert!(stored.same_token(&token));
    assert_eq!(version, 1, "saved with the lock's fence");
    assert!(!held(&f.fleet), "released after the save");
    assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_lease_lapsed_before_sending_does_not_send() {
    // Issue 14, item 6: a process that stalled for longer than the lease after taking the lock (a GC
    // pause, a blocked thread) finds its renewal refused right before sending, and does not send.
    let f = cc_fleet(1, S(300), Duration::ZERO, policy());
    f.fleet.refuse_renewal.store(u64::MAX, Ordering::SeqCst);
    let err = f.caches[0].token().await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }) && err.to_string().contains("lease lapsed"), "{err}");
    assert_eq!(f.fetches.load(Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!(f.fleet.acquired.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn lock_wait_is_bounded_by_elapsed_time_not_by_the_sum_of_sleeps() {
    // Issue 14, item 9: each lock attempt takes 200 ms of round trips; with a 1 s `lock_wait` the
    // waiter gives up after about 1 s of elapsed time, not after 1 s of sleeps (≈ 3 s here).
    #[derive(Debug)]
    struct SlowStore(FleetStore);
    #[async_trait]
    impl TokenStore for SlowStore {
        async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.0.load(key).await
        }
        async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
            self.0.save(key, token).await
        }
        async fn remove(&self, key: &str) -> Result<()> {
            self.0.remove(key).await
        }
        fn coordination(&self) -> Option<&dyn Coordinator> {
            Some(self)
        }
    }
    #[async_trait]
    impl Coordinator for SlowStore {
        fn may_be_unreachable(&self) -> bool {
            true
        }
        async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.0.lock_refresh(key, lease).await
        }
        async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
            self.0.extend_lock(key, guard, lease).await
        }
        async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
            self.0.save_fenced(key, token, guard).await
        }
        async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
            self.0.unlock(key, guard).await
        }
    }
    let fleet = Arc::new(Fleet::default());
    fleet.ghost_lock("cc", S(3600));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let fetches = Arc::new(AtomicUsize::new(0));
    let source =
        CountingSource { clock: clock.clone(), fetches: fetches.clone(), lifetime: S(300), delay: Duration::ZERO };
    let cache = CachedProvider::builder(source)
        .clock(clock)
        .policy(policy().lock_wait(S(1)))
        .store(Arc::new(SlowStore(FleetStore(fleet))))
        .build();
    let started = Instant::now();
    cache.token().await.unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1800), "gave up after {waited:?}");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "client credentials then fetch for this process alone");
}

#[tokio::test(start_paused = true)]
async fn client_credentials_fall_back_to_fetching_per_process_when_the_store_is_down() {
    let f = cc_fleet(3, S(300), Duration::ZERO, policy());
    f.fleet.down.store(true, Ordering::SeqCst);
    let results = fleet_burst(&f.caches, 20).await;
    assert!(results.iter().all(Result::is_ok), "tokens are served without the store");
    assert_eq!(f.fetches.load(Ordering::SeqCst), 3, "one fetch per process (single flight within each)");
    // Nothing was saved; once the store is back, the next refresh is coordinated again.
    f.fleet.down.store(false, Ordering::SeqCst);
    assert!(f.fleet.stored("cc").is_none());
    tokio::time::advance(S(241)).await;
    fleet_burst(&f.caches, 20).await.into_iter().for_each(|r| drop(r.unwrap()));
    assert_eq!(f.fetches.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn client_credentials_fall_back_when_the_lock_is_never_freed() {
    let f = cc_fleet(1, S(300), Duration::ZERO, policy().lock_wait(S(3)));
    f.fleet.ghost_lock("cc", S(3600));
    let started = Instant::now();
    assert_eq!(secret(&f.caches[0].token().await.unwrap()), "token-1");
    assert!(started.elapsed() >= S(3) && started.elapsed() < S(4), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------------
// Rotating refresh tokens

/// A token endpoint that rotates refresh tokens and refuses any refresh token it has seen before.
#[derive(Debug, Default)]
struct RotatingServer {
    sent: Mutex<Vec<String>>,
    issued: AtomicUsize,
}

#[async_trait]
impl Transport for RotatingServer {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = request.wire_body();
        let rt = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let mut sent = self.sent.lock().unwrap();
        let reused = sent.contains(&rt);
        sent.push(rt);
        if reused {
            return Ok(HttpResponse::json(400, r#"{"error":"invalid_grant"}"#));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(HttpResponse::json(
            200,
            format!(r#"{{"access_token":"at-{n}","token_type":"bearer","expires_in":100,"refresh_token":"rt-{n}"}}"#),
        ))
    }
}

fn rotating_fleet(
    processes: usize,
    server: &Arc<RotatingServer>,
    fleet: &Arc<Fleet>,
) -> Vec<CachedProvider<RefreshTokenSource>> {
    (0..processes)
        .map(|_| {
            let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
            let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap());
            let client = TokenClient::builder("rotating", endpoint, ClientCredentials::new("id", "secret"))
                .transport(server.clone())
                .clock(clock.clone())
                .build()
                .unwrap();
            CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty()))
                .clock(clock)
                .policy(policy())
                .store(Arc::new(FleetStore(fleet.clone())))
                .key("k")
                .build()
        })
        .collect()
}

async fn seed(fleet: &Arc<Fleet>) {
    let grant = AccessToken::builder("at-0")
        .expires_in(std::time::SystemTime::now(), S(100))
        .refresh_token(Some(RefreshToken::new("rt-0")))
        .build();
    FleetStore(fleet.clone()).save("k", &grant).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_rotating_refresh_token_is_sent_once_across_the_fleet() {
    let server = Arc::new(RotatingServer::default());
    let fleet = Arc::new(Fleet::default());
    let caches = rotating_fleet(4, &server, &fleet);
    seed(&fleet).await;
    for r in fleet_burst(&caches, 20).await {
        assert_eq!(secret(&r.unwrap()), "at-0");
    }
    for round in 1..=5 {
        tokio::time::advance(S(85)).await; // due (20 s margin), still usable
        for r in fleet_burst(&caches, 20).await {
            assert_eq!(secret(&r.unwrap()), format!("at-{round}"));
        }
    }
    let sent = server.sent.lock().unwrap().clone();
    assert_eq!(sent, ["rt-0", "rt-1", "rt-2", "rt-3", "rt-4"]);
    let distinct: HashSet<_> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len());
}

#[tokio::test(start_paused = true)]
async fn a_rotating_refresh_token_is_never_refreshed_without_the_lock() {
    let server = Arc::new(RotatingServer::default());
    let fleet = Arc::new(Fleet::default());
    let caches = rotating_fleet(2, &server, &fleet);
    seed(&fleet).await;
    fleet_burst(&caches, 5).await.into_iter().for_each(|r| drop(r.unwrap()));

    // The store goes down while the token is due but still usable: the old token is served.
    fleet.down.store(true, Ordering::SeqCst);
    tokio::time::advance(S(85)).await;
    for r in fleet_burst(&caches, 5).await {
        assert_eq!(secret(&r.unwrap()), "at-0", "the still-valid token is served");
    }
    // Once it expires, callers get a clear store error; no refresh token was sent.
    tokio::time::advance(S(14)).await;
    for r in fleet_burst(&caches, 5).await {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::Store { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("never refreshed without"), "{text}");
    }
    assert!(server.sent.lock().unwrap().is_empty());

    // The store is back: one refresh for the fleet, with the stored refresh token.
    fleet.down.store(false, Ordering::SeqCst);
    caches.iter().for_each(CachedProvider::clear);
    for r in fleet_burst(&caches, 5).await {
        assert_eq!(secret(&r.unwrap()), "at-1");
    }
    assert_eq!(*server.sent.lock().unwrap(), ["rt-0"]);
}

#[tokio::test(start_paused = true)]
async fn a_rotating_refresh_token_waits_but_never_refreshes_past_a_held_lock() {
    let server = Arc::new(RotatingServer::default());
    let fleet = Arc::new(Fleet::default());
    let caches = rotating_fleet(1, &server, &fleet);
    seed(&fleet).await;
    fleet.ghost_lock("k", S(3600));
    tokio::time::advance(S(99)).await;
    let e = caches[0].token().await.unwrap_err();
    assert!(matches!(e, Error::Store { .. }) && e.to_string().contains("held the refresh lock"), "{e}");
    assert!(server.sent.lock().unwrap().is_empty());
}
