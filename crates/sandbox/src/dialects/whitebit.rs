//! WhiteBIT (seed 003): authorization code flow with a consent page, optional
//! PKCE (S256), code exchange and refresh token rotation, `{"data":{...}}`
//! envelopes and Laravel-style errors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use http::header::{ALLOW, LOCATION, RETRY_AFTER};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokensmith_core::support::is_loopback_host;
use url::Url;

use super::{Req, first, secs};
use crate::clients;
use crate::config::Dialect;
use crate::reply::{Reply, escape_html};
use crate::state::{CodeGrant, PendingAuthorization, RefreshGrant, Shared, TokenCheck, random_token};

const D: Dialect = Dialect::Whitebit;
const STANDARD_SCOPE: &str = "general,users.read";
const PKCE_SCOPE: &str = "apikeys.create,apikeys.read,apikeys.delete";
/// At most one refresh per client within this window.
const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn handle(shared: &Shared, req: &Req<'_>) -> Reply {
    let allowed = match req.path {
        "/auth/login" => "GET, HEAD",
        "/auth/consent" | "/oauth2/token" | "/oauth2/refresh_token" => "POST",
        "/api/v4/main-account/balance" => "GET, HEAD",
        _ => return Reply::json(404, json!({"message": "Not Found"})),
    };
    match (req.path, req.method) {
        ("/auth/login", &Method::GET | &Method::HEAD) => login(shared, req),
        ("/auth/consent", &Method::POST) => consent(shared, req),
        ("/oauth2/token", &Method::POST) => exchange(shared, req),
        ("/oauth2/refresh_token", &Method::POST) => refresh(shared, req),
        ("/api/v4/main-account/balance", &Method::GET | &Method::HEAD) => balance(shared, req),
        (path, method) => Reply::json(
            405,
            json!({"message": format!(
                "The {method} method is not supported for route {}. Supported methods: {allowed}.",
                path.trim_start_matches('/')
            )}),
        )
        .header(ALLOW, allowed),
    }
}

// ---------------------------------------------------------------- pages

fn page(status: u16, title: &str, body: &str) -> Reply {
    Reply::html(
        status,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
            escape_html(title)
        ),
    )
}

fn bad_login(message: &str) -> Reply {
    page(
        400,
        "WhiteBIT sandbox: invalid authorization request",
        &format!("<h1>Invalid authorization request</h1>\n<p class=\"error\">{}</p>", escape_html(message)),
    )
}

fn consent_page(pending_id: &str, client_id: &str, pkce: bool) -> Reply {
    let scope = if pkce { PKCE_SCOPE } else { STANDARD_SCOPE };
    let action = format!("{}/auth/consent", D.prefix());
    page(
        200,
        "WhiteBIT sandbox: authorize application",
        &format!(
            "<h1>Authorize {client}</h1>\n<p>{client} asks for access to your WhiteBIT account: {scope}.</p>\n<form method=\"post\" action=\"{action}\">\n<input type=\"hidden\" name=\"authorization_id\" value=\"{id}\">\n<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>",
            client = escape_html(client_id),
            scope = escape_html(scope),
            action = escape_html(&action),
            id = escape_html(pending_id),
        ),
    )
}

// ---------------------------------------------------------------- authorization

