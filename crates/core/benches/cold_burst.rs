//! Cold burst: 10,000 concurrent callers on an empty cache against a local HTTP token endpoint that
//! counts requests. Each burst must send exactly one request; callers' p50/p99 latency is reported
//! relative to one fetch by a single caller against the same endpoint.
//!
//! The endpoint is a hand-rolled HTTP/1.1 server on 127.0.0.1 that answers after a configurable delay
//! (0 ms: loopback only; 50 ms: a token endpoint across a network).
//!
//! `cargo bench -p tokensmith-core --bench cold_burst`; figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use tokensmith_core::cache::ClientCredentialsSource;
use tokensmith_core::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const CALLERS: usize = 10_000;

/// Starts the counting token endpoint; returns its token URL and request counter.
async fn endpoint(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut request = Vec::new();
                loop {
                    // Headers, then a body of Content-Length bytes.
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() < end + 4 + length {
                        continue;
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(delay).await;
                    let body = format!(r#"{{"access_token":"burst-{n}","token_type":"Bearer","expires_in":900}}"#);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.write_all(response.as_bytes()).await.unwrap();
                    request.clear();
                }
            });
        }
    });
    (url, count)
}

fn cache(url: &str) -> CachedProvider<ClientCredentialsSource> {
    let endpoint = TokenEndpoint::new(url.parse().unwrap());
    let client = TokenClient::builder("burst", endpoint, ClientCredentials::new("bench-client", "bench-secret"))
        .build()
        .unwrap();
    CachedProvider::new(ClientCredentialsSource::new(client, Scopes::empty()))
}

/// One burst on a new cache: every caller's latency, in nanoseconds.
async fn burst(url: &str) -> Vec<u64> {
    let cache = cache(url);
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS + 1));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, start) = (cache.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let began = Instant::now();
                cache.token().await.unwrap();
                began.elapsed().as_nanos() as u64
            })
        })
        .collect();
    start.wait().await;
    let mut latencies = Vec::with_capacity(CALLERS);
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    Duration::from_nanos(sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

fn cold_burst(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("cold_burst");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    let mut summary = Vec::new();

    for delay_ms in [0u64, 50] {
        let delay = Duration::from_millis(delay_ms);
        let (url, count) = rt.block_on(endpoint(delay));

        // One fetch by a single caller on a new cache (a new connection, like the burst's; building the
        // client is not timed, in neither case).
        group.bench_with_input(BenchmarkId::new("one_fetch", format!("{delay_ms}ms")), &url, |b, url| {
            b.to_async(&rt).iter_batched(
                || cache(url),
                |c| async move { c.token().await.unwrap() },
                BatchSize::PerIteration,
            )
        });

        let latencies = Arc::new(Mutex::new(Vec::new()));
        let (bursts, requests_before) = (Arc::new(AtomicUsize::new(0)), count.load(Ordering::SeqCst));
        group.bench_with_input(BenchmarkId::new("10k_callers", format!("{delay_ms}ms")), &url, |b, url| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let before = count.load(Ordering::SeqCst);
                        let l = burst(url).await;
                        assert_eq!(count.load(Ordering::SeqCst) - before, 1, "a burst sent more than one request");
                        bursts.fetch_add(1, Ordering::SeqCst);
                        latencies.lock().unwrap().extend(l);
                    }
                    started.elapsed()
                })
            })
        });
        let bursts = bursts.load(Ordering::SeqCst);
        let requests = count.load(Ordering::SeqCst) - requests_before;

        // The reference: 200 single fetches, median.
        let mut single: Vec<u64> = rt.block_on(async {
            let mut out = Vec::new();
            for _ in 0..200 {
                let cache = cache(&url);
                let began = Instant::now();
                cache.token().await.unwrap();
                out.push(began.elapsed().as_nanos() as u64);
            }
            out
        });
        single.sort_unstable();
        let fetch = percentile(&single, 0.5);
        let mut all = latencies.lock().unwrap().clone();
        all.sort_unstable();
        let (p50, p99) = (percentile(&all, 0.5), percentile(&all, 0.99));
        summary.push(format!(
            "server delay {delay_ms:>2} ms: {bursts} bursts of {CALLERS} callers, {requests} requests; one fetch (median) \
             {fetch:?}; callers p50 {p50:?} ({:.2}x), p99 {p99:?} ({:.2}x)",
            p50.as_secs_f64() / fetch.as_secs_f64(),
            p99.as_secs_f64() / fetch.as_secs_f64(),
        ));
        assert_eq!(requests, bursts, "every burst sends exactly one request");
    }
    group.finish();
    println!("\ncold burst summary (latency per caller, relative to one fetch by a single caller):");
    for line in summary {
        println!("  {line}");
    }
}

criterion_group!(benches, cold_burst);
criterion_main!(benches);
