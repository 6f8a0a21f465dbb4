//! Real OS processes sharing one token file (issue 15, item 10): WhiteBIT's rotating refresh tokens
//! against the sandbox, refreshed concurrently by 3 worker processes x 8 tasks, round after round.
//!
//! Each round the parent ages the stored token set (its expiry moved into the past, as time would)
//! and lets the sandbox's clock pass its one-refresh-a-second limit; then every worker builds a new
//! provider on the file (as a new `tokensmith token --store F` run does) and all of them ask for a
//! token at the same instant. Asserted: exactly one refresh per round (one per due token), every
//! refresh token presented once, every process and task of a round got the same token, the file
//! holds the newest set (its refresh token was never presented, and it refreshes once more), and
//! nothing failed. Without the file lock the processes refresh the same token several times and
//! the sandbox rejects the spent one.
//!
//! The test binary is its own worker (re-executed with `TOKENSMITH_FILE_FLEET_WORKER` set), so it has
//! no libtest harness and prints its own summary. It takes about a second; a watchdog bounds it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::store::FileStore;
use tokensmith_sandbox::{Dialect, Sandbox, SandboxConfig, fingerprint};
use tokensmith_whitebit::WhitebitBuilder;

const WORKER: &str = "TOKENSMITH_FILE_FLEET_WORKER";
const PROCESSES: usize = 3;
const TASKS: usize = 8;
const ROUNDS: usize = 8;
/// Every process starts its round's requests at the same instant, this long after the parent's go.
const START_DELAY: Duration = Duration::from_millis(60);
/// The whole test (or a worker) is stopped if it runs longer than this.
const WATCHDOG: Duration = Duration::from_secs(60);

