//! Discovery, the device grant and revocation against a scripted transport, on paused Tokio time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use url::Url;

use super::device::{MAX_EXPIRES_IN, MAX_INTERVAL, parse_device_authorization};
use super::*;
use crate::error::{OAuthErrorCode, TransportErrorKind};
use crate::store::{MemoryStore, TokenStore as _};
use crate::token::{AccessToken, RefreshToken, Scopes};

const SECRET: &str = "client-s3cret-value";
const DEVICE_CODE: &str = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS";

/// Answers from a script and keeps every request with the (Tokio) time it was sent.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<std::result::Result<HttpResponse, TransportError>>>,
    seen: Mutex<Vec<(tokio::time::Instant, TokenRequest)>>,
}

impl Scripted {
    fn new(answers: impl IntoIterator<Item = HttpResponse>) -> Arc<Self> {
        Arc::new(Scripted { answers: Mutex::new(answers.into_iter().map(Ok).collect()), seen: Mutex::default() })
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.seen.lock().unwrap().iter().map(|(_, r)| r.clone()).collect()
    }

    /// Seconds since `start` at which each request was sent.
    fn times(&self, start: tokio::time::Instant) -> Vec<u64> {
        self.seen.lock().unwrap().iter().map(|(at, _)| (*at - start).as_secs()).collect()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, request: &TokenRequest) -> std::result::Result<HttpResponse, TransportError> {
        self.seen.lock().unwrap().push((tokio::time::Instant::now(), request.clone()));
        self.answers.lock().unwrap().pop_front().unwrap_or_else(|| panic!("no answer scripted for {request:?}"))
    }
}

fn body(request: &TokenRequest) -> String {
    String::from_utf8(request.wire_body()).unwrap()
}

// ---- discovery ---------------------------------------------------------------------------------

fn metadata_json(issuer: &str) -> String {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": "https://auth.example.com/o/authorize/",
        "token_endpoint": "https://auth.example.com/o/token/",
        "device_authorization_endpoint": "https://auth.example.com/o/device-authorization/",
        "revocation_endpoint": "https://auth.example.com/o/revoke_token/",
        "grant_types_supported": ["authorization_code", DEVICE_CODE_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    })
    .to_string()
}

#[tokio::test]
async fn discovery_inserts_the_well_known_segment_before_the_issuer_path() {
    let transport = Scripted::new([HttpResponse::json(200, metadata_json("https://auth.example.com/tenant"))]);
    let metadata = discover(transport.as_ref(), "https://auth.example.com/tenant").await.unwrap();
    let requests = transport.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method(), http::Method::GET);
    assert_eq!(requests[0].url().as_str(), "https://auth.example.com/.well-known/oauth-authorization-server/tenant");
    assert_eq!(metadata.token_endpoint.unwrap().as_str(), "https://auth.example.com/o/token/");
    assert_eq!(metadata.device_authorization_endpoint.unwrap().path(), "/o/device-authorization/");
    assert_eq!(metadata.revocation_endpoint.unwrap().path(), "/o/revoke_token/");
    assert!(metadata.grant_types_supported.iter().any(|g| g == DEVICE_CODE_GRANT));
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    let transport = Scripted::new([
        HttpResponse::new(404, "text/html", "<h1>Not Found</h1>"),
        HttpResponse::json(200, metadata_json("https://auth.example.com/o")),
    ]);
    let metadata = discover(transport.as_ref(), "https://auth.example.com/o").await.unwrap();
    let urls: Vec<String> = transport.requests().iter().map(|r| r.url().to_string()).collect();
    assert_eq!(
        urls,
        [
            "https://auth.example.com/.well-known/oauth-authorization-server/o",
            "https://auth.example.com/o/.well-known/openid-configuration"
        ]
    );
    assert_eq!(metadata.issuer, "https://auth.example.com/o");
    assert_eq!(metadata.document_url.path(), "/o/.well-known/openid-configuration");
    // Only client_secret_post is listed: the endpoint sends the credentials in the body.
    assert_eq!(metadata.endpoint().unwrap().get_credential_style().name(), "body");
}

#[tokio::test]
async fn discovery_refuses_a_document_for_another_issuer() {
    let transport = Scripted::new([HttpResponse::json(200, metadata_json("https://evil.example.com"))]);
    let err = discover(transport.as_ref(), "https://auth.example.com").await.unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "issuer"), "{err:?}");
    assert!(err.to_string().contains("`https://evil.example.com`, not `https://auth.example.com`"), "{err}");
    // A bare origin matches with or without its trailing slash.
    let transport = Scripted::new([HttpResponse::json(200, metadata_json("https://auth.example.com"))]);
    assert!(discover(transport.as_ref(), "https://auth.example.com/").await.is_ok());
}

