//! The `tokensmith` binary run as a process against an in-process sandbox: output, exit codes, and
//! that no secret (and, on failure, no token) ever appears in what it prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokensmith_sandbox::{Dialect, Fault, Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

#[path = "../../tokensmith/tests/common/renamed_server.rs"]
mod renamed_server;

const BIN: &str = env!("CARGO_BIN_EXE_tokensmith");
const SECRET_VAR: &str = "TS_TEST_CLIENT_SECRET";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tokensmith args...` with a clean `TOKENSMITH_*` environment and the secret in [`SECRET_VAR`].
async fn run(args: &[&str], secret: &str) -> Run {
    run_with_env(args, secret, &[]).await
}

/// [`run`] with the variables `env` set too.
async fn run_with_env(args: &[&str], secret: &str, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command.args(args).env(SECRET_VAR, secret).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("TOKENSMITH_") {
            command.env_remove(name);
        }
    }
    // Each run gets a per-user token cache of its own, unless the test gives one (runs in a row then
    // share it): no run reads what another test, or the user running the tests, cached.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let cache = std::env::temp_dir().join(format!("tokensmith-cli-cache-{}-{run_id}", std::process::id()));
    command.env("XDG_CACHE_HOME", &cache);
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(60), command.output()).await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(!run.stdout.contains(secret), "secret on stdout: {}", run.stdout);
    assert!(!run.stderr.contains(secret), "secret on stderr: {}", run.stderr);
    run
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokensmith-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn protected_status(sandbox: &Sandbox, dialect: Dialect, token: &str) -> u16 {
    reqwest::Client::new()
        .get(sandbox.protected_url(dialect))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts a failure: its exit code, nothing on stdout, and stderr ending with one line starting with
/// `tokensmith: error:`; the lines before it (if any) are tokensmith's logged warnings (retries, ...).
#[track_caller]
fn assert_failure(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout on failure: {}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let (last, logged) = lines.split_last().expect("an error line on stderr");
    assert!(last.starts_with("tokensmith: error: "), "{}", run.stderr);
    for line in logged {
        assert!(line.starts_with(" WARN ") || line.starts_with("ERROR "), "not a log line: {line}\n{}", run.stderr);
    }
    for needle in needles {
        assert!(last.contains(needle), "`{needle}` missing from: {last}");
    }
}

/// `tokensmith token` for `provider` at `sandbox_base`, the secret read from `SECRET_VAR`.
fn token_args<'a>(provider: &'a str, sandbox_base: &'a str, client_id: &'a str) -> Vec<&'a str> {
    vec![
        "token",
        "--provider",
        provider,
        "--base-url",
        sandbox_base,
        "--client-id",
        client_id,
        "--client-secret-env",
        SECRET_VAR,
    ]
}

fn ruby_args<'a>(sandbox_base: &'a str, client_id: &'a str) -> Vec<&'a str> {
    token_args("ruby-style", sandbox_base, client_id)
}

/// `tokensmith token` for the sandbox's WhiteBIT dialect with tokens in `store`.
fn whitebit_token_args<'a>(sandbox_base: &'a str, client_id: &'a str, store: &'a str) -> Vec<&'a str> {
    let mut args = token_args("whitebit", sandbox_base, client_id);
    args.extend(["--store", store]);
    args
}

#[tokio::test]
async fn prints_the_token_alone() {
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let client = sandbox.credentials(Dialect::RubyStyle);
    let out = run(&ruby_args(&base, &client.client_id), &client.client_secret).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert!(out.stdout.ends_with('\n') && out.stdout.lines().count() == 1, "{:?}", out.stdout);
    let token = out.stdout.trim_end();
    assert!(!token.is_empty() && !token.contains(' '));
    assert_eq!(protected_status(&sandbox, Dialect::RubyStyle, token).await, 200);
}

#[tokio::test]
async fn an_encrypted_store_file_keeps_the_token_out_of_the_file() {
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let client = sandbox.credentials(Dialect::RubyStyle);
    let dir = temp_dir("encrypted-store");
    let key_file = dir.join("token.key");
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let key_file = key_file.display().to_string();
    let store = dir.join("tokens.json").display().to_string();
    let mut args = ruby_args(&base, &client.client_id);
    args.extend(["--store", &store]);
    let env = [("TOKENSMITH_STORE_ENCRYPTION_KEY_FILE", key_file.as_str())];

    let first = run_with_env(&args, &client.client_secret, &env).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let token = first.stdout.trim_end();
    let file = std::fs::read_to_string(&store).unwrap();
    assert!(file.contains("ts1:") && !file.contains(token), "{file}");
    // The next run reads the token back from the encrypted file.
    let second = run_with_env(&args, &client.client_secret, &env).await;
    assert_eq!((second.code, second.stdout.trim_end()), (0, token), "{}", second.stderr);
    // Without the key the file is refused and left untouched, and nothing of it is printed: a file
    // that cannot be read will not fix itself, so the run fails (exit 1) instead of fetching alone.
    let before = std::fs::read(&store).unwrap();
    let plain = run(&args, &client.client_secret).await;
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(plain.stderr.contains("encrypted token sets"), "{}", plain.stderr);
    assert!(plain.stderr.contains(&store), "{}", plain.stderr);
    assert!(!plain.stderr.contains(token) && !plain.stdout.contains(token));
    assert_eq!(std::fs::read(&store).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn json_output() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::GenericDjango);
    let base = sandbox.base_url(Dialect::GenericDjango);
    let out = run(
        &[
            "token",
            "--provider",
            "generic-django",
            "--base-url",
            &base,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--scope",
            "read write",
            "--json",
        ],
        &client.client_secret,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
    assert_eq!(json["token_type"], "Bearer");
    let expires_in = json["expires_in"].as_u64().unwrap();
    assert!((35_990..=36_000).contains(&expires_in), "{expires_in}");
    assert_eq!(json["scope"], "read write");
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::GenericDjango, token).await, 200);
}

#[tokio::test]
async fn a_custom_provider_from_flags_alone() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::Probit);
    let url = sandbox.token_url(Dialect::Probit);
    let out = run(
        &[
            "token",
            "--provider",
            "custom",
            "--token-url",
            &url,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--credential-style",
            "basic-raw",
            "--body-format",
            "json",
        ],
        &client.client_secret,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(protected_status(&sandbox, Dialect::Probit, out.stdout.trim_end()).await, 200);
}

#[tokio::test]
async fn flags_override_the_config_file_and_token_url_overrides_the_default_endpoint() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::RubyStyle);
    let dir = temp_dir("override");
    let config = dir.join("tokensmith.toml");
    std::fs::write(
        &config,
        format!(
            "provider = \"ruby-style\"\nbase_url = \"http://127.0.0.1:1/nowhere\"\nclient_id = \"wrong-client\"\nclient_secret = {{ env = \"{SECRET_VAR}\" }}\n"
        ),
    )
    .unwrap();
    let config_path = config.display().to_string();
    let token_url = sandbox.token_url(Dialect::RubyStyle);
    let out = run(
        &["token", "--config", &config_path, "--client-id", &client.client_id, "--token-url", &token_url],
        &client.client_secret,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(protected_status(&sandbox, Dialect::RubyStyle, out.stdout.trim_end()).await, 200);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn usage_and_configuration_errors_exit_2() {
    let secret = "usage-secret-value";
    // clap's own usage errors (unknown flag, the secret as a plain argument, no subcommand) exit 2 with
    // clap's message over several lines, not tokensmith's one error line (docs/cli.md says which).
    for args in [&["token", "--bogus"][..], &["token", "--client-secret", secret], &[]] {
        let out = run(args, secret).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(out.stderr.trim_end().lines().count() > 1, "{args:?}: one line: {}", out.stderr);
        assert!(!out.stderr.contains("tokensmith: error:"), "{args:?}: {}", out.stderr);
    }
    // Configuration errors name the key.
    let out = run(&["token"], secret).await;
    assert_failure(&out, 2, &["`provider`"]);
    let out = run(&["token", "--provider", "okta"], secret).await;
    assert_failure(&out, 2, &["`provider`", "okta"]);
    let out = run(
        &[
            "token",
            "--provider",
            "custom",
            "--token-url",
            "https://a.example.com/t",
            "--client-id",
            "x",
            "--client-secret-env",
            SECRET_VAR,
            "--credential-style",
            "digest",
        ],
        secret,
    )
    .await;
    assert_failure(&out, 2, &["`credential_style`", "digest"]);
    let out = run(
        &[
            "token",
            "--provider",
            "custom",
            "--token-url",
            "https://a.example.com/t",
            "--client-id",
            "x",
            "--client-secret-env",
            "TS_TEST_UNSET_VARIABLE",
        ],
        secret,
    )
    .await;
    assert_failure(&out, 2, &["`client_secret`", "TS_TEST_UNSET_VARIABLE"]);
    let out = run(&["token", "--config", "/nonexistent/tokensmith.toml"], secret).await;
    assert_failure(&out, 2, &["/nonexistent/tokensmith.toml"]);
}

#[tokio::test]
async fn a_refusal_exits_3_with_the_oauth_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let out = run(&ruby_args(&base, "ruby-demo-client"), "not-the-right-secret").await;
    assert_failure(&out, 3, &["invalid_client", "HTTP 401"]);
}

#[tokio::test]
async fn whitebit_without_stored_tokens_exits_3_asking_to_authorize() {
    let sandbox = Sandbox::start().await.unwrap();
    let dir = temp_dir("whitebit-empty");
    let store = dir.join("tokens.json").display().to_string();
    let base = sandbox.base_url(Dialect::Whitebit);
    let client = sandbox.credentials(Dialect::Whitebit);
    let out = run(
        &[
            "token",
            "--provider",
            "whitebit",
            "--base-url",
            &base,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--store",
            &store,
        ],
        &client.client_secret,
    )
    .await;
    assert_failure(&out, 3, &["authorization required", "tokensmith authorize"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_transport_failure_exits_4() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/ruby");
    let out = run(&ruby_args(&base, "ruby-demo-client"), "ruby-demo-secret").await;
    // Issue 19 item 5: the host and port, and the cause, not reqwest's "error sending request".
    let at = format!("127.0.0.1:{port}");
    assert_failure(&out, 4, &["connect", at.as_str(), "Connection refused"]);

    // A redirect is refused, not followed.
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Dialect::RubyStyle, "/oauth/token", Fault::RedirectCrossHost, 1);
    let base = sandbox.base_url(Dialect::RubyStyle);
    let out = run(&ruby_args(&base, "ruby-demo-client"), "ruby-demo-secret").await;
    assert_failure(&out, 4, &["redirect"]);
}

#[tokio::test]
async fn an_invalid_response_exits_5_without_the_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    sandbox.inject(Dialect::RubyStyle, "/oauth/token", Fault::MalformedJson, 1);
    let out = run(&ruby_args(&base, "ruby-demo-client"), "ruby-demo-secret").await;
    assert_failure(&out, 5, &["invalid"]);

    // A token response whose `token_type` is not bearer: the token it carries must not be printed.
    let url = sandbox.token_url(Dialect::RubyStyle);
    let out = run(
        &[
            "token",
            "--provider",
            "custom",
            "--token-url",
            &url,
            "--client-id",
            "ruby-demo-client",
            "--client-secret-env",
            SECRET_VAR,
            "--credential-style",
            "body",
            "--body-format",
            "json",
            "--envelope",
            "/data",
        ],
        "ruby-demo-secret",
    )
    .await;
    assert_failure(&out, 5, &["/data"]);
}

/// Reads lines from the child's stdout until one satisfies `pred`.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pred: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap();
        let line = line.expect("stdout closed before the expected line");
        if pred(&line) {
            return line;
        }
    }
}

/// Runs `tokensmith authorize` and plays the browser: the sandbox approves at once and redirects to the
/// CLI's loopback listener. Returns the CLI's stderr.
async fn authorize(sandbox: &Sandbox, store: &str, extra: &[&str]) -> String {
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let mut child = Command::new(BIN)
        .args([
            "authorize",
            "--provider",
            "whitebit",
            "--base-url",
            &base,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--store",
            store,
            "--no-browser",
        ])
        .args(extra)
        .env(SECRET_VAR, &client.client_secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = read_until(&mut lines, |l| l.starts_with("http")).await;
    assert!(url.contains("clientId=whitebit-demo-client") && url.contains("state="), "{url}");

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.get(&url).send().await.unwrap();
    assert_eq!(login.status(), 302);
    let callback = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    let page = http.get(&callback).send().await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await.unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
    }
    assert!(status.success(), "{stderr}");
    for output in [&stderr, &rest, &url] {
        assert!(!output.contains(&client.client_secret), "secret in authorize output");
    }
    if !store.starts_with("redis://") {
        assert!(std::path::Path::new(store).exists());
    }
    stderr
}

#[tokio::test]
async fn authorize_then_serve_and_refresh_from_the_store() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let dir = temp_dir("authorize");
    let store = dir.join("tokens.json").display().to_string();
    let stderr = authorize(&sandbox, &store, &[]).await;
    assert!(stderr.contains("Authorized"), "{stderr}");

    // `token` serves from the store...
    let token_args = whitebit_token_args(&base, &client.client_id, &store);
    let first = run(&token_args, &client.client_secret).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_token = first.stdout.trim_end().to_owned();
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, &first_token).await, 200);
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 0);

    // ...and refreshes from it once the token has expired. Nothing sleeps: the stored expiry is moved into
    // the past, and the sandbox's clock past the token's lifetime.
    let mut stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for entry in stored.as_object_mut().unwrap().values_mut() {
        entry["expires_at"] = serde_json::json!(now - 10);
    }
    std::fs::write(&store, stored.to_string()).unwrap();
    sandbox.advance_clock(Duration::from_secs(301));
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, &first_token).await, 401);
    let second = run(&token_args, &client.client_secret).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let second_token = second.stdout.trim_end();
    assert_ne!(second_token, first_token);
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, second_token).await, 200);
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn authorize_with_pkce_gives_a_four_hour_token_without_refresh() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let dir = temp_dir("authorize-pkce");
    let store = dir.join("tokens.json").display().to_string();
    let stderr = authorize(&sandbox, &store, &["--pkce"]).await;
    assert!(stderr.contains("no refresh token"), "{stderr}");
    let out = run(
        &[
            "token",
            "--provider",
            "whitebit",
            "--base-url",
            &base,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--store",
            &store,
            "--json",
        ],
        &client.client_secret,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let expires_in = json["expires_in"].as_u64().unwrap();
    assert!((14_300..=14_400).contains(&expires_in), "{expires_in}");
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, token).await, 200);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn authorize_refuses_other_providers_and_a_missing_store() {
    let out = run(
        &[
            "authorize",
            "--provider",
            "probit",
            "--client-id",
            "x",
            "--client-secret-env",
            SECRET_VAR,
            "--store",
            "/tmp/x.json",
            "--no-browser",
        ],
        "s3cr3t-value",
    )
    .await;
    assert_failure(&out, 2, &["`provider`", "whitebit"]);
    let out = run(
        &["authorize", "--provider", "whitebit", "--client-id", "x", "--client-secret-env", SECRET_VAR, "--no-browser"],
        "s3cr3t-value",
    )
    .await;
    assert_failure(&out, 2, &["`store`", "--store"]);
}

#[tokio::test]
async fn sandbox_prints_its_urls_and_demo_credentials() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = read_until(&mut lines, |l| l.contains("listening on")).await;
    assert!(first.contains("http://127.0.0.1:"), "{first}");
    let token_url = read_until(&mut lines, |l| l.contains("token URL")).await;
    assert!(token_url.contains("/probit/token"), "{token_url}");
    let client = read_until(&mut lines, |l| l.contains("client:")).await;
    assert!(client.contains("probit-demo-client"), "{client}");
    child.kill().await.unwrap();
}

/// A `redis-server` on a free loopback port, no persistence, with `password` required when given.
/// Killed when dropped.
struct RedisServer {
    process: std::process::Child,
    port: u16,
}

impl RedisServer {
    async fn start(password: Option<&str>) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut args = vec!["--port".to_owned(), port.to_string()];
        args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(str::to_owned));
        if let Some(password) = password {
            args.extend(["--requirepass".to_owned(), password.to_owned()]);
        }
        let process = std::process::Command::new("redis-server")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (tests/redis/install.sh)");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        RedisServer { process, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `authorize --store redis://...` saves the WhiteBIT tokens in Redis, where `token` finds them;
