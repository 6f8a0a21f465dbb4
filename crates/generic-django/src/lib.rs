//! Access tokens from a self-hosted Django OAuth Toolkit server for Rust services: a
//! [`TokenProvider`] that speaks the client-credentials dialect of seed 001, caches the token and
//! refreshes it before it expires.
//!
//! Use this crate when your service talks to one Django OAuth Toolkit (DOT) server; the
//! [`tokensmith`](https://docs.rs/tokensmith) facade picks a provider from configuration instead.
//! Everything common (sending, retries, parsing, errors, the cache) lives in [`tokensmith_core`]; this
//! crate only describes what the dialect does differently.
//!
//! # Example
//!
//! ```
//! use tokensmith_core::{AuthorizedClient, Scopes, TokenProvider};
//! use tokensmith_generic_django::DjangoProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let demo = sandbox.credentials(tokensmith_sandbox::Dialect::GenericDjango);
//! let provider = DjangoProvider::builder()
//!     .base_url("https://payments.example.com")
//!     .client_id("your-client-id")
//!     .client_secret("your-client-secret")
//! #   .base_url(&sandbox.base_url(tokensmith_sandbox::Dialect::GenericDjango))
//! #   .client_id(demo.client_id).client_secret(demo.client_secret)
//!     .scopes(Scopes::parse("read write"))
//!     .build()?;
//!
//! let token = provider.token().await?;
//! assert!(token.scopes().contains("read")); // the granted scopes
//!
//! let client = AuthorizedClient::new(provider.shared());
//! let payments_url = "https://payments.example.com/payments/";
//! # let payments_url = sandbox.protected_url(tokensmith_sandbox::Dialect::GenericDjango);
//! let response = client.send(client.get(payments_url)).await?;
//! println!("payments: HTTP {}", response.status());
//! # assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! Or configure it from the environment (variables `TOKENSMITH_DJANGO_*`, see [`ENV_BASE_URL`] and
//! its siblings) with [`DjangoProvider::from_env`].
//!
//! # The dialect
//!
//! | | Django OAuth Toolkit |
//! | --- | --- |
//! | token endpoint | `POST {base}/o/token/` (path overridable; the trailing slash matters: Django redirects without it) |
//! | client credentials | `Authorization: Basic base64(urlenc(id):urlenc(secret))` (RFC 6749 §2.3.1, default) or `client_id`/`client_secret` in the body ([`DjangoCredentials`]) |
//! | body | form-urlencoded `grant_type=client_credentials&scope=...` |
//! | scopes | space separated: `read`, `write`, `admin` or your server's own; the granted ones are on the token ([`AccessToken::scopes`]) |
//! | token lifetime | `expires_in` (DOT's default is 36000 s) |
//! | errors | RFC 6749: `invalid_request` (400), `invalid_client` (401), `invalid_scope` (400) → [`Error::OAuth`] |
//!
//! DOT decodes each half of the Basic credentials with `unquote_plus`, so the default style
//! form-encodes them first (a raw `+` in a secret would arrive as a space). Scopes the server does
//! not know are refused with `invalid_scope`.
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
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use tokensmith_core::http::{Transport, parse_url};
use tokensmith_core::options::{ProviderOptions, parse_bool_setting};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::style::{BasicAuth, RequestBody};
use tokensmith_core::{
    AccessToken, BodyFormat, CachedProvider, ClientCredentials, ClientCredentialsSource, Clock, CredentialStyle, Error,
    Grant, RefreshPolicy, Result, RetryPolicy, Scopes, SharedTokenProvider, TokenClient, TokenEndpoint, TokenProvider,
    TokenRequest, TokenStore,
};
use url::Url;

/// The token path of Django OAuth Toolkit, below the base URL.
pub const DEFAULT_TOKEN_PATH: &str = "/o/token/";

