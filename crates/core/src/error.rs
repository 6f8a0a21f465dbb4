//! What an [`Error`] carries: the provider's refusal ([`OAuthError`], [`HttpError`]), the transport's
//! failure ([`TransportError`]), a rejected authorization callback ([`CallbackError`]). `Error` itself
//! and [`Result`] are at the crate root.
//!
//! [`Error`] keeps apart the four things that go wrong when asking for a token, because callers act on
//! them differently:
//!
//! - the configuration is invalid ([`Error::Config`]): fix it, retrying cannot help;
//! - the provider refused ([`Error::OAuth`] with an RFC 6749 §5.2 code, or [`Error::Http`] for a
//!   provider's own error shape): the message says what the provider said and what to check;
//! - the transport failed ([`Error::Transport`]): its [`TransportErrorKind`] says whether a retry can help;
//! - the response could not be understood ([`Error::InvalidResponse`]).
//!
//! No message, `Debug` output or source chain of these types ever contains a client secret, an access
//! token or a refresh token: values that come from the network are shortened and token-like runs in them
//! are masked before they are stored.

use std::fmt;
use std::time::Duration;

use crate::support::excerpt;
// The crate's paths to these stay `crate::error::*` for the modules that import them from here.
pub(crate) use crate::failure::{Error, Result};

/// The `source` of an [`Error::Store`] or a [`TransportError`]: reference-counted, so that [`Error`]
/// is `Clone` (the cache hands one failure to every caller that waited for it).
pub type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The former name of [`SharedError`], for the modules (cache, stores) that still use it.
pub(crate) type BoxError = SharedError;

/// Whether an HTTP status is worth retrying: 408, 429 and every 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// An RFC 6749 error code (§5.2 for the token endpoint, §4.1.2.1 for the authorization callback).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, repeated, unsupported or malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or credentials are invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support this grant type.
    UnsupportedGrantType,
    /// `invalid_scope`: the requested scope is invalid, unknown or exceeds what the client may ask for.
    InvalidScope,
    /// `access_denied`: the resource owner or server denied the request (authorization callback).
    AccessDenied,
    /// `unsupported_response_type` (authorization callback).
    UnsupportedResponseType,
    /// `authorization_pending` (RFC 8628 §3.5): the user has not yet approved the device; poll again.
    AuthorizationPending,
    /// `slow_down` (RFC 8628 §3.5): poll again, 5 s less often.
    SlowDown,
    /// `expired_token` (RFC 8628 §3.5): the device code expired before the user approved it.
    ExpiredToken,
    /// `unsupported_token_type` (RFC 7009 §2.2.1): the server cannot revoke this type of token.
    UnsupportedTokenType,
    /// `server_error`: the server hit an unexpected condition.
    ServerError,
    /// `temporarily_unavailable`: the server is overloaded or under maintenance.
    TemporarilyUnavailable,
    /// Any other code, kept as sent.
    Other(String),
}

impl OAuthErrorCode {
    /// Parses a code as sent on the wire; unknown codes are kept in [`OAuthErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "unsupported_token_type" => Self::UnsupportedTokenType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Other(excerpt(other, 64)),
        }
    }

    /// The code as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Other(code) => code,
        }
    }

    /// What a caller should check when the provider sends this code.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::InvalidRequest => {
                "the provider rejected the request's shape; check the body format, credential style and parameters"
            }
            Self::InvalidClient => {
                "check the client id and secret, and whether the provider expects them in a Basic header or in the body"
            }
            Self::InvalidGrant => {
                "the code or refresh token is invalid, expired, revoked or already used; authorize again"
            }
            Self::UnauthorizedClient => {
                "this client may not use this grant type; check the client's settings at the provider"
            }
            Self::UnsupportedGrantType => "the provider does not accept this grant type or body format",
            Self::InvalidScope => "request only scopes the client is allowed to ask for",
            Self::AccessDenied => "the user or the provider denied the authorization",
            Self::UnsupportedResponseType => "the provider does not support this authorization response type",
            Self::AuthorizationPending => "the user has not approved the device yet; keep polling",
            Self::SlowDown => "the provider asks to poll less often",
            Self::UnsupportedTokenType => "the provider cannot revoke this type of token",
            Self::ExpiredToken => {
                "the device code expired before the user approved it; start the device authorization again"
            }
            Self::ServerError | Self::TemporarilyUnavailable => "the provider has a temporary problem; retry later",
            Self::Other(_) => "see the provider's documentation for this error code",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthError {
    /// The `error` code.
    pub code: OAuthErrorCode,
    /// The `error_description`, shortened and with token-like runs masked.
    pub description: Option<String>,
    /// The `error_uri`.
    pub uri: Option<String>,
    /// The HTTP status of the response (200 when the provider put an error in a success response).
    pub status: u16,
    /// The `Retry-After` delay, when the provider sent one.
    pub retry_after: Option<Duration>,
}

