//! What the Redis store costs: a cached read with the Redis store configured vs the in-memory store
//! (the hot path must not change), and one refresh coordinated through Redis (load, lock, re-load,
//! token request, fenced save, unlock) vs the same refresh with the in-memory store, against the
//! sandbox's ProBit dialect and a local redis-server.
//!
//! `cargo bench -p tokensmith-redis --bench fleet` (needs `redis-server`, see tests/setup.sh);
//! figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{MemoryStore, TokenStore};
use tokensmith_probit::{ProbitBuilder, ProbitProvider};
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn provider(sandbox: &Sandbox, store: Arc<dyn TokenStore>) -> ProbitProvider {
    let client = sandbox.credentials(Dialect::Probit);
    ProbitBuilder::new()
        .token_url(sandbox.token_url(Dialect::Probit))
        .client_id(client.client_id)
        .client_secret(client.client_secret)
        .allow_insecure_http(true)
        .store(store)
        .build()
        .unwrap()
}

fn fleet(c: &mut Criterion) {
    let redis = common::RedisServer::start();
    let rt = runtime();
    let sandbox = rt.block_on(Sandbox::start()).unwrap();
    let memory = provider(&sandbox, Arc::new(MemoryStore::new()));
    let redis_store: Arc<dyn TokenStore> = Arc::new(RedisStore::new(&redis.url()).unwrap());
    let shared = provider(&sandbox, redis_store);
    rt.block_on(async {
        memory.cache().token().await.unwrap();
        shared.cache().token().await.unwrap();
    });

    let mut group = c.benchmark_group("redis_cached_read");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    for (name, p) in [("memory_store", &memory), ("redis_store", &shared)] {
        let cache = p.cache();
        group.bench_function(format!("{name}/cached_token"), |b| {
            b.iter(|| black_box(cache.cached_token()).map_or(0, |t| t.secret().expose_secret().len()))
        });
        group.bench_function(format!("{name}/with_cached"), |b| {
            b.iter(|| cache.with_cached(|t| t.secret().expose_secret().len()).unwrap_or(0))
        });
    }
    group.finish();

    // One refresh: `clear()` makes the cached token due, so `token()` runs one whole fetch.
    let mut group = c.benchmark_group("redis_refresh");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(30);
    for (name, p) in [("memory_store", &memory), ("redis_store_coordinated", &shared)] {
        let cache = p.cache().clone();
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let cache = cache.clone();
                async move {
                    cache.clear();
                    cache.token().await.unwrap()
                }
            })
        });
    }
    group.finish();
    drop(redis);
}

criterion_group!(benches, fleet);
criterion_main!(benches);
