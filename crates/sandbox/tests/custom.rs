//! Dialects a test registers: served as strictly as the built-in ones, recorded, counted and open to
//! faults, and spoken by a hand-made tokensmith client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{FORM, JSON, basic_encoded, basic_raw, form, get, post};
use serde_json::{Value, json};
use tokensmith_core::parse::ResponseFormat;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{
    ClientCredentials, Error, Scopes, TokenClient, TokenEndpoint,
    error::{OAuthErrorCode, TransportError},
    http::{HttpResponse, ReqwestTransport, Transport},
    request::{BodyFormat, Grant, TokenRequest},
    style::CredentialStyle,
};
use tokensmith_sandbox::{
    BodyEncoding, ClientAuth, CustomDialect, Dialect, DialectSpec, ErrorShape, ExpiresInFault, Fault, LifetimeFormat,
    RegisterError, SPECIAL_SECRET, Sandbox, SandboxConfig,
};

/// An invented dialect that renames every field: a JSON body
/// `{"grantKind","consumerKey","consumerSecret","permissions"}`, and the answer
/// `{"issued":{"bearer":..,"lifetime":"900"}}`.
fn renamed() -> DialectSpec {
    DialectSpec::new("renamed", "/renamed")
        .token_path("/v1/grants")
        .protected_path("/v1/whoami")
        .body(BodyEncoding::Json)
        .client_auth(ClientAuth::body("consumerKey", "consumerSecret"))
        .grant("grantKind", "machine")
        .scope_field("permissions")
        .scopes(["read", "write"], ["read"])
        .envelope("issued")
        .access_token_field("bearer")
        .no_token_type()
        .no_answer_scope()
        .lifetime_field("lifetime", LifetimeFormat::String)
        .lifetime(Duration::from_secs(900))
}

async fn sandbox_with_renamed() -> (Sandbox, CustomDialect) {
    let sandbox = Sandbox::start().await.unwrap();
    let d = sandbox.register(renamed()).unwrap();
    (sandbox, d)
}

fn renamed_body(sandbox: &Sandbox, d: CustomDialect) -> Value {
    let demo = sandbox.credentials(d);
    json!({"grantKind": "machine", "consumerKey": demo.client_id, "consumerSecret": demo.client_secret})
}

/// Until core can rename request fields: moves `grant_type` and `scope` to the dialect's names and
/// puts the credentials in `consumerKey` / `consumerSecret`.
#[derive(Debug)]
struct RenamedFields;

impl CredentialStyle for RenamedFields {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> tokensmith_core::Result<()> {
        *request = request.clone().without_param("grant_type").rename_param("scope", "permissions");
        request.set_param("grantKind", "machine");
        request.set_param("consumerKey", credentials.client_id());
        if let Some(secret) = credentials.client_secret() {
            request.set_param("consumerSecret", secret.clone());
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "renamed-fields"
    }

    fn reusable(&self) -> bool {
        true
    }
}

/// Until core can rename response fields: reads `bearer` and `lifetime` as `access_token` and
/// `expires_in` (the `issued` envelope is core's own [`ResponseFormat::envelope`]).
#[derive(Debug)]
struct RenamedAnswer(ReqwestTransport);

#[async_trait]
impl Transport for RenamedAnswer {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        let mut response = self.0.send(request).await?;
        if let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) {
            if let Some(Value::Object(issued)) = body.get_mut("issued") {
                for (from, to) in [("bearer", "access_token"), ("lifetime", "expires_in")] {
                    if let Some(v) = issued.remove(from) {
                        issued.insert(to.to_owned(), v);
                    }
                }
                response.body = body.to_string().into();
            }
        }
        Ok(response)
    }
}

