//! Issue 16: a server that renames every field, configured with no code, against a server that
//! accepts only that exact shape. The token, its lifetime, the server's errors as `Error::OAuth`, and
//! neither secret (the client secret, the `api_key` extra parameter) in any snapshot, `Debug`, log or
//! error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::renamed_server::{API_KEY, CLIENT_SECRET, Expiry, RENEWAL, RenamedServer, SCOPE, TOKEN};
use tokensmith::config::Config;
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{Error, error::OAuthErrorCode, request::Grant};
use tokensmith_core::testing::LogCapture;

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokensmith-renamed-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The dialect's configuration, with both secrets in files (as `{ file = .. }`).
fn config(server: &RenamedServer, test: &str, api_key: &str, expiry: Expiry) -> Config {
    let dir = temp_dir(test);
    let (secret_file, key_file) = (dir.join("client_secret"), dir.join("api_key"));
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    std::fs::write(&key_file, api_key).unwrap();
    let text = server.config(
        &format!("{{ file = {:?} }}", secret_file.display().to_string()),
        &format!("{{ file = {:?} }}", key_file.display().to_string()),
        expiry,
    );
    Config::from_toml_str(&text).unwrap()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [CLIENT_SECRET, API_KEY] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

#[tokio::test]
async fn the_facade_speaks_the_renamed_dialect() {
    let (log, _guard) = LogCapture::install();
    let server = RenamedServer::start(Expiry::Lifetime).await;
    let config = config(&server, "facade", API_KEY, Expiry::Lifetime);
    let provider = tokensmith::from_config(&config).unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), TOKEN);
    assert_eq!(token.lifetime().as_secs(), 900);
    assert_eq!(token.scopes().to_string(), SCOPE);
    assert_eq!(token.refresh_token().unwrap().secret().expose_secret(), RENEWAL);
    assert_eq!(server.bodies.lock().unwrap().len(), 1);

    // The request as a snapshot would show it, and every Debug on the way.
    let (client, scopes) = tokensmith::custom::client(&config).unwrap();
    let request = client.build_request(&Grant::ClientCredentials, &scopes).unwrap();
    assert_eq!(request.param_redacted("api_key").as_deref(), Some("[redacted]"));
    assert_eq!(request.param_redacted("consumerSecret").as_deref(), Some("[redacted]"));
    assert_no_secret("the snapshot", &serde_json::to_string(&request).unwrap());
    for (what, debug) in [
        ("the request", format!("{request:?}")),
        ("the client", format!("{client:?}")),
        ("the provider", format!("{provider:?}")),
        ("the config", format!("{config:?}")),
        ("the token", format!("{token:?}")),
    ] {
        assert_no_secret(what, &debug);
    }
    assert_no_secret("the log", &log.text());
    assert!(log.text().contains("token obtained"), "{}", log.text());
}

#[tokio::test]
async fn a_refusal_is_an_oauth_error_without_the_secrets_the_server_echoed() {
    let (log, _guard) = LogCapture::install();
    let server = RenamedServer::start(Expiry::Lifetime).await;
    // A near miss: the wrong API key. The server echoes the whole body back in its detail.
    let wrong_key = "k3y-wrong-77f1-Jq";
    let config = config(&server, "refusal", wrong_key, Expiry::Lifetime);
    let error = tokensmith::from_config(&config).unwrap().token().await.unwrap_err();
    let Error::OAuth(oauth) = &error else { panic!("expected Error::OAuth, got {error:?}") };
    assert_eq!(oauth.code, OAuthErrorCode::InvalidRequest);
    assert_eq!(oauth.status, 400);
    let detail = oauth.description.as_deref().unwrap();
    assert!(detail.starts_with("unexpected request") && detail.contains("consumerKey"), "{detail}");
    assert!(server.bodies.lock().unwrap().iter().all(|b| b.contains(CLIENT_SECRET) && b.contains(wrong_key)));
    for text in [error.to_string(), format!("{error:?}"), log.text()] {
        assert_no_secret("the error", &text);
        assert!(!text.contains(wrong_key), "the error shows the API key: {text}");
    }
}

#[tokio::test]
async fn the_server_refuses_every_near_miss() {
    let server = RenamedServer::start(Expiry::Lifetime).await;
    let http = reqwest::Client::new();
    let exact = serde_json::json!({
        "grantKind": "client_credentials", "consumerKey": "my-client", "consumerSecret": CLIENT_SECRET,
        "permissions": SCOPE, "tenant": "eu-1", "api_key": API_KEY,
    });
    let send = |body: serde_json::Value, basic: bool| {
        let mut request = http.post(&server.url).header("content-type", "application/json").body(body.to_string());
        if basic {
            request = request.basic_auth("my-client", Some(CLIENT_SECRET));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(exact.clone(), false).await, 200);
    assert_eq!(send(exact.clone(), true).await, 400, "an Authorization header");
    for (from, to) in [("grantKind", "grant_type"), ("permissions", "scope"), ("consumerKey", "client_id")] {
        let mut near = exact.clone();
        let value = near.as_object_mut().unwrap().remove(from).unwrap();
        near[to] = value;
        assert_eq!(send(near, false).await, 400, "{to} for {from}");
    }
    let mut extra = exact.clone();
    extra["audience"] = "x".into();
    assert_eq!(send(extra, false).await, 400, "one field too many");
    let form = http
        .post(&server.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grantKind=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 400, "a form body");
}

#[tokio::test]
async fn expires_at_as_rfc3339_or_epoch_seconds() {
    for (expiry, test) in [(Expiry::UntilRfc3339, "rfc3339"), (Expiry::UntilEpoch, "epoch")] {
        let server = RenamedServer::start(expiry).await;
        let config = config(&server, test, API_KEY, expiry);
        let token = tokensmith::from_config(&config).unwrap().token().await.unwrap();
        assert_eq!(token.secret().expose_secret(), TOKEN);
        // Counted from when the answer arrived, in whole seconds: 900, or 899 across a second's edge.
        assert!((898..=900).contains(&token.lifetime().as_secs()), "{test}: {:?}", token.lifetime());
    }
}

#[test]
fn the_rfc3339_helper_is_right() {
    assert_eq!(common::renamed_server::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(common::renamed_server::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(common::renamed_server::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}
