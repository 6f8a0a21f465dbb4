//! Conformance of tokensmith against a real Django OAuth Toolkit server (software nobody here wrote).
//!
//! The server is the Django project in `tests/dot/`; `tests/dot/setup.sh` creates its venv. Each
//! case and what it proves is listed in `docs/conformance.md`. `TOKENSMITH_SKIP_DOT=1` skips them
//! (each test then prints that it was skipped); otherwise a missing venv or server fails them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dot;

use std::sync::Arc;
use std::time::Duration;

use dot::{
    CC_CLIENT_ID, CC_CLIENT_SECRET, CODE_CLIENT_ID, CODE_CLIENT_SECRET, CODE_REDIRECT_URI, DotServer, Pkce,
    SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET,
};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::style::BasicAuthRaw;
use tokensmith_core::testing::ManualClock;
use tokensmith_core::{
    AccessToken, AuthorizedClient, CachedProvider, ClientCredentials, Error, Scopes, SharedTokenProvider, TokenClient,
    TokenProvider, cache::ClientCredentialsSource, cache::RefreshTokenSource, error::OAuthErrorCode, request::Grant,
};
use tokensmith_generic_django::{DjangoCredentials, DjangoProvider};

/// The server shared by this binary's tests, or return (skipped).
macro_rules! server {
    () => {
        match dot::shared() {
            Some(server) => server,
            None => return,
        }
    };
}

fn django(server: &DotServer, id: &str, secret: &str, style: DjangoCredentials, scopes: &str) -> DjangoProvider {
    DjangoProvider::builder()
        .base_url(server.base_url())
        .client_id(id)
        .client_secret(secret)
        .credential_style(style)
        .scopes(Scopes::parse(scopes))
        .build()
        .expect("a valid generic-django configuration")
}

/// A declarative provider (`provider = "custom"`) described entirely in TOML.
fn custom_config(server: &DotServer, id: &str, secret: &str, style: &str, scope: Option<&str>) -> tokensmith::Config {
    let scope = scope.map(|s| format!("scope = '{s}'\n")).unwrap_or_default();
    tokensmith::Config::from_toml_str(&format!(
        "provider = 'custom'\n\
         name = 'dot'\n\
         token_url = '{}'\n\
         credential_style = '{style}'\n\
         body_format = 'form'\n\
         client_id = '{id}'\n\
         client_secret = '{secret}'\n\
         {scope}",
        server.token_url()
    ))
    .expect("a valid custom provider configuration")
}

fn custom(server: &DotServer, id: &str, secret: &str, style: &str, scope: Option<&str>) -> SharedTokenProvider {
    tokensmith::from_config(&custom_config(server, id, secret, style, scope)).expect("a custom provider")
}

fn scopes_of(token: &AccessToken) -> Vec<&str> {
    let mut scopes: Vec<&str> = token.scopes().iter().collect();
    scopes.sort_unstable();
    scopes
}

#[track_caller]
fn assert_oauth(result: Result<AccessToken, Error>, code: OAuthErrorCode, status: u16) -> Error {
    match result {
        Err(Error::OAuth(ref e)) if e.code == code && e.status == status => result.unwrap_err(),
        other => panic!("expected the OAuth error {code} with HTTP {status}, got {other:?}"),
    }
}

/// GET the protected view with `token` as a bearer token.
async fn hello(server: &DotServer, path: &str, token: &AccessToken) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(token.secret().expose_secret())
        .send()
        .await
        .expect("the resource request");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

// ---- generic-django ----------------------------------------------------------------------------

#[tokio::test]
async fn django_basic_credentials() {
    let server = server!();
    let provider = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Basic, "read write");
    let request = provider.token_request().unwrap();
    assert!(request.has_header("authorization"), "the credentials go in the Authorization header");
    assert!(!request.has_param("client_secret"), "and not in the body");

    let token = provider.token().await.expect("DOT accepts Basic credentials");
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(scopes_of(&token), ["read", "write"]);
    assert_eq!(token.lifetime(), Duration::from_secs(dot::SHARED_LIFETIME), "DOT's expires_in is read");
    assert!(token.refresh_token().is_none(), "client credentials get no refresh token");
    assert_eq!(hello(server, "/api/hello/", &token).await, (200, r#"{"hello": null}"#.to_owned()));
}

#[tokio::test]
async fn django_body_credentials() {
    let server = server!();
    let provider = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Body, "read");
    let request = provider.token_request().unwrap();
    assert!(!request.has_header("authorization"), "no Authorization header");
    assert!(request.has_param("client_id") && request.has_param("client_secret"), "the credentials are in the body");

    let token = provider.token().await.expect("DOT accepts body credentials");
    assert_eq!(scopes_of(&token), ["read"]);
    assert_eq!(hello(server, "/api/hello/", &token).await.0, 200);
}

