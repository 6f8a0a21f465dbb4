//! The user's part of the CLI's flows against Django OAuth Toolkit done by a real browser (issue 18,
//! item 7): headless Chromium logs in on DOT's login page, clicks Authorize on its consent page for
//! `tokensmith authorize` (authorization code + PKCE, the callback reaching the CLI's loopback
//! listener), and enters the user code and clicks Accept on DOT's device pages for `tokensmith
//! authorize --device`. Each run ends with `tokensmith token` serving what authorize saved.
//!
//! Needs the DOT venv (tests/dot/), Chromium and chromedriver (tests/browser/install.sh) and the
//! `tokensmith` binary (`cargo test --workspace` builds it). `TOKENSMITH_SKIP_DOT=1` or
//! `TOKENSMITH_SKIP_BROWSER=1` skips the tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod browser;
#[allow(dead_code)]
mod dot;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use browser::ChromeDriver;
use dot::{CODE_CLIENT_ID, CODE_CLIENT_SECRET, DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET, DotServer};
use fantoccini::{Client, Locator};
use tokensmith_tests::tokensmith_bin;
use tokio::io::{AsyncBufReadExt as _, BufReader};

const SECRET_VAR: &str = "DOT_BROWSER_CLIENT_SECRET";
const WAIT: Duration = Duration::from_secs(30);

fn scratch(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dot-browser-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The DOT server and a chromedriver, or `None` when either kind of test is skipped.
fn prerequisites() -> Option<(&'static DotServer, ChromeDriver)> {
    if browser::skipped() {
        return None;
    }
    let server = dot::shared()?;
    Some((server, ChromeDriver::start()))
}

/// `tokensmith` with `args`, the client secret in `SECRET_VAR`, stdout piped.
fn spawn(args: &[&str], secret: &str) -> tokio::process::Child {
    tokio::process::Command::new(tokensmith_bin())
        .args(args)
        .env(SECRET_VAR, secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit: (exit code, stderr).
async fn finish(mut child: tokio::process::Child) -> (Option<i32>, String) {
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("the CLI exits").unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await.unwrap();
    (status.code(), stderr)
}

/// Logs the test user in on DOT's login page, wherever the browser was sent to it.
async fn log_in(browser: &Client) -> Result<(), fantoccini::error::CmdError> {
    let username = browser.wait().at_most(WAIT).for_element(Locator::Css("input[name='username']")).await?;
    username.send_keys(dot::USERNAME).await?;
    browser.find(Locator::Css("input[name='password']")).await?.send_keys(dot::PASSWORD).await?;
    browser.find(Locator::Css("button[type='submit']")).await?.click().await?;
    Ok(())
}

/// `tokensmith token` over the same store and client: the access token it prints.
async fn token(common: &[&str], secret: &str) -> String {
    let mut args = vec!["token"];
    args.extend(common);
    let output = spawn(&args, secret).wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn hello(server: &DotServer, token: &str) -> u16 {
    reqwest::Client::new().get(server.url("/api/hello/")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_consent_in_headless_chromium() {
    let Some((server, driver)) = prerequisites() else { return };
    let dir = scratch("code");
    let store = dir.join("tokens.json");
    let common = [
        "--provider",
        "generic-django",
        "--base-url",
        server.base_url(),
        "--client-id",
        CODE_CLIENT_ID,
        "--client-secret-env",
        SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store.to_str().unwrap(),
    ];
    let mut args = vec!["authorize"];
    args.extend(common);
    args.extend(["--pkce", "--no-browser"]);
    let mut cli = spawn(&args, CODE_CLIENT_SECRET);
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, lines.next_line()).await.expect("a URL").unwrap().expect("a URL line");
    assert!(url.starts_with(&server.url("/o/authorize/")), "{url}");

    let browser = driver.session(&dir.join("chromium-profile")).await;
    let result = async {
        browser.goto(&url).await?;
        log_in(&browser).await?;
        // DOT's consent page, after the login redirected back to it.
        browser.wait().at_most(WAIT).for_element(Locator::Css("input[name='allow']")).await?.click().await?;
        // DOT redirects to the CLI's loopback listener, whose page has no form.
        browser.wait().at_most(WAIT).for_element(Locator::Css("body:not(:has(form)) p")).await?;
        browser.current_url().await.map(|u| u.to_string())
    }
    .await;
    let _ = browser.close().await;
    let landed = result.expect("Chromium went through login and consent");
    assert!(landed.starts_with("http://127.0.0.1:") && landed.contains("/callback?"), "{landed}");
    let (code, stderr) = finish(cli).await;
    assert_eq!(code, Some(0), "authorize succeeds: {stderr}");
    assert!(!stderr.contains(CODE_CLIENT_SECRET));

    let access = token(&common, CODE_CLIENT_SECRET).await;
    assert_eq!(hello(server, &access).await, 200, "DOT accepts the token authorize saved");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_entered_and_accepted_in_headless_chromium() {
    let Some((server, driver)) = prerequisites() else { return };
    let dir = scratch("device");
    let store = dir.join("tokens.json");
    let common = [
        "--provider",
        "generic-django",
        "--base-url",
        server.base_url(),
        "--client-id",
        DEVICE_CLIENT_ID,
        "--client-secret-env",
        SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store.to_str().unwrap(),
    ];
    let mut args = vec!["authorize", "--device"];
    args.extend(common);
    let mut cli = spawn(&args, DEVICE_CLIENT_SECRET);
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let mut next =
        async || tokio::time::timeout(WAIT, lines.next_line()).await.expect("a line").unwrap().expect("a line");
    let verification_uri = next().await;
    let user_code = next().await;
    assert!(verification_uri.starts_with(&server.url("/o/device")), "{verification_uri}");
    assert!(!user_code.is_empty());

    // The user opens the plain verification URI and types the code, as on a phone.
    let browser = driver.session(&dir.join("chromium-profile")).await;
    let result = async {
        browser.goto(&verification_uri).await?;
        log_in(&browser).await?;
        let field = browser.wait().at_most(WAIT).for_element(Locator::Css("input[name='user_code']")).await?;
        field.clear().await?;
        field.send_keys(&user_code).await?;
        browser.find(Locator::Css("button[type='submit']")).await?.click().await?;
        browser
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("button[name='action'][value='accept']"))
            .await?
            .click()
            .await?;
        browser.wait().at_most(WAIT).for_element(Locator::Css("body:not(:has(form))")).await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("Chromium went through login, the user code and Accept");
    let (code, stderr) = finish(cli).await;
    assert_eq!(code, Some(0), "authorize --device succeeds once the user accepted: {stderr}");
    assert!(!stderr.contains(DEVICE_CLIENT_SECRET));

    let access = token(&common, DEVICE_CLIENT_SECRET).await;
    assert_eq!(hello(server, &access).await, 200, "DOT accepts the token the device grant saved");
    let _ = std::fs::remove_dir_all(dir);
}
