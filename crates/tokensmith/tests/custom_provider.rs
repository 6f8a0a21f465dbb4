//! The declarative custom provider (`provider = "custom"`) against the sandbox, once for each of the four
//! dialects' shapes, configured with no code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use tokensmith::config::Config;
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{Error, Scopes, request::Grant};
use tokensmith_sandbox::{DemoClient, Dialect, Sandbox, SandboxConfig};

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokensmith-custom-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A custom provider's configuration for `client`, plus `shape` (the dialect's keys).
fn custom(token_url: &str, client: &DemoClient, shape: &str) -> Config {
    let text = format!(
        "provider = \"custom\"\ntoken_url = {token_url:?}\nclient_id = {:?}\nclient_secret = {:?}\n{shape}",
        client.client_id, client.client_secret
    );
    Config::from_toml_str(&text).unwrap()
}

async fn protected_status(sandbox: &Sandbox, dialect: Dialect, token: &tokensmith::AccessToken) -> u16 {
    reqwest::Client::new()
        .get(sandbox.protected_url(dialect))
        .bearer_auth(token.secret().expose_secret())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn probit_shape_json_body_raw_basic() {
    let sandbox = Sandbox::start().await.unwrap();
    let config = custom(
        &sandbox.token_url(Dialect::Probit),
        &sandbox.credentials(Dialect::Probit),
        "credential_style = \"basic-raw\"\nbody_format = \"json\"",
    );
    let provider = tokensmith::from_config(&config).unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::Probit, &token).await, 200);
    assert_eq!(token.lifetime().as_secs(), 900);

    let log: Vec<_> = sandbox.requests(Dialect::Probit).into_iter().filter(|r| r.path == "/token").collect();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].header("authorization"), Some("Basic [redacted]"));
    assert_eq!(log[0].header("content-type"), Some("application/json"));
    assert_eq!(log[0].body, r#"{"grant_type":"client_credentials"}"#);

    // Cached: a second call sends nothing.
    provider.token().await.unwrap();
    assert_eq!(sandbox.request_count(Dialect::Probit, "/token"), 1);
}

#[tokio::test]
async fn django_shape_form_body_rfc_basic_with_scopes_and_a_special_secret() {
    let sandbox = Sandbox::start().await.unwrap();
    // The special client's secret holds `: % + / & =` and a space: RFC 6749 §2.3.1 encoding matters.
    let config = custom(
        &sandbox.token_url(Dialect::GenericDjango),
        &sandbox.special_credentials(Dialect::GenericDjango),
        "credential_style = \"basic\"\nbody_format = \"form\"\nscope = \"read write\"",
    );
    let token = tokensmith::from_config(&config).unwrap().token().await.unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::GenericDjango, &token).await, 200);
    assert!(token.scopes().contains("read") && token.scopes().contains("write"), "{:?}", token.scopes());

    let log: Vec<_> = sandbox.requests(Dialect::GenericDjango).into_iter().filter(|r| r.path == "/o/token/").collect();
    assert_eq!(log[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(log[0].body, "grant_type=client_credentials&scope=read+write");

    // The same secret sent raw in Basic is refused by the server: the style matters.
    let raw = custom(
        &sandbox.token_url(Dialect::GenericDjango),
        &sandbox.special_credentials(Dialect::GenericDjango),
        "credential_style = \"basic-raw\"",
    );
    let err = tokensmith::from_config(&raw).unwrap().token().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.to_string().contains(tokensmith_sandbox::SPECIAL_SECRET));
}

#[tokio::test]
async fn ruby_shape_json_body_with_credentials_in_the_body() {
    let sandbox = Sandbox::start().await.unwrap();
    let config = custom(
        &sandbox.token_url(Dialect::RubyStyle),
        &sandbox.credentials(Dialect::RubyStyle),
        "credential_style = \"body\"\nbody_format = \"json\"",
    );
    let token = tokensmith::from_config(&config).unwrap().token().await.unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::RubyStyle, &token).await, 200);
    let log: Vec<_> = sandbox.requests(Dialect::RubyStyle).into_iter().filter(|r| r.path == "/oauth/token").collect();
    assert!(log[0].header("authorization").is_none());
    assert_eq!(
        log[0].body,
        r#"{"grant_type":"client_credentials","client_id":"ruby-demo-client","client_secret":"[redacted]"}"#
    );

    // The envelope is applied: a pointer the response does not have is an invalid response.
    let enveloped = custom(
        &sandbox.token_url(Dialect::RubyStyle),
        &sandbox.credentials(Dialect::RubyStyle),
        "credential_style = \"body\"\nbody_format = \"json\"\nenvelope = \"/data\"",
    );
    let err = tokensmith::from_config(&enveloped).unwrap().token().await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Gets a WhiteBIT refresh token from the sandbox the way a browser and an app would: the sandbox
