//! The fault matrix: every fault the sandbox can inject, against every dialect, through the real
//! provider crates (builder, cache, `TokenClient`, `ReqwestTransport`) over loopback.
//!
//! Each case runs with its own sandbox, a current-thread runtime and a TRACE subscriber writing into a
//! buffer, on one of `WORKERS` threads that take the cases in turn. It asserts the exact typed outcome, the number of requests the
//! sandbox saw (never more than the retry budget of 3), that nothing panicked, and that neither the
//! client secret (raw, form- or percent-encoded, or as a Basic header) nor any access, refresh token
//! or code appears in the error's `Display`/`Debug` or in the captured log.
//!
//! Every fault is run twice: on every attempt ("persistent"), and on the first attempt only ("once",
//! which a retry recovers from when the failure is retryable). Run with `--nocapture` to print the
//! matrix that `docs/reliability.md` shows.
//!
//! Two hand-written servers complete it: one that accepts connections and never answers, and one
//! that answers only after the overall retry deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::testing::LogCapture;
use tokensmith_core::{
    AccessToken, ClientCredentials, Error, RetryPolicy, Scopes, SharedTokenProvider, TokenClient, TokenEndpoint,
    error::{TransportError, TransportErrorKind},
    http::{HttpResponse, ReqwestTransport, Transport},
    request::{Grant, TokenRequest},
};
use tokensmith_generic_django::DjangoBuilder;
use tokensmith_probit::ProbitBuilder;
use tokensmith_ruby_style::RubyStyleBuilder;
use tokensmith_sandbox::{DemoClient, Dialect, ExpiresInFault, Fault, Sandbox, SandboxConfig};
use tokensmith_whitebit::WhitebitBuilder;

/// The `TokenClient`'s per-request timeout in every case (`ReqwestTransport::builder().timeout`).
const TIMEOUT: Duration = Duration::from_millis(1500);
/// The injected latency: beyond the timeout.
const LATENCY: Duration = Duration::from_millis(4000);
/// The retry budget: `RetryPolicy::default()` makes at most 3 attempts.
const BUDGET: usize = 3;
/// Larger than the transport's 1 MiB body limit.
const OVERSIZED: usize = 2 * 1024 * 1024;
/// The cap on believed lifetimes (`ResponseFormat::default`): 30 days.
const MAX_LIFETIME: u64 = 30 * 24 * 3600;
/// Cases running at once per test.
const WORKERS: usize = 6;

// ------------------------------------------------------------------ the targets

/// A provider dialect and the request the fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Target {
    /// ProBit client credentials, through `ProbitProvider` (cache included).
    Probit,
    /// Django OAuth Toolkit client credentials, through `DjangoProvider`.
    Django,
    /// Doorkeeper client credentials, through `RubyStyleProvider`.
    Ruby,
    /// WhiteBIT's code exchange, through `WhitebitProvider::complete`.
    WhitebitExchange,
    /// WhiteBIT's refresh (rotating refresh token), through the provider's cache.
    WhitebitRefresh,
}

impl Target {
    fn dialect(self) -> Dialect {
        match self {
            Target::Probit => Dialect::Probit,
            Target::Django => Dialect::GenericDjango,
            Target::Ruby => Dialect::RubyStyle,
            Target::WhitebitExchange | Target::WhitebitRefresh => Dialect::Whitebit,
        }
    }

    /// The route the fault is injected on (relative to the dialect's base URL).
    fn path(self) -> &'static str {
        match self {
            Target::Probit => "/token",
            Target::Django => "/o/token/",
            Target::Ruby => "/oauth/token",
            Target::WhitebitExchange => "/oauth2/token",
            Target::WhitebitRefresh => "/oauth2/refresh_token",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Probit => "probit (client credentials)",
            Target::Django => "generic-django (client credentials)",
            Target::Ruby => "ruby-style (client credentials)",
            Target::WhitebitExchange => "whitebit (code exchange)",
            Target::WhitebitRefresh => "whitebit (refresh, rotating)",
        }
    }

    /// The lifetime the sandbox issues (seconds).
    fn lifetime(self) -> u64 {
        self.dialect().default_lifetime().as_secs()
    }

    /// The provider crate's fallback lifetime when `expires_in` is missing.
    fn fallback(self) -> u64 {
        match self {
            Target::Probit => tokensmith_probit::FALLBACK_LIFETIME.as_secs(),
            Target::Django | Target::Ruby => 3600,
            Target::WhitebitExchange | Target::WhitebitRefresh => tokensmith_whitebit::ACCESS_TOKEN_LIFETIME.as_secs(),
        }
    }

    /// The grant the target sends (for probing core's retry rule on grants that consume something).
    fn grant(self) -> Grant {
        match self {
            Target::Probit | Target::Django | Target::Ruby => Grant::ClientCredentials,
            Target::WhitebitExchange => Grant::AuthorizationCode {
                code: SecretString::from("probe-code"),
                redirect_uri: None,
                code_verifier: None,
            },
            Target::WhitebitRefresh => Grant::RefreshToken(tokensmith_core::RefreshToken::new("probe-refresh")),
        }
    }
}

