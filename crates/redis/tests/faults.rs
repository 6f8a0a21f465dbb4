//! Redis losing data or a process losing Redis mid-refresh, against a real redis-server: the pending
//! marker, a restart while a refresh is in flight, partial losses (eviction, a lagging replica), a
//! holder cut off after the provider answered, and the start-up check of Redis's settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Proxy, RedisServer};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::LogCapture;
use tokensmith_core::{
    AccessToken, Error, RefreshToken, TokenStore, cache::RefreshPolicy, store::Coordinator, store::LockGuard,
    store::RefreshLock,
};
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig};
use tokensmith_whitebit::{WhitebitBuilder, WhitebitProvider};

const LEASE: Duration = Duration::from_secs(5);

fn token(access: &str, refresh: &str) -> AccessToken {
    AccessToken::builder(access)
        .expires_in(SystemTime::now(), Duration::from_secs(300))
        .refresh_token(Some(RefreshToken::new(refresh)))
        .build()
}

fn acquired(lock: RefreshLock) -> LockGuard {
    match lock {
        RefreshLock::Acquired(guard) => guard,
        other => panic!("expected the lock, got {other:?}"),
    }
}

/// A store with a fast watchdog and short timeouts; `settle` is its settle period.
fn store(url: &str, settle: Duration) -> RedisStore {
    RedisStore::builder(url)
        .timeout(Duration::from_millis(300))
        .watchdog_interval(Duration::from_millis(50))
        .settle_period(settle)
        .build()
        .unwrap()
}

