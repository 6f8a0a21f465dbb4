//! Snapshots of every built-in credential style × body format × grant, with an id and secret full of
//! characters that encodings disagree on. The snapshots show the exact wire shape with secrets
//! redacted; `basic_header_encodings` checks the real header bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::style::{BasicAuth, BasicAuthRaw, PublicClient, RequestBody};
use tokensmith_core::{
    ClientCredentials, RefreshToken, Scopes, TokenEndpoint,
    request::{BodyFormat, Grant},
    style::CredentialStyle,
};

const CLIENT_ID: &str = "client é/+ =&%";
const CLIENT_SECRET: &str = "s3cr3t: % + / & = space é";

fn grants() -> Vec<(&'static str, Grant)> {
    vec![
        ("client_credentials", Grant::ClientCredentials),
        (
            "authorization_code",
            Grant::AuthorizationCode {
                code: SecretString::from("auth-code-123"),
                redirect_uri: Some("http://127.0.0.1:8400/callback".to_owned()),
                code_verifier: Some(SecretString::from("verifier-abcdefghijklmnopqrstuvwxyz-0123456789")),
            },
        ),
        ("refresh_token", Grant::RefreshToken(RefreshToken::new("refresh-token-xyz"))),
    ]
}

fn styles() -> Vec<(&'static str, std::sync::Arc<dyn CredentialStyle>)> {
    vec![
        ("basic", std::sync::Arc::new(BasicAuth)),
        ("basic_raw", std::sync::Arc::new(BasicAuthRaw)),
        ("body", std::sync::Arc::new(RequestBody)),
        ("none", std::sync::Arc::new(PublicClient)),
    ]
}

#[test]
fn every_style_format_and_grant() {
    let creds = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET);
    for (style_name, style) in styles() {
        for (format_name, format) in [("form", BodyFormat::Form), ("json", BodyFormat::Json)] {
            for (grant_name, grant) in grants() {
                let endpoint = TokenEndpoint::new("https://auth.example.com/oauth/token".parse().unwrap())
                    .body_format(format)
                    .credential_style(style.clone());
                let request = endpoint.build_request(&grant, &creds, &Scopes::parse("read write")).unwrap();
                let rendered = serde_json::to_string(&request).unwrap();
                for secret in
                    [CLIENT_SECRET, "auth-code-123", "refresh-token-xyz", "verifier-abcdefghijklmnopqrstuvwxyz"]
                {
                    assert!(!rendered.contains(secret), "{style_name}/{format_name}/{grant_name} leaks {secret}");
                }
                insta::assert_yaml_snapshot!(format!("{style_name}__{format_name}__{grant_name}"), request);
            }
        }
    }
}

fn decoded_basic(style: &dyn CredentialStyle) -> String {
    let creds = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET);
    let request = tokensmith_core::request::TokenRequest::for_grant(
        "https://auth.example.com/token".parse().unwrap(),
        BodyFormat::Form,
        &Grant::ClientCredentials,
    );
    let request = style.shape(&creds, request).unwrap();
    let headers = request.wire_headers().unwrap();
    let value = headers.get("authorization").unwrap().to_str().unwrap().to_owned();
    let raw = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ").unwrap()).unwrap();
    String::from_utf8(raw).unwrap()
}

/// RFC 6749 §2.3.1: the id and the secret are each form-urlencoded (Appendix B) before base64.
#[test]
fn basic_header_encodings() {
    assert_eq!(decoded_basic(&BasicAuth), "client+%C3%A9%2F%2B+%3D%26%25:s3cr3t%3A+%25+%2B+%2F+%26+%3D+space+%C3%A9",);
    let raw_creds = ClientCredentials::new("client-id", CLIENT_SECRET);
    let request = tokensmith_core::request::TokenRequest::for_grant(
        "https://auth.example.com/token".parse().unwrap(),
        BodyFormat::Json,
        &Grant::ClientCredentials,
    );
    let request = BasicAuthRaw.shape(&raw_creds, request).unwrap();
    let headers = request.wire_headers().unwrap();
    let value = headers.get("authorization").unwrap().to_str().unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ").unwrap()).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), format!("client-id:{CLIENT_SECRET}"));
}

/// Issue 16's worked example: a server that renames every field, with a secret extra parameter. The
/// snapshot shows the whole wire shape; neither the client secret nor the API key is in it.
#[test]
fn a_fully_renamed_dialect() {
    use tokensmith_core::style::BodyCredentials;
    const API_KEY: &str = "api-key-not-in-any-snapshot";
    let endpoint = TokenEndpoint::new("https://auth.example.test/v3/token".parse().unwrap())
        .body_format(BodyFormat::Json)
        .credential_style(std::sync::Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
        .grant_type_param("grantKind")
        .scope_param("permissions")
        .extra_param("tenant", "eu-1")
        .secret_param("api_key", SecretString::from(API_KEY));
    let creds = ClientCredentials::new("my-client", CLIENT_SECRET);
    let request = endpoint.build_request(&Grant::ClientCredentials, &creds, &Scopes::parse("read write")).unwrap();
    let wire = String::from_utf8(request.wire_body()).unwrap();
    assert!(wire.contains(API_KEY) && wire.contains(CLIENT_SECRET), "the wire carries both: {wire}");
    for shown in [serde_json::to_string(&request).unwrap(), format!("{request:?}"), format!("{endpoint:?}")] {
        assert!(!shown.contains(API_KEY) && !shown.contains(CLIENT_SECRET), "{shown}");
    }
    insta::assert_yaml_snapshot!("renamed__json__client_credentials", request);
}

/// `text` with the port after each `127.0.0.1:` (or its form encoding, `127.0.0.1%3A`) replaced by `PORT`.
fn without_loopback_port(text: &str) -> String {
    let mut text = text.to_owned();
    for marker in ["127.0.0.1:", "127.0.0.1%3A"] {
        text = text
            .split(marker)
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_owned()
                } else {
                    format!("{marker}PORT{}", part.trim_start_matches(|c: char| c.is_ascii_digit()))
                }
            })
            .collect();
    }
    text
}

/// docs/snapshot-testing.md's example of redacting a value that changes between runs: the port of a
/// loopback `redirect_uri` (a listener on a free port), in `params` and in the `body` that repeats it.
/// Two different ports give the same snapshot.
#[test]
fn a_loopback_redirect_uri_whose_port_changes_is_redacted() {
    let creds = ClientCredentials::new("my-client", CLIENT_SECRET);
    for (name, format) in
        [("loopback_redirect_uri__form", BodyFormat::Form), ("loopback_redirect_uri__json", BodyFormat::Json)]
    {
        for port in [8400, 53117] {
            let grant = Grant::AuthorizationCode {
                code: SecretString::from("auth-code-123"),
                redirect_uri: Some(format!("http://127.0.0.1:{port}/callback")),
                code_verifier: Some(SecretString::from("verifier-abcdefghijklmnopqrstuvwxyz-0123456789")),
            };
            let endpoint =
                TokenEndpoint::new("https://auth.example.com/oauth/token".parse().unwrap()).body_format(format);
            let request = endpoint.build_request(&grant, &creds, &Scopes::empty()).unwrap();
            assert!(serde_json::to_string(&request).unwrap().contains(&port.to_string()), "unredacted, the port shows");
            insta::assert_yaml_snapshot!(name, request, {
                ".params.redirect_uri" => "http://127.0.0.1:PORT/callback",
                ".body" => insta::dynamic_redaction(|value, _| {
                    value.as_str().map(without_loopback_port).unwrap_or_default()
                }),
            });
        }
    }
}