fn renamed_client(sandbox: &Sandbox, d: CustomDialect, secret: &str) -> TokenClient {
    let endpoint = TokenEndpoint::new(sandbox.token_url(d).parse().unwrap())
        .body_format(BodyFormat::Json)
        .credential_style(Arc::new(RenamedFields))
        .response_format(ResponseFormat::default().envelope("/issued"));
    let demo = sandbox.credentials(d);
    TokenClient::builder("renamed", endpoint, ClientCredentials::new(demo.client_id, secret))
        .transport(Arc::new(RenamedAnswer(ReqwestTransport::builder().build().unwrap())))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_hand_made_client_speaks_the_renamed_dialect() {
    let (sandbox, d) = sandbox_with_renamed().await;
    let client = renamed_client(&sandbox, d, &sandbox.credentials(d).client_secret);
    let token = client.request_token(&Grant::ClientCredentials, &Scopes::parse("read write")).await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(900), "`\"lifetime\":\"900\"` under `issued`");
    let me = get(&sandbox.protected_url(d), Some(token.secret().expose_secret())).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json(), json!({"dialect": "renamed", "scope": "read write"}));

    assert_eq!(sandbox.request_count(d, "/v1/grants"), 1);
    assert_eq!(sandbox.request_count(d, "/v1/whoami"), 1);
    let log = sandbox.requests(d);
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| r.dialect == d && sandbox.custom_dialect("renamed") == Some(d)));
    assert_eq!(log[0].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&log[0].body).unwrap();
    assert_eq!(
        body,
        json!({"grantKind": "machine", "consumerKey": "renamed-demo-client", "consumerSecret": "[redacted]", "permissions": "read write"})
    );
    // The built-in dialects saw nothing.
    assert!(Dialect::ALL.iter().all(|b| sandbox.requests(*b).is_empty()));
}

#[tokio::test]
async fn the_renamed_dialect_refuses_its_client_with_a_typed_error_and_takes_faults() {
    let (sandbox, d) = sandbox_with_renamed().await;
    let wrong = renamed_client(&sandbox, d, "not-the-secret");
    let error = wrong.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient), "{error:?}");
    assert_eq!(error.status(), Some(401));
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));

    let client = renamed_client(&sandbox, d, &sandbox.credentials(d).client_secret);
    // A 503 from the "proxy" is retried; the retry gets a token.
    sandbox.inject(d, "/v1/grants", Fault::Status(503), 1);
    client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
    assert_eq!(sandbox.request_count(d, "/v1/grants"), 3);
    // Rewriting faults find the renamed fields inside the envelope.
    sandbox.inject(d, "/v1/grants", Fault::ExpiresIn(ExpiresInFault::Zero), 1);
    let error = client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");
    sandbox.inject(d, "/v1/grants", Fault::MissingAccessToken, 1);
    let error = client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");
    // Injected errors take the dialect's shape.
    sandbox.inject(d, "/v1/grants", Fault::Status(403), 1);
    let answer = post(&sandbox.token_url(d), &[JSON], renamed_body(&sandbox, d).to_string()).await;
    assert_eq!((answer.status, answer.json()), (403, json!({"error": "forbidden", "error_description": "Forbidden"})));
}

#[tokio::test]
async fn near_misses_are_refused_with_a_clear_error() {
    let (sandbox, d) = sandbox_with_renamed().await;
    let url = sandbox.token_url(d);
    let good = renamed_body(&sandbox, d);
    let demo = sandbox.credentials(d);
    let ok = post(&url, &[JSON], good.to_string()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let issued = &ok.json()["issued"];
    assert_eq!(issued["lifetime"], json!("900"));
    assert_eq!(issued.as_object().unwrap().len(), 2, "only `bearer` and `lifetime`: {issued}");

    let with = |name: &str, value: Value| {
        let mut body = good.clone();
        body[name] = value;
        body.to_string()
    };
    let without = |name: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(name);
        body.to_string()
    };
    // (what, extra headers, body, status, error code, text in the description)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, String, u16, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("RFC 6749's field name", vec![], with("grant_type", json!("machine")), 400, "invalid_request", "`grant_type`"),
        (
            "another grant",
            vec![],
            with("grantKind", json!("client_credentials")),
            400,
            "unsupported_grant_type",
            "`machine`",
        ),
        ("no grant", vec![], without("grantKind"), 400, "invalid_request", "missing `grantKind`"),
        ("a number", vec![], with("permissions", json!(1)), 400, "invalid_request", "JSON string"),
        ("unknown scope", vec![], with("permissions", json!("admin")), 400, "invalid_scope", "`admin`"),
        ("wrong secret", vec![], with("consumerSecret", json!("nope")), 401, "invalid_client", "do not match"),
        ("no secret", vec![], without("consumerSecret"), 401, "invalid_client", "`consumerSecret`"),
        (
            "Basic as well",
            vec![("authorization", basic_raw(&demo.client_id, &demo.client_secret))],
            good.to_string(),
            400,
            "invalid_request",
            "body only",
        ),
        ("not an object", vec![], "[]".to_owned(), 400, "invalid_request", "JSON object"),
    ];
    for (what, headers, body, status, code, text) in cases {
        let mut all = vec![JSON];
        all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
        let answer = post(&url, &all, body).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        let json = answer.json();
        assert_eq!(json["error"], json!(code), "{what}: {json}");
        assert!(json["error_description"].as_str().unwrap().contains(text), "{what}: {json}");
        assert!(!answer.text.contains(&demo.client_secret), "{what}: the secret is echoed");
    }
    let as_form = post(&url, &[FORM], form(&[("grantKind", "machine")])).await;
    assert_eq!((as_form.status, as_form.json()["error"].clone()), (400, json!("invalid_request")));
    let query = post(&format!("{url}?grantKind=machine"), &[JSON], good.to_string()).await;
    assert_eq!(query.status, 400, "{}", query.text);
    let get_token = get(&url, None).await;
    assert_eq!((get_token.status, get_token.header("allow")), (405, Some("POST")));
    assert_eq!(get(&format!("{}/v1/grant", sandbox.base_url(d)), None).await.status, 404);
    let me = get(&sandbox.protected_url(d), Some("not-a-token")).await;
    assert_eq!((me.status, me.json()["error"].clone()), (401, json!("invalid_token")));
    // Every request was counted and logged, refused or not, and no secret reached the log.
    assert_eq!(sandbox.request_count(d, "/v1/grants"), 13);
    let log = sandbox.requests(d);
    assert_eq!(log.len(), 15);
    assert!(log.iter().all(|r| !format!("{r:?}").contains(&demo.client_secret)));
}

