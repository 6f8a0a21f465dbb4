//! [`Builder`]: a declared provider configured in code or from settings.

use std::fmt;
use std::marker::PhantomData;

use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use super::provider::{Declared, Provider};
use crate::endpoint::TokenClient;
use crate::error::{Error, Result};
use crate::options::{ProviderOptions, parse_bool_setting};
use crate::support::{REDACTED, parse_url};
use crate::token::{ClientCredentials, Scopes};

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
    /// [keys](super::Dialect::keys), the variable [`Dialect::env_var`](super::Dialect::env_var) names (an empty one counts as unset).
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
        let mut builder = match key {
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
        };
        // After the setter, which forgets where an earlier value of the key came from.
        builder.origin.push((key, origin));
        builder
    }

    /// Forgets where `key` was set: a value given in code replaces one read from a variable, and an
    /// error about it must name the key, not the variable.
    fn set_in_code(&mut self, key: &str) {
        self.origin.retain(|(k, _)| *k != key);
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
        self.set_in_code("token_url");
        self.token_url = Some(token_url.as_ref().to_owned());
        self
    }

    /// The server's base URL (any path is kept: `https://h/api` + `/oauth/token`); the token URL is
    /// the base URL and the dialect's token path.
    pub fn base_url(mut self, base_url: impl AsRef<str>) -> Self {
        self.set_in_code("base_url");
        self.base_url = Some(base_url.as_ref().to_owned());
        self
    }

    /// The token path below the base URL, for a dialect whose path may change.
    pub fn token_path(mut self, token_path: impl AsRef<str>) -> Self {
        self.set_in_code("token_path");
        self.token_path = Some(token_path.as_ref().to_owned());
        self
    }

    /// The scopes to request, for a dialect that takes scopes (default: none sent, the server's
    /// default applies).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.set_in_code("scope");
        self.scopes = Some(scopes);
        self
    }

    /// How the client credentials are sent, by name (`basic`, `body`, ...), among those the dialect
    /// allows.
    pub fn credential_style(mut self, style: impl AsRef<str>) -> Self {
        self.set_in_code("credential_style");
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
