//! Two keyed managers (two "processes": each its own Redis connection and memory) share 1,000
//! tenants' token sets on one Redis: against the sandbox, one token request per key, however the
//! callers of both managers interleave (issue 20, item 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::RedisServer;
use tokensmith_core::manager::TokenManager;
use tokensmith_core::{
    ClientCredentials, Scopes, TokenClient, TokenEndpoint, cache::ClientCredentialsSource, cache::TokenSource,
};
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox};

const KEYS: u32 = 1_000;
const D: Dialect = Dialect::GenericDjango;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_one_redis_make_one_token_request_per_key() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start().await.unwrap();
    let demo = sandbox.credentials(D);
    let token_url = sandbox.token_url(D);
    let manager = |store: RedisStore| {
        let (token_url, demo) = (token_url.clone(), demo.clone());
        TokenManager::for_clients(move |tenant: &u32| {
            // Each tenant its own client (here all with the sandbox's one demo client, so that the
            // keys differ only by tenant: one record each, under `.../{tenant}`); all share the
            // process-wide transport.
            let endpoint = TokenEndpoint::new(token_url.parse().unwrap());
            let client = TokenClient::builder(
                "tenants",
                endpoint,
                ClientCredentials::new(demo.client_id.clone(), demo.client_secret.clone()),
            )
            .allow_insecure_http(true)
            .build()?;
            let _ = tenant;
            Ok(Arc::new(ClientCredentialsSource::new(client, Scopes::default())) as Arc<dyn TokenSource>)
        })
        .store(Arc::new(store))
        .build()
    };
    let a = manager(RedisStore::new(&redis.url()).unwrap());
    let b = manager(RedisStore::new(&redis.url()).unwrap());

    let mut callers = tokio::task::JoinSet::new();
    for tenant in 0..KEYS {
        for m in [&a, &b, &a, &b] {
            let m = m.clone();
            callers.spawn(async move { (tenant, m.token(&tenant).await.unwrap()) });
        }
    }
    let mut first = std::collections::HashMap::new();
    while let Some(joined) = callers.join_next().await {
        let (tenant, token) = joined.unwrap();
        let seen = first.entry(tenant).or_insert_with(|| token.clone());
        assert!(seen.same_token(&token), "tenant {tenant}: both managers serve the one token");
    }
    let requests = sandbox.request_count(D, D.token_path());
    println!("manager fleet: {KEYS} keys x 2 managers x 2 callers each -> {requests} token requests");
    assert_eq!(requests, KEYS as usize, "one token request per key across both managers");
    assert_eq!((a.len(), b.len()), (KEYS as usize, KEYS as usize));
}
