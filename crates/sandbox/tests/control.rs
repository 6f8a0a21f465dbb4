//! The sandbox from outside its process: counts, the request log and faults over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{JSON, basic_raw, get, post};
use serde_json::{Value, json};
use tokensmith_sandbox::{Dialect, Sandbox};

const D: Dialect = Dialect::Probit;

async fn probit_token(sb: &Sandbox, secret: &str) -> common::Resp {
    let c = sb.credentials(D);
    post(
        &sb.token_url(D),
        &[("authorization", &basic_raw(&c.client_id, secret)), JSON],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await
}

fn control(sb: &Sandbox, endpoint: &str) -> String {
    format!("http://{}/_sandbox/{endpoint}", sb.addr())
}

fn count_of(counts: &Value, dialect: &str, path: &str) -> u64 {
    counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["dialect"] == dialect && row["path"] == path)
        .map_or(0, |row| row["count"].as_u64().unwrap())
}

#[tokio::test]
async fn counts_and_the_redacted_log_are_served_and_control_requests_are_not_counted() {
    let sb = Sandbox::start().await.unwrap();
    let secret = sb.credentials(D).client_secret;
    assert_eq!(probit_token(&sb, &secret).await.status, 200);
    assert_eq!(probit_token(&sb, &secret).await.status, 200);
    let counts = get(&control(&sb, "counts"), None).await;
    assert_eq!(counts.status, 200);
    assert_eq!(count_of(&counts.json(), "probit", "/token"), 2);
    // Reading the counts again does not count itself.
    assert_eq!(count_of(&get(&control(&sb, "counts"), None).await.json(), "probit", "/token"), 2);
    assert_eq!(sb.request_count(D, "/token"), 2);

    let log = get(&control(&sb, "requests?dialect=probit"), None).await;
    assert_eq!(log.status, 200);
    assert!(!log.text.contains(&secret), "the log must not show the secret: {}", log.text);
    let requests = log.json()["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["path"], "/token");
    assert!(requests[0]["headers"].to_string().contains("Basic [redacted]"), "{}", requests[0]);
    assert_eq!(get(&control(&sb, "requests?dialect=nope"), None).await.status, 404);
    assert_eq!(get(&control(&sb, "requests?dialect=ruby-style"), None).await.json()["requests"], json!([]));
    sb.shutdown().await;
}

#[tokio::test]
async fn faults_are_injected_and_cleared_over_http() {
    let sb = Sandbox::start().await.unwrap();
    let secret = sb.credentials(D).client_secret;
    let inject = |body: Value| {
        let url = control(&sb, "faults");
        async move { post(&url, &[JSON], body.to_string()).await }
    };
    let ok = inject(json!({"dialect": "probit", "path": "/token", "fault": "status:503", "times": 2})).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(probit_token(&sb, &secret).await.status, 503);
    assert_eq!(probit_token(&sb, &secret).await.status, 503);
    assert_eq!(probit_token(&sb, &secret).await.status, 200, "the fault ran out after two requests");

    assert_eq!(inject(json!({"dialect": "probit", "path": "/token", "fault": "429:7"})).await.status, 204);
    let limited = probit_token(&sb, &secret).await;
    assert_eq!((limited.status, limited.headers["retry-after"].to_str().unwrap()), (429, "7"));

    assert_eq!(inject(json!({"dialect": "probit", "path": "/token", "fault": "reset", "times": 5})).await.status, 204);
    let cleared = http_delete(&control(&sb, "faults")).await;
    assert_eq!(cleared, 204);
    assert_eq!(probit_token(&sb, &secret).await.status, 200, "DELETE removed the pending faults");

    for (bad, says) in [
        (json!({"dialect": "nope", "path": "/token", "fault": "reset"}), "nope"),
        (json!({"dialect": "probit", "path": "token", "fault": "reset"}), "starts with `/`"),
        (json!({"dialect": "probit", "path": "/token", "fault": "explode"}), "unknown fault"),
        (json!({"dialect": "probit", "path": "/token", "fault": "latency_ms:99999999999"}), "latency_ms"),
        (json!({"dialect": "probit", "path": "/token", "fault": "reset", "times": 0}), "times"),
        (json!({"dialect": "probit"}), "path"),
    ] {
        let refused = inject(bad.clone()).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert!(refused.text.contains(says), "{bad} → {}", refused.text);
    }
    let not_json = post(&control(&sb, "faults"), &[JSON], "{").await;
    assert_eq!(not_json.status, 400);
    assert_eq!(get(&control(&sb, "faults"), None).await.status, 405);
    assert_eq!(get(&control(&sb, "elsewhere"), None).await.status, 404);
    sb.shutdown().await;
}

async fn http_delete(url: &str) -> u16 {
    reqwest::Client::new().delete(url).send().await.unwrap().status().as_u16()
}
