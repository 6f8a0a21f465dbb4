//! A fleet of real OS processes sharing one Redis: 4 worker processes x 50 concurrent tasks per
//! provider, against the sandbox with 2 s tokens, for 20 s (`TOKENSMITH_FLEET_SECS` changes it).
//!
//! - Client credentials (ProBit): token requests across the whole fleet stay at about one per
//!   refresh interval, not one per process.
//! - WhiteBIT (rotating refresh tokens): every refresh token is sent exactly once (the sandbox's
//!   request log fingerprints each one) and no process ever gets an error.
//! - Then Redis is killed for a moment while the fleet runs, and restarted empty: client credentials
//!   keep being served (per process), a WhiteBIT refresh is refused rather than sent without the lock,
//!   nothing panics, and afterwards the fleet goes on refreshing WhiteBIT with the newest refresh
//!   token (none was lost), each sent once.
//!
//! The test binary is its own worker: the parent runs the sandbox and redis-server and re-executes
//! itself with `TOKENSMITH_FLEET_WORKER` set. It has no libtest harness, so it prints its own summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::RedisServer;
use serde_json::json;
use tokensmith_core::{Error, SharedTokenProvider, cache::RefreshPolicy};
use tokensmith_probit::ProbitBuilder;
use tokensmith_redis::RedisStore;
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig};
use tokensmith_whitebit::WhitebitBuilder;

const WORKER: &str = "TOKENSMITH_FLEET_WORKER";
const PROCESSES: usize = 4;
const TASKS: usize = 50;
const LIFETIME: Duration = Duration::from_secs(2);

