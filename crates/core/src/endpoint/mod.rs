//! A provider's dialect ([`TokenEndpoint`]) and the client that speaks it ([`TokenClient`]).
//!
//! A provider crate describes only what differs: the URLs, the body format, the credential style,
//! whether `grant_type` is sent and under which name and value, the scope and refresh-token
//! parameters' names, extra parameters (public or secret), the scope separator and the response
//! format. [`TokenClient`] does everything common once: builds the
//! [`TokenRequest`], sends it through the [`Transport`] with retries, and parses the response.
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenClient, TokenEndpoint, style::BasicAuthRaw, request::{BodyFormat, Grant}};
//!
//! let endpoint = TokenEndpoint::new("https://accounts.probit.com/token".parse().unwrap())
//!     .body_format(BodyFormat::Json)
//!     .credential_style(Arc::new(BasicAuthRaw));
//! let client = TokenClient::builder("probit", endpoint, ClientCredentials::new("id", "secret")).build().unwrap();
//! let request = client.build_request(&Grant::ClientCredentials, &Scopes::empty()).unwrap();
//! assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
//! ```
//!
//! A server that renames every field is described the same way, as data:
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::secrecy::SecretString;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, style::BodyCredentials, request::{BodyFormat, Grant}};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.test/v3/token".parse().unwrap())
//!     .body_format(BodyFormat::Json)
//!     .credential_style(Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
//!     .grant_type_param("grantKind")
//!     .scope_param("permissions")
//!     .extra_param("tenant", "eu-1")
//!     .secret_param("api_key", SecretString::from("k-123"));
//! let credentials = ClientCredentials::new("my-client", "s3cret");
//! let request = endpoint.build_request(&Grant::ClientCredentials, &credentials, &Scopes::parse("read")).unwrap();
//! assert_eq!(
//!     request.redacted_body(),
//!     r#"{"grantKind":"client_credentials","permissions":"read","tenant":"eu-1","api_key":"[redacted]","consumerKey":"my-client","consumerSecret":"[redacted]"}"#
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
#[cfg(feature = "reqwest")]
use crate::http::ReqwestTransport;
use crate::http::Transport;
use crate::request::{Grant, TokenRequest};
use crate::retry::RetryPolicy;
use crate::support::check_url;
use crate::token::{ClientCredentials, Scopes};

mod send;
#[cfg(test)]
mod tests;
mod token_endpoint;

pub use token_endpoint::TokenEndpoint;

/// Sends a provider's token requests: builds them from its [`TokenEndpoint`], sends them with retries
/// and parses the responses.
pub struct TokenClient {
    provider: Cow<'static, str>,
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    error_mapper: Option<fn(&Grant, Error) -> Error>,
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
    error_mapper: Option<fn(&Grant, Error) -> Error>,
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
    /// The transport (default, with the `reqwest` feature: the process-wide
    /// `ReqwestTransport::shared`, one connection pool for every client built without one, with this
    /// builder's insecure-HTTP setting; without the feature a transport must be given).
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

    /// A hook that turns a provider's own error shape into the error tokensmith should report (e.g.
    /// WhiteBIT's `400 {"data":{"token":[..]}}` on refresh into [`Error::ReauthorizationRequired`]).
    pub fn error_mapper(mut self, mapper: fn(&Grant, Error) -> Error) -> Self {
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
        // Shaping a request once proves the dialect and credentials fit together.
        self.endpoint.validate(&self.credentials)?;
        let transport = match self.transport {
            Some(t) => t,
            None => default_transport(self.allow_insecure_http)?,
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

/// The transport a client gets when none is given, when the `reqwest` feature is on: the process-wide
/// [`ReqwestTransport::shared`], one connection pool for every provider. The two handles (HTTPS only,
/// and plain `http://` allowed) are made once, so building a provider allocates no transport.
#[cfg(feature = "reqwest")]
fn default_transport(allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    static HTTPS_ONLY: std::sync::LazyLock<Arc<dyn Transport>> =
        std::sync::LazyLock::new(|| Arc::new(ReqwestTransport::shared(false)));
    static INSECURE_ALLOWED: std::sync::LazyLock<Arc<dyn Transport>> =
        std::sync::LazyLock::new(|| Arc::new(ReqwestTransport::shared(true)));
    Ok(Arc::clone(if allow_insecure_http { &INSECURE_ALLOWED } else { &HTTPS_ONLY }))
}

/// Without the `reqwest` feature there is no default transport.
#[cfg(not(feature = "reqwest"))]
fn default_transport(_allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    Err(Error::config(
        "transport",
        "no transport is set and tokensmith-core was built without its `reqwest` feature; give one with `transport(..)` or enable the feature",
    ))
}
