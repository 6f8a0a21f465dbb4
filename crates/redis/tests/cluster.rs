//! The store on a real one-node Redis Cluster: every key a script touches shares the token set's hash
//! tag (no `CROSSSLOT`), and the cluster client routes the scripts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::RedisServer;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, RefreshToken, TokenStore, store::Coordinator, store::RefreshLock};
use tokensmith_probit::ProbitBuilder;
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox};

fn cluster_store(redis: &RedisServer) -> RedisStore {
    RedisStore::builder(redis.url()).cluster(true).timeout(Duration::from_millis(500)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_cluster_locks_saves_loads_and_shares_a_refresh() {
    let redis = RedisServer::start_cluster();
    let (a, b) = (cluster_store(&redis), cluster_store(&redis));
    let lease = Duration::from_secs(5);
    let token = AccessToken::builder("at-1")
        .expires_in(SystemTime::now(), Duration::from_secs(300))
        .refresh_token(Some(RefreshToken::new("rt-1")))
        .build();
    a.save("k", &token).await.unwrap();
    let RefreshLock::Acquired(guard) = a.lock_refresh("k", lease).await.unwrap() else { panic!("no lock") };
    assert_eq!(b.lock_refresh("k", lease).await.unwrap(), RefreshLock::HeldElsewhere);
    assert!(a.extend_lock("k", &guard, lease).await.unwrap());
    let newer = token.to_builder().build();
    assert!(a.save_fenced("k", &newer, &guard).await.unwrap());
    a.unlock("k", &guard).await.unwrap();
    let loaded = b.load_versioned("k").await.unwrap().unwrap();
    assert_eq!(loaded.token.secret().expose_secret(), "at-1");
    assert_eq!(loaded.version, Some(guard.fence()));
    // Every key of the set shares its hash tag: one slot.
    for kind in ["token", "lock", "fence", "epoch", "settle"] {
        let slot = redis.cli(&["CLUSTER", "KEYSLOT", &format!("tokensmith:{kind}:{{k}}")]);
        assert_eq!(slot, redis.cli(&["CLUSTER", "KEYSLOT", "{k}"]), "{kind}");
    }
    assert_eq!(redis.cli(&["EXISTS", "tokensmith:epoch:{k}"]), "1");

    // Two processes' providers share one token request.
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::Probit);
    let providers: Vec<_> = (0..2)
        .map(|_| {
            ProbitBuilder::new()
                .token_url(sandbox.token_url(Dialect::Probit))
                .client_id(client.client_id.clone())
                .client_secret(client.client_secret.clone())
                .allow_insecure_http(true)
                .store(Arc::new(cluster_store(&redis)))
                .build()
                .unwrap()
                .shared()
        })
        .collect();
    let mut tasks = Vec::new();
    for p in &providers {
        for _ in 0..5 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move { p.token().await }));
        }
    }
    let mut secrets = std::collections::HashSet::new();
    for t in tasks {
        secrets.insert(t.await.unwrap().unwrap().secret().expose_secret().to_owned());
    }
    assert_eq!(secrets.len(), 1);
    assert_eq!(sandbox.request_count(Dialect::Probit, Dialect::Probit.token_path()), 1);
}
