//! The request log, with secrets redacted.

use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clients;
use crate::spec::DialectId;

/// What replaces a secret in the request log: tokensmith's one redaction marker.
pub const REDACTED: &str = tokensmith_core::support::REDACTED;

/// Fields whose values never reach the log.
const SENSITIVE: [&str; 7] =
    ["client_secret", "code", "code_verifier", "token", "refresh_token", "access_token", "password"];

/// Sensitive fields whose values are fingerprinted before being redacted.
const FINGERPRINTED: [&str; 4] = ["token", "refresh_token", "code", "access_token"];

/// A request the sandbox received, with every secret redacted.
///
/// Redacted: the value of the `Authorization` header (its scheme is kept, as in
/// `Basic [redacted]`), `Cookie`, and the values of `client_secret`, `code`,
/// `code_verifier`, `token`, `refresh_token`, `access_token` and `password` in
/// form bodies, JSON bodies and the query string; any demo client secret left
/// anywhere else is replaced too. Each redacted `token`, `refresh_token`, `code`
/// and `access_token` leaves a [`fingerprint`](crate::fingerprint) in
/// [`fingerprints`](RecordedRequest::fingerprints), so a test can prove for
/// example that each refresh token was sent exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The dialect whose routes received the request (compare it with a [`Dialect`](crate::Dialect)
    /// or a [`CustomDialect`](crate::CustomDialect) directly).
    pub dialect: DialectId,
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path relative to the dialect's base, e.g. `/token`.
    pub path: String,
    /// The raw query string (redacted), if the URL had one.
    pub query: Option<String>,
    /// The headers in arrival order, names lowercase, values redacted.
    pub headers: Vec<(String, String)>,
    /// The body as text, redacted. Form bodies keep their original encoding; a
    /// JSON body with a redacted field is re-serialized compactly; a body that is
    /// not UTF-8 is summarized as `[N bytes of binary data]`.
    pub body: String,
    /// `(field, fingerprint)` for each fingerprinted field found in the body or
    /// the query string, in order of appearance.
    pub fingerprints: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The fingerprint of the first redacted value of `field`, e.g. `"token"`.
    pub fn fingerprint_of(&self, field: &str) -> Option<&str> {
        self.fingerprints.iter().find(|(f, _)| f == field).map(|(_, v)| v.as_str())
    }

    /// Captures a request; `extra` names a registered dialect's own secret field and demo secret.
    pub(crate) fn capture(
        dialect: DialectId,
        request: (&str, &str, Option<&str>),
        headers: &HeaderMap,
        body: &[u8],
        extra: &Extra<'_>,
    ) -> RecordedRequest {
        let (method, path, query) = request;
        let scrub = |text: &str| scrub_extra(&scrub_secrets(text), extra.secrets);
        let mut fingerprints = Vec::new();
        let query = query.map(|q| scrub(&redact_form(&scrub(q), &mut fingerprints, extra)));
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                let value = match name.as_str() {
                    "authorization" | "proxy-authorization" => match value.split_once(' ') {
                        Some((scheme, _)) => format!("{scheme} {REDACTED}"),
                        None => REDACTED.to_owned(),
                    },
                    "cookie" => REDACTED.to_owned(),
                    _ => scrub(&value),
                };
                (name.as_str().to_owned(), value)
            })
            .collect();
        let body = match std::str::from_utf8(body) {
            Err(_) => format!("[{} bytes of binary data]", body.len()),
            Ok(text) => scrub(&redact_body(&scrub(text), &mut fingerprints, extra)),
        };
        RecordedRequest {
            dialect,
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            headers,
            body,
            fingerprints,
        }
    }
}

/// A stable, non-reversible fingerprint of a secret value: the first 8 hex
/// digits of its SHA-256.
///
/// ```
/// assert_eq!(tokensmith_sandbox::fingerprint("abc"), "ba7816bf");
/// ```
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// What a registered dialect adds to the redaction: its secret field's name and its demo secrets.
#[derive(Debug, Default)]
pub(crate) struct Extra<'a> {
    pub(crate) fields: &'a [&'a str],
    pub(crate) secrets: &'a [&'a str],
}

impl Extra<'_> {
    fn sensitive(&self, key: &str) -> bool {
        SENSITIVE.contains(&key) || self.fields.contains(&key)
    }
}

/// Replaces the extra secrets (raw, form-encoded or percent-encoded) left in the text.
fn scrub_extra(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut forms = [(*secret).to_owned(), form, percent];
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        for form in forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
    }
    out
}

fn redact_body(text: &str, fingerprints: &mut Vec<(String, String)>, extra: &Extra<'_>) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(mut value) = serde_json::from_str::<Value>(text) {
            let mut changed = false;
            redact_json(&mut value, fingerprints, &mut changed, extra);
            return if changed {
                serde_json::to_string(&value).unwrap_or_else(|_| REDACTED.to_owned())
            } else {
                text.to_owned()
            };
        }
    }
    if text.contains('=') { redact_form(text, fingerprints, extra) } else { text.to_owned() }
}

