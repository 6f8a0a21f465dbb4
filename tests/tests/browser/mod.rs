//! Headless Chromium driven over WebDriver (chromedriver + fantoccini), for the tests where a real
//! browser does the user's part (consent pages, the device page). Needs Debian's `chromium` and
//! `chromium-driver` (`tests/browser/install.sh`); `TOKENSMITH_SKIP_BROWSER=1` skips those tests (it
//! prints so); otherwise anything missing fails them. See `docs/conformance.md`.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

/// Set (to anything but `0` or nothing) to skip the browser test.
pub const SKIP_VAR: &str = "TOKENSMITH_SKIP_BROWSER";

/// The flags the issue asks Chromium to run with (a fresh user data dir is added).
pub const CHROMIUM_ARGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Whether the browser tests are to be skipped; prints so (past the test harness's output capture).
pub fn skipped() -> bool {
    tokensmith_tests::skipped(SKIP_VAR)
}

/// `name` on PATH, or the path in the environment variable `var`.
pub fn program(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: run tests/browser/install.sh (apt-get install chromium chromium-driver), or set {var}, or {SKIP_VAR}=1 to skip")
        })
}

/// chromedriver on a free port, in its own process group so that dropping it also ends every
/// Chromium process it started, whatever state the test left them in.
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        let driver = program("CHROMEDRIVER", "chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = tx.send(());
                }
            }
        });
        let driver = ChromeDriver { child, url: format!("http://127.0.0.1:{port}") };
        rx.recv_timeout(Duration::from_secs(30)).expect("chromedriver did not report that it started");
        driver
    }

    /// A new headless Chromium session with a fresh user data dir.
    pub async fn session(&self, user_data_dir: &Path) -> Client {
        let chromium = program("CHROMIUM", "chromium");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", user_data_dir.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": chromium.display().to_string(), "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session from chromedriver at {}: {e}", self.url))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
