//! Fault injection: what can go wrong, and how each dialect shows it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::body::Frame;
use serde_json::{Value, json};

use crate::config::Dialect;
use crate::dialects::{Route, custom};
use crate::reply::{Reply, ReplyBody, proxy_page, reason, status_code};

/// A fault to inject into the next requests of a route, with
/// [`Sandbox::inject`](crate::Sandbox::inject).
///
/// Faults that replace the answer ([`Status`](Fault::Status) to
/// [`RedirectCrossHost`](Fault::RedirectCrossHost)) answer without processing the
/// request: no token is issued and no code or refresh token is consumed.
/// [`Latency`](Fault::Latency) delays a normal answer. The last three rewrite a
/// successful token response (for WhiteBIT inside its `data` envelope); on any
/// other answer they change nothing. Every fault counts as used by the request it
/// met, whatever the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers with this status and the body the provider (or the proxy in front
    /// of it) sends: nginx-style HTML for 502, 503 and 504, the provider's own
    /// error body otherwise. Statuses outside 200..=999 become 500.
    Status(u16),
    /// Answers 429 in the provider's error shape, with a `Retry-After` header
    /// carrying this value (delay-seconds or an HTTP-date) when given.
    TooManyRequests {
        /// The `Retry-After` header value, sent verbatim.
        retry_after: Option<String>,
    },
    /// Waits this long (with `tokio::time::sleep`, so paused-clock tests work),
    /// then answers normally.
    Latency(Duration),
    /// Closes the connection without any HTTP response (with a TCP reset when the
    /// platform allows it).
    ResetConnection,
    /// Sends a 200 whose `Content-Length` promises more bytes than are sent, then
    /// closes the connection.
    TruncatedBody,
    /// Sends 200 with `Content-Type: application/json` and a body that is not JSON.
    MalformedJson,
    /// Sends an HTML error page (as a WAF or a proxy does) with this status.
    HtmlErrorPage(u16),
    /// Sends 200 with `{"error":"invalid_request","error_description":"..."}`.
    ErrorIn200,
    /// Sends 200 with a JSON body of at least this many bytes.
    OversizedBody(usize),
    /// Sends `307 Temporary Redirect` to `http://127.0.0.2:<port>/elsewhere`,
    /// another host on which nothing listens.
    RedirectCrossHost,
    /// Processes the request normally, then rewrites `expires_in` of a successful
    /// token response.
    ExpiresIn(ExpiresInFault),
    /// Processes the request normally, then removes `access_token` from a
    /// successful token response.
    MissingAccessToken,
    /// Processes the request normally, then answers `"token_type":"bearer"`.
    LowercaseTokenType,
}

/// How [`Fault::ExpiresIn`] rewrites `expires_in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiresInFault {
    /// The field is left out.
    Missing,
    /// `"expires_in": 0`.
    Zero,
    /// `"expires_in": -1`.
    Negative,
    /// `"expires_in": 9223372036854775807` (`i64::MAX` seconds).
    Huge,
    /// The lifetime as a JSON string, e.g. `"expires_in": "900"`.
    String,
}

/// The longest latency a fault given as text may ask for.
const MAX_LATENCY_MS: u64 = 600_000;
/// The largest body a fault given as text may ask for.
const MAX_OVERSIZED: usize = 64 * 1024 * 1024;

impl std::str::FromStr for Fault {
    type Err = String;