/// Every fault the sandbox can inject, with the label the matrix prints.
fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("5xx: 500 (provider's error body)", Fault::Status(500)),
        ("5xx: 503 (proxy HTML page)", Fault::Status(503)),
        ("429 with `Retry-After: 1`", Fault::TooManyRequests { retry_after: Some("1".to_owned()) }),
        ("latency 4 s > 1.5 s timeout", Fault::Latency(LATENCY)),
        ("connection reset", Fault::ResetConnection),
        ("truncated body", Fault::TruncatedBody),
        ("malformed JSON (200)", Fault::MalformedJson),
        ("HTML page (403 WAF)", Fault::HtmlErrorPage(403)),
        ("200 with `error`", Fault::ErrorIn200),
        ("oversized body (2 MiB)", Fault::OversizedBody(OVERSIZED)),
        ("cross-host redirect (307)", Fault::RedirectCrossHost),
        ("`expires_in` missing", Fault::ExpiresIn(ExpiresInFault::Missing)),
        ("`expires_in`: 0", Fault::ExpiresIn(ExpiresInFault::Zero)),
        ("`expires_in`: -1", Fault::ExpiresIn(ExpiresInFault::Negative)),
        ("`expires_in`: i64::MAX", Fault::ExpiresIn(ExpiresInFault::Huge)),
        ("`expires_in` as a string (\"900\" for 900 s)", Fault::ExpiresIn(ExpiresInFault::String)),
        ("`access_token` missing", Fault::MissingAccessToken),
        ("`token_type`: \"bearer\"", Fault::LowercaseTokenType),
    ]
}

// ------------------------------------------------------------------ outcomes

/// The typed outcome of one fetch, as compared.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Outcome {
    /// A token with this lifetime in seconds.
    Token(u64),
    Transport(TransportErrorKind),
    /// `Error::Http` with this status.
    Http(u16),
    /// `Error::OAuth` with this code and status.
    OAuth(String, u16),
    InvalidResponse,
    /// Anything else: never expected.
    Unexpected(String),
}

impl Outcome {
    fn of(result: &Result<AccessToken, Error>) -> Outcome {
        match result {
            Ok(token) => Outcome::Token(token.lifetime().as_secs()),
            Err(Error::Transport(e)) => Outcome::Transport(e.kind()),
            Err(Error::Http(e)) => Outcome::Http(e.status),
            Err(Error::OAuth(e)) => Outcome::OAuth(e.code.as_str().to_owned(), e.status),
            Err(Error::InvalidResponse { .. }) => Outcome::InvalidResponse,
            Err(other) => Outcome::Unexpected(format!("{other:?}")),
        }
    }

    /// Whether core's retry rule (for grants that consume nothing) retries this failure: connect,
    /// timeout and broken-connection errors, and HTTP 408, 429 and 5xx.
    fn retryable(&self) -> bool {
        let status = |s: u16| s == 408 || s == 429 || (500..600).contains(&s);
        match self {
            Outcome::Transport(k) => {
                matches!(k, TransportErrorKind::Connect | TransportErrorKind::Timeout | TransportErrorKind::Io)
            }
            Outcome::Http(s) => status(*s),
            Outcome::OAuth(code, s) => code == "server_error" || code == "temporarily_unavailable" || status(*s),
            _ => false,
        }
    }

    fn render(&self) -> String {
        match self {
            Outcome::Token(secs) => format!("token, {secs} s"),
            Outcome::Transport(k) => format!("`Transport({k:?})`"),
            Outcome::Http(s) => format!("`Http` {s}"),
            Outcome::OAuth(code, s) => format!("`OAuth` `{code}` ({s})"),
            Outcome::InvalidResponse => "`InvalidResponse`".to_owned(),
            Outcome::Unexpected(e) => format!("UNEXPECTED {e}"),
        }
    }
}

