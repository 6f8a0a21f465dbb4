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
//! #   .base_url(sandbox.base_url(tokensmith_sandbox::Dialect::RubyStyle))
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
//! siblings) with [`RubyStyleProvider::from_env`](Provider::from_env).
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

use std::sync::Arc;

use tokensmith_core::dialect::{Builder, Declared, Dialect, Provider};
use tokensmith_core::style::RequestBody;
use tokensmith_core::{TokenEndpoint, request::BodyFormat};
use url::Url;

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}

// Names the crate docs link to.
#[cfg(doc)]
use tokensmith_core::{AccessToken, Error, TokenProvider};

/// The token path below the base URL.
pub const TOKEN_PATH: &str = "/oauth/token";

/// The environment variable holding the API's base URL (required), e.g. `https://api.example.com`.
pub const ENV_BASE_URL: &str = "TOKENSMITH_RUBY_BASE_URL";
/// The environment variable giving the token endpoint's full URL instead of the base URL.
pub const ENV_TOKEN_URL: &str = "TOKENSMITH_RUBY_TOKEN_URL";
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

/// The Rails/Doorkeeper-style dialect: `{base}/oauth/token`, no default address, a JSON body with
/// the credentials in it, scopes.
#[derive(Debug)]
pub enum RubyStyle {}

impl Declared for RubyStyle {
    const DIALECT: Dialect = Dialect::new("ruby-style", endpoint)
        .issuer("your Doorkeeper server")
        .env_prefix("TOKENSMITH_RUBY")
        .token_path(TOKEN_PATH)
        .scopes();
}

/// A cached Rails/Doorkeeper-style token provider; see the [crate docs](crate) and [`Provider`].
pub type RubyStyleProvider = Provider<RubyStyle>;

/// Configures a [`RubyStyleProvider`]; see [`Builder`]. The base URL (or token URL), client id and
/// secret are required.
///
/// ```
/// use tokensmith_core::{Error, Scopes};
/// use tokensmith_ruby_style::RubyStyleBuilder;
///
/// let provider = RubyStyleBuilder::new()
///     .base_url("https://api.example.com/v2")
///     .client_id("id")
///     .client_secret("secret")
///     .scopes(Scopes::parse("public"))
///     .build()
///     .unwrap();
/// assert_eq!(provider.token_url().as_str(), "https://api.example.com/v2/oauth/token");
///
/// let err = RubyStyleBuilder::new().client_id("id").client_secret("s").build().unwrap_err();
/// assert!(matches!(err, Error::Config { ref key, .. } if key == "base_url"));
/// ```
pub type RubyStyleBuilder = Builder<RubyStyle>;

/// The dialect as data: a JSON body with `grant_type`, `client_id` and `client_secret`, scopes
/// separated by spaces.
///
/// ```
/// use tokensmith_core::{ClientCredentials, Scopes, request::{BodyFormat, Grant}};
///
/// let endpoint = tokensmith_ruby_style::endpoint("https://api.example.com/oauth/token".parse().unwrap());
/// assert_eq!(endpoint.get_body_format(), BodyFormat::Json);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::{Error, Result};

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
    fn env_constants_are_the_dialects_variables() {
        let dialect = RubyStyle::DIALECT;
        for (key, var) in [
            ("client_id", ENV_CLIENT_ID),
            ("client_secret", ENV_CLIENT_SECRET),
            ("token_url", ENV_TOKEN_URL),
            ("base_url", ENV_BASE_URL),
            ("scope", ENV_SCOPE),
            ("allow_insecure_http", ENV_ALLOW_INSECURE_HTTP),
        ] {
            assert_eq!(dialect.env_var(key), var);
        }
        assert_eq!(dialect.keys().len(), 6);
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
        assert!(!text.contains("very-secret-value") && text.contains("redacted"), "{text}");
        assert!(!format!("{:?}", builder.build().unwrap()).contains("very-secret-value"));
    }
}
