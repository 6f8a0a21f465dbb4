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

use url::Url;

use crate::endpoint::TokenEndpoint;
use crate::error::Error;
pub use crate::options::ProviderOptions;
use crate::request::Grant;

mod builder;
mod provider;
#[cfg(test)]
mod tests;

pub use builder::Builder;
pub use provider::{Declared, Provider};

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
