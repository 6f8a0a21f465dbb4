//! The standard OAuth flows for any RFC-compliant server, beyond the token request itself: the
//! authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636), server metadata discovery (RFC 8414,
//! OpenID Connect Discovery), the device authorization grant (RFC 8628) and token revocation (RFC 7009).
//!
//! - Authorization code with PKCE: [`AuthorizationRequest`] → [`PendingAuthorization`] (the URL, a
//!   256-bit `state`, the code verifier) → the callback, verified once with the `state` compared in
//!   constant time → [`CodeExchange`] (the code sent once, the tokens saved in the store) → a
//!   [`CachedProvider`](crate::CachedProvider) of a [`RefreshTokenSource`](crate::cache::RefreshTokenSource)
//!   refreshing with rotation. [`LoopbackListener`] (feature `loopback`) receives the callback on
//!   127.0.0.1 (RFC 8252).
//! - [`discover`] fetches an issuer's metadata ([`ServerMetadata`]): its token, authorization, device
//!   authorization and revocation endpoints and what it supports. [`MetadataCache`] keeps the
//!   documents, one per issuer.
//! - [`FlowClient`] speaks to those endpoints with a client's credentials, placed by the
//!   [`CredentialStyle`] of its [`TokenEndpoint`]:
//!   [`request_device_authorization`](FlowClient::request_device_authorization) then
//!   [`poll_device_token`](FlowClient::poll_device_token) for the device grant, and
//!   [`revoke`](FlowClient::revoke) or [`revoke_stored`](FlowClient::revoke_stored) for revocation.
//!
//! Every request goes through a [`Transport`], which never follows redirects and bounds the
//! response size; URLs must be `https://` (or `http://` to a loopback host) unless insecure HTTP was
//! allowed. Numbers from the server (`expires_in`, `interval`) are bounded, and no secret (the
//! client secret, the device code, a token) appears in any `Debug` output, error or log line.
//!
//! ```no_run
//! use tokensmith_core::flows::{FlowClient, discover};
//! use tokensmith_core::http::ReqwestTransport;
//! use tokensmith_core::{ClientCredentials, Scopes};
//!
//! # async fn run() -> tokensmith_core::Result<()> {
//! let transport = ReqwestTransport::new()?;
//! let metadata = discover(&transport, "https://auth.example.com").await?;
//! let client = FlowClient::builder(metadata.endpoint()?, ClientCredentials::new("id", "secret")).build()?;
//! let device_url = metadata.device_authorization_endpoint.clone().expect("the server supports the device grant");
//! let authorization = client.request_device_authorization(&device_url, &Scopes::parse("read")).await?;
//! println!("open {} and enter {}", authorization.verification_uri(), authorization.user_code());
//! let token = client.poll_device_token(&authorization).await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! [`CredentialStyle`]: crate::style::CredentialStyle
//! [`Transport`]: crate::http::Transport

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::endpoint::{TokenClient, TokenEndpoint};
use crate::error::{Error, Result, TransportError, TransportErrorKind};
use crate::http::{HttpResponse, Transport};
use crate::request::TokenRequest;
use crate::support::check_url;
use crate::token::ClientCredentials;

mod authorization_code;
mod code_exchange;
mod device;
mod discovery;
#[cfg(feature = "loopback")]
mod loopback;
mod revoke;
#[cfg(test)]
mod tests;

pub use authorization_code::{AuthorizationCode, AuthorizationRequest, PendingAuthorization, pkce_challenge};
pub use code_exchange::CodeExchange;
pub use device::{DEVICE_CODE_GRANT, DeviceAuthorization};
pub use discovery::{MetadataCache, ServerMetadata, discover};
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use loopback::LoopbackListener;
pub use revoke::TokenTypeHint;

/// The time one request of a flow may take, unless set with [`FlowClientBuilder::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends the requests of the device grant and of revocation for one client: its credentials, placed
/// by the credential style of its [`TokenEndpoint`], whose token URL the device grant polls and
/// whose response format reads the token.
///
/// Build one with [`FlowClient::builder`], or from a [`TokenClient`] with
/// [`FlowClient::for_token_client`].
pub struct FlowClient {
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    allow_insecure_http: bool,
    request_timeout: Duration,
}

impl fmt::Debug for FlowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowClient")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("transport", &self.transport)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`FlowClient`].
pub struct FlowClientBuilder {
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Option<Arc<dyn Transport>>,
    clock: Option<Arc<dyn Clock>>,
    allow_insecure_http: bool,
    request_timeout: Duration,
}

