//! A cached read allocates nothing: `with_cached`, `cached_token`, `CachedProvider::token` and
//! `SharedTokenProvider::token` on a hit, counted by `allocation-counter`'s global allocator
//! (this thread's allocations).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokensmith_core::cache::ProviderSource;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::*;

/// Allocations made by this thread while `f` runs.
fn allocations_in(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn cached_reads_do_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache = CachedProvider::new(ProviderSource::new(
        provide_token_fn(|| async { Ok(AccessToken::builder("cached-read-token").build()) }),
        "alloc-test",
    ));
    runtime.block_on(cache.token()).unwrap();
    let shared = SharedTokenProvider::new(cache.clone());

    let n = allocations_in(|| {
        for _ in 0..10_000 {
            assert_eq!(cache.with_cached(|t| t.secret().expose_secret().len()), Some(17));
        }
    });
    assert_eq!(n, 0, "with_cached allocated");

    let n = allocations_in(|| {
        for _ in 0..10_000 {
            assert!(cache.cached_token().is_some());
        }
    });
    assert_eq!(n, 0, "cached_token allocated");

    let n = allocations_in(|| {
        for _ in 0..10_000 {
            let mut future = pin!(shared.token());
            let Poll::Ready(Ok(_)) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
                panic!("a cached token was not ready at once")
            };
        }
    });
    assert_eq!(n, 0, "SharedTokenProvider::token allocated on a cache hit");

    // The inherent `token()` that every provider's inherent `token()` delegates to (what
    // `provider.token().await` calls on a concrete provider type, the README's main path).
    let n = allocations_in(|| {
        for _ in 0..10_000 {
            let mut future = pin!(cache.token());
            let Poll::Ready(Ok(_)) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
                panic!("a cached token was not ready at once")
            };
        }
    });
    assert_eq!(n, 0, "CachedProvider::token allocated on a cache hit");

    // The counter works: a miss (async path through the `dyn` provider) allocates.
    cache.clear();
    let n = allocations_in(|| {
        runtime.block_on(shared.token()).unwrap();
    });
    assert!(n > 0);
}
