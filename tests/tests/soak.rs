//! The soak: 1,000 concurrent callers read tokens through one cache for about 20 s, against the
//! sandbox's ProBit dialect issuing 2 s tokens, while 30 % of token requests fail with a 503 and
//! callers make resource calls through `AuthorizedClient`.
//!
//! `#[ignore]`d by default (it takes about 25 s); `.ci/run` runs it with
//!
//! ```sh
//! cargo test -p tokensmith-tests --test soak -- --ignored --nocapture
//! ```
//!
//! It asserts that no caller ever receives an expired token, that the token requests stay within the
//! bound the refresh formula predicts, that every failure a caller sees is a typed `Error` of an
//! expected kind, and that memory stays flat; it prints the figures `docs/reliability.md` reports.
//!
//! How the failures are made: a `Transport` wrapper around the real `ReqwestTransport` decides, for
//! each token request, with probability 0.3 to fail it, and then injects a one-shot
//! `Fault::Status(503)` into the sandbox before sending. The request still goes over loopback and
//! the 503 (an nginx-style HTML page) comes back from the sandbox, so the whole path (transport,
//! parser, retries, cache) sees a real failure. The cache fetches one token at a time, so the
//! injected fault always meets the request it was meant for.
//!
//! The callers pace themselves (a random 10–30 ms between reads) so that 1,000 of them and the
//! in-process sandbox fit on a 2-core machine; nothing sleeps to wait for time to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use rand::Rng as _;
use tokensmith_core::{
    AuthorizedClient, Error, RetryPolicy,
    cache::RefreshPolicy,
    error::TransportError,
    http::{HttpResponse, ReqwestTransport, Transport},
    request::TokenRequest,
};
use tokensmith_probit::ProbitBuilder;
use tokensmith_sandbox::{Dialect, Fault, Sandbox, SandboxConfig};

const CALLERS: usize = 1_000;
const DURATION: Duration = Duration::from_secs(20);
const LIFETIME: Duration = Duration::from_secs(2);
const FAILURE_RATE: f64 = 0.3;
/// A caller makes a resource call on this share of its iterations.
const RESOURCE_SHARE: f64 = 0.02;
const D: Dialect = Dialect::Probit;

/// Fails `FAILURE_RATE` of token requests by having the sandbox answer them 503, and records the
/// sequence of outcomes.
#[derive(Debug)]
struct Flaky {
    inner: ReqwestTransport,
    sandbox: Sandbox,
    /// `true` for each request that was made to fail, in order.
    log: Mutex<Vec<bool>>,
}

#[async_trait]
impl Transport for Flaky {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        let fail = rand::rng().random_bool(FAILURE_RATE);
        if fail {
            self.sandbox.inject(D, "/token", Fault::Status(503), 1);
        }
        self.log.lock().unwrap().push(fail);
        self.inner.send(request).await
    }
}

