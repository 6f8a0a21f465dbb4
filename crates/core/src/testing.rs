//! Test support (feature `testing`): a fake token endpoint, a manual clock, the conformance suite
//! every provider crate runs (as object_store's `integration.rs` is run by each backend), and a
//! capture of everything logged, to check that no secret reaches a log line.
//!
//! The suite needs no network and no sandbox: the provider under test gets a [`FakeEndpoint`] as its
//! transport and a [`ManualClock`], so time moves only when the suite says so.
//!
//! ```
//! use tokensmith_core::testing::Conformance;
//! use tokensmith_core::{CachedProvider, ClientCredentials, cache::ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! Conformance::new(|h| {
//!     let endpoint = TokenEndpoint::new(format!("{}/token", h.base_url).parse().unwrap());
//!     let client = TokenClient::builder("example", endpoint, ClientCredentials::new(h.client_id, h.client_secret))
//!         .transport(h.transport)
//!         .clock(h.clock.clone())
//!         .build()?;
//!     Ok(CachedProvider::builder(ClientCredentialsSource::new(client, Scopes::empty())).clock(h.clock).build())
//! })
//! .run()
//! .await;
//! # }
//! ```

// This module exists to fail tests loudly: panicking on a broken expectation is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
// Test support: a panic here is a failing test, not a failure in production code.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use secrecy::ExposeSecret as _;

use crate::clock::Clock;
use crate::error::{Error, OAuthErrorCode, Result, TransportError};
use crate::http::{HttpResponse, Transport};
use crate::provider::{SharedTokenProvider, TokenProvider};
use crate::request::TokenRequest;
use crate::token::AccessToken;

/// The client id the suite hands to providers.
pub const CLIENT_ID: &str = "conformance-client";
/// The client secret the suite hands to providers: characters encodings disagree on, so that a leak
/// is found in any encoding.
pub const CLIENT_SECRET: &str = "CONFORMANCE-secret: %+/&= x";
/// The base URL the suite hands to providers (nothing listens there: the transport is fake).
pub const BASE_URL: &str = "https://conformance.tokensmith.invalid";

/// Everything `tracing` records on the current thread while installed (every level, TRACE included),
/// as text: for tests that check that no secret reaches a log line.
///
/// ```
/// use tokensmith_core::testing::LogCapture;
///
/// let (log, guard) = LogCapture::install();
/// tracing::info!(attempt = 1, "token obtained");
/// drop(guard);
/// assert!(log.text().contains("token obtained"));
/// ```
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs a subscriber writing to a new capture for the current thread, until the guard is
    /// dropped. On a multi-thread runtime, only what runs on this thread is captured: use a
    /// current-thread runtime (`#[tokio::test]`'s default).
    pub fn install() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        // `tracing` caches, per call site, whether any subscriber wants it, and a global maximum
        // level, both computed from the subscribers alive at the time. With per-thread subscribers
        // coming and going in parallel tests, a call site first hit while none was installed could be
        // switched off for the later ones, and a log test would miss a line it should see. A global
        // subscriber that is interested in everything, and records nothing, keeps every call site on.
        static INTERESTED: std::sync::Once = std::sync::Once::new();
        INTERESTED.call_once(|| {
            // Fails only when the program installed a global subscriber of its own: that one counts.
            let _ = tracing::subscriber::set_global_default(Interested);
        });
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .with_ansi(false)
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The global subscriber [`LogCapture::install`] sets: enables everything, records nothing.
struct Interested;

impl tracing::Subscriber for Interested {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Shows the size only: a test prints the text itself when it wants to.
impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture").field("bytes", &self.0.lock().map_or(0, |b| b.len())).finish()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The RFC 6749 §5.1 success body: `{"access_token", "token_type":"Bearer", "expires_in"}`.
pub fn rfc6749_success(token: &str, lifetime: Duration) -> HttpResponse {
    HttpResponse::json(
        200,
        serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs()})
            .to_string(),
    )
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A clock at monotonic zero, its wall time now.
    pub fn new() -> Self {
        ManualClock { nanos: AtomicU64::new(0), wall_origin: SystemTime::now() }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn system_time(&self) -> SystemTime {
        self.wall_origin + self.monotonic()
    }
}

