//! [`Error`], the one error type of tokensmith, and its [`Result`]; both are re-exported at the crate
//! root. The types an `Error` carries ([`OAuthError`], [`TransportError`], ...) are in
//! [`crate::error`].
//!
//! No message, `Debug` output or source chain of these types ever contains a client secret, an access
//! token or a refresh token: values that come from the network are shortened and token-like runs in them
//! are masked before they are stored.

use std::time::Duration;

use crate::error::{
    CallbackError, HttpError, OAuthError, OAuthErrorCode, SharedError, TransportError, is_retryable_status,
};
use crate::support::REDACTED;

/// A `Result` whose error defaults to tokensmith's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while obtaining or using a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `key` names the setting at fault.
    #[error("invalid configuration `{key}`: {message}")]
    Config {
        /// The setting at fault, e.g. `token_url` or `client_id`.
        key: String,
        /// What is wrong and what to do about it.
        message: String,
    },

    /// The provider refused the request with an RFC 6749 §5.2 error.
    #[error(transparent)]
    OAuth(#[from] OAuthError),

    /// The provider answered with an HTTP error that is not an RFC 6749 error body (a provider's own
    /// JSON shape, an HTML page, plain text or nothing).
    #[error(transparent)]
    Http(#[from] HttpError),

    /// The request could not be sent or its response could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),

    /// The provider answered with success, but the response is not a usable token response.
    #[error(
        "the token response is invalid: {reason}; check that the provider's response format (envelope, content type) is configured right"
    )]
    InvalidResponse {
        /// What is wrong with the response.
        reason: String,
    },

    /// The user must authorize the application again: the refresh token expired, was revoked or rotated
    /// away, or no token was ever stored.
    #[error("authorization required: {reason}; run the authorization flow again")]
    ReauthorizationRequired {
        /// Why the stored grant cannot be used.
        reason: String,
    },

    /// An authorization callback (the redirect back from the provider) was rejected.
    #[error("authorization callback rejected: {0}")]
    Callback(#[from] CallbackError),

    /// A token store could not load or save a token.
    #[error("token store failed: {message}")]
    Store {
        /// What failed and what to do about it.
        message: String,
        /// The underlying failure, if any.
        #[source]
        source: Option<SharedError>,
    },

    /// A token fetch could not run or did not finish: there is no Tokio runtime to run it on, or the
    /// fetch task panicked or was dropped (its runtime shut down). Not a failure of the provider or
    /// of the store.
    #[error("the token fetch could not run: {message}")]
    Runtime {
        /// What happened and what to do about it.
        message: String,
    },

    /// Recent attempts to fetch a token failed and the cache is backing off; `last` is the most recent
    /// failure.
    #[error("token fetch is backing off for {retry_in:?} after a failure: {last}")]
    BackingOff {
        /// How long until the cache tries again.
        retry_in: Duration,
        /// A description of the failure that started the back-off (already redacted).
        last: String,
    },
}

impl Error {
    /// A configuration error naming the `key` at fault.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: message.into() }
    }

    /// An invalid-response error.
    pub fn invalid_response(reason: impl Into<String>) -> Self {
        Error::InvalidResponse { reason: reason.into() }
    }

    /// A store error.
    pub fn store(message: impl Into<String>, source: impl Into<Option<SharedError>>) -> Self {
        Error::Store { message: message.into(), source: source.into() }
    }

    /// Whether trying the same request again may succeed: connect errors, timeouts, HTTP 5xx and 429,
    /// and the OAuth codes `server_error` and `temporarily_unavailable`. Never true for OAuth 4xx errors
    /// or configuration errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.kind().is_retryable(),
            Error::Http(e) => is_retryable_status(e.status),
            Error::OAuth(e) => {
                matches!(e.code, OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable)
                    || is_retryable_status(e.status)
            }
            _ => false,
        }
    }

    /// The delay the provider asked for with `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http(e) => e.retry_after,
            Error::OAuth(e) => e.retry_after,
            _ => None,
        }
    }

    /// The OAuth error code, if the provider sent one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        match self {
            Error::OAuth(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The HTTP status the provider answered with, if the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::OAuth(e) => Some(e.status),
            Error::Http(e) => Some(e.status),
            _ => None,
        }
    }
}

/// The length of the shortest run of a secret's characters that [`Error::scrub`] removes.
pub(crate) const SCRUB_FRAGMENT: usize = 6;

impl Error {
    /// Removes the given secrets from every text of the error (descriptions, codes, URIs, excerpts,
    /// messages): a last line of defence for servers that echo what they got.
    ///
    /// Each secret is looked for raw, form-encoded, percent-encoded and JSON-escaped (pass the
    /// base64 of a Basic credential as a secret of its own), and then so is every run of
    /// [`SCRUB_FRAGMENT`] characters of each of those: a secret a server echoed only in part, or that
    /// an excerpt cut in two, leaves no fragment that long. Secrets shorter than 3 characters are
    /// not looked for.
    pub(crate) fn scrub(self, secrets: &[&str]) -> Self {
        let needles: Vec<String> = secrets
            .iter()
            .filter(|s| s.chars().count() >= 3)
            .flat_map(|s| {
                let form: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let pct = percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
                let json = serde_json::to_string(s).unwrap_or_default();
                let json = json.trim_matches('"').to_owned();
                [s.to_string(), form, pct, json]
            })
            .collect();
        if needles.is_empty() {
            return self;
        }
        let fragments: Vec<String> = needles
            .iter()
            .flat_map(|needle| {
                let chars: Vec<char> = needle.chars().collect();
                chars.windows(SCRUB_FRAGMENT).map(|w| w.iter().collect::<String>()).collect::<Vec<_>>()
            })
            .collect();
        let fix = |text: &mut String| {
            for needle in needles.iter().chain(&fragments) {
                if text.contains(needle.as_str()) {
                    *text = text.replace(needle.as_str(), REDACTED);
                }
            }
        };
        let mut error = self;
        match &mut error {
            Error::Config { message, .. } | Error::Store { message, .. } | Error::Runtime { message } => fix(message),
            Error::OAuth(e) => {
                if let OAuthErrorCode::Other(code) = &mut e.code {
                    fix(code);
                }
                if let Some(d) = &mut e.description {
                    fix(d);
                }
                if let Some(u) = &mut e.uri {
                    fix(u);
                }
            }
            Error::Http(e) => {
                fix(&mut e.excerpt);
                if let Some(m) = &mut e.message {
                    fix(m);
                }
                if let Some(c) = &mut e.code {
                    fix(c);
                }
            }
            Error::Transport(e) => fix(&mut e.message),
            Error::InvalidResponse { reason } | Error::ReauthorizationRequired { reason } => fix(reason),
            Error::Callback(CallbackError::Denied { description: Some(d), .. }) => fix(d),
            Error::Callback(CallbackError::Malformed(m)) => fix(m),
            Error::BackingOff { last, .. } => fix(last),
            Error::Callback(_) => {}
        }
        error
    }
}
