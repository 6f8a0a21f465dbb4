//! A client-credentials dialect as a value, and the one cached provider and builder that serve any
//! such dialect.
//!
//! A provider crate declares its dialect once — name, default address, token path, the endpoint's
//! shape, which settings it takes — and gets a provider with a cache, a builder with setters,
//! `from_env` and a keyed [`with_config`](Builder::with_config), and `build()` validation, all from
//! here:
//!
//! ```
//! use tokensmith_core::dialect::{Builder, Declared, Dialect, Provider};
//! use tokensmith_core::{TokenEndpoint, request::BodyFormat};
//!
//! /// A server that takes a JSON body at `{base}/v1/token`.
//! #[derive(Debug)]
//! pub enum Acme {}
//!
//! impl Declared for Acme {
//!     const DIALECT: Dialect = Dialect::new("acme", |url| TokenEndpoint::new(url).body_format(BodyFormat::Json))
//!         .issuer("Acme")
//!         .env_prefix("ACME")
//!         .default_base_url("https://auth.acme.example")
//!         .token_path("/v1/token")
//!         .scopes();
//! }
//! pub type AcmeProvider = Provider<Acme>;
//! pub type AcmeBuilder = Builder<Acme>;
//!
//! let provider = AcmeBuilder::new().with_config("client_id", "id").client_secret("s").build().unwrap();
//! assert_eq!(provider.token_url().as_str(), "https://auth.acme.example/v1/token");
//! let err = AcmeBuilder::from_env_with(|name| (name == "ACME_CLIENT_ID").then(|| "id".into())).build().unwrap_err();
//! assert!(err.to_string().contains("ACME_CLIENT_SECRET"), "{err}");
//! ```

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::cache::{CachedProvider, ClientCredentialsSource};
use crate::endpoint::{TokenClient, TokenEndpoint};
use crate::error::{Error, Result};
pub use crate::options::ProviderOptions;
use crate::options::parse_bool_setting;
use crate::provider::{SharedTokenProvider, TokenProvider};
use crate::request::{Grant, TokenRequest};
use crate::support::{REDACTED, parse_url};
use crate::token::{AccessToken, ClientCredentials, Scopes};

/// The settings every dialect takes, as [`with_config`](Builder::with_config) keys.
const COMMON_KEYS: &[&str] = &["client_id", "client_secret", "token_url", "base_url", "allow_insecure_http"];

/// What a client-credentials dialect is: plain data, declared once in a `const` (see the
/// [module docs](self)).
#[derive(Clone, Copy)]
pub struct Dialect {
    name: &'static str,
    issuer: &'static str,
    env_prefix: &'static str,
    default_base_url: Option<&'static str>,
    token_path: &'static str,
    token_path_configurable: bool,
    scopes: bool,
    credential_styles: &'static [&'static str],
    env_names: &'static [(&'static str, &'static str)],
    endpoint: fn(Url) -> TokenEndpoint,
    map_error: Option<fn(&Grant, Error) -> Error>,
}

impl fmt::Debug for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialect")
            .field("name", &self.name)
            .field("default_base_url", &self.default_base_url)
            .field("token_path", &self.token_path)
            .field("keys", &self.keys())
            .finish()
    }
}

impl Dialect {
    /// A dialect called `name` (in store keys, logs and messages) whose token endpoint, given its
    /// URL, is what `endpoint` returns (body format, credential style, response format). Its token
    /// URL is `base_url` + `/token` until [`token_path`](Dialect::token_path) says otherwise; it has
    /// no default address, takes no scopes and one credential style.
    pub const fn new(name: &'static str, endpoint: fn(Url) -> TokenEndpoint) -> Self {
        Dialect {
            name,
            issuer: name,
            env_prefix: "",
            default_base_url: None,
            token_path: "/token",
            token_path_configurable: false,
            scopes: false,
            credential_styles: &[],
            env_names: &[],
            endpoint,
            map_error: None,
        }
    }

    /// Who issues the client credentials, for messages ("the client id ProBit issued", "the client id
    /// your Doorkeeper server issued"); default the name.
    pub const fn issuer(mut self, issuer: &'static str) -> Self {
        self.issuer = issuer;
        self
    }

