//! Core's authorization code flow (`tokensmith_core::flows`) end to end against a real Django OAuth
//! Toolkit server: the URL `AuthorizationRequest` builds is accepted by DOT's consent page (PKCE S256
//! required there), the redirect reaches a `LoopbackListener`, `CodeExchange` trades the code once
//! and saves the tokens in a `FileStore`, and the provider refreshes with DOT's rotating refresh
//! tokens through the store. Also: a wrong `state` sends nothing, Deny is `access_denied`, a spent
//! code means "authorize again", and no secret reaches the logs.
//!
//! The browser is a cookie-keeping reqwest client that logs the test user in and submits the
//! consent form (as `dot::authorize` does). `TOKENSMITH_SKIP_DOT=1` skips these tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)] // the helpers the DOT conformance tests use and these do not
mod dot;

use std::sync::Arc;
use std::time::Duration;

use dot::{CODE_CLIENT_ID, CODE_CLIENT_SECRET, CODE_REDIRECT_URI, DotServer, PASSWORD, USERNAME};
use tokensmith_core::error::{CallbackError, OAuthErrorCode};
use tokensmith_core::flows::{AuthorizationCode, AuthorizationRequest, CodeExchange, LoopbackListener};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::LogCapture;
use tokensmith_core::{
    CachedProvider, ClientCredentials, Error, Scopes, TokenClient, TokenStore, cache::RefreshTokenSource,
    store::FileStore,
};

/// The shared server (`None`: skipped), with a guard to hold to the end of the test: the tests count
/// the server's token requests, so they run one at a time.
async fn serial() -> (tokio::sync::MutexGuard<'static, ()>, Option<&'static DotServer>) {
    let guard = ONE_AT_A_TIME.lock().await;
    (guard, dot::shared())
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn provider(server: &DotServer, store: Arc<FileStore>) -> CachedProvider<RefreshTokenSource> {
    let endpoint = tokensmith_generic_django::endpoint(server.token_url().parse().unwrap());
    // A transport of this test's own: the process-wide one would keep connections of another
    // test's runtime, gone when that test ends.
    let transport = Arc::new(tokensmith_core::http::ReqwestTransport::new().unwrap());
    let client = TokenClient::builder("dot-code", endpoint, ClientCredentials::new(CODE_CLIENT_ID, CODE_CLIENT_SECRET))
        .transport(transport)
        .build()
        .unwrap();
    CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty())).store(store).build()
}

fn request(server: &DotServer, redirect_uri: &str) -> AuthorizationRequest {
    AuthorizationRequest::new(server.url("/o/authorize/").parse().unwrap(), CODE_CLIENT_ID)
        .redirect_uri(redirect_uri)
        .scopes(Scopes::parse("read write"))
}

fn scratch(label: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dot-authcode-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A browser with the test user logged in to DOT (a real Django session, CSRF token included).
async fn logged_in(server: &DotServer) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client");
    let html = browser.get(server.url("/accounts/login/")).send().await.unwrap().text().await.unwrap();
    let csrf = dot::hidden_inputs(&html)
        .into_iter()
        .find(|(name, _)| name == "csrfmiddlewaretoken")
        .map(|(_, value)| value)
        .expect("the login form has a CSRF token");
    let login = browser
        .post(server.url("/accounts/login/"))
        .form(&[("csrfmiddlewaretoken", csrf.as_str()), ("username", USERNAME), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "logging in redirects (a 200 is the form again)");
    browser
}

/// Opens `url` (the authorization URL core built) on DOT's consent page, clicks Authorize or Cancel,
/// and returns where DOT redirects the browser.
async fn consent(server: &DotServer, url: &str, allow: bool) -> String {
    let browser = logged_in(server).await;
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "DOT's consent page for core's URL");
    let html = page.text().await.unwrap();
    assert!(html.contains("Authorize tokensmith-code?"), "{html}");
    let mut fields = dot::hidden_inputs(&html);
    assert!(fields.iter().any(|(n, v)| n == "code_challenge_method" && v == "S256"), "{fields:?}");
    if allow {
        fields.push(("allow".to_owned(), "Authorize".to_owned()));
    }
    let answered = browser.post(server.url("/o/authorize/")).form(&fields).send().await.unwrap();
    assert_eq!(answered.status(), 302, "the consent form redirects to the client");
    answered.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).expect("a Location").to_owned()
}

