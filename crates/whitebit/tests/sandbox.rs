//! End-to-end tests against the sandbox's WhiteBIT dialect, driving its consent page with an HTTP
//! client as a user's browser would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, Error, RetryPolicy, TokenProvider, TokenStore,
    cache::RefreshPolicy,
    clock::Clock,
    error::{CallbackError, OAuthErrorCode},
    store::FileStore,
};
use tokensmith_sandbox::{Dialect, Sandbox};
#[cfg(feature = "loopback")]
use tokensmith_whitebit::LoopbackListener;
use tokensmith_whitebit::{Scope, WhitebitBuilder, WhitebitProvider};

const D: Dialect = Dialect::Whitebit;

// ---------------------------------------------------------------- helpers

/// A user's browser: opens the consent page, submits its form, and reports where it was redirected.
struct Browser {
    http: reqwest::Client,
    origin: String,
}

impl Browser {
    fn new(sandbox: &Sandbox) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, origin: format!("http://{}", sandbox.addr()) }
    }

    /// Opens `url`, clicks `decision` (`allow` or `deny`) on the consent page and returns the
    /// redirect's `Location`: the callback URL.
    async fn consent(&self, url: &url::Url, decision: &str) -> String {
        let page = self.http.get(url.as_str()).send().await.unwrap();
        assert_eq!(page.status(), 200, "consent page");
        let html = page.text().await.unwrap();
        let form_start = html.find("<form").expect("a form on the consent page");
        let form_tag = &html[form_start..form_start + html[form_start..].find('>').unwrap()];
        let action = attr(form_tag, "action").expect("a form action");
        assert_eq!(attr(form_tag, "method").as_deref(), Some("post"));
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for input in html.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap()];
            if attr(tag, "type").as_deref() == Some("hidden") {
                body.append_pair(&attr(tag, "name").unwrap(), &attr(tag, "value").unwrap_or_default());
            }
        }
        assert!(html.contains(&format!("name=\"decision\" value=\"{decision}\"")), "a {decision} button");
        body.append_pair("decision", decision);
        let answer = self
            .http
            .post(format!("{}{action}", self.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302, "the consent redirects back");
        answer.headers()["location"].to_str().unwrap().to_owned()
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// A clock tests move by hand, so that the cache's timing can be exercised against a real server
/// without sleeping (paused tokio time does not mix with real sockets).
#[derive(Debug)]
struct ManualClock {
    origin: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(ManualClock { origin: Instant::now(), offset: Mutex::new(Duration::ZERO) })
    }

    fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed() + self.offset()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let n: u64 = rand::random();
        let dir = std::env::temp_dir().join(format!("tokensmith-whitebit-{n:016x}"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn builder(sandbox: &Sandbox) -> WhitebitBuilder {
    let client = sandbox.credentials(D);
    WhitebitProvider::builder()
        .base_url(sandbox.base_url(D))
        .client_id(client.client_id)
        .client_secret(client.client_secret)
}

async fn sandbox() -> Sandbox {
    Sandbox::start().await.unwrap()
}

/// Runs the standard flow to the end: authorize, consent "allow", complete.
async fn authorized(sandbox: &Sandbox, provider: &WhitebitProvider) -> AccessToken {
    let pending = provider.authorize();
    let callback = Browser::new(sandbox).consent(pending.url(), "allow").await;
    provider.complete(&pending, &callback).await.unwrap()
}

fn refresh_token_of(token: &AccessToken) -> String {
    token.refresh_token().expect("a refresh token").secret().expose_secret().to_owned()
}

/// Sends a refresh request by hand, as another client holding `refresh_token` would.
async fn raw_refresh(sandbox: &Sandbox, refresh_token: &str) -> (u16, serde_json::Value) {
    let client = sandbox.credentials(D);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.client_id)
        .append_pair("client_secret", &client.client_secret)
        .append_pair("token", refresh_token)
        .finish();
    let response = reqwest::Client::new()
        .post(sandbox.refresh_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
}

async fn balance_status(sandbox: &Sandbox, token: &AccessToken) -> u16 {
    reqwest::Client::new()
        .get(sandbox.protected_url(D))
        .bearer_auth(token.secret().expose_secret())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn callback_error(result: tokensmith_core::Result<AccessToken>) -> CallbackError {
    match result {
        Err(Error::Callback(e)) => e,
        other => panic!("expected a callback error, got {other:?}"),
    }
}

fn assert_reauthorize(result: tokensmith_core::Result<AccessToken>) {
    match result {
        Err(e @ Error::ReauthorizationRequired { .. }) => {
            assert!(e.to_string().contains("run the authorization flow again"), "{e}");
        }
        other => panic!("expected ReauthorizationRequired, got {other:?}"),
    }
}

// ---------------------------------------------------------------- flows

#[tokio::test]
async fn full_flow() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    let pending = provider.authorize();
    assert!(
        pending
            .url()
            .as_str()
            .starts_with(&format!("{}?clientId=whitebit-demo-client&state=", sandbox.authorize_url()))
    );

    let callback = Browser::new(&sandbox).consent(pending.url(), "allow").await;
    assert!(callback.starts_with("http://127.0.0.1/callback?code="), "{callback}");
    let token = provider.complete(&pending, &callback).await.unwrap();

    assert_eq!(token.lifetime(), Duration::from_secs(300));
    assert!(token.refresh_token().is_some());
    assert_eq!(Scope::from_scopes(token.scopes()), [Scope::General, Scope::UsersRead]);
    assert_eq!(balance_status(&sandbox, &token).await, 200);

    // The exchange as WhiteBIT documents it: a form with client_id, client_secret and code only.
    let exchange = sandbox.requests(D).into_iter().find(|r| r.path == "/oauth2/token").unwrap();
    assert_eq!(exchange.body, "code=[redacted]&client_id=whitebit-demo-client&client_secret=[redacted]");

    // The provider hands out the exchanged token from its cache.
    let served = provider.token().await.unwrap();
    assert!(served.same_token(&token));
    assert!(provider.cached_token().unwrap().same_token(&token));
    assert_eq!(sandbox.request_count(D, "/oauth2/token"), 1);
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 0);

    // A rejected token is refreshed with the refresh token, at the refresh path with `token=`.
    provider.invalidate(&served);
    let refreshed = provider.token().await.unwrap();
    assert!(!refreshed.same_token(&token));
    assert_eq!(balance_status(&sandbox, &refreshed).await, 200);
    let refresh = sandbox.requests(D).into_iter().find(|r| r.path == "/oauth2/refresh_token").unwrap();
    assert_eq!(refresh.body, "token=[redacted]&client_id=whitebit-demo-client&client_secret=[redacted]");
    assert_eq!(
        refresh.fingerprint_of("token"),
        Some(tokensmith_sandbox::fingerprint(&refresh_token_of(&token)).as_str())
    );
}

#[cfg(feature = "loopback")]
#[tokio::test]
async fn pkce_flow_through_the_loopback_listener() {
    let sandbox = sandbox().await;
    let listener = LoopbackListener::bind(0).unwrap();
    let provider = builder(&sandbox).redirect_uri(listener.redirect_uri()).build().unwrap();
    let pending = provider.authorize_pkce();
    let url = pending.url().as_str().to_owned();
    assert!(url.contains("code_challenge_method=S256") && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"));

    let waiting = tokio::spawn(listener.wait_for(&pending, Duration::from_secs(10)));
    let location = Browser::new(&sandbox).consent(pending.url(), "allow").await;
    assert!(location.starts_with(&provider.redirect_uri().unwrap().to_string()), "{location}");
    // The browser follows the redirect to the listener and gets the "close this tab" page.
    let page = reqwest::get(&location).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You can close this tab"));
    let callback = waiting.await.unwrap().unwrap();

    let token = provider.complete(&pending, &callback).await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(4 * 3600));
    assert!(token.refresh_token().is_none());
    assert!(token.scopes().contains(Scope::ApikeysCreate.as_str()));
    assert_eq!(balance_status(&sandbox, &token).await, 200);
    let exchange = sandbox.requests(D).into_iter().find(|r| r.path == "/oauth2/token").unwrap();
    assert_eq!(
        exchange.body,
        "code=[redacted]&code_verifier=[redacted]&client_id=whitebit-demo-client&client_secret=[redacted]"
    );

    // No refresh token: once the token is gone, the user must authorize again.
    assert!(provider.token().await.unwrap().same_token(&token));
    provider.invalidate(&token);
    assert_reauthorize(provider.token().await);
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_with_100_concurrent_callers_sends_each_refresh_token_once() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    let first = authorized(&sandbox, &provider).await;
    let first_refresh = refresh_token_of(&first);

    provider.invalidate(&first);
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 1, "one refresh for 100 callers");
    let second = tokens[0].clone();
    assert!(tokens.iter().all(|t| t.same_token(&second)));
    assert!(!second.same_token(&first));
    let second_refresh = refresh_token_of(&second);
    assert_ne!(second_refresh, first_refresh, "the refresh token rotated");

    // The old refresh token is dead (asked after WhiteBIT's one-refresh-per-second limit).
    sandbox.advance_clock(Duration::from_secs(2));
    let (status, body) = raw_refresh(&sandbox, &first_refresh).await;
    assert_eq!(status, 400);
    assert_eq!(body, serde_json::json!({"data": {"token": ["Invalid token."]}}));

    // The next refresh uses the rotated token; the provider never sends the old one again.
    sandbox.advance_clock(Duration::from_secs(2));
    provider.invalidate(&second);
    let third = provider.token().await.unwrap();
    assert!(!third.same_token(&second));
    assert_eq!(balance_status(&sandbox, &third).await, 200);

    let sent: Vec<String> = sandbox
        .requests(D)
        .iter()
        .filter(|r| r.path == "/oauth2/refresh_token")
        .map(|r| r.fingerprint_of("token").unwrap().to_owned())
        .collect();
    let by_provider = &sent[..1].iter().chain(&sent[2..]).cloned().collect::<Vec<_>>();
    let unique: HashSet<&String> = by_provider.iter().collect();
    assert_eq!(by_provider.len(), 2);
    assert_eq!(unique.len(), by_provider.len(), "no refresh token sent twice by the provider");
    assert_eq!(sent[2], tokensmith_sandbox::fingerprint(&second_refresh));
}

#[tokio::test]
async fn refresh_token_expiry_asks_to_authorize_again() {
    let sandbox = sandbox().await;
    // A long back-off, so that the second call below surely falls within it.
    let policy = RefreshPolicy::default().initial_backoff(Duration::from_secs(30));
    let provider = builder(&sandbox).refresh_policy(policy).build().unwrap();
    let token = authorized(&sandbox, &provider).await;

    sandbox.advance_clock(Duration::from_secs(601));
    provider.invalidate(&token);
    assert_reauthorize(provider.token().await);
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 1);
    // Callers arriving while the cache backs off get the same typed error, without a request.
    assert_reauthorize(provider.token().await);
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 1);

    // Authorizing again fixes it.
    let again = authorized(&sandbox, &provider).await;
    assert!(provider.token().await.unwrap().same_token(&again));
}

