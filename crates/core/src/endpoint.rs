//! A provider's dialect ([`TokenEndpoint`]) and the client that speaks it ([`TokenClient`]).
//!
//! A provider crate describes only what differs: the URLs, the body format, the credential style,
//! whether `grant_type` is sent, the refresh-token parameter's name, extra parameters, the scope
//! separator and the response format. [`TokenClient`] does everything common once: builds the
//! [`TokenRequest`], sends it through the [`Transport`] with retries, and parses the response.
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::{BodyFormat, ClientCredentials, Grant, Scopes, TokenClient, TokenEndpoint, style::BasicAuthRaw};
//!
//! let endpoint = TokenEndpoint::new("https://accounts.probit.com/token".parse().unwrap())
//!     .body_format(BodyFormat::Json)
//!     .credential_style(Arc::new(BasicAuthRaw));
//! let client = TokenClient::builder("probit", endpoint, ClientCredentials::new("id", "secret")).build().unwrap();
//! let request = client.build_request(&Grant::ClientCredentials, &Scopes::empty()).unwrap();
//! assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tracing::Instrument as _;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result, TransportError, TransportErrorKind};
use crate::http::{ReqwestTransport, Transport, check_url};
use crate::parse::{ResponseFormat, parse_response};
use crate::request::{BodyFormat, Grant, TokenRequest};
use crate::retry::RetryPolicy;
use crate::style::{BasicAuth, CredentialStyle};
use crate::token::{AccessToken, ClientCredentials, Scopes};

/// A hook that turns a provider's own error shape into the error tokensmith should report (e.g.
/// WhiteBIT's `400 {"data":{"token":[..]}}` on refresh into [`Error::ReauthorizationRequired`]).
pub type ErrorMapper = fn(&Grant, Error) -> Error;

/// What a provider's token endpoint expects: the dialect.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    token_url: Url,
    refresh_url: Option<Url>,
    body_format: BodyFormat,
    credential_style: Arc<dyn CredentialStyle>,
    send_grant_type: bool,
    refresh_token_param: Cow<'static, str>,
    extra_params: Vec<(String, String)>,
    scope_separator: Cow<'static, str>,
    response: ResponseFormat,
}

impl TokenEndpoint {
    /// An RFC 6749 endpoint at `token_url`: form body, HTTP Basic with §2.3.1 encoding, `grant_type`
    /// sent, refresh token as `refresh_token`, scopes separated by spaces, no envelope.
    pub fn new(token_url: Url) -> Self {
        TokenEndpoint {
            token_url,
            refresh_url: None,
            body_format: BodyFormat::Form,
            credential_style: Arc::new(BasicAuth),
            send_grant_type: true,
            refresh_token_param: Cow::Borrowed("refresh_token"),
            extra_params: Vec::new(),
            scope_separator: Cow::Borrowed(" "),
            response: ResponseFormat::default(),
        }
    }

    /// A separate URL for refresh requests (WhiteBIT's `/oauth2/refresh_token`).
    pub fn refresh_url(mut self, url: Url) -> Self {
        self.refresh_url = Some(url);
        self
    }

    /// The body format.
    pub fn body_format(mut self, format: BodyFormat) -> Self {
        self.body_format = format;
        self
    }

    /// How client credentials are sent.
    pub fn credential_style(mut self, style: Arc<dyn CredentialStyle>) -> Self {
        self.credential_style = style;
        self
    }

    /// Whether `grant_type` is sent (WhiteBIT sends none).
    pub fn send_grant_type(mut self, send: bool) -> Self {
        self.send_grant_type = send;
        self
    }

