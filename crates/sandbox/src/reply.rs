//! What a dialect handler answers, before it becomes an HTTP response.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

/// A response in the making: faults may still rewrite its JSON.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: ReplyBody,
}

#[derive(Debug)]
pub(crate) enum ReplyBody {
    Json(Value),
    Html(String),
    Empty,
}

impl Reply {
    pub(crate) fn json(status: u16, value: Value) -> Reply {
        Reply { status: status_code(status), headers: Vec::new(), body: ReplyBody::Json(value) }
    }

    pub(crate) fn html(status: u16, html: impl Into<String>) -> Reply {
        Reply { status: status_code(status), headers: Vec::new(), body: ReplyBody::Html(html.into()) }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply { status: status_code(status), headers: Vec::new(), body: ReplyBody::Empty }
    }

    /// Adds a header; values that are not valid header values are skipped.
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Adds `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
    pub(crate) fn no_store(self) -> Reply {
        self.header(http::header::CACHE_CONTROL, "no-store").header(http::header::PRAGMA, "no-cache")
    }

    pub(crate) fn into_response(self) -> Response {
        let (content_type, bytes) = match self.body {
            ReplyBody::Json(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap_or_default()),
            ReplyBody::Html(s) => (Some("text/html; charset=utf-8"), s.into_bytes()),
            ReplyBody::Empty => (None, Vec::new()),
        };
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = self.status;
        if let Some(ct) = content_type {
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}

/// A status code from a number; anything outside 200..=999 becomes 500.
pub(crate) fn status_code(status: u16) -> StatusCode {
    if status < 200 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The reason phrase of a status, or `Error` when it has none.
pub(crate) fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// An nginx-style gateway/error page, as a proxy in front of a provider sends.
pub(crate) fn proxy_page(status: StatusCode) -> String {
    let line = format!("{} {}", status.as_u16(), reason(status));
    format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_statuses_become_500() {
        assert_eq!(status_code(42), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_code(100), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_code(503), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_code(1000), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn html_escaping() {
        assert_eq!(escape_html("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;");
    }
}