/// Whether `given` may stand for the registered redirect URI: the same URI, or
/// for a loopback `http` URI the same host and path on any port (RFC 8252 §7.3).
pub(crate) fn redirect_allowed(registered: &str, given: &str) -> bool {
    if given == registered {
        return true;
    }
    let (Ok(reg), Ok(given)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    // The workspace's one loopback rule (literal loopback addresses and `localhost` itself).
    let loopback = |u: &Url| u.scheme() == "http" && u.host().is_some_and(|h| is_loopback_host(&h));
    loopback(&reg)
        && loopback(&given)
        && reg.host() == given.host()
        && reg.path() == given.path()
        && reg.query() == given.query()
        && given.fragment().is_none()
        && given.username().is_empty()
        && given.password().is_none()
}

fn is_pkce_value(s: &str, min: usize) -> bool {
    (min..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn login(shared: &Shared, req: &Req<'_>) -> Reply {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(client_id) = first(&params, "clientId").filter(|c| clients::known(D, c)) else {
        return bad_login("Unknown or missing clientId.");
    };
    let Some(state) = first(&params, "state").filter(|s| !s.is_empty()) else {
        return bad_login("The state parameter is required.");
    };
    let registered = shared.config.whitebit_redirect_uri.as_str();
    let redirect_uri = match first(&params, "redirect_uri") {
        None => registered,
        Some(given) if redirect_allowed(registered, given) => given,
        Some(_) => return bad_login("The redirect_uri does not match the registered one."),
    };
    let code_challenge = match (first(&params, "code_challenge"), first(&params, "code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), Some("S256")) if challenge.len() == 43 && is_pkce_value(challenge, 43) => {
            Some(challenge.to_owned())
        }
        (Some(_), Some("S256")) => {
            return bad_login("The code_challenge must be BASE64URL(SHA256(code_verifier)).");
        }
        (None, Some(_)) => return bad_login("The code_challenge parameter is required."),
        (Some(_), _) => return bad_login("The code_challenge_method must be S256."),
    };
    let pkce = code_challenge.is_some();
    let pending = PendingAuthorization {
        client_id: client_id.to_owned(),
        state: state.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge,
    };
    if shared.config.whitebit_auto_approve {
        return decide(shared, pending, true);
    }
    let id = random_token(16);
    shared.lock().pending.insert(id.clone(), pending);
    consent_page(&id, client_id, pkce)
}

fn consent(shared: &Shared, req: &Req<'_>) -> Reply {
    if !req.is_form() {
        return bad_login("The consent form must be posted as application/x-www-form-urlencoded.");
    }
    let params = req.form();
    let allow = match first(&params, "decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return bad_login("The decision must be allow or deny."),
    };
    let pending = first(&params, "authorization_id").and_then(|id| shared.lock().pending.remove(id));
    match pending {
        Some(p) => decide(shared, p, allow),
        None => bad_login("This authorization request is unknown or was already answered."),
    }
}

/// Redirects back to the client with a code, or with `error=access_denied`.
fn decide(shared: &Shared, pending: PendingAuthorization, allow: bool) -> Reply {
    let Ok(mut target) = Url::parse(&pending.redirect_uri) else {
        return bad_login("The registered redirect_uri is not a valid URL.");
    };
    if allow {
        let code = random_token(32);
        let mut inner = shared.lock();
        let expires_at = inner.now() + shared.config.whitebit_code_lifetime;
        inner.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: pending.client_id,
                redirect_uri: pending.redirect_uri.clone(),
                code_challenge: pending.code_challenge,
                expires_at,
                redeemed: None,
            },
        );
        target.query_pairs_mut().append_pair("code", &code).append_pair("state", &pending.state);
    } else {
        target.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", &pending.state);
    }
    Reply::empty(302).header(LOCATION, target.as_str())
}

// ---------------------------------------------------------------- token endpoints

fn validation_error(missing: &[&str]) -> Reply {
    let mut errors = Map::new();
    for field in missing {
        errors.insert((*field).to_owned(), json!([format!("The {} field is required.", field.replace('_', " "))]));
    }
    Reply::json(422, json!({"errors": errors, "notification": null}))
}

fn invalid_client() -> Reply {
    Reply::json(401, json!({"data": {"message": ["Invalid request"]}}))
}

fn invalid_token() -> Reply {
    Reply::json(400, json!({"data": {"token": ["Invalid token."]}}))
}

fn invalid_field(field: &str, message: &str) -> Reply {
    Reply::json(400, json!({"data": {field: [message]}}))
}

/// All form parameters, and the required ones in order.
type Fields<const N: usize> = (Vec<(String, String)>, [String; N]);

/// Reads the form fields (a non-form body has none), answering 422 when a
/// required one is missing or empty.
fn required_fields<const N: usize>(req: &Req<'_>, required: [&'static str; N]) -> Result<Fields<N>, Reply> {
    let params = if req.is_form() { req.form() } else { Vec::new() };
    let values = required.map(|f| first(&params, f).filter(|v| !v.is_empty()).map(str::to_owned));
    let missing: Vec<&str> = required.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(f, _)| *f).collect();
    if !missing.is_empty() {
        return Err(validation_error(&missing));
    }
    let values = values.map(Option::unwrap_or_default);
    Ok((params, values))
}