/// the Redis password appears in no output.
#[tokio::test]
async fn authorize_into_redis_then_serve_from_it() {
    const PASSWORD: &str = "redis-pw-7f3a";
    let redis = RedisServer::start(Some(PASSWORD)).await;
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let store = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let stderr = authorize(&sandbox, &store, &[]).await;
    assert!(stderr.contains("Authorized") && stderr.contains("Redis at redis://"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "the Redis password was printed: {stderr}");

    let token_args = whitebit_token_args(&base, &client.client_id, &store);
    let first = run(&token_args, &client.client_secret).await;
    let second = run(&token_args, &client.client_secret).await;
    assert_eq!((first.code, second.code), (0, 0), "{} {}", first.stderr, second.stderr);
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, first.stdout.trim_end()).await, 200);
    // Served from Redis: one code exchange, no refresh.
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/token"), 1);
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 0);
    for out in [&first.stderr, &second.stderr] {
        assert!(!out.contains(PASSWORD), "{out}");
    }
}

/// `--store redis://...`: two runs share the token through Redis (one token request); with Redis
/// unreachable, a client-credentials provider still prints a token (the fleet failure policy).
#[tokio::test]
async fn store_redis_shares_the_token_and_falls_back_when_redis_is_down() {
    let redis = RedisServer::start(None).await;
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let client = sandbox.credentials(Dialect::RubyStyle);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let mut args = ruby_args(&base, &client.client_id);
    args.extend(["--store", &url]);
    let first = run(&args, &client.client_secret).await;
    let second = run(&args, &client.client_secret).await;
    drop(redis);
    assert_eq!((first.code, second.code), (0, 0), "{} {}", first.stderr, second.stderr);
    assert_eq!(first.stdout, second.stdout, "the second run reused the token from Redis");
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, Dialect::RubyStyle.token_path()), 1);

    // Redis is gone now: the token is fetched for this process alone.
    let alone = run(&args, &client.client_secret).await;
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert_eq!(protected_status(&sandbox, Dialect::RubyStyle, alone.stdout.trim_end()).await, 200);
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, Dialect::RubyStyle.token_path()), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn a_store_file_readable_by_others_is_made_owner_only_with_a_warning_on_stderr() {
    // Issue 15, item 11: the file stayed 0644 when only read, and the warning went nowhere.
    use std::os::unix::fs::PermissionsExt as _;
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let client = sandbox.credentials(Dialect::RubyStyle);
    let dir = temp_dir("store-mode");
    let store = dir.join("tokens.json").display().to_string();
    let mut args = ruby_args(&base, &client.client_id);
    args.extend(["--store", &store]);
    let first = run(&args, &client.client_secret).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.is_empty(), "nothing to warn about: {}", first.stderr);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();

    let second = run(&args, &client.client_secret).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    // stdout is exactly the token (served from the file); the warning is on stderr.
    assert_eq!(second.stdout, first.stdout);
    let lines: Vec<&str> = second.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", second.stderr);
    assert!(lines[0].contains("WARN") && lines[0].contains("readable by other users"), "{}", lines[0]);
    assert!(lines[0].contains(&store) && lines[0].contains("644"), "{}", lines[0]);
    assert!(!lines[0].contains(first.stdout.trim_end()), "the token is not logged");
    assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o600);
    // With -v, tokensmith's info lines show too; stdout is still the token alone.
    let mut verbose = args.clone();
    verbose.insert(0, "-v");
    let third = run(&verbose, &client.client_secret).await;
    assert_eq!((third.code, &third.stdout), (0, &first.stdout), "{}", third.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn two_token_runs_sharing_a_store_file_refresh_a_rotating_token_once() {
    // Issue 15, item 10: two `tokensmith token --store F` runs at once both refreshed; the later save
    // won, and the sandbox (like WhiteBIT) accepts each refresh token once.
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let dir = temp_dir("two-runs");
    let store = dir.join("tokens.json").display().to_string();
    authorize(&sandbox, &store, &[]).await;
    let args = whitebit_token_args(&base, &client.client_id, &store);
    for round in 1..=3 {
        // The stored token has expired (its expiry moved into the past; nothing sleeps), and the
        // sandbox's one-refresh-a-second limit has passed.
        let mut stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        for entry in stored.as_object_mut().unwrap().values_mut() {
            entry["expires_at"] = serde_json::json!(now - 10);
        }
        std::fs::write(&store, stored.to_string()).unwrap();
        sandbox.advance_clock(Duration::from_secs(2));

        let (a, b) = tokio::join!(run(&args, &client.client_secret), run(&args, &client.client_secret));
        assert_eq!(a.code, 0, "{}", a.stderr);
        assert_eq!(b.code, 0, "{}", b.stderr);
        assert_eq!(a.stdout, b.stdout, "round {round}: both runs print the one refreshed token");
        assert_eq!(protected_status(&sandbox, Dialect::Whitebit, a.stdout.trim_end()).await, 200);
        assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), round, "round {round}");
    }
    let sent: Vec<String> = sandbox
        .requests(Dialect::Whitebit)
        .into_iter()
        .filter(|r| r.path == "/oauth2/refresh_token")
        .filter_map(|r| r.fingerprint_of("token").map(str::to_owned))
        .collect();
    let distinct: std::collections::HashSet<_> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "a refresh token was sent twice: {sent:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 15 item 2: a duration too large for a clock is a configuration error (exit 2) naming the
