//! Registered dialects: one strict handler driven by a [`DialectSpec`].

use http::Method;
use http::header::{ALLOW, WWW_AUTHENTICATE};
use serde_json::{Map, Value, json};

use super::{Auth, Req, secs, single};
use crate::record::form_decode;
use crate::reply::Reply;
use crate::spec::{BodyEncoding, ClientAuth, CustomDialect, DialectSpec, ErrorShape, LifetimeFormat};
use crate::state::{Shared, TokenCheck};

pub(crate) fn handle(shared: &Shared, id: CustomDialect, spec: &DialectSpec, req: &Req<'_>) -> Reply {
    if req.path == spec.token_path {
        if req.method != Method::POST {
            let text = format!("the token endpoint takes POST, not {}", req.method);
            return error(spec, 405, "invalid_request", &text).header(ALLOW, "POST");
        }
        return token(shared, id, spec, req).unwrap_or_else(|refusal| refusal);
    }
    if req.path == spec.protected_path {
        if !matches!(*req.method, Method::GET | Method::HEAD) {
            let text = format!("the protected resource takes GET, not {}", req.method);
            return error(spec, 405, "invalid_request", &text).header(ALLOW, "GET, HEAD");
        }
        return protected(shared, id, spec, req);
    }
    let text = format!("the `{}` dialect has no route `{}`", spec.name, req.path);
    error(spec, 404, "not_found", &text)
}

/// An error in the dialect's shape.
pub(crate) fn error(spec: &DialectSpec, status: u16, code: &str, message: &str) -> Reply {
    let body = match &spec.error_shape {
        ErrorShape::Rfc6749 => json!({"error": code, "error_description": message}),
        ErrorShape::Fields { code: code_field, message: message_field, envelope } => {
            let mut object = Map::new();
            object.insert(code_field.clone(), json!(code));
            object.insert(message_field.clone(), json!(message));
            envelope_around(envelope.as_deref(), object)
        }
    };
    Reply::json(status, body).no_store()
}

fn envelope_around(envelope: Option<&str>, object: Map<String, Value>) -> Value {
    match envelope {
        Some(member) => {
            let mut outer = Map::new();
            outer.insert(member.to_owned(), Value::Object(object));
            Value::Object(outer)
        }
        None => Value::Object(object),
    }
}

fn invalid_request(spec: &DialectSpec, message: &str) -> Reply {
    error(spec, 400, "invalid_request", message)
}

fn invalid_client(spec: &DialectSpec, message: &str) -> Reply {
    error(spec, 401, "invalid_client", message)
}