    /// A fault by name, as `tokensmith sandbox --fault` and `POST /_sandbox/faults` take it:
    /// `status:503`, `429` or `429:RETRY_AFTER`, `latency_ms:200`, `reset`, `truncated`,
    /// `malformed_json`, `html:403`, `error_in_200`, `oversized:BYTES`, `redirect`,
    /// `expires_in:missing|zero|negative|huge|string`, `missing_access_token`,
    /// `lowercase_token_type`.
    ///
    /// ```
    /// use tokensmith_sandbox::Fault;
    ///
    /// assert_eq!("status:503".parse::<Fault>().unwrap(), Fault::Status(503));
    /// assert_eq!("429:5".parse::<Fault>().unwrap(), Fault::TooManyRequests { retry_after: Some("5".into()) });
    /// assert!("latency_ms:99999999999".parse::<Fault>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, arg) = match text.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (text, None),
        };
        let number = |what: &str, max: u64| -> Result<u64, String> {
            arg.and_then(|a| a.trim().parse::<u64>().ok())
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{name}` takes {what} up to {max}, e.g. `{name}:{}`", max.min(503)))
        };
        let status = |what: &str| -> Result<u16, String> {
            number(what, 999).and_then(|n| u16::try_from(n).map_err(|_| format!("`{name}` takes {what}")))
        };
        Ok(match (name, arg) {
            ("status", _) => Fault::Status(status("an HTTP status")?),
            ("429", retry_after) => Fault::TooManyRequests { retry_after: retry_after.map(str::to_owned) },
            ("latency_ms", _) => Fault::Latency(Duration::from_millis(number("milliseconds", MAX_LATENCY_MS)?)),
            ("reset", None) => Fault::ResetConnection,
            ("truncated", None) => Fault::TruncatedBody,
            ("malformed_json", None) => Fault::MalformedJson,
            ("html", _) => Fault::HtmlErrorPage(status("an HTTP status")?),
            ("error_in_200", None) => Fault::ErrorIn200,
            ("oversized", _) => {
                let max = u64::try_from(MAX_OVERSIZED).unwrap_or(u64::MAX);
                Fault::OversizedBody(usize::try_from(number("a size in bytes", max)?).unwrap_or(MAX_OVERSIZED))
            }
            ("redirect", None) => Fault::RedirectCrossHost,
            ("expires_in", Some(kind)) => Fault::ExpiresIn(match kind {
                "missing" => ExpiresInFault::Missing,
                "zero" => ExpiresInFault::Zero,
                "negative" => ExpiresInFault::Negative,
                "huge" => ExpiresInFault::Huge,
                "string" => ExpiresInFault::String,
                _ => return Err("`expires_in` takes missing, zero, negative, huge or string".to_owned()),
            }),
            ("missing_access_token", None) => Fault::MissingAccessToken,
            ("lowercase_token_type", None) => Fault::LowercaseTokenType,
            _ => {
                return Err(format!(
                    "unknown fault `{text}`; use status:CODE, 429[:RETRY_AFTER], latency_ms:MS, reset, truncated, \
                     malformed_json, html:CODE, error_in_200, oversized:BYTES, redirect, \
                     expires_in:missing|zero|negative|huge|string, missing_access_token or lowercase_token_type"
                ));
            }
        })
    }
}

/// What a connection must do instead of (or besides) sending a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnAction {
    /// Close without a response.
    Reset,
}

/// What a fault means for the request that met it.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Answer this instead of processing the request.
    Replace(Response),
    /// Wait, then process normally.
    Delay(Duration),
    /// Process normally, then rewrite the reply.
    Rewrite(Fault),
}

impl Fault {
    /// Decides how the fault shapes the answer to a request on `route`.
    pub(crate) fn apply(self, dialect: &Route, port: u16) -> Applied {
        match self {
            Fault::Latency(d) => Applied::Delay(d),
            f @ (Fault::ExpiresIn(_) | Fault::MissingAccessToken | Fault::LowercaseTokenType) => Applied::Rewrite(f),
            Fault::Status(s) => Applied::Replace(status_reply(dialect, s).into_response()),
            Fault::TooManyRequests { retry_after } => {
                let mut r = error_reply(dialect, StatusCode::TOO_MANY_REQUESTS);
                if let Some(v) = retry_after {
                    r = r.header(RETRY_AFTER, &v);
                }
                Applied::Replace(r.into_response())
            }
            Fault::ResetConnection => {
                let mut resp = Response::new(Body::empty());
                resp.extensions_mut().insert(ConnAction::Reset);
                Applied::Replace(resp)
            }
            Fault::TruncatedBody => Applied::Replace(truncated_response()),
            Fault::MalformedJson => {
                let mut resp = Response::new(Body::from(
                    "{\"access_token\": \"malformed\", \"token_type\": \"Bearer\", \"expires_in\": 9",
                ));
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Applied::Replace(resp)
            }
            Fault::HtmlErrorPage(s) => {
                let status = status_code(s);
                Applied::Replace(Reply::html(status.as_u16(), waf_page(status)).into_response())
            }
            Fault::ErrorIn200 => Applied::Replace(
                Reply::json(
                    200,
                    json!({
                        "error": "invalid_request",
                        "error_description": "The request was rejected although the status says OK."
                    }),
                )
                .into_response(),
            ),
            Fault::OversizedBody(size) => {
                let mut body = String::with_capacity(size + 16);
                body.push_str("{\"padding\":\"");
                while body.len() + 2 < size {
                    body.push('x');
                }
                body.push_str("\"}");
                let mut resp = Response::new(Body::from(body));
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Applied::Replace(resp)
            }
            Fault::RedirectCrossHost => Applied::Replace(
                Reply::empty(307).header(LOCATION, &format!("http://127.0.0.2:{port}/elsewhere")).into_response(),
            ),
        }
    }

    /// Rewrites a successful token response according to a rewriting fault.
    pub(crate) fn rewrite(&self, reply: &mut Reply, lifetime_secs: u64, names: &AnswerNames<'_>) {
        if reply.status != StatusCode::OK {
            return;
        }
        let ReplyBody::Json(Value::Object(outer)) = &mut reply.body else {
            return;
        };
        let access_token = names.access_token;
        let obj = if names.envelope.is_none() && outer.contains_key(access_token) {
            outer
        } else if let Some(Value::Object(inner)) = outer.get_mut(names.envelope.unwrap_or("data")) {
            if !inner.contains_key(access_token) {
                return;
            }
            inner
        } else {
            return;
        };
        match self {
            Fault::ExpiresIn(e) => {
                let value = match e {
                    ExpiresInFault::Missing => {
                        obj.remove(names.expires_in);
                        return;
                    }
                    ExpiresInFault::Zero => json!(0),
                    ExpiresInFault::Negative => json!(-1),
                    ExpiresInFault::Huge => json!(i64::MAX),
                    ExpiresInFault::String => json!(lifetime_secs.to_string()),
                };
                obj.insert(names.expires_in.to_owned(), value);
            }
            Fault::MissingAccessToken => {
                obj.remove(access_token);
            }
            Fault::LowercaseTokenType => {
                if let Some(token_type) = names.token_type {
                    obj.insert(token_type.to_owned(), json!("bearer"));
                }
            }
            _ => {}
        }
    }
}

/// Where a successful token answer keeps the fields the rewriting faults change.
#[derive(Debug)]
pub(crate) struct AnswerNames<'a> {
    /// The member the fields sit under; with none, the top level or else `data` (WhiteBIT).
    pub(crate) envelope: Option<&'a str>,
    pub(crate) access_token: &'a str,
    pub(crate) expires_in: &'a str,
    pub(crate) token_type: Option<&'a str>,
}

/// The built-in dialects' names.
pub(crate) const STANDARD_NAMES: AnswerNames<'static> = AnswerNames {
    envelope: None,
    access_token: "access_token",
    expires_in: "expires_in",
    token_type: Some("token_type"),
};

/// The body a provider sends with an injected status.
fn status_reply(dialect: &Route, status: u16) -> Reply {
    let status = status_code(status);
    if matches!(status.as_u16(), 502..=504) {
        return Reply::html(status.as_u16(), proxy_page(status));
    }
    error_reply(dialect, status)
}

/// A generic error in the provider's own shape.
pub(crate) fn error_reply(route: &Route, status: StatusCode) -> Reply {
    let code = status.as_u16();
    let phrase = reason(status);
    let dialect = match route {
        Route::Builtin(d) => *d,
        Route::Custom(_, spec) => {
            let error_code = phrase.to_ascii_lowercase().replace([' ', '-'], "_");
            return custom::error(spec, code, &error_code, phrase);
        }
    };
    match dialect {
        Dialect::Probit => {
            let error_code = phrase.to_ascii_uppercase().replace([' ', '-'], "_");
            Reply::json(code, json!({"errorCode": error_code, "message": phrase, "details": {}}))
        }
        Dialect::GenericDjango => {
            if code == 429 {
                Reply::json(code, json!({"detail": "Request was throttled."}))
            } else if code >= 500 {
                Reply::html(
                    code,
                    format!(
                        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error ({code})</title>\n</head>\n<body>\n  <h1>Server Error ({code})</h1><p></p>\n</body>\n</html>\n"
                    ),
                )
            } else {
                Reply::json(code, json!({"detail": phrase}))
            }
        }
        Dialect::RubyStyle => Reply::json(code, json!({"status": code, "error": phrase})),
        Dialect::Whitebit => {
            let message = if code == 429 {
                "Too Many Attempts."
            } else if code >= 500 {
                "Server Error"
            } else {
                phrase
            };
            Reply::json(code, json!({"message": message}))
        }
    }
}

/// A WAF-style HTML error page (ProBit's CloudFront answers like this).
pub(crate) fn waf_page(status: StatusCode) -> String {
    let line = format!("{} {}", status.as_u16(), reason(status));
    format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\" \"http://www.w3.org/TR/html4/loose.dtd\">\n<HTML><HEAD><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=iso-8859-1\">\n<TITLE>ERROR: The request could not be satisfied</TITLE>\n</HEAD><BODY>\n<H1>{line}</H1>\n<H2>The request could not be satisfied.</H2>\n<HR noshade size=\"1px\">\nRequest blocked.\n</BODY></HTML>\n"
    )
}

const TRUNCATED_FULL: &str =
    "{\"access_token\":\"truncated-token-never-complete\",\"token_type\":\"Bearer\",\"expires_in\":900}";

fn truncated_response() -> Response {
    let full = TRUNCATED_FULL.as_bytes();
    let half = Bytes::copy_from_slice(&full[..full.len() / 2]);
    let mut resp = Response::new(Body::new(TruncatedBody { first: Some(half), pause: None }));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(full.len()));
    resp
}

/// Yields half of the promised bytes, waits for them to be flushed, then fails,
/// which makes the server drop the connection.
struct TruncatedBody {
    first: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for TruncatedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let pause = self.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(50))));
        match pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "sandbox fault: truncated body",
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_reply() -> Reply {
        Reply::json(200, json!({"access_token": "a", "token_type": "Bearer", "expires_in": 900}))
    }

    #[test]
    fn rewrites_plain_and_enveloped() {
        let mut r = token_reply();
        Fault::ExpiresIn(ExpiresInFault::String).rewrite(&mut r, 900, &STANDARD_NAMES);
        let ReplyBody::Json(v) = &r.body else { panic!() };
        assert_eq!(v["expires_in"], json!("900"));

        let mut r = Reply::json(200, json!({"data": {"access_token": "a", "token_type": "Bearer"}}));
        Fault::LowercaseTokenType.rewrite(&mut r, 300, &STANDARD_NAMES);
        Fault::MissingAccessToken.rewrite(&mut r, 300, &STANDARD_NAMES);
        let ReplyBody::Json(v) = &r.body else { panic!() };
        assert_eq!(v, &json!({"data": {"token_type": "bearer"}}));
    }

    #[test]
    fn rewrite_leaves_errors_alone() {
        let mut r = Reply::json(400, json!({"error": "invalid_request"}));
        Fault::ExpiresIn(ExpiresInFault::Missing).rewrite(&mut r, 1, &STANDARD_NAMES);
        let ReplyBody::Json(v) = &r.body else { panic!() };
        assert_eq!(v, &json!({"error": "invalid_request"}));
    }

    #[test]
    fn probit_error_code_shape() {
        let r = error_reply(&Route::Builtin(Dialect::Probit), StatusCode::TOO_MANY_REQUESTS);
        let ReplyBody::Json(v) = &r.body else { panic!() };
        assert_eq!(v["errorCode"], json!("TOO_MANY_REQUESTS"));
    }

    #[test]
    fn rewrites_a_registered_dialects_renamed_fields() {
        let names =
            AnswerNames { envelope: Some("issued"), access_token: "bearer", expires_in: "lifetime", token_type: None };
        let mut r = Reply::json(200, json!({"issued": {"bearer": "a", "lifetime": "900"}}));
        Fault::ExpiresIn(ExpiresInFault::Zero).rewrite(&mut r, 900, &names);
        Fault::LowercaseTokenType.rewrite(&mut r, 900, &names);
        let ReplyBody::Json(v) = &r.body else { panic!() };
        assert_eq!(v, &json!({"issued": {"bearer": "a", "lifetime": 0}}));
    }
}
