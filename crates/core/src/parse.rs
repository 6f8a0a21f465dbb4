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
//! - fields not interpreted are kept in [`AccessToken::extra`];
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

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::{Error, HttpError, OAuthError, OAuthErrorCode, Result};
use crate::http::HttpResponse;
use crate::support::excerpt;
use crate::token::{AccessToken, RefreshToken, Scopes};

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

/// Parses a token endpoint response into a token, or into the error it carries.
///
/// `now` is when the response arrived (expiry is counted from it); `previous_refresh` is kept when
/// the response brings no new refresh token.
pub fn parse_response(
    response: &HttpResponse,
    format: &ResponseFormat,
    now: SystemTime,
    previous_refresh: Option<&RefreshToken>,
) -> Result<AccessToken> {
    if !(200..300).contains(&response.status) {
        return Err(parse_error_with(response, format, now));
    }
    // The common case, a JSON object at the top: read in one pass, without building a map first.
    // Anything else (an envelope, fields at pointers of their own, form data, an `error` member, a
    // body that is not a JSON object) takes the general path below, which also words the errors.
    if format.envelope.is_none() && format.pointers.is_empty() {
        if let Some(fields) = TokenFields::from_json(response) {
            return token_from_parts(fields, format, now, previous_refresh);
        }
    }
    let body = decode_body(response).ok_or_else(|| {
        let content_type = response.content_type().unwrap_or("none");
        // A success body that does not parse may still hold a token: show text only from HTML pages.
        if looks_like_html(response) {
            Error::invalid_response(format!(
                "the body is an HTML page (content type `{content_type}`): {}",
                excerpt(&String::from_utf8_lossy(&response.body), 80)
            ))
        } else {
            Error::invalid_response(format!(
                "the body ({} bytes, content type `{content_type}`) is neither valid JSON nor form data",
                response.body.len()
            ))
        }
    })?;
    if !format.pointers.is_empty() {
        return token_at_pointers(body, response, format, now, previous_refresh);
    }
    let mut body = body;
    if let Some(error) = body.as_object().and_then(|b| oauth_error_in(b, response, now)) {
        return Err(Error::OAuth(error));
    }
    // Taken out of the body rather than cloned: the token's fields are moved into it.
    let fields = match format.envelope.as_deref() {
        Some(pointer) => body
            .pointer_mut(pointer)
            .map(Value::take)
            .ok_or_else(|| Error::invalid_response(format!("the envelope `{pointer}` is missing from the response")))?,
        None => body,
    };
    let Value::Object(fields) = fields else {
        return Err(Error::invalid_response("the response is not a JSON object"));
    };
    if format.envelope.is_some() {
        if let Some(error) = oauth_error_in(&fields, response, now) {
            return Err(Error::OAuth(error));
        }
    }
    token_from_fields(fields, format, now, previous_refresh)
}

/// The general path for a format whose fields have pointers of their own: each field is taken out of
/// the body at its pointer, and what is left of the object that held the access token is kept for
/// [`AccessToken::extra`].
fn token_at_pointers(
    mut body: Value,
    response: &HttpResponse,
    format: &ResponseFormat,
    now: SystemTime,
    previous_refresh: Option<&RefreshToken>,
) -> Result<AccessToken> {
    if let Some(error) = oauth_error_at(&body, response, format, now) {
        return Err(Error::OAuth(error));
    }
    let access = format.pointer_of(ResponseField::AccessToken);
    let mut fields = TokenFields {
        access_token: take_pointer(&mut body, &access),
        token_type: take_pointer(&mut body, &format.pointer_of(ResponseField::TokenType)),
        scope: take_pointer(&mut body, &format.pointer_of(ResponseField::Scope)),
        refresh_token: take_pointer(&mut body, &format.pointer_of(ResponseField::RefreshToken)),
        ..TokenFields::default()
    };
    match format.field_pointer(ResponseField::ExpiresAt) {
        Some(pointer) => fields.expires_at = take_pointer(&mut body, pointer),
        None => fields.expires_in = take_pointer(&mut body, &format.pointer_of(ResponseField::ExpiresIn)),
    }
    if let Some(Value::Object(rest)) = body.pointer_mut(parent_pointer(&access)).map(Value::take) {
        fields.extra = rest;
    }
    token_from_parts(fields, format, now, previous_refresh)
}

/// The pointer of the value that holds the one `pointer` points at (`""` for a member of the root).
fn parent_pointer(pointer: &str) -> &str {
    pointer.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Takes the value at `pointer` out of `body`: a member is removed from its object, an array item is
/// left as `null`.
fn take_pointer(body: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    match body.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&last.replace("~1", "/").replace("~0", "~")),
        other => other.pointer_mut(&format!("/{last}")).map(Value::take),
    }
}

