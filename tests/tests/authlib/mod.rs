//! The Authlib server the JWT client-authentication conformance test runs against: `tests/authlib/serve.py`
//! (Authlib and Flask from PyPI, pinned in `tests/authlib/requirements.txt`), run with the Python of
//! the venv `tests/authlib/setup.sh` creates. This module spawns it on a free port of 127.0.0.1 and
//! reads the port from its first line of output. It never outlives the test process: its standard
//! input is a pipe from this process and it exits when that pipe closes (when the test process ends
//! in any way), and a dropped [`AuthlibServer`] also kills it if it has not exited within a few seconds.
//!
//! `TOKENSMITH_SKIP_AUTHLIB=1` skips every test that needs the server (each prints that it was
//! skipped); otherwise a missing venv or a server that does not start fails the test.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use tokensmith_tests::python_server::{PythonServer, ServerSpec};
pub use tokensmith_tests::repo_root;

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
    tokensmith_tests::skipped(SKIP_VAR)
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
#[derive(Debug)]
pub struct AuthlibServer {
    server: PythonServer,
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
        let server = PythonServer::spawn(ServerSpec {
            name: "the Authlib server",
            python: python(),
            missing_hint: format!(
                "Run tests/authlib/setup.sh first, or set {SKIP_VAR}=1 to skip the Authlib conformance tests"
            ),
            script: repo_root().join("tests/authlib/serve.py"),
            args: Vec::new(),
            log: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("authlib.log"),
            banner: "tokensmith-authlib listening on ",
            timeout: Duration::from_secs(60),
        })?;
        Ok(AuthlibServer { server })
    }

    /// `http://127.0.0.1:PORT`: the issuer, an audience the server accepts.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The token endpoint, `{base}/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }

    /// What the server issued and refused so far: `(issued, refused)`.
    pub async fn stats(&self) -> (u64, u64) {
        let text = reqwest::get(format!("{}/stats", self.base_url()))
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
