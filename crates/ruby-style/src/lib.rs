//! Access tokens from Rails/Doorkeeper-style servers for Rust services: a [`TokenProvider`] that
//! speaks the client-credentials dialect of seed 002 (`POST {base}/oauth/token` with a JSON body),
//! caches the token and refreshes it before it expires.
//!
//! Use this crate when your service talks to one such server; the
//! [`tokensmith`](https://docs.rs/tokensmith) facade picks a provider from configuration instead.
//! Everything common (sending, retries, parsing, errors, the cache) lives in [`tokensmith_core`]; this
//! crate only describes what the dialect does differently.
//!
//! # Example
//!
//! ```
//! use tokensmith_core::AuthorizedClient;
//! use tokensmith_ruby_style::RubyStyleProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::RubyStyle);
//! let provider = RubyStyleProvider::builder()
//!     .base_url("https://api.example.com")
//!     .client_id("your-client-id")
//!     .client_secret("your-client-secret")
//! #   .base_url(&sandbox.base_url(tokensmith_sandbox::Dialect::RubyStyle))
//! #   .client_id(demo.client_id).client_secret(demo.client_secret)
//!     .build()?;
//!
//! let client = AuthorizedClient::new(provider.shared());
//! let me_url = "https://api.example.com/api/v1/me";
//! # let me_url = sandbox.protected_url(tokensmith_sandbox::Dialect::RubyStyle);
//! let response = client.send(client.get(me_url)).await?;
//! println!("me: HTTP {}", response.status());
//! # assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! Or configure it from the environment (variables `TOKENSMITH_RUBY_*`, see [`ENV_BASE_URL`] and its
//! siblings) with [`RubyStyleProvider::from_env`].
//!
//! # The dialect
//!
//! | | Rails/Doorkeeper style |
//! | --- | --- |
//! | token endpoint | `POST {base}/oauth/token` |
//! | client credentials | `client_id` and `client_secret` in the JSON body |
//! | body | JSON `{"grant_type":"client_credentials","client_id":..,"client_secret":..}` (+ `scope` when set) |
//! | scopes | optional, space separated; the granted ones are on the token ([`AccessToken::scopes`]) |
//! | token lifetime | `expires_in` (Doorkeeper's default is 7200 s); "when it expires, call it again": the cache refreshes before |
//! | errors | RFC 6749 `invalid_client` (401), `invalid_request`/`invalid_scope`/`unsupported_grant_type` (400) → [`Error::OAuth`]; Rails' HTML 404 → [`Error::Http`] |
//!
//! **POST, not GET.** The seed's prose says "get an access token from `GET <<api_base_path>>/oauth/token`"
//! and "call `GET /oauth/token` again", while every code sample in it sends `POST`. RFC 6749 §3.2
//! requires POST at the token endpoint (and a GET would put the secret in the URL), so this crate
//! sends POST.
//!
//! Doorkeeper's extra `created_at` field is kept in [`AccessToken::extra`].
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

use async_trait::async_trait;
use tokensmith_core::http::{Transport, parse_url};
use tokensmith_core::options::{ProviderOptions, parse_bool_setting};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::style::RequestBody;
use tokensmith_core::{
    AccessToken, BodyFormat, CachedProvider, ClientCredentials, ClientCredentialsSource, Clock, Error, Grant,
    RefreshPolicy, Result, RetryPolicy, Scopes, SharedTokenProvider, TokenClient, TokenEndpoint, TokenProvider,
    TokenRequest, TokenStore,
};
use url::Url;

/// The token path below the base URL.
pub const TOKEN_PATH: &str = "/oauth/token";

/// The environment variable holding the API's base URL (required), e.g. `https://api.example.com`.
pub const ENV_BASE_URL: &str = "TOKENSMITH_RUBY_BASE_URL";
/// The environment variable holding the client id.
pub const ENV_CLIENT_ID: &str = "TOKENSMITH_RUBY_CLIENT_ID";
/// The environment variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "TOKENSMITH_RUBY_CLIENT_SECRET";
/// The environment variable holding the scopes to request, separated by spaces or commas (default:
/// none sent, the server's default applies).
pub const ENV_SCOPE: &str = "TOKENSMITH_RUBY_SCOPE";
/// The environment variable allowing plain `http://` to a host that is not loopback (`true`/`false`,
/// `1`/`0`, `yes`/`no`, `on`/`off`).
pub const ENV_ALLOW_INSECURE_HTTP: &str = "TOKENSMITH_RUBY_ALLOW_INSECURE_HTTP";