    /// The prefix of the environment variables [`Builder::from_env`] reads: `TOKENSMITH_PROBIT`
    /// gives `TOKENSMITH_PROBIT_CLIENT_ID` and so on (see [`Dialect::env_var`]).
    pub const fn env_prefix(mut self, prefix: &'static str) -> Self {
        self.env_prefix = prefix;
        self
    }

    /// The server's address when none is configured; without one, `base_url` or `token_url` is
    /// required.
    pub const fn default_base_url(mut self, url: &'static str) -> Self {
        self.default_base_url = Some(url);
        self
    }

    /// The token path below the base URL (default `/token`), fixed.
    pub const fn token_path(mut self, path: &'static str) -> Self {
        self.token_path = path;
        self
    }

    /// Lets configuration change the token path (key `token_path`).
    pub const fn configurable_token_path(mut self) -> Self {
        self.token_path_configurable = true;
        self
    }

    /// The dialect takes requested scopes (key `scope`).
    pub const fn scopes(mut self) -> Self {
        self.scopes = true;
        self
    }

    /// The credential styles configuration may choose (key `credential_style`), by
    /// [`style::by_name`](crate::style::by_name) name; the endpoint's own style is the default.
    pub const fn credential_styles(mut self, names: &'static [&'static str]) -> Self {
        self.credential_styles = names;
        self
    }

    /// Environment variables whose names do not follow the prefix rule, as `(key, variable)` pairs
    /// (names a crate documented before it was a declaration keep working).
    pub const fn env_names(mut self, names: &'static [(&'static str, &'static str)]) -> Self {
        self.env_names = names;
        self
    }

    /// Maps the dialect's own error answers to the RFC 6749 errors they mean.
    pub const fn map_error(mut self, map: fn(&Grant, Error) -> Error) -> Self {
        self.map_error = Some(map);
        self
    }

    /// The dialect's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The token endpoint for `token_url`, with the dialect's default credential style.
    pub fn endpoint(&self, token_url: Url) -> TokenEndpoint {
        (self.endpoint)(token_url)
    }

    /// The configuration keys this dialect takes, in documentation order.
    ///
    /// ```
    /// use tokensmith_core::{TokenEndpoint, dialect::Dialect};
    ///
    /// const D: Dialect = Dialect::new("d", TokenEndpoint::new).scopes();
    /// assert_eq!(D.keys(), ["client_id", "client_secret", "token_url", "base_url", "allow_insecure_http", "scope"]);
    /// ```
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys = COMMON_KEYS.to_vec();
        if self.token_path_configurable {
            keys.push("token_path");
        }
        if self.scopes {
            keys.push("scope");
        }
        if !self.credential_styles.is_empty() {
            keys.push("credential_style");
        }
        keys
    }

    /// The environment variable [`Builder::from_env`] reads for `key`: the prefix, `_`, the key in
    /// capitals (`TOKENSMITH_DJANGO` and `scope` give `TOKENSMITH_DJANGO_SCOPE`), unless
    /// [`env_names`](Dialect::env_names) names another.
    pub fn env_var(&self, key: &str) -> String {
        match self.env_names.iter().find(|(k, _)| *k == key) {
            Some((_, var)) => (*var).to_owned(),
            None => format!("{}_{}", self.env_prefix, key.to_ascii_uppercase()),
        }
    }
}

/// A type that names a [`Dialect`]: the parameter of [`Provider`] and [`Builder`], so that
/// `ProbitProvider::builder()` knows its dialect with no value at hand. Usually an empty enum.
pub trait Declared: Send + Sync + 'static {
    /// The dialect.
    const DIALECT: Dialect;
}

/// A cached client-credentials token provider for the dialect `D`.
///
/// Cloning is cheap and clones share the cache. [`token`](Provider::token) returns the cached token
/// while it is fresh and fetches a new one (one request, however many callers wait) when it is due.
pub struct Provider<D> {
    inner: CachedProvider<ClientCredentialsSource>,
    dialect: PhantomData<fn() -> D>,
}

impl<D> Clone for Provider<D> {
    fn clone(&self) -> Self {
        Provider { inner: self.inner.clone(), dialect: PhantomData }
    }
}

impl<D: Declared> fmt::Debug for Provider<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider").field("dialect", &D::DIALECT.name).field("inner", &self.inner).finish()
    }
}