/// What one attempt meeting `fault` yields for `target`.
fn single(target: Target, fault: &Fault) -> Outcome {
    match fault {
        Fault::Status(s @ 502..=504) => Outcome::Http(*s),
        // Every dialect's own error body, Doorkeeper's Rails status page `{"status":500,"error":
        // "Internal Server Error"}` included, is an HTTP error (not an OAuth one).
        Fault::Status(500) => Outcome::Http(500),
        Fault::TooManyRequests { .. } => Outcome::Http(429),
        Fault::Latency(_) => Outcome::Transport(TransportErrorKind::Timeout),
        Fault::ResetConnection | Fault::TruncatedBody => Outcome::Transport(TransportErrorKind::Io),
        Fault::MalformedJson | Fault::MissingAccessToken => Outcome::InvalidResponse,
        Fault::HtmlErrorPage(s) => Outcome::Http(*s),
        Fault::ErrorIn200 => Outcome::OAuth("invalid_request".to_owned(), 200),
        Fault::OversizedBody(_) => Outcome::Transport(TransportErrorKind::BodyTooLarge),
        Fault::RedirectCrossHost => Outcome::Transport(TransportErrorKind::RedirectRefused),
        Fault::ExpiresIn(ExpiresInFault::Missing) => Outcome::Token(target.fallback()),
        Fault::ExpiresIn(ExpiresInFault::Zero | ExpiresInFault::Negative) => Outcome::InvalidResponse,
        Fault::ExpiresIn(ExpiresInFault::Huge) => Outcome::Token(MAX_LIFETIME),
        Fault::ExpiresIn(ExpiresInFault::String) | Fault::LowercaseTokenType => Outcome::Token(target.lifetime()),
        other => Outcome::Unexpected(format!("no expectation for {other:?}")),
    }
}

/// The expected outcome and request count of a case. `retried` says whether core retries this
/// failure for the target's grant (see [`core_retries`]).
fn expected(target: Target, fault: &Fault, persistent: bool, retried: bool) -> (Outcome, usize) {
    let one = single(target, fault);
    if !(one.retryable() && retried) {
        return (one, 1);
    }
    if persistent { (one, BUDGET) } else { (Outcome::Token(target.lifetime()), 2) }
}

// ------------------------------------------------------------------ core's retry rule, probed

/// A transport that fails the first request as told, then answers a token.
#[derive(Debug)]
struct Scripted {
    first: Mutex<Option<Result<HttpResponse, TransportError>>>,
    calls: AtomicUsize,
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, _request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(first) = self.first.lock().unwrap().take() {
            return first;
        }
        Ok(HttpResponse::json(200, r#"{"access_token":"probe-token","token_type":"Bearer","expires_in":300}"#))
    }
}

/// Whether core's `TokenClient` retries `failure` when sending `grant`. Grants that consume a code or
/// a refresh token may be retried only where the request was surely not processed; this asks core
/// instead of hard-coding its rule, so the matrix states (and checks) what core does today.
fn core_retries(grant: &Grant, failure: &Outcome) -> bool {
    let first = match failure {
        Outcome::Transport(kind) => Err(TransportError::new(*kind, "probe")),
        Outcome::Http(status) | Outcome::OAuth(_, status) => Ok(HttpResponse::json(*status, "{}")),
        _ => return false,
    };
    let transport = Arc::new(Scripted { first: Mutex::new(Some(first)), calls: AtomicUsize::new(0) });
    let client = TokenClient::builder(
        "probe",
        TokenEndpoint::new("http://127.0.0.1:9/token".parse().unwrap()),
        ClientCredentials::new("probe-id", "probe-secret"),
    )
    .transport(transport.clone())
    .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)).jitter(false))
    .build()
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ = runtime.block_on(client.request_token(grant, &Scopes::empty()));
    transport.calls.load(Ordering::SeqCst) == 2
}

// ------------------------------------------------------------------ secrets to look for