/// flag or variable and the allowed range, never a panic.
#[tokio::test]
async fn huge_durations_exit_2_naming_the_flag_or_variable() {
    const HUGE: &str = "18446744073709551615";
    let dir = temp_dir("huge-durations");
    let store = dir.join("tokens.json").display().to_string();
    let args = [
        "authorize",
        "--provider",
        "whitebit",
        "--client-id",
        "x",
        "--client-secret-env",
        SECRET_VAR,
        "--store",
        &store,
        "--no-browser",
        "--timeout",
        HUGE,
    ];
    let out = run(&args, "s3cr3t-value").await;
    assert_failure(&out, 2, &["`--timeout`", "from 1 to 86400"]);
    let mut args = args.to_vec();
    *args.last_mut().unwrap() = "soon";
    assert_failure(&run(&args, "s3cr3t-value").await, 2, &["`--timeout`", "soon", "from 1 to 86400"]);

    let mut token = ruby_args("https://ruby.example.com", "ruby-demo-client");
    token.extend(["--store", &store]);
    for (var, range) in
        [("TOKENSMITH_TIMEOUT", "from 1 to 3600"), ("TOKENSMITH_FALLBACK_LIFETIME", "from 1 to 2592000")]
    {
        let out = run_with_env(&token, "s3cr3t-value", &[(var, HUGE)]).await;
        assert_failure(&out, 2, &[var, range]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 15 item 6: the secret itself given where a variable *name* is expected is never printed.
#[tokio::test]
async fn a_secret_given_as_a_variable_name_is_never_printed() {
    // `run` fails the test if the secret appears on stdout or stderr.
    let secret = "Sup3rS3cretValue!";
    let mut args = vec![
        "token",
        "--provider",
        "custom",
        "--token-url",
        "https://a.example.com/t",
        "--client-id",
        "x",
        "--client-secret-env",
        SECRET_VAR,
    ];
    let flag = args.iter().position(|a| *a == "--client-secret-env").unwrap();
    args[flag + 1] = secret;
    assert_failure(&run(&args, secret).await, 2, &["`--client-secret-env`", "not an environment variable name"]);
    args[flag + 1] = SECRET_VAR;
    for var in ["TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", "TOKENSMITH_REFRESH_TOKEN_ENV"] {
        let out = run_with_env(&args, secret, &[(var, secret)]).await;
        assert_failure(&out, 2, &[var, "not an environment variable name"]);
    }
    let mut store_args = args.clone();
    store_args.extend(["--store-env", secret]);
    assert_failure(&run(&store_args, secret).await, 2, &["`--store-env`", "not an environment variable name"]);
    // A real name that is unset is named.
    args[flag + 1] = "TS_TEST_UNSET_VARIABLE";
    assert_failure(&run(&args, secret).await, 2, &["`client_secret`", "TS_TEST_UNSET_VARIABLE"]);
}

/// Issue 15 item 7: the store URL (with the Redis password) from a variable (`--store-env VAR`,
/// `TOKENSMITH_STORE`) or a file (`--store-file PATH`), never on the command line; the password is
/// printed nowhere.
#[tokio::test]
async fn the_store_url_comes_from_a_variable_or_a_file() {
    const PASSWORD: &str = "redis-pw-store-env-91c2";
    let redis = RedisServer::start(Some(PASSWORD)).await;
    let sandbox = Sandbox::start().await.unwrap();
    let base = sandbox.base_url(Dialect::RubyStyle);
    let client = sandbox.credentials(Dialect::RubyStyle);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let dir = temp_dir("store-env");
    let url_file = dir.join("store-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let url_file = url_file.display().to_string();
    let plain = ruby_args(&base, &client.client_id);
    let with = |extra: &[&'static str]| {
        let mut args = plain.clone();
        args.extend_from_slice(extra);
        args
    };
    let env_flag = with(&["--store-env", "TS_TEST_STORE_URL"]);
    let mut file_flag = plain.clone();
    file_flag.extend(["--store-file", url_file.as_str()]);
    let runs = [
        run_with_env(&env_flag, &client.client_secret, &[("TS_TEST_STORE_URL", &url)]).await,
        run_with_env(&plain, &client.client_secret, &[("TOKENSMITH_STORE", &url)]).await,
        run(&file_flag, &client.client_secret).await,
    ];
    for out in &runs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD), "{}", out.stderr);
        assert_eq!(out.stdout, runs[0].stdout, "every run reads the token from the same Redis");
    }
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, Dialect::RubyStyle.token_path()), 1);

    // Misuse is a configuration error that echoes neither the password nor the file's content.
    let unset = run(&with(&["--store-env", "TS_TEST_UNSET_STORE"]), &client.client_secret).await;
    assert_failure(&unset, 2, &["`--store-env`", "TS_TEST_UNSET_STORE"]);
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, "{\"k\": {\"access_token\": \"stored-token-value\"}}").unwrap();
    let tokens = tokens.display().to_string();
    let mut wrong = plain.clone();
    wrong.extend(["--store-file", tokens.as_str()]);
    let out = run(&wrong, &client.client_secret).await;
    assert_failure(&out, 2, &["`--store-file`", "--store PATH"]);
    assert!(!out.stderr.contains("stored-token-value"), "{}", out.stderr);
    // Only one way to give the store.
    let both = with(&["--store", "/tmp/x.json", "--store-env", "TS_TEST_STORE_URL"]);
    assert_eq!(run(&both, &client.client_secret).await.code, 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 16 item 4: `--store`, `--store-env` and `--store-file` all go through the facade's store
/// check (`StoreConfig::try_parse`, as `TOKENSMITH_STORE` does), so each takes `memory` and a
/// `redis+unix://` URL alike, and refuses a spec that only looks like a Redis URL, naming the flag and
/// never showing the spec. `authorize` shows which store each became, before any network: the
/// in-memory store is refused, a Redis one is pinged.
#[tokio::test]
async fn every_store_flag_takes_memory_and_redis_unix_through_the_facades_parser() {
    const PASSWORD: &str = "hunter2-unix-5e1d";
    let dir = temp_dir("store-spec");
    let memory_file = dir.join("memory");
    std::fs::write(&memory_file, "memory\n").unwrap();
    let memory_file = memory_file.display().to_string();
    let unix = format!("redis+unix://{}?pass={PASSWORD}", dir.join("no-redis.sock").display());
    let unix_file = dir.join("unix-url");
    std::fs::write(&unix_file, format!("{unix}\n")).unwrap();
    let unix_file = unix_file.display().to_string();
    let env = [("TS_TEST_STORE_MEMORY", "memory"), ("TS_TEST_STORE_UNIX", unix.as_str())];
    let authorize = |store: [&'static str; 2]| async move {
        let mut args = vec![
            "authorize",
            "--provider",
            "whitebit",
            "--client-id",
            "x",
            "--client-secret-env",
            SECRET_VAR,
            "--no-browser",
        ];
        args.extend(store);
        run_with_env(&args, "s3cr3t-value", &env).await
    };
    let leak = |out: &Run| assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);

    for store in
        [["--store", "memory"], ["--store-env", "TS_TEST_STORE_MEMORY"], ["--store-file", memory_file.clone().leak()]]
    {
        let out = authorize(store).await;
        assert_failure(&out, 2, &["`store`", "in-memory store"]);
    }
    // A Redis store over a Unix socket where no Redis listens: the store fails, exit 1, its URL shown
    // with the password redacted. (As a file path, it would have been created instead.)
    let unix_flag: &'static str = unix.clone().leak();
    for store in
        [["--store", unix_flag], ["--store-env", "TS_TEST_STORE_UNIX"], ["--store-file", unix_file.clone().leak()]]
    {
        let out = authorize(store).await;
        assert_failure(&out, 1, &["Redis at redis+unix://", "pass=[redacted]"]);
        leak(&out);
    }
    assert!(!dir.join("no-redis.sock").exists());
    // A spec that only looks like a Redis URL is refused, naming the flag, without being shown.
    let bad = format!("Redis://:{PASSWORD}@127.0.0.1:6379");
    let bad_file = dir.join("bad-url");
    std::fs::write(&bad_file, &bad).unwrap();
    let bad_file: &'static str = bad_file.display().to_string().leak();
    let bad_flag: &'static str = bad.clone().leak();
    for (store, flag) in [
        (["--store", bad_flag], "`--store`"),
        (["--store-env", "TS_TEST_STORE_BAD"], "`--store-env`"),
        (["--store-file", bad_file], "`--store-file`"),
    ] {
        let mut args = vec![
            "authorize",
            "--provider",
            "whitebit",
            "--client-id",
            "x",
            "--client-secret-env",
            SECRET_VAR,
            "--no-browser",
        ];
        args.extend(store);
        let out = run_with_env(&args, "s3cr3t-value", &[("TS_TEST_STORE_BAD", &bad)]).await;
        assert_failure(&out, 2, &[flag, "not a usable Redis URL"]);
        leak(&out);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A `TOKENSMITH_*` variable that looks like a typo of a known one is a warning on stderr naming both;
/// other `TOKENSMITH_*` variables (a provider crate's own) are left alone.
#[tokio::test]
async fn a_misspelt_variable_is_a_warning_naming_the_known_one() {
    let env = [("TOKENSMITH_CLIENT_SECRT", "typo-value-1f3"), ("TOKENSMITH_PROBIT_CLIENT_ID", "other-crate")];
    let out = run_with_env(&["token"], "s3cr3t-value", &env).await;
    assert_failure(&out, 2, &["`provider`"]);
    let warnings: Vec<&str> = out.stderr.lines().filter(|line| line.starts_with(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("`TOKENSMITH_CLIENT_SECRT`") && warnings[0].contains("`TOKENSMITH_CLIENT_SECRET`"),
        "{}",
        warnings[0]
    );
    assert!(!out.stderr.contains("typo-value-1f3"), "{}", out.stderr);
}

/// Issue 15 item 8: a custom refresh-token grant with the in-memory store (`--no-cache`, or
/// `TOKENSMITH_STORE=memory`) would lose the rotated refresh token at exit and replay a spent one on
/// the next run: refused, exit 2, naming `store`.
#[tokio::test]
async fn a_custom_refresh_grant_without_a_lasting_store_exits_2() {
    let args = vec![
        "token",
        "--provider",
        "custom",
        "--token-url",
        "https://a.example.com/t",
        "--client-id",
        "x",
        "--client-secret-env",
        SECRET_VAR,
        // Without it the per-user cache (a file) is the store, which lasts.
        "--no-cache",
    ];
    let env = [("TOKENSMITH_GRANT", "refresh_token"), ("TOKENSMITH_REFRESH_TOKEN_ENV", SECRET_VAR)];
    let out = run_with_env(&args, "rt-s3cr3t-value", &env).await;
    assert_failure(&out, 2, &["`store`", "file store", "--store"]);
    let out = run_with_env(&args, "rt-s3cr3t-value", &[env[0], env[1], ("TOKENSMITH_STORE", "memory")]).await;
    assert_failure(&out, 2, &["`store`"]);
}

/// Issue 15, item 9 and issue 21, item 1: a rotated refresh token the store cannot save is never lost
/// (it goes to a rescue file whose path the one-line error gives) and the run fails instead of
/// printing the token. The store's directory is made immutable (`chattr +i`, which binds root too)
/// after the authorization, so that the lock works but the refreshed set cannot be written.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_refreshed_set_the_store_cannot_save_goes_to_a_rescue_file_and_the_run_fails() {
    struct Immutable(PathBuf);
    impl Drop for Immutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let dir = temp_dir("rescue");
    let store = dir.join("tokens.json").display().to_string();
    authorize(&sandbox, &store, &[]).await;
    let args = whitebit_token_args(&base, &client.client_id, &store);
    let first = run(&args, &client.client_secret).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Expire the stored set (nothing sleeps) and let the sandbox accept the next refresh.
    let mut stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for entry in stored.as_object_mut().unwrap().values_mut() {
        entry["expires_at"] = serde_json::json!(now - 10);
    }
    std::fs::write(&store, stored.to_string()).unwrap();
    sandbox.advance_clock(Duration::from_secs(2));
    let status = std::process::Command::new("chattr").arg("+i").arg(&dir).status().expect("chattr (e2fsprogs) runs");
    assert!(status.success(), "chattr +i failed: this test needs an ext4-like file system");
    let guard = Immutable(dir.clone());

    let failed = run(&args, &client.client_secret).await;
    drop(guard);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stdout.is_empty(), "no token is printed when its set is not saved: {}", failed.stdout);
    let last = failed.stderr.lines().last().unwrap();
    assert!(last.starts_with("tokensmith: error:") && last.contains("rescue"), "{last}");
    let rescue = last.split("written to ").nth(1).unwrap().split(" (readable").next().unwrap().to_owned();
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 1);

    // The rescued set is the refreshed one: served from the rescue file without a new refresh.
    let rescued = whitebit_token_args(&base, &client.client_id, &rescue);
    let from_rescue = run(&rescued, &client.client_secret).await;
    assert_eq!(from_rescue.code, 0, "{}", from_rescue.stderr);
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, from_rescue.stdout.trim_end()).await, 200);
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 1);
    let _ = std::fs::remove_file(&rescue);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 15, item 9: `authorize` checks that the store can save before the user is sent to consent