impl<D: Declared> Provider<D> {
    /// Starts configuring a provider (same as [`Builder::new`]).
    pub fn builder() -> Builder<D> {
        Builder::new()
    }

    /// A provider configured from the process environment; see [`Builder::from_env`].
    pub fn from_env() -> Result<Self> {
        Builder::from_env().build()
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
    pub fn token(&self) -> impl std::future::Future<Output = Result<AccessToken>> + Send + '_ {
        self.inner.token()
    }

    /// Wraps the provider in a cloneable [`SharedTokenProvider`] (for
    /// [`AuthorizedClient`](crate::AuthorizedClient) or the facade).
    pub fn shared(self) -> SharedTokenProvider {
        SharedTokenProvider::new(self)
    }
}

#[async_trait]
impl<D: Declared> TokenProvider for Provider<D> {
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

/// Configures a [`Provider`] for the dialect `D`; [`build`](Builder::build) validates everything.
///
/// Every setting can be given three ways: a setter, [`with_config`](Builder::with_config) with its
/// configuration key (what the `tokensmith` facade does), or an environment variable
/// ([`from_env`](Builder::from_env)). An error names the key or the variable the value came from.
pub struct Builder<D> {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    token_url: Option<String>,
    base_url: Option<String>,
    token_path: Option<String>,
    scopes: Option<Scopes>,
    credential_style: Option<String>,
    options: ProviderOptions,
    /// The first bad value given by key or variable, reported by `build`.
    error: Option<Error>,
    /// Where each setting came from, for messages: the key, or the variable it was read from.
    origin: Vec<(&'static str, String)>,
    dialect: PhantomData<fn() -> D>,
}

impl<D> Clone for Builder<D> {
    fn clone(&self) -> Self {
        Builder {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            token_url: self.token_url.clone(),
            base_url: self.base_url.clone(),
            token_path: self.token_path.clone(),
            scopes: self.scopes.clone(),
            credential_style: self.credential_style.clone(),
            options: self.options.clone(),
            error: self.error.clone(),
            origin: self.origin.clone(),
            dialect: PhantomData,
        }
    }
}

impl<D> Default for Builder<D> {
    fn default() -> Self {
        Builder {
            client_id: None,
            client_secret: None,
            token_url: None,
            base_url: None,
            token_path: None,
            scopes: None,
            credential_style: None,
            options: ProviderOptions::default(),
            error: None,
            origin: Vec::new(),
            dialect: PhantomData,
        }
    }
}

impl<D: Declared> fmt::Debug for Builder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Builder");
        s.field("dialect", &D::DIALECT.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| REDACTED))
            .field("token_url", &self.token_url)
            .field("base_url", &self.base_url)
            .field("token_path", &self.token_path)
            .field("scopes", &self.scopes)
            .field("credential_style", &self.credential_style);
        self.options.debug_fields(&mut s);
        s.finish()
    }
}

