//! The Authlib server the JWT client-authentication conformance test runs against: `tests/authlib/serve.py`
//! (Authlib and Flask from PyPI, pinned in `tests/authlib/requirements.txt`), run with the Python of
//! the venv `tests/authlib/setup.sh` creates. This module spawns it on a free port of 127.0.0.1 and
//! reads the port from its first line of output. It never outlives the test process: its standard
//! input is a pipe from this process and it exits when that pipe closes (when the test process ends
//! in any way), and a dropped [`AuthlibServer`] also kills it if it has not exited within a few seconds.
//!
//! `TOKENSMITH_SKIP_AUTHLIB=1` skips every test that needs the server (each prints that it was
//! skipped); otherwise a missing venv or a server that does not start fails the test.

use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Set (to anything but `0` or nothing) to skip the Authlib conformance tests.
pub const SKIP_VAR: &str = "TOKENSMITH_SKIP_AUTHLIB";
/// Overrides the venv directory (default `target/authlib-venv`), as in `tests/authlib/setup.sh`.
pub const VENV_VAR: &str = "TOKENSMITH_AUTHLIB_VENV";

// The clients registered by tests/authlib/serve.py.
pub const RS256_CLIENT_ID: &str = "tokensmith-rs256";
pub const ES256_CLIENT_ID: &str = "tokensmith-es256";
pub const HS256_CLIENT_ID: &str = "tokensmith-hs256";
/// TEST-ONLY: the HS256 client's secret (`HS256_SECRET` in serve.py).
pub const HS256_SECRET: &str = "tokensmith-hs256-test-secret-of-at-least-32-bytes";

/// Whether the Authlib tests are to be skipped; prints so (past the test harness's output capture).
pub fn skipped() -> bool {
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        let test = std::thread::current().name().unwrap_or("an Authlib conformance test").to_owned();
        let _ = writeln!(std::io::stderr(), "skipped: {SKIP_VAR} is set ({test})");
    }
    skip
}

/// The server shared by the tests of this binary, or `None` when the tests are skipped. Fails the
/// test when it cannot be started.
pub fn shared() -> Option<&'static AuthlibServer> {
    static SHARED: OnceLock<Result<AuthlibServer, String>> = OnceLock::new();
    if skipped() {
        return None;
    }
    match SHARED.get_or_init(AuthlibServer::start) {
        Ok(server) => Some(server),
        Err(message) => panic!("{message}"),
    }
}

/// A running Authlib server.
pub struct AuthlibServer {
    base_url: String,
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
}

impl fmt::Debug for AuthlibServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthlibServer").field("base_url", &self.base_url).finish()
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

fn python() -> PathBuf {
    let venv = std::env::var_os(VENV_VAR)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/authlib-venv"));
    venv.join("bin/python")
}

impl AuthlibServer {
    /// Starts a server; its stderr goes to `target/tmp/authlib.log`.
    pub fn start() -> Result<AuthlibServer, String> {
        let python = python();
        if !python.exists() {
            return Err(format!(
                "the Authlib venv is missing: {} does not exist. Run tests/authlib/setup.sh first, \
                 or set {SKIP_VAR}=1 to skip the Authlib conformance tests",
                python.display()
            ));
        }
        let serve = repo_root().join("tests/authlib/serve.py");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("authlib.log");
        let log_file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(&python)
            .arg(&serve)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {} {}: {e}", python.display(), serve.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the Authlib server's stdout was not captured".to_owned());
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads until the server exits, so that its stdout pipe never fills up.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("tokensmith-authlib listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base_url) => Ok(AuthlibServer { base_url, child: Mutex::new(child), stdin: Mutex::new(stdin) }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Err(format!("the Authlib server did not start ({status}); its log {}:\n{text}", log.display()))
            }
        }
    }

    /// `http://127.0.0.1:PORT`: the issuer, an audience the server accepts.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint, `{base}/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url)
    }

    /// What the server issued and refused so far: `(issued, refused)`.
    pub async fn stats(&self) -> (u64, u64) {
        let text = reqwest::get(format!("{}/stats", self.base_url))
            .await
            .expect("the stats request")
            .text()
            .await
            .expect("the stats response");
        let stats: serde_json::Value = serde_json::from_str(&text).expect("the stats are JSON");
        let get = |k: &str| stats.get(k).and_then(serde_json::Value::as_u64).expect("a count");
        (get("issued"), get("refused"))
    }
}

impl Drop for AuthlibServer {
    fn drop(&mut self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        let Ok(mut child) = self.child.lock() else { return };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