fn redact_json(value: &mut Value, fingerprints: &mut Vec<(String, String)>, changed: &mut bool, extra: &Extra<'_>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if extra.sensitive(key) && !v.is_null() {
                    if let (true, Value::String(s)) = (FINGERPRINTED.contains(&key.as_str()), &*v) {
                        fingerprints.push((key.clone(), fingerprint(s)));
                    }
                    *v = Value::String(REDACTED.to_owned());
                    *changed = true;
                } else {
                    redact_json(v, fingerprints, changed, extra);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                redact_json(v, fingerprints, changed, extra);
            }
        }
        _ => {}
    }
}

/// Redacts sensitive values of `a=b&c=d` text, keeping everything else verbatim.
fn redact_form(text: &str, fingerprints: &mut Vec<(String, String)>, extra: &Extra<'_>) -> String {
    text.split('&')
        .map(|pair| {
            let (raw_key, raw_value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            let key = form_decode(raw_key);
            match raw_value {
                Some(raw_value) if extra.sensitive(&key) => {
                    if FINGERPRINTED.contains(&key.as_str()) {
                        fingerprints.push((key, fingerprint(&form_decode(raw_value))));
                    }
                    format!("{raw_key}={REDACTED}")
                }
                _ => pair.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes one `application/x-www-form-urlencoded` component.
pub(crate) fn form_decode(s: &str) -> String {
    let plus_free = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_free).decode_utf8_lossy().into_owned()
}

/// Every demo client secret raw, form-encoded and percent-encoded, computed once: encoding them
/// for each recorded header was most of the sandbox's time per request.
static SECRET_FORMS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut forms = Vec::new();
    for secret in clients::all_secrets() {
        forms.push(secret.to_owned());
        forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        forms.push(percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string());
    }
    forms.sort();
    forms.dedup();
    // Longest first, so that a secret inside a longer form never leaves part of that form behind.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
});

/// Replaces any demo client secret (raw or form-encoded) left in the text.
fn scrub_secrets(text: &str) -> String {
    let mut out = text.to_owned();
    for form in SECRET_FORMS.iter() {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    #[test]
    fn fingerprint_is_sha256_prefix() {
        assert_eq!(fingerprint(""), "e3b0c442");
    }

    #[test]
    fn form_body_is_redacted_in_place() {
        let mut fp = Vec::new();
        let out = redact_form(
            "grant_type=client_credentials&client_id=x&client_secret=s%20t&token=abc&scope=read+write",
            &mut fp,
            &Extra::default(),
        );
        assert_eq!(
            out,
            "grant_type=client_credentials&client_id=x&client_secret=[redacted]&token=[redacted]&scope=read+write"
        );
        assert_eq!(fp, vec![("token".to_owned(), fingerprint("abc"))]);
    }

    #[test]
    fn json_body_is_redacted() {
        let mut fp = Vec::new();
        let out = redact_body(
            r#"{"client_id":"a","client_secret":"b","grant_type":"client_credentials"}"#,
            &mut fp,
            &Extra::default(),
        );
        assert_eq!(out, r#"{"client_id":"a","client_secret":"[redacted]","grant_type":"client_credentials"}"#);
        let untouched = redact_body(r#"{ "grant_type": "client_credentials" }"#, &mut fp, &Extra::default());
        assert_eq!(untouched, r#"{ "grant_type": "client_credentials" }"#);
    }

    #[test]
    fn headers_and_stray_secrets_are_redacted() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Basic Zm9vOmJhcg=="));
        headers.insert("x-note", HeaderValue::from_static("probit-demo-secret"));
        let r = RecordedRequest::capture(
            crate::Dialect::Probit.into(),
            ("POST", "/token", Some("a=1")),
            &headers,
            b"garbage probit-demo-secret",
            &Extra::default(),
        );
        assert_eq!(r.header("Authorization"), Some("Basic [redacted]"));
        assert_eq!(r.header("x-note"), Some("[redacted]"));
        assert_eq!(r.body, "garbage [redacted]");
        assert_eq!(r.query.as_deref(), Some("a=1"));
    }

    #[test]
    fn a_registered_dialects_secret_field_and_secret_are_redacted() {
        let extra = Extra { fields: &["consumerSecret"], secrets: &["acme-secret"] };
        let r = RecordedRequest::capture(
            crate::Dialect::Probit.into(),
            ("POST", "/token", None),
            &HeaderMap::new(),
            br#"{"consumerKey":"k","consumerSecret":"x y","note":"acme-secret"}"#,
            &extra,
        );
        assert_eq!(r.body, r#"{"consumerKey":"k","consumerSecret":"[redacted]","note":"[redacted]"}"#);
    }
}