/// approves at once, the code comes back in the redirect, the code is exchanged.
async fn whitebit_refresh_token(sandbox: &Sandbox) -> String {
    let client = sandbox.credentials(Dialect::Whitebit);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut authorize = url::Url::parse(&sandbox.authorize_url()).unwrap();
    authorize.query_pairs_mut().append_pair("clientId", &client.client_id).append_pair("state", "state-1");
    let login = http.get(authorize).send().await.unwrap();
    assert_eq!(login.status(), 302);
    let location = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let exchange = http
        .post(sandbox.token_url(Dialect::Whitebit))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("client_id", &client.client_id), ("client_secret", &client.client_secret), ("code", &code)]))
        .send()
        .await
        .unwrap();
    assert_eq!(exchange.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&exchange.text().await.unwrap()).unwrap();
    body["data"]["refresh_token"].as_str().unwrap().to_owned()
}

/// WhiteBIT's shape: form body, credentials in the body, no `grant_type`, the refresh token sent as
/// `token` to a separate URL, the response in a `/data` envelope with comma-separated scopes.
const WHITEBIT_SHAPE: &str = "credential_style = \"body\"
body_format = \"form\"
send_grant_type = false
envelope = \"/data\"
scope_separator = \",\"";

#[tokio::test]
async fn whitebit_shape_refresh_grant_with_data_envelope_and_comma_scopes() {
    let sandbox = Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap();
    let refresh_token = whitebit_refresh_token(&sandbox).await;
    let dir = temp_dir("whitebit");
    let store = dir.join("tokens.json");
    let shape = format!(
        "{WHITEBIT_SHAPE}\ngrant = \"refresh_token\"\nrefresh_url = {:?}\nrefresh_token_param = \"token\"\nrefresh_token = {refresh_token:?}\nname = \"whitebit-custom\"\n[store]\nkind = \"file\"\npath = {:?}",
        sandbox.refresh_url(),
        store.display().to_string()
    );
    let config = custom(&sandbox.token_url(Dialect::Whitebit), &sandbox.credentials(Dialect::Whitebit), &shape);
    let token = tokensmith::from_config(&config).unwrap().token().await.unwrap();
    assert_eq!(protected_status(&sandbox, Dialect::Whitebit, &token).await, 200);
    assert!(token.scopes().contains("general") && token.scopes().contains("users.read"), "{:?}", token.scopes());
    assert!(token.refresh_token().is_some(), "the rotated refresh token is kept");

    let refreshes: Vec<_> =
        sandbox.requests(Dialect::Whitebit).into_iter().filter(|r| r.path == "/oauth2/refresh_token").collect();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(
        refreshes[0].body, "token=[redacted]&client_id=whitebit-demo-client&client_secret=[redacted]",
        "no grant_type, the refresh token as `token`, credentials in the body"
    );

    // The rotated set was saved: a second process (a new provider from the same config) reuses the
    // stored token without asking again.
    let again = tokensmith::from_config(&config).unwrap().token().await.unwrap();
    assert!(again.same_token(&token));
    assert_eq!(sandbox.request_count(Dialect::Whitebit, "/oauth2/refresh_token"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn whitebit_shape_client_credentials_request_joins_scopes_with_commas() {
    // WhiteBIT has no client-credentials grant, so this checks the request a custom provider of its shape
    // would send, at the `TokenRequest` level (no I/O).
    let client = DemoClient { client_id: "id".into(), client_secret: "secret".into() };
    let config = custom(
        "https://whitebit.example.com/oauth2/token",
        &client,
        &format!("{WHITEBIT_SHAPE}\nscope = \"general users.read\""),
    );
    let (client, scopes) = tokensmith::custom::client(&config).unwrap();
    let request = client.build_request(&Grant::ClientCredentials, &scopes).unwrap();
    assert_eq!(
        String::from_utf8(request.wire_body()).unwrap(),
        "scope=general%2Cusers.read&client_id=id&client_secret=secret"
    );
    assert!(!request.has_param("grant_type"));
    assert_eq!(scopes, Scopes::parse("general,users.read"));
}

#[tokio::test]
async fn a_refusal_carries_the_provider_error_and_never_the_secret() {
    let sandbox = Sandbox::start().await.unwrap();
    let wrong = DemoClient { client_id: "ruby-demo-client".into(), client_secret: "wrong-secret-value".into() };
    let config =
        custom(&sandbox.token_url(Dialect::RubyStyle), &wrong, "credential_style = \"body\"\nbody_format = \"json\"");
    let err = tokensmith::from_config(&config).unwrap().token().await.unwrap_err();
    assert!(matches!(err, Error::OAuth(_)), "{err:?}");
    assert_eq!(err.oauth_code().map(|c| c.as_str()), Some("invalid_client"));
    assert!(!err.to_string().contains("wrong-secret-value"));
    assert!(!format!("{err:?}").contains("wrong-secret-value"));
}
