//! The methods of [`TokenClient`](crate::TokenClient): each grant's request, sent with retries and
//! back-off, and what may be resent.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use super::token_endpoint::TokenEndpoint;
use super::{TokenClient, TokenClientBuilder};
use crate::clock::Clock;
use crate::error::{Error, Result, TransportError, TransportErrorKind};
use crate::http::Transport;
use crate::parse::parse_response;
use crate::request::{Grant, TokenRequest};
use crate::retry::RetryPolicy;
use crate::token::{AccessToken, ClientCredentials, Scopes};

impl TokenClient {
    /// Starts configuring a client for `provider` (a name used in tracing) speaking `endpoint`'s
    /// dialect with `credentials`.
    pub fn builder(
        provider: impl Into<Cow<'static, str>>,
        endpoint: TokenEndpoint,
        credentials: ClientCredentials,
    ) -> TokenClientBuilder {
        TokenClientBuilder {
            provider: provider.into(),
            endpoint,
            credentials,
            transport: None,
            retry: RetryPolicy::default(),
            clock: None,
            error_mapper: None,
            allow_insecure_http: false,
            secret_required: true,
        }
    }

    /// The provider name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The dialect.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The client credentials.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The transport the client sends through (unless one was given: the process-wide shared one).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The request this client would send for `grant` and `scopes`. No I/O: use it to snapshot-test
    /// a provider's wire shape.
    pub fn build_request(&self, grant: &Grant, scopes: &Scopes) -> Result<TokenRequest> {
        self.endpoint.build_request(grant, &self.credentials, scopes)
    }

    /// Sends a token request for `grant`, retrying per the policy, and parses the token.
    ///
    /// When the response names no scope, the requested `scopes` are taken as granted (RFC 6749 §5.1).
    /// A refresh response without a new refresh token keeps the one sent.
    pub async fn request_token(&self, grant: &Grant, scopes: &Scopes) -> Result<AccessToken> {
        let prepared;
        let built;
        let request = match grant {
            Grant::ClientCredentials => {
                prepared = self.client_credentials_request(scopes)?;
                &prepared.1
            }
            _ => {
                built = self.build_request(grant, scopes)?;
                &built
            }
        };
        let span = tracing::info_span!(
            "tokensmith.token_request",
            provider = %self.provider,
            grant = request.grant_type(),
            host = request.url().host_str().unwrap_or(""),
            path = request.url().path(),
        );
        let result = self.send_with_retries(request, grant, scopes).instrument(span).await;
        let result = match (result, self.error_mapper) {
            (Err(e), Some(map)) => Err(map(grant, e)),
            (result, _) => result,
        };
        result.map_err(|e| self.scrub(e, grant))
    }

    /// The client-credentials request for `scopes`: the one kept from the last fetch when it asked for
    /// the same scopes (the usual case: a provider always asks for its configured scopes), else a new
    /// one, which is kept in its place. Nothing is kept when the credential style is not
    /// [reusable](CredentialStyle::reusable).
    fn client_credentials_request(&self, scopes: &Scopes) -> Result<Arc<(Scopes, TokenRequest)>> {
        let reusable = self.endpoint.credential_style.reusable();
        if reusable {
            if let Some(prepared) = self.prepared.load_full().filter(|p| p.0 == *scopes) {
                return Ok(prepared);
            }
        }
        let prepared = Arc::new((scopes.clone(), self.build_request(&Grant::ClientCredentials, scopes)?));
        if reusable {
            self.prepared.store(Some(Arc::clone(&prepared)));
        }
        Ok(prepared)
    }

    /// Removes this client's secret and the grant's secrets from an error's texts, in case a server
    /// echoed them.
    fn scrub(&self, error: Error, grant: &Grant) -> Error {
        use base64::Engine as _;
        use secrecy::ExposeSecret as _;
        let mut secrets: Vec<&str> = Vec::new();
        // Both Basic encodings a style may have sent (RFC 6749 form-encoded parts, or raw).
        let mut basic: Vec<String> = Vec::new();
        if let Some(secret) = self.credentials.client_secret() {
            let (id, secret) = (self.credentials.client_id(), secret.expose_secret());
            let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            for pair in [format!("{}:{}", form(id), form(secret)), format!("{id}:{secret}")] {
                basic.push(base64::engine::general_purpose::STANDARD.encode(pair));
            }
            secrets.push(secret);
        }
        secrets.extend(basic.iter().map(String::as_str));
        secrets.extend(self.endpoint.secret_values().map(|s| s.expose_secret()));
        match grant {
            Grant::ClientCredentials => {}
            Grant::AuthorizationCode { code, code_verifier, .. } => {
                secrets.push(code.expose_secret());
                if let Some(v) = code_verifier {
                    secrets.push(v.expose_secret());
                }
            }
            Grant::RefreshToken(rt) => secrets.push(rt.secret().expose_secret()),
        }
        error.scrub(&secrets)
    }