#[tokio::test]
async fn nothing_stored_asks_to_authorize() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    assert_reauthorize(provider.token().await);
    assert!(sandbox.requests(D).is_empty(), "nothing to send without a refresh token");
}

#[tokio::test]
async fn early_refresh_before_the_access_token_expires() {
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let provider = builder(&sandbox).clock(clock.clone()).build().unwrap();
    let first = authorized(&sandbox, &provider).await;

    // 200 s into a 300 s token: still fresh, no request.
    clock.advance(Duration::from_secs(200));
    sandbox.advance_clock(Duration::from_secs(200));
    assert!(provider.token().await.unwrap().same_token(&first));
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 0);

    // 250 s: inside the refresh margin (60 s + up to 15 s of jitter), refreshed before expiry.
    clock.advance(Duration::from_secs(50));
    sandbox.advance_clock(Duration::from_secs(50));
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 1);
    assert_eq!(balance_status(&sandbox, &second).await, 200);
    // The old access token was still valid when it was replaced.
    assert_eq!(balance_status(&sandbox, &first).await, 200);
}

// ---------------------------------------------------------------- callbacks

#[tokio::test]
async fn state_mismatch_is_rejected_before_any_exchange() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    let browser = Browser::new(&sandbox);
    let pending = provider.authorize();
    let callback = browser.consent(pending.url(), "allow").await;

    let tampered = callback.replace(&format!("state={}", pending.state()), "state=forged");
    assert_ne!(tampered, callback);
    assert_eq!(callback_error(provider.complete(&pending, &tampered).await), CallbackError::StateMismatch);
    // Another authorization's callback does not fit either.
    let other = provider.authorize();
    assert_eq!(callback_error(provider.complete(&other, &callback).await), CallbackError::StateMismatch);
    assert_eq!(sandbox.request_count(D, "/oauth2/token"), 0);

    // The genuine callback still completes.
    provider.complete(&pending, &callback).await.unwrap();
}

