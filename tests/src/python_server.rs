//! A third-party OAuth server written in Python (`tests/dot/serve.py`, Django OAuth Toolkit;
//! `tests/authlib/serve.py`, Authlib), run for the conformance tests on a free port of 127.0.0.1.
//!
//! The server prints `<banner><base URL>` once it listens; [`PythonServer::spawn`] waits for that
//! line. It never outlives the test process: its standard input is a pipe from this process and it
//! exits when that pipe closes (when the [`PythonServer`] is dropped, or when the test process ends
//! in any way), and a dropped [`PythonServer`] also kills it if it has not exited within 5 s.

use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// How to start a server.
#[derive(Debug)]
pub struct ServerSpec<'a> {
    /// What the server is, for messages: "the Django OAuth Toolkit server".
    pub name: &'a str,
    /// The Python interpreter (a venv's `bin/python`).
    pub python: PathBuf,
    /// What to do when `python` is missing, e.g. "Run tests/dot/setup.sh first".
    pub missing_hint: String,
    /// The script, e.g. `tests/dot/serve.py`.
    pub script: PathBuf,
    /// Its arguments (`--port 0 --exit-on-stdin-eof` are always given first).
    pub args: Vec<String>,
    /// The file its standard error goes to.
    pub log: PathBuf,
    /// The start of the line it prints once it listens, followed by its base URL.
    pub banner: &'a str,
    /// How long it may take to start.
    pub timeout: Duration,
}

/// A running server; dropping it stops it.
pub struct PythonServer {
    base_url: String,
    log: PathBuf,
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
}

impl fmt::Debug for PythonServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonServer").field("base_url", &self.base_url).field("log", &self.log).finish()
    }
}

impl PythonServer {
    /// Starts the server `spec` describes and waits for its banner.
    ///
    /// # Errors
    ///
    /// A message saying what to do: the interpreter is missing, cannot run, or the server did not
    /// print its banner in time (with the end of its log).
    pub fn spawn(spec: ServerSpec<'_>) -> Result<PythonServer, String> {
        let ServerSpec { name, python, missing_hint, script, args, log, banner, timeout } = spec;
        if !python.exists() {
            return Err(format!("the venv of {name} is missing: {} does not exist. {missing_hint}", python.display()));
        }
        let log_file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {} {}: {e}", python.display(), script.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the stdout of {name} was not captured"));
        };
        let (tx, rx) = mpsc::channel();
        let banner = banner.to_owned();
        std::thread::spawn(move || {
            // Reads until the server exits, so that its stdout pipe never fills up.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix(&banner) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(base_url) => Ok(PythonServer { base_url, log, child: Mutex::new(child), stdin: Mutex::new(stdin) }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                Err(format!("{name} did not start ({status}); its log {}:\n{}", log.display(), log_tail(&log, 30)))
            }
        }
    }

    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The file the server's standard error goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        // Closing stdin asks the server to exit (DOT's removes its temporary database directory).
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

/// The last `lines` lines of the file at `path` (nothing if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all.get(all.len().saturating_sub(lines)..).unwrap_or_default().join("\n")
}
