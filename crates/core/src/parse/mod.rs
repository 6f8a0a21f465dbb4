//! Token response parsing: lenient where real providers deviate, strict where it matters.
//!
//! - `expires_in` as a number or a numeric string (ProBit has sent `"900"`); when it is missing the
//!   configured [`fallback_lifetime`](ResponseFormat::fallback_lifetime) applies, never "valid forever";
//!   zero or negative is refused (the token would already be expired); huge values are capped at
//!   [`max_lifetime`](ResponseFormat::max_lifetime);
//! - `token_type` compared case-insensitively; only bearer tokens are accepted (a missing type is taken
//!   as bearer);
//! - scopes split on spaces or commas (WhiteBIT uses commas), or given as a JSON array;
//! - an optional envelope given as a JSON pointer (`/data` for WhiteBIT);
//! - or, for a server that renames every field, a JSON pointer per field ([`ResponseField`]),
//!   including an absolute [`ExpiresAt`](ResponseField::ExpiresAt) (epoch seconds or RFC 3339) and the
//!   error code and description of its error answers;
//! - `application/x-www-form-urlencoded` bodies accepted;
//! - fields not interpreted are kept in [`AccessToken::extra`](crate::AccessToken::extra);
//! - an `error` member in a 200 response is an error; a missing `access_token` is an error;
//! - a response without a new refresh token keeps the previous one.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tokensmith_core::{parse::{ResponseFormat, parse_response}, http::HttpResponse};
//!
//! let format = ResponseFormat::default().envelope("/data");
//! let response = HttpResponse::json(200, r#"{"data":{"access_token":"t","expires_in":"300","scope":"a,b","token_type":"bearer"}}"#);
//! let token = parse_response(&response, &format, SystemTime::now(), None).unwrap();
//! assert_eq!(token.lifetime(), Duration::from_secs(300));
//! assert!(token.scopes().contains("b"));
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

mod refusal;
mod rfc3339;
#[cfg(test)]
mod tests;
mod token;

pub use refusal::{parse_error, parse_error_with};
pub use token::parse_response;

/// A member of a token response (or of an error answer) that a [`ResponseFormat`] can find at a JSON
/// pointer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseField {
    /// The access token (`access_token`).
    AccessToken,
    /// The lifetime in seconds, a number or a numeric string (`expires_in`).
    ExpiresIn,
    /// The absolute expiry, instead of [`ExpiresIn`](Self::ExpiresIn): epoch seconds (a number or a
    /// numeric string) or an RFC 3339 timestamp. Read only when given a pointer.
    ExpiresAt,
    /// The token type (`token_type`); only bearer tokens are accepted.
    TokenType,
    /// The refresh token (`refresh_token`).
    RefreshToken,
    /// The granted scopes (`scope`).
    Scope,
    /// The error code of an error answer (`error`).
    Error,
    /// The error description of an error answer (`error_description`).
    ErrorDescription,
}

impl ResponseField {
    /// Every field, in documentation order.
    pub const ALL: [ResponseField; 8] = [
        ResponseField::AccessToken,
        ResponseField::ExpiresIn,
        ResponseField::ExpiresAt,
        ResponseField::TokenType,
        ResponseField::RefreshToken,
        ResponseField::Scope,
        ResponseField::Error,
        ResponseField::ErrorDescription,
    ];

    /// The RFC 6749 member name, which is also the field's configuration key under `[response]`.
    ///
    /// ```
    /// use tokensmith_core::parse::ResponseField;
    ///
    /// assert_eq!(ResponseField::from_name("expires_in"), Some(ResponseField::ExpiresIn));
    /// assert_eq!(ResponseField::ExpiresIn.name(), "expires_in");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ResponseField::AccessToken => "access_token",
            ResponseField::ExpiresIn => "expires_in",
            ResponseField::ExpiresAt => "expires_at",
            ResponseField::TokenType => "token_type",
            ResponseField::RefreshToken => "refresh_token",
            ResponseField::Scope => "scope",
            ResponseField::Error => "error",
            ResponseField::ErrorDescription => "error_description",
        }
    }

    /// The field named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<ResponseField> {
        ResponseField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The latest absolute expiry believed: 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const MAX_EPOCH_SECS: u64 = 253_402_300_799;