/// (a store path under a regular file), so no code is spent for nothing.
#[tokio::test]
async fn authorize_checks_the_store_before_printing_the_consent_url() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let client = sandbox.credentials(Dialect::Whitebit);
    let base = sandbox.base_url(Dialect::Whitebit);
    let dir = temp_dir("authorize-probe");
    std::fs::write(dir.join("regular"), b"not a directory").unwrap();
    let store = dir.join("regular").join("tokens.json").display().to_string();
    let out = run(
        &[
            "authorize",
            "--provider",
            "whitebit",
            "--base-url",
            &base,
            "--client-id",
            &client.client_id,
            "--client-secret-env",
            SECRET_VAR,
            "--no-browser",
            "--store",
            &store,
        ],
        &client.client_secret,
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no consent URL is printed: {}", out.stdout);
    assert!(out.stderr.contains("regular"), "{}", out.stderr);
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/token"), 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 16: a server that renames every field, from a configuration file alone, against a server
/// that accepts only that exact shape. Neither secret is printed, logged (at trace level) or in the
/// error when the server echoes them back.
#[tokio::test]
async fn a_dialect_that_renames_every_field_from_a_config_file() {
    use renamed_server::{API_KEY, CLIENT_SECRET, Expiry, RenamedServer, SCOPE, TOKEN};
    const KEY_VAR: &str = "TS_TEST_API_KEY";
    let server = RenamedServer::start(Expiry::Lifetime).await;
    let dir = temp_dir("renamed");
    let file = dir.join("renamed.toml");
    let text = server.config(
        &format!("{{ env = \"{SECRET_VAR}\" }}"),
        &format!("{{ env = \"{KEY_VAR}\" }}"),
        Expiry::Lifetime,
    );
    std::fs::write(&file, text).unwrap();
    let path = file.display().to_string();

    let out = run_with_env(&["-vvv", "token", "--config", &path, "--json"], CLIENT_SECRET, &[(KEY_VAR, API_KEY)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["access_token"], TOKEN);
    let expires_in = json["expires_in"].as_u64().unwrap();
    assert!((899..=900).contains(&expires_in), "{expires_in}");
    assert_eq!(json["scope"], SCOPE);
    assert!(out.stderr.contains("token obtained"), "trace logs on stderr: {}", out.stderr);
    assert!(!out.stdout.contains(API_KEY) && !out.stderr.contains(API_KEY), "{}", out.stderr);

    // A near miss (another API key): the server's 400 is the OAuth error, exit 3, with its detail and
    // without what it echoed.
    let wrong = "k3y-wrong-for-cli-Zt";
    let out = run_with_env(&["-vvv", "token", "--config", &path], CLIENT_SECRET, &[(KEY_VAR, wrong)]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(last.contains("invalid_request") && last.contains("unexpected request"), "{last}");
    assert!(!out.stderr.contains(wrong) && !out.stderr.contains(CLIENT_SECRET), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_sandbox_takes_faults_by_flag_and_serves_its_counts_over_http() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--fault", "probit:/token=status:503*2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = read_until(&mut lines, |l| l.starts_with("tokensmith sandbox listening on")).await;
    let base = banner.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let http = reqwest::Client::new();
    let token = || {
        http.post(format!("{base}/probit/token"))
            .basic_auth("probit-demo-client", Some("probit-demo-secret"))
            .header("content-type", "application/json")
            .body(r#"{"grant_type":"client_credentials"}"#)
            .send()
    };
    assert_eq!(token().await.unwrap().status(), 503);
    assert_eq!(token().await.unwrap().status(), 503);
    assert_eq!(token().await.unwrap().status(), 200, "the flag's fault ran out after two requests");
    let counts = http.get(format!("{base}/_sandbox/counts")).send().await.unwrap().text().await.unwrap();
    let counts: serde_json::Value = serde_json::from_str(&counts).unwrap();
    let row = counts["counts"].as_array().unwrap().iter().find(|r| r["dialect"] == "probit").unwrap();
    assert_eq!((row["path"].as_str(), row["count"].as_u64()), (Some("/token"), Some(3)));
    child.kill().await.unwrap();

    // A malformed flag is a usage error (exit 2) that says what the form is.
    let bad = Command::new(BIN).args(["sandbox", "--port", "0", "--fault", "probit/token"]).output().await.unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("DIALECT:PATH=FAULT"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test]
async fn two_token_runs_in_a_row_send_one_token_request_through_the_per_user_cache() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.credentials(Dialect::RubyStyle);
    let base = sandbox.base_url(Dialect::RubyStyle);
    let cache = std::env::temp_dir().join(format!("tokensmith-cli-user-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cache_text = cache.display().to_string();
    let env = [("XDG_CACHE_HOME", cache_text.as_str())];
    let args = ruby_args(&base, &client.client_id);
    let first = run_with_env(&args, &client.client_secret, &env).await;
    let second = run_with_env(&args, &client.client_secret, &env).await;
    assert_eq!((first.code, second.code), (0, 0), "{}\n{}", first.stderr, second.stderr);
    assert_eq!(first.stdout, second.stdout, "the second run prints the cached token");
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, "/oauth/token"), 1);

    use std::os::unix::fs::PermissionsExt as _;
    let dir = cache.join("tokensmith");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(dir.join("tokens.json")).unwrap().permissions().mode() & 0o777, 0o600);

    // --no-cache neither reads nor writes it; another client id is another entry.
    let mut no_cache = args.clone();
    no_cache.push("--no-cache");
    assert_eq!(run_with_env(&no_cache, &client.client_secret, &env).await.code, 0);
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, "/oauth/token"), 2);
    let special = sandbox.special_credentials(Dialect::RubyStyle);
    let other = ruby_args(&base, &special.client_id);
    assert_eq!(run_with_env(&other, &special.client_secret, &env).await.code, 0);
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, "/oauth/token"), 3);
    assert_eq!(run_with_env(&args, &client.client_secret, &env).await.stdout, first.stdout);
    assert_eq!(sandbox.request_count(Dialect::RubyStyle, "/oauth/token"), 3, "the first entry is still there");
    let _ = std::fs::remove_dir_all(&cache);
}

