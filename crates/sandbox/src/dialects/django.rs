//! Django OAuth Toolkit (seed 001): `POST /o/token/`, form body, Basic or body
//! credentials, scopes `read`, `write`, `admin`.

use http::Method;
use http::header::{ALLOW, LOCATION, WWW_AUTHENTICATE};
use serde_json::json;

use super::{Auth, Req, secs, single};
use crate::clients;
use crate::config::Dialect;
use crate::record::form_decode;
use crate::reply::Reply;
use crate::state::{Shared, TokenCheck};

const D: Dialect = Dialect::GenericDjango;
const SCOPES: [&str; 3] = ["read", "write", "admin"];
const DEFAULT_SCOPES: [&str; 2] = ["read", "write"];

pub(super) fn handle(shared: &Shared, req: &Req<'_>) -> Reply {
    match (req.path, req.method) {
        ("/o/token/", &Method::POST) => token(shared, req),
        ("/o/token/", _) => Reply::empty(405).header(ALLOW, "POST, OPTIONS"),
        ("/payments/", &Method::GET | &Method::HEAD) => payments(shared, req),
        ("/payments/", m) => Reply::json(405, json!({"detail": format!("Method \"{m}\" not allowed.")}))
            .header(ALLOW, "GET, HEAD, OPTIONS"),
        // Django's CommonMiddleware (APPEND_SLASH) redirects, losing a POST body.
        ("/o/token" | "/payments", _) => {
            Reply::empty(301).header(LOCATION, &format!("http://127.0.0.1:{}{}{}/", shared.port, D.prefix(), req.path))
        }
        _ => Reply::html(
            404,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n",
        ),
    }
}

fn oauth_error(status: u16, error: &str, description: Option<&str>) -> Reply {
    let body = match description {
        Some(d) => json!({"error": error, "error_description": d}),
        None => json!({"error": error}),
    };
    Reply::json(status, body).no_store()
}

fn invalid_request(description: &str) -> Reply {
    oauth_error(400, "invalid_request", Some(description))
}

fn invalid_client() -> Reply {
    oauth_error(401, "invalid_client", None)
}

/// Python's `urllib.parse.unquote_plus`, as Django OAuth Toolkit applies it to
/// each half of the decoded Basic credentials.
fn unquote_plus(s: &str) -> String {
    form_decode(s)
}

fn token(shared: &Shared, req: &Req<'_>) -> Reply {
    if req.query.is_some_and(|q| !q.is_empty()) {
        return invalid_request("URL query parameters are not allowed");
    }
    if !req.is_form() {
        return oauth_error(400, "unsupported_grant_type", None);
    }
    let params = req.form();
    let mut values = [None; 4];
    for (slot, name) in values.iter_mut().zip(["grant_type", "client_id", "client_secret", "scope"]) {
        match single(&params, name) {
            Ok(v) => *slot = v,
            Err(()) => return invalid_request(&format!("Duplicate {name} parameter.")),
        }
    }
    let [grant_type, body_id, body_secret, scope] = values;

    let basic = match req.basic() {
        Auth::Present(decoded) => match decoded.split_once(':') {
            Some((id, secret)) => Some((unquote_plus(id), unquote_plus(secret))),
            None => return invalid_client(),
        },
        Auth::Malformed => return invalid_client(),
        Auth::Absent | Auth::OtherScheme => None,
    };
    if basic.is_some() && (body_id.is_some() || body_secret.is_some()) {
        return invalid_request("Request must not use more than one authentication method.");
    }

    match grant_type {
        None | Some("") => return invalid_request("Request is missing grant type."),
        Some("client_credentials") => {}
        Some(_) => return oauth_error(400, "unsupported_grant_type", None),
    }

    let (client_id, client_secret) = match (&basic, body_id, body_secret) {
        (Some((id, secret)), _, _) => (id.as_str(), secret.as_str()),
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return invalid_client(),
    };
    if !clients::authenticate(D, client_id, client_secret) {
        return invalid_client();
    }

    let scopes: Vec<String> = match scope.map(str::trim) {
        None | Some("") => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(requested) => {
            let scopes: Vec<String> = requested.split(' ').map(str::to_owned).collect();
            if scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
                return oauth_error(400, "invalid_scope", None);
            }
            scopes
        }
    };
    let scope = scopes.join(" ");
    let mut inner = shared.lock();
    let lifetime = inner.lifetime(D);
    let token = inner.issue_access_token(D, client_id, scopes, lifetime);
    Reply::json(
        200,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": secs(lifetime),
            "scope": scope
        }),
    )
    .no_store()
}

fn payments(shared: &Shared, req: &Req<'_>) -> Reply {
    let unauthenticated = || {
        Reply::json(401, json!({"detail": "Authentication credentials were not provided."}))
            .header(WWW_AUTHENTICATE, "Bearer realm=\"api\"")
    };
    let Some(token) = req.bearer() else {
        return unauthenticated();
    };
    match shared.lock().valid_access_token(D, token) {
        TokenCheck::Valid(grant) if grant.scopes.iter().any(|s| s == "read") => {
            Reply::json(200, json!({"count": 0, "next": null, "previous": null, "results": []}))
        }
        TokenCheck::Valid(_) => {
            Reply::json(403, json!({"detail": "You do not have permission to perform this action."}))
        }
        TokenCheck::Expired | TokenCheck::Unknown => unauthenticated(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_plus_matches_python() {
        assert_eq!(unquote_plus("a+b%20c%2B"), "a b c+");
        // Invalid escapes stay as they are, like Python's unquote.
        assert_eq!(unquote_plus("s3cr3t: %+/&="), "s3cr3t: % /&=");
    }
}