/// The environment variable holding the server's base URL (required), e.g. `https://auth.example.com`.
pub const ENV_BASE_URL: &str = "TOKENSMITH_DJANGO_BASE_URL";
/// The environment variable overriding the token path (default [`DEFAULT_TOKEN_PATH`]).
pub const ENV_TOKEN_PATH: &str = "TOKENSMITH_DJANGO_TOKEN_PATH";
/// The environment variable holding the client id.
pub const ENV_CLIENT_ID: &str = "TOKENSMITH_DJANGO_CLIENT_ID";
/// The environment variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "TOKENSMITH_DJANGO_CLIENT_SECRET";
/// The environment variable holding the scopes to request, separated by spaces or commas (default:
/// none requested, the server's default applies).
pub const ENV_SCOPE: &str = "TOKENSMITH_DJANGO_SCOPE";
/// The environment variable choosing how credentials are sent: `basic` (default) or `body`.
pub const ENV_CREDENTIALS: &str = "TOKENSMITH_DJANGO_CREDENTIALS";
/// The environment variable allowing plain `http://` to a host that is not loopback (`true`/`false`,
/// `1`/`0`, `yes`/`no`, `on`/`off`).
pub const ENV_ALLOW_INSECURE_HTTP: &str = "TOKENSMITH_DJANGO_ALLOW_INSECURE_HTTP";

const PROVIDER: &str = "generic-django";
const REDACTED: &str = "** redacted **";

/// How the client credentials reach the server; the seed documents both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DjangoCredentials {
    /// `Authorization: Basic base64(urlenc(client_id):urlenc(client_secret))`, RFC 6749 §2.3.1 (the
    /// default, and what the RFC recommends).
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form parameters in the body.
    Body,
}

impl DjangoCredentials {
    /// The core credential style for this choice.
    pub fn style(self) -> Arc<dyn CredentialStyle> {
        match self {
            DjangoCredentials::Basic => Arc::new(BasicAuth),
            DjangoCredentials::Body => Arc::new(RequestBody),
        }
    }

    /// The configuration name: `basic` or `body`.
    pub fn as_str(self) -> &'static str {
        match self {
            DjangoCredentials::Basic => "basic",
            DjangoCredentials::Body => "body",
        }
    }
}

impl fmt::Display for DjangoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DjangoCredentials {
    type Err = Error;

    /// Parses `basic` or `body` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(DjangoCredentials::Basic),
            "body" => Ok(DjangoCredentials::Body),
            other => Err(Error::config(
                "credential_style",
                format!("`{other}` is not a credential style of this provider; use `basic` or `body`"),
            )),
        }
    }
}

/// The dialect as data with the default credential style ([`DjangoCredentials::Basic`]): form body,
/// `grant_type`, scopes separated by spaces.
///
/// ```
/// use tokensmith_core::{BodyFormat, ClientCredentials, Grant, Scopes};
///
/// let endpoint = tokensmith_generic_django::endpoint("https://auth.example.com/o/token/".parse().unwrap());
/// assert_eq!(endpoint.format(), BodyFormat::Form);
/// let request = endpoint
///     .build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "secret"), &Scopes::parse("read write"))
///     .unwrap();
/// assert_eq!(request.wire_body(), b"grant_type=client_credentials&scope=read+write");
/// ```
pub fn endpoint(token_url: Url) -> TokenEndpoint {
    endpoint_with(token_url, DjangoCredentials::Basic)
}

/// The dialect as data with the given credential style.
pub fn endpoint_with(token_url: Url, credentials: DjangoCredentials) -> TokenEndpoint {
    TokenEndpoint::new(token_url).body_format(BodyFormat::Form).credential_style(credentials.style())
}

/// Joins `base_url` and `token_path` (`https://h/app` + `/o/token/` = `https://h/app/o/token/`).
fn join(base_url: &Url, token_path: &str) -> Result<Url> {
    if token_path.contains(['?', '#']) {
        return Err(Error::config(
            "token_path",
            "the token path must not contain `?` or `#`; give a path like `/o/token/`",
        ));
    }
    if base_url.query().is_some() || base_url.fragment().is_some() {
        return Err(Error::config(
            "base_url",
            "the base URL must not have a query or fragment; give e.g. `https://auth.example.com`",
        ));
    }
    let mut url = base_url.clone();
    url.set_path(&format!("{}/{}", base_url.path().trim_end_matches('/'), token_path.trim_start_matches('/')));
    Ok(url)
}