/// The whole flow, as a CLI runs it: loopback listener, consent, exchange, store, refresh with
/// rotation, a second run of the program reading the store.
#[tokio::test]
async fn core_flow_against_dot_with_a_loopback_listener_and_rotation_through_the_store() {
    let (_one_at_a_time, Some(server)) = serial().await else { return };
    let (logs, _guard) = LogCapture::install();
    let dir = scratch("flow");
    let store = Arc::new(FileStore::new(dir.join("tokens.json")));
    let provider = provider(server, store.clone());
    provider.check_store().await.unwrap();

    // DOT's application has http://127.0.0.1:8765/callback registered; DOT, as RFC 8252 §7.3 asks,
    // accepts any port on a loopback redirect URI, so the listener takes a free one.
    let listener = LoopbackListener::bind(0).unwrap();
    let pending = request(server, &listener.redirect_uri()).start();
    let verifier = pending.code_verifier().unwrap().expose_secret().to_owned();
    let wait = tokio::spawn(listener.wait_for(&pending, Duration::from_secs(60)));
    let location = consent(server, pending.url().as_str(), true).await;
    assert!(location.starts_with(&pending.redirect_uri().unwrap().to_owned()), "{location}");
    // The browser follows the redirect to the listener.
    let page = reqwest::get(&location).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Authorization received"));
    let callback = wait.await.unwrap().unwrap();

    let before = server.token_requests().await;
    let token = CodeExchange::saving_to(&provider).complete(&pending, &callback).await.expect("the exchange");
    assert_eq!(server.token_requests().await, before + 1, "the code was sent once");
    let mut granted: Vec<&str> = token.scopes().iter().collect();
    granted.sort_unstable();
    assert_eq!(granted, ["read", "write"]);
    let first_refresh = token.refresh_token().cloned().expect("DOT issues a refresh token");
    let stored = store.load(provider.key()).await.unwrap().expect("saved before complete returned");
    assert!(stored.refresh_token().unwrap().same_as(&first_refresh));

    // The same callback again: refused before anything is sent.
    let again = CodeExchange::saving_to(&provider).complete(&pending, &callback).await;
    assert!(matches!(again, Err(Error::Callback(CallbackError::AlreadyUsed))), "{again:?}");
    assert_eq!(server.token_requests().await, before + 1);

    // A refresh (forced: the token lives an hour): DOT rotates, the store keeps the new one.
    provider.invalidate(&token);
    let refreshed = provider.token().await.expect("the refresh");
    assert!(!refreshed.same_token(&token));
    let second_refresh = refreshed.refresh_token().cloned().expect("a rotated refresh token");
    assert!(!second_refresh.same_as(&first_refresh), "DOT rotated the refresh token");
    let stored = store.load(provider.key()).await.unwrap().unwrap();
    assert!(stored.refresh_token().unwrap().same_as(&second_refresh), "the store keeps the rotated one");

    // The next run of the program: a new provider on the same file refreshes with the stored token.
    let next_run = self::provider(server, Arc::new(FileStore::new(dir.join("tokens.json"))));
    assert!(next_run.token().await.unwrap().same_token(&refreshed), "served from the store");
    next_run.invalidate(&refreshed);
    let third = next_run.token().await.expect("a refresh with the stored, rotated refresh token");
    assert!(!third.same_token(&refreshed));

    let text = logs.text();
    for secret in [
        verifier.as_str(),
        token.secret().expose_secret(),
        first_refresh.secret().expose_secret(),
        second_refresh.secret().expose_secret(),
        CODE_CLIENT_SECRET,
    ] {
        assert!(!text.contains(secret), "a secret in the logs:\n{text}");
    }
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(n, _)| n == "code").unwrap().1.into_owned();
    assert!(!text.contains(&code), "the code in the logs:\n{text}");
    assert!(text.contains("authorization completed"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A forged callback (wrong state) sends nothing; Deny is `access_denied`; a spent code is refused
/// by DOT and means "authorize again".
#[tokio::test]
async fn failure_paths_against_dot() {
    let (_one_at_a_time, Some(server)) = serial().await else { return };
    let dir = scratch("failures");
    let store = Arc::new(FileStore::new(dir.join("tokens.json")));
    let provider = provider(server, store.clone());

    // Wrong state: the genuine code, a forged state. Nothing is sent; the genuine callback works.
    let pending = request(server, CODE_REDIRECT_URI).start();
    let location = consent(server, pending.url().as_str(), true).await;
    let forged = location.replace(pending.state(), "forged-state");
    let before = server.token_requests().await;
    let err = CodeExchange::saving_to(&provider).complete(&pending, &forged).await.unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::StateMismatch)), "{err:?}");
    assert_eq!(server.token_requests().await, before, "no token request for a wrong state");
    let code: AuthorizationCode = pending.verify_callback(&location).unwrap();
    let exchange = CodeExchange::saving_to(&provider);
    exchange.exchange(&pending, &code).await.expect("the genuine callback");

    // The same code a second time (as a retry would send it): DOT refuses it, "authorize again".
    let err = exchange.exchange(&pending, &code).await.unwrap_err();
    assert!(matches!(err, Error::ReauthorizationRequired { .. }), "{err:?}");
    assert!(!err.to_string().contains(code.secret().expose_secret()), "{err}");
    assert_eq!(server.token_requests().await, before + 2);

    // Deny: DOT redirects with error=access_denied and the state.
    let pending = request(server, CODE_REDIRECT_URI).start();
    let location = consent(server, pending.url().as_str(), false).await;
    assert!(location.contains("error=access_denied"), "{location}");
    let before = server.token_requests().await;
    let err = CodeExchange::saving_to(&provider).complete(&pending, &location).await.unwrap_err();
    assert!(
        matches!(&err, Error::Callback(CallbackError::Denied { code: OAuthErrorCode::AccessDenied, .. })),
        "{err:?}"
    );
    assert_eq!(server.token_requests().await, before);
    let _ = std::fs::remove_dir_all(dir);
}
