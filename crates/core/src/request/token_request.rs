//! [`TokenRequest`]: one token request as a plain value, and its wire form.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use url::Url;

use super::{BodyFormat, Grant, Value};
use crate::error::{Error, Result};
use crate::token::Scopes;

/// One request to a token endpoint.
///
/// Built with [`TokenRequest::for_grant`] (or [`TokenRequest::new`]), then shaped by a
/// [`CredentialStyle`](crate::style::CredentialStyle) and a provider's dialect. Headers and parameters keep the order they were added
/// in (headers sorted by name when rendered), so renderings are stable.
#[derive(Clone)]
pub struct TokenRequest {
    method: http::Method,
    url: Url,
    headers: Vec<(String, Value)>,
    format: BodyFormat,
    params: Vec<(String, Value)>,
    grant_type: &'static str,
    /// The wire form, rendered on first use and kept: a client sends the same client-credentials
    /// request for every token, so it is rendered once. Every change to the request clears it.
    wire: OnceLock<Wire>,
}

/// What goes on the wire: the headers and the body, secrets included. Never rendered by `Debug`.
#[derive(Clone)]
struct Wire {
    headers: http::HeaderMap,
    body: Bytes,
}

impl TokenRequest {
    /// An empty `POST` to `url` with a body in `format`: headers `Accept: application/json` and the
    /// format's `Content-Type`, no parameters.
    pub fn new(url: Url, format: BodyFormat) -> Self {
        TokenRequest {
            method: http::Method::POST,
            url,
            headers: vec![
                ("accept".to_owned(), Value::from("application/json")),
                ("content-type".to_owned(), Value::from(format.content_type())),
            ],
            format,
            params: Vec::new(),
            grant_type: "custom",
            wire: OnceLock::new(),
        }
    }

    /// A `GET` of `url` with `Accept: application/json`, no body and no `Content-Type`: the request for
    /// a document such as an authorization server's metadata (RFC 8414), which carries no secret.
    pub fn get(url: Url) -> Self {
        TokenRequest {
            method: http::Method::GET,
            url,
            headers: vec![("accept".to_owned(), Value::from("application/json"))],
            format: BodyFormat::Form,
            params: Vec::new(),
            grant_type: "none",
            wire: OnceLock::new(),
        }
    }

    /// A `POST` to `url` carrying `grant`'s standard parameters in RFC 6749 order: `grant_type`, then
    /// `code`, `redirect_uri`, `code_verifier`, or `refresh_token`.
    pub fn for_grant(url: Url, format: BodyFormat, grant: &Grant) -> Self {
        let mut request = TokenRequest::new(url, format).param("grant_type", grant.grant_type());
        request.grant_type = grant.grant_type();
        match grant {
            Grant::ClientCredentials => request,
            Grant::AuthorizationCode { code, redirect_uri, code_verifier } => {
                request = request.param("code", code.clone());
                if let Some(uri) = redirect_uri {
                    request = request.param("redirect_uri", uri.as_str());
                }
                if let Some(verifier) = code_verifier {
                    request = request.param("code_verifier", verifier.clone());
                }
                request
            }
            Grant::RefreshToken(rt) => request.param("refresh_token", rt.secret().clone()),
        }
    }

    /// Adds the requested scopes as `scope`, joined with `separator` (a space per RFC 6749 §3.3);
    /// nothing when `scopes` is empty.
    pub fn scopes(self, scopes: &Scopes, separator: &str) -> Self {
        if scopes.is_empty() { self } else { self.param("scope", scopes.join(separator)) }
    }

