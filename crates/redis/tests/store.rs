//! The Redis store against a real redis-server: the token set and key layout, the lock (exclusive,
//! lease, compare-and-delete), fencing, unreachable Redis, and a fleet of caches against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::RedisServer;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, Error, RefreshToken, TokenStore, store::Coordinator, store::RefreshLock};
use tokensmith_probit::ProbitBuilder;
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox};

fn token(access: &str, refresh: &str) -> AccessToken {
    AccessToken::builder(access)
        .expires_in(SystemTime::now(), Duration::from_secs(300))
        .refresh_token(Some(RefreshToken::new(refresh)))
        .build()
}

fn acquired(lock: RefreshLock) -> tokensmith_core::store::LockGuard {
    match lock {
        RefreshLock::Acquired(guard) => guard,
        other => panic!("expected the lock, got {other:?}"),
    }
}

#[tokio::test]
async fn token_sets_round_trip_under_the_documented_keys() {
    let redis = RedisServer::start();
    let store = RedisStore::builder(redis.url()).prefix("app").build().unwrap();
    assert!(store.load("probit/id/").await.unwrap().is_none());
    let saved = token("at-1", "rt-1");
    store.save("probit/id/", &saved).await.unwrap();

    // Another process (another store instance) reads it back, expiry to the millisecond.
    let other = RedisStore::builder(redis.url()).prefix("app").build().unwrap();
    let loaded = other.load("probit/id/").await.unwrap().unwrap();
    assert!(loaded.same_token(&saved));
    let ms = |t: &AccessToken| t.expires_at().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(ms(&loaded), ms(&saved));
    assert!(loaded.refresh_token().unwrap().same_as(&RefreshToken::new("rt-1")));

    // The layout of docs/fleet.md: a hash with the version and the JSON set.
    assert_eq!(redis.cli(&["HGET", "app:token:{probit/id/}", "v"]), "1");
    let json = redis.cli(&["HGET", "app:token:{probit/id/}", "set"]);
    let set: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(set["refresh_token"], "rt-1");
    assert!(set["expires_at_ms"].as_u64().unwrap() > 0);
    // Another prefix is another namespace.
    assert!(RedisStore::builder(redis.url()).prefix("b").build().unwrap().load("probit/id/").await.unwrap().is_none());

    other.remove("probit/id/").await.unwrap();
    assert!(store.load("probit/id/").await.unwrap().is_none());
}

#[tokio::test]
async fn the_lock_is_exclusive_leased_and_released_by_its_owner_only() {
    let redis = RedisServer::start();
    let a = RedisStore::new(&redis.url()).unwrap();
    let b = RedisStore::new(&redis.url()).unwrap();
    assert!(a.coordination().is_some());
    let lease = Duration::from_secs(5);
    let guard_a = acquired(a.lock_refresh("k", lease).await.unwrap());
    assert_eq!(b.lock_refresh("k", lease).await.unwrap(), RefreshLock::HeldElsewhere);

    // The lock holds a random owner value with a lease no longer than asked.
    let ttl: i64 = redis.cli(&["PTTL", "tokensmith:lock:{k}"]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 5000, "lease {ttl} ms");
    assert_eq!(redis.cli(&["GET", "tokensmith:lock:{k}"]), guard_a.owner());
    assert_eq!(guard_a.owner().len(), 32);

    // Renewal extends it; nobody else can renew or release it.
    assert!(a.extend_lock("k", &guard_a, Duration::from_secs(60)).await.unwrap());
    let ttl: i64 = redis.cli(&["PTTL", "tokensmith:lock:{k}"]).parse().unwrap();
    assert!(ttl > 5000, "renewed lease {ttl} ms");
    let impostor = tokensmith_core::store::LockGuard::new("not-the-owner", guard_a.fence());
    assert!(!b.extend_lock("k", &impostor, lease).await.unwrap());
    b.unlock("k", &impostor).await.unwrap();
    assert_eq!(b.lock_refresh("k", lease).await.unwrap(), RefreshLock::HeldElsewhere);

    // Released by its owner, the next holder gets a larger fencing number.
    a.unlock("k", &guard_a).await.unwrap();
    let guard_b = acquired(b.lock_refresh("k", lease).await.unwrap());
    assert!(guard_b.fence() > guard_a.fence());
    assert!(!a.extend_lock("k", &guard_a, lease).await.unwrap(), "a lost the lock");
}

#[tokio::test]
async fn a_save_fenced_by_a_lost_lock_never_overwrites_a_newer_set() {
    let redis = RedisServer::start();
    let a = RedisStore::new(&redis.url()).unwrap();
    // b does not wait for a's pending refresh (see tests/faults.rs for the pending marker).
    let b = RedisStore::builder(redis.url()).pending_timeout(Duration::ZERO).build().unwrap();
    let guard_a = acquired(a.lock_refresh("k", Duration::from_secs(5)).await.unwrap());
    // a's lease lapses (simulated by deleting the lock); b takes it, refreshes and saves.
    redis.cli(&["DEL", "tokensmith:lock:{k}"]);
    let guard_b = acquired(b.lock_refresh("k", Duration::from_secs(5)).await.unwrap());
    assert!(b.save_fenced("k", &token("at-b", "rt-b"), &guard_b).await.unwrap());
    // a's late save is refused: the stored set is b's.
    assert!(!a.save_fenced("k", &token("at-a", "rt-a"), &guard_a).await.unwrap());
    let stored = a.load("k").await.unwrap().unwrap();
    assert_eq!(stored.secret().expose_secret(), "at-b");
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), guard_b.fence().to_string());
    // An unconditional save (a new authorization) is newer than anything, and later fences exceed it.
    a.save("k", &token("at-auth", "rt-auth")).await.unwrap();
    b.unlock("k", &guard_b).await.unwrap();
    let guard = acquired(a.lock_refresh("k", Duration::from_secs(5)).await.unwrap());
    let version: u64 = redis.cli(&["HGET", "tokensmith:token:{k}", "v"]).parse().unwrap();
    assert!(guard.fence() > version);
}