/// What a [`FakeEndpoint`] answers when nothing is queued: `success(token, lifetime)`.
pub type SuccessResponse = fn(&str, Duration) -> HttpResponse;

struct FakeState {
    queued: VecDeque<HttpResponse>,
    requests: Vec<TokenRequest>,
    issued: u64,
    lifetime: Duration,
}

/// A token endpoint in memory, used as a [`Transport`]: it records every request and answers with the
/// next queued response, or else with a new token (`fake-token-1`, `fake-token-2`, ...) of the
/// configured lifetime in the configured success shape.
pub struct FakeEndpoint {
    state: Mutex<FakeState>,
    success: SuccessResponse,
}

impl fmt::Debug for FakeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeEndpoint").field("requests", &self.request_count()).finish_non_exhaustive()
    }
}

impl Default for FakeEndpoint {
    fn default() -> Self {
        Self::new(rfc6749_success)
    }
}

impl FakeEndpoint {
    /// An endpoint answering successes with `success`, tokens living 100 s.
    pub fn new(success: SuccessResponse) -> Self {
        FakeEndpoint {
            state: Mutex::new(FakeState {
                queued: VecDeque::new(),
                requests: Vec::new(),
                issued: 0,
                lifetime: Duration::from_secs(100),
            }),
            success,
        }
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.state.lock().unwrap().lifetime = lifetime;
    }

    /// Queues a response for the next request.
    pub fn push_response(&self, response: HttpResponse) {
        self.state.lock().unwrap().queued.push_back(response);
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.state.lock().map(|s| s.requests.len()).unwrap_or_default()
    }

    /// The requests that arrived, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

#[async_trait]
impl Transport for FakeEndpoint {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        // Yield a few times so that concurrent callers pile up while the request is "in flight".
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        let mut state = self.state.lock().unwrap();
        state.requests.push(request.clone());
        if let Some(response) = state.queued.pop_front() {
            return Ok(response);
        }
        state.issued += 1;
        let token = format!("fake-token-{}", state.issued);
        Ok((self.success)(&token, state.lifetime))
    }
}

/// What the suite hands the provider factory for each check.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The transport the provider must use (a [`FakeEndpoint`]).
    pub transport: Arc<dyn Transport>,
    /// The clock the provider must use, for both its cache and its expiry stamps (a [`ManualClock`]).
    pub clock: Arc<dyn Clock>,
    /// The client id to configure ([`CLIENT_ID`]).
    pub client_id: &'static str,
    /// The client secret to configure ([`CLIENT_SECRET`]).
    pub client_secret: &'static str,
    /// A base URL to configure; its token URL may be anything below it ([`BASE_URL`]).
    pub base_url: &'static str,
}

/// The conformance suite: the [`TokenProvider`] contract, checked for one provider.
///
/// Checks: nothing cached before the first fetch; one request for many calls and for 50 concurrent
/// callers; the token refreshed before it expires and never handed out after; `invalidate` drops the
/// current token only; an RFC 6749 refusal is [`Error::OAuth`] and neither errors nor `Debug` output
/// show the secret or the token; a [`SharedTokenProvider`] around it behaves the same.
pub struct Conformance<F> {
    make: F,
    success: SuccessResponse,
}

impl<F> fmt::Debug for Conformance<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance").finish_non_exhaustive()
    }
}

struct Setup<P> {
    provider: P,
    endpoint: Arc<FakeEndpoint>,
    clock: Arc<ManualClock>,
}

