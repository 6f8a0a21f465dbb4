//! The cache under the faults of issue 14: token sets told apart by server and grant, recency by the
//! store's version (not by expiry), lost sets written back, no panic or wedge without a runtime, a
//! fetch task dropped unpolled, a background re-save that must not overwrite a newer set, a machine
//! that slept, a source that hands out expired tokens, and a fleet save that fails after the
//! provider answered.
//!
//! Each test fails on the cache as it was before issue 14. Timing runs on tokio's paused clock or on a
//! clock the test moves; nothing waits for real time to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokensmith_core::cache::{ClientCredentialsSource, RefreshPolicy, TokenSource};
use tokensmith_core::clock::{Clock, TokioClock};
use tokensmith_core::error::{TransportError, TransportErrorKind};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::store::Versioned;
use tokensmith_core::testing::{FakeEndpoint, ManualClock, rfc6749_success};
use tokensmith_core::*;

const S: fn(u64) -> Duration = Duration::from_secs;

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

// ---------------------------------------------------------------------------------------------------
// A rotating grant: every refresh token works once; the server counts how often each was presented.

#[derive(Debug, Default)]
struct Server {
    issued: AtomicUsize,
    /// refresh token -> times presented
    presented: Mutex<HashMap<String, usize>>,
    /// The lifetime of the next tokens (a provider may shorten it).
    lifetime_s: AtomicU64,
    failing: AtomicBool,
}

impl Server {
    fn new(lifetime: Duration) -> Arc<Self> {
        let server = Server::default();
        server.lifetime_s.store(lifetime.as_secs(), Ordering::SeqCst);
        Arc::new(server)
    }

    fn issue(&self, clock: &dyn Clock) -> AccessToken {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = S(self.lifetime_s.load(Ordering::SeqCst));
        AccessToken::builder(format!("access-{n}"))
            .expires_in(clock.system_time(), lifetime)
            .refresh_token(Some(RefreshToken::new(format!("refresh-{n}"))))
            .build()
    }

    fn max_presentations(&self) -> usize {
        self.presented.lock().unwrap().values().copied().max().unwrap_or(0)
    }
}

/// One process's view of the grant: refreshes from the current set's refresh token.
#[derive(Debug)]
struct Rotating {
    server: Arc<Server>,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl TokenSource for Rotating {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        if self.server.failing.load(Ordering::SeqCst) {
            return Err(Error::Transport(TransportError::new(TransportErrorKind::Connect, "connection refused")));
        }
        let refresh = current
            .and_then(AccessToken::refresh_token)
            .ok_or_else(|| Error::ReauthorizationRequired { reason: "no refresh token is stored".to_owned() })?;
        let refresh = refresh.secret().expose_secret().to_owned();
        let seen = {
            let mut presented = self.server.presented.lock().unwrap();
            let count = presented.entry(refresh).or_default();
            *count += 1;
            *count
        };
        if seen > 1 {
            return Err(Error::ReauthorizationRequired { reason: "the refresh token was used before".to_owned() });
        }
        Ok(self.server.issue(&*self.clock))
    }

    fn cache_key(&self) -> String {
        "rotating".to_owned()
    }

    fn rotates_grant(&self) -> bool {
        true
    }
}

fn rotating(server: &Arc<Server>, clock: &Arc<dyn Clock>, store: Arc<dyn TokenStore>) -> CachedProvider<Rotating> {
    CachedProvider::builder(Rotating { server: server.clone(), clock: clock.clone() })
        .clock(clock.clone())
        .policy(RefreshPolicy::default().jitter(0.0))
        .store(store)
        .build()
}

// ---------------------------------------------------------------------------------------------------
// Item 1: the store key identifies the authorization server and everything that decides the token.

fn client(provider: &'static str, token_url: &str, client_id: &str, endpoint: Arc<FakeEndpoint>) -> TokenClient {
    client_with(provider, TokenEndpoint::new(token_url.parse().unwrap()), client_id, endpoint)
}