/// Polls (real time, bounded: 5 s) until `f` is true.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_lock_marks_a_refresh_pending_until_it_is_saved_or_unlocked() {
    let redis = RedisServer::start();
    let a = RedisStore::new(&redis.url()).unwrap();
    let b = RedisStore::new(&redis.url()).unwrap();
    let pending = || redis.cli(&["HGET", "tokensmith:token:{k}", "pending"]);

    // A short lease that really lapses (deleting the lock would look like an eviction, which the
    // holder's watchdog repairs: see `an_evicted_fence_counter_or_lock_is_detected_and_repaired`).
    let short = Duration::from_millis(150);
    let lapse = || tokio::time::sleep(Duration::from_millis(250));

    // Granted: the fence is pending, with Redis's time.
    let guard = acquired(a.lock_refresh("k", short).await.unwrap());
    assert_eq!(pending(), guard.fence().to_string());
    let at: u64 = redis.cli(&["HGET", "tokensmith:token:{k}", "pending_at"]).parse().unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(now.abs_diff(at) < 5_000, "pending_at {at} is Redis's clock in ms ({now})");
    // The holder's lease lapses before it saved: nobody else may take the lock while the pending
    // timeout (60 s) runs.
    lapse().await;
    assert_eq!(redis.cli(&["EXISTS", "tokensmith:lock:{k}"]), "0");
    assert_eq!(b.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    // The holder can still renew: nobody took the lock since (its refresh is still the pending one).
    assert!(a.extend_lock("k", &guard, LEASE).await.unwrap());
    assert_eq!(redis.cli(&["GET", "tokensmith:lock:{k}"]), guard.owner());
    // A fenced save clears the marker; so does unlocking.
    assert!(a.save_fenced("k", &token("at-1", "rt-1"), &guard).await.unwrap());
    assert_eq!(pending(), "");
    a.unlock("k", &guard).await.unwrap();
    let guard = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert_eq!(pending(), guard.fence().to_string());
    b.unlock("k", &guard).await.unwrap();
    assert_eq!(pending(), "");

    // After the pending timeout a process assumes the holder died before sending: it takes the lock.
    let guard = acquired(a.lock_refresh("k", short).await.unwrap());
    lapse().await;
    let impatient = RedisStore::builder(redis.url()).pending_timeout(Duration::from_millis(400)).build().unwrap();
    assert_eq!(impatient.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    tokio::time::sleep(Duration::from_millis(200)).await; // Redis's clock: real time
    let taken = acquired(impatient.lock_refresh("k", LEASE).await.unwrap());
    assert!(taken.fence() > guard.fence());
    // The holder that was given up on cannot renew any more.
    assert!(!a.extend_lock("k", &guard, LEASE).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_flight_survives_redis_restarting_empty() {
    let mut redis = RedisServer::start();
    let settle = Duration::from_millis(1500);
    let (a, b) = (store(&redis.url(), settle), store(&redis.url(), settle));
    a.save("k", &token("at-0", "rt-0")).await.unwrap();
    assert!(b.load("k").await.unwrap().is_some());
    // a holds the lock and its refresh is in flight when Redis restarts empty.
    let guard = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    redis.restart();
    // a's watchdog notices: it re-asserts its lock and pending marker, holds locks back for the settle
    // period, and jumps the fence counter far above every fence handed out before.
    assert!(eventually(|| redis.cli(&["GET", "tokensmith:lock:{k}"]) == guard.owner()).await, "lock re-asserted");
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "pending"]), guard.fence().to_string());
    assert_eq!(redis.cli(&["EXISTS", "tokensmith:settle:{k}"]), "1");
    let ttl: u64 = redis.cli(&["PTTL", "tokensmith:settle:{k}"]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 1500, "settle {ttl} ms");
    let counter: u64 = redis.cli(&["GET", "tokensmith:fence:{k}"]).parse().unwrap();
    assert!(counter >= guard.fence() + (1 << 32), "fence counter {counter}");
    // b (which knew the set) is held back: no second refresh with a's refresh token.
    assert_eq!(b.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    // a's refresh lands: its set is saved with its fence, and it unlocks.
    assert!(a.extend_lock("k", &guard, LEASE).await.unwrap());
    assert!(a.save_fenced("k", &token("at-1", "rt-1"), &guard).await.unwrap());
    a.unlock("k", &guard).await.unwrap();
    assert_eq!(b.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-1");
    // After the settle period, b locks with a fence no earlier lock ever had.
    tokio::time::sleep(settle).await;
    let next = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert!(next.fence() > guard.fence() + (1 << 32), "fence {}", next.fence());
}

#[tokio::test]
async fn a_token_set_evicted_or_rolled_back_is_written_back_on_load() {
    let redis = RedisServer::start();
    let a = store(&redis.url(), Duration::from_millis(100));
    a.save("k", &token("at-0", "rt-0")).await.unwrap();
    let guard = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    assert!(a.save_fenced("k", &token("at-2", "rt-2"), &guard).await.unwrap());
    a.unlock("k", &guard).await.unwrap();
    let version = guard.fence().to_string();

    // Evicted: the hash is gone, the epoch survives. a's next load writes back what it knows.
    redis.cli(&["DEL", "tokensmith:token:{k}"]);
    assert_eq!(a.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-2");
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), version);

    // Rolled back (failover to a replica that missed the last save): an older set at a lower version.
    let old = serde_json::json!({
        "access_token": "at-1", "expires_at": 0, "lifetime": 300, "refresh_token": "rt-1", "expires_at_ms": 0
    });
    redis.cli(&["HSET", "tokensmith:token:{k}", "v", "1", "set", &old.to_string()]);
    let loaded = a.load_versioned("k").await.unwrap().unwrap();
    assert_eq!(loaded.token.secret().expose_secret(), "at-2");
    assert_eq!(loaded.version, Some(guard.fence()));
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), version);
    // A removal is not a loss: a process that knew the set does not write it back.
    let b = RedisStore::new(&redis.url()).unwrap();
    b.remove("k").await.unwrap();
    assert!(a.load("k").await.unwrap().is_none());
}

#[tokio::test]
async fn an_evicted_fence_counter_or_lock_is_detected_and_repaired() {
    let redis = RedisServer::start();
    let settle = Duration::from_millis(300);
    let a = store(&redis.url(), settle);
    let b = store(&redis.url(), settle);

    // The held lock vanishes (evicted; a's lease has not lapsed): a's renewal re-asserts it.
    let guard = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    redis.cli(&["DEL", "tokensmith:lock:{k}", "tokensmith:token:{k}"]);
    assert!(a.extend_lock("k", &guard, LEASE).await.unwrap());
    assert_eq!(redis.cli(&["GET", "tokensmith:lock:{k}"]), guard.owner());
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "pending"]), guard.fence().to_string());
    a.unlock("k", &guard).await.unwrap();

    // The fence counter is evicted: the next lock would hand out fences again. a notices (its counter
    // fell below the fence it was given) and jumps it.
    tokio::time::sleep(settle).await;
    let guard = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    a.unlock("k", &guard).await.unwrap();
    redis.cli(&["DEL", "tokensmith:fence:{k}"]);
    assert_eq!(a.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere, "settling");
    tokio::time::sleep(settle).await;
    let next = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert!(next.fence() > guard.fence() + (1 << 32), "fence {} after {}", next.fence(), guard.fence());

    // A lock lost for real (b took it after a's pending marker was cleared): reported lost.
    b.unlock("k", &next).await.unwrap();
    let held = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    redis.cli(&["DEL", "tokensmith:lock:{k}"]);
    redis.cli(&["HDEL", "tokensmith:token:{k}", "pending", "pending_at"]);
    let other = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert!(!a.extend_lock("k", &held, LEASE).await.unwrap());
    assert_eq!(redis.cli(&["GET", "tokensmith:lock:{k}"]), other.owner());
}

