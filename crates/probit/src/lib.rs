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
//! Or configure it from the environment ([`ENV_CLIENT_ID`], [`ENV_CLIENT_SECRET`], [`ENV_TOKEN_URL`]
//! or [`ENV_BASE_URL`], [`ENV_ALLOW_INSECURE_HTTP`]) with [`ProbitProvider::from_env`](Provider::from_env).
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

use std::time::Duration;

use tokensmith_core::dialect::{Builder, Declared, Dialect, Provider};
use tokensmith_core::parse::ResponseFormat;
use tokensmith_core::style::BasicAuthRaw;
use tokensmith_core::{
    Error, TokenEndpoint,
    error::{OAuthError, OAuthErrorCode},
    request::{BodyFormat, Grant},
};
use url::Url;

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}

// The README's first example (at the workspace root) is compiled as a doctest of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

// Names the crate docs link to.
#[cfg(doc)]
use tokensmith_core::TokenProvider;

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
/// The environment variable overriding the base URL (the token URL is then `{base}/token`).
pub const ENV_BASE_URL: &str = "TOKENSMITH_PROBIT_BASE_URL";
/// The environment variable allowing plain `http://` to a host that is not loopback (`true`/`false`,
/// `1`/`0`, `yes`/`no`, `on`/`off`).
pub const ENV_ALLOW_INSECURE_HTTP: &str = "TOKENSMITH_PROBIT_ALLOW_INSECURE_HTTP";

/// ProBit's dialect: `{base}/token` at `accounts.probit.com`, raw HTTP Basic credentials, a JSON
/// body with `grant_type`, no scopes, a short fallback lifetime, ProBit's error codes mapped.
#[derive(Debug)]
pub enum Probit {}

impl Declared for Probit {
    const DIALECT: Dialect = Dialect::new("probit", endpoint)
        .issuer("ProBit")
        .env_prefix("TOKENSMITH_PROBIT")
        .default_base_url("https://accounts.probit.com")
        .map_error(map_error);
}

/// A cached ProBit token provider; see the [crate docs](crate) and [`Provider`].
pub type ProbitProvider = Provider<Probit>;

/// Configures a [`ProbitProvider`]; see [`Builder`]. The client id and secret are required; the
/// token URL defaults to [`DEFAULT_TOKEN_URL`].
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
///
/// let get = |name: &str| match name {
///     "TOKENSMITH_PROBIT_CLIENT_ID" => Some("my-id".to_owned()),
///     "TOKENSMITH_PROBIT_CLIENT_SECRET" => Some("my-secret".to_owned()),
///     _ => None,
/// };
/// let provider = ProbitBuilder::from_env_with(get).build().unwrap();
/// assert_eq!(provider.token_url().as_str(), tokensmith_probit::DEFAULT_TOKEN_URL);
/// ```
pub type ProbitBuilder = Builder<Probit>;

/// ProBit's dialect as data: raw HTTP Basic credentials, a JSON body with `grant_type`, no scopes, a
/// short fallback lifetime.
///
/// ```
/// use tokensmith_core::{ClientCredentials, Scopes, request::{BodyFormat, Grant}};
///
/// let endpoint = tokensmith_probit::endpoint(tokensmith_probit::DEFAULT_TOKEN_URL.parse().unwrap());
/// assert_eq!(endpoint.get_body_format(), BodyFormat::Json);
/// assert_eq!(endpoint.get_credential_style().name(), "basic-raw");
/// let request = endpoint
///     .build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "secret"), &Scopes::empty())
///     .unwrap();
/// assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
/// ```
pub fn endpoint(token_url: Url) -> TokenEndpoint {
    TokenEndpoint::new(token_url)
        .body_format(BodyFormat::Json)
        .credential_style(std::sync::Arc::new(BasicAuthRaw))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::{Result, error::HttpError};

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
    fn env_constants_are_the_dialects_variables() {
        let dialect = Probit::DIALECT;
        for (key, var) in [
            ("client_id", ENV_CLIENT_ID),
            ("client_secret", ENV_CLIENT_SECRET),
            ("token_url", ENV_TOKEN_URL),
            ("base_url", ENV_BASE_URL),
            ("allow_insecure_http", ENV_ALLOW_INSECURE_HTTP),
        ] {
            assert_eq!(dialect.env_var(key), var);
        }
        assert_eq!(dialect.keys(), ["client_id", "client_secret", "token_url", "base_url", "allow_insecure_http"]);
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
        assert!(!text.contains("very-secret-value") && text.contains("redacted"), "{text}");
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