fn main() {
    watchdog();
    if std::env::var_os(WORKER).is_some() {
        worker();
        return;
    }
    let started = Instant::now();
    parent();
    println!(
        "file_fleet: {PROCESSES} processes sharing one token file, done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("file_fleet: 1 passed, 0 failed");
}

fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("file_fleet: still running after {WATCHDOG:?}; stopping");
        std::process::exit(1);
    });
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ------------------------------------------------------------------------------------------ parent

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn parent() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sandbox = runtime.block_on(Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true))).unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let dir = std::env::temp_dir().join(format!("tokensmith-file-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("tokens.json");

    // Authorize once; the token set goes to the file.
    runtime.block_on(async {
        let provider = WhitebitBuilder::new()
            .base_url(sandbox.base_url(Dialect::Whitebit))
            .client_id(client.client_id.clone())
            .client_secret(client.client_secret.clone())
            .allow_insecure_http(true)
            .store(Arc::new(FileStore::new(&path)))
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
    let mut workers: Vec<Worker> = (0..PROCESSES)
        .map(|i| {
            let mut child = Command::new(&exe)
                .env(WORKER, i.to_string())
                .env("FILE_FLEET_URL", sandbox.base_url(Dialect::Whitebit))
                .env("FILE_FLEET_ID", &client.client_id)
                .env("FILE_FLEET_SECRET", &client.client_secret)
                .env("FILE_FLEET_STORE", &path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Worker { child, stdin, stdout }
        })
        .collect();

    let mut versions = Vec::new();
    for round in 1..=ROUNDS {
        age_stored_tokens(&path);
        // Past the sandbox's limit of one refresh a second per client.
        sandbox.advance_clock(Duration::from_secs(2));
        let start_at = unix_millis() + START_DELAY.as_millis() as u64;
        for w in &mut workers {
            writeln!(w.stdin, "go {start_at}").unwrap();
            w.stdin.flush().unwrap();
        }
        let mut tokens = HashSet::new();
        for (i, w) in workers.iter_mut().enumerate() {
            let mut line = String::new();
            w.stdout.read_line(&mut line).unwrap();
            let report = line.trim_end().strip_prefix("ROUND ").unwrap_or_else(|| panic!("worker {i}: {line:?}"));
            let (errors, fingerprints) = report.split_once(' ').unwrap_or((report, ""));
            assert_eq!(errors, "errors=0", "worker {i}, round {round}: {report}");
            tokens.extend(fingerprints.split(',').map(str::to_owned));
        }
        let refreshes = refresh_fingerprints(&sandbox);
        assert_eq!(refreshes.len(), round, "round {round}: one refresh per due token; tokens served: {tokens:?}");
        assert_eq!(tokens.len(), 1, "round {round}: every process got the one refreshed token: {tokens:?}");
        let (version, access, _) = stored(&path);
        assert_eq!(tokens.into_iter().next().unwrap(), fingerprint(&access), "round {round}: the file holds it");
        versions.push(version);
    }
    for mut w in workers {
        drop(w.stdin);
        let status = w.child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }

    let presented = refresh_fingerprints(&sandbox);
    let distinct: HashSet<_> = presented.iter().collect();
    assert_eq!(distinct.len(), presented.len(), "a refresh token was presented twice: {presented:?}");
    assert!(versions.windows(2).all(|v| v[0] < v[1]), "versions grow: {versions:?}");
    // The file holds the newest set: its refresh token was never presented, and it still refreshes.
    let (_, _, refresh) = stored(&path);
    assert!(!distinct.contains(&fingerprint(&refresh)), "the file holds a spent refresh token");
    age_stored_tokens(&path);
    sandbox.advance_clock(Duration::from_secs(2));
    runtime.block_on(async {
        let provider = WhitebitBuilder::new()
            .base_url(sandbox.base_url(Dialect::Whitebit))
            .client_id(client.client_id.clone())
            .client_secret(client.client_secret.clone())
            .allow_insecure_http(true)
            .store(Arc::new(FileStore::new(&path)))
            .build()
            .unwrap();
        provider.token().await.expect("the grant survived every round");
    });
    assert_eq!(refresh_fingerprints(&sandbox).len(), ROUNDS + 1);
    println!(
        "file_fleet: {ROUNDS} rounds x {PROCESSES} processes x {TASKS} tasks: {} refreshes, each refresh token presented once; versions {versions:?}",
        presented.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Moves the expiry of every stored set into the past, as the passing of time would.
fn age_stored_tokens(path: &Path) {
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    for entry in json.as_object_mut().unwrap().values_mut() {
        entry["expires_at"] = serde_json::json!(now - 10);
    }
    std::fs::write(path, json.to_string()).unwrap();
}

/// The version, access token and refresh token of the one set in the file.
fn stored(path: &Path) -> (u64, String, String) {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let map = json.as_object().unwrap();
    assert_eq!(map.len(), 1, "{:?}", map.keys().collect::<Vec<_>>());
    let entry = map.values().next().unwrap();
    let text = |field: &str| entry[field].as_str().unwrap().to_owned();
    (entry["version"].as_u64().unwrap(), text("access_token"), text("refresh_token"))
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

/// On each `go <unix ms>` line: a new provider on the shared file (a new run), then at that instant
/// `TASKS` concurrent token calls; prints `ROUND errors=N <fingerprints of the tokens served>`.
fn worker() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store_path = PathBuf::from(env("FILE_FLEET_STORE"));
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let start_at: u64 = line.strip_prefix("go ").unwrap().parse().unwrap();
        let report = runtime.block_on(async {
            let provider = WhitebitBuilder::new()
                .base_url(env("FILE_FLEET_URL"))
                .client_id(env("FILE_FLEET_ID"))
                .client_secret(env("FILE_FLEET_SECRET"))
                .allow_insecure_http(true)
                .store(Arc::new(FileStore::new(&store_path)))
                .build()
                .unwrap()
                .shared();
            let wait = Duration::from_millis(start_at.saturating_sub(unix_millis()));
            tokio::time::sleep(wait).await;
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let provider = provider.clone();
                    tokio::spawn(async move { provider.token().await })
                })
                .collect();
            let mut errors = 0;
            let mut served = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(token) => served.push(fingerprint(token.secret().expose_secret())),
                    Err(e) => {
                        eprintln!("file_fleet worker: {e}");
                        errors += 1;
                    }
                }
            }
            served.sort();
            served.dedup();
            format!("ROUND errors={errors} {}", served.join(","))
        });
        println!("{report}");
    }
}
