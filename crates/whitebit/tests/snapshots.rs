//! Wire shapes of the WhiteBIT dialect, as insta snapshots (secrets redacted by `TokenRequest`'s
//! `Serialize`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Map, Value};
use tokensmith_core::RefreshToken;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_whitebit::{PendingAuthorization, WhitebitProvider, pkce_challenge};

fn provider(redirect_uri: Option<&str>) -> WhitebitProvider {
    let mut builder = WhitebitProvider::builder().client_id("my-client").client_secret("my: secret+/&=");
    if let Some(uri) = redirect_uri {
        builder = builder.redirect_uri(uri);
    }
    builder.build().unwrap()
}

/// The authorization URL with its random values checked, then replaced by stable markers.
fn stable_url(pending: &PendingAuthorization) -> Value {
    let url = pending.url();
    let mut query = Map::new();
    for (name, value) in url.query_pairs() {
        let shown = match name.as_ref() {
            "state" => {
                assert_eq!(value, pending.state());
                assert_eq!(value.len(), 43, "256 bits of base64url");
                "[random state]".to_owned()
            }
            "code_challenge" => {
                let verifier = pending.code_verifier().unwrap().expose_secret();
                assert_eq!(value, pkce_challenge(verifier));
                "[S256 of the code verifier]".to_owned()
            }
            _ => value.into_owned(),
        };
        assert!(query.insert(name.into_owned(), Value::String(shown)).is_none(), "no parameter twice");
    }
    let mut out = Map::new();
    out.insert("endpoint".into(), Value::String(format!("{}{}", url.origin().ascii_serialization(), url.path())));
    out.insert("query".into(), Value::Object(query));
    Value::Object(out)
}

#[test]
fn authorize_url_standard() {
    insta::assert_yaml_snapshot!(stable_url(&provider(None).authorize()));
}

#[test]
fn authorize_url_standard_with_redirect_uri() {
    insta::assert_yaml_snapshot!(stable_url(&provider(Some("http://127.0.0.1:8765/callback")).authorize()));
}

#[test]
fn authorize_url_pkce() {
    let pending = provider(Some("http://127.0.0.1:8765/callback")).authorize_pkce();
    assert_eq!(pending.code_verifier().unwrap().expose_secret().len(), 64);
    insta::assert_yaml_snapshot!(stable_url(&pending));
}

#[test]
fn code_exchange_request() {
    let p = provider(None);
    let request = p.exchange_request(&p.authorize(), "the-code").unwrap();
    let body = String::from_utf8(request.wire_body()).unwrap();
    assert_eq!(body, "code=the-code&client_id=my-client&client_secret=my%3A+secret%2B%2F%26%3D");
    insta::assert_yaml_snapshot!(request);
}

#[test]
fn code_exchange_request_pkce() {
    let p = provider(Some("http://127.0.0.1:8765/callback"));
    let pending = p.authorize_pkce();
    let request = p.exchange_request(&pending, "the-code").unwrap();
    let body = String::from_utf8(request.wire_body()).unwrap();
    let verifier = pending.code_verifier().unwrap().expose_secret();
    assert!(body.contains(&format!("code_verifier={verifier}")), "{body}");
    assert!(!body.contains("grant_type") && !body.contains("redirect_uri"), "{body}");
    insta::assert_yaml_snapshot!(request);
}

#[test]
fn refresh_request() {
    let request = provider(None).refresh_request(&RefreshToken::new("the-refresh-token")).unwrap();
    let body = String::from_utf8(request.wire_body()).unwrap();
    assert_eq!(body, "token=the-refresh-token&client_id=my-client&client_secret=my%3A+secret%2B%2F%26%3D");
    insta::assert_yaml_snapshot!(request);
}