/// Every form in which a client's secret could leak: raw, form-encoded, percent-encoded, and the
/// two Basic header encodings.
fn secret_forms(client: &DemoClient) -> Vec<String> {
    let secret = client.client_secret.as_str();
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let b64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    vec![
        secret.to_owned(),
        form.clone(),
        percent_encode(secret),
        b64(format!("{}:{secret}", client.client_id)),
        b64(format!("{}:{form}", client.client_id)),
    ]
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Fails if any secret appears in `text`.
fn assert_no_secret(what: &str, text: &str, secrets: &[String]) -> Result<(), String> {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        if text.contains(secret.as_str()) {
            return Err(format!("{what} contains a secret or token ({} chars)", secret.len()));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ running a case

/// What one case observed.
#[derive(Debug)]
struct Observed {
    outcome: Outcome,
    requests: usize,
    /// The time between one request to the target's path and the next, as the transport sent them.
    gaps: Vec<Duration>,
    /// Problems found besides the outcome (leaks, an empty log).
    problems: Vec<String>,
}

/// The real transport, noting when each request to the target's path is sent, so that the matrix
/// checks every gap after a 429 against its `Retry-After`, not only the total time.
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn Transport>,
    path: &'static str,
    sent: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl Transport for Timed {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        if request.url().path().ends_with(self.path) {
            self.sent.lock().unwrap().push(Instant::now());
        }
        self.inner.send(request).await
    }
}

fn transport() -> Arc<dyn Transport> {
    Arc::new(ReqwestTransport::builder().timeout(TIMEOUT).build().unwrap())
}

fn retry() -> RetryPolicy {
    RetryPolicy::default().initial_backoff(Duration::from_millis(10))
}

/// Builds the target's provider against `sandbox`, prepares it (a WhiteBIT authorization), injects
/// `fault` `times` times and makes the one fetch the target is about. `sent` receives the instant of
/// every request to the target's path.
async fn fetch_with_fault(
    sandbox: &Sandbox,
    target: Target,
    fault: Fault,
    times: usize,
    secrets: &mut Vec<String>,
    sent: &Arc<Mutex<Vec<Instant>>>,
) -> (Result<AccessToken, Error>, Duration) {
    let d = target.dialect();
    let timed =
        || -> Arc<dyn Transport> { Arc::new(Timed { inner: transport(), path: target.path(), sent: sent.clone() }) };
    let client = sandbox.special_credentials(d);
    secrets.extend(secret_forms(&client));
    let fetch = |provider: SharedTokenProvider, fault: Fault| async move {
        sandbox.inject(d, target.path(), fault, times);
        let started = Instant::now();
        let result = provider.token().await;
        (result, started.elapsed())
    };
    // Every provider's builder takes the same client, transport and retry policy.
    macro_rules! with_client {
        ($builder:expr, $client:expr) => {
            $builder
                .client_id($client.client_id)
                .client_secret($client.client_secret)
                .transport(timed())
                .retry(retry())
                .build()
                .unwrap()
        };
    }
    match target {
        Target::Probit => {
            let provider = with_client!(ProbitBuilder::new().token_url(sandbox.token_url(d)), client);
            fetch(provider.shared(), fault).await
        }
        Target::Django => {
            let provider = with_client!(DjangoBuilder::new().base_url(sandbox.base_url(d)), client);
            fetch(provider.shared(), fault).await
        }
        Target::Ruby => {
            let provider = with_client!(RubyStyleBuilder::new().base_url(sandbox.base_url(d)), client);
            fetch(provider.shared(), fault).await
        }
        Target::WhitebitExchange | Target::WhitebitRefresh => {
            let provider = with_client!(WhitebitBuilder::new().base_url(sandbox.base_url(d)), client);
            // The sandbox approves at once: the authorization page redirects to the callback.
            let pending = provider.authorize();
            let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let answer = browser.get(pending.url().as_str()).send().await.unwrap();
            assert_eq!(answer.status(), 302, "auto-approved consent redirects");
            let callback = answer.headers()["location"].to_str().unwrap().to_owned();
            let code = url::Url::parse(&callback)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            secrets.push(code);
            if target == Target::WhitebitExchange {
                sandbox.inject(d, target.path(), fault, times);
                let started = Instant::now();
                let result = provider.complete(&pending, &callback).await;
                return (result, started.elapsed());
            }
            let first = provider.complete(&pending, &callback).await.unwrap();
            secrets.push(first.secret().expose_secret().to_owned());
            secrets.push(first.refresh_token().unwrap().secret().expose_secret().to_owned());
            // Due now: the next call refreshes with the stored refresh token.
            provider.cache().clear();
            fetch(provider.shared(), fault).await
        }
    }
}

/// Runs one case on the current thread: own sandbox, own runtime, own log capture.
fn run_case(target: Target, fault: Fault, times: usize) -> Observed {
    let (log, guard) = LogCapture::install();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut secrets = Vec::new();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (result, requests) = runtime.block_on(async {
        let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
        let d = target.dialect();
        let before = sandbox.request_count(d, target.path());
        let (result, _elapsed) = fetch_with_fault(&sandbox, target, fault, times, &mut secrets, &sent).await;
        let requests = sandbox.request_count(d, target.path()) - before;
        (result, requests)
    });
    drop(runtime);
    drop(guard);
    if let Ok(token) = &result {
        secrets.push(token.secret().expose_secret().to_owned());
        if let Some(refresh) = token.refresh_token() {
            secrets.push(refresh.secret().expose_secret().to_owned());
        }
    }
    // The stand-in token of the truncated body (whatever half of it was sent).
    secrets.push("truncated-token-never".to_owned());
    let log = log.text();
    let mut problems = Vec::new();
    if let Err(e) = &result {
        let text = format!("{e} | {e:?}");
        problems.extend(assert_no_secret("the error", &text, &secrets).err());
        if !log.contains("token request failed") {
            problems.push("the failure was not logged".to_owned());
        }
    }
    problems.extend(assert_no_secret("the TRACE log", &log, &secrets).err());
    if !log.contains("tokensmith.token_request") {
        problems.push("the log capture saw no token request span".to_owned());
    }
    let sent = sent.lock().unwrap().clone();
    let gaps = sent.windows(2).map(|w| w[1] - w[0]).collect();
    Observed { outcome: Outcome::of(&result), requests, gaps, problems }
}

/// Runs every fault against `target`, twice (persistent and once), checks each case and prints the
/// matrix row by row.
fn run_matrix(target: Target) {
    let mut cases = Vec::new();
    for (label, fault) in faults() {
        cases.push((label, fault.clone(), true));
        cases.push((label, fault, false));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<HashMap<usize, Result<Observed, String>>> = Mutex::new(HashMap::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((_, fault, persistent)) = cases.get(i) else { break };
                    let times = if *persistent { 10 } else { 1 };
                    let fault = fault.clone();
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run_case(target, fault, times)))
                        .map_err(|panic| {
                            panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_default()
                        });
                    results.lock().unwrap().insert(i, outcome);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    let mut probes: HashMap<Outcome, bool> = HashMap::new();
    let mut failures = Vec::new();
    let mut table = format!(
        "\n### {}\n\n| fault | every attempt faulted | requests | first attempt only | requests |\n| --- | --- | --- | --- | --- |\n",
        target.name()
    );
    for pair in cases.chunks(2).enumerate() {
        let (row, chunk) = pair;
        let label = chunk[0].0;
        let fault = &chunk[0].1;
        let one = single(target, fault);
        let retried =
            one.retryable() && *probes.entry(one.clone()).or_insert_with(|| core_retries(&target.grant(), &one));
        let mut cells = Vec::new();
        for (k, persistent) in [(0, true), (1, false)] {
            let i = row * 2 + k;
            let mode = if persistent { "persistent" } else { "once" };
            let (want, want_requests) = expected(target, fault, persistent, retried);
            match results.remove(&i).unwrap() {
                Err(panic) => failures.push(format!("{label} ({mode}): PANICKED: {panic}")),
                Ok(seen) => {
                    if seen.outcome != want {
                        failures.push(format!("{label} ({mode}): outcome {:?}, expected {want:?}", seen.outcome));
                    }
                    if seen.requests != want_requests {
                        failures
                            .push(format!("{label} ({mode}): {} requests, expected {want_requests}", seen.requests));
                    }
                    if seen.requests > BUDGET {
                        failures.push(format!("{label} ({mode}): {} requests exceed the budget", seen.requests));
                    }
                    // `Retry-After: 1` is honoured between attempts: every gap after a 429 is at least 1 s
                    // (the 429 is answered at once, so the wait is the client's). Every request but the
                    // last was answered with the fault.
                    if matches!(fault, Fault::TooManyRequests { .. }) {
                        if seen.gaps.len() + 1 != seen.requests {
                            failures.push(format!(
                                "{label} ({mode}): the transport sent {} requests, the sandbox saw {}",
                                seen.gaps.len() + 1,
                                seen.requests
                            ));
                        }
                        for (n, gap) in seen.gaps.iter().enumerate() {
                            if *gap < Duration::from_secs(1) {
                                failures.push(format!(
                                    "{label} ({mode}): retry {} sent {gap:?} after a 429 with Retry-After: 1",
                                    n + 1
                                ));
                            }
                        }
                    }
                    for p in &seen.problems {
                        failures.push(format!("{label} ({mode}): {p}"));
                    }
                    cells.push((seen.outcome.render(), seen.requests));
                }
            }
        }
        if let [(a, ra), (b, rb)] = cells.as_slice() {
            table.push_str(&format!("| {label} | {a} | {ra} | {b} | {rb} |\n"));
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{} of the {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn fault_matrix_probit() {
    run_matrix(Target::Probit);
}

#[test]
fn fault_matrix_generic_django() {
    run_matrix(Target::Django);
}

#[test]
fn fault_matrix_ruby_style() {
    run_matrix(Target::Ruby);
}

#[test]
fn fault_matrix_whitebit_code_exchange() {
    run_matrix(Target::WhitebitExchange);
}

#[test]
fn fault_matrix_whitebit_refresh() {
    run_matrix(Target::WhitebitRefresh);
}

// ------------------------------------------------------------------ servers that do not answer

/// A token endpoint on 127.0.0.1 that accepts connections, reads what it is sent, and answers a
/// token after `delay` (or never), counting connections.
async fn slow_server(delay: Option<Duration>) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                match delay {
                    None => std::future::pending::<()>().await,
                    Some(delay) => {
                        tokio::time::sleep(delay).await;
                        let body =
                            r#"{"access_token":"slow-server-token-0123456789","token_type":"Bearer","expires_in":900}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                }
            });
        }
    });
    (url, connections)
}

const SLOW_SECRET: &str = "slow-server-secret: %+/&= 42";

fn probit_at(url: &str, transport: Arc<dyn Transport>, retry: RetryPolicy) -> SharedTokenProvider {
    ProbitBuilder::new()
        .client_id("slow-client")
        .client_secret(SLOW_SECRET)
        .token_url(url)
        .transport(transport)
        .retry(retry)
        .build()
        .unwrap()
        .shared()
}

fn slow_secrets() -> Vec<String> {
    let client = DemoClient { client_id: "slow-client".to_owned(), client_secret: SLOW_SECRET.to_owned() };
    let mut secrets = secret_forms(&client);
    secrets.push("slow-server-token-0123456789".to_owned());
    secrets
}

/// Accepts, never answers: every attempt times out (per-request timeout 300 ms), three attempts, one
/// connection each, then a typed timeout.
#[tokio::test]
async fn server_that_never_answers() {
    let (log, _guard) = LogCapture::install();
    let (url, connections) = slow_server(None).await;
    let transport = Arc::new(ReqwestTransport::builder().timeout(Duration::from_millis(300)).build().unwrap());
    let provider = probit_at(&url, transport, retry());
    let started = Instant::now();
    let error = provider.token().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&error, Error::Transport(e) if e.kind() == TransportErrorKind::Timeout), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(connections.load(Ordering::SeqCst), BUDGET, "one connection per attempt, within the budget");
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    let log = log.text();
    assert_eq!(log.matches("token request failed; retrying").count(), BUDGET - 1, "{log}");
    assert_no_secret("the error", &format!("{error} | {error:?}"), &slow_secrets()).unwrap();
    assert_no_secret("the TRACE log", &log, &slow_secrets()).unwrap();
}

/// Answers after 3 s, but the overall deadline is 800 ms (the per-request timeout keeps its 30 s
/// default): one attempt, cut off by the deadline, no retry.
#[tokio::test]
async fn server_slower_than_the_overall_deadline() {
    let (log, _guard) = LogCapture::install();
    let (url, connections) = slow_server(Some(Duration::from_secs(3))).await;
    let transport = Arc::new(ReqwestTransport::new().unwrap());
    let provider = probit_at(&url, transport, retry().deadline(Duration::from_millis(800)));
    let started = Instant::now();
    let error = provider.token().await.unwrap_err();
    let elapsed = started.elapsed();
    match &error {
        Error::Transport(e) if e.kind() == TransportErrorKind::Timeout => {
            assert!(e.message().contains("overall deadline"), "{e}");
        }
        other => panic!("expected the overall deadline's timeout, got {other:?}"),
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "no time is left for a retry");
    assert!(elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let log = log.text();
    assert_no_secret("the error", &format!("{error} | {error:?}"), &slow_secrets()).unwrap();
    assert_no_secret("the TRACE log", &log, &slow_secrets()).unwrap();
}
