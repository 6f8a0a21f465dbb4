//! [`Conformance`]: the checks every provider crate runs against its dialect.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;

use super::fake::{FakeEndpoint, SuccessResponse};
use super::{BASE_URL, CLIENT_ID, CLIENT_SECRET, ManualClock, rfc6749_success};
use crate::clock::Clock;
use crate::error::{Error, OAuthErrorCode, Result};
use crate::http::{HttpResponse, Transport};
use crate::provider::{SharedTokenProvider, TokenProvider};
use crate::token::AccessToken;

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
