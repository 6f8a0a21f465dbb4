//! Discovery (RFC 8414, OpenID Connect), the device authorization grant (RFC 8628) and revocation
//! (RFC 7009) through tokensmith's Rust API against a real Django OAuth Toolkit server (tests/dot/).
//!
//! The user's part of the device grant (log in, enter the user code, approve or deny) is done by a
//! plain HTTP client with a Django session and its CSRF tokens, as DOT's own pages ask.
//! `TOKENSMITH_SKIP_DOT=1` skips these tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[allow(dead_code)]
mod dot;

use std::sync::Arc;

use async_trait::async_trait;
use dot::{CODE_CLIENT_ID, CODE_CLIENT_SECRET, DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET, DotServer, Pkce};
use tokensmith_core::error::{OAuthErrorCode, TransportError};
use tokensmith_core::flows::{DEVICE_CODE_GRANT, DeviceAuthorization, FlowClient, MetadataCache, discover};
use tokensmith_core::http::{HttpResponse, ReqwestTransport, Transport};
use tokensmith_core::request::{Grant, TokenRequest};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::testing::LogCapture;
use tokensmith_core::{
    AccessToken, CachedProvider, ClientCredentials, Error, MemoryStore, Scopes, TokenClient, TokenStore as _,
    cache::RefreshTokenSource, manager::TokenManager,
};

/// The server shared by this binary's tests, or return (skipped).
macro_rules! server {
    () => {
        match dot::shared() {
            Some(server) => server,
            None => return,
        }
    };
}

fn issuer(server: &DotServer) -> String {
    server.url("/o")
}

fn transport() -> Arc<ReqwestTransport> {
    Arc::new(ReqwestTransport::new().unwrap())
}

fn device_client(server: &DotServer) -> FlowClient {
    let endpoint = tokensmith_generic_django::endpoint(server.token_url().parse().unwrap());
    FlowClient::builder(endpoint, ClientCredentials::new(DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET))
        .transport(transport())
        .build()
        .unwrap()
}

fn device_url(server: &DotServer) -> url::Url {
    server.url("/o/device-authorization/").parse().unwrap()
}

async fn hello(server: &DotServer, token: &AccessToken) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(server.url("/api/hello/"))
        .bearer_auth(token.secret().expose_secret())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

fn csrf(html: &str) -> String {
    dot::hidden_inputs(html)
        .into_iter()
        .find(|(name, _)| name == "csrfmiddlewaretoken")
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("a CSRF token in:\n{html}"))
}

/// The user's part: logged in, opens the verification URI (the complete one, with the code), submits
/// the code, then accepts or denies on the confirmation page.
async fn answer_as_user(server: &DotServer, authorization: &DeviceAuthorization, action: &str) {
    let browser = dot::login(server).await;
    let complete = authorization.verification_uri_complete().expect("DOT sends verification_uri_complete");
    let page = browser.get(complete.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the user code page");
    let html = page.text().await.unwrap();
    assert!(html.contains(authorization.user_code()), "the page is filled with the user code:\n{html}");
    let submitted = browser
        .post(authorization.verification_uri().as_str())
        .form(&[("csrfmiddlewaretoken", csrf(&html).as_str()), ("user_code", authorization.user_code())])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 302, "a valid user code leads to the confirmation page");
    let confirm = submitted.headers()["location"].to_str().unwrap().to_owned();
    let confirm = server.url(&confirm);
    let page = browser.get(&confirm).send().await.unwrap();
    assert_eq!(page.status(), 200, "the confirmation page");
    let html = page.text().await.unwrap();
    assert!(html.contains("tokensmith-device requests access"), "{html}");
    let answered = browser
        .post(&confirm)
        .form(&[("csrfmiddlewaretoken", csrf(&html).as_str()), ("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 302, "the answer is recorded");
}

// ---- discovery ---------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_of_dots_issuer() {
    let server = server!();
    let metadata = discover(transport().as_ref(), &issuer(server)).await.expect("DOT's RFC 8414 metadata");
    assert_eq!(metadata.issuer, issuer(server));
    assert_eq!(metadata.document_url.path(), "/.well-known/oauth-authorization-server/o", "RFC 8414 §3.1 form");
    assert_eq!(metadata.token_endpoint.as_ref().unwrap().as_str(), server.token_url());
    assert_eq!(metadata.authorization_endpoint.as_ref().unwrap().as_str(), server.url("/o/authorize/"));
    assert_eq!(metadata.revocation_endpoint.as_ref().unwrap().as_str(), server.url("/o/revoke_token/"));
    assert!(metadata.supports_grant(DEVICE_CODE_GRANT), "{:?}", metadata.grant_types_supported);
    // DOT 3.4.1 does not name its device authorization endpoint in either document.
    assert_eq!(metadata.device_authorization_endpoint, None);
    assert_eq!(metadata.code_challenge_methods_supported, ["S256"]);
    assert_eq!(metadata.endpoint().unwrap().get_credential_style().name(), "basic", "client_secret_basic is listed");

    // Kept per issuer: the second look-up sends nothing.
    let before = server.stats().await;
    let cache = MetadataCache::new(transport());
    let first = cache.get(&issuer(server)).await.unwrap();
    let second = cache.get(&issuer(server)).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    let path = "GET /.well-known/oauth-authorization-server/o";
    let count = |stats: &serde_json::Value| stats.get(path).and_then(serde_json::Value::as_u64).unwrap_or(0);
    assert_eq!(count(&server.stats().await) - count(&before), 1, "one request for two look-ups");
}

/// Refuses the RFC 8414 document, as a server that does not mount it at the root would.
#[derive(Debug)]
struct NoRfc8414(Arc<ReqwestTransport>);

#[async_trait]
impl Transport for NoRfc8414 {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        if request.url().path().starts_with("/.well-known/oauth-authorization-server") {
            return Ok(HttpResponse::new(404, "text/html", "<h1>Not Found</h1>"));
        }
        self.0.send(request).await
    }
}

#[tokio::test]
async fn discovery_falls_back_to_dots_openid_configuration() {
    let server = server!();
    let metadata = discover(&NoRfc8414(transport()), &issuer(server)).await.expect("DOT's OpenID Connect metadata");
    assert_eq!(metadata.document_url.path(), "/o/.well-known/openid-configuration");
    assert_eq!(metadata.issuer, issuer(server));
    assert_eq!(metadata.token_endpoint.as_ref().unwrap().as_str(), server.token_url());
    assert!(metadata.jwks_uri.is_some());
}

#[tokio::test]
async fn discovery_refuses_a_document_naming_another_issuer() {
    // A DOT whose OIDC_ISS_ENDPOINT names another issuer (a proxy set up wrong, or a mix-up).
    let Some(server) = dot::dedicated_with(3600, "flows-issuer", &["--issuer", "https://issuer.example.test/o"]) else {
        return;
    };
    let err = discover(transport().as_ref(), &issuer(&server)).await.unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "issuer"), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("https://issuer.example.test/o") && text.contains(&issuer(&server)), "{text}");
}

