//! ProBit (seed 000): `POST /token` with Basic credentials and a JSON body.

use http::Method;
use serde_json::{Value, json};

use super::{Auth, Req, secs};
use crate::clients;
use crate::config::Dialect;
use crate::fault::waf_page;
use crate::reply::Reply;
use crate::state::{Shared, TokenCheck};

const D: Dialect = Dialect::Probit;

pub(super) fn handle(shared: &Shared, req: &Req<'_>) -> Reply {
    match (req.path, req.method) {
        ("/token", &Method::POST) => token(shared, req),
        ("/token", &Method::GET | &Method::HEAD) => Reply::html(403, waf_page(http::StatusCode::FORBIDDEN)),
        ("/token", _) => error(405, "METHOD_NOT_ALLOWED", "Method Not Allowed").header(http::header::ALLOW, "POST"),
        ("/api/exchange/v1/balance", &Method::GET) => balance(shared, req),
        ("/api/exchange/v1/balance", _) => {
            error(405, "METHOD_NOT_ALLOWED", "Method Not Allowed").header(http::header::ALLOW, "GET")
        }
        _ => error(404, "NOT_FOUND", "Not Found"),
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"errorCode": code, "message": message, "details": {}}))
}

fn unauthorized(message: &str) -> Reply {
    error(401, "UNAUTHORIZED", message)
}

fn token(shared: &Shared, req: &Req<'_>) -> Reply {
    let decoded = match req.basic() {
        Auth::Present(s) => s,
        Auth::Absent => return unauthorized("Authorization header is required"),
        Auth::OtherScheme | Auth::Malformed => {
            return unauthorized("Authorization header must be Basic base64(client_id:client_secret)");
        }
    };
    let Some((client_id, client_secret)) = decoded.split_once(':') else {
        return unauthorized("Invalid client credentials");
    };
    if !clients::authenticate(D, client_id, client_secret) {
        return unauthorized("Invalid client credentials");
    }
    if !req.is_json() {
        return error(400, "INVALID_ARGUMENT", "Content-Type must be application/json");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(req.body) else {
        return error(400, "INVALID_ARGUMENT", "Request body must be a JSON object");
    };
    if body.get("grant_type").and_then(Value::as_str) != Some("client_credentials") {
        return Reply::json(400, json!({"error": "invalid_grant"}));
    }
    let mut inner = shared.lock();
    let lifetime = inner.lifetime(D);
    let token = inner.issue_access_token(D, client_id, Vec::new(), lifetime);
    let expires_in = if shared.config.probit_expires_in_as_string {
        json!(secs(lifetime).to_string())
    } else {
        json!(secs(lifetime))
    };
    Reply::json(200, json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})).no_store()
}

fn balance(shared: &Shared, req: &Req<'_>) -> Reply {
    let Some(token) = req.bearer() else {
        return unauthorized("Authorization: Bearer access token is required");
    };
    match shared.lock().valid_access_token(D, token) {
        TokenCheck::Valid(_) => Reply::json(
            200,
            json!({"data": [
                {"currency_id": "BTC", "total": "0.5", "available": "0.25"},
                {"currency_id": "USDT", "total": "1000", "available": "1000"}
            ]}),
        ),
        TokenCheck::Expired => unauthorized("Access token expired"),
        TokenCheck::Unknown => unauthorized("Invalid access token"),
    }
}