/// The body's fields, refusing a body of another type, an unknown field or a field sent twice.
fn fields(spec: &DialectSpec, req: &Req<'_>) -> Result<Vec<(String, String)>, Reply> {
    let fields = match spec.body {
        BodyEncoding::Form => {
            if !req.is_form() {
                return Err(invalid_request(spec, "Content-Type must be application/x-www-form-urlencoded"));
            }
            req.form()
        }
        BodyEncoding::Json => {
            if !req.is_json() {
                return Err(invalid_request(spec, "Content-Type must be application/json"));
            }
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(req.body) else {
                return Err(invalid_request(spec, "the body must be a JSON object"));
            };
            let mut fields = Vec::with_capacity(object.len());
            for (name, value) in object {
                let Value::String(value) = value else {
                    return Err(invalid_request(spec, &format!("`{name}` must be a JSON string")));
                };
                fields.push((name, value));
            }
            fields
        }
    };
    let known = spec.request_fields();
    if let Some((name, _)) = fields.iter().find(|(name, _)| !known.contains(&name.as_str())) {
        let text = format!("unexpected field `{name}`; the `{}` dialect takes {}", spec.name, list(&known));
        return Err(invalid_request(spec, &text));
    }
    for name in known {
        if single(&fields, name).is_err() {
            return Err(invalid_request(spec, &format!("`{name}` sent more than once")));
        }
    }
    Ok(fields)
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The client the request authenticates as, or the refusal.
fn client(spec: &DialectSpec, req: &Req<'_>, fields: &[(String, String)]) -> Result<String, Reply> {
    let basic = req.basic();
    let (id, secret) = match &spec.client_auth {
        ClientAuth::BasicRfc6749 | ClientAuth::BasicRaw => {
            let decoded = match basic {
                Auth::Present(decoded) => decoded,
                Auth::Absent => {
                    return Err(invalid_client(
                        spec,
                        "client credentials must arrive in an Authorization: Basic header",
                    ));
                }
                Auth::OtherScheme | Auth::Malformed => {
                    return Err(invalid_client(spec, "the Authorization header is not Basic base64(id:secret)"));
                }
            };
            let Some((id, secret)) = decoded.split_once(':') else {
                return Err(invalid_client(spec, "the Basic credentials have no `:` between id and secret"));
            };
            match spec.client_auth {
                ClientAuth::BasicRfc6749 => (form_decode(id), form_decode(secret)),
                _ => (id.to_owned(), secret.to_owned()),
            }
        }
        ClientAuth::Body { id: id_field, secret: secret_field } => {
            if !matches!(basic, Auth::Absent) {
                return Err(invalid_request(spec, "client credentials must arrive in the body only, not in a header"));
            }
            let (Some(id), Some(secret)) = (value(fields, id_field), value(fields, secret_field)) else {
                let text = format!("client credentials must arrive as `{id_field}` and `{secret_field}`");
                return Err(invalid_client(spec, &text));
            };
            (id.to_owned(), secret.to_owned())
        }
        ClientAuth::None => {
            if !matches!(basic, Auth::Absent) {
                return Err(invalid_request(spec, "this dialect takes no client credentials"));
            }
            return Ok(String::new());
        }
    };
    if [&spec.client, &spec.special_client()].iter().any(|c| c.client_id == id && c.client_secret == secret) {
        Ok(id)
    } else {
        Err(invalid_client(spec, "unknown client, or its credentials do not match"))
    }
}

fn token(shared: &Shared, dialect: CustomDialect, spec: &DialectSpec, req: &Req<'_>) -> Result<Reply, Reply> {
    if req.query.is_some_and(|q| !q.is_empty()) {
        return Err(invalid_request(spec, "URL query parameters are not allowed"));
    }
    let fields = fields(spec, req)?;
    match value(&fields, &spec.grant_field) {
        None | Some("") => return Err(invalid_request(spec, &format!("missing `{}`", spec.grant_field))),
        Some(grant) if grant == spec.grant_value => {}
        Some(_) => {
            let text = format!("`{}` must be `{}`", spec.grant_field, spec.grant_value);
            return Err(error(spec, 400, "unsupported_grant_type", &text));
        }
    }
    let client_id = client(spec, req, &fields)?;
    let requested = spec.scope_field.as_deref().and_then(|f| value(&fields, f)).map(str::trim).unwrap_or_default();
    let scopes: Vec<String> = if requested.is_empty() {
        spec.default_scopes.clone()
    } else {
        let scopes: Vec<String> = requested.split(' ').map(str::to_owned).collect();
        if scopes.iter().any(String::is_empty) {
            return Err(error(spec, 400, "invalid_scope", "scopes are separated by single spaces"));
        }
        if let Some(unknown) = scopes.iter().find(|s| !spec.scopes.is_empty() && !spec.scopes.contains(s)) {
            return Err(error(spec, 400, "invalid_scope", &format!("unknown scope `{unknown}`")));
        }
        scopes
    };
    let scope = scopes.join(" ");
    let mut inner = shared.lock();
    let lifetime = inner.lifetime(dialect);
    let token = inner.issue_access_token(dialect, &client_id, scopes, lifetime);
    let mut answer = Map::new();
    answer.insert(spec.access_token_field.clone(), json!(token));
    if let Some(field) = &spec.token_type_field {
        answer.insert(field.clone(), json!("Bearer"));
    }
    let lifetime = match spec.lifetime_format {
        LifetimeFormat::Number => json!(secs(lifetime)),
        LifetimeFormat::String => json!(secs(lifetime).to_string()),
    };
    answer.insert(spec.lifetime_field.clone(), lifetime);
    if let (Some(field), false) = (&spec.answer_scope_field, scope.is_empty()) {
        answer.insert(field.clone(), json!(scope));
    }
    Ok(Reply::json(200, envelope_around(spec.envelope.as_deref(), answer)).no_store())
}

fn protected(shared: &Shared, dialect: CustomDialect, spec: &DialectSpec, req: &Req<'_>) -> Reply {
    let refuse = |message: &str| error(spec, 401, "invalid_token", message).header(WWW_AUTHENTICATE, "Bearer");
    let Some(token) = req.bearer() else {
        return refuse("an Authorization: Bearer access token is required");
    };
    match shared.lock().valid_access_token(dialect, token) {
        TokenCheck::Valid(grant) => Reply::json(200, json!({"dialect": spec.name, "scope": grant.scopes.join(" ")})),
        TokenCheck::Expired => refuse("the access token expired"),
        TokenCheck::Unknown => refuse("unknown access token"),
    }
}