impl<D: Declared> Builder<D> {
    /// An empty builder: the client id and secret must be set, and the address unless the dialect
    /// has a default one.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the process environment: for each of the dialect's
    /// [keys](Dialect::keys), the variable [`Dialect::env_var`] names (an empty one counts as unset).
    /// Setters called afterwards override what was read; problems are reported by
    /// [`build`](Builder::build), naming the variable.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Builder::from_env), reading variables through `get` instead of the process
    /// environment (for tests).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut builder = Self::new();
        for key in D::DIALECT.keys() {
            let var = D::DIALECT.env_var(key);
            if let Some(value) = get(&var).filter(|v| !v.trim().is_empty()) {
                builder = builder.set(key, &value, var);
            }
        }
        builder
    }

    /// Sets the setting whose configuration key is `key` from its text, as a configuration file
    /// gives it: `client_id`, `client_secret`, `token_url`, `base_url`, `allow_insecure_http`
    /// (`true`/`false`), and where the dialect takes them `token_path`, `scope` (separated by spaces
    /// or commas) and `credential_style`. A key the dialect does not take, or a bad value, is
    /// reported by [`build`](Builder::build), naming the key.
    pub fn with_config(self, key: &str, value: &str) -> Self {
        self.set(key, value, key.to_owned())
    }

    fn set(mut self, key: &str, value: &str, origin: String) -> Self {
        let Some(key) = D::DIALECT.keys().into_iter().find(|k| *k == key) else {
            let message = format!(
                "the `{}` provider does not take this setting; it takes {}",
                D::DIALECT.name,
                D::DIALECT.keys().join(", ")
            );
            self.error.get_or_insert(Error::config(origin, message));
            return self;
        };
        self.origin.push((key, origin.clone()));
        match key {
            "client_id" => self.client_id(value),
            "client_secret" => self.client_secret(value),
            "token_url" => self.token_url(value),
            "base_url" => self.base_url(value),
            "token_path" => self.token_path(value),
            "scope" => self.scopes(Scopes::parse(value)),
            "credential_style" => self.credential_style(value),
            _ => match parse_bool_setting(&origin, value) {
                Ok(allow) => self.allow_insecure_http(allow),
                Err(error) => {
                    self.error.get_or_insert(error);
                    self
                }
            },
        }
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

    /// The token endpoint's full URL, instead of the base URL and the dialect's token path;
    /// `https://`, or `http://` to a loopback host.
    pub fn token_url(mut self, token_url: impl AsRef<str>) -> Self {
        self.token_url = Some(token_url.as_ref().to_owned());
        self
    }

    /// The server's base URL (any path is kept: `https://h/api` + `/oauth/token`); the token URL is
    /// the base URL and the dialect's token path.
    pub fn base_url(mut self, base_url: impl AsRef<str>) -> Self {
        self.base_url = Some(base_url.as_ref().to_owned());
        self
    }

    /// The token path below the base URL, for a dialect whose path may change.
    pub fn token_path(mut self, token_path: impl AsRef<str>) -> Self {
        self.token_path = Some(token_path.as_ref().to_owned());
        self
    }

    /// The scopes to request, for a dialect that takes scopes (default: none sent, the server's
    /// default applies).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// How the client credentials are sent, by name (`basic`, `body`, ...), among those the dialect
    /// allows.
    pub fn credential_style(mut self, style: impl AsRef<str>) -> Self {
        self.credential_style = Some(style.as_ref().trim().to_ascii_lowercase());
        self
    }

    crate::provider_option_setters!();

    /// Where `key` was set: the environment variable it was read from, else the key itself.
    fn origin(&self, key: &'static str) -> String {
        self.origin.iter().rev().find(|(k, _)| *k == key).map_or_else(|| key.to_owned(), |(_, o)| o.clone())
    }

    fn missing(&self, key: &'static str, what: &str) -> Error {
        let dialect = D::DIALECT;
        let var =
            if dialect.env_prefix.is_empty() { String::new() } else { format!(" or set {}", dialect.env_var(key)) };
        Error::config(key, format!("no {what} is set; call `{key}(..)`{var} to the {what} {} issued", dialect.issuer))
    }

    /// The token URL: `token_url`, else the base URL (configured or the dialect's default) joined with
    /// the token path.
    fn resolve_token_url(&self) -> Result<Url> {
        let dialect = D::DIALECT;
        let insecure = self.options.allow_insecure_http;
        if let Some(token_url) = self.token_url.as_deref().filter(|u| !u.trim().is_empty()) {
            if self.token_path.is_some() {
                return Err(Error::config(self.origin("token_path"), "give either token_url or token_path, not both"));
            }
            let url = parse_url(&self.origin("token_url"), token_url, insecure)?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(Error::config(self.origin("token_url"), "the token URL must not have a query or fragment"));
            }
            return Ok(url);
        }
        let base = match (self.base_url.as_deref().filter(|u| !u.trim().is_empty()), dialect.default_base_url) {
            (Some(base), _) => parse_url(&self.origin("base_url"), base, insecure)?,
            (None, Some(default)) => parse_url("base_url", default, insecure)?,
            (None, None) => {
                return Err(Error::config(
                    "base_url",
                    format!(
                        "the `{}` provider has no default address; set base_url (or token_url){}",
                        dialect.name,
                        if dialect.env_prefix.is_empty() {
                            String::new()
                        } else {
                            format!(", e.g. with {}", dialect.env_var("base_url"))
                        }
                    ),
                ));
            }
        };
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Error::config(
                self.origin("base_url"),
                "the base URL must not have a query or fragment; give e.g. `https://auth.example.com`",
            ));
        }
        let path = self.token_path.as_deref().unwrap_or(dialect.token_path);
        if path.contains(['?', '#']) {
            return Err(Error::config(
                self.origin("token_path"),
                format!("the token path must not contain `?` or `#`; give a path like `{}`", dialect.token_path),
            ));
        }
        let mut url = base.clone();
        url.set_path(&format!("{}/{}", base.path().trim_end_matches('/'), path.trim_start_matches('/')));
        Ok(url)
    }

    /// Validates the configuration and builds the provider. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key (or the environment variable) at fault: `client_id` (missing
    /// or empty, or not allowed by the credential style), `client_secret` (missing or empty),
    /// `base_url` (missing where the dialect has no default address, unparseable, not `https://`, or
    /// plain `http://` to a host that is not loopback without
    /// [`allow_insecure_http`](Builder::allow_insecure_http)), `token_url` (likewise), `token_path`,
    /// `scope` or `credential_style` (not taken by the dialect, or not one of its styles), or a
    /// setting the dialect does not take.
    pub fn build(self) -> Result<Provider<D>> {
        let dialect = D::DIALECT;
        if let Some(error) = self.error.clone() {
            return Err(error);
        }
        let refuse = |key: &'static str, what: &str| {
            Err(Error::config(self.origin(key), format!("the `{}` provider {what}", dialect.name)))
        };
        if self.token_path.is_some() && !dialect.token_path_configurable {
            return refuse(
                "token_path",
                &format!("has a fixed token path (`{}`); set token_url instead", dialect.token_path),
            );
        }
        if self.scopes.as_ref().is_some_and(|s| !s.is_empty()) && !dialect.scopes {
            return refuse("scope", "takes no scopes; remove them");
        }
        let token_url = self.resolve_token_url()?;
        let mut endpoint = dialect.endpoint(token_url);
        if let Some(name) = &self.credential_style {
            let style =
                dialect.credential_styles.contains(&name.as_str()).then(|| crate::style::by_name(name)).flatten();
            match style {
                Some(style) => endpoint = endpoint.credential_style(style),
                None => {
                    let allowed = if dialect.credential_styles.is_empty() {
                        "takes no credential_style".to_owned()
                    } else {
                        format!("takes credential_style {}", dialect.credential_styles.join(" or "))
                    };
                    return refuse("credential_style", &format!("does not send credentials as `{name}`; it {allowed}"));
                }
            }
        }
        let client_id = self
            .client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| self.missing("client_id", "client id"))?;
        let client_secret = self
            .client_secret
            .clone()
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| self.missing("client_secret", "client secret"))?;
        let mut client = TokenClient::builder(dialect.name, endpoint, ClientCredentials::new(client_id, client_secret));
        if let Some(map) = dialect.map_error {
            client = client.error_mapper(map);
        }
        let scopes = self.scopes.unwrap_or_default();
        Ok(Provider { inner: self.options.client_credentials(client, scopes)?, dialect: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::BodyFormat;

    enum Plain {}
    impl Declared for Plain {
        const DIALECT: Dialect = Dialect::new("plain", TokenEndpoint::new).issuer("Plain").env_prefix("PLAIN");
    }

    enum Rich {}
    impl Declared for Rich {
        const DIALECT: Dialect = Dialect::new("rich", |url| TokenEndpoint::new(url).body_format(BodyFormat::Json))
            .default_base_url("https://rich.example/api/")
            .token_path("/o/token/")
            .configurable_token_path()
            .scopes()
            .credential_styles(&["basic", "body"])
            .env_prefix("RICH");
    }

    fn key<D: Declared>(builder: Builder<D>) -> String {
        match builder.build() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    fn ok<D: Declared>() -> Builder<D> {
        Builder::new().client_id("id").client_secret("secret")
    }

    #[test]
    fn urls_from_base_path_and_override() {
        assert_eq!(ok::<Rich>().build().unwrap().token_url().as_str(), "https://rich.example/api/o/token/");
        let custom_path = ok::<Rich>().base_url("https://h.example/x").token_path("token").build().unwrap();
        assert_eq!(custom_path.token_url().as_str(), "https://h.example/x/token");
        let full = ok::<Plain>().token_url("https://gw.example/v9/t").base_url("https://ignored.example");
        assert_eq!(full.build().unwrap().token_url().as_str(), "https://gw.example/v9/t");
        assert_eq!(key(ok::<Plain>()), "base_url");
        assert_eq!(key(ok::<Plain>().base_url("http://plain.example")), "base_url");
        assert!(ok::<Plain>().base_url("http://plain.example").allow_insecure_http(true).build().is_ok());
        assert_eq!(key(ok::<Plain>().base_url("https://h.example/?q=1")), "base_url");
        assert_eq!(key(ok::<Rich>().token_path("/t?x")), "token_path");
        assert_eq!(key(ok::<Rich>().token_url("https://h.example/t").token_path("/t")), "token_path");
        assert_eq!(key(ok::<Rich>().token_url("https://h.example/t#f")), "token_url");
        assert_eq!(key(ok::<Rich>().token_url("not a url")), "token_url");
    }

    #[test]
    fn settings_the_dialect_does_not_take_are_refused_by_name() {
        assert_eq!(key(ok::<Plain>().base_url("https://h.example").scopes(Scopes::parse("a"))), "scope");
        assert_eq!(key(ok::<Plain>().base_url("https://h.example").token_path("/t")), "token_path");
        assert_eq!(key(ok::<Plain>().base_url("https://h.example").credential_style("body")), "credential_style");
        assert_eq!(key(ok::<Rich>().credential_style("basic-raw")), "credential_style");
        assert_eq!(key(ok::<Rich>().with_config("redirect_uri", "x")), "redirect_uri");
        assert_eq!(key(ok::<Rich>().with_config("allow_insecure_http", "maybe")), "allow_insecure_http");
        assert_eq!(key(Builder::<Rich>::new().client_secret("s")), "client_id");
        assert_eq!(key(Builder::<Rich>::new().client_id("i").client_secret("")), "client_secret");
        // An empty scope list is not "scopes given".
        assert!(ok::<Plain>().base_url("https://h.example").scopes(Scopes::empty()).build().is_ok());
    }

    #[test]
    fn with_config_and_env_set_the_same_things() {
        let by_key = Builder::<Rich>::new()
            .with_config("client_id", "id")
            .with_config("client_secret", "s")
            .with_config("scope", "read,write")
            .with_config("credential_style", "Body")
            .with_config("base_url", "http://10.0.0.1")
            .with_config("allow_insecure_http", "yes")
            .build()
            .unwrap();
        let vars = [
            ("RICH_CLIENT_ID", "id"),
            ("RICH_CLIENT_SECRET", "s"),
            ("RICH_SCOPE", "read,write"),
            ("RICH_CREDENTIAL_STYLE", "Body"),
            ("RICH_BASE_URL", "http://10.0.0.1"),
            ("RICH_ALLOW_INSECURE_HTTP", "yes"),
            ("RICH_TOKEN_PATH", " "),
        ];
        let by_env =
            Builder::<Rich>::from_env_with(|n| vars.iter().find(|(v, _)| *v == n).map(|(_, x)| (*x).to_owned()))
                .build()
                .unwrap();
        for provider in [&by_key, &by_env] {
            assert_eq!(provider.token_url().as_str(), "http://10.0.0.1/o/token/");
            assert_eq!(provider.scopes().to_string(), "read write");
            let request = provider.token_request().unwrap();
            assert!(!request.has_header("authorization") && request.has_param("client_secret"), "body style");
        }
        let bad = Builder::<Rich>::from_env_with(|n| (n == "RICH_BASE_URL").then(|| "ftp://x".to_owned()));
        assert_eq!(key(bad.client_id("i").client_secret("s")), "RICH_BASE_URL");
        let missing = key(Builder::<Plain>::from_env_with(|_| None).base_url("https://h.example"));
        assert_eq!(missing, "client_id");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let builder = ok::<Rich>().client_secret("very-secret-value");
        let text = format!("{builder:?}");
        assert!(!text.contains("very-secret-value") && text.contains("rich"), "{text}");
        let provider = builder.build().unwrap();
        assert!(!format!("{provider:?}").contains("very-secret-value"));
    }
}