    /// Sets a body parameter, replacing an earlier one of the same name in place.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_param(name, value);
        self
    }

    /// Sets a body parameter in place, replacing an earlier one of the same name.
    pub fn set_param(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.changed();
        let name = name.into();
        let value = value.into();
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
    }

    /// Removes a body parameter (e.g. `grant_type` for WhiteBIT's code exchange).
    pub fn without_param(mut self, name: &str) -> Self {
        self.changed();
        self.params.retain(|(n, _)| n != name);
        self
    }

    /// Renames a body parameter in place, keeping its position and value (e.g. WhiteBIT sends the
    /// refresh token as `token`).
    pub fn rename_param(mut self, from: &str, to: &str) -> Self {
        self.changed();
        if let Some(slot) = self.params.iter_mut().find(|(n, _)| n == from) {
            slot.0 = to.to_owned();
        }
        self
    }

    /// Sets a header (name lowercased), replacing one of the same name.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Sets a header in place (name lowercased), replacing one of the same name.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.changed();
        let mut name = name.into();
        name.make_ascii_lowercase();
        let value = value.into();
        // Kept sorted by name: the wire, `Debug` and snapshots all show headers in that order.
        match self.headers.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(at) => {
                if let Some(header) = self.headers.get_mut(at) {
                    header.1 = value;
                }
            }
            Err(at) => self.headers.insert(at, (name, value)),
        }
    }

    /// Removes a header.
    pub fn without_header(mut self, name: &str) -> Self {
        self.changed();
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    /// Checks the rules every token request obeys: credentials never in the URL query, never both in
    /// a Basic header and in the body, and no parameter given twice.
    pub fn validate(&self) -> Result<()> {
        if let Some(query) = self.url.query() {
            for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
                let secret_param = self.params.iter().any(|(n, v)| *n == name && v.is_secret());
                if secret_param
                    || matches!(
                        name.as_ref(),
                        "client_secret" | "client_id" | "code" | "refresh_token" | "code_verifier"
                    )
                {
                    return Err(Error::config(
                        "token_url",
                        format!(
                            "the token URL carries `{name}` in its query; credentials and grants are never sent in the URL, remove it"
                        ),
                    ));
                }
            }
        }
        let has_basic = self.headers.iter().any(|(n, _)| n == "authorization");
        let has_body_secret = self.params.iter().any(|(n, _)| n == "client_secret" || n == "client_assertion");
        if has_basic && has_body_secret {
            return Err(Error::config(
                "credential_style",
                "client credentials would be sent both in the Authorization header and in the body; choose one credential style",
            ));
        }
        Ok(())
    }

    /// The HTTP method: `POST`, or `GET` for a request made with [`TokenRequest::get`].
    pub fn method(&self) -> &http::Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body format.
    pub fn body_format(&self) -> BodyFormat {
        self.format
    }

    /// The `grant_type` this request was built for (`custom` for [`TokenRequest::new`]), for tracing.
    pub fn grant_type(&self) -> &'static str {
        self.grant_type
    }

    /// A parameter's value with secrets redacted, if present.
    pub fn param_redacted(&self, name: &str) -> Option<String> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.redacted())
    }

    /// The parameters' names, in order.
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether a parameter is present.
    pub fn has_param(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }

    /// Whether a header is present.
    pub fn has_header(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.headers.iter().any(|(n, _)| *n == name)
    }

    /// The headers as sent, sorted by name; values holding secrets are marked sensitive.
    pub fn wire_headers(&self) -> Result<http::HeaderMap> {
        Ok(self.wire()?.headers.clone())
    }

    /// The body as sent, secrets included. Only the transport should call this.
    pub fn wire_body(&self) -> Vec<u8> {
        self.wire_body_bytes().to_vec()
    }

    /// The body as sent, secrets included, as shared bytes: what [`wire_body`](Self::wire_body)
    /// gives, without a copy once the request has been rendered. Only the transport should call this.
    pub fn wire_body_bytes(&self) -> Bytes {
        match self.wire() {
            Ok(wire) => wire.body.clone(),
            // The headers do not render; the body still does.
            Err(_) => Bytes::from(self.render_body(Value::expose)),
        }
    }

    /// The wire form, rendered once and kept until the request changes.
    fn wire(&self) -> Result<&Wire> {
        if let Some(wire) = self.wire.get() {
            return Ok(wire);
        }
        let wire = Wire { headers: self.render_headers()?, body: Bytes::from(self.render_body(Value::expose)) };
        Ok(self.wire.get_or_init(|| wire))
    }

    /// Clears the kept wire form: called by every method that changes the request.
    fn changed(&mut self) {
        self.wire.take();
    }

    fn render_headers(&self) -> Result<http::HeaderMap> {
        let mut map = http::HeaderMap::with_capacity(self.headers.len());
        for (name, value) in self.sorted_headers() {
            let header_name = http::HeaderName::try_from(name.as_str())
                .map_err(|_| Error::config("headers", format!("`{name}` is not a valid header name")))?;
            let mut header_value = http::HeaderValue::try_from(value.expose()).map_err(|_| {
                Error::config("headers", format!("the value of header `{name}` has characters HTTP does not allow"))
            })?;
            header_value.set_sensitive(value.is_secret());
            map.insert(header_name, header_value);
        }
        Ok(map)
    }

    /// The body with every secret replaced by `[redacted]`.
    pub fn redacted_body(&self) -> String {
        self.render_body(Value::redacted)
    }

    fn render_body(&self, show: impl Fn(&Value) -> String) -> String {
        match self.format {
            BodyFormat::Form => {
                let mut out = url::form_urlencoded::Serializer::new(String::new());
                for (name, value) in &self.params {
                    out.append_pair(name, &show(value));
                }
                out.finish()
            }
            BodyFormat::Json => {
                // Written member by member so that the object keeps the parameters' order without
                // asking serde_json for `preserve_order` (which would change every user's `Map`).
                let mut out = String::from("{");
                for (i, (name, value)) in self.params.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(name.as_str()).to_string());
                    out.push(':');
                    out.push_str(&serde_json::Value::String(show(value)).to_string());
                }
                out.push('}');
                out
            }
        }
    }

    /// The headers, sorted by name (`set_header` keeps them so).
    fn sorted_headers(&self) -> &[(String, Value)] {
        &self.headers
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("method", &self.method.as_str())
            .field("url", &self.url.as_str())
            .field("headers", &self.sorted_headers())
            .field("body", &self.redacted_body())
            .finish()
    }
}

/// The redacted rendering used by snapshot tests: method, URL, headers sorted by name, the body as it
/// goes on the wire with secrets replaced by `[redacted]`, and the parameters one by one.
impl Serialize for TokenRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        struct Pairs<'a>(&'a [(String, Value)]);
        impl Serialize for Pairs<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    map.serialize_entry(name, &value.redacted())?;
                }
                map.end()
            }
        }
        let mut s = serializer.serialize_struct("TokenRequest", 6)?;
        s.serialize_field("method", self.method.as_str())?;
        s.serialize_field("url", self.url.as_str())?;
        s.serialize_field("headers", &Pairs(self.sorted_headers()))?;
        s.serialize_field("body_format", &self.format)?;
        s.serialize_field("params", &Pairs(&self.params))?;
        s.serialize_field("body", &self.redacted_body())?;
        s.end()
    }
}
