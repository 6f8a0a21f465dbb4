//! The Django OAuth Toolkit (DOT) server the conformance tests run against, and helpers to drive it.
//!
//! The server is the small Django project in `tests/dot/` (Django and django-oauth-toolkit from PyPI,
//! pinned in `tests/dot/requirements.txt`), run by `tests/dot/serve.py` with the Python of the venv
//! that `tests/dot/setup.sh` creates. This module spawns it on a free port of 127.0.0.1 and reads the
//! port from its first line of output. It never outlives the test process: its standard input is a
//! pipe from this process and it exits when that pipe closes (when a [`DotServer`] is dropped, or
//! when the test process ends in any way), and a dropped [`DotServer`] also kills it if it has not
//! exited within a few seconds.
//!
//! `TOKENSMITH_SKIP_DOT=1` skips every test that needs the server (each prints that it was
//! skipped); otherwise a missing venv or a server that does not start fails the test.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use rand::Rng as _;
use sha2::Digest as _;
use tokensmith_tests::python_server::{PythonServer, ServerSpec};
use tokensmith_tests::repo_root;

/// Set (to anything but `0` or nothing) to skip the DOT conformance tests.
pub const SKIP_VAR: &str = "TOKENSMITH_SKIP_DOT";
/// Overrides the Python interpreter (default: the venv `tests/dot/setup.sh` creates).
pub const PYTHON_VAR: &str = "TOKENSMITH_DOT_PYTHON";
/// Overrides the venv directory (default `target/dot-venv`), as in `tests/dot/setup.sh`.
pub const VENV_VAR: &str = "TOKENSMITH_DOT_VENV";

// The fixed user and applications of tests/dot/conformance/seed.py.
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "alice-password-for-tests";
pub const CC_CLIENT_ID: &str = "tokensmith-cc";
pub const CC_CLIENT_SECRET: &str = "tokensmith-cc-secret";
pub const SPECIAL_CLIENT_ID: &str = "tokensmith-special";
/// Holds `: % + / & =` and spaces, and `%2B`, so a client that skips or doubles the form encoding of
/// RFC 6749 §2.3.1 is caught (DOT `unquote_plus`es both halves of the Basic credentials).
pub const SPECIAL_CLIENT_SECRET: &str = "s3cr3t: %2B+/&=a b";
pub const CODE_CLIENT_ID: &str = "tokensmith-code";
pub const CODE_CLIENT_SECRET: &str = "tokensmith-code-secret";
pub const CODE_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
#[allow(dead_code)]
pub const DEVICE_CLIENT_ID: &str = "tokensmith-device";
#[allow(dead_code)]
pub const DEVICE_CLIENT_SECRET: &str = "tokensmith-device-secret";

/// The access-token lifetime of the shared server (DOT's `ACCESS_TOKEN_EXPIRE_SECONDS`).
pub const SHARED_LIFETIME: u64 = 3600;

/// Whether the DOT tests are to be skipped; prints so (past the test harness's output capture).
pub fn skipped() -> bool {
    tokensmith_tests::skipped(SKIP_VAR)
}

/// The server shared by the tests of this binary (lifetime [`SHARED_LIFETIME`]), or `None` when the
/// tests are skipped. Fails the test when it cannot be started.
pub fn shared() -> Option<&'static DotServer> {
    static SHARED: OnceLock<Result<DotServer, String>> = OnceLock::new();
    if skipped() {
        return None;
    }
    match SHARED.get_or_init(|| DotServer::start(SHARED_LIFETIME, "shared")) {
        Ok(server) => Some(server),
        Err(message) => panic!("{message}"),
    }
}

/// A server of its own with access tokens that live `lifetime_secs`, or `None` when skipped.
pub fn dedicated(lifetime_secs: u64, label: &str) -> Option<DotServer> {
    if skipped() {
        return None;
    }
    match DotServer::start(lifetime_secs, label) {
        Ok(server) => Some(server),
        Err(message) => panic!("{message}"),
    }
}

/// A server of its own started with more `serve.py` arguments (say `--issuer URL`), or `None` when
/// skipped.
#[allow(dead_code)]
pub fn dedicated_with(lifetime_secs: u64, label: &str, args: &[&str]) -> Option<DotServer> {
    if skipped() {
        return None;
    }
    match DotServer::start_with(lifetime_secs, label, args) {
        Ok(server) => Some(server),
        Err(message) => panic!("{message}"),
    }
}

/// A running conformance server.
#[derive(Debug)]
pub struct DotServer {
    server: PythonServer,
}

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = std::env::var_os(VENV_VAR)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/dot-venv"));
    venv.join("bin/python")
}

impl DotServer {
    /// Starts a server whose access tokens live `lifetime_secs`; `label` names its log file
    /// (`target/tmp/dot-<label>.log`, the server's stderr).
    pub fn start(lifetime_secs: u64, label: &str) -> Result<DotServer, String> {
        DotServer::start_with(lifetime_secs, label, &[])
    }