    async fn send_with_retries(&self, request: &TokenRequest, grant: &Grant, scopes: &Scopes) -> Result<AccessToken> {
        let started = Instant::now();
        let deadline = instant_after(tokio::time::Instant::now(), self.retry.get_deadline());
        let previous_refresh = match grant {
            Grant::RefreshToken(rt) => Some(rt),
            _ => None,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let attempt_started = Instant::now();
            // One timer bounds the attempt: its own timeout, or what is left of the deadline.
            let attempt_deadline = instant_after(tokio::time::Instant::now(), self.retry.get_attempt_timeout());
            let sent = tokio::time::timeout_at(attempt_deadline.min(deadline), self.transport.send(request)).await;
            let outcome = match sent {
                Err(_) if attempt_deadline < deadline => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the attempt timeout of {:?}", self.retry.get_attempt_timeout()),
                ))),
                Err(_) => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the overall deadline of {:?}", self.retry.get_deadline()),
                ))),
                Ok(Err(e)) => Err(Error::Transport(e)),
                Ok(Ok(response)) => {
                    tracing::debug!(
                        attempt,
                        status = response.status,
                        elapsed_ms = attempt_started.elapsed().as_millis() as u64,
                        "token endpoint answered"
                    );
                    parse_response(&response, &self.endpoint.response, self.clock.system_time(), previous_refresh).map(
                        |token| {
                            if token.scopes().is_empty() && !scopes.is_empty() {
                                token.to_builder().scopes(scopes.clone()).build()
                            } else {
                                token
                            }
                        },
                    )
                }
            };
            let error = match outcome {
                Ok(token) => {
                    tracing::info!(
                        attempt,
                        lifetime_s = token.lifetime().as_secs(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "token obtained"
                    );
                    return Ok(token);
                }
                // Scrubbed before anything logs it: a server may echo what it was sent.
                Err(e) => self.scrub(e, grant),
            };
            let now = tokio::time::Instant::now();
            let backoff = self.retry.backoff(attempt, error.retry_after());
            let retry = error.is_retryable()
                && (!consumes_grant(grant) || surely_not_processed(&error))
                && attempt < self.retry.get_max_attempts()
                && now.checked_add(backoff).is_some_and(|retry_at| retry_at < deadline);
            if !retry {
                tracing::warn!(attempt, error = %error, elapsed_ms = started.elapsed().as_millis() as u64, "token request failed");
                return Err(error);
            }
            tracing::warn!(attempt, error = %error, backoff_ms = backoff.as_millis() as u64, "token request failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }
}

/// `now + after`, or a far-future instant when that does not fit (a duration from a configuration or
/// a server can be anything).
fn instant_after(now: tokio::time::Instant, after: std::time::Duration) -> tokio::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(after.min(FAR)).unwrap_or(now)
}

/// Whether a grant can be used only once: a code, or a refresh token that the provider may rotate.
fn consumes_grant(grant: &Grant) -> bool {
    matches!(grant, Grant::AuthorizationCode { .. } | Grant::RefreshToken(_))
}

/// Whether a failure means the server surely did not act on the request: the connection was never
/// made, or the server said it is rate limiting (429) or unavailable (503). After a timeout, a broken
/// connection or another 5xx the grant may already be spent, and sending it again could be rejected
/// as reuse (or, with rotation, revoke the new tokens), so such failures are not retried for
/// consuming grants.
fn surely_not_processed(error: &Error) -> bool {
    match error {
        Error::Transport(e) => e.kind() == TransportErrorKind::Connect,
        other => matches!(other.status(), Some(429 | 503)),
    }
}