#[tokio::test]
async fn replayed_callback_is_rejected() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    let pending = provider.authorize();
    let callback = Browser::new(&sandbox).consent(pending.url(), "allow").await;
    let token = provider.complete(&pending, &callback).await.unwrap();

    assert_eq!(callback_error(provider.complete(&pending, &callback).await), CallbackError::AlreadyUsed);
    assert_eq!(sandbox.request_count(D, "/oauth2/token"), 1, "the code was not sent twice");
    // The replay did not disturb the tokens already obtained.
    assert_eq!(balance_status(&sandbox, &token).await, 200);
    assert!(provider.token().await.unwrap().same_token(&token));
}

#[tokio::test]
async fn access_denied_is_a_typed_error() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).build().unwrap();
    let pending = provider.authorize();
    let callback = Browser::new(&sandbox).consent(pending.url(), "deny").await;
    assert!(callback.contains("error=access_denied"), "{callback}");

    let error = callback_error(provider.complete(&pending, &callback).await);
    assert!(matches!(&error, CallbackError::Denied { code: OAuthErrorCode::AccessDenied, .. }), "{error:?}");
    assert!(error.to_string().contains("denied the authorization"), "{error}");
    assert_eq!(sandbox.request_count(D, "/oauth2/token"), 0);
    assert_reauthorize(provider.token().await);
}