    /// [`DotServer::start`] with more `serve.py` arguments.
    pub fn start_with(lifetime_secs: u64, label: &str, args: &[&str]) -> Result<DotServer, String> {
        let lifetime = lifetime_secs.to_string();
        let server = PythonServer::spawn(ServerSpec {
            name: "the Django OAuth Toolkit server",
            python: python(),
            missing_hint: format!(
                "Run tests/dot/setup.sh first (or point {PYTHON_VAR} at a Python with tests/dot/requirements.txt \
                 installed), or set {SKIP_VAR}=1 to skip the DOT conformance tests"
            ),
            script: repo_root().join("tests/dot/serve.py"),
            args: ["--lifetime", lifetime.as_str()].iter().chain(args).map(|a| (*a).to_owned()).collect(),
            log: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dot-{label}.log")),
            banner: "tokensmith-dot listening on ",
            timeout: Duration::from_secs(90),
        })?;
        Ok(DotServer { server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// `{base}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// DOT's token endpoint, `{base}/o/token/`.
    pub fn token_url(&self) -> String {
        self.url("/o/token/")
    }

    /// The requests the server has seen, by `METHOD /path/`.
    pub async fn stats(&self) -> serde_json::Value {
        let response = reqwest::get(self.url("/conformance/stats/")).await.expect("the stats request failed");
        let text = response.text().await.expect("the stats response");
        serde_json::from_str(&text).expect("the stats are JSON")
    }

    /// How many token requests (`POST /o/token/`) the server has seen.
    pub async fn token_requests(&self) -> u64 {
        self.stats().await.get("POST /o/token/").and_then(serde_json::Value::as_u64).unwrap_or(0)
    }
}

/// A PKCE pair (RFC 7636): a random verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        let mut rng = rand::rng();
        let verifier: String = (0..64).map(|_| char::from(UNRESERVED[rng.random_range(0..UNRESERVED.len())])).collect();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier));
        Pkce { verifier, challenge }
    }
}

/// The `(name, value)` of every `<input type="hidden">` in `html`, entities decoded.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut inputs = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<input") {
        let tag_end = rest[start..].find('>').map_or(rest.len(), |end| start + end);
        let tag = &rest[start..tag_end];
        rest = &rest[tag_end..];
        if attribute(tag, "type").as_deref() != Some("hidden") {
            continue;
        }
        if let Some(name) = attribute(tag, "name") {
            inputs.push((name, attribute(tag, "value").unwrap_or_default()));
        }
    }
    inputs
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// What the consent page's redirect carried back.
#[derive(Debug)]
pub struct Callback {
    /// The authorization code.
    pub code: String,
    /// The `state` echoed back.
    pub state: String,
}

/// A cookie-keeping HTTP client logged in to DOT as the test user (a real Django session, CSRF token
/// included), following no redirects.
pub async fn login(server: &DotServer) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client");

    // Log in.
    let login_page = browser.get(server.url("/accounts/login/")).send().await.expect("GET /accounts/login/");
    assert_eq!(login_page.status(), 200, "the login page");
    let html = login_page.text().await.expect("the login page's body");
    let csrf = hidden_inputs(&html)
        .into_iter()
        .find(|(name, _)| name == "csrfmiddlewaretoken")
        .map(|(_, value)| value)
        .expect("the login form has a CSRF token");
    let login = browser
        .post(server.url("/accounts/login/"))
        .form(&[("csrfmiddlewaretoken", csrf.as_str()), ("username", USERNAME), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("POST /accounts/login/");
    assert_eq!(login.status(), 302, "logging in redirects (a 200 is the form again: wrong password or CSRF)");
    browser
}

/// Drives DOT's `/o/authorize/` headlessly: logs the test user in (a real Django session, CSRF
/// token included), opens the consent page for the authorization-code application with PKCE,
/// checks it, approves it and returns the code from the redirect to [`CODE_REDIRECT_URI`].
pub async fn authorize(server: &DotServer, scope: &str, state: &str, pkce: &Pkce) -> Callback {
    let browser = login(server).await;

    // The consent page.
    let mut authorize_url = url::Url::parse(&server.url("/o/authorize/")).expect("the authorize URL");
    authorize_url
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CODE_CLIENT_ID)
        .append_pair("redirect_uri", CODE_REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let page = browser.get(authorize_url.as_str()).send().await.expect("GET /o/authorize/");
    assert_eq!(page.status(), 200, "the consent page (a 302 to the login page means the session was lost)");
    let html = page.text().await.expect("the consent page's body");
    assert!(html.contains("Authorize tokensmith-code?"), "DOT's consent page for our application:\n{html}");
    let form = hidden_inputs(&html);
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(field("code_challenge").as_deref(), Some(pkce.challenge.as_str()), "the form carries the challenge");
    assert_eq!(field("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(field("scope").as_deref(), Some(scope));

    // Approve: the form as the page has it, plus the Authorize button.
    let mut fields = form.clone();
    fields.push(("allow".to_owned(), "Authorize".to_owned()));
    let approved = browser.post(server.url("/o/authorize/")).form(&fields).send().await.expect("POST /o/authorize/");
    assert_eq!(approved.status(), 302, "approving redirects to the client");
    let location = approved
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned();
    let location = url::Url::parse(&location).expect("an absolute redirect");
    assert_eq!(&location[..url::Position::AfterPath], CODE_REDIRECT_URI, "redirected to the registered redirect URI");
    let param = |name: &str| location.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("error"), None, "the redirect carries no error");
    Callback {
        code: param("code").expect("the redirect carries a code"),
        state: param("state").expect("the redirect carries the state"),
    }
}