// ---- device grant ------------------------------------------------------------------------------

#[tokio::test]
async fn device_grant_approved_by_the_user() {
    let server = server!();
    let client = device_client(server);
    let authorization =
        client.request_device_authorization(&device_url(server), &Scopes::parse("read write")).await.unwrap();
    assert_eq!(authorization.verification_uri().as_str(), server.url("/o/device/"));
    assert_eq!(authorization.interval().as_secs(), 5);
    assert_eq!(authorization.expires_in().as_secs(), 1800);
    assert!(!format!("{authorization:?}").contains(authorization.device_code().expose_secret()));

    // The user approves while the device polls.
    let (token, ()) =
        tokio::join!(client.poll_device_token(&authorization), answer_as_user(server, &authorization, "accept"));
    let token = token.expect("the token once the user approved");
    assert_eq!(hello(server, &token).await, (200, r#"{"hello": "alice"}"#.to_owned()));
    let mut scopes: Vec<&str> = token.scopes().iter().collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["read", "write"]);

    // Saved through a cache, refreshed later with its refresh token.
    let token_client = TokenClient::builder(
        "dot-device",
        tokensmith_generic_django::endpoint(server.token_url().parse().unwrap()),
        ClientCredentials::new(DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET),
    )
    .build()
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let cache =
        CachedProvider::builder(RefreshTokenSource::new(token_client, Scopes::empty())).store(store.clone()).build();
    cache.insert(token.clone()).await.unwrap();
    assert!(store.load(cache.key()).await.unwrap().is_some(), "saved in the store");
    cache.invalidate(&token);
    let refreshed = cache.token().await.expect("a refresh with the device grant's refresh token");
    assert!(!refreshed.same_token(&token));
}

#[tokio::test]
async fn device_grant_denied_by_the_user() {
    let server = server!();
    let client = device_client(server);
    let authorization = client.request_device_authorization(&device_url(server), &Scopes::parse("read")).await.unwrap();
    let (log, guard) = LogCapture::install();
    let (result, ()) =
        tokio::join!(client.poll_device_token(&authorization), answer_as_user(server, &authorization, "deny"));
    drop(guard);
    let err = result.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::AccessDenied), "{err:?}");
    let text = format!("{err} {err:?} {}", log.text());
    for secret in [authorization.device_code().expose_secret(), DEVICE_CLIENT_SECRET] {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
}