/// The error a body carries where `format` says errors are: the error code at its pointer (or
/// `error` at the root, then under the envelope), with the description at its own pointer or beside
/// the code.
fn oauth_error_at(
    body: &Value,
    response: &HttpResponse,
    format: &ResponseFormat,
    now: SystemTime,
) -> Option<OAuthError> {
    let candidates: Vec<String> = match format.field_pointer(ResponseField::Error) {
        Some(pointer) => vec![pointer.to_owned()],
        None => std::iter::once("/error".to_owned())
            .chain(format.envelope.as_deref().map(|e| format!("{e}/error")))
            .collect(),
    };
    let (pointer, code) = candidates.iter().find_map(|p| Some((p, body.pointer(p)?.as_str()?)))?;
    let beside = |name: &str| body.pointer(&format!("{}/{name}", parent_pointer(pointer)));
    let description = match format.field_pointer(ResponseField::ErrorDescription) {
        Some(p) => body.pointer(p),
        None => beside("error_description"),
    };
    let mut error = OAuthError::new(OAuthErrorCode::parse(code), response.status);
    if let Some(d) = description.and_then(Value::as_str) {
        error = error.with_description(d);
    }
    error.uri = beside("error_uri").and_then(Value::as_str).map(|u| excerpt(u, 200));
    error.retry_after = retry_after(response, now);
    Some(error)
}

fn token_from_fields(
    fields: Map<String, Value>,
    format: &ResponseFormat,
    now: SystemTime,
    previous_refresh: Option<&RefreshToken>,
) -> Result<AccessToken> {
    let mut parts = TokenFields::default();
    for (name, value) in fields {
        parts.put(name.into(), value);
    }
    token_from_parts(parts, format, now, previous_refresh)
}

/// The members of a token response, each standard one moved to its place and the rest kept for
/// [`AccessToken::extra`].
#[derive(Default)]
struct TokenFields {
    access_token: Option<Value>,
    token_type: Option<Value>,
    expires_in: Option<Value>,
    /// Only read at a pointer of its own: no RFC 6749 member holds it.
    expires_at: Option<Value>,
    scope: Option<Value>,
    refresh_token: Option<Value>,
    /// An `error` member was seen (an error in a success response: the general path words it).
    error: bool,
    extra: Map<String, Value>,
}

impl TokenFields {
    /// A later member of the same name replaces an earlier one, as in `serde_json::Value`.
    fn put(&mut self, name: std::borrow::Cow<'_, str>, value: Value) {
        match name.as_ref() {
            "access_token" => self.access_token = Some(value),
            "token_type" => self.token_type = Some(value),
            "expires_in" => self.expires_in = Some(value),
            "scope" => self.scope = Some(value),
            "refresh_token" => self.refresh_token = Some(value),
            other => {
                self.error |= other == "error";
                self.extra.insert(name.into_owned(), value);
            }
        }
    }

    /// The members of a JSON object body; `None` for form data, anything but a JSON object, or an
    /// object with an `error` member.
    fn from_json(response: &HttpResponse) -> Option<TokenFields> {
        if response.content_type().is_some_and(|c| c.to_ascii_lowercase().contains("x-www-form-urlencoded")) {
            return None;
        }
        let text = std::str::from_utf8(&response.body).ok()?;
        let fields: TokenFields = serde_json::from_str(text.trim()).ok()?;
        (!fields.error).then_some(fields)
    }
}

impl<'de> serde::Deserialize<'de> for TokenFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TokenFields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<TokenFields, A::Error> {
                let mut fields = TokenFields::default();
                while let Some(Key(name)) = map.next_key()? {
                    fields.put(name, map.next_value()?);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A member name, borrowed from the body unless it holds escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

fn token_from_parts(
    fields: TokenFields,
    format: &ResponseFormat,
    now: SystemTime,
    previous_refresh: Option<&RefreshToken>,
) -> Result<AccessToken> {
    let TokenFields {
        access_token,
        token_type,
        expires_in: expires,
        expires_at,
        scope,
        refresh_token: refresh,
        error: _,
        extra,
    } = fields;
    let label = |field| format.label(field);
    let secret = match access_token {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => {
            return Err(Error::invalid_response(format!("{} is empty", label(ResponseField::AccessToken))));
        }
        Some(_) => {
            return Err(Error::invalid_response(format!("{} is not a string", label(ResponseField::AccessToken))));
        }
        None => return Err(Error::invalid_response(format!("{} is missing", label(ResponseField::AccessToken)))),
    };
    // From here on the secret is owned by a `SecretString` only (zeroed when dropped).
    let token = AccessToken::builder(secret);
    match token_type {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(t)) => {
            return Err(Error::invalid_response(format!(
                "token type `{}` is not supported; tokensmith handles bearer tokens only",
                excerpt(&t, 32)
            )));
        }
        Some(_) => {
            return Err(Error::invalid_response(format!("{} is not a string", label(ResponseField::TokenType))));
        }
    }
    let secs = match format.field_pointer(ResponseField::ExpiresAt) {
        Some(_) => seconds_until(expires_at.as_ref(), now, format)?,
        None => expires_in(expires.as_ref(), format)?,
    };
    let lifetime = match secs {
        Some(secs) => Duration::from_secs(secs).min(format.max_lifetime),
        None => {
            tracing::debug!(
                fallback_secs = format.fallback_lifetime.as_secs(),
                "token response has no expires_in; using the fallback lifetime"
            );
            format.fallback_lifetime
        }
    };
    let scopes = match scope {
        Some(Value::String(s)) => Scopes::parse(&s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Scopes::empty(),
    };
    let refresh_token = match refresh {
        Some(Value::String(s)) if !s.is_empty() => Some(RefreshToken::new(s)),
        _ => previous_refresh.cloned(),
    };
    Ok(token.expires_in(now, lifetime).scopes(scopes).refresh_token(refresh_token).extra(extra).build())
}

/// `expires_in` as seconds: a non-negative integer, a float, or a numeric string.
fn expires_in(value: Option<&Value>, format: &ResponseFormat) -> Result<Option<u64>> {
    let label = || format.label(ResponseField::ExpiresIn);
    let secs: f64 = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| {
            Error::invalid_response(format!("{} is `{}`, not a number of seconds", label(), excerpt(s, 32)))
        })?,
        Some(_) => return Err(Error::invalid_response(format!("{} is not a number", label()))),
    };
    if !secs.is_finite() {
        return Err(Error::invalid_response(format!("{} is not a finite number", label())));
    }
    if secs < 1.0 {
        // Expiry is counted in whole seconds: anything below one would be a token that is
        // already expired (or expires before it can be used).
        return Err(Error::invalid_response(format!(
            "{} is {secs}: the provider issued a token that is already expired (less than one second left)",
            label()
        )));
    }
    // Saturating float-to-int conversion: huge values become u64::MAX and are capped by the caller.
    Ok(Some(secs as u64))
}

