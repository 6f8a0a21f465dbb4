//! The CLI contract of every flow (issue 18 item 6), end to end through the `tokensmith` binary
//! against a real Django OAuth Toolkit server (tests/dot/): `authorize` (authorization code with
//! PKCE, on the loopback listener) → `token` → `revoke` → `token` exits 3; `authorize --device` →
//! `token`; `--issuer` discovery; a denied consent. The user's part (consent page, device page) is
//! done by a plain HTTP client with a Django session, as in dot_flows.rs. No secret (client secret,
//! code, refresh token; the access token except on `token`'s stdout) appears in any output.
//! JWT client authentication through the CLI runs against the Authlib server of authlib_jwt.rs.
//! `TOKENSMITH_SKIP_DOT=1` skips the DOT tests, `TOKENSMITH_SKIP_AUTHLIB=1` the Authlib one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[allow(dead_code)]
mod authlib;
#[allow(dead_code)]
mod dot;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use dot::{CODE_CLIENT_ID, CODE_CLIENT_SECRET, DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET, DotServer};
use tokensmith_tests::tokensmith_bin;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// The variables the client secrets are given in (`--client-secret-env`).
const CODE_SECRET_VAR: &str = "CLI_FLOWS_CODE_SECRET";
const DEVICE_SECRET_VAR: &str = "CLI_FLOWS_DEVICE_SECRET";

/// The server shared by this binary's tests, or return (skipped).
macro_rules! server {
    () => {
        match dot::shared() {
            Some(server) => server,
            None => return,
        }
    };
}

fn scratch(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-flows-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `tokensmith` command with a clean environment: only the secrets' variables and PATH.
fn command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(tokensmith_bin());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(CODE_SECRET_VAR, CODE_CLIENT_SECRET)
        .env(DEVICE_SECRET_VAR, DEVICE_CLIENT_SECRET)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(args: &[&str]) -> Output {
    command(args).output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every output of a run: none may hold a secret.
fn assert_no_secret(what: &str, output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!output.contains(secret), "{what} shows a secret:\n{output}");
    }
}

/// Every string stored under a `refresh_token` key in the file store's JSON.
fn stored_refresh_tokens(path: &str) -> Vec<String> {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match v {
                        serde_json::Value::String(text) if key == "refresh_token" => found.push(text.clone()),
                        _ => walk(v, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(), &mut found);
    found
}

/// The settings of DOT's authorization-code client, by base URL, with a file store at `store`.
fn code_client<'a>(server: &'a DotServer, store: &'a str) -> [&'a str; 12] {
    [
        "--provider",
        "generic-django",
        "--base-url",
        server.base_url(),
        "--client-id",
        CODE_CLIENT_ID,
        "--client-secret-env",
        CODE_SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store,
    ]
}

/// `GET /api/hello/` with `token`: DOT's verdict on it.
async fn hello(server: &DotServer, token: &str) -> u16 {
    reqwest::Client::new().get(server.url("/api/hello/")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// A running `tokensmith authorize`: its stdout lines as they come, and the process.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdout: Vec<String>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child = command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Running { child, lines, stdout: Vec::new() }
    }

    async fn line(&mut self) -> String {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("a line from authorize within 60 s")
            .unwrap()
            .expect("authorize printed a line");
        self.stdout.push(line.clone());
        line
    }

    /// Waits for the exit: (code, the rest of stdout, stderr).
    async fn finish(mut self) -> (i32, Vec<String>, String) {
        while let Ok(Some(line)) = self.lines.next_line().await {
            self.stdout.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await.unwrap();
        }
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("authorize exits")
            .unwrap();
        (status.code().unwrap_or(-1), self.stdout, stderr)
    }
}

