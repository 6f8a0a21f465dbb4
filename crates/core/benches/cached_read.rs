//! Cached-read latency (one thread) and throughput (one and two threads) of `CachedProvider`, in the
//! same run as the floor (a bare `ArcSwap` load + `Arc` clone) and what most SDKs do (a
//! `tokio::sync::RwLock<Option<Token>>` read + clone).
//!
//! `cargo bench -p tokensmith-core --bench cached_read`; figures and how to read them in
//! docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokensmith_core::cache::ProviderSource;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::*;

type Cache = CachedProvider<ProviderSource<ProvideTokenFn<fn() -> std::future::Ready<Result<AccessToken>>>>>;

fn issue() -> std::future::Ready<Result<AccessToken>> {
    std::future::ready(Ok(AccessToken::builder("bench-token-0123456789abcdef").build()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A warm cache (default clock: the coarse system clock) and its token.
fn warm_cache(rt: &tokio::runtime::Runtime) -> (Cache, AccessToken) {
    let cache: Cache = CachedProvider::new(ProviderSource::new(provide_token_fn(issue as fn() -> _), "bench"));
    let token = rt.block_on(cache.token()).unwrap();
    (cache, token)
}

/// The reads compared, each returning something derived from the token so that nothing is optimised
/// away.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// `ArcSwap::load()` + `Arc::clone`: the floor for handing out an owned token.
    FloorLoadClone,
    /// `ArcSwap::load()` only (a guard, no reference-count write): the floor for a borrowed read.
    FloorLoadGuard,
    /// `CachedProvider::with_cached` (a guard, no clone).
    WithCached,
    /// `CachedProvider::cached_token` (an owned `AccessToken`).
    CachedToken,
}

impl Read {
    const ALL: [Read; 4] = [Read::FloorLoadClone, Read::FloorLoadGuard, Read::WithCached, Read::CachedToken];

    fn name(self) -> &'static str {
        match self {
            Read::FloorLoadClone => "floor_arcswap_load_arc_clone",
            Read::FloorLoadGuard => "floor_arcswap_load_guard",
            Read::WithCached => "with_cached",
            Read::CachedToken => "cached_token",
        }
    }
}

struct Subjects {
    cache: Cache,
    swap: ArcSwap<AccessToken>,
}

impl Subjects {
    #[inline(always)]
    fn read(&self, read: Read) -> usize {
        match read {
            Read::FloorLoadClone => {
                let guard = self.swap.load();
                let token: Arc<AccessToken> = Arc::clone(&guard);
                black_box(token).secret().expose_secret().len()
            }
            Read::FloorLoadGuard => self.swap.load().secret().expose_secret().len(),
            Read::WithCached => self.cache.with_cached(|t| t.secret().expose_secret().len()).unwrap_or(0),
            Read::CachedToken => black_box(self.cache.cached_token()).map_or(0, |t| t.secret().expose_secret().len()),
        }
    }
}

fn latency(c: &mut Criterion) {
    let rt = runtime();
    let (cache, token) = warm_cache(&rt);
    let subjects = Subjects { cache: cache.clone(), swap: ArcSwap::from_pointee(token.clone()) };
    let rwlock = tokio::sync::RwLock::new(Some(token));
    let shared = SharedTokenProvider::new(cache.clone());

    let mut group = c.benchmark_group("cached_read_latency");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    for read in Read::ALL {
        group.bench_function(read.name(), |b| b.iter(|| subjects.read(read)));
    }
    // What most SDKs do: an async read lock around an `Option<Token>`, cloned out.
    group.bench_function("tokio_rwlock_read_clone", |b| {
        b.to_async(&rt).iter(|| async { rwlock.read().await.as_ref().map(|t| t.clone()) })
    });
    // The same await-based shape through tokensmith's handle (a cached hit never leaves the sync path).
    group.bench_function("shared_provider_token_await", |b| b.to_async(&rt).iter(|| shared.token()));
    // A concrete provider's inherent `token()` (every provider crate's delegates to this one): the
    // README's `provider.token().await`, with no boxed future.
    group.bench_function("provider_token_await", |b| b.to_async(&rt).iter(|| cache.token()));
    group.finish();
}

/// Runs `iters` reads on each of `threads` threads, all started together; the wall time of the slowest.
fn run_threads(subjects: &Subjects, read: Read, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let _ = subjects.read(read); // one untimed read per thread (warms its cache lines)
                    barrier.wait();
                    let started = Instant::now();
                    let mut sum = 0usize;
                    for _ in 0..iters {
                        sum = sum.wrapping_add(subjects.read(read));
                    }
                    black_box(sum);
                    started.elapsed()
                })
            })
            .collect();
        barrier.wait();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap()
    })
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let (cache, token) = warm_cache(&rt);
    let subjects = Subjects { cache, swap: ArcSwap::from_pointee(token) };

    let mut group = c.benchmark_group("cached_read_throughput");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
    for read in Read::ALL {
        for threads in [1usize, 2] {
            // One "iteration" is one read on each thread: criterion reports reads per second overall.
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(BenchmarkId::new(read.name(), format!("{threads}_threads")), &threads, |b, &t| {
                b.iter_custom(|iters| run_threads(&subjects, read, t, iters))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, latency, throughput);
criterion_main!(benches);