/// The seconds from `now` until an absolute expiry: epoch seconds (a number or a numeric string) or an
/// RFC 3339 timestamp. A time before 1970 or after 9999, or one already past, is refused.
fn seconds_until(value: Option<&Value>, now: SystemTime, format: &ResponseFormat) -> Result<Option<u64>> {
    let label = || format.label(ResponseField::ExpiresAt);
    let out_of_range = || {
        Error::invalid_response(format!(
            "{} is not a time between 1970 and 9999 (epoch seconds or an RFC 3339 timestamp)",
            label()
        ))
    };
    let epoch = |secs: f64| -> Result<u64> {
        // `MAX_EPOCH_SECS` converts to f64 exactly; within the range the cast only drops the fraction.
        if secs.is_finite() && (0.0..=MAX_EPOCH_SECS as f64).contains(&secs) {
            Ok(secs as u64)
        } else {
            Err(out_of_range())
        }
    };
    let at: u64 = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => epoch(n.as_f64().unwrap_or(f64::NAN))?,
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(secs) => epoch(secs)?,
            Err(_) => {
                let at = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        Error::invalid_response(format!(
                            "{} is `{}`, neither epoch seconds nor an RFC 3339 timestamp",
                            label(),
                            excerpt(s, 40)
                        ))
                    })?;
                u64::try_from(at.unix_timestamp()).map_err(|_| out_of_range())?
            }
        },
        Some(_) => return Err(Error::invalid_response(format!("{} is not a number or a string", label()))),
    };
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match at.checked_sub(now) {
        Some(secs) if secs >= 1 => Ok(Some(secs)),
        _ => Err(Error::invalid_response(format!(
            "{} is {at} (epoch seconds), not after now ({now}): the provider issued a token that is already expired",
            label()
        ))),
    }
}

/// Parses a response body as JSON, or as form data into a JSON object of strings.
fn decode_body(response: &HttpResponse) -> Option<Value> {
    let content_type = response.content_type().unwrap_or("").to_ascii_lowercase();
    let text = std::str::from_utf8(&response.body).ok()?;
    if content_type.contains("x-www-form-urlencoded") {
        let map: Map<String, Value> = url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return (!map.is_empty()).then_some(Value::Object(map));
    }
    serde_json::from_str(text.trim()).ok()
}

fn looks_like_html(response: &HttpResponse) -> bool {
    response.content_type().is_some_and(|c| c.contains("html"))
        || response.body.iter().take(64).copied().find(|b| !b.is_ascii_whitespace()) == Some(b'<')
}