// ---------------------------------------------------------------- rate limit

#[tokio::test]
async fn refresh_rate_limit_429_is_retried_after_its_delay() {
    let sandbox = sandbox().await;
    let provider = builder(&sandbox).retry(RetryPolicy::default().jitter(false)).build().unwrap();
    let first = authorized(&sandbox, &provider).await;

    provider.invalidate(&first);
    let second = provider.token().await.unwrap();
    // A second refresh within the same second meets WhiteBIT's limit: 429 with Retry-After: 1.
    provider.invalidate(&second);
    let started = Instant::now();
    let third = provider.token().await.unwrap();
    let waited = started.elapsed();

    assert!(!third.same_token(&second));
    assert_eq!(balance_status(&sandbox, &third).await, 200);
    let refreshes: Vec<_> = sandbox.requests(D).into_iter().filter(|r| r.path == "/oauth2/refresh_token").collect();
    assert_eq!(refreshes.len(), 3, "refresh, rate-limited refresh, its retry");
    assert!(waited >= Duration::from_millis(900), "the retry waited for Retry-After ({waited:?})");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The rate-limited attempt did not consume the refresh token, so its retry sent the same one.
    assert_eq!(refreshes[1].fingerprint_of("token"), refreshes[2].fingerprint_of("token"));
    assert_ne!(refreshes[0].fingerprint_of("token"), refreshes[1].fingerprint_of("token"));
}

// ---------------------------------------------------------------- persistence

fn file_mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0o600
    }
}

