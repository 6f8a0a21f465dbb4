//! One full client-credentials fetch against the sandbox on loopback, three ways, same request shape
//! (`POST` form `grant_type=client_credentials`, HTTP Basic credentials, JSON answer parsed):
//!
//! - `tokensmith`: `TokenClient::request_token` with the generic-django dialect (no cache: every
//!   iteration is a request), default `ReqwestTransport`;
//! - `raw_reqwest`: a `reqwest::Client` doing the same POST and parsing the JSON into a struct;
//! - `oauth2`: the `oauth2` crate's `exchange_client_credentials().request_async(..)`, driven through
//!   the same reqwest version (oauth2's own `reqwest` feature needs reqwest 0.12; its closure-based
//!   `AsyncHttpClient` does the same thing with ours).
//!
//! All three keep their connection alive between iterations and never follow redirects. The sandbox
//! runs on its own runtime thread; the clients on a current-thread runtime.
//!
//! `cargo bench -p tokensmith-bench --bench side_by_side` (results in docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{CONTENDERS, Clients, D, start_sandbox};
use criterion::{Criterion, criterion_group, criterion_main};

/// Each contender gets a fresh sandbox (the sandbox keeps every token it issued and its last 10,000
/// requests, so a later contender would otherwise meet a fuller server) and 2,000 untimed requests
/// before criterion's own warm-up.
fn side_by_side(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("client_credentials_fetch");
    group.measurement_time(Duration::from_secs(10));
    for name in CONTENDERS {
        let (sandbox, server) = start_sandbox();
        let clients = Clients::new(&sandbox);
        rt.block_on(async {
            for _ in 0..2_000 {
                clients.fetch(name).await;
            }
        });
        group.bench_function(name, |b| b.to_async(&rt).iter(|| clients.fetch(name)));
        assert!(sandbox.request_count(D, "/o/token/") >= 2_000, "the benchmark reached the sandbox");
        drop(sandbox);
        drop(server);
    }
    group.finish();
}

criterion_group!(benches, side_by_side);
criterion_main!(benches);
