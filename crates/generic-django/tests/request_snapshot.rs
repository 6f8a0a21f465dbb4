//! The exact token requests a Django OAuth Toolkit server gets, secrets redacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use tokensmith_core::Scopes;
use tokensmith_generic_django::{DjangoCredentials, DjangoProvider};

const SECRET: &str = "s3cr3t: %+/&= with space";

fn provider(style: DjangoCredentials) -> DjangoProvider {
    DjangoProvider::builder()
        .base_url("https://auth.example.com")
        .client_id("django-client")
        .client_secret(SECRET)
        .credential_style(style)
        .scopes(Scopes::parse("read write admin reports:export"))
        .build()
        .unwrap()
}

#[test]
fn token_request_snapshots() {
    insta::assert_yaml_snapshot!(
        "django_basic_token_request",
        provider(DjangoCredentials::Basic).token_request().unwrap()
    );
    insta::assert_yaml_snapshot!(
        "django_body_token_request",
        provider(DjangoCredentials::Body).token_request().unwrap()
    );
}

#[test]
fn basic_credentials_are_form_encoded_before_base64() {
    let request = provider(DjangoCredentials::Basic).token_request().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("django-client:{encoded}")));
    assert_eq!(request.wire_headers().unwrap()["authorization"], expected.as_str());
    assert_eq!(request.wire_body(), b"grant_type=client_credentials&scope=read+write+admin+reports%3Aexport");
}

#[test]
fn body_credentials_are_form_parameters() {
    let request = provider(DjangoCredentials::Body).token_request().unwrap();
    let body = String::from_utf8(request.wire_body()).unwrap();
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert!(params.contains(&("client_secret".to_owned(), SECRET.to_owned())), "{params:?}");
    assert!(params.contains(&("client_id".to_owned(), "django-client".to_owned())));
    assert!(!request.has_header("authorization"));
}
