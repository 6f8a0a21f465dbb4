//! Unit tests of `request`.

use super::*;
use crate::error::Error;
use crate::token::RefreshToken;
use secrecy::SecretString;
use url::Url;

fn url() -> Url {
    Url::parse("https://example.com/token").unwrap()
}

#[test]
fn for_grant_orders_params() {
    let grant = Grant::AuthorizationCode {
        code: SecretString::from("the-code"),
        redirect_uri: Some("http://127.0.0.1:8080/cb".into()),
        code_verifier: Some(SecretString::from("the-verifier")),
    };
    let r = TokenRequest::for_grant(url(), BodyFormat::Form, &grant);
    assert_eq!(
        String::from_utf8(r.wire_body()).unwrap(),
        "grant_type=authorization_code&code=the-code&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&code_verifier=the-verifier"
    );
    assert_eq!(
        r.redacted_body(),
        "grant_type=authorization_code&code=%5Bredacted%5D&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&code_verifier=%5Bredacted%5D"
    );
}

#[test]
fn rename_and_remove_keep_order() {
    let r = TokenRequest::for_grant(url(), BodyFormat::Form, &Grant::RefreshToken(RefreshToken::new("rt")))
        .param("client_id", "id")
        .rename_param("refresh_token", "token")
        .without_param("grant_type");
    assert_eq!(String::from_utf8(r.wire_body()).unwrap(), "token=rt&client_id=id");
}

#[test]
fn json_body_is_an_object_of_strings() {
    let r = TokenRequest::for_grant(url(), BodyFormat::Json, &Grant::ClientCredentials).param("scope", "a b");
    assert_eq!(r.wire_body(), br#"{"grant_type":"client_credentials","scope":"a b"}"#);
}

#[test]
fn credentials_in_query_are_refused() {
    let u = Url::parse("https://example.com/token?client_secret=x").unwrap();
    let err = TokenRequest::new(u, BodyFormat::Form).validate().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "token_url"), "{err}");
}

#[test]
fn credentials_two_ways_are_refused() {
    let r = TokenRequest::new(url(), BodyFormat::Form)
        .header("Authorization", Value::Secret(SecretString::from("x")))
        .param("client_secret", SecretString::from("y"));
    assert!(matches!(r.validate(), Err(Error::Config { .. })));
}

#[test]
fn every_change_after_rendering_reaches_the_wire() {
    let mut r = TokenRequest::for_grant(url(), BodyFormat::Form, &Grant::ClientCredentials);
    assert_eq!(r.wire_body(), b"grant_type=client_credentials");
    assert!(r.wire_headers().unwrap().get("x-a").is_none());
    r.set_param("scope", "a");
    assert_eq!(r.wire_body_bytes(), &b"grant_type=client_credentials&scope=a"[..]);
    let r = r.rename_param("scope", "s");
    assert_eq!(r.wire_body(), b"grant_type=client_credentials&s=a");
    let r = r.without_param("s");
    assert_eq!(r.wire_body(), b"grant_type=client_credentials");
    let r = r.header("X-A", "1");
    assert_eq!(r.wire_headers().unwrap()["x-a"], "1");
    let r = r.without_header("x-a");
    assert!(r.wire_headers().unwrap().get("x-a").is_none());
    // A clone carries the rendered form and renders the same.
    assert_eq!(r.clone().wire_body(), r.wire_body());
}

#[test]
fn a_header_that_does_not_render_still_leaves_the_body() {
    let r = TokenRequest::for_grant(url(), BodyFormat::Form, &Grant::ClientCredentials).header("x-bad", "a\nb");
    assert!(matches!(r.wire_headers(), Err(Error::Config { .. })));
    assert_eq!(r.wire_body(), b"grant_type=client_credentials");
}

#[test]
fn get_has_no_body_and_no_content_type() {
    let r = TokenRequest::get(url());
    assert_eq!(r.method(), http::Method::GET);
    assert!(r.wire_body().is_empty());
    let headers = r.wire_headers().unwrap();
    assert!(headers.get("content-type").is_none());
    assert_eq!(headers["accept"], "application/json");
}

#[test]
fn wire_headers_mark_secrets_sensitive() {
    let r = TokenRequest::new(url(), BodyFormat::Form)
        .header("Authorization", Value::Basic { user: "id".into(), password: SecretString::from("pw") });
    let headers = r.wire_headers().unwrap();
    let auth = headers.get("authorization").unwrap();
    assert!(auth.is_sensitive());
    assert_eq!(auth.to_str().unwrap(), "Basic aWQ6cHc=");
    assert!(!headers.get("accept").unwrap().is_sensitive());
}