#[tokio::test]
async fn device_grant_expired() {
    let server = server!();
    let client = device_client(server);
    let authorization = client.request_device_authorization(&device_url(server), &Scopes::parse("read")).await.unwrap();
    let expired = reqwest::Client::new()
        .post(server.url("/conformance/expire-device/"))
        .form(&[("user_code", authorization.user_code())])
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 200);
    let err = client.poll_device_token(&authorization).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::ExpiredToken), "{err:?}");
    assert!(err.to_string().contains("start the device authorization again"), "{err}");
}

// ---- revocation --------------------------------------------------------------------------------

fn code_client(server: &DotServer) -> TokenClient {
    let endpoint = tokensmith_generic_django::endpoint(server.token_url().parse().unwrap());
    TokenClient::builder("dot-code", endpoint, ClientCredentials::new(CODE_CLIENT_ID, CODE_CLIENT_SECRET))
        .build()
        .unwrap()
}

/// A token set of the code client from a consent given as `state`, live at DOT.
async fn authorized_token(server: &DotServer, client: &TokenClient, state: &str) -> AccessToken {
    let pkce = Pkce::new();
    let callback = dot::authorize(server, "read", state, &pkce).await;
    let grant = Grant::AuthorizationCode {
        code: SecretString::from(callback.code),
        redirect_uri: Some(dot::CODE_REDIRECT_URI.to_owned()),
        code_verifier: Some(SecretString::from(pkce.verifier.clone())),
    };
    let token = client.request_token(&grant, &Scopes::empty()).await.unwrap();
    assert!(token.refresh_token().is_some());
    assert_eq!(hello(server, &token).await.0, 200);
    token
}

/// Asserts that DOT refuses `token`'s refresh token: a cache holding the set cannot refresh it.
async fn assert_refresh_is_refused(server: &DotServer, token: &AccessToken) {
    let cache = CachedProvider::new(RefreshTokenSource::new(code_client(server), Scopes::empty()));
    cache.insert(token.clone()).await.unwrap();
    cache.invalidate(token);
    let err = cache.token().await.unwrap_err();
    assert!(
        matches!(err, Error::ReauthorizationRequired { .. }),
        "a revoked refresh token: authorize again, got {err:?}"
    );
}

#[tokio::test]
async fn revocation_makes_the_next_refresh_fail() {
    let server = server!();
    let client = code_client(server);
    let token = authorized_token(server, &client, "state-revoke").await;

    // The revocation endpoint from discovery, the client's dialect and credentials.
    let metadata = discover(transport().as_ref(), &issuer(server)).await.unwrap();
    let revocation = metadata.revocation_endpoint.clone().unwrap();
    let flows = FlowClient::for_token_client(&client).build().unwrap();
    let store = MemoryStore::new();
    store.save("dot-code", &token).await.unwrap();
    assert!(flows.revoke_stored(&revocation, &store, "dot-code").await.expect("DOT revokes"));
    assert!(store.load("dot-code").await.unwrap().is_none(), "removed from the store");

    assert_eq!(hello(server, &token).await.0, 401, "the access token is revoked");
    assert_refresh_is_refused(server, &token).await;

    // Revoking again is still a success (RFC 7009 §2.2: an invalid token is not an error).
    flows.revoke(&revocation, &token).await.expect("a second revocation");
}

/// A service holding many users' grants disconnects one: revoked at DOT, gone from the manager.
#[tokio::test]
async fn a_token_manager_revokes_one_users_grant() {
    let server = server!();
    let client = code_client(server);
    let (alice, bob) = ("alice".to_owned(), "bob".to_owned());
    let manager = TokenManager::for_users(RefreshTokenSource::new(code_client(server), Scopes::empty())).build();
    let alices = authorized_token(server, &client, "state-manager-alice").await;
    let bobs = authorized_token(server, &client, "state-manager-bob").await;
    manager.insert(&alice, alices.clone()).await.unwrap();
    manager.insert(&bob, bobs.clone()).await.unwrap();

    let revocation = discover(transport().as_ref(), &issuer(server)).await.unwrap().revocation_endpoint.unwrap();
    let flows = FlowClient::for_token_client(&client).build().unwrap();
    assert!(manager.revoke(&alice, &flows, &revocation).await.expect("DOT revokes"));
    assert!(!manager.is_loaded(&alice) && manager.is_loaded(&bob));
    assert_eq!(hello(server, &alices).await.0, 401, "alice's access token is revoked");
    assert_refresh_is_refused(server, &alices).await;
    let err = manager.token(&alice).await.unwrap_err();
    assert!(matches!(err, Error::ReauthorizationRequired { .. }), "nothing is left for alice: {err:?}");

    // Bob is untouched, and nothing is left to revoke for alice.
    assert_eq!(hello(server, &manager.token(&bob).await.unwrap()).await.0, 200);
    assert!(!manager.revoke(&alice, &flows, &revocation).await.unwrap());
}