#[tokio::test]
async fn django_special_character_secret() {
    let server = server!();
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        let provider = django(server, SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, style, "read");
        let token = provider.token().await.unwrap_or_else(|e| panic!("{style}: DOT accepts the special secret: {e}"));
        assert_eq!(scopes_of(&token), ["read"]);
    }

    // The control: Basic credentials without the RFC 6749 §2.3.1 form encoding are refused, since DOT
    // decodes them (`+` becomes a space, `%2B` a `+`). This is what the encoding is for.
    let endpoint = tokensmith_generic_django::endpoint(server.token_url().parse().unwrap())
        .credential_style(Arc::new(BasicAuthRaw));
    let raw =
        TokenClient::builder("dot-raw", endpoint, ClientCredentials::new(SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET))
            .build()
            .unwrap();
    assert_oauth(
        raw.request_token(&Grant::ClientCredentials, &Scopes::parse("read")).await,
        OAuthErrorCode::InvalidClient,
        401,
    );
}

#[tokio::test]
async fn django_scopes_granted() {
    let server = server!();
    // Nothing requested: DOT grants its default scope (DEFAULT_SCOPES = ["read"]).
    let none = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Basic, "");
    assert!(!none.token_request().unwrap().has_param("scope"), "no scope parameter when none is requested");
    assert_eq!(scopes_of(&none.token().await.unwrap()), ["read"]);

    let all = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Basic, "read write admin");
    let token = all.token().await.unwrap();
    assert_eq!(scopes_of(&token), ["admin", "read", "write"]);
    assert_eq!(hello(server, "/api/admin/", &token).await.0, 200, "the admin scope opens the admin view");

    let read = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Basic, "read");
    let token = read.token().await.unwrap();
    assert_eq!(hello(server, "/api/admin/", &token).await.0, 403, "a read token is refused by the admin view");
}

#[tokio::test]
async fn django_scopes_refused() {
    let server = server!();
    // A scope DOT knows but this application may not have.
    let admin = django(server, SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, DjangoCredentials::Basic, "read admin");
    assert_oauth(admin.token().await, OAuthErrorCode::InvalidScope, 400);
    // A scope DOT does not know at all.
    let unknown = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Body, "read delete");
    assert_oauth(unknown.token().await, OAuthErrorCode::InvalidScope, 400);
}

#[tokio::test]
async fn django_wrong_secret_is_invalid_client() {
    let server = server!();
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        let wrong = django(server, CC_CLIENT_ID, "not-the-secret", style, "read");
        let error = assert_oauth(wrong.token().await, OAuthErrorCode::InvalidClient, 401);
        assert!(!error.to_string().contains("not-the-secret"), "the error never shows the secret: {error}");
        assert!(wrong.cached_token().is_none(), "a failure is not cached as a token");
        let unknown = django(server, "no-such-client", CC_CLIENT_SECRET, style, "read");
        assert_oauth(unknown.token().await, OAuthErrorCode::InvalidClient, 401);
    }
}

#[tokio::test]
async fn django_bad_grant_is_invalid_grant() {
    let server = server!();
    let client = code_client(server);
    let code = Grant::AuthorizationCode {
        code: SecretString::from("not-a-code"),
        redirect_uri: Some(CODE_REDIRECT_URI.to_owned()),
        code_verifier: Some(SecretString::from(Pkce::new().verifier)),
    };
    assert_oauth(client.request_token(&code, &Scopes::empty()).await, OAuthErrorCode::InvalidGrant, 400);
    let refresh = Grant::RefreshToken(tokensmith_core::RefreshToken::new("not-a-refresh-token"));
    assert_oauth(client.request_token(&refresh, &Scopes::empty()).await, OAuthErrorCode::InvalidGrant, 400);
}

/// The 3 s token: DOT's `expires_in` drives the cache, which renews once per renewal however many
/// callers ask at once. The cache's clock is a manual one (no test sleeps); the requests are counted
/// by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_three_second_token_renewed_once_per_renewal_under_concurrency() {
    let Some(server) = dot::dedicated(3, "renewal-django") else { return };
    let clock = Arc::new(ManualClock::new());
    let provider = DjangoProvider::builder()
        .base_url(server.base_url())
        .client_id(CC_CLIENT_ID)
        .client_secret(CC_CLIENT_SECRET)
        .scopes(Scopes::parse("read"))
        .clock(clock.clone())
        .build()
        .unwrap()
        .shared();
    assert_renewals(&server, &provider, &clock).await;
}