#[tokio::test]
async fn start_up_warns_once_about_eviction_and_missing_persistence() {
    let (logs, _guard) = LogCapture::install();
    let redis = RedisServer::start();
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    let a = RedisStore::new(&redis.url()).unwrap();
    a.load("k").await.unwrap();
    assert!(eventually(|| logs.text().contains("persists nothing")).await, "{}", logs.text());
    a.load("k").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = logs.text();
    assert_eq!(text.matches("is not `noeviction`").count(), 1, "{text}");
    assert!(text.contains("volatile-lru") && text.contains("persists nothing"), "{text}");

    // Configured as docs/fleet.md says: no warning.
    let (logs, _guard) = LogCapture::install();
    let good = RedisServer::start();
    good.cli(&["CONFIG", "SET", "appendonly", "yes"]);
    let b = RedisStore::new(&good.url()).unwrap();
    b.load("k").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = logs.text();
    assert!(!text.contains("noeviction") && !text.contains("persists nothing"), "{text}");
}

fn whitebit(sandbox: &Sandbox, store: Arc<RedisStore>) -> WhitebitProvider {
    let client = sandbox.credentials(Dialect::Whitebit);
    WhitebitBuilder::new()
        .base_url(sandbox.base_url(Dialect::Whitebit))
        .client_id(client.client_id)
        .client_secret(client.client_secret)
        .allow_insecure_http(true)
        .refresh_policy(RefreshPolicy::default().lock_wait(Duration::from_millis(800)))
        .store(store)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_is_never_sent_twice_when_its_holder_is_cut_off_after_the_provider_answered() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    // a reaches Redis through the proxy; b directly. Default pending timeout (60 s).
    let a = Arc::new(store(&proxy.url(), Duration::from_millis(300)));
    let b = Arc::new(store(&redis.url(), Duration::from_millis(300)));
    let (pa, pb) = (whitebit(&sandbox, a.clone()), whitebit(&sandbox, b.clone()));
    let presented = || {
        sandbox
            .requests(Dialect::Whitebit)
            .into_iter()
            .filter(|r| r.path == "/oauth2/refresh_token")
            .map(|r| r.fingerprint_of("token").unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // Authorized once through a; b reads the set from Redis.
    let pending = pa.authorize();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = browser.get(pending.url().as_str()).send().await.unwrap();
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    let first = pa.complete(&pending, &callback).await.unwrap();
    assert!(pb.cache().token().await.unwrap().same_token(&first));
    let key = redis.cli(&["--scan", "--pattern", "tokensmith:token:*"]);
    let key = key.trim_start_matches("tokensmith:token:{").trim_end_matches('}').to_owned();

    // a refreshes as the cache does: lock, re-load, renew, send the refresh token.
    let lease = Duration::from_millis(600);
    let guard = acquired(a.lock_refresh(&key, lease).await.unwrap());
    let current = a.load(&key).await.unwrap().unwrap();
    assert!(a.extend_lock(&key, &guard, lease).await.unwrap());
    let client = sandbox.credentials(Dialect::Whitebit);
    let answer = browser
        .post(sandbox.refresh_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.client_secret.as_str()),
                ("token", current.refresh_token().unwrap().secret().expose_secret()),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let data = &answer["data"];
    let refreshed = AccessToken::builder(data["access_token"].as_str().unwrap())
        .expires_in(SystemTime::now(), Duration::from_secs(data["expires_in"].as_u64().unwrap()))
        .refresh_token(Some(RefreshToken::new(data["refresh_token"].as_str().unwrap())))
        .build();
    assert_eq!(presented().len(), 1);

    // The provider answered; a is cut off from Redis before it saves, and its lease lapses.
    proxy.cut();
    let failed = a.save_fenced(&key, &refreshed, &guard).await;
    assert!(matches!(failed, Err(Error::Store { .. })), "{failed:?}");
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(redis.cli(&["EXISTS", &format!("tokensmith:lock:{{{key}}}")]), "0", "a's lease lapsed");

    // b's copy is due: it must not refresh with the spent refresh token while a is cut off.
    sandbox.advance_clock(Duration::from_secs(2)); // WhiteBIT allows one refresh per second
    pb.cache().clear();
    let refused = pb.cache().token().await;
    assert!(matches!(refused, Err(Error::Store { .. })), "{refused:?}");
    assert_eq!(presented().len(), 1, "nobody sent the spent refresh token again");

    // a reaches Redis again; its retried save lands (the cache retries renew + save until one does).
    proxy.reconnect();
    let mut saved = None;
    for _ in 0..100 {
        if let Ok(true) = a.extend_lock(&key, &guard, lease).await {
            if let Ok(written) = a.save_fenced(&key, &refreshed, &guard).await {
                saved = Some(written);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The watchdog may have written it back first: either way it is stored at a's fence.
    assert!(saved.is_some(), "a's save landed");
    a.unlock(&key, &guard).await.unwrap();
    let stored = b.load_versioned(&key).await.unwrap().unwrap();
    assert!(stored.token.same_token(&refreshed));
    assert_eq!(stored.version, Some(guard.fence()));

    // b adopts it; every refresh token was presented at most once.
    pb.cache().clear();
    assert!(pb.cache().token().await.unwrap().same_token(&refreshed));
    let sent = presented();
    let unique: std::collections::HashSet<_> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "every refresh token presented at most once: {sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_the_lock_and_saves_again_when_cut_off_after_the_provider_answered() {
    // The same fault as above, driven by the cache itself (issue 14, item 5): a's refresh is in
    // flight (the sandbox answers after 1.5 s) when a is cut off from Redis; its fenced save fails,
    // so it keeps the lock and saves again in the background; b must not refresh meanwhile.
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let a = Arc::new(store(&proxy.url(), Duration::from_millis(300)));
    let b = Arc::new(store(&redis.url(), Duration::from_millis(300)));
    let policy = RefreshPolicy::default().lock_wait(Duration::from_millis(800)).lock_lease(Duration::from_millis(600));
    let build = |store: Arc<RedisStore>| {
        let client = sandbox.credentials(Dialect::Whitebit);
        WhitebitBuilder::new()
            .base_url(sandbox.base_url(Dialect::Whitebit))
            .client_id(client.client_id)
            .client_secret(client.client_secret)
            .allow_insecure_http(true)
            .refresh_policy(policy.clone())
            .store(store)
            .build()
            .unwrap()
    };
    let (pa, pb) = (build(a.clone()), build(b.clone()));
    let presented = || {
        sandbox
            .requests(Dialect::Whitebit)
            .into_iter()
            .filter(|r| r.path == "/oauth2/refresh_token")
            .map(|r| r.fingerprint_of("token").unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let pending = pa.authorize();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = browser.get(pending.url().as_str()).send().await.unwrap();
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    let first = pa.complete(&pending, &callback).await.unwrap();
    assert!(pb.cache().token().await.unwrap().same_token(&first));
    sandbox.advance_clock(Duration::from_secs(2)); // WhiteBIT allows one refresh per second

    // a refreshes; the provider answers after 1.5 s; a is cut off at 0.5 s.
    sandbox.inject(
        Dialect::Whitebit,
        "/oauth2/refresh_token",
        tokensmith_sandbox::Fault::Latency(Duration::from_millis(1500)),
        1,
    );
    pa.cache().clear();
    let refresh = tokio::spawn({
        let cache = pa.cache().clone();
        async move { cache.token().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    let refreshed = refresh.await.unwrap().expect("a serves the refreshed set although it could not save it");
    assert!(!refreshed.same_token(&first));
    assert_eq!(presented().len(), 1);

    // a's lease has lapsed in Redis; b is due and must not send the spent refresh token.
    tokio::time::sleep(Duration::from_millis(700)).await;
    sandbox.advance_clock(Duration::from_secs(2));
    pb.cache().clear();
    let refused = pb.cache().token().await;
    assert!(matches!(refused, Err(Error::Store { .. })), "{refused:?}");
    assert_eq!(presented().len(), 1, "nobody sent the spent refresh token again");

    // a reaches Redis again: its background save lands (1 s, then 2 s after the failure) and b adopts it.
    proxy.reconnect();
    let mut adopted = None;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(Some(stored)) = b.load(pb.cache().key()).await {
            if stored.same_token(&refreshed) {
                adopted = Some(stored);
                break;
            }
        }
    }
    assert!(adopted.is_some(), "a's set was saved once Redis answered");
    tokio::time::sleep(Duration::from_millis(500)).await; // b's back-off after the refusal
    pb.cache().clear();
    assert!(pb.cache().token().await.unwrap().same_token(&refreshed), "b adopted a's set");
    let sent = presented();
    let unique: std::collections::HashSet<_> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "every refresh token presented at most once: {sent:?}");
}