const PROVIDER: &str = "ruby-style";
const REDACTED: &str = "** redacted **";

/// The dialect as data: a JSON body with `grant_type`, `client_id` and `client_secret`, scopes
/// separated by spaces.
///
/// ```
/// use tokensmith_core::{BodyFormat, ClientCredentials, Grant, Scopes};
///
/// let endpoint = tokensmith_ruby_style::endpoint("https://api.example.com/oauth/token".parse().unwrap());
/// assert_eq!(endpoint.format(), BodyFormat::Json);
/// let request = endpoint
///     .build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "secret"), &Scopes::empty())
///     .unwrap();
/// assert_eq!(
///     request.wire_body(),
///     br#"{"grant_type":"client_credentials","client_id":"id","client_secret":"secret"}"#
/// );
/// ```
pub fn endpoint(token_url: Url) -> TokenEndpoint {
    TokenEndpoint::new(token_url).body_format(BodyFormat::Json).credential_style(Arc::new(RequestBody))
}

/// `{base}/oauth/token`, keeping any path of the base (`https://h/api` gives `https://h/api/oauth/token`).
fn token_url(base_url: &Url) -> Result<Url> {
    if base_url.query().is_some() || base_url.fragment().is_some() {
        return Err(Error::config(
            "base_url",
            "the base URL must not have a query or fragment; give e.g. `https://api.example.com`",
        ));
    }
    let mut url = base_url.clone();
    url.set_path(&format!("{}{TOKEN_PATH}", base_url.path().trim_end_matches('/')));
    Ok(url)
}

/// A cached Rails/Doorkeeper-style token provider; see the [crate docs](crate).
///
/// Cloning is cheap and clones share the cache.
#[derive(Clone)]
pub struct RubyStyleProvider {
    inner: CachedProvider<ClientCredentialsSource>,
}

impl fmt::Debug for RubyStyleProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RubyStyleProvider").field("inner", &self.inner).finish()
    }
}

impl RubyStyleProvider {
    /// Starts configuring a provider (same as [`RubyStyleBuilder::new`]).
    pub fn builder() -> RubyStyleBuilder {
        RubyStyleBuilder::new()
    }

    /// A provider configured from the process environment; see [`RubyStyleBuilder::from_env`].
    pub fn from_env() -> Result<Self> {
        RubyStyleBuilder::from_env().build()
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

    /// The scopes requested (the granted ones are on each token: [`AccessToken::scopes`]).
    pub fn scopes(&self) -> &Scopes {
        self.inner.source().scopes()
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
impl TokenProvider for RubyStyleProvider {
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

/// Configures a [`RubyStyleProvider`]; [`build`](RubyStyleBuilder::build) validates everything.
///
/// ```
/// use tokensmith_core::Error;
/// use tokensmith_ruby_style::RubyStyleBuilder;
///
/// let provider = RubyStyleBuilder::new()
///     .base_url("https://api.example.com/v2")
///     .client_id("id")
///     .client_secret("secret")
///     .build()
///     .unwrap();
/// assert_eq!(provider.token_url().as_str(), "https://api.example.com/v2/oauth/token");
///
/// let err = RubyStyleBuilder::new().base_url("https://api.example.com").client_secret("s").build().unwrap_err();
/// assert!(matches!(err, Error::Config { ref key, .. } if key == "client_id"));
/// ```
#[derive(Clone, Default)]
pub struct RubyStyleBuilder {
    base_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scopes: Scopes,
    options: ProviderOptions,
    env_error: Option<Error>,
}

impl fmt::Debug for RubyStyleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RubyStyleBuilder");
        s.field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| REDACTED))
            .field("scopes", &self.scopes);
        self.options.debug_fields(&mut s);
        s.finish()
    }
}

