//! Each dialect accepts exactly what its provider documents and rejects the rest
//! with the provider's own error shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{FORM, JSON, basic_encoded, basic_raw, form, get, post};
use serde_json::json;
use tokensmith_sandbox::{Dialect, SPECIAL_SECRET, Sandbox, SandboxConfig, fingerprint};

// ------------------------------------------------------------------ probit

async fn probit_token(sb: &Sandbox, id: &str, secret: &str) -> common::Resp {
    post(
        &sb.token_url(Dialect::Probit),
        &[("authorization", &basic_raw(id, secret)), JSON],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await
}

#[tokio::test]
async fn probit_accepts_documented_request_and_token_works_until_expiry() {
    let sb = Sandbox::start().await.unwrap();
    for client in [sb.credentials(Dialect::Probit), sb.special_credentials(Dialect::Probit)] {
        let r = probit_token(&sb, &client.client_id, &client.client_secret).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 900);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let token = v["access_token"].as_str().unwrap();
        let b = get(&sb.protected_url(Dialect::Probit), Some(token)).await;
        assert_eq!(b.status, 200);
        assert!(b.json()["data"].is_array());
    }
    let r = probit_token(&sb, "probit-demo-client", "probit-demo-secret").await;
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    sb.advance_clock(Duration::from_secs(899));
    assert_eq!(get(&sb.protected_url(Dialect::Probit), Some(&token)).await.status, 200);
    sb.advance_clock(Duration::from_secs(1));
    let b = get(&sb.protected_url(Dialect::Probit), Some(&token)).await;
    assert_eq!(b.status, 401);
    assert_eq!(b.json()["errorCode"], "UNAUTHORIZED");
    // Tokens of one dialect mean nothing to another.
    let r = probit_token(&sb, "probit-demo-client", "probit-demo-secret").await;
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&sb.protected_url(Dialect::RubyStyle), Some(&token)).await.status, 401);
}

#[tokio::test]
async fn probit_rejects_wrong_shapes() {
    let sb = Sandbox::start().await.unwrap();
    let url = sb.token_url(Dialect::Probit);
    let grant = r#"{"grant_type":"client_credentials"}"#;
    let good = basic_raw("probit-demo-client", "probit-demo-secret");

    // No credentials, wrong secret, a form-encoded Basic of the special secret.
    for auth in [
        None,
        Some(basic_raw("probit-demo-client", "nope")),
        Some(basic_encoded("probit-special-client", SPECIAL_SECRET)),
        Some("Bearer abc".to_owned()),
        Some("Basic !!!".to_owned()),
    ] {
        let mut headers = vec![JSON];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let r = post(&url, &headers, grant).await;
        assert_eq!(r.status, 401, "{auth:?}");
        let v = r.json();
        assert_eq!(v["errorCode"], "UNAUTHORIZED");
        assert!(v["message"].is_string());
        assert_eq!(v["details"], json!({}));
    }
    // Wrong or missing grant type.
    for body in [r#"{"grant_type":"password"}"#, "{}"] {
        let r = post(&url, &[("authorization", &good), JSON], body).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json(), json!({"error": "invalid_grant"}));
    }
    // A form body, or JSON that does not parse.
    let r = post(&url, &[("authorization", &good), FORM], "grant_type=client_credentials").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorCode"], "INVALID_ARGUMENT");
    let r = post(&url, &[("authorization", &good), JSON], "{grant_type").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorCode"], "INVALID_ARGUMENT");
    // GET on the token endpoint meets the WAF.
    let r = get(&url, None).await;
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // The protected route without a token.
    let r = get(&sb.protected_url(Dialect::Probit), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errorCode"], "UNAUTHORIZED");
    let r = get(&sb.protected_url(Dialect::Probit), Some("made-up")).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn probit_expires_in_as_string_and_runtime_lifetime() {
    let sb = Sandbox::start_with(SandboxConfig::default().probit_expires_in_as_string(true)).await.unwrap();
    let r = probit_token(&sb, "probit-demo-client", "probit-demo-secret").await;
    assert_eq!(r.json()["expires_in"], "900");
    sb.set_lifetime(Dialect::Probit, Duration::from_secs(30));
    let r = probit_token(&sb, "probit-demo-client", "probit-demo-secret").await;
    assert_eq!(r.json()["expires_in"], "30");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    sb.advance_clock(Duration::from_secs(30));
    assert_eq!(get(&sb.protected_url(Dialect::Probit), Some(&token)).await.status, 401);
}

// ------------------------------------------------------------------ django

#[tokio::test]
async fn django_accepts_basic_and_body_credentials() {
    let sb = Sandbox::start().await.unwrap();
    let url = sb.token_url(Dialect::GenericDjango);
    let plain = sb.credentials(Dialect::GenericDjango);
    let special = sb.special_credentials(Dialect::GenericDjango);

    let r = post(
        &url,
        &[("authorization", &basic_raw(&plain.client_id, &plain.client_secret)), FORM],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 36000);
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["access_token"].as_str().unwrap().len(), 30);
    let token = v["access_token"].as_str().unwrap().to_owned();

    // The special secret: form-encoded inside Basic, or in the body.
    let r = post(
        &url,
        &[("authorization", &basic_encoded(&special.client_id, &special.client_secret)), FORM],
        "grant_type=client_credentials&scope=read+write+admin",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "read write admin");
    let r = post(
        &url,
        &[FORM],
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &special.client_id),
            ("client_secret", &special.client_secret),
            ("scope", "write"),
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "write");
    let write_only = r.json()["access_token"].as_str().unwrap().to_owned();

    // The raw special secret in Basic is decoded like oauthlib does: wrong.
    let r = post(
        &url,
        &[("authorization", &basic_raw(&special.client_id, &special.client_secret)), FORM],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"error": "invalid_client"}));

    // The protected route wants scope read.
    let payments = sb.protected_url(Dialect::GenericDjango);
    let r = get(&payments, Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"], json!([]));
    let r = get(&payments, Some(&write_only)).await;
    assert_eq!(r.status, 403);
    assert!(r.json()["detail"].is_string());
    let r = get(&payments, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"detail": "Authentication credentials were not provided."}));
    sb.advance_clock(Duration::from_secs(36_000));
    assert_eq!(get(&payments, Some(&token)).await.status, 401);
}