/// Polls `lock_refresh` (real time, bounded: Redis expires the lease) until it gives the lock.
async fn eventually_locked(store: &RedisStore) -> tokensmith_core::store::LockGuard {
    for _ in 0..250 {
        if let RefreshLock::Acquired(guard) = store.lock_refresh("k", Duration::from_secs(5)).await.unwrap() {
            return guard;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the lapsed lock was never free to take");
}

/// Polls `load` (real time, bounded) until it gives the set with access token `access`.
async fn eventually_stored(store: &RedisStore, access: &str) -> bool {
    for _ in 0..250 {
        if let Ok(Some(stored)) = store.load("k").await {
            if stored.secret().expose_secret() == access {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn watched(redis: &RedisServer) -> RedisStore {
    RedisStore::builder(redis.url())
        .timeout(Duration::from_millis(300))
        .watchdog_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_save_that_failed_is_written_back_when_redis_answers_again() {
    let redis = RedisServer::start();
    let store = watched(&redis);
    store.save("k", &token("at-0", "rt-0")).await.unwrap();
    let guard = acquired(store.lock_refresh("k", Duration::from_secs(5)).await.unwrap());
    // Redis stops answering between the refresh and its save (it keeps its data: no data-loss path).
    redis.pause();
    let failed = store.save_fenced("k", &token("at-1", "rt-1"), &guard).await;
    redis.resume();
    assert!(matches!(failed, Err(Error::Store { .. })), "{failed:?}");
    assert!(eventually_stored(&store, "at-1").await, "the set was written back");
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), guard.fence().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_back_set_never_overwrites_a_newer_one() {
    let redis = RedisServer::start();
    let a = watched(&redis);
    // b does not wait for a's pending refresh (see tests/faults.rs for the pending marker).
    let b = RedisStore::builder(redis.url())
        .timeout(Duration::from_millis(300))
        .watchdog_interval(Duration::from_millis(50))
        .pending_timeout(Duration::ZERO)
        .build()
        .unwrap();
    // A short lease, so that it really lapses: a lock deleted before its lease ends is a data loss,
    // and a's watchdog would (rightly) re-assert it.
    let guard_a = acquired(a.lock_refresh("k", Duration::from_millis(200)).await.unwrap());
    redis.pause();
    assert!(a.save_fenced("k", &token("at-a", "rt-a"), &guard_a).await.is_err());
    redis.resume();
    // Meanwhile b takes the lock once a's has lapsed and saves a newer set; whichever of b's save and
    // a's write-back comes first, b's set (the later fence) is the one left.
    let guard_b = eventually_locked(&b).await;
    assert!(guard_b.fence() > guard_a.fence());
    assert!(b.save_fenced("k", &token("at-b", "rt-b"), &guard_b).await.unwrap());
    // Give a's watchdog time to try (it runs every 50 ms), then check.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(b.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-b");
    }
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), guard_b.fence().to_string());
}

#[tokio::test]
async fn unreachable_redis_is_a_store_error_that_says_so() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.kill();
    let store = RedisStore::builder(&url).timeout(Duration::from_millis(500)).build().unwrap();
    let started = std::time::Instant::now();
    let err = store.load("k").await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("unreachable") && text.contains("127.0.0.1"), "{text}");
    assert!(matches!(store.lock_refresh("k", Duration::from_secs(5)).await, Err(Error::Store { .. })));
    assert!(started.elapsed() < Duration::from_secs(3), "fails fast: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_probit_providers_makes_one_token_request() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::Probit);
    let providers: Vec<_> = (0..4)
        .map(|_| {
            ProbitBuilder::new()
                .token_url(sandbox.token_url(Dialect::Probit))
                .client_id(client.client_id.clone())
                .client_secret(client.client_secret.clone())
                .allow_insecure_http(true)
                .store(Arc::new(RedisStore::new(&redis.url()).unwrap()))
                .build()
                .unwrap()
                .shared()
        })
        .collect();
    let before = sandbox.request_count(Dialect::Probit, Dialect::Probit.token_path());
    let mut tasks = Vec::new();
    for provider in &providers {
        for _ in 0..25 {
            let provider = provider.clone();
            tasks.push(tokio::spawn(async move { provider.token().await }));
        }
    }
    let mut secrets = std::collections::HashSet::new();
    for t in tasks {
        secrets.insert(t.await.unwrap().unwrap().secret().expose_secret().to_owned());
    }
    assert_eq!(secrets.len(), 1, "every process got the same token");
    assert_eq!(sandbox.request_count(Dialect::Probit, Dialect::Probit.token_path()) - before, 1);
}