/// The user on DOT's consent page for `url`: Authorize (or Cancel); returns DOT's redirect.
async fn consent(server: &DotServer, url: &str, allow: bool) -> String {
    let browser = dot::login(server).await;
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "DOT's consent page for the CLI's URL");
    let html = page.text().await.unwrap();
    assert!(html.contains("Authorize tokensmith-code?"), "{html}");
    let mut fields = dot::hidden_inputs(&html);
    assert!(fields.iter().any(|(n, v)| n == "code_challenge_method" && v == "S256"), "PKCE sent: {fields:?}");
    if allow {
        fields.push(("allow".to_owned(), "Authorize".to_owned()));
    }
    let answered = browser.post(server.url("/o/authorize/")).form(&fields).send().await.unwrap();
    assert_eq!(answered.status(), 302, "the consent form redirects to the client");
    answered.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).expect("a Location").to_owned()
}

/// The browser follows DOT's redirect to the CLI's loopback listener.
async fn follow(location: &str) -> u16 {
    reqwest::Client::new().get(location).send().await.unwrap().status().as_u16()
}

fn csrf(html: &str) -> String {
    dot::hidden_inputs(html)
        .into_iter()
        .find(|(name, _)| name == "csrfmiddlewaretoken")
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("a CSRF token in:\n{html}"))
}