impl<P, F> Conformance<F>
where
    P: TokenProvider,
    F: Fn(Harness) -> Result<P>,
{
    /// A suite building each provider under test with `make`. The provider must use the harness's
    /// transport and clock and may use any URL.
    pub fn new(make: F) -> Self {
        Conformance { make, success: rfc6749_success }
    }

    /// The provider's success response shape, when it is not [`rfc6749_success`] (e.g. an envelope).
    pub fn success_response(mut self, success: SuccessResponse) -> Self {
        self.success = success;
        self
    }

    fn setup(&self) -> Setup<P> {
        let endpoint = Arc::new(FakeEndpoint::new(self.success));
        let clock = Arc::new(ManualClock::new());
        let harness = Harness {
            transport: endpoint.clone(),
            clock: clock.clone(),
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            base_url: BASE_URL,
        };
        let provider = (self.make)(harness).unwrap_or_else(|e| panic!("the provider under test failed to build: {e}"));
        Setup { provider, endpoint, clock }
    }

    /// Runs every check; panics with a message naming the check that failed. Call it from a
    /// `#[tokio::test]`; it does not sleep.
    pub async fn run(self) {
        self.fetches_once_and_caches().await;
        self.single_flight().await;
        self.refreshes_before_expiry().await;
        self.invalidate_drops_current_only().await;
        self.refusal_is_typed_and_redacted().await;
        self.shared_handle().await;
    }

    async fn fetches_once_and_caches(&self) {
        let s = self.setup();
        assert!(s.provider.cached_token().is_none(), "[caching] a token was cached before any fetch");
        let first = s.provider.token().await.unwrap_or_else(|e| panic!("[caching] the first fetch failed: {e}"));
        let second = s.provider.token().await.unwrap();
        assert_eq!(s.endpoint.request_count(), 1, "[caching] two calls sent more than one request");
        assert!(first.same_token(&second), "[caching] the second call returned another token");
        let cached = s.provider.cached_token().expect("[caching] cached_token is None right after a fetch");
        assert!(cached.same_token(&first), "[caching] cached_token returned another token");
        assert_eq!(s.endpoint.requests()[0].grant_type(), "client_credentials");
    }

    async fn single_flight(&self) {
        let s = self.setup();
        let calls = (0..50).map(|_| s.provider.token());
        let tokens: Vec<AccessToken> = futures_join_all(calls).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(s.endpoint.request_count(), 1, "[single flight] 50 concurrent callers sent several requests");
        assert!(tokens.iter().all(|t| t.same_token(&tokens[0])), "[single flight] callers got different tokens");
    }

    async fn refreshes_before_expiry(&self) {
        let s = self.setup();
        s.endpoint.set_lifetime(Duration::from_secs(100));
        let first = s.provider.token().await.unwrap();
        s.clock.advance(Duration::from_secs(50));
        assert!(s.provider.token().await.unwrap().same_token(&first), "[refresh] refreshed at half its life");
        assert_eq!(s.endpoint.request_count(), 1);
        s.clock.advance(Duration::from_secs(45));
        let second = s.provider.token().await.unwrap();
        assert!(!second.same_token(&first), "[refresh] a token 5 s from expiry was handed out");
        assert_eq!(s.endpoint.request_count(), 2, "[refresh] expected exactly one refresh request");
        assert!(!second.is_expired_at(s.clock.system_time()), "[refresh] the refreshed token is already expired");

        // A token past its expiry is never handed out, even when refreshing fails.
        s.clock.advance(Duration::from_secs(101));
        assert!(s.provider.cached_token().is_none(), "[refresh] cached_token returned an expired token");
        s.endpoint.push_response(invalid_client());
        assert!(s.provider.token().await.is_err(), "[refresh] an expired token was handed out when the refresh failed");
    }

    async fn invalidate_drops_current_only(&self) {
        let s = self.setup();
        let first = s.provider.token().await.unwrap();
        s.provider.invalidate(&first);
        assert!(s.provider.cached_token().is_none(), "[invalidate] the rejected token is still cached");
        let second = s.provider.token().await.unwrap();
        assert!(!second.same_token(&first), "[invalidate] the rejected token was handed out again");
        assert_eq!(s.endpoint.request_count(), 2);
        s.provider.invalidate(&first);
        let third = s.provider.token().await.unwrap();
        assert!(third.same_token(&second), "[invalidate] a stale rejection dropped the current token");
        assert_eq!(s.endpoint.request_count(), 2, "[invalidate] a stale rejection caused a fetch");
    }

    async fn refusal_is_typed_and_redacted(&self) {
        let s = self.setup();
        s.endpoint.push_response(invalid_client());
        let error = match s.provider.token().await {
            Ok(_) => panic!("[refusal] a 401 invalid_client response gave a token"),
            Err(e) => e,
        };
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient), "[refusal] untyped error: {error:?}");
        assert_eq!(error.status(), Some(401));
        assert!(matches!(error, Error::OAuth(_)));
        let text = format!("{error} {error:?}");
        assert_clean("[refusal] the error", &text, &[]);

        s.clock.advance(Duration::from_secs(60)); // past the back-off
        let token = s.provider.token().await.unwrap_or_else(|e| panic!("[refusal] no recovery after a refusal: {e}"));
        let value = token.secret().expose_secret().to_owned();
        let debug = format!("{:?} {:?}", s.provider, token);
        assert_clean("[debug] the provider's Debug output", &debug, &[&value]);
        let request = s.endpoint.requests().pop().unwrap();
        assert_clean("[debug] the token request's Debug output", &format!("{request:?}"), &[]);
    }

    async fn shared_handle(&self) {
        let s = self.setup();
        let shared = SharedTokenProvider::new(s.provider);
        let first = shared.token().await.unwrap();
        assert!(shared.token().await.unwrap().same_token(&first));
        shared.invalidate(&first);
        assert!(!shared.token().await.unwrap().same_token(&first), "[shared] invalidate did not reach the provider");
        assert_eq!(s.endpoint.request_count(), 2);
    }
}