#[tokio::test]
async fn each_command_help_has_examples_exit_codes_and_variables() {
    for command in ["token", "authorize", "revoke", "sandbox"] {
        let out = run(&[command, "--help"], "unused-secret").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        for wanted in ["Examples:", &format!("tokensmith {command}"), "Exit codes:", "3  the provider refused"] {
            assert!(out.stdout.contains(wanted), "`{command} --help` lacks {wanted:?}:\n{}", out.stdout);
        }
    }
    let token = run(&["token", "--help"], "unused-secret").await.stdout;
    assert!(token.contains("TOKENSMITH_CONFIG") && token.contains("--no-cache"), "{token}");
    // authorize lists only what it uses: scopes and credential style (for any server) but no other
    // flag of the client-credentials dialect, no --no-cache.
    let authorize = run(&["authorize", "--help"], "unused-secret").await.stdout;
    for used in ["--scope", "--credential-style", "--device", "--issuer", "--authorize-url"] {
        assert!(authorize.contains(used), "`authorize --help` lacks {used}:\n{authorize}");
    }
    for unused in ["--body-format", "--envelope", "--no-cache", "--json"] {
        assert!(!authorize.contains(unused), "`authorize --help` lists {unused}:\n{authorize}");
    }
    assert!(authorize.contains("--redirect-uri") && authorize.contains("--store"), "{authorize}");
}
