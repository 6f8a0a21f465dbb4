//! Unit tests of `endpoint`.

use secrecy::SecretString;

use super::*;
use crate::error::{Error, TransportError};
use crate::http::HttpResponse;
use crate::http::Transport;
use crate::parse::ResponseFormat;
use crate::request::{BodyFormat, Grant, TokenRequest};
use crate::retry::RetryPolicy;
use crate::style::BasicAuth;
use crate::style::BodyCredentials;
use crate::support::REDACTED;
use crate::token::RefreshToken;
use crate::token::{ClientCredentials, Scopes};
use std::sync::Arc;

const API_KEY: &str = "api-key-4f9c2e";
const SECRET: &str = "client-secret-77ab";

fn renamed() -> TokenEndpoint {
    TokenEndpoint::new("https://auth.example.test/v3/token".parse().unwrap())
        .body_format(BodyFormat::Json)
        .credential_style(Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
        .grant_type_param("grantKind")
        .scope_param("permissions")
        .extra_param("tenant", "eu-1")
        .secret_param("api_key", SecretString::from(API_KEY))
}

fn credentials() -> ClientCredentials {
    ClientCredentials::new("my-client", SECRET)
}

#[test]
fn every_field_renamed_on_the_wire() {
    let request = renamed().build_request(&Grant::ClientCredentials, &credentials(), &Scopes::parse("read")).unwrap();
    assert_eq!(
        String::from_utf8(request.wire_body()).unwrap(),
        format!(
            r#"{{"grantKind":"client_credentials","permissions":"read","tenant":"eu-1","api_key":"{API_KEY}","consumerKey":"my-client","consumerSecret":"{SECRET}"}}"#
        )
    );
    assert!(!request.has_header("authorization"));
    for shown in [format!("{request:?}"), serde_json::to_string(&request).unwrap(), format!("{:?}", renamed())] {
        assert!(!shown.contains(API_KEY) && !shown.contains(SECRET), "{shown}");
    }
}

#[test]
fn grant_type_overrides() {
    let endpoint = renamed().grant_type_value("client_credentials", "server");
    let cc = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
    assert_eq!(cc.param_redacted("grantKind").as_deref(), Some("server"));
    assert!(!cc.has_param("grant_type") && !cc.has_param("permissions"));
    // Another grant keeps its RFC value, under the renamed parameter.
    let refresh = Grant::RefreshToken(RefreshToken::new("rt-1"));
    let rt = endpoint.build_request(&refresh, &credentials(), &Scopes::empty()).unwrap();
    assert_eq!(rt.param_redacted("grantKind").as_deref(), Some("refresh_token"));
    // `send_grant_type(false)` sends none, whatever its name or value.
    let none = endpoint.send_grant_type(false);
    let r = none.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
    assert!(!r.has_param("grantKind") && !r.has_param("grant_type"));
    assert!(none.validate(&credentials()).is_ok());
    // An override of a grant that does not exist is refused.
    let err = renamed().grant_type_value("password", "pw").validate(&credentials()).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "grant_type_value"), "{err}");
}

#[test]
fn a_later_extra_param_of_the_same_name_replaces_the_first() {
    let endpoint = renamed().extra_param("api_key", "public-now").secret_param("tenant", SecretString::from("t"));
    let r = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
    assert_eq!(r.param_redacted("api_key").as_deref(), Some("public-now"));
    assert_eq!(r.param_redacted("tenant").as_deref(), Some(REDACTED));
    assert_eq!(
        endpoint.extra_params(),
        [("tenant".to_owned(), REDACTED.to_owned()), ("api_key".to_owned(), "public-now".to_owned())]
    );
}

#[test]
fn one_name_for_two_fields_is_refused() {
    let cases: Vec<(TokenEndpoint, &str)> = vec![
        (renamed().scope_param("grantKind"), "scope_param"),
        (renamed().extra_param("permissions", "x"), "extra_params"),
        (renamed().extra_param("consumerKey", "x"), "credential_style"),
        (renamed().refresh_token_param("tenant"), "refresh_token_param"),
        (renamed().extra_param("code", "x"), "the authorization code"),
        (renamed().scope_param(" "), "scope_param"),
    ];
    for (endpoint, key) in cases {
        let err = endpoint.validate(&credentials()).unwrap_err();
        assert!(matches!(err, Error::Config { key: ref k, .. } if k == key || k == "extra_params"), "{key}: {err}");
    }
    assert!(renamed().validate(&credentials()).is_ok());
    // The RFC 6749 defaults never clash.
    let plain = TokenEndpoint::new("https://a.example/token".parse().unwrap()).credential_style(Arc::new(BasicAuth));
    assert!(plain.validate(&credentials()).is_ok());
    // And the client builder runs the check.
    let built = TokenClient::builder("t", renamed().scope_param("tenant"), credentials()).build();
    assert!(matches!(built, Err(Error::Config { .. })));
}

#[test]
fn a_secret_param_in_the_url_query_is_refused() {
    let endpoint = TokenEndpoint::new("https://a.example/token?api_key=x".parse().unwrap())
        .secret_param("api_key", SecretString::from(API_KEY));
    let err = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "token_url"), "{err}");
}

/// Answers every request with an error that echoes what it was sent.
#[derive(Debug)]
struct Echo;

#[async_trait::async_trait]
impl Transport for Echo {
    async fn send(&self, request: &TokenRequest) -> std::result::Result<HttpResponse, TransportError> {
        let body = String::from_utf8_lossy(&request.wire_body()).into_owned();
        let answer =
            serde_json::json!({"problem": {"type": "invalid_request", "detail": format!("bad request: {body}")}});
        Ok(HttpResponse::json(400, answer.to_string()))
    }
}

#[tokio::test]
async fn a_secret_param_echoed_by_the_server_is_scrubbed_from_the_error() {
    use crate::parse::ResponseField;
    let endpoint = renamed().response_format(
        ResponseFormat::default()
            .field(ResponseField::Error, "/problem/type")
            .field(ResponseField::ErrorDescription, "/problem/detail"),
    );
    let client = TokenClient::builder("renamed", endpoint, credentials())
        .transport(Arc::new(Echo))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
    let Error::OAuth(oauth) = &err else { panic!("{err:?}") };
    assert_eq!(oauth.code, crate::error::OAuthErrorCode::InvalidRequest);
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("bad request") && shown.contains("tenant"), "{shown}");
    assert!(!shown.contains(API_KEY) && !shown.contains(SECRET), "{shown}");
}