fn exchange(shared: &Shared, req: &Req<'_>) -> Reply {
    let (params, [client_id, client_secret, code]) = match required_fields(req, ["client_id", "client_secret", "code"])
    {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if !clients::authenticate(D, &client_id, &client_secret) {
        return invalid_client();
    }
    let verifier = first(&params, "code_verifier");
    let redirect_uri = first(&params, "redirect_uri");

    let mut inner = shared.lock();
    let now = inner.now();
    let Some(grant) = inner.codes.get_mut(&code) else {
        return invalid_token();
    };
    if grant.client_id != client_id {
        return invalid_token();
    }
    if let Some((access, refresh)) = grant.redeemed.take() {
        // A code used twice revokes what it was exchanged for (RFC 6749 §4.1.2).
        inner.access_tokens.remove(&access);
        if let Some(r) = refresh {
            inner.refresh_tokens.remove(&r);
        }
        inner.codes.remove(&code);
        return invalid_token();
    }
    if grant.expires_at <= now {
        inner.codes.remove(&code);
        return invalid_token();
    }
    let pkce = match (&grant.code_challenge, verifier) {
        (None, None) => false,
        (Some(_), None) => return validation_error(&["code_verifier"]),
        (Some(challenge), Some(v)) if is_pkce_value(v, 43) && s256(v) == *challenge => true,
        _ => return invalid_field("code_verifier", "Invalid code verifier."),
    };
    if redirect_uri.is_some_and(|r| r != grant.redirect_uri) {
        return invalid_field("redirect_uri", "Invalid redirect uri.");
    }

    let data = if pkce {
        let lifetime = shared.config.whitebit_pkce_lifetime;
        let access = inner.issue_access_token(D, &client_id, scopes(PKCE_SCOPE), lifetime);
        if let Some(grant) = inner.codes.get_mut(&code) {
            grant.redeemed = Some((access.clone(), None));
        }
        json!({
            "access_token": access,
            "expires_in": secs(lifetime),
            "scope": PKCE_SCOPE,
            "token_type": "Bearer"
        })
    } else {
        let (access, refresh, lifetime) = issue_pair(shared, &mut inner, &client_id);
        if let Some(grant) = inner.codes.get_mut(&code) {
            grant.redeemed = Some((access.clone(), Some(refresh.clone())));
        }
        pair_json(&access, &refresh, lifetime)
    };
    Reply::json(200, json!({"data": data})).no_store()
}

fn scopes(list: &str) -> Vec<String> {
    list.split(',').map(str::to_owned).collect()
}

fn issue_pair(
    shared: &Shared,
    inner: &mut crate::state::Inner,
    client_id: &str,
) -> (String, String, std::time::Duration) {
    let lifetime = inner.lifetime(D);
    let access = inner.issue_access_token(D, client_id, scopes(STANDARD_SCOPE), lifetime);
    let refresh = random_token(32);
    let expires_at = inner.now() + shared.config.whitebit_refresh_lifetime;
    inner.refresh_tokens.insert(refresh.clone(), RefreshGrant { client_id: client_id.to_owned(), expires_at });
    (access, refresh, lifetime)
}

fn pair_json(access: &str, refresh: &str, lifetime: std::time::Duration) -> Value {
    json!({
        "access_token": access,
        "expires_in": secs(lifetime),
        "refresh_token": refresh,
        "scope": STANDARD_SCOPE,
        "token_type": "Bearer"
    })
}

fn refresh(shared: &Shared, req: &Req<'_>) -> Reply {
    let (_, [client_id, client_secret, token]) = match required_fields(req, ["client_id", "client_secret", "token"]) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if !clients::authenticate(D, &client_id, &client_secret) {
        return invalid_client();
    }
    let mut inner = shared.lock();
    let now = inner.now();
    if let Some(last) = inner.last_refresh.get(&client_id) {
        if now < *last + REFRESH_INTERVAL {
            return Reply::json(429, json!({"message": "Too Many Attempts."})).header(RETRY_AFTER, "1");
        }
    }
    inner.last_refresh.insert(client_id.clone(), now);
    match inner.refresh_tokens.remove(&token) {
        Some(grant) if grant.client_id == client_id && grant.expires_at > now => {}
        Some(grant) if grant.client_id != client_id => {
            // Someone else's token: leave it usable by its owner.
            inner.refresh_tokens.insert(token, grant);
            return invalid_token();
        }
        _ => return invalid_token(),
    }
    let (access, refresh, lifetime) = issue_pair(shared, &mut inner, &client_id);
    Reply::json(200, json!({"data": pair_json(&access, &refresh, lifetime)})).no_store()
}

fn balance(shared: &Shared, req: &Req<'_>) -> Reply {
    let unauthenticated = || Reply::json(401, json!({"message": "Unauthenticated."}));
    let Some(token) = req.bearer() else {
        return unauthenticated();
    };
    match shared.lock().valid_access_token(D, token) {
        TokenCheck::Valid(_) => Reply::json(
            200,
            json!({
                "BTC": {"main_balance": "0.5"},
                "USDT": {"main_balance": "1000"}
            }),
        ),
        TokenCheck::Expired | TokenCheck::Unknown => unauthenticated(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn loopback_redirects_any_port() {
        let reg = "http://127.0.0.1/callback";
        assert!(redirect_allowed(reg, reg));
        assert!(redirect_allowed(reg, "http://127.0.0.1:53111/callback"));
        assert!(!redirect_allowed(reg, "http://127.0.0.1:53111/other"));
        assert!(!redirect_allowed(reg, "http://evil.example:53111/callback"));
        assert!(!redirect_allowed(reg, "https://127.0.0.1:53111/callback"));
        assert!(!redirect_allowed(reg, "http://[::1]:53111/callback"));
        assert!(!redirect_allowed(reg, "http://127.0.0.1:1/callback#frag"));
        let remote = "https://app.example/cb";
        assert!(redirect_allowed(remote, remote));
        assert!(!redirect_allowed(remote, "https://app.example:444/cb"));
    }
}