/// Fetches that failed outright: each run of `n` consecutive failed requests holds `n / 3` fetches
/// whose three attempts all failed.
fn failed_fetches(log: &[bool], attempts: usize) -> usize {
    log.split(|failed| !failed).map(|run| run.len() / attempts).sum()
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[derive(Default)]
struct Tally {
    reads: AtomicU64,
    expired: AtomicU64,
    /// The least remaining lifetime of a token handed to a caller, in ms.
    min_remaining_ms: AtomicU64,
    resource_calls: AtomicU64,
    resource_ok: AtomicU64,
    resource_unauthorized: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    unexpected: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, context: &str, error: &Error) {
        let kind = match error {
            Error::Http(e) => format!("{context}: Http {}", e.status),
            Error::BackingOff { .. } => format!("{context}: BackingOff"),
            Error::Transport(e) => format!("{context}: Transport({:?})", e.kind()),
            other => {
                self.unexpected.lock().unwrap().push(format!("{context}: {other:?}"));
                format!("{context}: other")
            }
        };
        // A token fetch can only fail with the injected 503 or, during the back-off after such a
        // failure, with `BackingOff`.
        let expected = matches!(error, Error::Http(e) if e.status == 503) || matches!(error, Error::BackingOff { .. });
        if !expected {
            self.unexpected.lock().unwrap().push(format!("{context}: {error}"));
        }
        *self.errors.lock().unwrap().entry(kind).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 20 s soak; run by .ci/run with `cargo test -p tokensmith-tests --test soak -- --ignored --nocapture`"]
async fn soak_1000_callers_2s_tokens_30_percent_failures() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().lifetime(D, LIFETIME)).await.unwrap();
    let client = sandbox.credentials(D);
    let transport = Arc::new(Flaky {
        inner: ReqwestTransport::new().unwrap(),
        sandbox: sandbox.clone(),
        log: Mutex::new(Vec::new()),
    });
    let retry = RetryPolicy::default();
    let policy = RefreshPolicy::default();
    let provider = ProbitBuilder::new()
        .client_id(client.client_id)
        .client_secret(client.client_secret)
        .token_url(sandbox.token_url(D))
        .transport(transport.clone())
        .retry(retry.clone())
        .refresh_policy(policy.clone())
        .build()
        .unwrap();
    let shared = provider.clone().shared();
    let authorized = AuthorizedClient::new(shared.clone());
    let protected = sandbox.protected_url(D);

    // The sandbox keeps its last 10,000 requests: fill that log first, so that its growth is not
    // mistaken for ours.
    let filler = reqwest::Client::new();
    let base = sandbox.base_url(D);
    let mut fill = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (filler, base) = (filler.clone(), base.clone());
        fill.spawn(async move {
            for _ in 0..200 {
                let _ = filler.get(format!("{base}/warm-up")).send().await;
            }
        });
    }
    fill.join_all().await;

    let tally = Arc::new(Tally { min_remaining_ms: AtomicU64::new(u64::MAX), ..Tally::default() });
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // Memory, sampled every 250 ms.
    let samples = Arc::new(Mutex::new(Vec::<(Duration, u64)>::new()));
    let sampler = {
        let (samples, stop) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                samples.lock().unwrap().push((started.elapsed(), memory_kib().0));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (shared, authorized, protected, tally, stop) =
            (shared.clone(), authorized.clone(), protected.clone(), tally.clone(), stop.clone());
        callers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match shared.token().await {
                    Ok(token) => {
                        tally.reads.fetch_add(1, Ordering::Relaxed);
                        match token.expires_at().duration_since(SystemTime::now()) {
                            Ok(left) => {
                                tally.min_remaining_ms.fetch_min(left.as_millis() as u64, Ordering::Relaxed);
                            }
                            Err(_) => {
                                tally.expired.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) => tally.error("token", &e),
                }
                let (resource, pause) = {
                    let mut rng = rand::rng();
                    (rng.random_bool(RESOURCE_SHARE), rng.random_range(10..=30))
                };
                if resource {
                    tally.resource_calls.fetch_add(1, Ordering::Relaxed);
                    match authorized.send(authorized.get(&protected)).await {
                        Ok(r) if r.status() == 200 => {
                            tally.resource_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) if r.status() == 401 => {
                            tally.resource_unauthorized.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => tally.unexpected.lock().unwrap().push(format!("resource answered {}", r.status())),
                        Err(e) => tally.error("resource", &e),
                    }
                }
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        });
    }
    // The soak runs for DURATION; the test only waits for it to end.
    tokio::time::sleep(DURATION).await;
    stop.store(true, Ordering::SeqCst);
    let mut panicked = 0;
    while let Some(joined) = callers.join_next().await {
        panicked += usize::from(joined.is_err());
    }
    let elapsed = started.elapsed();
    sampler.await.unwrap();

    // ---- figures
    let requests_log = transport.log.lock().unwrap().clone();
    let requests = requests_log.len();
    let injected = requests_log.iter().filter(|f| **f).count();
    let attempts = retry.get_max_attempts() as usize;
    let failed = failed_fetches(&requests_log, attempts);
    let succeeded = requests - injected;
    let seen_by_sandbox = sandbox.request_count(D, "/token");
    let resource_calls = tally.resource_calls.load(Ordering::SeqCst);
    let resource_requests = sandbox.request_count(D, "/api/exchange/v1/balance") as u64;
    // AuthorizedClient resends a request once after a 401 with a new token.
    let resource_retries = resource_requests.saturating_sub(resource_calls);

    // The refresh formula: a token of lifetime L is refreshed when margin(L) remains, so a fresh one
    // is needed at most once every L - margin(L) (1 s for 2 s tokens), plus the first one. Allow
    // 50 ms of slack per interval for the time between the response and the cache entry.
    let margin = policy.margin(LIFETIME);
    let interval = LIFETIME - margin - Duration::from_millis(50);
    let refresh_cycles = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
    // Each fetch makes at most `attempts` requests; a fetch that failed outright is followed by
    // another (after the cache's back-off), and each 401-retry may invalidate the token once.
    let bound = attempts * (refresh_cycles + failed + resource_retries as usize);
    let expected = refresh_cycles as f64 * (1.0 + FAILURE_RATE + FAILURE_RATE * FAILURE_RATE);
    let (rss_end, hwm) = memory_kib();
    let samples = samples.lock().unwrap().clone();
    let quarter = |q: u32| {
        let (from, to) = (elapsed * q / 4, elapsed * (q + 1) / 4);
        samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, kib)| *kib).max().unwrap_or(0)
    };
    let (q1, q2, q3, q4) = (quarter(0), quarter(1), quarter(2), quarter(3));
    let errors = tally.errors.lock().unwrap().clone();
    let unexpected = tally.unexpected.lock().unwrap().clone();

    println!(
        "soak: {CALLERS} callers for {elapsed:.1?}, token lifetime {LIFETIME:?}, {FAILURE_RATE} of token requests failed"
    );
    println!("  token reads: {}", tally.reads.load(Ordering::SeqCst));
    println!(
        "  expired tokens handed out: {}; least remaining lifetime seen: {} ms",
        tally.expired.load(Ordering::SeqCst),
        tally.min_remaining_ms.load(Ordering::SeqCst)
    );
    println!(
        "  token requests: {requests} ({succeeded} answered with a token, {injected} failed with 503; {failed} fetches failed outright)"
    );
    println!(
        "  refresh formula: margin {margin:?}, {refresh_cycles} refresh cycles, expected ~{expected:.0} requests, bound {bound}"
    );
    println!(
        "  resource calls: {resource_calls} ({} ok, {} still 401 after the retry, {resource_retries} 401-retries)",
        tally.resource_ok.load(Ordering::SeqCst),
        tally.resource_unauthorized.load(Ordering::SeqCst)
    );
    println!("  failures seen by callers: {errors:?}");
    println!(
        "  memory: RSS max per quarter {} / {} / {} / {} MiB, at the end {} MiB, peak (VmHWM) {} MiB",
        q1 / 1024,
        q2 / 1024,
        q3 / 1024,
        q4 / 1024,
        rss_end / 1024,
        hwm / 1024
    );

    assert_eq!(panicked, 0, "callers panicked");
    assert_eq!(tally.expired.load(Ordering::SeqCst), 0, "a caller received an expired token");
    assert!(unexpected.is_empty(), "untyped or unexpected failures: {unexpected:?}");
    assert_eq!(seen_by_sandbox, requests, "every token request went to the sandbox");
    assert!(requests <= bound, "{requests} token requests exceed the bound of {bound}");
    // Tokens live 2 s: at least one fetch per lifetime must have happened.
    let floor = (elapsed.as_secs_f64() / LIFETIME.as_secs_f64()) as usize;
    assert!(succeeded >= floor, "only {succeeded} successful token requests in {elapsed:?}");
    assert!(tally.resource_ok.load(Ordering::SeqCst) > 0, "no resource call succeeded");
    // Flat: the last quarter's peak RSS within 10 % (or 8 MiB) of the second quarter's (the first is
    // warm-up: connections, timers and buffers being created).
    let allowance = (q2 / 10).max(8 * 1024);
    assert!(q4 <= q2 + allowance, "memory grew: {q2} KiB -> {q4} KiB");
}