/// A cached Django OAuth Toolkit token provider; see the [crate docs](crate).
///
/// Cloning is cheap and clones share the cache.
#[derive(Clone)]
pub struct DjangoProvider {
    inner: CachedProvider<ClientCredentialsSource>,
}

impl fmt::Debug for DjangoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoProvider").field("inner", &self.inner).finish()
    }
}

impl DjangoProvider {
    /// Starts configuring a provider (same as [`DjangoBuilder::new`]).
    pub fn builder() -> DjangoBuilder {
        DjangoBuilder::new()
    }

    /// A provider configured from the process environment; see [`DjangoBuilder::from_env`].
    pub fn from_env() -> Result<Self> {
        DjangoBuilder::from_env().build()
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
impl TokenProvider for DjangoProvider {
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

/// Configures a [`DjangoProvider`]; [`build`](DjangoBuilder::build) validates everything.
///
/// ```
/// use tokensmith_core::{Error, Scopes};
/// use tokensmith_generic_django::{DjangoBuilder, DjangoCredentials};
///
/// let provider = DjangoBuilder::new()
///     .base_url("https://auth.example.com")
///     .client_id("id")
///     .client_secret("secret")
///     .credential_style(DjangoCredentials::Body)
///     .scopes(Scopes::parse("read write admin"))
///     .build()
///     .unwrap();
/// assert_eq!(provider.token_url().as_str(), "https://auth.example.com/o/token/");
///
/// let err = DjangoBuilder::new().client_id("id").client_secret("s").build().unwrap_err();
/// assert!(matches!(err, Error::Config { ref key, .. } if key == "base_url"));
/// ```
#[derive(Clone, Default)]
pub struct DjangoBuilder {
    base_url: Option<String>,
    token_path: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scopes: Scopes,
    credentials: DjangoCredentials,
    options: ProviderOptions,
    env_error: Option<Error>,
}

impl fmt::Debug for DjangoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("DjangoBuilder");
        s.field("base_url", &self.base_url)
            .field("token_path", &self.token_path)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| REDACTED))
            .field("scopes", &self.scopes)
            .field("credentials", &self.credentials);
        self.options.debug_fields(&mut s);
        s.finish()
    }
}

impl DjangoBuilder {
    /// An empty builder: the base URL, client id and secret must be set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the process environment: [`ENV_BASE_URL`], [`ENV_TOKEN_PATH`],
    /// [`ENV_CLIENT_ID`], [`ENV_CLIENT_SECRET`], [`ENV_SCOPE`], [`ENV_CREDENTIALS`] and
    /// [`ENV_ALLOW_INSECURE_HTTP`]; an empty variable counts as unset. Setters called afterwards
    /// override what was read; problems are reported by [`build`](DjangoBuilder::build), naming the
    /// variable.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](DjangoBuilder::from_env), reading variables through `get` instead of the
    /// process environment (for tests).
    ///
    /// ```
    /// let get = |name: &str| match name {
    ///     "TOKENSMITH_DJANGO_BASE_URL" => Some("https://auth.example.com".to_owned()),
    ///     "TOKENSMITH_DJANGO_CLIENT_ID" => Some("my-id".to_owned()),
    ///     "TOKENSMITH_DJANGO_CLIENT_SECRET" => Some("my-secret".to_owned()),
    ///     "TOKENSMITH_DJANGO_SCOPE" => Some("read write".to_owned()),
    ///     _ => None,
    /// };
    /// let provider = tokensmith_generic_django::DjangoBuilder::from_env_with(get).build().unwrap();
    /// assert_eq!(provider.scopes().to_string(), "read write");
    /// ```
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        if let Some(url) = get(ENV_BASE_URL) {
            builder = builder.base_url(&url);
        }
        if let Some(path) = get(ENV_TOKEN_PATH) {
            builder = builder.token_path(&path);
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
        if let Some(value) = get(ENV_CREDENTIALS) {
            match value.parse::<DjangoCredentials>() {
                Ok(style) => builder = builder.credential_style(style),
                Err(_) => {
                    builder.env_error = Some(Error::config(
                        ENV_CREDENTIALS,
                        format!("`{}` is not a credential style; use `basic` or `body`", value.trim()),
                    ))
                }
            }
        }
        if let Some(value) = get(ENV_ALLOW_INSECURE_HTTP) {
            match parse_bool_setting(ENV_ALLOW_INSECURE_HTTP, &value) {
                Ok(allow) => builder = builder.allow_insecure_http(allow),
                Err(error) => builder.env_error = Some(error),
            }
        }
        builder
    }

