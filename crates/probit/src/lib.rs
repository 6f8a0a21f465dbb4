//! ProBit Global access tokens for Rust services: a [`TokenProvider`] that speaks ProBit's
//! client-credentials dialect (seed 000), caches the token and refreshes it before it expires.
//!
//! Use this crate when your service talks to ProBit only; the
//! [`tokensmith`](https://docs.rs/tokensmith) facade picks a provider from configuration instead.
//! Everything common (sending, retries, parsing, errors, the cache) lives in [`tokensmith_core`]; this
//! crate only describes what ProBit does differently.
//!
//! # Example
//!
//! Get a token and call ProBit's balance API with it:
//!
//! ```
//! use tokensmith_core::AuthorizedClient;
//! use tokensmith_probit::ProbitProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::Probit);
//! let provider = ProbitProvider::builder()
//!     .client_id("your-client-id")
//!     .client_secret("your-client-secret")
//! #   .client_id(demo.client_id).client_secret(demo.client_secret)
//! #   .token_url(&sandbox.token_url(tokensmith_sandbox::Dialect::Probit))
//!     .build()?;
//!
//! let client = AuthorizedClient::new(provider.shared());
//! let balance_url = "https://api.probit.com/api/exchange/v1/balance";
//! # let balance_url = sandbox.protected_url(tokensmith_sandbox::Dialect::Probit);
//! let response = client.send(client.get(balance_url)).await?;
//! println!("balance: HTTP {}", response.status());
//! # assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! Or configure it from the environment ([`ENV_CLIENT_ID`], [`ENV_CLIENT_SECRET`], [`ENV_TOKEN_URL`],
//! [`ENV_ALLOW_INSECURE_HTTP`]) with [`ProbitProvider::from_env`].
//!
//! # The dialect
//!
//! | | ProBit |
//! | --- | --- |
//! | token endpoint | `POST https://accounts.probit.com/token` ([`DEFAULT_TOKEN_URL`], overridable) |
//! | client credentials | `Authorization: Basic base64(client_id:client_secret)`, raw (not form-encoded) |
//! | body | JSON `{"grant_type":"client_credentials"}` |
//! | scopes | none |
//! | token lifetime | a few minutes (`expires_in`, a number or a numeric string); refreshed early by the cache |
//! | errors | `{"errorCode","message","details"}`, `{"error":"invalid_grant"}`, HTML pages from the CDN |
//!
//! Errors are typed: `401 {"errorCode":"UNAUTHORIZED"}` becomes [`Error::OAuth`] with
//! [`OAuthErrorCode::InvalidClient`], `400 {"errorCode":"INVALID_ARGUMENT"}` becomes
//! [`OAuthErrorCode::InvalidRequest`], `{"error":"invalid_grant"}` is
//! [`OAuthErrorCode::InvalidGrant`]; other `errorCode` bodies are [`Error::Http`] with the code and
//! message, and an HTML page (the CDN's 403) is [`Error::Http`] with a short excerpt.
//!
//! # Feature flags
//!
//! None.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::http::{Transport, parse_url};
use tokensmith_core::options::{ProviderOptions, parse_bool_setting};
use tokensmith_core::parse::ResponseFormat;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::style::BasicAuthRaw;
use tokensmith_core::{
    AccessToken, BodyFormat, CachedProvider, ClientCredentials, ClientCredentialsSource, Clock, Error, Grant,
    OAuthError, OAuthErrorCode, RefreshPolicy, Result, RetryPolicy, Scopes, SharedTokenProvider, TokenClient,
    TokenEndpoint, TokenProvider, TokenRequest, TokenStore,
};
use url::Url;

/// ProBit's token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://accounts.probit.com/token";

/// The lifetime assumed when a response has no `expires_in`: ProBit's tokens "expire after a few
/// minutes", so a short guess is safer than the core's default hour.
pub const FALLBACK_LIFETIME: Duration = Duration::from_secs(300);

/// The environment variable holding the client id.
pub const ENV_CLIENT_ID: &str = "TOKENSMITH_PROBIT_CLIENT_ID";
/// The environment variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "TOKENSMITH_PROBIT_CLIENT_SECRET";
/// The environment variable overriding the token URL (default [`DEFAULT_TOKEN_URL`]).
pub const ENV_TOKEN_URL: &str = "TOKENSMITH_PROBIT_TOKEN_URL";
/// The environment variable allowing plain `http://` to a host that is not loopback (`true`/`false`,
/// `1`/`0`, `yes`/`no`, `on`/`off`).
pub const ENV_ALLOW_INSECURE_HTTP: &str = "TOKENSMITH_PROBIT_ALLOW_INSECURE_HTTP";