fn invalid_client() -> HttpResponse {
    HttpResponse::json(
        401,
        format!(r#"{{"error":"invalid_client","error_description":"bad secret {CLIENT_SECRET} echoed"}}"#),
    )
}

fn assert_clean(what: &str, text: &str, extra: &[&str]) {
    let form: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    for needle in [CLIENT_SECRET, form.as_str(), "CONFORMANCE-secret"].iter().chain(extra) {
        assert!(!text.contains(needle), "{what} contains a secret ({needle:?}):\n{text}");
    }
}

/// Polls all futures concurrently on the current task (no `futures` dependency needed).
async fn futures_join_all<T, Fut: std::future::Future<Output = T>>(futures: impl IntoIterator<Item = Fut>) -> Vec<T> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).enumerate().collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(value) => {
                results[*i] = Some(value);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CachedProvider, ClientCredentials, Scopes, TokenClient, TokenEndpoint, cache::ClientCredentialsSource,
    };

    fn client(h: &Harness) -> Result<TokenClient> {
        let endpoint = TokenEndpoint::new(format!("{}/token", h.base_url).parse().unwrap());
        TokenClient::builder("conformance", endpoint, ClientCredentials::new(h.client_id, h.client_secret))
            .transport(h.transport.clone())
            .clock(h.clock.clone())
            .build()
    }

    #[tokio::test]
    async fn a_cached_client_credentials_provider_conforms() {
        Conformance::new(|h| {
            Ok(CachedProvider::builder(ClientCredentialsSource::new(client(&h)?, Scopes::empty()))
                .clock(h.clock)
                .build())
        })
        .run()
        .await;
    }

    /// A provider that fetches on every call, to prove the suite can fail.
    #[derive(Debug)]
    struct Uncached(TokenClient);

    #[async_trait]
    impl TokenProvider for Uncached {
        async fn token(&self) -> Result<AccessToken> {
            self.0.request_token(&crate::request::Grant::ClientCredentials, &Scopes::empty()).await
        }
    }

    #[tokio::test]
    #[should_panic(expected = "[caching]")]
    async fn an_uncached_provider_fails_the_suite() {
        Conformance::new(|h| Ok(Uncached(client(&h)?))).run().await;
    }

    #[tokio::test]
    async fn fake_endpoint_records_and_answers_in_order() {
        let endpoint = FakeEndpoint::default();
        endpoint.push_response(HttpResponse::json(503, "{}"));
        let request = TokenRequest::new(BASE_URL.parse().unwrap(), crate::request::BodyFormat::Form);
        assert_eq!(endpoint.send(&request).await.unwrap().status, 503);
        let ok = endpoint.send(&request).await.unwrap();
        assert_eq!(ok.status, 200);
        assert!(String::from_utf8_lossy(&ok.body).contains("fake-token-1"));
        assert_eq!(endpoint.request_count(), 2);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let wall = clock.system_time();
        assert_eq!(clock.monotonic(), Duration::ZERO);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.monotonic(), Duration::from_secs(5));
        assert_eq!(clock.system_time(), wall + Duration::from_secs(5));
    }
}