/// The longest `Retry-After` taken as sent: a server's value is capped here, so that no later
/// arithmetic on it can overflow (a wait this long is longer than any deadline, so it is never
/// waited for: the request fails and says how long the server asked to wait).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// `Retry-After` in seconds or as an HTTP date (counted from `now`, the caller's clock), capped at
/// [`MAX_RETRY_AFTER`].
fn retry_after(response: &HttpResponse, now: SystemTime) -> Option<Duration> {
    let value = response.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        // Any run of digits, however long, is a (capped) number of seconds.
        value.parse::<u64>().map(Duration::from_secs).unwrap_or(MAX_RETRY_AFTER)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An RFC 6749 `error` member in `body` (at the top or, for enveloped dialects, anywhere one level
/// down), as an [`OAuthError`].
fn oauth_error_in(obj: &Map<String, Value>, response: &HttpResponse, now: SystemTime) -> Option<OAuthError> {
    let code = obj.get("error")?.as_str()?;
    let mut error = OAuthError::new(OAuthErrorCode::parse(code), response.status);
    if let Some(d) = obj.get("error_description").and_then(Value::as_str) {
        error = error.with_description(d);
    }
    error.uri = obj.get("error_uri").and_then(Value::as_str).map(|u| excerpt(u, 200));
    error.retry_after = retry_after(response, now);
    Some(error)
}

/// [`parse_error`] for a format whose error code or description has a pointer of its own: an
/// [`OAuthError`] when a code is found there, else what [`parse_error`] finds.
///
/// ```
/// use tokensmith_core::{Error, http::HttpResponse};
/// use tokensmith_core::parse::{ResponseField, ResponseFormat, parse_error_with};
/// use std::time::SystemTime;
///
/// let format = ResponseFormat::default()
///     .field(ResponseField::Error, "/problem/type")
///     .field(ResponseField::ErrorDescription, "/problem/detail");
/// let answer = HttpResponse::json(400, r#"{"problem":{"type":"invalid_request","detail":"no tenant"}}"#);
/// match parse_error_with(&answer, &format, SystemTime::now()) {
///     Error::OAuth(e) => assert_eq!(e.description.as_deref(), Some("no tenant")),
///     other => panic!("{other}"),
/// }
/// ```
pub fn parse_error_with(response: &HttpResponse, format: &ResponseFormat, now: SystemTime) -> Error {
    if format.field_pointer(ResponseField::Error).is_some()
        || format.field_pointer(ResponseField::ErrorDescription).is_some()
    {
        if let Some(error) = decode_body(response).and_then(|body| oauth_error_at(&body, response, format, now)) {
            return Error::OAuth(error);
        }
    }
    parse_error(response, now)
}

/// Turns an error response (any status outside 2xx) into an [`Error`]: an [`OAuthError`] when the
/// body is an RFC 6749 error, otherwise an [`HttpError`] with the provider's own code and message
/// when its shape is known (ProBit `errorCode`/`message`, WhiteBIT `data.message`, `errors`,
/// `data.token`), and a masked excerpt in every case. A `Retry-After` date is counted from `now`
/// (the caller's clock).
pub fn parse_error(response: &HttpResponse, now: SystemTime) -> Error {
    let body = decode_body(response);
    let object = body.as_ref().and_then(Value::as_object);
    if let Some(error) = object.filter(|b| !is_status_page(b, response)).and_then(|b| oauth_error_in(b, response, now))
    {
        return Error::OAuth(error);
    }
    let (code, message) = body.as_ref().map(known_error_shape).unwrap_or((None, None));
    Error::Http(HttpError {
        status: response.status,
        code: code.map(|c| excerpt(&c, 64)),
        message: message.map(|m| excerpt(&m, 200)),
        excerpt: excerpt(&String::from_utf8_lossy(&response.body), 120),
        retry_after: retry_after(response, now),
    })
}

fn first_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(first_string),
        _ => None,
    }
}

/// Whether `obj` is a Rails-style status page, `{"status":500,"error":"Internal Server Error"}`
/// (what Doorkeeper answers for errors of its own): the status and its reason phrase, not an OAuth
/// error code in `error`.
fn is_status_page(obj: &Map<String, Value>, response: &HttpResponse) -> bool {
    let reason = http::StatusCode::from_u16(response.status).ok().and_then(|s| s.canonical_reason());
    obj.get("status").and_then(Value::as_u64) == Some(u64::from(response.status))
        && obj
            .get("error")
            .and_then(Value::as_str)
            .zip(reason)
            .is_some_and(|(error, reason)| error.eq_ignore_ascii_case(reason))
}