    /// The server's base URL, where DOT's URLs are mounted (required), e.g. `https://auth.example.com`
    /// or `https://example.com/api`.
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.base_url = Some(base_url.to_owned());
        self
    }

    /// The token path below the base URL (default [`DEFAULT_TOKEN_PATH`], `/o/token/`).
    pub fn token_path(mut self, token_path: &str) -> Self {
        self.token_path = Some(token_path.to_owned());
        self
    }

    /// The OAuth application's client id (required).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The OAuth application's client secret (required).
    pub fn client_secret(mut self, client_secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// The scopes to request: `read`, `write`, `admin` or any the server defines (default: none sent,
    /// the server's default scopes apply).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// How credentials are sent (default [`DjangoCredentials::Basic`]).
    pub fn credential_style(mut self, credentials: DjangoCredentials) -> Self {
        self.credentials = credentials;
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
    /// [`allow_insecure_http`](DjangoBuilder::allow_insecure_http)), `token_path`, `client_id`,
    /// `client_secret` (missing or empty), or the environment variable that held an invalid value.
    pub fn build(self) -> Result<DjangoProvider> {
        if let Some(error) = self.env_error {
            return Err(error);
        }
        let base_url = self.base_url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "base_url",
                format!("no base URL is set; call `base_url(..)` or set {ENV_BASE_URL} to the server's URL, e.g. `https://auth.example.com`"),
            )
        })?;
        let base_url = parse_url("base_url", &base_url, self.options.allow_insecure_http)?;
        let token_url = join(&base_url, self.token_path.as_deref().unwrap_or(DEFAULT_TOKEN_PATH))?;
        let client_id = self.client_id.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "client_id",
                format!(
                    "no client id is set; call `client_id(..)` or set {ENV_CLIENT_ID} to the application's client id"
                ),
            )
        })?;
        let client_secret = self.client_secret.filter(|s| !s.expose_secret().is_empty()).ok_or_else(|| {
            Error::config(
                "client_secret",
                format!("no client secret is set; call `client_secret(..)` or set {ENV_CLIENT_SECRET} to the application's client secret"),
            )
        })?;
        let client = TokenClient::builder(
            PROVIDER,
            endpoint_with(token_url, self.credentials),
            ClientCredentials::new(client_id, client_secret),
        );
        Ok(DjangoProvider { inner: self.options.client_credentials(client, self.scopes)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    fn config_key(result: Result<DjangoProvider>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    fn ok() -> DjangoBuilder {
        DjangoBuilder::new().base_url("https://auth.example.com").client_id("id").client_secret("secret")
    }

    #[test]
    fn builder_validates() {
        assert!(ok().build().is_ok());
        assert_eq!(config_key(DjangoBuilder::new().client_id("id").client_secret("s").build()), "base_url");
        assert_eq!(config_key(ok().base_url("not a url").build()), "base_url");
        assert_eq!(config_key(ok().base_url("http://auth.example.com").build()), "base_url");
        assert!(ok().base_url("http://auth.example.com").allow_insecure_http(true).build().is_ok());
        assert!(ok().base_url("http://localhost:8000").build().is_ok());
        assert_eq!(config_key(ok().base_url("https://auth.example.com?x=1").build()), "base_url");
        assert_eq!(config_key(ok().token_path("/o/token/?x=1").build()), "token_path");
        assert_eq!(config_key(ok().client_id("").build()), "client_id");
        assert_eq!(config_key(ok().client_secret("").build()), "client_secret");
    }

    #[test]
    fn token_url_joins_base_and_path() {
        let url = |base: &str, path: Option<&str>| {
            let mut b = ok().base_url(base);
            if let Some(p) = path {
                b = b.token_path(p);
            }
            b.build().unwrap().token_url().to_string()
        };
        assert_eq!(url("https://h", None), "https://h/o/token/");
        assert_eq!(url("https://h/", None), "https://h/o/token/");
        assert_eq!(url("https://h/api", None), "https://h/api/o/token/");
        assert_eq!(url("https://h/api/", Some("oauth2/token/")), "https://h/api/oauth2/token/");
    }

    #[test]
    fn from_env_reads_documented_variables() {
        let provider = DjangoBuilder::from_env_with(env(&[
            ("TOKENSMITH_DJANGO_BASE_URL", "http://auth.internal"),
            ("TOKENSMITH_DJANGO_TOKEN_PATH", "/oauth/token/"),
            ("TOKENSMITH_DJANGO_CLIENT_ID", "env-id"),
            ("TOKENSMITH_DJANGO_CLIENT_SECRET", "env-secret"),
            ("TOKENSMITH_DJANGO_SCOPE", "read,admin"),
            ("TOKENSMITH_DJANGO_CREDENTIALS", "BODY"),
            ("TOKENSMITH_DJANGO_ALLOW_INSECURE_HTTP", "yes"),
        ]))
        .build()
        .unwrap();
        assert_eq!(provider.token_url().as_str(), "http://auth.internal/oauth/token/");
        assert_eq!(provider.client_id(), "env-id");
        assert_eq!(provider.scopes().to_string(), "read admin");
        let request = provider.token_request().unwrap();
        assert!(request.has_param("client_secret") && !request.has_header("authorization"));
    }

    #[test]
    fn from_env_empty_counts_as_unset_and_bad_values_name_the_variable() {
        let base = [
            ("TOKENSMITH_DJANGO_BASE_URL", "https://auth.example.com"),
            ("TOKENSMITH_DJANGO_CLIENT_ID", "id"),
            ("TOKENSMITH_DJANGO_CLIENT_SECRET", "s"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(pairs.into_boxed_slice());
            DjangoBuilder::from_env_with(env(pairs)).build()
        };
        let p = with(("TOKENSMITH_DJANGO_TOKEN_PATH", "")).unwrap();
        assert_eq!(p.token_url().path(), DEFAULT_TOKEN_PATH);
        assert!(p.token_request().unwrap().has_header("authorization"));
        assert_eq!(config_key(with(("TOKENSMITH_DJANGO_CREDENTIALS", "header"))), ENV_CREDENTIALS);
        assert_eq!(config_key(with(("TOKENSMITH_DJANGO_ALLOW_INSECURE_HTTP", "sure"))), ENV_ALLOW_INSECURE_HTTP);
        assert_eq!(config_key(DjangoBuilder::from_env_with(|_| None).build()), "base_url");
    }

    #[test]
    fn credentials_parse() {
        assert_eq!("basic".parse::<DjangoCredentials>().unwrap(), DjangoCredentials::Basic);
        assert_eq!(" Body ".parse::<DjangoCredentials>().unwrap(), DjangoCredentials::Body);
        assert!("raw".parse::<DjangoCredentials>().is_err());
        assert_eq!(DjangoCredentials::Body.to_string(), "body");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let builder = ok().client_secret("very-secret-value");
        let text = format!("{builder:?}");
        assert!(!text.contains("very-secret-value") && text.contains(REDACTED), "{text}");
        assert!(!format!("{:?}", builder.build().unwrap()).contains("very-secret-value"));
    }
}