#[tokio::test]
async fn django_rejects_wrong_shapes() {
    let sb = Sandbox::start().await.unwrap();
    let url = sb.token_url(Dialect::GenericDjango);
    let auth = basic_raw("django-demo-client", "django-demo-secret");
    let with_basic = [("authorization", auth.as_str()), FORM];
    let body_creds = "client_id=django-demo-client&client_secret=django-demo-secret";

    // (url, headers, body, status, error)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        // Both Basic and body credentials.
        (
            url.clone(),
            with_basic.to_vec(),
            format!("grant_type=client_credentials&{body_creds}"),
            400,
            "invalid_request",
        ),
        // A query string on the token URL.
        (
            format!("{url}?grant_type=client_credentials"),
            with_basic.to_vec(),
            "grant_type=client_credentials".into(),
            400,
            "invalid_request",
        ),
        // JSON instead of a form.
        (
            url.clone(),
            vec![("authorization", auth.as_str()), JSON],
            r#"{"grant_type":"client_credentials"}"#.into(),
            400,
            "unsupported_grant_type",
        ),
        // grant_type missing, wrong, repeated.
        (url.clone(), with_basic.to_vec(), "scope=read".into(), 400, "invalid_request"),
        (url.clone(), with_basic.to_vec(), "grant_type=password".into(), 400, "unsupported_grant_type"),
        (
            url.clone(),
            with_basic.to_vec(),
            "grant_type=client_credentials&grant_type=client_credentials".into(),
            400,
            "invalid_request",
        ),
        // Unknown scope.
        (
            url.clone(),
            with_basic.to_vec(),
            "grant_type=client_credentials&scope=read+delete".into(),
            400,
            "invalid_scope",
        ),
        // Bad or missing client.
        (
            url.clone(),
            vec![FORM],
            "grant_type=client_credentials&client_id=django-demo-client&client_secret=x".into(),
            401,
            "invalid_client",
        ),
        (url.clone(), vec![FORM], "grant_type=client_credentials".into(), 401, "invalid_client"),
    ];
    for (url, headers, body, status, error) in cases {
        let r = post(&url, &headers, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        let v = r.json();
        assert_eq!(v["error"], error, "{body}");
        if error == "invalid_request" {
            assert!(v["error_description"].is_string(), "{body}");
        }
    }
    // GET on the token endpoint, and the missing trailing slash.
    assert_eq!(get(&url, None).await.status, 405);
    let r = post(url.trim_end_matches('/'), &with_basic, "grant_type=client_credentials").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(url.as_str()));
}

