//! [`TokenRequest`]: a plain value describing one request to a token endpoint.
//!
//! A request is built with no I/O, so a provider's exact wire shape can be inspected and snapshot
//! tested. Its `Serialize` and `Debug` renderings replace every secret with `[redacted]`; the
//! [`wire_body`](TokenRequest::wire_body) and [`wire_headers`](TokenRequest::wire_headers) methods give
//! the real bytes to the transport.
//!
//! ```
//! use tokensmith_core::{ClientCredentials, style::{BasicAuthRaw, CredentialStyle as _}, request::{BodyFormat, Grant, TokenRequest}};
//!
//! let url = "https://accounts.probit.com/token".parse().unwrap();
//! let request = TokenRequest::for_grant(url, BodyFormat::Json, &Grant::ClientCredentials);
//! let request = BasicAuthRaw.shape(&ClientCredentials::new("id", "secret"), request).unwrap();
//! assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
//! assert!(!format!("{request:?}").contains("secret\""));
//! ```

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::support::REDACTED;
use crate::token::RefreshToken;

#[cfg(test)]
mod tests;
mod token_request;

pub use token_request::TokenRequest;

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749's format).
    #[default]
    Form,
    /// `application/json` with an object of string values (ProBit, Doorkeeper).
    Json,
}

impl BodyFormat {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        }
    }
}

/// The grant a token request asks for.
#[derive(Clone)]
#[non_exhaustive]
pub enum Grant {
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// `authorization_code` (RFC 6749 §4.1.3), with PKCE's `code_verifier` (RFC 7636) when used.
    AuthorizationCode {
        /// The code from the authorization callback.
        code: SecretString,
        /// The redirect URI, when the authorization request carried one.
        redirect_uri: Option<String>,
        /// The PKCE code verifier.
        code_verifier: Option<SecretString>,
    },
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken(RefreshToken),
}

impl Grant {
    /// The `grant_type` value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
        }
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::ClientCredentials => f.write_str("ClientCredentials"),
            Grant::AuthorizationCode { redirect_uri, code_verifier, .. } => f
                .debug_struct("AuthorizationCode")
                .field("code", &REDACTED)
                .field("redirect_uri", redirect_uri)
                .field("code_verifier", &code_verifier.as_ref().map(|_| REDACTED))
                .finish(),
            Grant::RefreshToken(_) => f.write_str("RefreshToken([redacted])"),
        }
    }
}

/// A parameter or header value: public, or a secret that is redacted in every rendering.
#[derive(Clone)]
#[non_exhaustive]
pub enum Value {
    /// A value that may be shown.
    Plain(String),
    /// A secret.
    Secret(SecretString),
    /// An HTTP Basic credential: `Basic base64(user:password)` where `user` is shown and `password`
    /// is secret. Redacted renderings show `Basic base64(<user>:[redacted])`, so a snapshot still shows
    /// how the id was encoded.
    Basic {
        /// The user part as placed before base64 (already encoded as the credential style requires).
        user: String,
        /// The password part as placed before base64.
        password: SecretString,
    },
}

impl Value {
    fn expose(&self) -> String {
        match self {
            Value::Plain(s) => s.clone(),
            Value::Secret(s) => s.expose_secret().to_owned(),
            Value::Basic { user, password } => {
                let raw = format!("{user}:{}", password.expose_secret());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
            }
        }
    }

    fn redacted(&self) -> String {
        match self {
            Value::Plain(s) => s.clone(),
            Value::Secret(_) => REDACTED.to_owned(),
            Value::Basic { user, .. } => format!("Basic base64({user}:{REDACTED})"),
        }
    }

    fn is_secret(&self) -> bool {
        !matches!(self, Value::Plain(_))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Plain(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Plain(s)
    }
}

impl From<SecretString> for Value {
    fn from(s: SecretString) -> Self {
        Value::Secret(s)
    }
}
