//! The exact token request a Rails/Doorkeeper-style server gets, secrets redacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tokensmith_core::Scopes;
use tokensmith_ruby_style::{RubyStyleBuilder, RubyStyleProvider};

const SECRET: &str = "s3cr3t: %+/&= with space";

fn builder() -> RubyStyleBuilder {
    RubyStyleProvider::builder().base_url("https://api.example.com").client_id("ruby-client").client_secret(SECRET)
}

#[test]
fn token_request_snapshots() {
    insta::assert_yaml_snapshot!("ruby_token_request", builder().build().unwrap().token_request().unwrap());
    let scoped = builder().scopes(Scopes::parse("public write")).build().unwrap();
    insta::assert_yaml_snapshot!("ruby_scoped_token_request", scoped.token_request().unwrap());
}

#[test]
fn token_request_wire_bytes() {
    let request = builder().build().unwrap().token_request().unwrap();
    assert_eq!(request.method(), "POST", "RFC 6749 §3.2: POST, whatever the seed's prose says");
    assert_eq!(request.url().as_str(), "https://api.example.com/oauth/token");
    let body: serde_json::Value = serde_json::from_slice(&request.wire_body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"grant_type": "client_credentials", "client_id": "ruby-client", "client_secret": SECRET})
    );
    assert!(!request.has_header("authorization"));
    assert_eq!(request.wire_headers().unwrap()["content-type"], "application/json");
}
