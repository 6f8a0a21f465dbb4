//! Cross-crate end-to-end tests of tokensmith live in `tests/`; this library holds what several of
//! them share.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// The `tokensmith` binary the CLI tests run: `TOKENSMITH_BIN`, else the one beside the running test
/// binary (`target/<profile>/tokensmith`, which `cargo test --workspace` builds).
///
/// # Panics
///
/// When neither exists: the message says how to build it.
#[allow(clippy::expect_used, clippy::panic)]
pub fn tokensmith_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TOKENSMITH_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running test's path");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join("tokensmith");
    assert!(
        bin.is_file(),
        "{} is missing: build the CLI first (`cargo build -p tokensmith-cli`; `cargo test --workspace` does), or set TOKENSMITH_BIN",
        bin.display()
    );
    bin
}

pub mod python_server;

/// The repository's root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

/// Whether the tests that need an outside program (a Python server, Chromium) are to be skipped:
/// `var` is set to anything but `0` or nothing. Says so on standard error (past the test harness's
/// output capture), naming the test.
pub fn skipped(var: &str) -> bool {
    use std::io::Write as _;
    let skip = std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        let test = std::thread::current().name().unwrap_or("a conformance test").to_owned();
        let _ = writeln!(std::io::stderr(), "skipped: {var} is set ({test})");
    }
    skip
}