impl fmt::Debug for FlowClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl FlowClientBuilder {
    /// The transport (default, with the `reqwest` feature: a `ReqwestTransport` with its defaults and
    /// this builder's insecure-HTTP setting; without it a transport must be given).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The clock that stamps token expiry (default [`SystemClock`]). Waits between polls use Tokio's
    /// timer, so tests can pause and advance time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Allows plain `http://` to non-loopback hosts (default: refused).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The time one request may take (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Checks the token URL and builds the client.
    pub fn build(self) -> Result<FlowClient> {
        check_url(self.endpoint.token_url(), self.allow_insecure_http)
            .map_err(|e| Error::config("token_url", e.to_string()))?;
        if self.request_timeout.is_zero() {
            return Err(Error::config("request_timeout", "the request timeout must be more than zero"));
        }
        let transport = match self.transport {
            Some(transport) => transport,
            None => default_transport(self.allow_insecure_http)?,
        };
        Ok(FlowClient {
            endpoint: self.endpoint,
            credentials: self.credentials,
            transport,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            allow_insecure_http: self.allow_insecure_http,
            request_timeout: self.request_timeout,
        })
    }
}

/// The transport a flow client gets when none is given: `reqwest`'s, when that feature is on.
#[cfg(feature = "reqwest")]
fn default_transport(allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    Ok(Arc::new(crate::http::ReqwestTransport::builder().allow_insecure_http(allow_insecure_http).build()?))
}

/// Without the `reqwest` feature there is no default transport.
#[cfg(not(feature = "reqwest"))]
fn default_transport(_allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    Err(Error::config(
        "transport",
        "no transport is set and tokensmith-core was built without its `reqwest` feature; give one with `transport(..)` or enable the feature",
    ))
}

impl FlowClient {
    /// Starts configuring a client that authenticates with `credentials` as `endpoint`'s credential
    /// style says, and polls `endpoint`'s token URL for the device grant.
    pub fn builder(endpoint: TokenEndpoint, credentials: ClientCredentials) -> FlowClientBuilder {
        FlowClientBuilder {
            endpoint,
            credentials,
            transport: None,
            clock: None,
            allow_insecure_http: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// A builder with `client`'s dialect, credentials, clock and transport.
    pub fn for_token_client(client: &TokenClient) -> FlowClientBuilder {
        FlowClient::builder(client.endpoint().clone(), client.credentials().clone())
            .transport(Arc::clone(client.transport()))
            .clock(Arc::clone(client.clock()))
    }

    /// The dialect: token URL, credential style, response format.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The client credentials.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// A form `POST` to `url` with the client's credentials placed by its style. The client id is
    /// always in the body too (RFC 8628 §3.1 and RFC 7009 §2.1 ask for it from public clients, and
    /// servers such as Django OAuth Toolkit read it from there even with HTTP Basic).
    fn authenticated_post(
        &self,
        url: &Url,
        key: &str,
        params: Vec<(&str, crate::request::Value)>,
    ) -> Result<TokenRequest> {
        check_url(url, self.allow_insecure_http).map_err(|e| Error::config(key, e.to_string()))?;
        let mut request = TokenRequest::new(url.clone(), crate::request::BodyFormat::Form);
        for (name, value) in params {
            request.set_param(name, value);
        }
        request.set_param("client_id", self.credentials.client_id());
        self.endpoint.get_credential_style().shape(&self.credentials, request)
    }

    /// Sends `request` once within the request timeout (and before `deadline`, when given).
    async fn send(&self, request: &TokenRequest, deadline: Option<tokio::time::Instant>) -> Result<HttpResponse> {
        let timeout_at = instant_after(tokio::time::Instant::now(), self.request_timeout);
        let timeout_at = deadline.map_or(timeout_at, |d| d.min(timeout_at));
        match tokio::time::timeout_at(timeout_at, self.transport.send(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(Error::Transport(e)),
            Err(_) => Err(Error::Transport(TransportError::new(
                TransportErrorKind::Timeout,
                format!("no response from {} within {:?}", host_of(request.url()), self.request_timeout),
            ))),
        }
    }

    /// Removes this client's secret (raw and in both Basic encodings) and `extra` secrets from an
    /// error's texts, in case a server echoed them.
    fn scrub(&self, error: Error, extra: &[&str]) -> Error {
        use base64::Engine as _;
        let mut owned: Vec<String> = Vec::new();
        if let Some(secret) = self.credentials.client_secret() {
            let (id, secret) = (self.credentials.client_id(), secret.expose_secret());
            let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            for pair in [format!("{}:{}", form(id), form(secret)), format!("{id}:{secret}")] {
                owned.push(base64::engine::general_purpose::STANDARD.encode(pair));
            }
            owned.push(secret.to_owned());
        }
        let mut secrets: Vec<&str> = owned.iter().map(String::as_str).collect();
        secrets.extend_from_slice(extra);
        error.scrub(&secrets)
    }
}

/// `start + by`, or far in the future when that overflows.
fn instant_after(start: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    start.checked_add(by).unwrap_or_else(|| start.checked_add(Duration::from_secs(86_400 * 365)).unwrap_or(start))
}

/// `host:port` of a URL, for messages (never its path or query).
fn host_of(url: &Url) -> Cow<'_, str> {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => Cow::Owned(format!("{host}:{port}")),
        (Some(host), None) => Cow::Borrowed(host),
        _ => Cow::Borrowed("the server"),
    }
}
