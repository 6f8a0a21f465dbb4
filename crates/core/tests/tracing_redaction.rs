//! Everything the token lifecycle logs, captured at TRACE level over successes, retries, failures and
//! refreshes through the cache: every retry attempt is visible, and neither the client secret nor any
//! access or refresh token ever appears.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::cache::{ClientCredentialsSource, RefreshTokenSource};
use tokensmith_core::clock::{Clock, TokioClock};
use tokensmith_core::*;
use tokensmith_core::{
    error::{TransportError, TransportErrorKind},
    http::{HttpResponse, Transport},
    request::TokenRequest,
};

const CLIENT_SECRET: &str = "TRACE-CLIENT-SECRET: %+/&= 9x";
const ACCESS_TOKENS: [&str; 2] = ["TRACE-ACCESS-TOKEN-one-4f1c", "TRACE-ACCESS-TOKEN-two-8e2d"];
const REFRESH_TOKENS: [&str; 3] =
    ["TRACE-REFRESH-TOKEN-0-aa11", "TRACE-REFRESH-TOKEN-1-bb22", "TRACE-REFRESH-TOKEN-2-cc33"];

fn assert_clean(log: &str) {
    assert!(!log.is_empty(), "nothing was logged");
    let secrets = [CLIENT_SECRET].into_iter().chain(ACCESS_TOKENS).chain(REFRESH_TOKENS);
    for secret in secrets {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let pct = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string();
        for needle in [secret, &form, &pct, &secret[..secret.len() - 5]] {
            assert!(!log.contains(needle), "the log contains {needle:?}:\n{log}");
        }
    }
}

/// Plays back scripted replies; when they run out, refuses the connection.
#[derive(Debug)]
struct Scripted(Mutex<VecDeque<Result<HttpResponse, TransportError>>>);

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, _request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        self.0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(TransportError::new(TransportErrorKind::Connect, "script exhausted")))
    }
}

fn success(access: &str, refresh: &str) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse::json(
        200,
        format!(r#"{{"access_token":"{access}","token_type":"bearer","expires_in":300,"refresh_token":"{refresh}"}}"#),
    ))
}

/// A server that echoes everything it was sent in its error (the worst case).
fn echoing(status: u16, error: &str) -> Result<HttpResponse, TransportError> {
    let echo = format!("{CLIENT_SECRET} {} {}", ACCESS_TOKENS[0], REFRESH_TOKENS.join(" "));
    Ok(HttpResponse::json(status, serde_json::json!({"error": error, "error_description": echo}).to_string()))
}

fn client(script: Vec<Result<HttpResponse, TransportError>>, clock: Arc<dyn Clock>) -> TokenClient {
    let endpoint = TokenEndpoint::new("https://auth.example.test/oauth/token".parse().unwrap());
    TokenClient::builder("trace-test", endpoint, ClientCredentials::new("trace-client", CLIENT_SECRET))
        .transport(Arc::new(Scripted(Mutex::new(script.into()))))
        .retry(RetryPolicy::default().max_attempts(4).initial_backoff(Duration::from_millis(100)))
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn success_retries_and_failures_log_every_attempt_and_no_secret() {
    let (log, _guard) = testing::LogCapture::install();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let script = vec![
        Err(TransportError::new(TransportErrorKind::Connect, "connection refused")),
        Ok(HttpResponse::json(503, "{}").with_header("retry-after", "1")),
        echoing(500, "server_error"),
        success(ACCESS_TOKENS[0], REFRESH_TOKENS[0]),
    ];
    let cache = CachedProvider::builder(ClientCredentialsSource::new(client(script, clock.clone()), Scopes::empty()))
        .clock(clock)
        .build();
    let token = cache.token().await.unwrap();
    let _ = format!("{token:?} {cache:?}");
    tracing::info!(?token, ?cache, "the test logs the token and cache Debug output too");

    let text = log.text();
    for attempt in 1..=4 {
        assert!(text.contains(&format!("attempt={attempt}")), "attempt {attempt} is not visible:\n{text}");
    }
    assert_eq!(text.matches("retrying").count(), 3, "three retries:\n{text}");
    assert!(text.contains("token obtained"));
    assert!(text.contains("backoff_ms=1000"), "the Retry-After delay is logged:\n{text}");
    assert_clean(&text);
}

#[tokio::test(start_paused = true)]
async fn refusals_and_refreshes_log_no_secret() {
    let (log, _guard) = testing::LogCapture::install();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());

    // A refusal that echoes the secret and the tokens.
    let cc = CachedProvider::builder(ClientCredentialsSource::new(
        client(vec![echoing(401, "invalid_client")], clock.clone()),
        Scopes::empty(),
    ))
    .clock(clock.clone())
    .build();
    let error = cc.token().await.unwrap_err();
    tracing::error!(%error, ?error, "the caller logs the error");
    let backing_off = cc.token().await.unwrap_err();
    tracing::error!(%backing_off, ?backing_off, "the caller logs the back-off");

    // Refreshes through the cache: a success with rotation, a failure echoing the refresh token while the
    // old token is still valid, then one more rotation.
    let script = vec![
        success(ACCESS_TOKENS[1], REFRESH_TOKENS[1]),
        echoing(503, "temporarily_unavailable"),
        echoing(503, "temporarily_unavailable"),
        echoing(503, "temporarily_unavailable"),
        echoing(503, "temporarily_unavailable"),
        success(ACCESS_TOKENS[0], REFRESH_TOKENS[2]),
    ];
    let refresh = CachedProvider::builder(RefreshTokenSource::new(client(script, clock.clone()), Scopes::empty()))
        .clock(clock.clone())
        .build();
    let grant = AccessToken::builder(ACCESS_TOKENS[0])
        .expires_in(clock.system_time(), Duration::from_secs(300))
        .refresh_token(Some(RefreshToken::new(REFRESH_TOKENS[0])))
        .build();
    refresh.insert(grant).await.unwrap();
    tokio::time::advance(Duration::from_secs(250)).await;
    refresh.token().await.unwrap(); // rotated to 1
    tokio::time::advance(Duration::from_secs(250)).await;
    refresh.token().await.unwrap(); // four failed attempts; the old token is served
    tokio::time::advance(Duration::from_secs(5)).await;
    refresh.token().await.unwrap(); // rotated to 2
    refresh.invalidate(&refresh.token().await.unwrap());

    let text = log.text();
    assert!(text.contains("serving the still-valid token"), "{text}");
    assert!(text.contains("invalidated"), "{text}");
    assert_clean(&text);
}
