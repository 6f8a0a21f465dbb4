//! What one provider costs, built as the README shows (`DjangoProvider::builder()...build()`), with no
//! transport given: the time to build one, and the memory one holds once its token is cached
//! (issue 20: at most 20 µs and 4 KiB, because every provider shares the process-wide transport).
//!
//! Memory is counted by `allocation-counter` (bytes allocated on the measuring thread and not yet
//! freed), over 2,000 providers that each fetched a token from the embedded sandbox, on a
//! current-thread runtime so that the providers' connection tasks are counted too; the sandbox runs on
//! a runtime of its own, on other threads, and is not counted. The per-provider figure is the growth
//! divided by 2,000; the one-time cost of the shared `reqwest` client is left out by warming it up
//! first. The resident set size (from `/proc/self/statm`) is printed beside it.
//!
//! `cargo bench -p tokensmith-generic-django --bench provider_cost`; figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::arithmetic_side_effects, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use tokensmith_generic_django::DjangoProvider;
use tokensmith_sandbox::{Dialect, Sandbox};

const PROVIDERS: usize = 2_000;

fn build(sandbox: &Sandbox) -> DjangoProvider {
    let demo = sandbox.credentials(Dialect::GenericDjango);
    DjangoProvider::builder()
        .base_url(sandbox.base_url(Dialect::GenericDjango))
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .build()
        .unwrap()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn provider_cost(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sandbox = server.block_on(Sandbox::start()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    // Memory: warm up the shared transport, then hold 2,000 providers with a token each.
    runtime.block_on(async { build(&sandbox).token().await.unwrap() });
    let rss_before = rss_bytes();
    let mut providers = Vec::with_capacity(PROVIDERS);
    let info = allocation_counter::measure(|| {
        runtime.block_on(async {
            for _ in 0..PROVIDERS {
                let provider = build(&sandbox);
                provider.token().await.unwrap();
                providers.push(provider);
            }
        })
    });
    let live = info.bytes_current as f64 / PROVIDERS as f64;
    let rss = rss_bytes().saturating_sub(rss_before) as f64 / PROVIDERS as f64;
    assert!(providers.iter().all(|p| p.cache().cached_token().is_some()), "every provider holds a token");
    println!(
        "provider_cost/memory: {PROVIDERS} providers with a cached token: {:.2} KiB allocated and kept per provider ({} allocations each), {:.2} KiB resident per provider",
        live / 1024.0,
        info.count_current / PROVIDERS as i64,
        rss / 1024.0
    );
    drop(providers);

    // Time: building one (no token request; the shared transport exists already).
    c.bench_function("provider_cost/build", |b| b.iter(|| build(&sandbox)));
}

criterion_group!(benches, provider_cost);
criterion_main!(benches);
