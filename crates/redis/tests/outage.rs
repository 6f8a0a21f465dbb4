//! Redis killed and restarted (empty: no persistence) between steps, with several providers standing
//! for several processes (each with its own store and connection): the failure policy holds, nothing
//! panics, and no rotated refresh token is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{Error, cache::RefreshPolicy};
use tokensmith_probit::{ProbitBuilder, ProbitProvider};
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig};
use tokensmith_whitebit::{WhitebitBuilder, WhitebitProvider};

fn store(redis: &RedisServer) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(redis.url())
            .timeout(Duration::from_millis(300))
            .watchdog_interval(Duration::from_millis(50))
            // Short, so that the fleet locks again soon after the restart (the default is 15 s).
            .settle_period(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
}

/// Waits until the store reaches the restarted server (the connection reconnects by itself).
async fn reconnect(store: &RedisStore) {
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store did not reconnect");
}

fn policy() -> RefreshPolicy {
    RefreshPolicy::default().lock_wait(Duration::from_secs(3))
}

fn probit(sandbox: &Sandbox, store: Arc<RedisStore>) -> ProbitProvider {
    let client = sandbox.credentials(Dialect::Probit);
    ProbitBuilder::new()
        .token_url(sandbox.token_url(Dialect::Probit))
        .client_id(client.client_id)
        .client_secret(client.client_secret)
        .allow_insecure_http(true)
        .refresh_policy(policy())
        .store(store)
        .build()
        .unwrap()
}

fn whitebit(sandbox: &Sandbox, store: Arc<RedisStore>) -> WhitebitProvider {
    let client = sandbox.credentials(Dialect::Whitebit);
    WhitebitBuilder::new()
        .base_url(sandbox.base_url(Dialect::Whitebit))
        .client_id(client.client_id)
        .client_secret(client.client_secret)
        .allow_insecure_http(true)
        .refresh_policy(policy())
        .store(store)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fall_back_per_process_while_redis_is_down_then_coordinate_again() {
    let mut redis = RedisServer::start();
    let sandbox = Sandbox::start().await.unwrap();
    let stores: Vec<_> = (0..3).map(|_| store(&redis)).collect();
    let providers: Vec<_> = stores.iter().map(|s| probit(&sandbox, s.clone())).collect();
    let requests = || sandbox.request_count(Dialect::Probit, Dialect::Probit.token_path());
    for p in &providers {
        p.cache().token().await.unwrap();
    }
    assert_eq!(requests(), 1, "one request for the fleet");

    redis.kill();
    for p in &providers {
        p.cache().clear(); // due now
        let token = p.cache().token().await.expect("client credentials are served without Redis");
        assert!(!token.secret().expose_secret().is_empty());
    }
    assert_eq!(requests(), 4, "one request per process while Redis is down");

    redis.restart();
    for s in &stores {
        reconnect(s).await;
    }
    for p in &providers {
        p.cache().clear();
    }
    let mut tasks = Vec::new();
    for p in &providers {
        let cache = p.cache().clone();
        tasks.push(tokio::spawn(async move { cache.token().await }));
    }
    let mut secrets = std::collections::HashSet::new();
    for t in tasks {
        secrets.insert(t.await.unwrap().unwrap().secret().expose_secret().to_owned());
    }
    assert_eq!(secrets.len(), 1, "coordinated again: every process got the same token");
    // The fleet's set from before the outage is written back after the restart and is still
    // fresh: every process adopts it (a larger store version than the per-process tokens, which
    // have none), so no request is needed.
    assert_eq!(requests(), 4, "no request for the fleet once Redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_survives_a_redis_restart() {
    let mut redis = RedisServer::start();
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let stores: Vec<_> = (0..3).map(|_| store(&redis)).collect();
    let [a, b, c]: [WhitebitProvider; 3] =
        stores.iter().map(|s| whitebit(&sandbox, s.clone())).collect::<Vec<_>>().try_into().unwrap();
    let refreshes = || {
        sandbox
            .requests(Dialect::Whitebit)
            .into_iter()
            .filter(|r| r.path == "/oauth2/refresh_token")
            .map(|r| r.fingerprint_of("token").unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // Authorized once (by a); b and c read the token set from Redis.
    let pending = a.authorize();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = browser.get(pending.url().as_str()).send().await.unwrap();
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    let first = a.complete(&pending, &callback).await.unwrap();
    for p in [&b, &c] {
        assert!(p.cache().token().await.unwrap().same_token(&first));
    }

    // a refreshes: the first refresh token is used up; b and c still hold it (their copy is not due).
    a.cache().clear();
    let second = a.cache().token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(refreshes().len(), 1);

    // Redis dies. b's copy is due: its refresh is refused (no lock) with a clear error; nothing is sent.
    redis.kill();
    b.cache().clear();
    let err = b.cache().token().await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(err.to_string().contains("never refreshed without"), "{err}");
    assert_eq!(refreshes().len(), 1, "no refresh without the lock");

    // Redis comes back empty. Every process writes back the newest set it knows (a's wins over b's and
    // c's stale ones), so b ends up with a's rotated set instead of refreshing with a used token.
    redis.restart();
    for s in &stores {
        reconnect(s).await;
    }
    sandbox.advance_clock(Duration::from_secs(2)); // WhiteBIT allows one refresh per second
    b.cache().clear();
    let adopted = b.cache().token().await.unwrap();
    assert!(adopted.same_token(&second), "b adopted a's set that a wrote back");

    // The chain goes on: c (whose copy was the first set) adopts the newest, then refreshes with its
    // refresh token, once.
    c.cache().clear();
    assert!(c.cache().token().await.unwrap().same_token(&second));
    c.cache().clear();
    sandbox.advance_clock(Duration::from_secs(2));
    let third = c.cache().token().await.unwrap();
    assert!(!third.same_token(&second));
    let sent = refreshes();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1], "each refresh token was sent once");
    assert!(a.cache().token().await.is_ok() && b.cache().token().await.is_ok());
}