#[tokio::test]
async fn file_store_is_owner_only_and_survives_restarts() {
    let sandbox = sandbox().await;
    let dir = TempDir::new();
    let path = dir.0.join("whitebit.json");
    let store = || -> Arc<dyn TokenStore> { Arc::new(FileStore::new(&path)) };

    // First run: authorize and exit.
    let first_run = builder(&sandbox).store(store()).build().unwrap();
    let token = authorized(&sandbox, &first_run).await;
    drop(first_run);
    assert_eq!(file_mode(&path), 0o600);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let key = tokensmith_core::store::store_key([
        "whitebit",
        &format!("{}/oauth2/token", sandbox.base_url(D)),
        "whitebit-demo-client",
        "refresh_token",
        "",
    ]);
    assert_eq!(saved[&key]["refresh_token"].as_str(), Some(refresh_token_of(&token).as_str()));

    // Second run: the stored token is served without authorizing or asking the server.
    let second_run = builder(&sandbox).store(store()).build().unwrap();
    assert!(second_run.token().await.unwrap().same_token(&token));
    assert_eq!(sandbox.request_count(D, "/oauth2/token"), 1);
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 0);
    // It refreshes with the stored refresh token and saves the rotated one before handing out.
    second_run.invalidate(&token);
    let refreshed = second_run.token().await.unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved[&key]["refresh_token"].as_str(), Some(refresh_token_of(&refreshed).as_str()));
    assert_eq!(saved[&key]["access_token"].as_str(), Some(refreshed.secret().expose_secret()));
    assert_eq!(file_mode(&path), 0o600);
    drop(second_run);

    // Third run: picks up the rotated set.
    let third_run = builder(&sandbox).store(store()).build().unwrap();
    assert!(third_run.token().await.unwrap().same_token(&refreshed));
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 1);

    // A corrupt file is reported, not overwritten.
    std::fs::write(&path, b"{ corrupt").unwrap();
    let broken = builder(&sandbox).store(store()).build().unwrap();
    match broken.token().await {
        Err(e @ Error::Store { .. }) => assert!(e.to_string().contains("fix it, or delete it"), "{e}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"{ corrupt");
}

#[tokio::test]
async fn a_grant_stored_by_an_earlier_version_under_the_old_key_is_still_used() {
    // Earlier versions keyed WhiteBIT's sets `whitebit/{client_id}/{base_url}`; an upgrade must not
    // lose that grant (issue 14, item 1 changed the key).
    let sandbox = sandbox().await;
    let dir = TempDir::new();
    let path = dir.0.join("whitebit.json");
    let first = builder(&sandbox).store(Arc::new(FileStore::new(&path))).build().unwrap();
    let token = authorized(&sandbox, &first).await;
    let new_key = first.cache().key().to_owned();
    drop(first);
    // Rewrite the file as the earlier version wrote it: the same record under the old key.
    let mut saved: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let record = saved.remove(&new_key).unwrap();
    let old_key = format!("whitebit/whitebit-demo-client/{}", sandbox.base_url(D));
    saved.insert(old_key.clone(), record);
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();

    let upgraded = builder(&sandbox).store(Arc::new(FileStore::new(&path))).build().unwrap();
    assert!(upgraded.token().await.unwrap().same_token(&token), "the stored set is served");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(saved.get(&new_key).is_some() && saved.get(&old_key).is_some(), "copied, not moved: {saved}");
    assert_eq!(sandbox.request_count(D, "/oauth2/refresh_token"), 0);
}

// ---------------------------------------------------------------- many users (issue 20)

#[tokio::test]
async fn many_users_of_one_client_each_refresh_once_with_their_own_rotating_token() {
    use tokensmith_core::cache::TokenSource as _;
    use tokensmith_core::manager::TokenManager;

    let sandbox = sandbox().await;
    let whitebit = builder(&sandbox).build().unwrap();
    let store = Arc::new(tokensmith_core::MemoryStore::new());
    let users: TokenManager<String> = TokenManager::for_users(whitebit.user_source()).store(store.clone()).build();
    let browser = Browser::new(&sandbox);
    let mut first = Vec::new();
    for user in 0..10 {
        let pending = whitebit.authorize();
        let callback = browser.consent(pending.url(), "allow").await;
        let token = whitebit.redeem(&pending, &callback).await.unwrap();
        users.insert(&format!("user-{user}"), token.clone()).await.unwrap();
        first.push(token);
    }
    assert!(whitebit.cache().cached_token().is_none(), "redeem leaves the single-user cache alone");
    let prefix = whitebit.cache().source().cache_key();
    for user in 0..10 {
        assert!(store.load(&format!("{prefix}/user-{user}")).await.unwrap().is_some(), "one record per user");
    }
    for (user, token) in first.iter().enumerate() {
        let key = format!("user-{user}");
        assert!(users.token(&key).await.unwrap().same_token(token), "served from memory");
        // WhiteBIT takes one refresh per second per client.
        sandbox.advance_clock(Duration::from_secs(2));
        users.invalidate(&key, token);
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (users, key) = (users.clone(), key.clone());
                tokio::spawn(async move { users.token(&key).await })
            })
            .collect();
        let mut got = Vec::new();
        for caller in callers {
            got.push(caller.await.unwrap().unwrap());
        }
        assert!(got.iter().all(|t| t.same_token(&got[0]) && !t.same_token(token)));
        assert_eq!(balance_status(&sandbox, &got[0]).await, 200);
        assert_ne!(refresh_token_of(&got[0]), refresh_token_of(token), "rotated");
    }
    let sent: Vec<String> = sandbox
        .requests(D)
        .iter()
        .filter(|r| r.path == "/oauth2/refresh_token")
        .map(|r| r.fingerprint_of("token").unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 10, "one refresh per user, for 20 callers each");
    let expected: HashSet<String> =
        first.iter().map(|t| tokensmith_sandbox::fingerprint(&refresh_token_of(t))).collect();
    assert_eq!(sent.into_iter().collect::<HashSet<_>>(), expected, "each user refreshed with their own token");
}