impl OAuthError {
    /// An error with the given code and status and no description.
    pub fn new(code: OAuthErrorCode, status: u16) -> Self {
        OAuthError { code, description: None, uri: None, status, retry_after: None }
    }

    /// Sets the description, shortened and with token-like runs masked.
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.description = Some(excerpt(description.as_ref(), 200));
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the provider refused the request (HTTP {}): {}", self.status, self.code)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        write!(f, "; {}", self.code.hint())?;
        write_retry_after(f, self.retry_after)
    }
}

/// `; the server asked to wait N s before trying again`, when it sent `Retry-After`.
fn write_retry_after(f: &mut fmt::Formatter<'_>, retry_after: Option<Duration>) -> fmt::Result {
    match retry_after {
        Some(wait) => write!(f, "; the server asked to wait {} s before trying again", wait.as_secs()),
        None => Ok(()),
    }
}

impl std::error::Error for OAuthError {}

/// An HTTP error response that is not an RFC 6749 error body.
///
/// Providers have their own shapes: ProBit sends `{"errorCode":..,"message":..}`, WhiteBIT
/// `{"data":{"message":[..]}}`, `{"errors":{..}}` or `{"data":{"token":[..]}}`, firewalls send HTML.
/// The parser pulls a `code` and a `message` out of the shapes it knows and keeps a short, masked
/// `excerpt` of anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpError {
    /// The HTTP status.
    pub status: u16,
    /// A provider-specific error code (`errorCode`, or the field name of a WhiteBIT validation error).
    pub code: Option<String>,
    /// A provider-specific message.
    pub message: Option<String>,
    /// A short excerpt of the body, tags stripped and token-like runs masked.
    pub excerpt: String,
    /// The `Retry-After` delay, when the provider sent one.
    pub retry_after: Option<Duration>,
}

impl HttpError {
    /// An error for `status` with a body excerpt (shortened and masked here).
    pub fn new(status: u16, excerpt_text: &str) -> Self {
        HttpError { status, code: None, message: None, excerpt: excerpt(excerpt_text, 120), retry_after: None }
    }

    /// Sets the provider's error code and message.
    pub fn with_code(mut self, code: Option<String>, message: Option<String>) -> Self {
        self.code = code;
        self.message = message;
        self
    }

    /// What a caller should check for this status.
    pub fn hint(&self) -> &'static str {
        match self.status {
            400 => "the provider rejected the request's shape; check the body format and parameters",
            401 | 403 => "check the client id and secret and how they are sent (credential style)",
            404 => "check the token URL",
            405 => "the token endpoint must be called with POST; check the token URL",
            429 => "the provider is rate limiting; slow down or retry after the delay it asked for",
            500..=599 => "the provider has a server problem; retry later",
            300..=399 => "the token endpoint redirected; configure the final URL instead",
            _ => "see the provider's documentation",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the provider answered HTTP {}", self.status)?;
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, ": {code}: {message}")?,
            (Some(code), None) => write!(f, ": {code}")?,
            (None, Some(message)) => write!(f, ": {message}")?,
            (None, None) if !self.excerpt.is_empty() => write!(f, ": {}", self.excerpt)?,
            (None, None) => {}
        }
        write!(f, "; {}", self.hint())?;
        write_retry_after(f, self.retry_after)
    }
}

impl std::error::Error for HttpError {}

/// Why a request could not be sent or its response read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be established (refused, reset, DNS failure).
    Connect,
    /// The connect or total timeout, or the overall deadline, elapsed.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The server answered with a redirect; token requests never follow redirects.
    RedirectRefused,
    /// The response body was larger than the configured limit.
    BodyTooLarge,
    /// The URL uses plain `http://` to a host that is not loopback, and insecure HTTP was not allowed.
    InsecureUrl,
    /// The URL cannot be used (unsupported scheme, credentials in it, no host).
    InvalidUrl,
    /// The connection broke while the response was read (reset, truncated body).
    Io,
    /// Anything else the HTTP client reported.
    Other,
}

