//! The keyed token manager at 100,000 keys: hit latency of `manager.token(&key)` beside a single
//! `CachedProvider`'s hit (issue 20's target: within 1.5×), and memory per key, counted by
//! `allocation-counter`'s global allocator (this thread's live bytes).
//!
//! `cargo bench -p tokensmith-core --bench manager -- --warm-up-time 1 --measurement-time 3`;
//! figures in docs/performance.md ("Keyed manager").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use tokensmith_core::cache::{ProviderSource, RefreshTokenSource, TokenSource};
use tokensmith_core::manager::TokenManager;
use tokensmith_core::*;

const KEYS: usize = 100_000;

type Cache = CachedProvider<ProviderSource<ProvideTokenFn<fn() -> std::future::Ready<Result<AccessToken>>>>>;

fn issue() -> std::future::Ready<Result<AccessToken>> {
    std::future::ready(Ok(AccessToken::builder("bench-token-0123456789abcdef").build()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A refresh-token source of a realistic client (never asked: every token is fresh).
fn refresh_source() -> RefreshTokenSource {
    let endpoint = TokenEndpoint::new("https://whitebit.com/oauth2/token".parse().unwrap());
    let client = TokenClient::builder("whitebit", endpoint, ClientCredentials::new("a-client-id-0123456789", "secret"))
        .build()
        .unwrap();
    RefreshTokenSource::new(client, Scopes::parse("general orders"))
}

/// User `i`'s token set as an authorization would give it: access token, rotating refresh token,
/// one hour.
fn user_token(i: usize) -> AccessToken {
    AccessToken::builder(format!("access-token-of-user-{i:08}-0123456789abcdef"))
        .expires_in(SystemTime::now(), Duration::from_secs(3600))
        .refresh_token(Some(RefreshToken::new(format!("refresh-token-of-user-{i:08}-0123456789abcdef"))))
        .build()
}

fn user_key(i: usize) -> String {
    format!("user-{i:08}")
}

/// A manager holding `KEYS` users, each inserted from an authorization.
fn loaded(rt: &tokio::runtime::Runtime, store: Arc<dyn TokenStore>) -> TokenManager<String> {
    let manager = TokenManager::for_users(refresh_source()).store(store).max_entries(KEYS).build();
    rt.block_on(async {
        for i in 0..KEYS {
            manager.insert(&user_key(i), user_token(i)).await.unwrap();
        }
    });
    manager
}

fn kib_per_key(bytes: i64) -> f64 {
    bytes as f64 / 1024.0 / KEYS as f64
}

/// Live bytes per key: the manager with its memory store, the store's share, the token sets' own.
fn memory_per_key() {
    let rt = runtime();
    let source = refresh_source();
    let mut manager = None;
    let total = allocation_counter::measure(|| {
        manager = Some(loaded(&rt, Arc::new(MemoryStore::new())));
    });
    let manager = manager.unwrap();
    assert_eq!(manager.len(), KEYS);
    let mut store = None;
    let store_alone = allocation_counter::measure(|| {
        let memory = MemoryStore::new();
        rt.block_on(async {
            let prefix = source.cache_key();
            for i in 0..KEYS {
                memory.save(&format!("{prefix}/{}", user_key(i)), &user_token(i)).await.unwrap();
            }
        });
        store = Some(memory);
    });
    let mut tokens = Vec::new();
    let tokens_alone = allocation_counter::measure(|| {
        tokens = (0..KEYS).map(user_token).collect::<Vec<_>>();
    });
    let manager_share = total.bytes_current - store_alone.bytes_current;
    println!(
        "manager memory, {KEYS} keys: {:.2} KiB/key with its MemoryStore ({:.1} MiB); manager alone {:.2} KiB/key \
         (store {:.2} KiB/key; the token sets themselves {:.2} KiB/key, counted in both)",
        kib_per_key(total.bytes_current),
        total.bytes_current as f64 / 1024.0 / 1024.0,
        kib_per_key(manager_share.saturating_add(tokens_alone.bytes_current)),
        kib_per_key(store_alone.bytes_current),
        kib_per_key(tokens_alone.bytes_current),
    );
    black_box((manager, store, tokens));
}

fn hit_latency(c: &mut Criterion) {
    memory_per_key();
    let rt = runtime();
    let cache: Cache = CachedProvider::new(ProviderSource::new(provide_token_fn(issue as fn() -> _), "bench"));
    rt.block_on(cache.token()).unwrap();
    let manager = loaded(&rt, Arc::new(MemoryStore::new()));
    let one = user_key(KEYS / 2);
    let keys: Vec<String> = (0..KEYS).map(user_key).collect();

    let mut group = c.benchmark_group("manager_hit");
    group.bench_function("provider_token_await", |b| b.to_async(&rt).iter(|| cache.token()));
    group.bench_function("manager_token_await_one_key_of_100k", |b| b.to_async(&rt).iter(|| manager.token(&one)));
    let mut i = 0usize;
    group.bench_function("manager_token_await_every_key_in_turn", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % KEYS;
            manager.token(&keys[i])
        })
    });
    group.bench_function("provider_cached_token", |b| b.iter(|| black_box(cache.cached_token())));
    group.bench_function("manager_cached_token_one_key_of_100k", |b| b.iter(|| black_box(manager.cached_token(&one))));
    group.finish();
}

criterion_group!(benches, hit_latency);
criterion_main!(benches);