/// Issue 20's soak: 1,000 WhiteBIT users of one client, each with their own rotating refresh token,
/// behind a keyed manager that holds at most 100 of them in memory (so most refreshes start from a
/// set read back from the store). Three rounds; in each, every user's token is reported stale and
/// five callers ask at once. Every refresh must use the user's latest refresh token (a stale one is
/// refused by the sandbox and would lose the grant), exactly one refresh per user per round, and at
/// the end every user's stored refresh token still works: no grant lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_users_rotate_through_a_bounded_manager_and_lose_no_grant() {
    use tokensmith_core::manager::TokenManager;

    const USERS: usize = 1_000;
    const ROUNDS: usize = 3;
    let sandbox = sandbox().await;
    let whitebit = builder(&sandbox).build().unwrap();
    let store = Arc::new(tokensmith_core::MemoryStore::new());
    let users: TokenManager<String> =
        TokenManager::for_users(whitebit.user_source()).store(store.clone()).max_entries(100).build();
    let browser = Browser::new(&sandbox);
    let mut latest = Vec::with_capacity(USERS);
    for user in 0..USERS {
        let pending = whitebit.authorize();
        let callback = browser.consent(pending.url(), "allow").await;
        let token = whitebit.redeem(&pending, &callback).await.unwrap();
        users.insert(&format!("user-{user}"), token.clone()).await.unwrap();
        latest.push(token);
    }
    assert!(users.len() <= 100 + 10, "the manager holds at most its bound (+ busy entries): {}", users.len());

    for round in 0..ROUNDS {
        for (user, previous) in latest.iter_mut().enumerate() {
            let key = format!("user-{user}");
            // WhiteBIT takes one refresh per second per client: the sandbox's clock moves on.
            sandbox.advance_clock(Duration::from_secs(2));
            users.invalidate(&key, previous);
            let callers: Vec<_> = (0..5)
                .map(|_| {
                    let (users, key) = (users.clone(), key.clone());
                    tokio::spawn(async move { users.token(&key).await })
                })
                .collect();
            let mut got = Vec::with_capacity(5);
            for caller in callers {
                got.push(caller.await.unwrap().unwrap_or_else(|e| panic!("round {round}, {key}: {e}")));
            }
            assert!(got.iter().all(|t| t.same_token(&got[0])), "one token for the five callers of {key}");
            assert!(!got[0].same_token(previous), "{key} was refreshed in round {round}");
            assert_ne!(refresh_token_of(&got[0]), refresh_token_of(previous), "{key}'s refresh token rotated");
            *previous = got.swap_remove(0);
        }
        assert!(users.len() <= 100 + 10, "still bounded after round {round}: {}", users.len());
    }

    let refreshes = sandbox.requests(D).iter().filter(|r| r.path == "/oauth2/refresh_token").count();
    assert_eq!(refreshes, USERS * ROUNDS, "exactly one refresh per user per round");
    // No grant lost: each user's stored set holds the latest refresh token, and the sandbox accepts it.
    let prefix = {
        use tokensmith_core::cache::TokenSource as _;
        whitebit.cache().source().cache_key()
    };
    for (user, token) in latest.iter().enumerate() {
        let stored = store.load(&format!("{prefix}/user-{user}")).await.unwrap().expect("stored");
        assert_eq!(refresh_token_of(&stored), refresh_token_of(token), "user-{user}'s latest set is stored");
    }
    for user in [0, USERS / 2, USERS - 1] {
        let key = format!("user-{user}");
        sandbox.advance_clock(Duration::from_secs(2));
        users.invalidate(&key, &latest[user]);
        assert_eq!(balance_status(&sandbox, &users.token(&key).await.unwrap()).await, 200, "{key} refreshes again");
    }
}