impl TransportErrorKind {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Connect | Self::Timeout | Self::Io)
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Connect => "check the URL, the network and that the provider is up",
            Self::Timeout => "the provider is slow or unreachable; retry later or raise the timeout",
            Self::Tls => "check the URL's host name and the provider's certificate",
            Self::RedirectRefused => "configure the final token URL; token requests never follow redirects",
            Self::BodyTooLarge => {
                "the response is larger than the limit; raise it only if the provider really sends that much"
            }
            Self::InsecureUrl => {
                "use https://, or allow insecure HTTP explicitly if this host is on a network you trust"
            }
            Self::InvalidUrl => "use an https:// URL with a host and without credentials in it",
            Self::Io => "the connection broke; retry later",
            Self::Other => "see the error's source for details",
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect error",
            Self::Timeout => "timed out",
            Self::Tls => "TLS error",
            Self::RedirectRefused => "redirect refused",
            Self::BodyTooLarge => "response body too large",
            Self::InsecureUrl => "insecure URL refused",
            Self::InvalidUrl => "invalid URL",
            Self::Io => "connection broken",
            Self::Other => "transport error",
        })
    }
}

/// A failure to send a request or read its response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}; {hint}", hint = kind.hint())]
pub struct TransportError {
    kind: TransportErrorKind,
    /// Also rewritten by `Error::scrub`.
    pub(crate) message: String,
    #[source]
    source: Option<SharedError>,
}

impl TransportError {
    /// A transport error of `kind` with a message (which must hold no secret).
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message, without the hint.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why an authorization callback was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The `state` in the callback is not the one this authorization sent: possible CSRF.
    #[error("the state parameter does not match; start the authorization again (possible cross-site request forgery)")]
    StateMismatch,
    /// This authorization's callback was already accepted once.
    #[error(
        "this authorization was already completed; a callback is accepted only once, start the authorization again"
    )]
    AlreadyUsed,
    /// The provider redirected back with an error (e.g. `access_denied`).
    #[error("the provider returned {code}{}; {hint}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default(), hint = code.hint())]
    Denied {
        /// The `error` parameter.
        code: OAuthErrorCode,
        /// The `error_description` parameter, shortened and masked.
        description: Option<String>,
    },
    /// The callback lacks a parameter or cannot be parsed.
    #[error("{0}; pass the full callback URL or query string the provider redirected to")]
    Malformed(String),
    /// No callback arrived in time.
    #[error("no callback arrived within {0:?}; start the authorization again")]
    TimedOut(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let http = |status| {
            Error::Http(HttpError { status, code: None, message: None, excerpt: String::new(), retry_after: None })
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!Error::OAuth(OAuthError::new(OAuthErrorCode::InvalidClient, 401)).is_retryable());
        assert!(Error::OAuth(OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, 503)).is_retryable());
        assert!(Error::Transport(TransportError::new(TransportErrorKind::Timeout, "x")).is_retryable());
        assert!(!Error::Transport(TransportError::new(TransportErrorKind::RedirectRefused, "x")).is_retryable());
        assert!(!Error::config("client_id", "empty").is_retryable());
    }

    #[test]
    fn oauth_codes_round_trip() {
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "expired_token",
            "authorization_pending",
            "unsupported_token_type",
            "server_error",
            "temporarily_unavailable",
            "slow_down",
            "custom_code",
        ] {
            assert_eq!(OAuthErrorCode::parse(code).as_str(), code);
        }
        assert_eq!(OAuthErrorCode::parse("slow_down"), OAuthErrorCode::SlowDown);
        assert_eq!(OAuthErrorCode::parse("custom_code"), OAuthErrorCode::Other("custom_code".into()));
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        let e = Error::Http(HttpError {
            status: 401,
            code: None,
            message: Some("bad secret p@ss word".into()),
            excerpt: "got p%40ss+word and p@ss word".into(),
            retry_after: None,
        })
        .scrub(&["p@ss word"]);
        let text = format!("{e} {e:?}");
        assert!(!text.contains("p@ss word") && !text.contains("p%40ss+word"), "{text}");
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = Error::OAuth(OAuthError::new(OAuthErrorCode::InvalidClient, 401).with_description("bad secret"));
        let text = e.to_string();
        assert!(text.contains("invalid_client"), "{text}");
        assert!(text.contains("bad secret"), "{text}");
        assert!(text.contains("check the client id and secret"), "{text}");
    }
}