#[tokio::test]
async fn discovery_refuses_insecure_issuers_and_endpoints_and_large_documents() {
    let transport = Scripted::new([]);
    let err = discover(transport.as_ref(), "http://auth.example.com").await.unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "issuer"), "{err:?}");
    assert!(transport.requests().is_empty(), "nothing is sent to an insecure issuer");

    let document = metadata_json("https://auth.example.com")
        .replace("https://auth.example.com/o/token/", "http://auth.example.com/o/token/");
    let transport = Scripted::new([HttpResponse::json(200, document)]);
    let err = discover(transport.as_ref(), "https://auth.example.com").await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }) && err.to_string().contains("token_endpoint"), "{err:?}");

    let huge = format!(r#"{{"issuer":"https://auth.example.com","x":"{}"}}"#, "a".repeat(300 * 1024));
    let transport = Scripted::new([HttpResponse::json(200, huge)]);
    let err = discover(transport.as_ref(), "https://auth.example.com").await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }) && err.to_string().contains("limit"), "{err:?}");

    let transport = Scripted::new([HttpResponse::json(404, "{}"), HttpResponse::json(404, "{}")]);
    let err = discover(transport.as_ref(), "https://auth.example.com").await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }) && err.to_string().contains("HTTP 404"), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn the_metadata_cache_fetches_each_issuer_once_per_ttl() {
    let issuer = "https://auth.example.com";
    let transport =
        Scripted::new([HttpResponse::json(200, metadata_json(issuer)), HttpResponse::json(200, metadata_json(issuer))]);
    let cache = MetadataCache::new(transport.clone()).ttl(Duration::from_secs(60));
    let first = cache.get(issuer).await.unwrap();
    let second = cache.get(issuer).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(transport.requests().len(), 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    cache.get(issuer).await.unwrap();
    assert_eq!(transport.requests().len(), 2, "a stale document is fetched again");
}

// ---- device grant ------------------------------------------------------------------------------

fn client(transport: Arc<Scripted>) -> FlowClient {
    let endpoint = TokenEndpoint::new(Url::parse("https://auth.example.com/o/token/").unwrap());
    FlowClient::builder(endpoint, ClientCredentials::new("device-app", SECRET)).transport(transport).build().unwrap()
}

fn device_answer(extra: serde_json::Value) -> HttpResponse {
    let mut answer = serde_json::json!({
        "device_code": DEVICE_CODE,
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://auth.example.com/device",
        "verification_uri_complete": "https://auth.example.com/device?user_code=WDJB-MJHT",
        "expires_in": 1800,
    });
    for (k, v) in extra.as_object().unwrap() {
        answer[k] = v.clone();
    }
    HttpResponse::json(200, answer.to_string())
}

fn poll_error(code: &str) -> HttpResponse {
    HttpResponse::json(400, format!(r#"{{"error":"{code}"}}"#))
}

fn token_answer() -> HttpResponse {
    HttpResponse::json(
        200,
        r#"{"access_token":"at-0123456789abcdefghij","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-0123456789abcdefghij"}"#,
    )
}

fn device_url() -> Url {
    Url::parse("https://auth.example.com/o/device-authorization/").unwrap()
}

#[tokio::test(start_paused = true)]
async fn device_authorization_request_and_answer() {
    let transport = Scripted::new([device_answer(serde_json::json!({"interval": 3}))]);
    let client = client(transport.clone());
    let auth = client.request_device_authorization(&device_url(), &Scopes::parse("read write")).await.unwrap();
    let request = &transport.requests()[0];
    assert_eq!(body(request), "scope=read+write&client_id=device-app");
    assert!(request.has_header("authorization"), "the client authenticates with its credential style");
    assert_eq!(auth.user_code(), "WDJB-MJHT");
    assert_eq!(auth.verification_uri().as_str(), "https://auth.example.com/device");
    assert_eq!(auth.verification_uri_complete().unwrap().query(), Some("user_code=WDJB-MJHT"));
    assert_eq!(auth.expires_in(), Duration::from_secs(1800));
    assert_eq!(auth.interval(), Duration::from_secs(3));
    assert_eq!(auth.device_code().expose_secret(), DEVICE_CODE);
    let debug = format!("{auth:?}");
    assert!(!debug.contains(DEVICE_CODE) && debug.contains("WDJB-MJHT"), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn device_answers_are_bounded() {
    let parse = |extra| parse_device_authorization(&device_answer(extra), Scopes::empty());
    assert_eq!(parse(serde_json::json!({})).unwrap().interval(), Duration::from_secs(5), "RFC 8628's default");
    assert_eq!(parse(serde_json::json!({"interval": 0})).unwrap().interval(), Duration::from_secs(1));
    assert_eq!(parse(serde_json::json!({"interval": u64::MAX})).unwrap().interval(), MAX_INTERVAL);
    assert_eq!(parse(serde_json::json!({"interval": "7"})).unwrap().interval(), Duration::from_secs(7));
    assert_eq!(parse(serde_json::json!({"expires_in": u64::MAX})).unwrap().expires_in(), MAX_EXPIRES_IN);
    for bad in [
        serde_json::json!({"expires_in": 0}),
        serde_json::json!({"expires_in": -5}),
        serde_json::json!({"expires_in": "soon"}),
        serde_json::json!({"interval": [1]}),
        serde_json::json!({"user_code": "AB\u{1b}[2J"}),
        serde_json::json!({"device_code": 5}),
        serde_json::json!({"verification_uri": "javascript:alert(1)"}),
        serde_json::json!({"user_code": null}),
    ] {
        let err = parse(bad.clone()).unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{bad}: {err:?}");
        assert!(!err.to_string().contains(DEVICE_CODE), "{err}");
    }
}

/// Runs the whole device flow against `polls` (answers to the token requests) and returns the
/// result, the seconds at which the token requests were sent, and the transport.
async fn device_flow(device: HttpResponse, polls: Vec<HttpResponse>) -> (Result<AccessToken>, Vec<u64>, Arc<Scripted>) {
    let transport = Scripted::new(std::iter::once(device).chain(polls));
    let client = client(transport.clone());
    let auth = client.request_device_authorization(&device_url(), &Scopes::parse("read")).await.unwrap();
    let start = tokio::time::Instant::now();
    let result = client.poll_device_token(&auth).await;
    let times = transport.times(start);
    (result, times[1..].to_vec(), transport)
}

#[tokio::test(start_paused = true)]
async fn device_polling_waits_the_interval_and_slows_down() {
    let (result, times, transport) = device_flow(
        device_answer(serde_json::json!({})),
        vec![
            poll_error("authorization_pending"),
            poll_error("slow_down"),
            poll_error("authorization_pending"),
            token_answer(),
        ],
    )
    .await;
    let token = result.unwrap();
    assert_eq!(token.secret().expose_secret(), "at-0123456789abcdefghij");
    assert!(token.refresh_token().is_some());
    assert_eq!(token.scopes().iter().collect::<Vec<_>>(), ["read"], "the scopes asked for");
    // 5 s, then 5 s, then slow_down: 10 s, 10 s.
    assert_eq!(times, [5, 10, 20, 30]);
    let poll = &transport.requests()[1];
    assert_eq!(
        poll.redacted_body(),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=%5Bredacted%5D&client_id=device-app"
    );
    assert!(body(poll).contains(DEVICE_CODE), "the wire carries the device code");
}

#[tokio::test(start_paused = true)]
async fn device_polling_ends_on_access_denied_and_expired_token() {
    let (result, times, _) = device_flow(
        device_answer(serde_json::json!({})),
        vec![poll_error("authorization_pending"), poll_error("access_denied")],
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::AccessDenied), "{err:?}");
    assert_eq!(times, [5, 10]);

    let (result, _, _) = device_flow(device_answer(serde_json::json!({})), vec![poll_error("expired_token")]).await;
    assert_eq!(result.unwrap_err().oauth_code(), Some(&OAuthErrorCode::ExpiredToken));

    let (result, _, _) = device_flow(device_answer(serde_json::json!({})), vec![poll_error("invalid_client")]).await;
    assert_eq!(result.unwrap_err().oauth_code(), Some(&OAuthErrorCode::InvalidClient), "other errors end polling");
}

#[tokio::test(start_paused = true)]
async fn device_polling_never_passes_expires_in() {
    let (result, times, _) = device_flow(
        device_answer(serde_json::json!({"expires_in": 12})),
        vec![poll_error("authorization_pending"), poll_error("authorization_pending")],
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::ExpiredToken), "{err:?}");
    assert_eq!(times, [5, 10], "no request at 15 s: the code expired at 12 s");
    assert!(err.to_string().contains("start the device authorization again"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn device_polling_backs_off_on_server_errors() {
    let (result, times, _) = device_flow(
        device_answer(serde_json::json!({})),
        vec![HttpResponse::json(503, "{}"), poll_error("authorization_pending"), token_answer()],
    )
    .await;
    result.unwrap();
    assert_eq!(times, [5, 15, 25], "a 503 doubles the interval");
}

#[cfg(feature = "testing")]
#[tokio::test(start_paused = true)]
async fn no_secret_in_errors_or_logs_of_the_device_flow() {
    let (log, guard) = crate::testing::LogCapture::install();
    // A server that echoes everything it was sent.
    let echo =
        format!(r#"{{"error":"access_denied","error_description":"device_code={DEVICE_CODE} secret={SECRET}"}}"#);
    let (result, _, transport) = device_flow(
        device_answer(serde_json::json!({})),
        vec![poll_error("authorization_pending"), HttpResponse::json(400, echo)],
    )
    .await;
    drop(guard);
    let err = result.unwrap_err();
    let text = format!("{err} {err:?} {:?} {}", transport.requests(), log.text());
    for secret in [DEVICE_CODE, SECRET, &DEVICE_CODE[..12], &SECRET[..10]] {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
    assert!(log.text().contains("device authorization ended"), "the log has the flow");
}

#[tokio::test(start_paused = true)]
async fn device_poll_timeouts_are_bounded_by_the_request_timeout() {
    #[derive(Debug)]
    struct Hangs;
    #[async_trait]
    impl Transport for Hangs {
        async fn send(&self, _: &TokenRequest) -> std::result::Result<HttpResponse, TransportError> {
            std::future::pending().await
        }
    }
    let endpoint = TokenEndpoint::new(Url::parse("https://auth.example.com/o/token/").unwrap());
    let client = FlowClient::builder(endpoint, ClientCredentials::new("device-app", SECRET))
        .transport(Arc::new(Hangs))
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = client.request_device_authorization(&device_url(), &Scopes::empty()).await.unwrap_err();
    assert!(matches!(err, Error::Transport(ref e) if e.kind() == TransportErrorKind::Timeout), "{err:?}");
}

// ---- revocation --------------------------------------------------------------------------------

fn stored_token() -> AccessToken {
    AccessToken::builder("at-0123456789abcdefghij")
        .refresh_token(Some(RefreshToken::new("rt-0123456789abcdefghij")))
        .build()
}

fn revocation_url() -> Url {
    Url::parse("https://auth.example.com/o/revoke_token/").unwrap()
}

#[tokio::test]
async fn revocation_sends_the_refresh_token_then_the_access_token_and_forgets_them() {
    let transport = Scripted::new([HttpResponse::new(200, "text/plain", ""), HttpResponse::new(200, "text/plain", "")]);
    let client = client(transport.clone());
    let store = MemoryStore::new();
    store.save("k", &stored_token()).await.unwrap();
    assert!(client.revoke_stored(&revocation_url(), &store, "k").await.unwrap());
    assert!(store.load("k").await.unwrap().is_none(), "removed from the store");
    let bodies: Vec<String> = transport.requests().iter().map(body).collect();
    assert_eq!(
        bodies,
        [
            "token=rt-0123456789abcdefghij&token_type_hint=refresh_token&client_id=device-app",
            "token=at-0123456789abcdefghij&token_type_hint=access_token&client_id=device-app"
        ]
    );
    assert!(transport.requests().iter().all(|r| r.has_header("authorization")));
    assert!(!client.revoke_stored(&revocation_url(), &store, "k").await.unwrap(), "nothing left to revoke");
}

#[tokio::test]
async fn a_refused_revocation_is_typed_and_keeps_the_store() {
    let transport = Scripted::new([HttpResponse::json(
        400,
        r#"{"error":"unsupported_token_type","error_description":"no rt-0123456789abcdefghij here"}"#,
    )]);
    let client = client(transport.clone());
    let store = MemoryStore::new();
    store.save("k", &stored_token()).await.unwrap();
    let err = client.revoke_stored(&revocation_url(), &store, "k").await.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::UnsupportedTokenType), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("rt-0123456789abcdefghij"));
    assert!(store.load("k").await.unwrap().is_some(), "kept: the grant is still alive");
    assert_eq!(transport.requests().len(), 1, "the access token is not sent after a failure");
}

#[tokio::test]
async fn a_manager_revokes_a_users_grant_then_forgets_the_user() {
    let transport = Scripted::new([HttpResponse::new(200, "text/plain", ""), HttpResponse::new(200, "text/plain", "")]);
    let client = client(transport.clone());
    let source = crate::cache::testkit::Source::new(Duration::from_secs(300), true);
    let store = Arc::new(MemoryStore::new());
    let manager = crate::manager::TokenManager::for_users(source.clone()).store(store.clone()).build();
    let alice = "alice".to_owned();
    manager.insert(&alice, stored_token()).await.unwrap();
    let store_key = "test-key/alice";
    assert!(store.load(store_key).await.unwrap().is_some(), "the set is stored under {store_key}");

    assert!(manager.revoke(&alice, &client, &revocation_url()).await.unwrap());
    let bodies: Vec<String> = transport.requests().iter().map(body).collect();
    assert_eq!(
        bodies,
        [
            "token=rt-0123456789abcdefghij&token_type_hint=refresh_token&client_id=device-app",
            "token=at-0123456789abcdefghij&token_type_hint=access_token&client_id=device-app"
        ]
    );
    assert!(!manager.is_loaded(&alice) && manager.is_empty(), "dropped from memory");
    assert!(store.load(store_key).await.unwrap().is_none(), "removed from the store");
    // Nothing left: no request (the script has no answer left, so one would panic).
    assert!(!manager.revoke(&alice, &client, &revocation_url()).await.unwrap());
    assert_eq!(source.0.fetches(), 0, "revoking never fetches");
}

/// A key not in memory: its record is found through the key's source, made by the factory.
#[tokio::test]
async fn a_manager_revokes_a_tenants_grant_it_has_not_loaded() {
    let transport = Scripted::new([HttpResponse::new(200, "text/plain", ""), HttpResponse::new(200, "text/plain", "")]);
    let client = client(transport.clone());
    let store = Arc::new(MemoryStore::new());
    store.save("tenant-source/acme", &stored_token()).await.unwrap();
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = made.clone();
    let manager = crate::manager::TokenManager::for_clients(move |_: &String| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let source = crate::provide_token_fn(|| async { Err(crate::cache::testkit::refused()) });
        Ok(Arc::new(crate::cache::ProviderSource::new(source, "tenant-source")) as Arc<dyn crate::cache::TokenSource>)
    })
    .store(store.clone())
    .build();

    assert!(manager.revoke(&"acme".to_owned(), &client, &revocation_url()).await.unwrap());
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1, "the factory named the record");
    assert_eq!(transport.requests().len(), 2);
    assert!(store.load("tenant-source/acme").await.unwrap().is_none());
    assert!(manager.is_empty(), "revoking loads nothing");
}

#[tokio::test]
async fn a_manager_keeps_a_users_grant_the_server_would_not_revoke() {
    let transport = Scripted::new([HttpResponse::json(503, r#"{"error":"temporarily_unavailable"}"#)]);
    let client = client(transport.clone());
    let source = crate::cache::testkit::Source::new(Duration::from_secs(300), true);
    let manager = crate::manager::TokenManager::for_users(source.clone()).build();
    let alice = "alice".to_owned();
    manager.insert(&alice, stored_token()).await.unwrap();

    let err = manager.revoke(&alice, &client, &revocation_url()).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("rt-0123456789abcdefghij"), "{err:?}");
    assert_eq!(transport.requests().len(), 1, "the access token is not sent after a failure");
    // The grant is alive: the set is read back from the store, with no fetch.
    let token = manager.token(&alice).await.unwrap();
    assert!(token.same_token(&stored_token()));
    assert_eq!(token.refresh_token().unwrap().secret().expose_secret(), "rt-0123456789abcdefghij");
    assert_eq!(source.0.fetches(), 0);
}

#[tokio::test]
async fn revocation_urls_follow_the_https_rule() {
    let client = client(Scripted::new([]));
    let err = client.revoke(&Url::parse("http://auth.example.com/revoke").unwrap(), &stored_token()).await.unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "revocation_url"), "{err:?}");
}

#[test]
fn flow_client_debug_shows_no_secret() {
    let text = format!("{:?}", client(Scripted::new([])));
    assert!(!text.contains(SECRET), "{text}");
}
