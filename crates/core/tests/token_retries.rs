//! Retries inside one token fetch (`TokenClient::request_token`): exponential backoff with jitter on
//! connect errors, timeouts, 408, 429 and 5xx, and OAuth `server_error`/`temporarily_unavailable` at any
//! status; `Retry-After` honoured (seconds and HTTP date); never on the other OAuth errors; a grant that
//! spends a code or refresh token only when surely unprocessed; bounded attempts and an overall
//! deadline. On `MockTransport` and tokio's paused clock.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokensmith_core::cache::ClientCredentialsSource;
use tokensmith_core::clock::TokioClock;
use tokensmith_core::*;
use tokensmith_core::{
    error::{TransportError, TransportErrorKind},
    http::{HttpResponse, MockTransport, Transport},
    request::{Grant, TokenRequest},
    style::CredentialStyle,
};

type Reply = Result<HttpResponse, TransportError>;

fn ok() -> Reply {
    Ok(HttpResponse::json(200, r#"{"access_token":"at","token_type":"Bearer","expires_in":900}"#))
}

fn status(code: u16) -> Reply {
    Ok(HttpResponse::json(code, r#"{"message":"try later"}"#))
}

fn oauth(code: u16, error: &str) -> Reply {
    Ok(HttpResponse::json(code, format!(r#"{{"error":"{error}"}}"#)))
}

fn transport(kind: TransportErrorKind) -> Reply {
    Err(TransportError::new(kind, "simulated"))
}

/// A `MockTransport` expecting exactly `replies.len()` requests, answering them in order and recording
/// when (tokio time) each arrived.
fn scripted(replies: Vec<Reply>) -> (MockTransport, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = times.clone();
    let mut replies: VecDeque<Reply> = replies.into();
    let mut mock = MockTransport::new();
    mock.expect_send().times(replies.len()).returning(move |_| {
        seen.lock().unwrap().push(tokio::time::Instant::now());
        replies.pop_front().unwrap()
    });
    (mock, times)
}

/// A transport the test keeps a handle on while the client owns it.
#[derive(Debug)]
struct Shared<T>(Arc<T>);

#[async_trait]
impl<T: Transport> Transport for Shared<T> {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.0.send(request).await
    }
}

fn client(transport: impl Transport, retry: RetryPolicy) -> TokenClient {
    let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap());
    TokenClient::builder("retry-test", endpoint, ClientCredentials::new("id", "secret"))
        .transport(Arc::new(transport))
        .retry(retry)
        .clock(Arc::new(TokioClock::new()))
        .build()
        .unwrap()
}

async fn fetch(client: &TokenClient) -> Result<AccessToken> {
    client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await
}

fn gaps(times: &Mutex<Vec<tokio::time::Instant>>) -> Vec<Duration> {
    times.lock().unwrap().windows(2).map(|w| w[1] - w[0]).collect()
}

const MS: fn(u64) -> Duration = Duration::from_millis;

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_exponential_backoff() {
    let (mock, times) = scripted(vec![status(503), status(500), status(502), ok()]);
    let client = client(mock, RetryPolicy::default().max_attempts(4).jitter(false).initial_backoff(MS(200)));
    fetch(&client).await.unwrap();
    assert_eq!(gaps(&times), [MS(200), MS(400), MS(800)]);
}

#[tokio::test(start_paused = true)]
async fn backoff_is_jittered_and_capped() {
    let replies = (0..6).map(|_| status(503)).chain([ok()]).collect();
    let (mock, times) = scripted(replies);
    let policy = RetryPolicy::default().max_attempts(7).initial_backoff(MS(200)).max_backoff(MS(1000));
    fetch(&client(mock, policy)).await.unwrap();
    // Each delay is between half and all of min(200 ms × 2^n, 1 s).
    let ceilings = [200u64, 400, 800, 1000, 1000, 1000];
    for (gap, ceiling) in gaps(&times).into_iter().zip(ceilings) {
        assert!(gap >= MS(ceiling / 2) && gap <= MS(ceiling), "delay {gap:?} outside [{}, {ceiling}] ms", ceiling / 2);
    }
}

#[tokio::test(start_paused = true)]
async fn connect_errors_timeouts_broken_connections_and_429_are_retried() {
    let replies = vec![
        transport(TransportErrorKind::Connect),
        transport(TransportErrorKind::Timeout),
        transport(TransportErrorKind::Io),
        status(429),
        status(408),
        ok(),
    ];
    let (mock, _) = scripted(replies);
    fetch(&client(mock, RetryPolicy::default().max_attempts(6))).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_honoured() {
    let (mock, times) = scripted(vec![Ok(HttpResponse::json(429, "{}").with_header("retry-after", "7")), ok()]);
    fetch(&client(mock, RetryPolicy::default().jitter(false))).await.unwrap();
    assert_eq!(gaps(&times), [Duration::from_secs(7)], "Retry-After: 7 is a floor on the delay");
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(6));
    let (mock, times) = scripted(vec![Ok(HttpResponse::json(503, "{}").with_header("retry-after", &at)), ok()]);
    fetch(&client(mock, RetryPolicy::default().jitter(false))).await.unwrap();
    let gap = gaps(&times)[0];
    // The date has a resolution of one second.
    assert!(gap >= Duration::from_secs(5) && gap <= Duration::from_secs(6), "waited {gap:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_deadline_gives_up_at_once() {
    let (mock, _) = scripted(vec![Ok(HttpResponse::json(429, "{}").with_header("retry-after", "120"))]);
    let started = tokio::time::Instant::now();
    let error = fetch(&client(mock, RetryPolicy::default().deadline(Duration::from_secs(30)))).await.unwrap_err();
    assert_eq!(error.status(), Some(429));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)), "the caller can see when to come back");
    assert_eq!(started.elapsed(), Duration::ZERO, "no pointless wait");
}

/// `server_error` and `temporarily_unavailable` say the server may answer differently later, whatever the
/// status it sent them with (RFC 6749 §5.2 has them with 400 when a 5xx cannot be used).
#[tokio::test(start_paused = true)]
async fn oauth_server_error_and_temporarily_unavailable_are_retried_at_any_status() {
    let (mock, times) = scripted(vec![
        oauth(400, "temporarily_unavailable"),
        oauth(400, "server_error"),
        oauth(200, "server_error"),
        ok(),
    ]);
    fetch(&client(mock, RetryPolicy::default().max_attempts(4))).await.unwrap();
    assert_eq!(times.lock().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn oauth_client_errors_are_never_retried() {
    for (code, error) in [
        (401, "invalid_client"),
        (400, "invalid_client"),
        (400, "invalid_grant"),
        (400, "invalid_request"),
        (400, "unauthorized_client"),
        (400, "unsupported_grant_type"),
        (400, "invalid_scope"),
    ] {
        let (mock, _) = scripted(vec![oauth(code, error)]);
        let result = fetch(&client(mock, RetryPolicy::default().max_attempts(5))).await;
        let err = result.unwrap_err();
        assert!(matches!(err, Error::OAuth(_)), "{error}: {err:?}");
        assert_eq!(err.oauth_code().unwrap().to_string(), error);
        // `times(1)` on the mock fails the test if a second request was sent.
    }
}

#[tokio::test(start_paused = true)]
async fn other_client_errors_and_permanent_transport_failures_are_not_retried() {
    for reply in [
        status(400),
        status(401),
        status(403),
        status(404),
        transport(TransportErrorKind::Tls),
        transport(TransportErrorKind::RedirectRefused),
        transport(TransportErrorKind::BodyTooLarge),
        Ok(HttpResponse::json(200, r#"{"no_token":"here"}"#)),
    ] {
        let (mock, _) = scripted(vec![reply]);
        assert!(fetch(&client(mock, RetryPolicy::default().max_attempts(5))).await.is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded() {
    let (mock, _) = scripted((0..5).map(|_| status(503)).collect());
    let error = fetch(&client(mock, RetryPolicy::default().max_attempts(5))).await.unwrap_err();
    assert_eq!(error.status(), Some(503), "the last failure is reported: {error}");

    let (mock, _) = scripted(vec![status(503)]);
    fetch(&client(mock, RetryPolicy::none())).await.unwrap_err();
}

/// A token endpoint that answers after `delay`, with 503.
#[derive(Debug)]
struct Slow {
    delay: Duration,
    attempts: Mutex<u32>,
}

#[async_trait]
impl Transport for Slow {
    async fn send(&self, _request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        *self.attempts.lock().unwrap() += 1;
        tokio::time::sleep(self.delay).await;
        status(503)
    }
}

#[tokio::test(start_paused = true)]
async fn the_overall_deadline_bounds_a_hanging_request() {
    let slow = Slow { delay: Duration::from_secs(3600), attempts: Mutex::new(0) };
    let client = client(slow, RetryPolicy::default().max_attempts(10).deadline(Duration::from_secs(3)));
    let started = tokio::time::Instant::now();
    let error = fetch(&client).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(matches!(error, Error::Transport(ref e) if e.kind() == TransportErrorKind::Timeout), "{error:?}");
}

/// Hangs on the first request, answers the later ones at once.
#[derive(Debug, Default)]
struct HangsOnce {
    attempts: Mutex<u32>,
}

#[async_trait]
impl Transport for HangsOnce {
    async fn send(&self, _request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            *attempts
        };
        if attempt == 1 {
            std::future::pending::<()>().await;
        }
        ok()
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_is_cut_by_the_attempt_timeout_and_retried() {
    let policy = RetryPolicy::default().jitter(false).initial_backoff(MS(200)).attempt_timeout(Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    let token = fetch(&client(HangsOnce::default(), policy)).await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(900));
    // 2 s for the hung attempt, 200 ms of backoff, then an answer at once.
    assert_eq!(started.elapsed(), Duration::from_millis(2_200));
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_is_named_when_it_ends_the_fetch() {
    let slow = Slow { delay: Duration::from_secs(3600), attempts: Mutex::new(0) };
    let policy = RetryPolicy::default().max_attempts(1).attempt_timeout(Duration::from_secs(4));
    let started = tokio::time::Instant::now();
    let error = fetch(&client(slow, policy)).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert!(matches!(error, Error::Transport(ref e) if e.kind() == TransportErrorKind::Timeout), "{error:?}");
    assert!(error.to_string().contains("attempt timeout of 4s"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_overall_deadline_bounds_retries() {
    let slow = Arc::new(Slow { delay: Duration::from_secs(1), attempts: Mutex::new(0) });
    let policy = RetryPolicy::default()
        .max_attempts(100)
        .jitter(false)
        .initial_backoff(Duration::from_secs(1))
        .deadline(Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    fetch(&client(Shared(slow.clone()), policy)).await.unwrap_err();
    // 0–1 s attempt 1, 1 s backoff, 2–3 s attempt 2; a 2 s backoff would end at the deadline: stop.
    assert_eq!(*slow.attempts.lock().unwrap(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_through_a_cached_client_send_one_request() {
    let mut mock = MockTransport::new();
    mock.expect_send().times(1).returning(|_| ok());
    let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap());
    let client = TokenClient::builder("burst", endpoint, ClientCredentials::new("id", "secret"))
        .transport(Arc::new(mock))
        .build()
        .unwrap();
    let cache = CachedProvider::new(ClientCredentialsSource::new(client, Scopes::empty()));
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache.token().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // The mock's `times(1)` is checked when it is dropped with the cache.
    drop(cache);
}

/// A code or refresh token may be spent once the server has processed the request, so a consuming
/// grant is retried only when the server surely did not act on it: connect errors, 429 and 503.
#[tokio::test(start_paused = true)]
async fn consuming_grants_are_retried_only_when_surely_unprocessed() {
    let refresh = Grant::RefreshToken(RefreshToken::new("rt"));
    let policy = || RetryPolicy::default().max_attempts(4).initial_backoff(MS(10));
    // Not processed: retried until success.
    let (mock, _) = scripted(vec![transport(TransportErrorKind::Connect), status(503), status(429), ok()]);
    client(mock, policy()).request_token(&refresh, &Scopes::empty()).await.unwrap();
    // Possibly processed: exactly one request each, the error returned.
    for reply in [transport(TransportErrorKind::Timeout), transport(TransportErrorKind::Io), status(500), status(502)] {
        let (mock, times) = scripted(vec![reply]);
        let err = client(mock, policy()).request_token(&refresh, &Scopes::empty()).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(times.lock().unwrap().len(), 1);
    }
    // The same failure is retried for client credentials, which spend nothing.
    let (mock, times) = scripted(vec![transport(TransportErrorKind::Timeout), ok()]);
    fetch(&client(mock, policy())).await.unwrap();
    assert_eq!(times.lock().unwrap().len(), 2);
}

/// Records the body of every request it answers.
#[derive(Debug, Default)]
struct Bodies(Mutex<Vec<String>>);

#[async_trait]
impl Transport for Bodies {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.0.lock().unwrap().push(String::from_utf8(request.wire_body()).unwrap());
        ok()
    }
}

#[tokio::test]
async fn the_kept_client_credentials_request_follows_the_scopes_asked_for() {
    let bodies = Arc::new(Bodies::default());
    let client = client(Shared(bodies.clone()), RetryPolicy::none());
    for scopes in ["a", "a", "b c", "a", ""] {
        client.request_token(&Grant::ClientCredentials, &Scopes::parse(scopes)).await.unwrap();
    }
    client.request_token(&Grant::RefreshToken(RefreshToken::new("rt")), &Scopes::parse("a")).await.unwrap();
    assert_eq!(
        *bodies.0.lock().unwrap(),
        [
            "grant_type=client_credentials&scope=a",
            "grant_type=client_credentials&scope=a",
            "grant_type=client_credentials&scope=b+c",
            "grant_type=client_credentials&scope=a",
            "grant_type=client_credentials",
            "grant_type=refresh_token&refresh_token=rt&scope=a",
        ]
    );
}

/// Puts a new `x-n` header value on every request it shapes, like a style that signs a fresh client
/// assertion; says whether its requests may be reused as it is told.
#[derive(Debug)]
struct Counting {
    applied: std::sync::atomic::AtomicUsize,
    reusable: bool,
}

impl CredentialStyle for Counting {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let n = self.applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        request.set_param("client_id", credentials.client_id());
        request.set_header("x-n", n.to_string());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "counting"
    }

    fn reusable(&self) -> bool {
        self.reusable
    }
}

/// Records the `x-n` header of every request it answers.
#[derive(Debug, Default)]
struct Headers(Mutex<Vec<String>>);

#[async_trait]
impl Transport for Headers {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        let headers = request.wire_headers().unwrap();
        self.0.lock().unwrap().push(headers["x-n"].to_str().unwrap().to_owned());
        ok()
    }
}

#[tokio::test]
async fn a_style_that_is_not_reusable_shapes_every_request_anew() {
    for reusable in [false, true] {
        let style = Arc::new(Counting { applied: Default::default(), reusable });
        let headers = Arc::new(Headers::default());
        let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap())
            .credential_style(style.clone());
        let client = TokenClient::builder("style-test", endpoint, ClientCredentials::new("id", "secret"))
            .transport(Arc::new(Shared(headers.clone())))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        for _ in 0..3 {
            fetch(&client).await.unwrap();
        }
        let seen = headers.0.lock().unwrap().clone();
        // `build` shapes one request to check the configuration: n = 1.
        if reusable {
            assert_eq!(seen, ["2", "2", "2"], "built once, sent three times");
        } else {
            assert_eq!(seen, ["2", "3", "4"], "shaped for every request");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hostile_retry_after_is_capped_and_not_waited_for() {
    // Issue 15, item 1: `Retry-After: 18446744073709551615` overflowed `Instant + Duration` and panicked.
    for value in ["18446744073709551615", "99999999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let reply = Ok(HttpResponse::json(503, "{}").with_header("retry-after", value));
        let (mock, times) = scripted(vec![reply]);
        let started = tokio::time::Instant::now();
        let error =
            client(mock, RetryPolicy::default()).request_token(&Grant::ClientCredentials, &Scopes::empty()).await;
        let error = error.unwrap_err();
        assert!(matches!(error, Error::Http(_)), "{value}: {error:?}");
        assert_eq!(times.lock().unwrap().len(), 1, "{value}: not retried");
        assert!(started.elapsed() < Duration::from_secs(1), "{value}: not waited for");
        assert!(error.retry_after().unwrap() <= Duration::from_secs(86_400), "{value}: capped");
        assert!(error.to_string().contains("the server asked to wait"), "{value}: {error}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_deadline_or_attempt_timeout_does_not_overflow() {
    let (mock, _) = scripted(vec![ok()]);
    let retry =
        RetryPolicy::default().deadline(Duration::MAX).attempt_timeout(Duration::MAX).max_backoff(Duration::MAX);
    let token = client(mock, retry).request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
    assert!(token.lifetime() > Duration::ZERO);
}