/// Three rounds of 32 concurrent callers: at the start (one fetch), 1 s later (still fresh: none), and
/// 2 s after each fetch (past the refresh point of a 3 s token, 1.5 s: exactly one).
async fn assert_renewals(server: &DotServer, provider: &SharedTokenProvider, clock: &ManualClock) {
    async fn burst(provider: &SharedTokenProvider) -> AccessToken {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.token().await })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap().expect("a token"));
        }
        assert!(tokens.iter().all(|t| t.same_token(&tokens[0])), "every concurrent caller got the same token");
        tokens.swap_remove(0)
    }

    let before = server.token_requests().await;
    let first = burst(provider).await;
    assert_eq!(first.lifetime(), Duration::from_secs(3), "DOT issued a 3 s token");
    assert_eq!(server.token_requests().await - before, 1, "32 callers on an empty cache: one token request");

    clock.advance(Duration::from_secs(1));
    let still = burst(provider).await;
    assert!(still.same_token(&first), "1 s into a 3 s token it is still fresh");
    assert_eq!(server.token_requests().await - before, 1, "no request while the token is fresh");

    let mut previous = first;
    for renewal in 1..=2u64 {
        clock.advance(Duration::from_secs(if renewal == 1 { 1 } else { 2 }));
        let renewed = burst(provider).await;
        assert!(!renewed.same_token(&previous), "renewal {renewal}: a new token");
        assert_eq!(
            server.token_requests().await - before,
            1 + renewal,
            "renewal {renewal}: exactly one token request for 32 concurrent callers"
        );
        assert_eq!(hello(server, "/api/hello/", &renewed).await.0, 200, "the renewed token is accepted");
        previous = renewed;
    }
}

fn code_client(server: &DotServer) -> TokenClient {
    let endpoint = tokensmith_generic_django::endpoint(server.token_url().parse().unwrap());
    TokenClient::builder("dot-code", endpoint, ClientCredentials::new(CODE_CLIENT_ID, CODE_CLIENT_SECRET))
        .build()
        .unwrap()
}

fn code_grant(code: &str, pkce: Option<&Pkce>) -> Grant {
    Grant::AuthorizationCode {
        code: SecretString::from(code.to_owned()),
        redirect_uri: Some(CODE_REDIRECT_URI.to_owned()),
        code_verifier: pkce.map(|p| SecretString::from(p.verifier.clone())),
    }
}

/// Runs the authorization-code flow with PKCE through DOT's consent page and exchanges the code.
async fn authorized_token(server: &DotServer, client: &TokenClient) -> AccessToken {
    let pkce = Pkce::new();
    let callback = dot::authorize(server, "read write", "state-123", &pkce).await;
    assert_eq!(callback.state, "state-123", "DOT echoes the state");
    client.request_token(&code_grant(&callback.code, Some(&pkce)), &Scopes::empty()).await.expect("the code exchange")
}

