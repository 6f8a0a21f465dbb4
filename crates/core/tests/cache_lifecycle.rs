//! The token cache's lifecycle: early refresh scaled to the lifetime with jitter, single flight,
//! failure handling and back-off, invalidation, the token store, cancellation and panics.
//!
//! Every timing test runs on tokio's paused clock with `TokioClock` injected; the one concurrency test
//! that needs real threads uses real time and never waits for time to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::cache::{RefreshPolicy, RefreshTokenSource, TokenSource};
use tokensmith_core::clock::{Clock, SystemClock, TokioClock};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::*;
use tokensmith_core::{
    error::{TransportError, TransportErrorKind},
    http::{HttpResponse, Transport},
    request::TokenRequest,
};

const S: fn(u64) -> Duration = Duration::from_secs;

/// A token source with counters: issues `token-1`, `token-2`, ... of a set lifetime, stamped with the
/// injected clock, after an optional (paused-time) delay and a few yields; fails while told to.
#[derive(Debug)]
struct FakeSource {
    clock: Arc<dyn Clock>,
    fetches: AtomicUsize,
    lifetime: Mutex<Duration>,
    delay: Duration,
    failing: AtomicBool,
    panic_next: AtomicBool,
}

impl FakeSource {
    fn new(clock: Arc<dyn Clock>, lifetime: Duration) -> Self {
        FakeSource {
            clock,
            fetches: AtomicUsize::new(0),
            lifetime: Mutex::new(lifetime),
            delay: Duration::ZERO,
            failing: AtomicBool::new(false),
            panic_next: AtomicBool::new(false),
        }
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

fn down() -> Error {
    Error::Transport(TransportError::new(TransportErrorKind::Connect, "connection refused"))
}

#[async_trait]
impl TokenSource for FakeSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("the fake source panics on purpose");
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(down());
        }
        let lifetime = *self.lifetime.lock().unwrap();
        Ok(AccessToken::builder(format!("token-{n}")).expires_in(self.clock.system_time(), lifetime).build())
    }

    fn cache_key(&self) -> String {
        "fake".to_owned()
    }
}

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

fn paused_cache(lifetime: Duration) -> (CachedProvider<FakeSource>, Arc<dyn Clock>) {
    paused_cache_with(lifetime, RefreshPolicy::default())
}

fn paused_cache_with(lifetime: Duration, policy: RefreshPolicy) -> (CachedProvider<FakeSource>, Arc<dyn Clock>) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let cache =
        CachedProvider::builder(FakeSource::new(clock.clone(), lifetime)).clock(clock.clone()).policy(policy).build();
    (cache, clock)
}

/// Runs `n` callers of `token()` at once on the current task and returns their results.
async fn burst<S: TokenSource>(cache: &CachedProvider<S>, n: usize) -> Vec<Result<AccessToken>> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Early refresh

/// The table in `RefreshPolicy`'s docs, row by row.
#[test]
fn refresh_policy_table_matches_the_docs() {
    let policy = RefreshPolicy::default();
    // (lifetime, margin, largest jitter)
    let rows = [
        (S(2), Duration::from_secs(1), Duration::ZERO),
        (S(300), S(60), S(15)),
        (S(900), S(180), S(45)),
        (S(7200), S(300), S(75)),
        (S(36000), S(300), S(75)),
    ];
    for (lifetime, margin, jitter) in rows {
        assert_eq!(policy.margin(lifetime), margin, "margin for {lifetime:?}");
        for _ in 0..500 {
            let m = policy.jittered_margin(lifetime);
            assert!(m >= margin && m <= margin + jitter, "jittered margin {m:?} for {lifetime:?}");
            assert!(m <= lifetime / 2, "a token is used for at least half its life");
        }
        assert_eq!(policy.clone().jitter(0.0).jittered_margin(lifetime), margin);
    }
    // A tenth of the lifetime, at most 2 s.
    assert_eq!(policy.expiry_skew(S(10)), S(1));
    assert_eq!(policy.expiry_skew(S(900)), S(2));
    // Bounds are configurable; min beats max when they cross.
    let tight = RefreshPolicy::default().fraction(0.1).min_margin(S(30)).max_margin(S(20));
    assert_eq!(tight.margin(S(900)), S(30));
}