/// 2 s tokens are refreshed when 0.4–0.5 s remain: every ~1.5 s, which also respects WhiteBIT's one
/// refresh per second per client.
fn policy() -> RefreshPolicy {
    RefreshPolicy::default().min_margin(Duration::from_millis(400)).initial_backoff(Duration::from_millis(100))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn main() {
    if std::env::var_os(WORKER).is_some() {
        worker();
        return;
    }
    let started = Instant::now();
    parent();
    println!("fleet: multi-process test done in {:.1} s", started.elapsed().as_secs_f64());
    println!("fleet: 1 passed, 0 failed");
}

// ------------------------------------------------------------------------------------------ parent

fn parent() {
    let secs: u64 = std::env::var("TOKENSMITH_FLEET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = SandboxConfig::default()
        .lifetime(Dialect::Probit, LIFETIME)
        .lifetime(Dialect::Whitebit, LIFETIME)
        .whitebit_auto_approve(true);
    let sandbox = runtime.block_on(Sandbox::start_with(config)).unwrap();
    let probit = sandbox.credentials(Dialect::Probit);
    let whitebit = sandbox.credentials(Dialect::Whitebit);

    // Authorize WhiteBIT once; the token set goes to Redis under the provider's key.
    runtime.block_on(async {
        let provider = WhitebitBuilder::new()
            .base_url(sandbox.base_url(Dialect::Whitebit))
            .client_id(whitebit.client_id.clone())
            .client_secret(whitebit.client_secret.clone())
            .allow_insecure_http(true)
            .store(Arc::new(RedisStore::new(&redis.url()).unwrap()))
            .build()
            .unwrap();
        let pending = provider.authorize();
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = browser.get(pending.url().as_str()).send().await.unwrap();
        assert_eq!(answer.status(), 302, "the sandbox approves at once");
        let callback = answer.headers()["location"].to_str().unwrap().to_owned();
        provider.complete(&pending, &callback).await.unwrap();
    });

    let exe = std::env::current_exe().unwrap();
    let run_for = Duration::from_secs(secs);
    let outage_at = run_for + Duration::from_secs(1);
    let outage = Duration::from_secs(2);
    let total = outage_at + outage + Duration::from_secs(6);
    let workers: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .env(WORKER, i.to_string())
                .env("FLEET_REDIS", redis.url())
                .env("FLEET_PROBIT_URL", sandbox.token_url(Dialect::Probit))
                .env("FLEET_PROBIT_ID", &probit.client_id)
                .env("FLEET_PROBIT_SECRET", &probit.client_secret)
                .env("FLEET_WHITEBIT_URL", sandbox.base_url(Dialect::Whitebit))
                .env("FLEET_WHITEBIT_ID", &whitebit.client_id)
                .env("FLEET_WHITEBIT_SECRET", &whitebit.client_secret)
                .env(
                    "FLEET_PHASES_MS",
                    format!("{},{},{}", run_for.as_millis(), outage_at.as_millis(), total.as_millis()),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let t0 = Instant::now();

    // Phase 1: steady state. Counted when the workers say they are past it (they report per phase),
    // here by reading the sandbox's log at the phase boundary.
    std::thread::sleep(run_for);
    let probit_steady = sandbox.request_count(Dialect::Probit, Dialect::Probit.token_path());
    let whitebit_steady = refresh_fingerprints(&sandbox).len();

    // Phase 2: Redis dies and comes back empty while the fleet runs.
    std::thread::sleep(outage_at.saturating_sub(t0.elapsed()));
    redis.kill();
    std::thread::sleep(outage);
    redis.restart();

    let mut results = Vec::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a worker failed ({}): {stdout}", out.status);
        let line = stdout.lines().find_map(|l| l.strip_prefix("FLEET-RESULT ")).expect("a result line");
        results.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
    }
    let fingerprints = refresh_fingerprints(&sandbox);
    drop(runtime);

    let expected = run_for.as_secs_f64() / 1.5;
    println!(
        "fleet: {PROCESSES} processes x {TASKS} tasks x 2 providers, {secs} s of 2 s tokens: {probit_steady} ProBit token requests, \
         {whitebit_steady} WhiteBIT refreshes (about {expected:.0} refresh intervals; uncoordinated would be ~{:.0})",
        expected * PROCESSES as f64
    );
    println!("fleet: after the outage: {} WhiteBIT refreshes in all; workers: {results:?}", fingerprints.len());

    // Client credentials: about one request per refresh interval for the whole fleet.
    assert!(
        (probit_steady as f64) <= expected * 1.3 + 2.0,
        "{probit_steady} ProBit token requests in {secs} s: not coordinated (expected ~{expected:.0})"
    );
    assert!((probit_steady as f64) >= expected * 0.6, "tokens were not refreshed: {probit_steady}");
    // WhiteBIT: as many refreshes, each refresh token sent exactly once.
    assert!((whitebit_steady as f64) <= expected * 1.3 + 2.0 && (whitebit_steady as f64) >= expected * 0.6);
    let distinct: HashSet<_> = fingerprints.iter().collect();
    assert_eq!(distinct.len(), fingerprints.len(), "a refresh token was sent twice: {fingerprints:?}");
    assert!(fingerprints.len() > whitebit_steady, "WhiteBIT went on refreshing after Redis came back");

    for r in &results {
        let w = r["worker"].as_u64().unwrap();
        // Phase 1: every call of every task got a token.
        assert_eq!(r["steady"]["errors"], 0, "worker {w} got errors in steady state: {r}");
        assert!(
            r["steady"]["probit_ok"].as_u64().unwrap() > 1000 && r["steady"]["whitebit_ok"].as_u64().unwrap() > 1000
        );
        // The outage: ProBit was always served; WhiteBIT failed only with the lock-refused store error.
        assert_eq!(r["outage"]["probit_errors"], 0, "worker {w}: client credentials must fall back: {r}");
        assert_eq!(r["outage"]["whitebit_other_errors"], 0, "worker {w}: only store errors allowed: {r}");
        // After Redis came back, WhiteBIT tokens flow again and the last ones were all good.
        assert_eq!(r["recovered"]["errors"], 0, "worker {w} did not recover: {r}");
        assert!(r["recovered"]["whitebit_ok"].as_u64().unwrap() > 100, "worker {w}: {r}");
    }
}

/// The fingerprints of the refresh tokens WhiteBIT's refresh endpoint received, in order.
fn refresh_fingerprints(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .requests(Dialect::Whitebit)
        .into_iter()
        .filter(|r| r.path == "/oauth2/refresh_token")
        .filter_map(|r| r.fingerprint_of("token").map(str::to_owned))
        .collect()
}

// ------------------------------------------------------------------------------------------ worker

#[derive(Default)]
struct Counters {
    probit_ok: AtomicUsize,
    whitebit_ok: AtomicUsize,
    probit_errors: AtomicUsize,
    whitebit_store_errors: AtomicUsize,
    whitebit_other_errors: AtomicUsize,
}

impl Counters {
    fn snapshot(&self) -> [usize; 5] {
        [
            &self.probit_ok,
            &self.whitebit_ok,
            &self.probit_errors,
            &self.whitebit_store_errors,
            &self.whitebit_other_errors,
        ]
        .map(|c| c.load(Ordering::SeqCst))
    }
}

fn worker() {
    let id = env(WORKER);
    let phases: Vec<u64> = env("FLEET_PHASES_MS").split(',').map(|p| p.parse().unwrap()).collect();
    let (steady, outage_at, total) =
        (Duration::from_millis(phases[0]), Duration::from_millis(phases[1]), Duration::from_millis(phases[2]));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        // A short settle period: after the restart the fleet locks again within a second (the default, 15 s,
        // is sized for real lock leases and request timeouts).
        let store = Arc::new(
            RedisStore::builder(env("FLEET_REDIS"))
                .timeout(Duration::from_millis(300))
                .settle_period(Duration::from_millis(700))
                .build()
                .unwrap(),
        );
        let probit = ProbitBuilder::new()
            .token_url(env("FLEET_PROBIT_URL"))
            .client_id(env("FLEET_PROBIT_ID"))
            .client_secret(env("FLEET_PROBIT_SECRET"))
            .allow_insecure_http(true)
            .refresh_policy(policy())
            .store(store.clone())
            .build()
            .unwrap()
            .shared();
        let whitebit = WhitebitBuilder::new()
            .base_url(env("FLEET_WHITEBIT_URL"))
            .client_id(env("FLEET_WHITEBIT_ID"))
            .client_secret(env("FLEET_WHITEBIT_SECRET"))
            .allow_insecure_http(true)
            .refresh_policy(policy())
            .store(store)
            .build()
            .unwrap()
            .shared();
        let counters = Arc::new(Counters::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            tasks.push(tokio::spawn(run_task(probit.clone(), counters.clone(), start + total, false)));
            tasks.push(tokio::spawn(run_task(whitebit.clone(), counters.clone(), start + total, true)));
        }
        // Snapshot the counters at the phase boundaries.
        tokio::time::sleep_until((start + steady).into()).await;
        let at_steady = counters.snapshot();
        tokio::time::sleep_until((start + outage_at).into()).await;
        let before_outage = counters.snapshot();
        // The outage lasts 2 s; the fleet has recovered 3 s after it ends.
        tokio::time::sleep_until((start + outage_at + Duration::from_secs(5)).into()).await;
        let at_recovery = counters.snapshot();
        for t in tasks {
            t.await.unwrap();
        }
        let end = counters.snapshot();
        let diff = |a: [usize; 5], b: [usize; 5]| -> [usize; 5] { std::array::from_fn(|i| b[i] - a[i]) };
        let outage = diff(before_outage, at_recovery);
        let recovered = diff(at_recovery, end);
        let result = json!({
            "worker": id.parse::<u64>().unwrap(),
            "steady": {"probit_ok": at_steady[0], "whitebit_ok": at_steady[1], "errors": at_steady[2] + at_steady[3] + at_steady[4]},
            "outage": {"probit_ok": outage[0], "whitebit_ok": outage[1], "probit_errors": outage[2],
                       "whitebit_store_errors": outage[3], "whitebit_other_errors": outage[4]},
            "recovered": {"whitebit_ok": recovered[1], "probit_ok": recovered[0], "errors": recovered[2] + recovered[3] + recovered[4]},
        });
        println!("FLEET-RESULT {result}");
    });
}

/// Asks for a token every 20 ms until `until`, counting outcomes.
async fn run_task(provider: SharedTokenProvider, counters: Arc<Counters>, until: Instant, whitebit: bool) {
    while Instant::now() < until {
        let outcome = provider.token().await;
        let counter = match (&outcome, whitebit) {
            (Ok(_), false) => &counters.probit_ok,
            (Ok(_), true) => &counters.whitebit_ok,
            (Err(_), false) => &counters.probit_errors,
            (Err(Error::Store { .. }), true) => &counters.whitebit_store_errors,
            (Err(e), true) => {
                eprintln!("fleet worker: WhiteBIT error: {e}");
                &counters.whitebit_other_errors
            }
        };
        if let Err(e) = &outcome {
            if !whitebit {
                eprintln!("fleet worker: ProBit error: {e}");
            }
        }
        counter.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