fn client_with(
    provider: &'static str,
    endpoint: TokenEndpoint,
    client_id: &str,
    fake: Arc<FakeEndpoint>,
) -> TokenClient {
    TokenClient::builder(provider, endpoint, ClientCredentials::new(client_id, "secret-value-1"))
        .transport(fake)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_same_client_id_at_two_authorization_servers_never_shares_a_token() {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let realm_a = Arc::new(FakeEndpoint::new(rfc6749_success));
    let realm_b = Arc::new(FakeEndpoint::new(rfc6749_success));
    let a = CachedProvider::builder(ClientCredentialsSource::new(
        client("keycloak", "https://id.example.test/realms/a/token", "shared-id", realm_a.clone()),
        Scopes::parse("read"),
    ))
    .store(store.clone())
    .build();
    let b = CachedProvider::builder(ClientCredentialsSource::new(
        client("keycloak", "https://id.example.test/realms/b/token", "shared-id", realm_b.clone()),
        Scopes::parse("read"),
    ))
    .store(store.clone())
    .build();
    let token_a = a.token().await.unwrap();
    let token_b = b.token().await.unwrap();
    assert_eq!(realm_a.request_count(), 1);
    assert_eq!(realm_b.request_count(), 1, "realm b asked its own server instead of reading realm a's token");
    assert_ne!(a.key(), b.key());
    assert!(token_a.expires_at() <= token_b.expires_at());
}

#[test]
fn keys_differ_in_every_part_that_decides_the_token_and_never_show_parameter_values() {
    let fake = Arc::new(FakeEndpoint::new(rfc6749_success));
    let key = |provider: &'static str, url: &str, id: &str, scopes: &str, params: &[(&str, &str)]| {
        let mut endpoint = TokenEndpoint::new(url.parse().unwrap());
        for (name, value) in params {
            endpoint = endpoint.extra_param(*name, *value);
        }
        ClientCredentialsSource::new(client_with(provider, endpoint, id, fake.clone()), Scopes::parse(scopes))
            .cache_key()
    };
    let base = key("p", "https://a.test/token", "id", "read write", &[]);
    let variants = [
        key("q", "https://a.test/token", "id", "read write", &[]),
        key("p", "https://b.test/token", "id", "read write", &[]),
        key("p", "https://a.test/token", "id2", "read write", &[]),
        key("p", "https://a.test/token", "id", "read", &[]),
        key("p", "https://a.test/token", "id", "read write", &[("audience", "api-1")]),
        key("p", "https://a.test/token", "id", "read write", &[("audience", "api-2")]),
        key("p", "https://a.test/token", "id", "read write", &[("resource", "api-1")]),
    ];
    for variant in &variants {
        assert_ne!(&base, variant);
    }
    // Scope order does not matter; separators and Redis hash-tag braces in a part are escaped.
    assert_eq!(base, key("p", "https://a.test/token", "id", "write read", &[]));
    assert_ne!(key("p", "https://a.test/token", "a/b", "c", &[]), key("p", "https://a.test/token", "a", "b/c", &[]));
    let braces = key("p", "https://a.test/token", "{x}", "", &[]);
    assert!(!braces.contains('{') && !braces.contains('}'), "{braces}");
    let with_secret = key("p", "https://a.test/token", "id", "", &[("api_key", "Sup3rSecretValue")]);
    assert!(!with_secret.contains("Sup3rSecretValue") && !with_secret.contains("Sup3rS"), "{with_secret}");
}

// ---------------------------------------------------------------------------------------------------
// Item 2: recency by the store's version

#[tokio::test(start_paused = true)]
async fn a_newer_set_with_an_earlier_expiry_is_adopted_not_refreshed_over() {
    // Process b refreshes while the provider has shortened lifetimes (a cap on a login's length):
    // its newer set expires *before* a's. a must adopt it by version; comparing expiries, a kept its
    // own set and refreshed with the spent refresh token.
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Server::new(S(3600));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    store.save("rotating", &server.issue(&*clock)).await.unwrap();
    let a = rotating(&server, &clock, store.clone());
    let b = rotating(&server, &clock, store.clone());
    let first = a.token().await.unwrap();
    assert_eq!(secret(&first), "access-1");
    server.lifetime_s.store(600, Ordering::SeqCst);
    b.token().await.unwrap();
    b.invalidate(&first);
    let b_set = b.token().await.unwrap();
    assert_eq!(secret(&b_set), "access-2");
    assert!(b_set.expires_at() < first.expires_at(), "the newer set expires first");

    a.invalidate(&first);
    let adopted = a.token().await.unwrap();
    assert!(adopted.same_token(&b_set), "a adopted b's newer set");
    assert_eq!(server.max_presentations(), 1, "no refresh token was presented twice");
}

#[tokio::test(start_paused = true)]
async fn a_set_saved_by_a_host_whose_clock_runs_fast_does_not_hide_a_newer_one() {
    // b's host clock is 5 minutes fast, so b's set carries a later expiry; a then refreshes and
    // saves a newer set. b must adopt a's newer set by version, not keep its own "later" one.
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let fast: Arc<dyn Clock> = Arc::new(ClockAhead { inner: clock.clone(), ahead: S(300) });
    let server = Server::new(S(900));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    store.save("rotating", &server.issue(&*clock)).await.unwrap();
    let a = rotating(&server, &clock, store.clone());
    let b = CachedProvider::builder(Rotating { server: server.clone(), clock: fast.clone() })
        .clock(fast.clone())
        .policy(RefreshPolicy::default().jitter(0.0))
        .store(store.clone())
        .build();
    let seed = b.token().await.unwrap();
    b.invalidate(&seed);
    let from_b = b.token().await.unwrap(); // saved with an expiry 5 min later than a's clock would give
    a.token().await.unwrap();
    a.invalidate(&from_b);
    let from_a = a.token().await.unwrap();
    assert!(from_a.expires_at() < from_b.expires_at(), "a's newer set looks older by expiry");
    b.invalidate(&from_b);
    let adopted = b.token().await.unwrap();
    assert!(adopted.same_token(&from_a), "b adopted the newer set");
    assert_eq!(server.max_presentations(), 1);
}