/// The user's part of the device grant: the complete verification URI, the code, then `action`
/// (`accept` or `deny`).
async fn answer_device(server: &DotServer, verification_uri: &str, user_code: &str, complete: &str, action: &str) {
    let browser = dot::login(server).await;
    let page = browser.get(complete).send().await.unwrap();
    assert_eq!(page.status(), 200, "the user code page");
    let html = page.text().await.unwrap();
    assert!(html.contains(user_code), "the page is filled with the user code:\n{html}");
    let submitted = browser
        .post(verification_uri)
        .form(&[("csrfmiddlewaretoken", csrf(&html).as_str()), ("user_code", user_code)])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 302, "a valid user code leads to the confirmation page");
    let confirm = server.url(submitted.headers()["location"].to_str().unwrap());
    let page = browser.get(&confirm).send().await.unwrap();
    let html = page.text().await.unwrap();
    let answered = browser
        .post(&confirm)
        .form(&[("csrfmiddlewaretoken", csrf(&html).as_str()), ("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 302, "the answer is recorded");
}

/// `authorize` (code + PKCE) through the CLI, the user approving; returns its stdout and stderr.
async fn authorize_code(server: &DotServer, args: &[&str]) -> (Vec<String>, String) {
    let mut running = Running::spawn(args);
    let url = running.line().await;
    assert!(url.starts_with(&server.url("/o/authorize/")), "the URL to open: {url}");
    let location = consent(server, &url, true).await;
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    assert_eq!(follow(&location).await, 200, "the listener accepts the callback");
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(n, _)| n == "code").unwrap().1.into_owned();
    let (status, stdout, stderr) = running.finish().await;
    assert_eq!(status, 0, "authorize succeeds: {stderr}");
    assert_eq!(stdout.len(), 1, "authorize prints the URL alone on stdout: {stdout:?}");
    assert_no_secret("authorize", &format!("{stdout:?}{stderr}"), &[CODE_CLIENT_SECRET, &code]);
    assert!(stderr.contains("tokens saved in"), "{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn authorization_code_then_token_then_revoke_then_token_asks_to_authorize_again() {
    let server = server!();
    let dir = scratch("code");
    let store = dir.join("tokens.json");
    let store = store.to_str().unwrap();
    let common = code_client(server, store);
    let mut args = vec!["authorize"];
    args.extend(common);
    args.extend(["--pkce", "--no-browser"]);
    let (authorize_stdout, authorize_stderr) = authorize_code(server, &args).await;
    let refresh = stored_refresh_tokens(store);
    assert_eq!(refresh.len(), 1, "the set with its refresh token is in the store");
    let refresh = refresh[0].clone();
    assert_no_secret("authorize", &format!("{authorize_stdout:?}{authorize_stderr}"), &[&refresh]);

    // `token` finds the set in the store (no --grant): the saved access token, accepted by DOT.
    let mut token_args = vec!["token"];
    token_args.extend(common);
    let first = run(&token_args).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let access = text(&first.stdout).trim().to_owned();
    assert!(!access.is_empty());
    assert_eq!(hello(server, &access).await, 200, "DOT accepts the token authorize saved");
    assert_no_secret("token's stderr", &text(&first.stderr), &[CODE_CLIENT_SECRET, &access, &refresh]);
    assert_no_secret("token's stdout", &text(&first.stdout), &[CODE_CLIENT_SECRET, &refresh]);
    // And with the grant named.
    token_args.extend(["--grant", "authorization_code"]);
    let second = run(&token_args).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(text(&second.stdout).trim(), access, "served from the store, no new request");

    // Revoke: refresh then access token, gone from the store.
    let mut revoke_args = vec!["revoke"];
    revoke_args.extend(common);
    let revoked = run(&revoke_args).await;
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    assert!(text(&revoked.stdout).is_empty(), "revoke prints nothing on stdout");
    assert_no_secret("revoke", &text(&revoked.stderr), &[CODE_CLIENT_SECRET, &access, &refresh]);
    assert_eq!(hello(server, &access).await, 401, "DOT no longer accepts the revoked access token");
    assert!(!std::fs::read_to_string(store).unwrap_or_default().contains("refresh_token"), "removed from the store");

    // Now `token` has nothing to refresh: exit 3, saying to authorize again.
    let after = run(&token_args).await;
    assert_eq!(after.status.code(), Some(3), "{}", text(&after.stderr));
    assert!(text(&after.stdout).is_empty());
    assert!(text(&after.stderr).contains("tokensmith authorize"), "{}", text(&after.stderr));
    assert_no_secret("token after revoke", &text(&after.stderr), &[CODE_CLIENT_SECRET, &access, &refresh]);
}

#[tokio::test]
async fn a_revoked_refresh_token_exits_3_asking_to_authorize_again() {
    let server = server!();
    let dir = scratch("refused");
    let store_path = dir.join("tokens.json");
    let store = store_path.to_str().unwrap();
    let common = code_client(server, store);
    let mut args = vec!["authorize"];
    args.extend(common);
    args.extend(["--pkce", "--no-browser"]);
    authorize_code(server, &args).await;
    // Keep a copy of the set, revoke, put the copy back: the store holds a refresh token DOT refused.
    let copy = std::fs::read(&store_path).unwrap();
    let mut revoke_args = vec!["revoke"];
    revoke_args.extend(common);
    assert_eq!(run(&revoke_args).await.status.code(), Some(0));
    std::fs::write(&store_path, &copy).unwrap();
    // Make the access token due, so that `token` must refresh: edit its expiry in the JSON file.
    let mut value: serde_json::Value = serde_json::from_slice(&copy).unwrap();
    fn expire(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.contains("expires_at") && v.is_number() {
                        *v = serde_json::json!(1);
                    } else {
                        expire(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(expire),
            _ => {}
        }
    }
    expire(&mut value);
    std::fs::write(&store_path, serde_json::to_vec(&value).unwrap()).unwrap();
    let mut token_args = vec!["token"];
    token_args.extend(common);
    let refused = run(&token_args).await;
    assert_eq!(refused.status.code(), Some(3), "stdout {} stderr {}", text(&refused.stdout), text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("tokensmith authorize") && stderr.contains("rejected the refresh token"), "{stderr}");
    assert_no_secret("token", &stderr, &[CODE_CLIENT_SECRET]);
}

#[tokio::test]
async fn device_authorize_then_token() {
    let server = server!();
    let dir = scratch("device");
    let store = dir.join("tokens.json");
    let store = store.to_str().unwrap();
    let common = [
        "--provider",
        "generic-django",
        "--base-url",
        server.base_url(),
        "--client-id",
        DEVICE_CLIENT_ID,
        "--client-secret-env",
        DEVICE_SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store,
    ];
    let mut args = vec!["authorize", "--device"];
    args.extend(common);
    let mut running = Running::spawn(&args);
    let verification_uri = running.line().await;
    let user_code = running.line().await;
    let complete = running.line().await;
    assert_eq!(verification_uri, server.url("/o/device/"));
    assert!(complete.contains(&user_code), "{complete}");
    answer_device(server, &verification_uri, &user_code, &complete, "accept").await;
    let (status, stdout, stderr) = running.finish().await;
    assert_eq!(status, 0, "authorize --device succeeds: {stderr}");
    assert_eq!(stdout.len(), 3, "three lines on stdout: {stdout:?}");
    assert_no_secret("authorize --device", &stderr, &[DEVICE_CLIENT_SECRET]);

    let mut token_args = vec!["token", "--grant", "device_code"];
    token_args.extend(common);
    let token = run(&token_args).await;
    assert_eq!(token.status.code(), Some(0), "{}", text(&token.stderr));
    let access = text(&token.stdout).trim().to_owned();
    assert_eq!(hello(server, &access).await, 200, "DOT accepts the device grant's token");
    assert_no_secret("token", &text(&token.stderr), &[DEVICE_CLIENT_SECRET, &access]);
}

#[tokio::test]
async fn a_denied_device_authorization_exits_3_and_saves_nothing() {
    let server = server!();
    let dir = scratch("device-denied");
    let store_path = dir.join("tokens.json");
    let args = [
        "authorize",
        "--device",
        "--provider",
        "generic-django",
        "--base-url",
        server.base_url(),
        "--client-id",
        DEVICE_CLIENT_ID,
        "--client-secret-env",
        DEVICE_SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store_path.to_str().unwrap(),
    ];
    let mut running = Running::spawn(&args);
    let verification_uri = running.line().await;
    let user_code = running.line().await;
    let complete = running.line().await;
    answer_device(server, &verification_uri, &user_code, &complete, "deny").await;
    let (status, _stdout, stderr) = running.finish().await;
    assert_eq!(status, 3, "a denied device authorization is a refusal: {stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert_no_secret("authorize --device", &stderr, &[DEVICE_CLIENT_SECRET]);
    assert!(!std::fs::read_to_string(&store_path).unwrap_or_default().contains("access_token"), "nothing saved");
}

#[tokio::test]
async fn issuer_discovery_for_authorize_token_and_revoke() {
    let server = server!();
    let dir = scratch("issuer");
    let store = dir.join("tokens.json");
    let store = store.to_str().unwrap();
    let issuer = server.url("/o");
    let common = [
        "--provider",
        "custom",
        "--issuer",
        issuer.as_str(),
        "--client-id",
        CODE_CLIENT_ID,
        "--client-secret-env",
        CODE_SECRET_VAR,
        "--scope",
        "read",
        "--store",
        store,
    ];
    let mut args = vec!["authorize"];
    args.extend(common);
    args.extend(["--pkce", "--no-browser"]);
    authorize_code(server, &args).await;
    let mut token_args = vec!["token"];
    token_args.extend(common);
    let token = run(&token_args).await;
    assert_eq!(token.status.code(), Some(0), "{}", text(&token.stderr));
    let access = text(&token.stdout).trim().to_owned();
    assert_eq!(hello(server, &access).await, 200);
    let mut revoke_args = vec!["revoke"];
    revoke_args.extend(common);
    let revoked = run(&revoke_args).await;
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    assert_eq!(hello(server, &access).await, 401, "revoked at the endpoint discovery named");

    // The client-credentials grant with the token endpoint from discovery.
    let cc = command(&[
        "token",
        "--provider",
        "custom",
        "--issuer",
        issuer.as_str(),
        "--client-id",
        dot::CC_CLIENT_ID,
        "--client-secret-env",
        "CLI_FLOWS_CC_SECRET",
        "--scope",
        "read",
        "--no-cache",
    ])
    .env("CLI_FLOWS_CC_SECRET", dot::CC_CLIENT_SECRET)
    .output()
    .await
    .unwrap();
    assert_eq!(cc.status.code(), Some(0), "{}", text(&cc.stderr));
    assert_eq!(
        hello(server, text(&cc.stdout).trim()).await,
        200,
        "a client-credentials token from the discovered endpoint"
    );
}

#[tokio::test]
async fn an_issuer_whose_metadata_names_another_exits_2_naming_issuer() {
    // A DOT whose OIDC_ISS_ENDPOINT names another issuer (a proxy set up wrong, or a mix-up).
    let Some(server) = dot::dedicated_with(3600, "cli-flows-issuer", &["--issuer", "https://issuer.example.test/o"])
    else {
        return;
    };
    let dir = scratch("wrong-issuer");
    let store = dir.join("tokens.json");
    let issuer = server.url("/o");
    let args = [
        "authorize",
        "--provider",
        "custom",
        "--issuer",
        issuer.as_str(),
        "--client-id",
        CODE_CLIENT_ID,
        "--client-secret-env",
        CODE_SECRET_VAR,
        "--store",
        store.to_str().unwrap(),
        "--no-browser",
    ];
    let failed = run(&args).await;
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stderr}");
    assert!(text(&failed.stdout).is_empty(), "no URL to open from a server that failed discovery");
    assert!(stderr.contains("issuer") && stderr.contains("https://issuer.example.test/o"), "{stderr}");
}

#[tokio::test]
async fn a_denied_consent_exits_3_and_saves_nothing() {
    let server = server!();
    let dir = scratch("denied");
    let store_path = dir.join("tokens.json");
    let store = store_path.to_str().unwrap();
    let mut args = vec!["authorize"];
    args.extend(code_client(server, store));
    args.extend(["--pkce", "--no-browser"]);
    let mut running = Running::spawn(&args);
    let url = running.line().await;
    // A callback with another state is refused and ignored: the CLI keeps waiting.
    let port = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(follow(&format!("{port}?code=forged&state=not-the-state")).await, 400, "a wrong state is refused");
    let location = consent(server, &url, false).await;
    assert!(location.contains("error=access_denied"), "{location}");
    follow(&location).await;
    let (status, _stdout, stderr) = running.finish().await;
    assert_eq!(status, 3, "a denied consent is a refusal: {stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(!std::fs::read_to_string(&store_path).unwrap_or_default().contains("access_token"), "nothing saved");
}

/// `--credential-style private-key-jwt --private-key-file PEM --key-id KID` and `client-secret-jwt`
/// through `tokensmith token`, against Authlib, which verifies the assertions (RFC 7523).
#[tokio::test]
async fn jwt_credential_styles_through_the_cli_against_authlib() {
    let Some(server) = authlib::shared() else { return };
    let token_url = server.token_url();
    let fixtures = authlib::repo_root().join("crates/core/tests/fixtures");
    let pem_path = fixtures.join("test-only-rsa.pem");
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let key_body: String = pem.lines().nth(1).unwrap().to_owned();
    let pem_arg = pem_path.to_str().unwrap();
    let private = [
        "token",
        "--provider",
        "custom",
        "--token-url",
        token_url.as_str(),
        "--client-id",
        authlib::RS256_CLIENT_ID,
        "--credential-style",
        "private-key-jwt",
        "--private-key-file",
        pem_arg,
        "--key-id",
        "test-key",
        "--scope",
        "read",
        "--no-cache",
    ];
    let out = run(&private).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).trim().is_empty());
    assert_no_secret("private-key-jwt token", &text(&out.stderr), &[&key_body]);

    let mut hs256 = command(&[
        "token",
        "--provider",
        "custom",
        "--token-url",
        token_url.as_str(),
        "--client-id",
        authlib::HS256_CLIENT_ID,
        "--credential-style",
        "client-secret-jwt",
        "--client-secret-env",
        "CLI_FLOWS_HS256_SECRET",
        "--scope",
        "read",
        "--no-cache",
    ]);
    let out = hs256.env("CLI_FLOWS_HS256_SECRET", authlib::HS256_SECRET).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).trim().is_empty());
    assert_no_secret("client-secret-jwt token", &text(&out.stderr), &[authlib::HS256_SECRET]);

    // The wrong key for the client: Authlib refuses the assertion, exit 3, the key never shown.
    let ec = fixtures.join("test-only-ec-p256.pem");
    let mut wrong = private;
    wrong[10] = ec.to_str().unwrap();
    let out = run(&wrong).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_no_secret("refused private-key-jwt", &text(&out.stderr), &[&key_body]);
}