/// How a provider shapes its token responses.
///
/// By default the RFC 6749 names at the root of the body. [`envelope`](Self::envelope) moves them all
/// under one JSON pointer; [`field`](Self::field) gives any one of them a pointer of its own (from the
/// root of the body, not from the envelope):
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::http::HttpResponse;
/// use tokensmith_core::parse::{ResponseField, ResponseFormat, parse_response};
///
/// let format = ResponseFormat::default()
///     .field(ResponseField::AccessToken, "/issued/bearer")
///     .field(ResponseField::ExpiresIn, "/issued/lifetime")
///     .field(ResponseField::Error, "/problem/type")
///     .field(ResponseField::ErrorDescription, "/problem/detail");
/// let answer = HttpResponse::json(200, r#"{"issued":{"bearer":"t","lifetime":"900"}}"#);
/// let token = parse_response(&answer, &format, SystemTime::now(), None).unwrap();
/// assert_eq!(token.lifetime(), Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFormat {
    envelope: Option<String>,
    pointers: Vec<(ResponseField, String)>,
    fallback_lifetime: Duration,
    max_lifetime: Duration,
}

impl Default for ResponseFormat {
    /// No envelope, a 1 hour fallback lifetime, a 30 day cap.
    fn default() -> Self {
        ResponseFormat {
            envelope: None,
            pointers: Vec::new(),
            fallback_lifetime: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl ResponseFormat {
    /// `field` is found at this JSON pointer (RFC 6901) from the root of the body, e.g.
    /// `/issued/bearer`. Fields given no pointer keep their RFC 6749 name, under the
    /// [`envelope`](Self::envelope) if there is one. An empty pointer takes the field's pointer back.
    pub fn field(mut self, field: ResponseField, pointer: impl Into<String>) -> Self {
        let pointer = pointer.into();
        self.pointers.retain(|(f, _)| *f != field);
        if !pointer.is_empty() {
            self.pointers.push((field, pointer));
        }
        self
    }

    /// The pointer given to `field`, if any.
    pub fn field_pointer(&self, field: ResponseField) -> Option<&str> {
        self.pointers.iter().find(|(f, _)| *f == field).map(|(_, p)| p.as_str())
    }

    /// Where `field` is read from: its own pointer, or its RFC 6749 name under the envelope.
    fn pointer_of(&self, field: ResponseField) -> String {
        match self.field_pointer(field) {
            Some(p) => p.to_owned(),
            None => format!("{}/{}", self.envelope.as_deref().unwrap_or(""), field.name()),
        }
    }

    /// How errors name `field`: `` `access_token` ``, with its pointer when it has one.
    fn label(&self, field: ResponseField) -> String {
        match self.field_pointer(field) {
            Some(p) => format!("`{}` (at `{p}`)", field.name()),
            None => format!("`{}`", field.name()),
        }
    }

    /// The token fields live under this JSON pointer (RFC 6901), e.g. `/data`. An empty pointer means
    /// no envelope.
    pub fn envelope(mut self, pointer: impl Into<String>) -> Self {
        let pointer = pointer.into();
        self.envelope = if pointer.is_empty() { None } else { Some(pointer) };
        self
    }

    /// The lifetime assumed when a response has no `expires_in` (default 1 hour).
    pub fn fallback_lifetime(mut self, lifetime: Duration) -> Self {
        self.fallback_lifetime = lifetime;
        self
    }

    /// The longest lifetime believed; larger `expires_in` values are capped (default 30 days).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// The envelope pointer, if any.
    pub fn envelope_pointer(&self) -> Option<&str> {
        self.envelope.as_deref()
    }

    /// Checks the envelope pointer's syntax, naming `key` in the error.
    pub fn validate(&self, key: &str) -> Result<()> {
        if let Some(p) = &self.envelope {
            if !p.starts_with('/') {
                return Err(Error::config(
                    key,
                    format!("`{p}` is not a JSON pointer; it must start with `/`, e.g. `/data`"),
                ));
            }
        }
        for (field, pointer) in &self.pointers {
            if !pointer.starts_with('/') {
                return Err(Error::config(
                    format!("response.{}", field.name()),
                    format!("`{pointer}` is not a JSON pointer; it must start with `/`, e.g. `/issued/bearer`"),
                ));
            }
        }
        if self.field_pointer(ResponseField::ExpiresAt).is_some()
            && self.field_pointer(ResponseField::ExpiresIn).is_some()
        {
            return Err(Error::config(
                "response.expires_at",
                "give `expires_in` (a lifetime) or `expires_at` (an absolute expiry), not both",
            ));
        }
        if self.fallback_lifetime.is_zero() {
            return Err(Error::config("fallback_lifetime", "the fallback lifetime must be more than zero seconds"));
        }
        Ok(())
    }
}
