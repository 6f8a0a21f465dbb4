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
//! - `application/x-www-form-urlencoded` bodies accepted;
//! - fields not interpreted are kept in [`AccessToken::extra`];
//! - an `error` member in a 200 response is an error; a missing `access_token` is an error;
//! - a response without a new refresh token keeps the previous one.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tokensmith_core::{HttpResponse, parse::{ResponseFormat, parse_response}};
//!
//! let format = ResponseFormat::default().envelope("/data");
//! let response = HttpResponse::json(200, r#"{"data":{"access_token":"t","expires_in":"300","scope":"a,b","token_type":"bearer"}}"#);
//! let token = parse_response(&response, &format, SystemTime::now(), None).unwrap();
//! assert_eq!(token.lifetime(), Duration::from_secs(300));
//! assert!(token.scopes().contains("b"));
//! ```

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::{Error, HttpError, OAuthError, OAuthErrorCode, Result, excerpt};
use crate::http::HttpResponse;
use crate::token::{AccessToken, RefreshToken, Scopes};

/// How a provider shapes its token responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFormat {
    envelope: Option<String>,
    fallback_lifetime: Duration,
    max_lifetime: Duration,
}

impl Default for ResponseFormat {
    /// No envelope, a 1 hour fallback lifetime, a 30 day cap.
    fn default() -> Self {
        ResponseFormat {
            envelope: None,
            fallback_lifetime: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl ResponseFormat {
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
        return Err(parse_error(response));
    }
    // The common case, a JSON object at the top: read in one pass, without building a map first.
    // Anything else (an envelope, form data, an `error` member, a body that is not a JSON object)
    // takes the general path below, which also words the errors.
    if format.envelope.is_none() {
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
    let mut body = body;
    if let Some(error) = body.as_object().and_then(|b| oauth_error_in(b, response)) {
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
        if let Some(error) = oauth_error_in(&fields, response) {
            return Err(Error::OAuth(error));
        }
    }
    token_from_fields(fields, format, now, previous_refresh)
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
    let TokenFields { access_token, token_type, expires_in: expires, scope, refresh_token: refresh, error: _, extra } =
        fields;
    let secret = match access_token {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(Error::invalid_response("`access_token` is empty")),
        Some(_) => return Err(Error::invalid_response("`access_token` is not a string")),
        None => return Err(Error::invalid_response("`access_token` is missing")),
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
        Some(_) => return Err(Error::invalid_response("`token_type` is not a string")),
    }
    let lifetime = match expires_in(expires.as_ref())? {
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
fn expires_in(value: Option<&Value>) -> Result<Option<u64>> {
    let secs: f64 = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| {
            Error::invalid_response(format!("`expires_in` is `{}`, not a number of seconds", excerpt(s, 32)))
        })?,
        Some(_) => return Err(Error::invalid_response("`expires_in` is not a number")),
    };
    if !secs.is_finite() {
        return Err(Error::invalid_response("`expires_in` is not a finite number"));
    }
    if secs < 1.0 {
        // Expiry is counted in whole seconds: anything below one would be a token that is
        // already expired (or expires before it can be used).
        return Err(Error::invalid_response(format!(
            "`expires_in` is {secs}: the provider issued a token that is already expired (less than one second left)"
        )));
    }
    // Saturating float-to-int conversion: huge values become u64::MAX and are capped by the caller.
    Ok(Some(secs as u64))
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

/// `Retry-After` in seconds or as an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let value = response.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        // Any run of digits, however long, is a (capped) number of seconds.
        value.parse::<u64>().map(Duration::from_secs).unwrap_or(MAX_RETRY_AFTER)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An RFC 6749 `error` member in `body` (at the top or, for enveloped dialects, anywhere one level
/// down), as an [`OAuthError`].
fn oauth_error_in(obj: &Map<String, Value>, response: &HttpResponse) -> Option<OAuthError> {
    let code = obj.get("error")?.as_str()?;
    let mut error = OAuthError::new(OAuthErrorCode::parse(code), response.status);
    if let Some(d) = obj.get("error_description").and_then(Value::as_str) {
        error = error.with_description(d);
    }
    error.uri = obj.get("error_uri").and_then(Value::as_str).map(|u| excerpt(u, 200));
    error.retry_after = retry_after(response);
    Some(error)
}

/// Turns an error response (any status outside 2xx) into an [`Error`]: an [`OAuthError`] when the
/// body is an RFC 6749 error, otherwise an [`HttpError`] with the provider's own code and message
/// when its shape is known (ProBit `errorCode`/`message`, WhiteBIT `data.message`, `errors`,
/// `data.token`), and a masked excerpt in every case.
pub fn parse_error(response: &HttpResponse) -> Error {
    let body = decode_body(response);
    let object = body.as_ref().and_then(Value::as_object);
    if let Some(error) = object.filter(|b| !is_status_page(b, response)).and_then(|b| oauth_error_in(b, response)) {
        return Error::OAuth(error);
    }
    let (code, message) = body.as_ref().map(known_error_shape).unwrap_or((None, None));
    Error::Http(HttpError {
        status: response.status,
        code: code.map(|c| excerpt(&c, 64)),
        message: message.map(|m| excerpt(&m, 200)),
        excerpt: excerpt(&String::from_utf8_lossy(&response.body), 120),
        retry_after: retry_after(response),
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
        match parse_error(&r) {
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
            match parse_error(&HttpResponse::json(status, body)) {
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
        match parse_error(&r) {
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
        let at = SystemTime::now() + Duration::from_secs(120);
        let r = HttpResponse::json(429, "{}").with_header("retry-after", &httpdate::fmt_http_date(at));
        let delay = parse_error(&r).retry_after().unwrap();
        assert!(delay > Duration::from_secs(100) && delay <= Duration::from_secs(120), "{delay:?}");
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
                let _ = parse_error(&r);
            }

            #[test]
            fn arbitrary_json_never_panics(status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(503)], value in arb_json()) {
                let r = HttpResponse::json(status, value.to_string());
                let _ = parse_response(&r, &ResponseFormat::default().envelope("/data"), now(), None);
                let _ = parse_response(&r, &ResponseFormat::default(), now(), None);
                let _ = parse_error(&r);
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
