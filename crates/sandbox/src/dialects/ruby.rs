//! Rails/Doorkeeper (seed 002): `POST /oauth/token` with credentials in a JSON
//! (or form) body.
//!
//! The seed's prose says `GET /oauth/token` but every code sample POSTs; as
//! RFC 6749 §3.2 requires POST, a GET is answered like Rails answers a route it
//! does not have: 404. Doorkeeper would also take HTTP Basic credentials, but
//! the seed documents body credentials only, so the sandbox ignores a Basic
//! header and a client that sends only one gets `invalid_client`.

use http::Method;
use http::header::WWW_AUTHENTICATE;
use serde_json::{Map, Value, json};

use super::{Req, secs};
use crate::clients;
use crate::config::Dialect;
use crate::reply::Reply;
use crate::state::{Shared, TokenCheck};

const D: Dialect = Dialect::RubyStyle;
const SCOPES: [&str; 3] = ["public", "read", "write"];
const DEFAULT_SCOPE: &str = "public";
const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.";

const NOT_FOUND_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head>\n  <title>The page you were looking for doesn't exist (404)</title>\n</head>\n<body>\n  <div class=\"dialog\">\n    <h1>The page you were looking for doesn't exist.</h1>\n    <p>You may have mistyped the address or the page may have moved.</p>\n  </div>\n</body>\n</html>\n";

pub(super) fn handle(shared: &Shared, req: &Req<'_>) -> Reply {
    match (req.path, req.method) {
        ("/oauth/token", &Method::POST) => token(shared, req),
        ("/api/v1/me", &Method::GET | &Method::HEAD) => me(shared, req),
        _ => Reply::html(404, NOT_FOUND_PAGE),
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let reply = Reply::json(status, json!({"error": error, "error_description": description})).no_store();
    if status == 401 {
        reply.header(
            WWW_AUTHENTICATE,
            &format!("Bearer realm=\"Doorkeeper\", error=\"{error}\", error_description=\"{description}\""),
        )
    } else {
        reply
    }
}

/// The request parameters as Rails would see them: JSON or form body.
fn params(req: &Req<'_>) -> Result<Map<String, Value>, Reply> {
    if req.is_json() {
        return match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Reply::json(400, json!({"status": 400, "error": "Bad Request"}))),
        };
    }
    if req.is_form() {
        // Rack keeps the last of repeated keys.
        let mut map = Map::new();
        for (k, v) in req.form() {
            map.insert(k, Value::String(v));
        }
        return Ok(map);
    }
    Ok(Map::new())
}

fn string<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn token(shared: &Shared, req: &Req<'_>) -> Reply {
    let params = match params(req) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    match string(&params, "grant_type") {
        None => {
            return oauth_error(400, "invalid_request", "Missing required parameter: grant_type.");
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
    }
    let (Some(client_id), Some(client_secret)) = (string(&params, "client_id"), string(&params, "client_secret"))
    else {
        return oauth_error(401, "invalid_client", INVALID_CLIENT);
    };
    if !clients::authenticate(D, client_id, client_secret) {
        return oauth_error(401, "invalid_client", INVALID_CLIENT);
    }
    let scopes: Vec<String> = match params.get("scope") {
        None | Some(Value::Null) => vec![DEFAULT_SCOPE.to_owned()],
        Some(Value::String(s)) if s.trim().is_empty() => vec![DEFAULT_SCOPE.to_owned()],
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(_) => Vec::from(["".to_owned()]),
    };
    if scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return oauth_error(400, "invalid_scope", "The requested scope is invalid, unknown, or malformed.");
    }
    let scope = scopes.join(" ");
    let mut inner = shared.lock();
    let lifetime = inner.lifetime(D);
    let created_at = inner.unix_now();
    let token = inner.issue_access_token(D, client_id, scopes, lifetime);
    Reply::json(
        200,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": secs(lifetime),
            "scope": scope,
            "created_at": created_at
        }),
    )
    .no_store()
}

fn me(shared: &Shared, req: &Req<'_>) -> Reply {
    let check = match req.bearer() {
        Some(token) => {
            let inner = shared.lock();
            match inner.valid_access_token(D, token) {
                TokenCheck::Valid(grant) => {
                    return Reply::json(
                        200,
                        json!({
                            "id": grant.client_id,
                            "type": "client",
                            "scopes": grant.scopes
                        }),
                    );
                }
                TokenCheck::Expired => "The access token expired",
                TokenCheck::Unknown => "The access token is invalid",
            }
        }
        None => "The access token is invalid",
    };
    oauth_error(401, "invalid_token", check)
}