    /// The name of the refresh token parameter (`refresh_token` per RFC 6749; WhiteBIT uses `token`).
    pub fn refresh_token_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.refresh_token_param = name.into();
        self
    }

    /// A parameter added to every request (e.g. `audience`).
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// How requested scopes are joined (a space per RFC 6749 §3.3).
    pub fn scope_separator(mut self, separator: impl Into<Cow<'static, str>>) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// How responses are shaped.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response = format;
        self
    }

    /// The extra parameters sent with every request (audience, resource, ...), in order.
    pub(crate) fn extra_params(&self) -> &[(String, String)] {
        &self.extra_params
    }

    /// The token URL.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The URL refresh requests go to.
    pub fn refresh_target(&self) -> &Url {
        self.refresh_url.as_ref().unwrap_or(&self.token_url)
    }

    /// The credential style.
    pub fn style(&self) -> &dyn CredentialStyle {
        self.credential_style.as_ref()
    }

    /// The response format.
    pub fn response(&self) -> &ResponseFormat {
        &self.response
    }

    /// The body format.
    pub fn format(&self) -> BodyFormat {
        self.body_format
    }

    /// Builds the request for `grant` with `credentials`, asking for `scopes`. No I/O.
    pub fn build_request(
        &self,
        grant: &Grant,
        credentials: &ClientCredentials,
        scopes: &Scopes,
    ) -> Result<TokenRequest> {
        let url = match grant {
            Grant::RefreshToken(_) => self.refresh_target().clone(),
            _ => self.token_url.clone(),
        };
        let mut request = TokenRequest::for_grant(url, self.body_format, grant).scopes(scopes, &self.scope_separator);
        if !self.send_grant_type {
            request = request.without_param("grant_type");
        }
        if self.refresh_token_param != "refresh_token" {
            request = request.rename_param("refresh_token", &self.refresh_token_param);
        }
        for (name, value) in &self.extra_params {
            request = request.param(name.clone(), value.clone());
        }
        request.with_credentials(credentials, self.credential_style.as_ref())
    }
}

/// Sends a provider's token requests: builds them from its [`TokenEndpoint`], sends them with retries
/// and parses the responses.
pub struct TokenClient {
    provider: Cow<'static, str>,
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    error_mapper: Option<ErrorMapper>,
    /// The last client-credentials request built, with the scopes it asks for. It depends on nothing
    /// else (the dialect and the credentials never change), so later fetches send it again as it is,
    /// wire form included, instead of building and rendering it anew — when the credential style
    /// says its requests may be reused.
    prepared: ArcSwapOption<(Scopes, TokenRequest)>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("transport", &self.transport)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenClient`].
pub struct TokenClientBuilder {
    provider: Cow<'static, str>,
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Option<Arc<dyn Transport>>,
    retry: RetryPolicy,
    clock: Option<Arc<dyn Clock>>,
    error_mapper: Option<ErrorMapper>,
    allow_insecure_http: bool,
    secret_required: bool,
}

impl fmt::Debug for TokenClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClientBuilder")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenClientBuilder {
    /// The transport (default: a [`ReqwestTransport`] with its defaults and this builder's
    /// insecure-HTTP setting).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The clock used to stamp expiry (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A hook mapping the provider's own errors.
    pub fn error_mapper(mut self, mapper: ErrorMapper) -> Self {
        self.error_mapper = Some(mapper);
        self
    }

    /// Allows plain `http://` to non-loopback hosts (default: refused).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Whether a client secret is required (default true; false for public clients).
    pub fn secret_required(mut self, required: bool) -> Self {
        self.secret_required = required;
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<TokenClient> {
        self.credentials.validate(self.secret_required)?;
        check_url(self.endpoint.token_url(), self.allow_insecure_http)
            .map_err(|e| Error::config("token_url", e.to_string()))?;
        if let Some(url) = &self.endpoint.refresh_url {
            check_url(url, self.allow_insecure_http).map_err(|e| Error::config("refresh_url", e.to_string()))?;
        }
        self.endpoint.response.validate("envelope")?;
        // Building a request once proves the dialect and credentials fit together.
        self.endpoint.build_request(&Grant::ClientCredentials, &self.credentials, &Scopes::empty())?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(ReqwestTransport::builder().allow_insecure_http(self.allow_insecure_http).build()?),
        };
        Ok(TokenClient {
            provider: self.provider,
            endpoint: self.endpoint,
            credentials: self.credentials,
            transport,
            retry: self.retry,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            error_mapper: self.error_mapper,
            prepared: ArcSwapOption::empty(),
        })
    }
}

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
        let deadline = instant_after(tokio::time::Instant::now(), self.retry.overall_deadline());
        let previous_refresh = match grant {
            Grant::RefreshToken(rt) => Some(rt),
            _ => None,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let attempt_started = Instant::now();
            // One timer bounds the attempt: its own timeout, or what is left of the deadline.
            let attempt_deadline = instant_after(tokio::time::Instant::now(), self.retry.timeout_per_attempt());
            let sent = tokio::time::timeout_at(attempt_deadline.min(deadline), self.transport.send(request)).await;
            let outcome = match sent {
                Err(_) if attempt_deadline < deadline => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the attempt timeout of {:?}", self.retry.timeout_per_attempt()),
                ))),
                Err(_) => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the overall deadline of {:?}", self.retry.overall_deadline()),
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
                && attempt < self.retry.attempts()
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
