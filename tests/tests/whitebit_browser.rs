//! The WhiteBIT consent flow of `tokensmith authorize` in a real browser: headless Chromium, driven
//! over WebDriver (chromedriver + fantoccini), clicks Allow or Deny on the sandbox's consent page and
//! the CLI, running as a process, receives the callback on its loopback listener.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`tests/browser/install.sh`) and the `tokensmith`
//! binary (`cargo build -p tokensmith-cli`; `cargo test --workspace` builds it). `TOKENSMITH_SKIP_BROWSER=1`
//! skips the test (it prints so); otherwise anything missing fails it. See `docs/conformance.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use browser::{ChromeDriver, skipped};
use fantoccini::Locator;
use tokensmith_sandbox::{Dialect, Sandbox};
use tokensmith_tests::tokensmith_bin;

const SECRET_VAR: &str = "TOKENSMITH_TEST_WHITEBIT_SECRET";

fn scratch_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one `tokensmith authorize` run ended with.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stderr: String,
    /// The page the browser ended on.
    page: String,
    /// Where the browser ended.
    url: String,
}

/// Runs `tokensmith authorize --provider whitebit --no-browser ...` against the sandbox, opens the
/// URL it prints in Chromium and clicks the consent page's button `decision`.
async fn authorize_in_browser(sandbox: &Sandbox, driver: &ChromeDriver, dir: &Path, decision: &str) -> Outcome {
    let client = sandbox.credentials(Dialect::Whitebit);
    let store = dir.join("tokens.json");
    let mut cli = tokio::process::Command::new(tokensmith_bin())
        .args(["authorize", "--provider", "whitebit", "--base-url", &sandbox.base_url(Dialect::Whitebit)])
        .args(["--client-id", &client.client_id, "--client-secret-env", SECRET_VAR])
        .arg("--store")
        .arg(&store)
        .args(["--no-browser", "--timeout", "60"])
        .env(SECRET_VAR, &client.client_secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(cli.stdout.take().unwrap());
    let mut url = String::new();
    tokio::time::timeout(Duration::from_secs(30), tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut url))
        .await
        .expect("the CLI printed no URL within 30 s")
        .unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with(&sandbox.base_url(Dialect::Whitebit)), "the CLI prints the sandbox's login URL: {url}");
    assert!(url.contains("state="), "the URL carries a state: {url}");

    let browser = driver.session(&dir.join("chromium-profile")).await;
    let result = async {
        browser.goto(&url).await?;
        let button = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&format!("button[name='decision'][value='{decision}']")))
            .await?;
        button.click().await?;
        // The consent form posts to the sandbox, which redirects to the CLI's loopback listener. Its
        // pages have a paragraph and no form; the consent page (still shown until the redirect lands)
        // has both, so waiting for any paragraph could read the consent page again.
        browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("body:not(:has(form)) p")).await?;
        Ok::<_, fantoccini::error::CmdError>((browser.source().await?, browser.current_url().await?.to_string()))
    }
    .await;
    let _ = browser.close().await;
    let (page, final_url) = result.expect("the browser could not complete the consent page");

    let status = tokio::time::timeout(Duration::from_secs(30), cli.wait())
        .await
        .expect("the CLI did not exit within 30 s of the callback")
        .unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut cli.stderr.take().unwrap(), &mut stderr).await.unwrap();
    assert!(!stderr.contains(&client.client_secret), "the CLI never prints the secret");
    Outcome { code: status.code(), stderr, page, url: final_url }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitebit_consent_in_headless_chromium_allow_then_deny() {
    if skipped() {
        return;
    }
    let sandbox = Sandbox::start().await.unwrap();
    let driver = ChromeDriver::start();

    // Allow: the CLI gets the callback, exchanges the code and writes the store.
    let allow_dir = scratch_dir("allow");
    let allowed = authorize_in_browser(&sandbox, &driver, &allow_dir, "allow").await;
    assert_eq!(allowed.code, Some(0), "authorize succeeds after Allow: {allowed:#?}");
    assert!(allowed.url.starts_with("http://127.0.0.1:") && allowed.url.contains("/callback?"), "{allowed:#?}");
    assert!(allowed.page.contains("Authorization received"), "the loopback listener's page: {allowed:#?}");
    assert!(allowed.stderr.contains("Authorized"), "{allowed:#?}");
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/token"), 1, "the code was exchanged once");
    let store = std::fs::read_to_string(allow_dir.join("tokens.json")).expect("the store was written");
    let stored: serde_json::Value = serde_json::from_str(&store).expect("the store is JSON");
    let entry = stored.as_object().and_then(|o| o.values().next()).expect("the store holds a token set");
    assert!(entry.get("refresh_token").is_some_and(|t| t.is_string()), "with a refresh token: {entry}");

    // Deny: the typed access_denied outcome (exit code 3, "the provider refused").
    let deny_dir = scratch_dir("deny");
    let denied = authorize_in_browser(&sandbox, &driver, &deny_dir, "deny").await;
    assert_eq!(denied.code, Some(3), "authorize fails with the refused exit code after Deny: {denied:#?}");
    assert!(denied.stderr.contains("access_denied"), "the error names access_denied: {denied:#?}");
    assert!(denied.url.contains("error=access_denied"), "{denied:#?}");
    assert!(!deny_dir.join("tokens.json").exists(), "nothing is stored after Deny");
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/token"), 1, "no code exchange after Deny");

    drop(driver);
    let _ = std::fs::remove_dir_all(allow_dir);
    let _ = std::fs::remove_dir_all(deny_dir);
}