const PROVIDER: &str = "probit";
const REDACTED: &str = "** redacted **";

/// ProBit's dialect as data: `token_url`, raw HTTP Basic credentials, a JSON body with `grant_type`,
/// no scopes, a short fallback lifetime.
///
/// ```
/// use tokensmith_core::{BodyFormat, ClientCredentials, Grant, Scopes};
///
/// let endpoint = tokensmith_probit::endpoint(tokensmith_probit::DEFAULT_TOKEN_URL.parse().unwrap());
/// assert_eq!(endpoint.format(), BodyFormat::Json);
/// assert_eq!(endpoint.style().name(), "basic-raw");
/// let request = endpoint
///     .build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "secret"), &Scopes::empty())
///     .unwrap();
/// assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
/// ```
pub fn endpoint(token_url: Url) -> TokenEndpoint {
    TokenEndpoint::new(token_url)
        .body_format(BodyFormat::Json)
        .credential_style(Arc::new(BasicAuthRaw))
        .response_format(ResponseFormat::default().fallback_lifetime(FALLBACK_LIFETIME))
}

/// Maps ProBit's own error codes on the token endpoint to the RFC 6749 codes they mean, so that callers
/// check [`Error::oauth_code`] the same way for every provider.
fn map_error(_grant: &Grant, error: Error) -> Error {
    let Error::Http(http) = &error else { return error };
    let code = match (http.status, http.code.as_deref()) {
        (401, Some("UNAUTHORIZED")) => OAuthErrorCode::InvalidClient,
        (400, Some("INVALID_ARGUMENT")) => OAuthErrorCode::InvalidRequest,
        _ => return error,
    };
    let description = match (&http.code, &http.message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        (None, _) => String::new(),
    };
    let mut mapped = OAuthError::new(code, http.status).with_description(description);
    mapped.retry_after = http.retry_after;
    Error::OAuth(mapped)
}

/// A cached ProBit token provider; see the [crate docs](crate).
///
/// Cloning is cheap and clones share the cache. [`token`](TokenProvider::token) returns the cached
/// token while it is fresh and fetches a new one (one request, however many callers wait) when it is
/// due for refresh.
#[derive(Clone)]
pub struct ProbitProvider {
    inner: CachedProvider<ClientCredentialsSource>,
}

impl fmt::Debug for ProbitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbitProvider").field("inner", &self.inner).finish()
    }
}

impl ProbitProvider {
    /// Starts configuring a provider (same as [`ProbitBuilder::new`]).
    pub fn builder() -> ProbitBuilder {
        ProbitBuilder::new()
    }

    /// A provider configured from the process environment; see [`ProbitBuilder::from_env`].
    pub fn from_env() -> Result<Self> {
        ProbitBuilder::from_env().build()
    }

    /// The exact request this provider sends for a token, with no I/O (for snapshot tests; its
    /// `Debug` and `Serialize` renderings redact the secret).
    pub fn token_request(&self) -> Result<TokenRequest> {
        let source = self.inner.source();
        source.client().build_request(&Grant::ClientCredentials, source.scopes())
    }

    /// The token URL requests go to.
    pub fn token_url(&self) -> &Url {
        self.inner.source().client().endpoint().token_url()
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.source().client().credentials().client_id()
    }

    /// The cache this provider is made of.
    pub fn cache(&self) -> &CachedProvider<ClientCredentialsSource> {
        &self.inner
    }

    /// A valid token: the cached one while it is fresh, read without a lock, an allocation or a
    /// boxed future (this inherent method is what `provider.token()` calls, also with the
    /// [`TokenProvider`] trait in scope); otherwise fetched, one request however many callers wait.
    pub async fn token(&self) -> Result<AccessToken> {
        self.inner.token().await
    }

    /// Wraps the provider in a cloneable [`SharedTokenProvider`] (for
    /// [`AuthorizedClient`](tokensmith_core::AuthorizedClient) or the facade).
    pub fn shared(self) -> SharedTokenProvider {
        SharedTokenProvider::new(self)
    }
}

#[async_trait]
impl TokenProvider for ProbitProvider {
    async fn token(&self) -> Result<AccessToken> {
        self.inner.token().await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        self.inner.cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        self.inner.invalidate(token)
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        TokenProvider::unsaved(&self.inner)
    }
}

/// Configures a [`ProbitProvider`]; [`build`](ProbitBuilder::build) validates everything.
///
/// ```
/// use tokensmith_core::Error;
/// use tokensmith_probit::ProbitBuilder;
///
/// let err = ProbitBuilder::new().client_secret("s").build().unwrap_err();
/// assert!(matches!(err, Error::Config { ref key, .. } if key == "client_id"));
///
/// let err = ProbitBuilder::new().client_id("id").client_secret("s").token_url("http://probit.example/token").build().unwrap_err();
/// assert!(matches!(err, Error::Config { ref key, .. } if key == "token_url"));
/// ```
#[derive(Clone, Default)]
pub struct ProbitBuilder {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    token_url: Option<String>,
    options: ProviderOptions,
    env_error: Option<Error>,
}