#[tokio::test]
async fn authorization_code_with_pkce_then_rotating_refresh() {
    let server = server!();
    let client = code_client(server);

    // The code, obtained through DOT's /o/authorize/ consent page, exchanged with the verifier.
    let pkce = Pkce::new();
    let callback = dot::authorize(server, "read write", "state-123", &pkce).await;
    assert_eq!(callback.state, "state-123", "DOT echoes the state");
    let token = client.request_token(&code_grant(&callback.code, Some(&pkce)), &Scopes::empty()).await.unwrap();
    assert_eq!(scopes_of(&token), ["read", "write"]);
    let first_refresh = token.refresh_token().cloned().expect("the code exchange returns a refresh token");
    assert_eq!(hello(server, "/api/hello/", &token).await, (200, r#"{"hello": "alice"}"#.to_owned()));

    // A code is good once.
    assert_oauth(
        client.request_token(&code_grant(&callback.code, Some(&pkce)), &Scopes::empty()).await,
        OAuthErrorCode::InvalidGrant,
        400,
    );

    // Refresh through the cache: the stored token is dropped, the next token() uses its refresh token.
    let cache = CachedProvider::new(RefreshTokenSource::new(code_client(server), Scopes::empty()));
    cache.insert(token.clone()).await.unwrap();
    cache.invalidate(&token);
    let refreshed = cache.token().await.expect("the refresh");
    assert!(!refreshed.same_token(&token), "a new access token");
    let second_refresh = refreshed.refresh_token().cloned().expect("DOT rotates: a new refresh token");
    assert!(!second_refresh.same_as(&first_refresh), "the refresh token rotated");
    assert_eq!(scopes_of(&refreshed), ["read", "write"], "the refreshed token keeps the scopes");
    assert_eq!(hello(server, "/api/hello/", &refreshed).await.0, 200);

    // The old refresh token is now rejected: invalid_grant from the client, and "authorize again"
    // from a refresh-token source that only has the old one.
    assert_oauth(
        client.request_token(&Grant::RefreshToken(first_refresh.clone()), &Scopes::empty()).await,
        OAuthErrorCode::InvalidGrant,
        400,
    );
    let stale = CachedProvider::new(RefreshTokenSource::new(code_client(server), Scopes::empty()));
    stale.insert(token.clone()).await.unwrap();
    stale.invalidate(&token);
    assert!(
        matches!(stale.token().await, Err(Error::ReauthorizationRequired { .. })),
        "a rejected refresh token means the user must authorize again"
    );

    // The cache kept the rotated one: a second refresh works.
    cache.invalidate(&refreshed);
    let again = cache.token().await.expect("a second refresh with the rotated refresh token");
    assert!(!again.same_token(&refreshed));
}

#[tokio::test]
async fn authorization_code_pkce_is_enforced() {
    let server = server!();
    let client = code_client(server);
    // Without the verifier.
    let pkce = Pkce::new();
    let callback = dot::authorize(server, "read", "s1", &pkce).await;
    assert_oauth(
        client.request_token(&code_grant(&callback.code, None), &Scopes::empty()).await,
        OAuthErrorCode::InvalidRequest,
        400,
    );
    // With another verifier.
    let pkce = Pkce::new();
    let callback = dot::authorize(server, "read", "s2", &pkce).await;
    assert_oauth(
        client.request_token(&code_grant(&callback.code, Some(&Pkce::new())), &Scopes::empty()).await,
        OAuthErrorCode::InvalidGrant,
        400,
    );
}

#[tokio::test]
async fn authorized_client_calls_the_protected_view_and_recovers_from_revocation() {
    let server = server!();
    let provider = django(server, CC_CLIENT_ID, CC_CLIENT_SECRET, DjangoCredentials::Basic, "read");
    let client = AuthorizedClient::new(provider.clone().shared());
    let response = client.send(client.get(server.url("/api/hello/"))).await.unwrap();
    assert_eq!(response.status(), 200, "the bearer token is accepted by DOT's protected_resource");
    let first = provider.cached_token().expect("the token is cached");

    // Revoke it at DOT (RFC 7009, DOT's /o/revoke_token/; tokensmith itself has no revocation API).
    let revoked = reqwest::Client::new()
        .post(server.url("/o/revoke_token/"))
        .basic_auth(CC_CLIENT_ID, Some(CC_CLIENT_SECRET))
        .form(&[("token", first.secret().expose_secret()), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200, "DOT revoked the token");
    assert_eq!(hello(server, "/api/hello/", &first).await.0, 401, "the revoked token is refused with 401");

    // The client sees the 401, drops the token, fetches a new one and retries once.
    let response = client.send(client.get(server.url("/api/hello/"))).await.unwrap();
    assert_eq!(response.status(), 200, "the request succeeded on the retry");
    let second = provider.cached_token().expect("a new token is cached");
    assert!(!second.same_token(&first), "the revoked token was replaced");
}

// ---- the declarative custom provider -----------------------------------------------------------

#[tokio::test]
async fn custom_basic_and_body_credentials() {
    let server = server!();
    for style in ["basic", "body"] {
        let provider = custom(server, CC_CLIENT_ID, CC_CLIENT_SECRET, style, Some("read write"));
        let token = provider.token().await.unwrap_or_else(|e| panic!("{style}: {e}"));
        assert_eq!(scopes_of(&token), ["read", "write"], "{style}");
        assert_eq!(hello(server, "/api/hello/", &token).await.0, 200, "{style}");
    }
    let (client, scopes) = tokensmith::custom::client(&custom_config(server, CC_CLIENT_ID, "x", "body", None)).unwrap();
    let request = client.build_request(&Grant::ClientCredentials, &scopes).unwrap();
    assert!(request.has_param("client_secret") && !request.has_header("authorization"), "body: in the body");
}

#[tokio::test]
async fn custom_special_character_secret() {
    let server = server!();
    for style in ["basic", "body"] {
        let provider = custom(server, SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, style, Some("read"));
        provider.token().await.unwrap_or_else(|e| panic!("{style}: DOT accepts the special secret: {e}"));
    }
    // `basic-raw` (no form encoding) is for servers that do not decode; DOT does, so it refuses.
    let raw = custom(server, SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, "basic-raw", Some("read"));
    assert_oauth(raw.token().await, OAuthErrorCode::InvalidClient, 401);
}

#[tokio::test]
async fn custom_scopes_and_errors() {
    let server = server!();
    let default = custom(server, CC_CLIENT_ID, CC_CLIENT_SECRET, "basic", None);
    assert_eq!(scopes_of(&default.token().await.unwrap()), ["read"]);
    let admin = custom(server, CC_CLIENT_ID, CC_CLIENT_SECRET, "basic", Some("admin"));
    assert_eq!(scopes_of(&admin.token().await.unwrap()), ["admin"]);

    let refused = custom(server, SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, "body", Some("admin"));
    assert_oauth(refused.token().await, OAuthErrorCode::InvalidScope, 400);
    let unknown = custom(server, CC_CLIENT_ID, CC_CLIENT_SECRET, "basic", Some("delete"));
    assert_oauth(unknown.token().await, OAuthErrorCode::InvalidScope, 400);
    for style in ["basic", "body"] {
        let wrong = custom(server, CC_CLIENT_ID, "not-the-secret", style, Some("read"));
        assert_oauth(wrong.token().await, OAuthErrorCode::InvalidClient, 401);
    }
}

/// As the generic-django renewal test, for the declarative dialect: the `TokenClient` the custom
/// provider builds from configuration, rebuilt on a manual clock (the facade builds its cache on the
/// system clock) and cached by core's `CachedProvider`, as `from_config` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_three_second_token_renewed_once_per_renewal_under_concurrency() {
    let Some(server) = dot::dedicated(3, "renewal-custom") else { return };
    let clock = Arc::new(ManualClock::new());
    let config = custom_config(&server, CC_CLIENT_ID, CC_CLIENT_SECRET, "basic", Some("read"));
    let (client, scopes) = tokensmith::custom::client(&config).unwrap();
    let client = TokenClient::builder("dot", client.endpoint().clone(), client.credentials().clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let cache = CachedProvider::builder(ClientCredentialsSource::new(client, scopes)).clock(clock.clone()).build();
    assert_renewals(&server, &SharedTokenProvider::new(cache), &clock).await;
}

#[tokio::test]
async fn custom_refresh_token_grant_rotates() {
    let server = server!();
    let token = authorized_token(server, &code_client(server)).await;
    let first_refresh = token.refresh_token().cloned().unwrap();

    let mut config = custom_config(server, CODE_CLIENT_ID, CODE_CLIENT_SECRET, "basic", None);
    config.grant = Some("refresh_token".to_owned());
    config.refresh_token = Some(tokensmith::Secret::value(first_refresh.secret().expose_secret()));
    // A rotating grant needs a lasting store (the in-memory one would replay a spent token next run).
    let dir = std::env::temp_dir().join(format!("tokensmith-dot-refresh-{}", std::process::id()));
    config.store = Some(tokensmith::config::StoreConfig::File { path: dir.join("tokens.json") });
    let provider = tokensmith::from_config(&config).unwrap();
    let refreshed = provider.token().await.expect("the custom provider refreshes from the configured token");
    assert!(!refreshed.same_token(&token));
    assert_eq!(hello(server, "/api/hello/", &refreshed).await, (200, r#"{"hello": "alice"}"#.to_owned()));
    let second_refresh = refreshed.refresh_token().cloned().expect("a rotated refresh token");
    assert!(!second_refresh.same_as(&first_refresh));

    // DOT rejects the configured (now used) refresh token ...
    assert_oauth(
        code_client(server).request_token(&Grant::RefreshToken(first_refresh), &Scopes::empty()).await,
        OAuthErrorCode::InvalidGrant,
        400,
    );
    // ... and the provider goes on with the rotated one.
    provider.invalidate(&refreshed);
    let again = provider.token().await.expect("the next refresh uses the rotated refresh token");
    assert!(!again.same_token(&refreshed));
    std::fs::remove_dir_all(&dir).ok();
}
