//! The store as a least-privilege ACL user (the exact `ACL SETUSER` line of docs/fleet.md), and an
//! authentication failure during a reconnect that the same store instance recovers from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::RedisServer;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, Error, TokenStore, store::Coordinator, store::RefreshLock};
use tokensmith_redis::RedisStore;

/// docs/fleet.md's line, for the default prefix, with the password `s3cret-pw`.
const ACL: &str = "ACL SETUSER tokensmith on >s3cret-pw resetkeys ~tokensmith:* resetchannels -@all +ping +get +set +del +hget +hset +hdel +exists +incr +pexpire +time +eval +evalsha +script|load +script|exists +info +config|get";

fn create_user(redis: &RedisServer) {
    let args: Vec<&str> = ACL.split(' ').collect();
    assert_eq!(redis.cli(&args), "OK");
}

fn user_url(redis: &RedisServer) -> String {
    format!("redis://tokensmith:s3cret-pw@127.0.0.1:{}/0", redis.port())
}

#[tokio::test]
async fn the_store_works_as_the_documented_least_privilege_user() {
    let redis = RedisServer::start();
    create_user(&redis);
    let store = RedisStore::builder(user_url(&redis))
        .watchdog_interval(Duration::from_millis(20))
        .settle_period(Duration::from_millis(100))
        .build()
        .unwrap();
    let token = AccessToken::builder("at-acl").expires_in(SystemTime::now(), Duration::from_secs(300)).build();
    store.ping().await.unwrap();
    store.save("k", &token).await.unwrap();
    assert_eq!(store.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-acl");
    let RefreshLock::Acquired(guard) = store.lock_refresh("k", Duration::from_secs(5)).await.unwrap() else {
        panic!("no lock")
    };
    assert!(store.extend_lock("k", &guard, Duration::from_secs(5)).await.unwrap());
    assert!(store.save_fenced("k", &token, &guard).await.unwrap());
    store.unlock("k", &guard).await.unwrap();
    // The data-loss path too: the check script writes back and jumps the fence.
    redis.cli(&["DEL", "tokensmith:token:{k}"]);
    tokio::time::sleep(Duration::from_millis(100)).await; // the watchdog (every 20 ms) repairs it
    assert_eq!(store.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-acl");
    store.remove("k").await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());
    // Nothing outside the prefix.
    let outside = redis.cli(&["--user", "tokensmith", "--pass", "s3cret-pw", "--no-auth-warning", "GET", "other"]);
    assert!(outside.contains("NOPERM"), "{outside}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_failure_during_a_reconnect_does_not_break_the_store_for_good() {
    let redis = RedisServer::start();
    create_user(&redis);
    let store = RedisStore::builder(user_url(&redis)).timeout(Duration::from_millis(300)).build().unwrap();
    let token = AccessToken::builder("at-1").expires_in(SystemTime::now(), Duration::from_secs(300)).build();
    store.save("k", &token).await.unwrap();

    // The user is disabled and its connections killed: the reconnect's AUTH fails.
    assert_eq!(redis.cli(&["ACL", "SETUSER", "tokensmith", "off"]), "OK");
    redis.cli(&["CLIENT", "KILL", "USER", "tokensmith"]);
    // The first command may meet the killed connection; the reconnect then meets the refused AUTH.
    let mut failure = None;
    for _ in 0..50 {
        match store.load("k").await {
            Err(e) if e.to_string().contains("refused the store's credentials") => {
                failure = Some(e);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let err = failure.expect("the disabled user fails with an authentication error");
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cret-pw"), "{text}");

    // Re-enabled: the same store instance works again, without a restart (bounded wait).
    assert_eq!(redis.cli(&["ACL", "SETUSER", "tokensmith", "on"]), "OK");
    let mut recovered = false;
    for _ in 0..100 {
        if let Ok(Some(t)) = store.load("k").await {
            recovered = t.secret().expose_secret() == "at-1";
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(recovered, "the store recovered after the user was re-enabled");
}