#[tokio::test]
async fn basic_styles_decode_like_their_servers_and_errors_take_the_given_shape() {
    let sandbox =
        Sandbox::start_with(SandboxConfig::default().dialect(DialectSpec::new("rfc", "/custom/rfc")).dialect(
            DialectSpec::new("raw", "/custom/raw").client_auth(ClientAuth::BasicRaw).error_shape(ErrorShape::Fields {
                code: "code".into(),
                message: "msg".into(),
                envelope: Some("err".into()),
            }),
        ))
        .await
        .unwrap();
    let (rfc, raw) = (sandbox.custom_dialect("rfc").unwrap(), sandbox.custom_dialect("raw").unwrap());
    let body = form(&[("grant_type", "client_credentials")]);
    for (d, good, bad) in [
        (rfc, basic_encoded as fn(&str, &str) -> String, basic_raw as fn(&str, &str) -> String),
        (raw, basic_raw, basic_encoded),
    ] {
        let special = sandbox.special_credentials(d);
        assert_eq!(special.client_secret, SPECIAL_SECRET);
        let auth = good(&special.client_id, &special.client_secret);
        let ok = post(&sandbox.token_url(d), &[FORM, ("authorization", &auth)], body.clone()).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.json()["token_type"], json!("Bearer"));
        assert_eq!(ok.json()["expires_in"], json!(3600));
        let auth = bad(&special.client_id, &special.client_secret);
        let refused = post(&sandbox.token_url(d), &[FORM, ("authorization", &auth)], body.clone()).await;
        assert_eq!(refused.status, 401, "{}", refused.text);
    }
    let refused = post(&sandbox.token_url(raw), &[FORM], body).await;
    assert_eq!(refused.json()["err"]["code"], json!("invalid_client"), "{}", refused.text);
    assert!(refused.json()["err"]["msg"].as_str().unwrap().contains("Authorization: Basic"));
}

#[tokio::test]
async fn registration_refuses_taken_names_and_overlapping_prefixes() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.register(DialectSpec::new("acme", "/acme")).unwrap();
    let taken = sandbox.register(DialectSpec::new("acme", "/other")).unwrap_err();
    assert_eq!(taken, RegisterError::NameTaken { name: "acme".into() });
    for prefix in ["/acme", "/acme/v2", "/probit", "/django/extra"] {
        let overlap = sandbox.register(DialectSpec::new("other", prefix)).unwrap_err();
        assert!(matches!(overlap, RegisterError::PrefixTaken { .. }), "{prefix}: {overlap:?}");
    }
    assert!(sandbox.register(DialectSpec::new("other", "/acmex")).is_ok());
    let invalid = sandbox.register(DialectSpec::new("x", "/x").client("a:b", "s")).unwrap_err();
    assert!(invalid.to_string().contains("`client`"), "{invalid}");
    assert!(Sandbox::start_with(SandboxConfig::default().dialect(DialectSpec::new("ruby-style", "/r"))).await.is_err());
    // The built-in dialects are untouched.
    let probit = sandbox.credentials(Dialect::Probit);
    let ok = post(
        &sandbox.token_url(Dialect::Probit),
        &[JSON, ("authorization", &basic_raw(&probit.client_id, &probit.client_secret))],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_eq!(ok.status, 200);
}