impl fmt::Debug for ProbitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ProbitBuilder");
        s.field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| REDACTED))
            .field("token_url", &self.token_url);
        self.options.debug_fields(&mut s);
        s.finish()
    }
}

impl ProbitBuilder {
    /// An empty builder: the client id and secret must be set; the token URL defaults to
    /// [`DEFAULT_TOKEN_URL`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the process environment. Reads [`ENV_CLIENT_ID`], [`ENV_CLIENT_SECRET`],
    /// [`ENV_TOKEN_URL`] and [`ENV_ALLOW_INSECURE_HTTP`]; an empty variable counts as unset. Setters
    /// called afterwards override what was read; problems are reported by
    /// [`build`](ProbitBuilder::build), naming the variable.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](ProbitBuilder::from_env), reading variables through `get` instead of the
    /// process environment (for tests).
    ///
    /// ```
    /// let get = |name: &str| match name {
    ///     "TOKENSMITH_PROBIT_CLIENT_ID" => Some("my-id".to_owned()),
    ///     "TOKENSMITH_PROBIT_CLIENT_SECRET" => Some("my-secret".to_owned()),
    ///     _ => None,
    /// };
    /// let provider = tokensmith_probit::ProbitBuilder::from_env_with(get).build().unwrap();
    /// assert_eq!(provider.client_id(), "my-id");
    /// assert_eq!(provider.token_url().as_str(), tokensmith_probit::DEFAULT_TOKEN_URL);
    /// ```
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        if let Some(id) = get(ENV_CLIENT_ID) {
            builder = builder.client_id(id);
        }
        if let Some(secret) = get(ENV_CLIENT_SECRET) {
            builder = builder.client_secret(secret);
        }
        if let Some(url) = get(ENV_TOKEN_URL) {
            builder = builder.token_url(&url);
        }
        if let Some(value) = get(ENV_ALLOW_INSECURE_HTTP) {
            match parse_bool_setting(ENV_ALLOW_INSECURE_HTTP, &value) {
                Ok(allow) => builder = builder.allow_insecure_http(allow),
                Err(error) => builder.env_error = Some(error),
            }
        }
        builder
    }

    /// The client id from ProBit's "API Settings" page (required).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret key from ProBit's "API Settings" page (required).
    pub fn client_secret(mut self, client_secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// The token URL (default [`DEFAULT_TOKEN_URL`]); `https://`, or `http://` to a loopback host.
    pub fn token_url(mut self, token_url: &str) -> Self {
        self.token_url = Some(token_url.to_owned());
        self
    }

    /// The HTTP transport (default: a `ReqwestTransport` with its defaults).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.options.transport = Some(transport);
        self
    }

    /// How failed token requests are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// When the cached token is refreshed (default [`RefreshPolicy::default`]: a 900 s token is
    /// refreshed after 675–720 s).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.options.refresh_policy = policy;
        self
    }

    /// The clock of the cache and of expiry stamps (default: the system clock; use
    /// [`TokioClock`](tokensmith_core::TokioClock) in tests with paused time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.options.clock = Some(clock);
        self
    }

    /// Where tokens are kept between fetches (default: a private in-memory store).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.options.store = Some(store);
        self
    }

    /// Allows a plain `http://` token URL to a host that is not loopback (default `false`). The
    /// credentials then cross the network in clear text: only for networks you trust.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.options.allow_insecure_http = allow;
        self
    }

    /// Validates the configuration and builds the provider. No I/O.
    ///
    /// Fails with [`Error::Config`] naming the key at fault: `client_id` (missing or empty, or holding
    /// a `:` that raw HTTP Basic cannot carry), `client_secret` (missing or empty), `token_url`
    /// (unparseable, not `https://`, or plain `http://` to a host that is not loopback without
    /// [`allow_insecure_http`](ProbitBuilder::allow_insecure_http)), or the environment variable that
    /// held an invalid value.
    pub fn build(self) -> Result<ProbitProvider> {
        if let Some(error) = self.env_error {
            return Err(error);
        }
        let client_id = self.client_id.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "client_id",
                format!("no client id is set; call `client_id(..)` or set {ENV_CLIENT_ID} to the id ProBit issued"),
            )
        })?;
        let client_secret = self.client_secret.filter(|s| !s.expose_secret().is_empty()).ok_or_else(|| {
            Error::config(
                "client_secret",
                format!(
                    "no client secret is set; call `client_secret(..)` or set {ENV_CLIENT_SECRET} to the secret key ProBit issued"
                ),
            )
        })?;
        let token_url = parse_url(
            "token_url",
            self.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
            self.options.allow_insecure_http,
        )?;
        let client =
            TokenClient::builder(PROVIDER, endpoint(token_url), ClientCredentials::new(client_id, client_secret))
                .error_mapper(map_error);
        Ok(ProbitProvider { inner: self.options.client_credentials(client, Scopes::empty())? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::HttpError;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    fn config_key(result: Result<ProbitProvider>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn builder_validates() {
        let ok = || ProbitBuilder::new().client_id("id").client_secret("secret");
        assert!(ok().build().is_ok());
        assert_eq!(config_key(ProbitBuilder::new().client_secret("s").build()), "client_id");
        assert_eq!(config_key(ok().client_id("  ").build()), "client_id");
        assert_eq!(config_key(ok().client_id("a:b").build()), "client_id");
        assert_eq!(config_key(ProbitBuilder::new().client_id("id").build()), "client_secret");
        assert_eq!(config_key(ok().client_secret("").build()), "client_secret");
        assert_eq!(config_key(ok().token_url("not a url").build()), "token_url");
        assert_eq!(config_key(ok().token_url("http://probit.example/token").build()), "token_url");
        assert!(ok().token_url("http://probit.example/token").allow_insecure_http(true).build().is_ok());
        assert!(ok().token_url("http://127.0.0.1:9/token").build().is_ok());
    }

    #[test]
    fn from_env_reads_documented_variables() {
        let provider = ProbitBuilder::from_env_with(env(&[
            ("TOKENSMITH_PROBIT_CLIENT_ID", "env-id"),
            ("TOKENSMITH_PROBIT_CLIENT_SECRET", "env-secret"),
            ("TOKENSMITH_PROBIT_TOKEN_URL", "http://gateway.internal/token"),
            ("TOKENSMITH_PROBIT_ALLOW_INSECURE_HTTP", "true"),
        ]))
        .build()
        .unwrap();
        assert_eq!(provider.client_id(), "env-id");
        assert_eq!(provider.token_url().as_str(), "http://gateway.internal/token");
    }

    #[test]
    fn from_env_empty_counts_as_unset_and_bad_values_name_the_variable() {
        let empty = ProbitBuilder::from_env_with(env(&[
            ("TOKENSMITH_PROBIT_CLIENT_ID", "id"),
            ("TOKENSMITH_PROBIT_CLIENT_SECRET", "s"),
            ("TOKENSMITH_PROBIT_TOKEN_URL", ""),
        ]))
        .build()
        .unwrap();
        assert_eq!(empty.token_url().as_str(), DEFAULT_TOKEN_URL);
        let bad = ProbitBuilder::from_env_with(env(&[
            ("TOKENSMITH_PROBIT_CLIENT_ID", "id"),
            ("TOKENSMITH_PROBIT_CLIENT_SECRET", "s"),
            ("TOKENSMITH_PROBIT_ALLOW_INSECURE_HTTP", "maybe"),
        ]));
        assert_eq!(config_key(bad.build()), ENV_ALLOW_INSECURE_HTTP);
        assert_eq!(config_key(ProbitBuilder::from_env_with(|_| None).build()), "client_id");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let builder = ProbitBuilder::new().client_id("id").client_secret("very-secret-value");
        let text = format!("{builder:?}");
        assert!(!text.contains("very-secret-value") && text.contains(REDACTED), "{text}");
        let provider = builder.build().unwrap();
        assert!(!format!("{provider:?}").contains("very-secret-value"));
    }

    #[test]
    fn probit_error_codes_become_oauth_codes() {
        let http = |status, code: &str| {
            Error::Http(HttpError::new(status, "x").with_code(Some(code.to_owned()), Some("Invalid client".into())))
        };
        let mapped = map_error(&Grant::ClientCredentials, http(401, "UNAUTHORIZED"));
        assert_eq!(mapped.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
        assert_eq!(mapped.status(), Some(401));
        assert!(mapped.to_string().contains("Invalid client"), "{mapped}");
        let mapped = map_error(&Grant::ClientCredentials, http(400, "INVALID_ARGUMENT"));
        assert_eq!(mapped.oauth_code(), Some(&OAuthErrorCode::InvalidRequest));
        let kept = map_error(&Grant::ClientCredentials, http(429, "TOO_MANY_REQUESTS"));
        assert!(matches!(kept, Error::Http(ref e) if e.code.as_deref() == Some("TOO_MANY_REQUESTS")));
    }
}