#[derive(Debug)]
struct ClockAhead {
    inner: Arc<dyn Clock>,
    ahead: Duration,
}

impl Clock for ClockAhead {
    fn monotonic(&self) -> Duration {
        self.inner.monotonic()
    }

    fn system_time(&self) -> SystemTime {
        self.inner.system_time() + self.ahead
    }
}

#[tokio::test(start_paused = true)]
async fn a_set_the_store_lost_is_written_back_before_anything_else() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Server::new(S(900));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    store.save("rotating", &server.issue(&*clock)).await.unwrap();
    let cache = rotating(&server, &clock, store.clone());
    let token = cache.token().await.unwrap();
    cache.invalidate(&token);
    let newest = cache.token().await.unwrap();
    // The store loses it (a restored backup, a deleted file); the next refresh fails.
    store.remove("rotating").await.unwrap();
    server.failing.store(true, Ordering::SeqCst);
    cache.invalidate(&newest);
    let _ = cache.token().await;
    let stored = store.load("rotating").await.unwrap().expect("the lost set was written back");
    assert!(stored.same_token(&newest));
    assert!(stored.refresh_token().unwrap().same_as(&RefreshToken::new("refresh-2")));
}

// ---------------------------------------------------------------------------------------------------
// Items 10, 11: no runtime, and a fetch task dropped before its first poll

fn poll_once<F: std::future::Future>(future: F) -> Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    future.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[derive(Debug)]
struct Counting {
    clock: Arc<dyn Clock>,
    fetches: AtomicUsize,
}

#[async_trait]
impl TokenSource for Counting {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::builder(format!("token-{n}")).expires_in(self.clock.system_time(), S(900)).build())
    }

    fn cache_key(&self) -> String {
        "counting".to_owned()
    }
}

fn counting(clock: &Arc<ManualClock>) -> CachedProvider<Counting> {
    let clock: Arc<dyn Clock> = clock.clone();
    CachedProvider::builder(Counting { clock: clock.clone(), fetches: AtomicUsize::new(0) }).clock(clock).build()
}

#[test]
fn a_miss_outside_a_runtime_is_a_typed_error_and_does_not_poison_the_cache() {
    let clock = Arc::new(ManualClock::new());
    let cache = counting(&clock);
    match poll_once(cache.token()) {
        Poll::Ready(Err(Error::Runtime { message })) => assert!(message.contains("Tokio runtime"), "{message}"),
        other => panic!("expected a runtime error, got {other:?}"),
    }
    // Tokio callers are not affected: nothing was marked in flight, nothing is poisoned.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let token = runtime.block_on(cache.token()).unwrap();
    assert_eq!(secret(&token), "token-1");
    // A hit needs no runtime.
    assert!(matches!(poll_once(cache.token()), Poll::Ready(Ok(_))));
}