// ------------------------------------------------------------------ ruby

#[tokio::test]
async fn ruby_accepts_json_and_form_bodies() {
    let sb = Sandbox::start().await.unwrap();
    let url = sb.token_url(Dialect::RubyStyle);
    let plain = sb.credentials(Dialect::RubyStyle);
    let special = sb.special_credentials(Dialect::RubyStyle);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    let body = json!({
        "client_id": special.client_id,
        "client_secret": special.client_secret,
        "grant_type": "client_credentials"
    });
    let r = post(&url, &[JSON], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 7200);
    assert_eq!(v["scope"], "public");
    let created = v["created_at"].as_u64().unwrap();
    assert!(created >= before && created <= before + 5);
    let token = v["access_token"].as_str().unwrap().to_owned();

    let r = post(
        &url,
        &[FORM],
        form(&[
            ("client_id", &plain.client_id),
            ("client_secret", &plain.client_secret),
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "read write");

    let me = sb.protected_url(Dialect::RubyStyle);
    let r = get(&me, Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], "ruby-special-client");
    sb.advance_clock(Duration::from_secs(7200));
    let r = get(&me, Some(&token)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_token");
    assert!(r.header("www-authenticate").unwrap().contains("Doorkeeper"));
    // created_at follows the sandbox clock.
    let r = post(&url, &[JSON], body.to_string()).await;
    assert!(r.json()["created_at"].as_u64().unwrap() >= before + 7200);
}

#[tokio::test]
async fn ruby_rejects_wrong_shapes() {
    let sb = Sandbox::start().await.unwrap();
    let url = sb.token_url(Dialect::RubyStyle);
    let invalid_client = json!({
        "error": "invalid_client",
        "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."
    });
    let r = post(
        &url,
        &[JSON],
        r#"{"client_id":"ruby-demo-client","client_secret":"wrong","grant_type":"client_credentials"}"#,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), invalid_client);
    // Basic credentials are not what this provider documents.
    let r = post(
        &url,
        &[("authorization", &basic_raw("ruby-demo-client", "ruby-demo-secret")), JSON],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), invalid_client);
    let r = post(&url, &[JSON], r#"{"client_id":"ruby-demo-client","client_secret":"ruby-demo-secret"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    let r = post(
        &url,
        &[JSON],
        r#"{"client_id":"ruby-demo-client","client_secret":"ruby-demo-secret","grant_type":"password"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let r = post(
        &url,
        &[JSON],
        r#"{"client_id":"ruby-demo-client","client_secret":"ruby-demo-secret","grant_type":"client_credentials","scope":"admin"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = post(&url, &[JSON], "{not json").await;
    assert_eq!(r.status, 400);
    // GET, as the seed's prose says, is not a route.
    assert_eq!(get(&url, None).await.status, 404);
    assert_eq!(get(&sb.protected_url(Dialect::RubyStyle), None).await.status, 401);
}

// ------------------------------------------------------------------ whitebit

/// Drives the consent page: returns the redirect's `Location`.
async fn consent(sb: &Sandbox, query: &str, decision: &str) -> String {
    let page = get(&format!("{}?{query}", sb.authorize_url()), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text.contains(r#"name="decision" value="allow""#));
    assert!(page.text.contains(r#"name="decision" value="deny""#));
    let id = page
        .text
        .split(r#"name="authorization_id" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let action = page.text.split(r#"action=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let r = post(
        &format!("http://{}{action}", sb.addr()),
        &[FORM],
        form(&[("authorization_id", &id), ("decision", decision)]),
    )
    .await;
    assert_eq!(r.status, 302, "{}", r.text);
    r.header("location").unwrap().to_owned()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

async fn exchange(sb: &Sandbox, pairs: &[(&str, &str)]) -> common::Resp {
    post(&sb.token_url(Dialect::Whitebit), &[FORM], form(pairs)).await
}

async fn refresh(sb: &Sandbox, token: &str) -> common::Resp {
    post(
        &sb.refresh_url(),
        &[FORM],
        form(&[("client_id", "whitebit-demo-client"), ("client_secret", "whitebit-demo-secret"), ("token", token)]),
    )
    .await
}

const ID: (&str, &str) = ("client_id", "whitebit-demo-client");
const SECRET: (&str, &str) = ("client_secret", "whitebit-demo-secret");

#[tokio::test]
async fn whitebit_code_flow_with_refresh_rotation() {
    let sb = Sandbox::start().await.unwrap();
    let location = consent(&sb, "clientId=whitebit-demo-client&state=xyz%201", "allow").await;
    assert!(location.starts_with("http://127.0.0.1/callback?"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("xyz 1"));
    let code = query_param(&location, "code").unwrap();

    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.json()["data"].clone();
    assert_eq!(data["expires_in"], 300);
    assert_eq!(data["scope"], "general,users.read");
    assert_eq!(data["token_type"], "Bearer");
    let access = data["access_token"].as_str().unwrap().to_owned();
    let r1 = data["refresh_token"].as_str().unwrap().to_owned();
    let balance = sb.protected_url(Dialect::Whitebit);
    assert_eq!(get(&balance, Some(&access)).await.status, 200);

    // Rotation: r1 gives r2, r1 is dead afterwards, r2 works.
    let r = refresh(&sb, &r1).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r2 = r.json()["data"]["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // A second refresh within the same second is throttled.
    let r = refresh(&sb, &r2).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    sb.advance_clock(Duration::from_secs(1));
    let r = refresh(&sb, &r1).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"data": {"token": ["Invalid token."]}}));
    sb.advance_clock(Duration::from_secs(1));
    let r = refresh(&sb, &r2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r3 = r.json()["data"]["refresh_token"].as_str().unwrap().to_owned();

    // The log proves which refresh token was sent how often, without holding it.
    let sent: Vec<String> = sb
        .requests(Dialect::Whitebit)
        .iter()
        .filter(|r| r.path == "/oauth2/refresh_token")
        .map(|r| r.fingerprint_of("token").unwrap().to_owned())
        .collect();
    assert_eq!(sent, vec![fingerprint(&r1), fingerprint(&r2), fingerprint(&r1), fingerprint(&r2)]);
    for r in sb.requests(Dialect::Whitebit) {
        assert!(!r.body.contains(&r1) && !r.body.contains(&code));
        assert!(!r.body.contains("whitebit-demo-secret"));
    }
    assert_eq!(sb.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 4);

    // Refresh tokens expire after 600 s.
    sb.advance_clock(Duration::from_secs(600));
    assert_eq!(refresh(&sb, &r3).await.status, 400);
    // And the access token after 300 s.
    assert_eq!(get(&balance, Some(&access)).await.status, 401);
}

#[tokio::test]
async fn whitebit_codes_are_single_use_and_short_lived() {
    let sb = Sandbox::start().await.unwrap();
    let location = consent(&sb, "clientId=whitebit-demo-client&state=s", "allow").await;
    let code = query_param(&location, "code").unwrap();
    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.status, 200);
    let access = r.json()["data"]["access_token"].as_str().unwrap().to_owned();
    // Reuse fails and revokes what the code gave.
    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"data": {"token": ["Invalid token."]}}));
    assert_eq!(get(&sb.protected_url(Dialect::Whitebit), Some(&access)).await.status, 401);

    let location = consent(&sb, "clientId=whitebit-demo-client&state=s", "allow").await;
    let code = query_param(&location, "code").unwrap();
    sb.advance_clock(Duration::from_secs(60));
    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn whitebit_rejects_wrong_shapes() {
    let sb = Sandbox::start().await.unwrap();
    let r = exchange(&sb, &[ID, SECRET]).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json(), json!({"errors": {"code": ["The code field is required."]}, "notification": null}));
    let r = exchange(&sb, &[("code", "x")]).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["errors"]["client_secret"], json!(["The client secret field is required."]));
    let r = exchange(&sb, &[ID, ("client_secret", "wrong"), ("code", "anything")]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"data": {"message": ["Invalid request"]}}));
    let r = exchange(&sb, &[ID, SECRET, ("code", "never-issued")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"data": {"token": ["Invalid token."]}}));
    let r = refresh(&sb, "never-issued").await;
    assert_eq!(r.status, 400);
    // JSON is not a form: the fields are missing.
    let r = post(
        &sb.token_url(Dialect::Whitebit),
        &[JSON],
        r#"{"client_id":"whitebit-demo-client","client_secret":"whitebit-demo-secret","code":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(get(&sb.token_url(Dialect::Whitebit), None).await.status, 405);

    // The login page's own checks.
    for query in [
        "clientId=unknown&state=s",
        "state=s",
        "clientId=whitebit-demo-client",
        "clientId=whitebit-demo-client&state=s&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fother",
        "clientId=whitebit-demo-client&state=s&redirect_uri=http%3A%2F%2Fevil.example%2Fcallback",
        "clientId=whitebit-demo-client&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
        "clientId=whitebit-demo-client&state=s&code_challenge=short&code_challenge_method=S256",
    ] {
        let r = get(&format!("{}?{query}", sb.authorize_url()), None).await;
        assert_eq!(r.status, 400, "{query}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
}

#[tokio::test]
async fn whitebit_deny_and_loopback_redirect_uri() {
    let sb = Sandbox::start().await.unwrap();
    let location = consent(&sb, "clientId=whitebit-demo-client&state=abc", "deny").await;
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("abc"));
    assert_eq!(query_param(&location, "code"), None);

    let redirect = "http://127.0.0.1:54321/callback";
    let q = form(&[("clientId", "whitebit-special-client"), ("state", "s"), ("redirect_uri", redirect)]);
    let location = consent(&sb, &q, "allow").await;
    assert!(location.starts_with("http://127.0.0.1:54321/callback?code="));
    let code = query_param(&location, "code").unwrap();
    // The special client's secret survives form encoding.
    let r = exchange(
        &sb,
        &[
            ("client_id", "whitebit-special-client"),
            ("client_secret", SPECIAL_SECRET),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn whitebit_pkce_flow_with_rfc7636_vector() {
    // RFC 7636 Appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let sb = Sandbox::start().await.unwrap();
    let q = form(&[
        ("clientId", "whitebit-demo-client"),
        ("state", "p"),
        ("redirect_uri", "http://127.0.0.1:8765/callback"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    let location = consent(&sb, &q, "allow").await;
    let code = query_param(&location, "code").unwrap();

    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.status, 422);
    assert!(r.json()["errors"]["code_verifier"].is_array());
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
    let r = exchange(&sb, &[ID, SECRET, ("code", &code), ("code_verifier", wrong)]).await;
    assert_eq!(r.status, 400);
    let r = exchange(&sb, &[ID, SECRET, ("code", &code), ("code_verifier", verifier)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.json()["data"].clone();
    assert_eq!(data["expires_in"], 14400);
    assert!(data.get("refresh_token").is_none());
    let access = data["access_token"].as_str().unwrap().to_owned();
    let balance = sb.protected_url(Dialect::Whitebit);
    sb.advance_clock(Duration::from_secs(14_399));
    assert_eq!(get(&balance, Some(&access)).await.status, 200);
    sb.advance_clock(Duration::from_secs(1));
    assert_eq!(get(&balance, Some(&access)).await.status, 401);
    // code_verifier is redacted but fingerprinted nowhere.
    let log = sb.requests(Dialect::Whitebit);
    assert!(log.iter().all(|r| !r.body.contains(verifier)));
}

#[tokio::test]
async fn whitebit_auto_approve_and_custom_registration() {
    let sb = Sandbox::start_with(
        SandboxConfig::default()
            .whitebit_auto_approve(true)
            .whitebit_redirect_uri("http://localhost/cb")
            .lifetime(Dialect::Whitebit, Duration::from_secs(120))
            .whitebit_refresh_lifetime(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let r = get(
        &format!(
            "{}?clientId=whitebit-demo-client&state=q&redirect_uri=http%3A%2F%2Flocalhost%3A4000%2Fcb",
            sb.authorize_url()
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with("http://localhost:4000/cb?code="));
    let code = query_param(&location, "code").unwrap();
    let r = exchange(&sb, &[ID, SECRET, ("code", &code)]).await;
    assert_eq!(r.json()["data"]["expires_in"], 120);
    let refresh_token = r.json()["data"]["refresh_token"].as_str().unwrap().to_owned();
    sb.advance_clock(Duration::from_secs(10));
    assert_eq!(refresh(&sb, &refresh_token).await.status, 400);
}
