//! Error responses: the OAuth error, status page or body a refusal carries, and its Retry-After.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::token::oauth_error_at;
use super::{ResponseField, ResponseFormat};
use crate::error::{Error, HttpError, OAuthError, OAuthErrorCode};
use crate::http::HttpResponse;
use crate::support::excerpt;

/// Parses a response body as JSON, or as form data into a JSON object of strings.
pub(super) fn decode_body(response: &HttpResponse) -> Option<Value> {
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

pub(super) fn looks_like_html(response: &HttpResponse) -> bool {
    response.content_type().is_some_and(|c| c.contains("html"))
        || response.body.iter().take(64).copied().find(|b| !b.is_ascii_whitespace()) == Some(b'<')
}

/// The longest `Retry-After` taken as sent: a server's value is capped here, so that no later
/// arithmetic on it can overflow (a wait this long is longer than any deadline, so it is never
/// waited for: the request fails and says how long the server asked to wait).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// `Retry-After` in seconds or as an HTTP date (counted from `now`, the caller's clock), capped at
/// [`MAX_RETRY_AFTER`].
pub(super) fn retry_after(response: &HttpResponse, now: SystemTime) -> Option<Duration> {
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
pub(super) fn oauth_error_in(obj: &Map<String, Value>, response: &HttpResponse, now: SystemTime) -> Option<OAuthError> {
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