impl RubyStyleBuilder {
    /// An empty builder: the base URL, client id and secret must be set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the process environment: [`ENV_BASE_URL`], [`ENV_CLIENT_ID`],
    /// [`ENV_CLIENT_SECRET`], [`ENV_SCOPE`] and [`ENV_ALLOW_INSECURE_HTTP`]; an empty variable counts
    /// as unset. Setters called afterwards override what was read; problems are reported by
    /// [`build`](RubyStyleBuilder::build), naming the variable.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](RubyStyleBuilder::from_env), reading variables through `get` instead of the
    /// process environment (for tests).
    ///
    /// ```
    /// let get = |name: &str| match name {
    ///     "TOKENSMITH_RUBY_BASE_URL" => Some("https://api.example.com".to_owned()),
    ///     "TOKENSMITH_RUBY_CLIENT_ID" => Some("my-id".to_owned()),
    ///     "TOKENSMITH_RUBY_CLIENT_SECRET" => Some("my-secret".to_owned()),
    ///     _ => None,
    /// };
    /// let provider = tokensmith_ruby_style::RubyStyleBuilder::from_env_with(get).build().unwrap();
    /// assert_eq!(provider.token_url().as_str(), "https://api.example.com/oauth/token");
    /// ```
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        if let Some(url) = get(ENV_BASE_URL) {
            builder = builder.base_url(&url);
        }
        if let Some(id) = get(ENV_CLIENT_ID) {
            builder = builder.client_id(id);
        }
        if let Some(secret) = get(ENV_CLIENT_SECRET) {
            builder = builder.client_secret(secret);
        }
        if let Some(scope) = get(ENV_SCOPE) {
            builder = builder.scopes(Scopes::parse(&scope));
        }
        if let Some(value) = get(ENV_ALLOW_INSECURE_HTTP) {
            match parse_bool_setting(ENV_ALLOW_INSECURE_HTTP, &value) {
                Ok(allow) => builder = builder.allow_insecure_http(allow),
                Err(error) => builder.env_error = Some(error),
            }
        }
        builder
    }

    /// The API's base URL (the seed's `<<api_base_path>>`, required), e.g. `https://api.example.com`.
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.base_url = Some(base_url.to_owned());
        self
    }

    /// The client id (required).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret (required).
    pub fn client_secret(mut self, client_secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// The scopes to request (optional; default: none sent, the server's default scopes apply).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
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

    /// When the cached token is refreshed (default [`RefreshPolicy::default`]).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.options.refresh_policy = policy;
        self
    }

    /// The clock of the cache and of expiry stamps (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.options.clock = Some(clock);
        self
    }

    /// Where tokens are kept between fetches (default: a private in-memory store).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.options.store = Some(store);
        self
    }

    /// Allows a plain `http://` base URL to a host that is not loopback (default `false`). The
    /// credentials then cross the network in clear text: only for networks you trust.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.options.allow_insecure_http = allow;
        self
    }

    /// Validates the configuration and builds the provider. No I/O.
    ///
    /// Fails with [`Error::Config`] naming the key at fault: `base_url` (missing, unparseable, not
    /// `https://`, or plain `http://` to a host that is not loopback without
    /// [`allow_insecure_http`](RubyStyleBuilder::allow_insecure_http)), `client_id`, `client_secret`
    /// (missing or empty), or the environment variable that held an invalid value.
    pub fn build(self) -> Result<RubyStyleProvider> {
        if let Some(error) = self.env_error {
            return Err(error);
        }
        let base_url = self.base_url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "base_url",
                format!(
                    "no base URL is set; call `base_url(..)` or set {ENV_BASE_URL} to the API's URL, e.g. `https://api.example.com`"
                ),
            )
        })?;
        let token_url = token_url(&parse_url("base_url", &base_url, self.options.allow_insecure_http)?)?;
        let client_id = self.client_id.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "client_id",
                format!("no client id is set; call `client_id(..)` or set {ENV_CLIENT_ID} to the id you were issued"),
            )
        })?;
        let client_secret = self.client_secret.filter(|s| !s.expose_secret().is_empty()).ok_or_else(|| {
            Error::config(
                "client_secret",
                format!(
                    "no client secret is set; call `client_secret(..)` or set {ENV_CLIENT_SECRET} to the secret you were issued"
                ),
            )
        })?;
        let client =
            TokenClient::builder(PROVIDER, endpoint(token_url), ClientCredentials::new(client_id, client_secret));
        Ok(RubyStyleProvider { inner: self.options.client_credentials(client, self.scopes)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    fn config_key(result: Result<RubyStyleProvider>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    fn ok() -> RubyStyleBuilder {
        RubyStyleBuilder::new().base_url("https://api.example.com").client_id("id").client_secret("secret")
    }

    #[test]
    fn builder_validates() {
        assert!(ok().build().is_ok());
        assert_eq!(config_key(RubyStyleBuilder::new().client_id("id").client_secret("s").build()), "base_url");
        assert_eq!(config_key(ok().base_url("::").build()), "base_url");
        assert_eq!(config_key(ok().base_url("http://api.example.com").build()), "base_url");
        assert!(ok().base_url("http://api.example.com").allow_insecure_http(true).build().is_ok());
        assert!(ok().base_url("http://127.0.0.1:3000").build().is_ok());
        assert_eq!(config_key(ok().base_url("https://api.example.com/#x").build()), "base_url");
        assert_eq!(config_key(ok().client_id(" ").build()), "client_id");
        assert_eq!(config_key(ok().client_secret("").build()), "client_secret");
    }

    #[test]
    fn token_url_keeps_the_base_path() {
        let url = |base: &str| ok().base_url(base).build().unwrap().token_url().to_string();
        assert_eq!(url("https://h"), "https://h/oauth/token");
        assert_eq!(url("https://h/"), "https://h/oauth/token");
        assert_eq!(url("https://h/api/"), "https://h/api/oauth/token");
    }

    #[test]
    fn from_env_reads_documented_variables() {
        let provider = RubyStyleBuilder::from_env_with(env(&[
            ("TOKENSMITH_RUBY_BASE_URL", "http://api.internal"),
            ("TOKENSMITH_RUBY_CLIENT_ID", "env-id"),
            ("TOKENSMITH_RUBY_CLIENT_SECRET", "env-secret"),
            ("TOKENSMITH_RUBY_SCOPE", "public read"),
            ("TOKENSMITH_RUBY_ALLOW_INSECURE_HTTP", "1"),
        ]))
        .build()
        .unwrap();
        assert_eq!(provider.token_url().as_str(), "http://api.internal/oauth/token");
        assert_eq!(provider.client_id(), "env-id");
        assert_eq!(provider.scopes().to_string(), "public read");
    }

    #[test]
    fn from_env_empty_counts_as_unset_and_bad_values_name_the_variable() {
        let p = RubyStyleBuilder::from_env_with(env(&[
            ("TOKENSMITH_RUBY_BASE_URL", "https://api.example.com"),
            ("TOKENSMITH_RUBY_CLIENT_ID", "id"),
            ("TOKENSMITH_RUBY_CLIENT_SECRET", "s"),
            ("TOKENSMITH_RUBY_SCOPE", " "),
        ]))
        .build()
        .unwrap();
        assert!(p.scopes().is_empty());
        let bad = RubyStyleBuilder::from_env_with(env(&[
            ("TOKENSMITH_RUBY_BASE_URL", "https://api.example.com"),
            ("TOKENSMITH_RUBY_CLIENT_ID", "id"),
            ("TOKENSMITH_RUBY_CLIENT_SECRET", "s"),
            ("TOKENSMITH_RUBY_ALLOW_INSECURE_HTTP", "perhaps"),
        ]));
        assert_eq!(config_key(bad.build()), ENV_ALLOW_INSECURE_HTTP);
        assert_eq!(config_key(RubyStyleBuilder::from_env_with(|_| None).build()), "base_url");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let builder = ok().client_secret("very-secret-value");
        let text = format!("{builder:?}");
        assert!(!text.contains("very-secret-value") && text.contains(REDACTED), "{text}");
        assert!(!format!("{:?}", builder.build().unwrap()).contains("very-secret-value"));
    }
}