#[test]
fn a_fetch_task_dropped_before_its_first_poll_does_not_wedge_the_cache() {
    let clock = Arc::new(ManualClock::new());
    let cache = counting(&clock);
    // A runtime that has shut down: the task spawned on it is dropped without being polled.
    let dead = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let handle = dead.handle().clone();
    drop(dead);
    {
        let _entered = handle.enter();
        match poll_once(cache.token()) {
            Poll::Ready(Err(Error::Runtime { .. })) => {}
            other => panic!("expected a runtime error, got {other:?}"),
        }
    }
    assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 0);
    // After the back-off, the next caller on a live runtime fetches.
    clock.advance(S(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let token = runtime.block_on(cache.token()).expect("the in-flight marker was cleared");
    assert_eq!(secret(&token), "token-1");
}

// ---------------------------------------------------------------------------------------------------
// Item 12: the background re-save never puts an older set over a newer one

/// A store that fails the next `n` saves, over a shared inner store.
#[derive(Debug)]
struct Flaky {
    inner: Arc<MemoryStore>,
    failures: AtomicUsize,
}

#[async_trait]
impl TokenStore for Flaky {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key).await
    }
    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.load_versioned(key).await
    }
    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(Error::store("the disk is full", None));
        }
        self.inner.save_versioned(key, token).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_background_resave_never_overwrites_a_newer_rotated_set() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Server::new(S(3600));
    let inner = Arc::new(MemoryStore::new());
    inner.save("rotating", &server.issue(&*clock)).await.unwrap();
    let flaky = Arc::new(Flaky { inner: inner.clone(), failures: AtomicUsize::new(0) });
    let a = rotating(&server, &clock, flaky.clone());
    let b = rotating(&server, &clock, inner.clone());
    let seed = a.token().await.unwrap();
    // a refreshes; its save fails, so it is saved again in the background after 1 s.
    flaky.failures.store(1, Ordering::SeqCst);
    a.invalidate(&seed);
    let from_a = a.token().await.unwrap();
    assert_eq!(secret(&from_a), "access-2");
    // a's save did land after all (it timed out after writing, as a slow disk or network does), so
    // b (another process) refreshes from a's set, while the provider shortens lifetimes.
    inner.save("rotating", &from_a).await.unwrap();
    server.lifetime_s.store(600, Ordering::SeqCst);
    let _ = b.token().await.unwrap();
    b.invalidate(&from_a);
    let from_b = b.token().await.unwrap();
    assert_eq!(secret(&from_b), "access-3");
    assert!(from_b.expires_at() < from_a.expires_at());
    // a's background re-save runs now: it must not put a's older set over b's.
    tokio::time::sleep(S(2)).await;
    let stored = inner.load("rotating").await.unwrap().unwrap();
    assert!(stored.same_token(&from_b), "the store kept the newer set, got {}", secret(&stored));
}

// ---------------------------------------------------------------------------------------------------
// Item 13: a machine that slept

/// A clock whose wall time can jump without its monotonic time (a suspended machine: the monotonic
/// clock does not count the sleep).
#[derive(Debug)]
struct Sleepy {
    inner: ManualClock,
    slept: AtomicU64,
}

impl Clock for Sleepy {
    fn monotonic(&self) -> Duration {
        self.inner.monotonic()
    }

    fn system_time(&self) -> SystemTime {
        self.inner.system_time() + Duration::from_secs(self.slept.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_token_that_expired_while_the_machine_slept_is_not_served() {
    let clock = Arc::new(Sleepy { inner: ManualClock::new(), slept: AtomicU64::new(0) });
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let cache = CachedProvider::builder(Counting { clock: dyn_clock.clone(), fetches: AtomicUsize::new(0) })
        .clock(dyn_clock)
        .build();
    let before = cache.token().await.unwrap();
    assert!(cache.cached_token().is_some());
    clock.slept.store(3600, Ordering::SeqCst); // an hour of sleep; the token lived 15 minutes
    assert!(cache.cached_token().is_none(), "the expired token is not served after the sleep");
    assert!(cache.with_cached(|_| ()).is_none());
    let after = cache.token().await.unwrap();
    assert!(!after.same_token(&before), "a new token was fetched");
    assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------------
// Item 14: only usable tokens are handed out

#[derive(Debug)]
struct Expired {
    fetches: AtomicUsize,
}

#[async_trait]
impl TokenSource for Expired {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::builder("already-expired").expires_in(SystemTime::now(), Duration::ZERO).build())
    }

    fn cache_key(&self) -> String {
        "expired".to_owned()
    }
}

#[tokio::test]
async fn an_expired_token_from_a_source_is_an_error_and_backs_off() {
    let cache = CachedProvider::new(Expired { fetches: AtomicUsize::new(0) });
    let error = cache.token().await.unwrap_err();
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");
    assert!(!error.to_string().contains("already-expired"), "{error}");
    for _ in 0..10 {
        assert!(cache.token().await.is_err());
    }
    assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 1, "no refetch during the back-off");
}

// ---------------------------------------------------------------------------------------------------
// Issue 15, item 9: an inserted set (a spent code's tokens) is never dropped by a failed save

#[tokio::test(start_paused = true)]
async fn an_inserted_set_whose_save_fails_is_kept_served_and_saved_later() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = Server::new(S(3600));
    let inner = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky { inner: inner.clone(), failures: AtomicUsize::new(2) });
    let cache = rotating(&server, &clock, flaky.clone());
    let exchanged = server.issue(&*clock);
    let error = cache.insert(exchanged.clone()).await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }) && error.to_string().contains("keeps it in memory"), "{error}");
    assert!(cache.cached_token().unwrap().same_token(&exchanged), "served from memory");
    assert!(cache.unsaved().unwrap().same_token(&exchanged));
    assert!(inner.load("rotating").await.unwrap().is_none());
    // The background save fails once more (1 s), then lands (3 s).
    tokio::time::sleep(S(4)).await;
    assert!(inner.load("rotating").await.unwrap().unwrap().same_token(&exchanged));
    assert!(cache.unsaved().is_none());
}
