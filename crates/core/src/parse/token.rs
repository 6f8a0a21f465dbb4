//! Token responses: the token set in a successful response, wherever the dialect puts it.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::refusal::{decode_body, looks_like_html, oauth_error_in, parse_error_with, retry_after};
use super::{MAX_EPOCH_SECS, ResponseField, ResponseFormat};
use crate::error::{Error, OAuthError, OAuthErrorCode, Result};
use crate::http::HttpResponse;
use crate::support::excerpt;
use crate::token::{AccessToken, RefreshToken, Scopes};

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
pub(super) fn oauth_error_at(
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
pub(super) fn expires_in(value: Option<&Value>, format: &ResponseFormat) -> Result<Option<u64>> {
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
                let at = super::rfc3339::unix_seconds(s.trim()).ok_or_else(|| {
                    Error::invalid_response(format!(
                        "{} is `{}`, neither epoch seconds nor an RFC 3339 timestamp",
                        label(),
                        excerpt(s, 40)
                    ))
                })?;
                u64::try_from(at).map_err(|_| out_of_range())?
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