#[test]
fn jitter_spreads_a_fleet() {
    let policy = RefreshPolicy::default();
    let margins: Vec<Duration> = (0..200).map(|_| policy.jittered_margin(S(900))).collect();
    let distinct: HashSet<_> = margins.iter().collect();
    assert!(distinct.len() > 150, "only {} distinct refresh instants out of 200", distinct.len());
    let (min, max) = (margins.iter().min().unwrap(), margins.iter().max().unwrap());
    assert!(*max - *min > S(30), "200 processes refresh within {:?} of each other", *max - *min);
}

#[tokio::test(start_paused = true)]
async fn refresh_scales_with_lifetime() {
    // (lifetime, still cached at, refreshed by): ProBit, WhiteBIT, Doorkeeper, Django; see the table.
    let cases = [
        (S(900), S(674), S(721)),
        (S(300), S(224), S(241)),
        (S(7200), S(6824), S(6901)),
        (S(36000), S(35624), S(35701)),
    ];
    for (lifetime, cached_at, refreshed_by) in cases {
        let (cache, _) = paused_cache(lifetime);
        let first = cache.token().await.unwrap();
        assert_eq!(cache.source().fetches(), 1);

        tokio::time::advance(cached_at).await;
        let again = cache.cached_token().expect("still fresh before the refresh window");
        assert!(again.same_token(&first));
        assert!(cache.token().await.unwrap().same_token(&first));
        assert_eq!(cache.source().fetches(), 1, "{lifetime:?}: refreshed too early");

        tokio::time::advance(refreshed_by - cached_at).await;
        assert!(cache.cached_token().is_none(), "{lifetime:?}: not due for refresh after the window");
        let second = cache.token().await.unwrap();
        assert!(!second.same_token(&first), "{lifetime:?}: not refreshed");
        assert_eq!(cache.source().fetches(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_instants_are_jittered_across_caches() {
    // 20 caches fetched at the same instant: they must not all refresh at the same second.
    let mut caches = Vec::new();
    for _ in 0..20 {
        let (cache, _) = paused_cache(S(900));
        cache.token().await.unwrap();
        caches.push(cache);
    }
    tokio::time::advance(S(670)).await;
    let mut due_at = vec![None; caches.len()];
    for second in 671..=725 {
        tokio::time::advance(S(1)).await;
        for (i, cache) in caches.iter().enumerate() {
            if due_at[i].is_none() && cache.cached_token().is_none() {
                due_at[i] = Some(second);
            }
        }
    }
    let due: HashSet<_> = due_at.iter().map(|d| d.expect("every cache came due")).collect();
    assert!(due.len() >= 5, "20 caches came due in only {} distinct seconds: {due:?}", due.len());
}

// ---------------------------------------------------------------------------------------------------
// Single flight

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_fetch() {
    let source = FakeSource::new(Arc::new(SystemClock::new()), S(900));
    let cache = CachedProvider::new(source);
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache.token().await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for h in handles {
        tokens.push(h.await.unwrap().unwrap());
    }
    assert_eq!(cache.source().fetches(), 1, "1,000 callers on an empty cache made several fetches");
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_during_a_slow_fetch_wait_for_it() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let cache = CachedProvider::builder(FakeSource::new(clock.clone(), S(900)).delay(S(3))).clock(clock).build();
    let started = tokio::time::Instant::now();
    let results = burst(&cache, 200).await;
    assert_eq!(cache.source().fetches(), 1);
    assert!(results.iter().all(|r| secret(r.as_ref().unwrap()) == "token-1"));
    assert_eq!(started.elapsed(), S(3), "callers waited for the one fetch, not for one each");
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_failure() {
    let (cache, _) = paused_cache(S(900));
    cache.source().fail(true);
    let results = burst(&cache, 100).await;
    assert_eq!(cache.source().fetches(), 1);
    for r in results {
        assert!(matches!(r, Err(Error::Transport(ref e)) if e.kind() == TransportErrorKind::Connect), "{r:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_caller_giving_up_does_not_cancel_the_fetch() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let cache = CachedProvider::builder(FakeSource::new(clock.clone(), S(900)).delay(S(10))).clock(clock).build();
    assert!(tokio::time::timeout(S(1), cache.token()).await.is_err(), "the caller gave up");
    tokio::time::sleep(S(10)).await;
    let token = cache.cached_token().expect("the fetch finished without its caller");
    assert_eq!(secret(&token), "token-1");
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(cache.source().fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_fetch_does_not_wedge_the_cache() {
    let (cache, _) = paused_cache(S(900));
    cache.source().panic_next.store(true, Ordering::SeqCst);
    let error = cache.token().await.unwrap_err();
    assert!(matches!(error, Error::Runtime { .. }), "{error:?}");
    // A panic is a failure like any other: it backs off (issue 14, item 14), repeating the error ...
    let error = cache.token().await.unwrap_err();
    assert!(matches!(error, Error::Runtime { .. }), "{error:?}");
    assert_eq!(cache.source().fetches(), 1);
    // ... and the first call after the back-off starts a new fetch.
    tokio::time::advance(S(1)).await;
    let token = cache.token().await.expect("the next caller starts a new fetch");
    assert_eq!(secret(&token), "token-2");
}

// ---------------------------------------------------------------------------------------------------
// Failure handling and back-off

#[tokio::test(start_paused = true)]
async fn failing_refresh_while_valid_serves_the_old_token_then_the_error_after_expiry() {
    let (cache, _) = paused_cache(S(900));
    let old = cache.token().await.unwrap();
    tokio::time::advance(S(760)).await; // past the refresh window (675–720 s), 140 s before expiry
    cache.source().fail(true);

    for r in burst(&cache, 50).await {
        assert!(r.unwrap().same_token(&old), "a caller did not get the still-valid token");
    }
    assert_eq!(cache.source().fetches(), 2, "one refresh attempt for 50 callers");
    assert!(cache.cached_token().is_none(), "a token due for refresh is not 'fresh'");

    // During the back-off: the old token, no request.
    assert!(cache.token().await.unwrap().same_token(&old));
    assert_eq!(cache.source().fetches(), 2, "no hammering during the back-off");

    // After the back-off: one more attempt, still the old token.
    tokio::time::advance(Duration::from_millis(300)).await;
    assert!(cache.token().await.unwrap().same_token(&old));
    assert_eq!(cache.source().fetches(), 3);

    // Past its expiry (minus the 2 s skew) the old token is never handed out: callers get the error.
    tokio::time::advance(S(140)).await;
    let error = cache.token().await.unwrap_err();
    assert!(matches!(error, Error::Transport(_) | Error::BackingOff { .. }), "{error:?}");
    assert!(cache.cached_token().is_none());
    assert!(cache.with_cached(|_| ()).is_none());

    // Recovery: the failure was never cached as a token.
    cache.source().fail(false);
    tokio::time::advance(S(60)).await;
    let fresh = cache.token().await.unwrap();
    assert!(!fresh.same_token(&old));
    assert!(cache.cached_token().unwrap().same_token(&fresh));
}

#[tokio::test(start_paused = true)]
async fn failed_fetches_back_off_exponentially() {
    let policy = RefreshPolicy::default().initial_backoff(Duration::from_millis(200)).max_backoff(S(2));
    let (cache, _) = paused_cache_with(S(900), policy);
    cache.source().fail(true);

    let mut retry_ins = Vec::new();
    for attempt in 1..=6 {
        let first = cache.token().await.unwrap_err();
        assert!(matches!(first, Error::Transport(_)), "attempt {attempt}: the real error first: {first:?}");
        assert_eq!(cache.source().fetches(), attempt);
        // Immediately after: backing off, no request.
        let Err(Error::BackingOff { retry_in, last }) = cache.token().await else {
            panic!("attempt {attempt}: not backing off")
        };
        assert!(last.contains("connection refused"), "{last}");
        assert_eq!(cache.source().fetches(), attempt);
        assert!(cache.cached_token().is_none(), "a failure was cached as a token");
        retry_ins.push(retry_in);
        tokio::time::advance(retry_in).await;
    }
    // 200 ms doubling, minus up to 25 % jitter, capped at 2 s.
    let expected_ms = [200u64, 400, 800, 1600, 2000, 2000];
    for (got, ms) in retry_ins.iter().zip(expected_ms) {
        let ceiling = Duration::from_millis(ms);
        assert!(*got <= ceiling && *got >= ceiling.mul_f64(0.75), "back-off {got:?}, expected ~{ceiling:?}");
    }

    // One success resets the back-off.
    cache.source().fail(false);
    assert_eq!(secret(&cache.token().await.unwrap()), "token-7");
}

#[tokio::test(start_paused = true)]
async fn clear_forgets_the_token_and_the_back_off() {
    let (cache, _) = paused_cache(S(900));
    cache.token().await.unwrap();
    cache.source().fail(true);
    cache.clear();
    assert!(cache.token().await.is_err());
    assert!(matches!(cache.token().await, Err(Error::BackingOff { .. })));
    cache.source().fail(false);
    cache.clear();
    assert_eq!(secret(&cache.token().await.unwrap()), "token-3");
}

// ---------------------------------------------------------------------------------------------------
// Invalidation

#[tokio::test(start_paused = true)]
async fn a_burst_of_401s_causes_one_refetch() {
    let (cache, _) = paused_cache(S(900));
    let first = cache.token().await.unwrap();
    for _ in 0..100 {
        cache.invalidate(&first);
    }
    assert!(cache.cached_token().is_none());
    for r in burst(&cache, 100).await {
        assert_eq!(secret(&r.unwrap()), "token-2");
    }
    assert_eq!(cache.source().fetches(), 2, "100 rejections of one token caused several refetches");

    // Late 401s for the old token do not drop the new one.
    for _ in 0..100 {
        cache.invalidate(&first);
    }
    assert_eq!(secret(&cache.cached_token().unwrap()), "token-2");
    assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
    assert_eq!(cache.source().fetches(), 2);

    // A rejection of a token never issued (equal value, another allocation) drops the current one.
    let lookalike = AccessToken::builder("token-2").build();
    cache.invalidate(&lookalike);
    assert_eq!(secret(&cache.token().await.unwrap()), "token-3");
}

#[tokio::test(start_paused = true)]
async fn cached_reads_follow_replacements_on_every_thread() {
    let (cache, _) = paused_cache(S(900));
    let first = cache.token().await.unwrap();
    // Read the token on this thread, then replace it: the old one must not be handed out again.
    assert!(cache.cached_token().unwrap().same_token(&first));
    assert_eq!(cache.with_cached(secret).unwrap(), "token-1");
    cache.invalidate(&cache.cached_token().unwrap());
    assert!(cache.cached_token().is_none());
    let second = cache.token().await.unwrap();
    assert!(cache.cached_token().unwrap().same_token(&second));
    assert!(!cache.cached_token().unwrap().same_token(&first));
    // And from other threads.
    let other = std::thread::scope(|s| s.spawn(|| cache.cached_token().map(|t| secret(&t))).join().unwrap());
    assert_eq!(other.as_deref(), Some("token-2"));
    // Many caches read on one thread each give their own token.
    let caches: Vec<_> = (0..10).map(|_| paused_cache(S(900)).0).collect();
    for c in &caches {
        c.token().await.unwrap();
    }
    for _ in 0..3 {
        for c in &caches {
            assert!(c.cached_token().unwrap().same_token(&c.token().await.unwrap()));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Rotating refresh tokens

/// A token endpoint that rotates refresh tokens and, like a server with reuse detection, refuses any
/// refresh token it has seen before with `invalid_grant`.
#[derive(Debug, Default)]
struct RotatingServer {
    sent: Mutex<Vec<String>>,
    issued: AtomicUsize,
}

#[async_trait]
impl Transport for RotatingServer {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let body = request.wire_body();
        let rt = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let mut sent = self.sent.lock().unwrap();
        if sent.contains(&rt) {
            sent.push(rt);
            return Ok(HttpResponse::json(400, r#"{"error":"invalid_grant"}"#));
        }
        sent.push(rt);
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(HttpResponse::json(
            200,
            format!(r#"{{"access_token":"at-{n}","token_type":"bearer","expires_in":100,"refresh_token":"rt-{n}"}}"#),
        ))
    }
}

fn refresh_cache(
    server: Arc<RotatingServer>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
) -> CachedProvider<RefreshTokenSource> {
    let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap());
    let client = TokenClient::builder("rotating", endpoint, ClientCredentials::new("id", "secret"))
        .transport(server)
        .clock(clock.clone())
        .build()
        .unwrap();
    CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty())).clock(clock).store(store).key("k").build()
}

fn initial_grant(clock: &Arc<dyn Clock>) -> AccessToken {
    AccessToken::builder("at-0")
        .expires_in(clock.system_time(), S(100))
        .refresh_token(Some(RefreshToken::new("rt-0")))
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_rotating_refresh_token_is_never_sent_twice() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Arc::new(RotatingServer::default());
    let store = Arc::new(MemoryStore::new());
    let cache = refresh_cache(server.clone(), store.clone(), clock.clone());
    cache.insert(initial_grant(&clock)).await.unwrap();

    for round in 1..=5 {
        tokio::time::advance(S(95)).await; // due for refresh, still usable
        for r in burst(&cache, 50).await {
            // The extra refresh after the 401 burst in round 3 shifts the numbering by one.
            let n = if round > 3 { round + 1 } else { round };
            assert_eq!(secret(&r.unwrap()), format!("at-{n}"));
        }
        // A 401 burst in the middle of the round refreshes once more, with the newest refresh token.
        if round == 3 {
            let current = cache.cached_token().unwrap();
            for _ in 0..20 {
                cache.invalidate(&current);
            }
            for r in burst(&cache, 50).await {
                assert_eq!(secret(&r.unwrap()), "at-4");
            }
        }
    }
    let sent = server.sent.lock().unwrap().clone();
    let distinct: HashSet<_> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "a refresh token was sent twice: {sent:?}");
    assert_eq!(sent, ["rt-0", "rt-1", "rt-2", "rt-3", "rt-4", "rt-5"]);
    // The newest refresh token is in the store.
    let stored = store.load("k").await.unwrap().unwrap();
    assert_eq!(stored.refresh_token().unwrap().secret().expose_secret(), "rt-6");
}

#[tokio::test(start_paused = true)]
async fn two_processes_sharing_a_store_do_not_reuse_a_rotated_refresh_token() {
    // Two caches over one store stand for two processes over one shared (e.g. Redis) store.
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Arc::new(RotatingServer::default());
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let a = refresh_cache(server.clone(), store.clone(), clock.clone());
    let b = refresh_cache(server.clone(), store.clone(), clock.clone());
    a.insert(initial_grant(&clock)).await.unwrap();
    assert_eq!(secret(&b.token().await.unwrap()), "at-0", "b reads the grant from the store");

    tokio::time::advance(S(95)).await;
    assert_eq!(secret(&a.token().await.unwrap()), "at-1");
    // b's own copy is due too; it must pick up a's rotated set instead of sending rt-0 again.
    assert_eq!(secret(&b.token().await.unwrap()), "at-1");
    assert_eq!(*server.sent.lock().unwrap(), ["rt-0"]);

    tokio::time::advance(S(95)).await;
    assert_eq!(secret(&b.token().await.unwrap()), "at-2");
    assert_eq!(secret(&a.token().await.unwrap()), "at-2");
    assert_eq!(*server.sent.lock().unwrap(), ["rt-0", "rt-1"]);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_refresh_token_asks_for_reauthorization() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Arc::new(RotatingServer::default());
    server.sent.lock().unwrap().push("rt-0".to_owned()); // already used elsewhere
    let cache = refresh_cache(server, Arc::new(MemoryStore::new()), clock.clone());
    cache.insert(initial_grant(&clock)).await.unwrap();
    tokio::time::advance(S(99)).await; // expired for the cache (2 s skew)
    let error = cache.token().await.unwrap_err();
    assert!(matches!(error, Error::ReauthorizationRequired { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------------------
// Token store

/// A store that records calls and can be told to fail; stands in for a file or Redis store.
#[derive(Debug, Default)]
struct RecordingStore {
    inner: MemoryStore,
    calls: Mutex<VecDeque<&'static str>>,
    fail_load: AtomicBool,
    fail_save: AtomicBool,
}

#[async_trait]
impl TokenStore for RecordingStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        self.calls.lock().unwrap().push_back("load");
        if self.fail_load.load(Ordering::SeqCst) {
            return Err(Error::store("the store is unreachable", None));
        }
        self.inner.load(key).await
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.calls.lock().unwrap().push_back("save");
        if self.fail_save.load(Ordering::SeqCst) {
            return Err(Error::store("the store is read-only", None));
        }
        self.inner.save(key, token).await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key).await
    }
}

/// A cache of 900 s tokens on tokio's (paused) clock over a fresh [`RecordingStore`].
fn recorded_cache() -> (CachedProvider<FakeSource>, Arc<RecordingStore>) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let store = Arc::new(RecordingStore::default());
    let cache =
        CachedProvider::builder(FakeSource::new(clock.clone(), S(900))).clock(clock).store(store.clone()).build();
    (cache, store)
}

#[tokio::test(start_paused = true)]
async fn a_fresh_token_in_the_store_is_used_without_a_request() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let store = Arc::new(MemoryStore::new());
    let saved = AccessToken::builder("from-an-earlier-run").expires_in(clock.system_time(), S(900)).build();
    store.save("fake", &saved).await.unwrap();
    let cache = CachedProvider::builder(FakeSource::new(clock.clone(), S(900))).clock(clock).store(store).build();
    assert!(cache.token().await.unwrap().same_token(&saved));
    assert_eq!(cache.source().fetches(), 0);
}

#[tokio::test(start_paused = true)]
async fn new_tokens_are_saved_before_they_are_handed_out() {
    let (cache, store) = recorded_cache();
    let token = cache.token().await.unwrap();
    assert!(store.inner.load("fake").await.unwrap().unwrap().same_token(&token));
    assert_eq!(*store.calls.lock().unwrap(), ["load", "save"]);
    // Cached reads never touch the store.
    for _ in 0..10 {
        cache.token().await.unwrap();
    }
    assert_eq!(store.calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn store_failures() {
    let (cache, store) = recorded_cache();

    // An unreadable store fails the fetch (it may hold the only refresh token) and backs off.
    store.fail_load.store(true, Ordering::SeqCst);
    assert!(matches!(cache.token().await, Err(Error::Store { .. })));
    assert_eq!(cache.source().fetches(), 0);
    // During the back-off the same (not retryable) error is repeated, without touching the store.
    assert!(matches!(cache.token().await, Err(Error::Store { .. })));
    assert_eq!(store.calls.lock().unwrap().iter().filter(|c| **c == "load").count(), 1);

    // A store that cannot save: the new token is still served from memory.
    store.fail_load.store(false, Ordering::SeqCst);
    store.fail_save.store(true, Ordering::SeqCst);
    tokio::time::advance(S(1)).await;
    assert_eq!(secret(&cache.token().await.unwrap()), "token-1");
    assert_eq!(secret(&cache.cached_token().unwrap()), "token-1");
}

fn saves(store: &RecordingStore) -> usize {
    store.calls.lock().unwrap().iter().filter(|c| **c == "save").count()
}

#[tokio::test(start_paused = true)]
async fn a_token_set_that_could_not_be_saved_is_saved_in_the_background() {
    let (cache, store) = recorded_cache();
    store.fail_save.store(true, Ordering::SeqCst);
    let token = cache.token().await.unwrap();
    assert_eq!(saves(&store), 1);
    assert!(store.inner.load("fake").await.unwrap().is_none());

    // Retried after 1 s (still failing), then 2 s later (the store works again).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(saves(&store), 2);
    store.fail_save.store(false, Ordering::SeqCst);
    tokio::time::sleep(S(2)).await;
    assert_eq!(saves(&store), 3);
    assert!(store.inner.load("fake").await.unwrap().unwrap().same_token(&token));
    // Saved: no more attempts.
    tokio::time::sleep(S(300)).await;
    assert_eq!(saves(&store), 3);
    assert_eq!(cache.source().fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_background_save_stops_when_a_newer_token_set_replaces_it() {
    let (cache, store) = recorded_cache();
    store.fail_save.store(true, Ordering::SeqCst);
    assert_eq!(secret(&cache.token().await.unwrap()), "token-1");
    cache.clear();
    assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
    assert_eq!(saves(&store), 2);
    store.fail_save.store(false, Ordering::SeqCst);
    tokio::time::sleep(S(120)).await;
    // token-1's retry found token-2 in its place and stopped; token-2's retry saved it.
    assert_eq!(saves(&store), 3);
    assert_eq!(secret(&store.inner.load("fake").await.unwrap().unwrap()), "token-2");

    // A cache that is dropped stops retrying too.
    store.fail_save.store(true, Ordering::SeqCst);
    cache.clear();
    cache.token().await.unwrap();
    assert_eq!(saves(&store), 4);
    drop(cache);
    tokio::time::sleep(S(120)).await;
    assert_eq!(saves(&store), 4);
}
