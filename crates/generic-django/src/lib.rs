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
//! #   .base_url(sandbox.base_url(tokensmith_sandbox::Dialect::GenericDjango))
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
//! its siblings) with [`DjangoProvider::from_env`](Provider::from_env).
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

use tokensmith_core::dialect::{Builder, Declared, Dialect, Provider};
use tokensmith_core::style::{self, BasicAuth, RequestBody};
use tokensmith_core::{Error, Result, TokenEndpoint, request::BodyFormat, style::CredentialStyle};
use url::Url;

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}

// Names the crate docs link to.
#[cfg(doc)]
use tokensmith_core::{AccessToken, TokenProvider};

/// The token path of Django OAuth Toolkit, below the base URL.
pub const DEFAULT_TOKEN_PATH: &str = "/o/token/";

/// The environment variable holding the server's base URL (required), e.g. `https://auth.example.com`.
pub const ENV_BASE_URL: &str = "TOKENSMITH_DJANGO_BASE_URL";
/// The environment variable overriding the token path (default [`DEFAULT_TOKEN_PATH`]).
pub const ENV_TOKEN_PATH: &str = "TOKENSMITH_DJANGO_TOKEN_PATH";
/// The environment variable giving the token endpoint's full URL instead of the base URL and path.
pub const ENV_TOKEN_URL: &str = "TOKENSMITH_DJANGO_TOKEN_URL";
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

/// Django OAuth Toolkit's dialect: `{base}/o/token/` (path configurable), no default address, a
/// form body, scopes, Basic (default) or body credentials.
#[derive(Debug)]
pub enum GenericDjango {}

impl Declared for GenericDjango {
    const DIALECT: Dialect = Dialect::new("generic-django", endpoint)
        .issuer("your Django OAuth Toolkit server")
        .env_prefix("TOKENSMITH_DJANGO")
        .env_names(&[("credential_style", ENV_CREDENTIALS)])
        .token_path(DEFAULT_TOKEN_PATH)
        .configurable_token_path()
        .scopes()
        .credential_styles(&["basic", "body"]);
}

/// A cached Django OAuth Toolkit token provider; see the [crate docs](crate) and [`Provider`].
pub type DjangoProvider = Provider<GenericDjango>;

/// Configures a [`DjangoProvider`]; see [`Builder`]. The base URL (or token URL), client id and
/// secret are required.
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
pub type DjangoBuilder = Builder<GenericDjango>;

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

impl AsRef<str> for DjangoCredentials {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for DjangoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DjangoCredentials {
    type Err = Error;

    /// Parses `basic` or `body` (case-insensitive), with core's one parser of style names.
    fn from_str(s: &str) -> Result<Self> {
        match style::by_name(s).as_deref().map(CredentialStyle::name) {
            Some("basic") => Ok(DjangoCredentials::Basic),
            Some("body") => Ok(DjangoCredentials::Body),
            _ => Err(Error::config(
                "credential_style",
                format!(
                    "`{}` is not a credential style of this provider; use `basic` or `body`",
                    s.trim().to_ascii_lowercase()
                ),
            )),
        }
    }
}

/// The dialect as data with the default credential style ([`DjangoCredentials::Basic`]): form body,
/// `grant_type`, scopes separated by spaces.
///
/// ```
/// use tokensmith_core::{ClientCredentials, Scopes, request::{BodyFormat, Grant}};
///
/// let endpoint = tokensmith_generic_django::endpoint("https://auth.example.com/o/token/".parse().unwrap());
/// assert_eq!(endpoint.get_body_format(), BodyFormat::Form);
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
    fn env_constants_are_the_dialects_variables() {
        let dialect = GenericDjango::DIALECT;
        for (key, var) in [
            ("client_id", ENV_CLIENT_ID),
            ("client_secret", ENV_CLIENT_SECRET),
            ("token_url", ENV_TOKEN_URL),
            ("base_url", ENV_BASE_URL),
            ("token_path", ENV_TOKEN_PATH),
            ("scope", ENV_SCOPE),
            ("credential_style", ENV_CREDENTIALS),
            ("allow_insecure_http", ENV_ALLOW_INSECURE_HTTP),
        ] {
            assert_eq!(dialect.env_var(key), var);
        }
        assert_eq!(dialect.keys().len(), 8);
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
        assert!(!text.contains("very-secret-value") && text.contains("redacted"), "{text}");
        assert!(!format!("{:?}", builder.build().unwrap()).contains("very-secret-value"));
    }
}