/// Pulls a code and a message out of the non-RFC shapes providers use.
fn known_error_shape(body: &Value) -> (Option<String>, Option<String>) {
    let Some(obj) = body.as_object() else { return (None, None) };
    // Rails / Doorkeeper status page: {"status":500,"error":"Internal Server Error"}
    if obj.get("status").is_some_and(Value::is_u64) {
        if let Some(reason) = obj.get("error").and_then(Value::as_str) {
            return (None, Some(reason.to_owned()));
        }
    }
    // ProBit: {"errorCode":"...","message":"...","details":{...}}
    if let Some(code) = obj.get("errorCode").and_then(Value::as_str) {
        return (Some(code.to_owned()), obj.get("message").and_then(first_string));
    }
    // WhiteBIT validation: {"errors":{"field":["msg"]},"notification":null}
    if let Some(Value::Object(errors)) = obj.get("errors") {
        if let Some((field, msgs)) = errors.iter().next() {
            return (Some(field.clone()), first_string(msgs));
        }
    }
    // WhiteBIT: {"data":{"message":["..."]}} or {"data":{"token":["Invalid token."]}}
    if let Some(Value::Object(data)) = obj.get("data") {
        if let Some(message) = data.get("message").and_then(first_string) {
            return (None, Some(message));
        }
        if let Some((field, msgs)) = data.iter().next() {
            return (Some(field.clone()), first_string(msgs));
        }
    }
    // Common: {"message": "..."} / {"detail": "..."}
    let message = obj.get("message").or_else(|| obj.get("detail")).and_then(first_string);
    (None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn parse(status: u16, body: &str) -> Result<AccessToken> {
        parse_response(&HttpResponse::json(status, body.to_owned()), &ResponseFormat::default(), now(), None)
    }

    #[test]
    fn member_names_with_escapes_and_repeated_members() {
        // `\u005f` is `_`: an escaped name is the same member.
        let t = parse(200, r#"{"access\u005ftoken":"abc","expires_in":60,"x\u0041":1}"#).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "abc");
        assert_eq!(t.extra().get("xA"), Some(&serde_json::json!(1)));
        // A repeated member: the last one counts, as in any JSON object reader here.
        let t = parse(200, r#"{"access_token":"first","access_token":"second","expires_in":60}"#).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "second");
    }

    #[test]
    fn a_rails_status_page_is_an_http_error_not_an_oauth_error() {
        for (status, reason) in [(500, "Internal Server Error"), (429, "Too Many Requests"), (401, "Unauthorized")] {
            let body = format!(r#"{{"status":{status},"error":"{reason}"}}"#);
            match parse(status, &body) {
                Err(Error::Http(e)) => {
                    assert_eq!(e.status, status);
                    assert_eq!(e.message.as_deref(), Some(reason));
                    assert_eq!(e.code, None);
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // An OAuth error that also names the status stays an OAuth error, and so does an `error`
        // that is not the status's reason phrase.
        let oauth = |status: u16, body: &str| match parse(status, body) {
            Err(Error::OAuth(e)) => e.code,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(oauth(401, r#"{"status":401,"error":"invalid_client"}"#), OAuthErrorCode::InvalidClient);
        assert_eq!(oauth(500, r#"{"status":500,"error":"Not Found"}"#), OAuthErrorCode::Other("Not Found".to_owned()));
        assert_eq!(
            oauth(500, r#"{"status":404,"error":"Internal Server Error"}"#),
            OAuthErrorCode::Other("Internal Server Error".to_owned())
        );
        // 5xx and 429 status pages stay retryable.
        assert!(parse(500, r#"{"status":500,"error":"Internal Server Error"}"#).unwrap_err().is_retryable());
    }

    #[test]
    fn standard_response() {
        let t = parse(200, r#"{"access_token":"abc","token_type":"Bearer","expires_in":36000,"scope":"read write"}"#)
            .unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "abc");
        assert_eq!(t.lifetime(), Duration::from_secs(36000));
        assert_eq!(t.expires_at(), now() + Duration::from_secs(36000));
        assert_eq!(t.scopes().to_string(), "read write");
        assert!(t.refresh_token().is_none());
    }

    #[test]
    fn expires_in_variants() {
        let lifetime =
            |v: &str| parse(200, &format!(r#"{{"access_token":"a","expires_in":{v}}}"#)).map(|t| t.lifetime());
        assert_eq!(lifetime(r#""900""#).unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime("900.7").unwrap(), Duration::from_secs(900));
        assert!(matches!(lifetime("0"), Err(Error::InvalidResponse { .. })));
        assert!(matches!(lifetime("-5"), Err(Error::InvalidResponse { .. })));
        // Below one second would truncate to an already expired token.
        for sub_second in ["0.5", r#""0.999""#, "1e-291"] {
            assert!(matches!(lifetime(sub_second), Err(Error::InvalidResponse { .. })), "{sub_second}");
        }
        assert_eq!(lifetime("1").unwrap(), Duration::from_secs(1));
        assert!(matches!(lifetime(r#""soon""#), Err(Error::InvalidResponse { .. })));
        assert_eq!(lifetime("1e300").unwrap(), Duration::from_secs(30 * 24 * 3600));
        assert_eq!(lifetime("18446744073709551615").unwrap(), Duration::from_secs(30 * 24 * 3600));
        assert_eq!(lifetime("null").unwrap(), Duration::from_secs(3600));
        let missing = parse(200, r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(missing.lifetime(), Duration::from_secs(3600));
    }

    #[test]
    fn token_type_rules() {
        assert!(parse(200, r#"{"access_token":"a","token_type":"bearer"}"#).is_ok());
        assert!(parse(200, r#"{"access_token":"a","token_type":"BEARER"}"#).is_ok());
        assert!(matches!(parse(200, r#"{"access_token":"a","token_type":"mac"}"#), Err(Error::InvalidResponse { .. })));
    }

    #[test]
    fn missing_access_token_is_an_error() {
        let err = parse(200, r#"{"token_type":"Bearer"}"#).unwrap_err();
        assert!(err.to_string().contains("`access_token` is missing"), "{err}");
    }

    #[test]
    fn error_in_200_is_an_error() {
        let err = parse(200, r#"{"error":"invalid_request","error_description":"nope"}"#).unwrap_err();
        match err {
            Error::OAuth(e) => {
                assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
                assert_eq!(e.status, 200);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn envelope_and_comma_scopes() {
        let format = ResponseFormat::default().envelope("/data");
        let r = HttpResponse::json(
            200,
            r#"{"data":{"access_token":"a","expires_in":300,"refresh_token":"r","scope":"general,users.read","token_type":"Bearer"}}"#,
        );
        let t = parse_response(&r, &format, now(), None).unwrap();
        assert_eq!(t.scopes().iter().collect::<Vec<_>>(), ["general", "users.read"]);
        assert!(t.refresh_token().is_some());
        let missing = parse_response(&HttpResponse::json(200, r#"{"access_token":"a"}"#), &format, now(), None);
        assert!(matches!(missing, Err(Error::InvalidResponse { .. })));
    }

    fn renamed() -> ResponseFormat {
        ResponseFormat::default()
            .field(ResponseField::AccessToken, "/issued/bearer")
            .field(ResponseField::ExpiresIn, "/issued/lifetime")
            .field(ResponseField::TokenType, "/issued/type")
            .field(ResponseField::RefreshToken, "/issued/renewal")
            .field(ResponseField::Scope, "/issued/permissions")
            .field(ResponseField::Error, "/problem/type")
            .field(ResponseField::ErrorDescription, "/problem/detail")
    }

    #[test]
    fn fields_at_pointers_of_their_own() {
        let body = r#"{"issued":{"bearer":"tok","lifetime":"900","type":"Bearer","renewal":"ren","permissions":"read write","region":"eu"},"meta":1}"#;
        let t = parse_response(&HttpResponse::json(200, body), &renamed(), now(), None).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "tok");
        assert_eq!(t.lifetime(), Duration::from_secs(900));
        assert_eq!(t.scopes().to_string(), "read write");
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.refresh_token().unwrap().secret()), "ren");
        // What is left of the object that held the token is kept; the fields read are not.
        assert_eq!(t.extra().get("region"), Some(&serde_json::json!("eu")));
        assert!(!t.extra().contains_key("bearer") && !t.extra().contains_key("lifetime"));
        // A field at its pointer is read there only: the RFC name at the root is not a fallback.
        let err =
            parse_response(&HttpResponse::json(200, r#"{"access_token":"t"}"#), &renamed(), now(), None).unwrap_err();
        assert!(err.to_string().contains("`access_token` (at `/issued/bearer`) is missing"), "{err}");
        let err = parse_response(
            &HttpResponse::json(200, r#"{"issued":{"bearer":"t","lifetime":"soon"}}"#),
            &renamed(),
            now(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`expires_in` (at `/issued/lifetime`) is `soon`"), "{err}");
        // Fields without a pointer keep their name under the envelope.
        let format = ResponseFormat::default().envelope("/data").field(ResponseField::ExpiresIn, "/ttl");
        let t =
            parse_response(&HttpResponse::json(200, r#"{"data":{"access_token":"a"},"ttl":60}"#), &format, now(), None)
                .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(60));
        // Escaped pointer segments (RFC 6901 `~1` is `/`, `~0` is `~`).
        let format = ResponseFormat::default().field(ResponseField::AccessToken, "/a~1b/c~0d");
        let t = parse_response(&HttpResponse::json(200, r#"{"a/b":{"c~d":"x"}}"#), &format, now(), None).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "x");
    }

    #[test]
    fn errors_at_pointers_of_their_own() {
        let problem = r#"{"problem":{"type":"invalid_request","detail":"grantKind is missing"}}"#;
        for status in [400, 200] {
            match parse_response(&HttpResponse::json(status, problem), &renamed(), now(), None) {
                Err(Error::OAuth(e)) => {
                    assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
                    assert_eq!(e.status, status);
                    assert_eq!(e.description.as_deref(), Some("grantKind is missing"));
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // Without a code at the pointer, the usual shapes are still recognised.
        match parse_response(&HttpResponse::json(401, r#"{"errorCode":"X","message":"m"}"#), &renamed(), now(), None) {
            Err(Error::Http(e)) => assert_eq!(e.code.as_deref(), Some("X")),
            other => panic!("{other:?}"),
        }
        // The description defaults to `error_description` beside the code.
        let format = ResponseFormat::default().field(ResponseField::Error, "/problem/code");
        let r = HttpResponse::json(400, r#"{"problem":{"code":"invalid_scope","error_description":"d"}}"#);
        match parse_error_with(&r, &format, SystemTime::now()) {
            Error::OAuth(e) => {
                assert_eq!(e.code, OAuthErrorCode::InvalidScope);
                assert_eq!(e.description.as_deref(), Some("d"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expires_at_as_epoch_seconds_or_rfc3339() {
        let format = ResponseFormat::default().field(ResponseField::ExpiresAt, "/until");
        let lifetime = |v: &str| {
            parse_response(
                &HttpResponse::json(200, format!(r#"{{"access_token":"a","until":{v}}}"#)),
                &format,
                now(),
                None,
            )
            .map(|t| t.lifetime())
        };
        // now() is 1_700_000_000 = 2023-11-14T22:13:20Z.
        assert_eq!(lifetime("1700000900").unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime(r#""1700000900""#).unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime("1700000900.9").unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime(r#""2023-11-14T22:28:20Z""#).unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime(r#""2023-11-15T00:28:20+02:00""#).unwrap(), Duration::from_secs(900));
        assert_eq!(lifetime(r#""2023-11-14T22:28:20.5Z""#).unwrap(), Duration::from_secs(900));
        // Far but valid: capped like a long `expires_in`.
        assert_eq!(lifetime(r#""9999-12-31T23:59:59Z""#).unwrap(), Duration::from_secs(30 * 24 * 3600));
        assert_eq!(lifetime("253402300799").unwrap(), Duration::from_secs(30 * 24 * 3600));
        // Missing: the fallback lifetime.
        assert_eq!(lifetime("null").unwrap(), Duration::from_secs(3600));
        // Past, negative, absurd or unreadable: an invalid response, never a panic.
        for bad in [
            "1700000000",
            "1699999999",
            "0",
            "-5",
            r#""-5""#,
            "1e300",
            "-1e300",
            "253402300800",
            "18446744073709551616",
            r#""1e999""#,
            r#""NaN""#,
            r#""inf""#,
            r#""2023-11-14T22:13:20Z""#,
            r#""1969-12-31T23:59:59Z""#,
            r#""2023-13-01T00:00:00Z""#,
            r#""tomorrow""#,
            "true",
            "[1]",
        ] {
            assert!(matches!(lifetime(bad), Err(Error::InvalidResponse { .. })), "{bad}: {:?}", lifetime(bad));
        }
        let err = lifetime("1699999999").unwrap_err();
        assert!(err.to_string().contains("`expires_at` (at `/until`)") && err.to_string().contains("already expired"));
        // `expires_in` is not read when `expires_at` has a pointer.
        let t = parse_response(
            &HttpResponse::json(200, r#"{"access_token":"a","expires_in":5,"until":1700000900}"#),
            &format,
            now(),
            None,
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(900));
    }

    #[test]
    fn field_pointers_are_validated() {
        let err = ResponseFormat::default().field(ResponseField::Scope, "issued/permissions").validate("envelope");
        assert!(matches!(err, Err(Error::Config { ref key, .. }) if key == "response.scope"), "{err:?}");
        let both = ResponseFormat::default()
            .field(ResponseField::ExpiresIn, "/a")
            .field(ResponseField::ExpiresAt, "/b")
            .validate("envelope");
        assert!(matches!(both, Err(Error::Config { ref key, .. }) if key == "response.expires_at"), "{both:?}");
        // An empty pointer takes a field's pointer back.
        let format = ResponseFormat::default().field(ResponseField::Scope, "/x").field(ResponseField::Scope, "");
        assert_eq!(format, ResponseFormat::default());
        for field in ResponseField::ALL {
            assert_eq!(ResponseField::from_name(field.name()), Some(field));
        }
    }

    #[test]
    fn form_encoded_body() {
        let r = HttpResponse::new(
            200,
            "application/x-www-form-urlencoded",
            "access_token=abc&expires_in=60&token_type=bearer",
        );
        let t = parse_response(&r, &ResponseFormat::default(), now(), None).unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(60));
    }

    #[test]
    fn keeps_previous_refresh_token_and_extra_fields() {
        let previous = RefreshToken::new("old");
        let r = HttpResponse::json(200, r#"{"access_token":"a","expires_in":60,"created_at":1700000000}"#);
        let t = parse_response(&r, &ResponseFormat::default(), now(), Some(&previous)).unwrap();
        assert!(t.refresh_token().unwrap().same_as(&previous));
        assert_eq!(t.extra().get("created_at").and_then(Value::as_u64), Some(1_700_000_000));
        assert!(!t.extra().contains_key("access_token"));
    }

    #[test]
    fn rfc_error_bodies() {
        let r =
            HttpResponse::json(401, r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#)
                .with_header("retry-after", "7");
        match parse_error(&r, SystemTime::now()) {
            Error::OAuth(e) => {
                assert_eq!(e.code, OAuthErrorCode::InvalidClient);
                assert_eq!(e.status, 401);
                assert_eq!(e.description.as_deref(), Some("Client authentication failed"));
                assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn provider_error_shapes() {
        let cases = [
            (
                401,
                r#"{"errorCode":"UNAUTHORIZED","message":"Invalid client","details":{}}"#,
                Some("UNAUTHORIZED"),
                Some("Invalid client"),
            ),
            (401, r#"{"data":{"message":["Invalid request"]}}"#, None, Some("Invalid request")),
            (
                422,
                r#"{"errors":{"code":["The code field is required."]},"notification":null}"#,
                Some("code"),
                Some("The code field is required."),
            ),
            (400, r#"{"data":{"token":["Invalid token."]}}"#, Some("token"), Some("Invalid token.")),
        ];
        for (status, body, code, message) in cases {
            match parse_error(&HttpResponse::json(status, body), SystemTime::now()) {
                Error::Http(e) => {
                    assert_eq!(e.status, status);
                    assert_eq!(e.code.as_deref(), code, "{body}");
                    assert_eq!(e.message.as_deref(), message, "{body}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn html_error_page() {
        let r = HttpResponse::new(
            403,
            "text/html",
            "<html><title>403 Forbidden</title><body>Request blocked</body></html>",
        );
        match parse_error(&r, SystemTime::now()) {
            Error::Http(e) => {
                assert_eq!(e.status, 403);
                assert_eq!(e.excerpt, "403 Forbidden Request blocked");
            }
            other => panic!("unexpected {other:?}"),
        }
        let ok_html = HttpResponse::new(200, "text/html", "<html>login</html>");
        let err = parse_response(&ok_html, &ResponseFormat::default(), now(), None).unwrap_err();
        assert!(err.to_string().contains("HTML"), "{err}");
    }

    #[test]
    fn retry_after_http_date() {
        // Counted from the caller's `now` (its injected clock), not the system clock.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = now + Duration::from_secs(120);
        let r = HttpResponse::json(429, "{}").with_header("retry-after", &httpdate::fmt_http_date(at));
        assert_eq!(parse_error(&r, now).retry_after(), Some(Duration::from_secs(120)));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn arb_json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
                ),
                ".{0,12}".prop_map(serde_json::Value::from),
                prop_oneof![Just("access_token"), Just("expires_in"), Just("error"), Just("data")]
                    .prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                Just("access_token".to_owned()),
                                Just("expires_in".to_owned()),
                                Just("token_type".to_owned()),
                                Just("scope".to_owned()),
                                Just("refresh_token".to_owned()),
                                Just("error".to_owned()),
                                Just("errorCode".to_owned()),
                                Just("errors".to_owned()),
                                Just("data".to_owned()),
                                ".{0,6}"
                            ],
                            inner
                        ),
                        0..6
                    )
                    .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(status in 100u16..600, ct in prop_oneof![Just("application/json"), Just("text/html"), Just("application/x-www-form-urlencoded"), Just("")], body in prop::collection::vec(any::<u8>(), 0..512)) {
                let r = HttpResponse::new(status, ct, body);
                let _ = parse_response(&r, &ResponseFormat::default().envelope("/data"), now(), None);
                let _ = parse_response(&r, &ResponseFormat::default(), now(), None);
                let _ = parse_error(&r, SystemTime::now());
            }

            #[test]
            fn arbitrary_json_never_panics(status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(503)], value in arb_json()) {
                let r = HttpResponse::json(status, value.to_string());
                let _ = parse_response(&r, &ResponseFormat::default().envelope("/data"), now(), None);
                let _ = parse_response(&r, &ResponseFormat::default(), now(), None);
                let _ = parse_error(&r, SystemTime::now());
                let pointers = ResponseFormat::default()
                    .field(ResponseField::AccessToken, "/data/access_token")
                    .field(ResponseField::ExpiresAt, "/data/expires_in")
                    .field(ResponseField::Scope, "/data/0")
                    .field(ResponseField::Error, "/errors/error")
                    .field(ResponseField::ErrorDescription, "/error");
                let _ = parse_response(&r, &pointers, now(), None);
                let _ = parse_error_with(&r, &pointers, SystemTime::now());
            }

            /// The one-pass reader of a top-level object and the general path (the same object in
            /// an envelope) give the same token or the same error.
            #[test]
            fn one_pass_and_general_path_agree(value in arb_json()) {
                use secrecy::ExposeSecret as _;
                let direct = parse_response(&HttpResponse::json(200, value.to_string()), &ResponseFormat::default(), now(), None);
                let wrapped = serde_json::json!({ "data": value }).to_string();
                let enveloped = parse_response(&HttpResponse::json(200, wrapped), &ResponseFormat::default().envelope("/data"), now(), None);
                match (direct, enveloped) {
                    (Ok(a), Ok(b)) => {
                        prop_assert!(a.same_token(&b));
                        prop_assert_eq!(a.lifetime(), b.lifetime());
                        prop_assert_eq!(a.scopes(), b.scopes());
                        prop_assert_eq!(a.extra(), b.extra());
                        prop_assert_eq!(
                            a.refresh_token().map(|r| r.secret().expose_secret().to_owned()),
                            b.refresh_token().map(|r| r.secret().expose_secret().to_owned())
                        );
                    }
                    (Err(a), Err(b)) => {
                        // The envelope path names the envelope when the value is not an object.
                        if value.is_object() {
                            prop_assert_eq!(a.to_string(), b.to_string());
                        }
                    }
                    (a, b) => prop_assert!(false, "one-pass {:?} but general {:?} for {}", a, b, value),
                }
            }
        }
    }
}
