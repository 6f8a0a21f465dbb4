//! No error message, `Debug` output or log line ever contains a client secret, access token or refresh
//! token. This test formats every error variant and every public type that holds a secret, and runs
//! token requests (success, retries, refusals, servers that echo secrets) with TRACE logging captured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::cache::ClientCredentialsSource;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::store::StoredToken;
use tokensmith_core::*;
use tokensmith_core::{
    error::{CallbackError, HttpError, OAuthError, OAuthErrorCode, TransportError, TransportErrorKind},
    http::{HttpResponse, MockTransport, Transport},
    request::{Grant, TokenRequest},
};

const CLIENT_SECRET: &str = "CLIENT-SECRET-Zq9: %+/&= x";
const ACCESS_TOKEN: &str = "ACCESS-TOKEN-7f3a9c";
const REFRESH_TOKEN: &str = "REFRESH-TOKEN-51be";
const NEW_REFRESH_TOKEN: &str = "REFRESH-TOKEN-NEW-88aa";
const CODE: &str = "AUTH-CODE-0042";
const VERIFIER: &str = "PKCE-VERIFIER-abcdefghijklmnopqrstuvwxyz0123456789";

const SECRETS: [&str; 6] = [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN, NEW_REFRESH_TOKEN, CODE, VERIFIER];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} contains {secret:?}:\n{text}");
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert!(!text.contains(&encoded), "{what} contains {encoded:?}:\n{text}");
    }
}

fn token() -> AccessToken {
    AccessToken::builder(ACCESS_TOKEN).refresh_token(Some(RefreshToken::new(REFRESH_TOKEN))).build()
}

/// A transport that plays back scripted responses and records nothing.
#[derive(Debug)]
struct Scripted(Mutex<VecDeque<Result<HttpResponse, TransportError>>>);

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        // Rendered as a real transport would, so that the request keeps its wire form.
        assert!(!request.wire_body_bytes().is_empty());
        self.0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(TransportError::new(TransportErrorKind::Connect, "script exhausted")))
    }
}

fn client(script: Vec<Result<HttpResponse, TransportError>>) -> TokenClient {
    let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap());
    TokenClient::builder("leak-test", endpoint, ClientCredentials::new("client-id", CLIENT_SECRET))
        .transport(Arc::new(Scripted(Mutex::new(script.into()))))
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)).max_attempts(3))
        .build()
        .unwrap()
}

#[test]
fn debug_and_display_of_types_holding_secrets() {
    let creds = ClientCredentials::new("client-id", CLIENT_SECRET);
    assert_clean("ClientCredentials", &format!("{creds:?}"));
    assert_clean("AccessToken", &format!("{:?}", token()));
    assert_clean("AccessTokenBuilder", &format!("{:?}", AccessToken::builder(ACCESS_TOKEN)));
    assert_clean("RefreshToken", &format!("{:?}", RefreshToken::new(REFRESH_TOKEN)));
    assert_clean("StoredToken", &format!("{:?}", StoredToken::from(&token())));
    let header = token().header_value().unwrap();
    assert_clean("HeaderValue", &format!("{header:?}"));
    let grant = Grant::AuthorizationCode {
        code: SecretString::from(CODE),
        redirect_uri: None,
        code_verifier: Some(SecretString::from(VERIFIER)),
    };
    assert_clean("Grant", &format!("{grant:?} {:?}", Grant::RefreshToken(RefreshToken::new(REFRESH_TOKEN))));
    for style in ["basic", "basic-raw", "body"] {
        let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap())
            .credential_style(style::by_name(style).unwrap());
        for g in [&grant, &Grant::RefreshToken(RefreshToken::new(REFRESH_TOKEN)), &Grant::ClientCredentials] {
            let request = endpoint.build_request(g, &creds, &Scopes::empty()).unwrap();
            assert_clean("TokenRequest Debug", &format!("{request:?}"));
            assert_clean("TokenRequest Serialize", &serde_json::to_string(&request).unwrap());
            assert_clean("TokenRequest redacted body", &request.redacted_body());
            assert_clean("TokenRequest wire headers Debug", &format!("{:?}", request.wire_headers().unwrap()));
            // Rendering keeps the wire form inside the request: its renderings still show no secret.
            assert_clean("TokenRequest Debug once rendered", &format!("{request:?} {request:#?}"));
            assert_clean("TokenRequest Serialize once rendered", &serde_json::to_string(&request).unwrap());
        }
    }
    let c = client(vec![]);
    assert_clean("TokenClient", &format!("{c:?}"));
    let cached = CachedProvider::new(ClientCredentialsSource::new(c, Scopes::empty()));
    assert_clean("CachedProvider", &format!("{cached:?}"));
    let response = HttpResponse::json(200, format!(r#"{{"access_token":"{ACCESS_TOKEN}"}}"#));
    assert_clean("HttpResponse", &format!("{response:?}"));
    let store = MemoryStore::new();
    assert_clean("MemoryStore", &format!("{store:?}"));
}

#[tokio::test]
async fn a_client_that_keeps_its_rendered_request_shows_no_secret() {
    let ok = HttpResponse::json(200, format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":60}}"#));
    let c = client(vec![Ok(ok)]);
    c.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
    assert_clean("TokenClient after a fetch", &format!("{c:?} {c:#?}"));
}

#[test]
fn every_error_variant() {
    let errors = vec![
        Error::config("client_secret", "the client secret is empty"),
        Error::OAuth(OAuthError::new(OAuthErrorCode::InvalidClient, 401).with_description("bad client")),
        Error::Http(HttpError::new(403, "Forbidden")),
        Error::Transport(TransportError::new(TransportErrorKind::Timeout, "no answer")),
        Error::invalid_response("`access_token` is missing"),
        Error::ReauthorizationRequired { reason: "no refresh token".into() },
        Error::Callback(CallbackError::StateMismatch),
        Error::Callback(CallbackError::AlreadyUsed),
        Error::Callback(CallbackError::Denied {
            code: OAuthErrorCode::AccessDenied,
            description: Some("user said no".into()),
        }),
        Error::Callback(CallbackError::Malformed("no code".into())),
        Error::Callback(CallbackError::TimedOut(Duration::from_secs(5))),
        Error::store("disk full", None),
        Error::BackingOff { retry_in: Duration::from_secs(1), last: "timed out".into() },
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert_clean("error", &text);
        assert!(!e.to_string().ends_with('.'), "messages have no trailing period: {e}");
    }
}

#[cfg(feature = "testing")]
#[tokio::test(flavor = "current_thread")]
async fn token_requests_log_nothing_secret() {
    let (log, _guard) = testing::LogCapture::install();

    let echo = format!(
        r#"{{"error":"invalid_client","error_description":"secret {CLIENT_SECRET} and token {REFRESH_TOKEN} rejected"}}"#
    );
    let scenarios: Vec<(Grant, Vec<Result<HttpResponse, TransportError>>)> = vec![
        (
            Grant::ClientCredentials,
            vec![
                Ok(HttpResponse::json(503, "busy")),
                Err(TransportError::new(TransportErrorKind::Connect, "refused")),
                Ok(HttpResponse::json(
                    200,
                    format!(
                        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":60,"refresh_token":"{NEW_REFRESH_TOKEN}"}}"#
                    ),
                )),
            ],
        ),
        (Grant::RefreshToken(RefreshToken::new(REFRESH_TOKEN)), vec![Ok(HttpResponse::json(401, echo.clone()))]),
        (
            Grant::AuthorizationCode {
                code: SecretString::from(CODE),
                redirect_uri: None,
                code_verifier: Some(SecretString::from(VERIFIER)),
            },
            vec![Ok(HttpResponse::new(400, "text/plain", format!("bad code {CODE} verifier {VERIFIER}")))],
        ),
        (
            Grant::ClientCredentials,
            vec![Ok(HttpResponse::new(200, "text/plain", format!("access_token={ACCESS_TOKEN}")))],
        ),
        (
            Grant::ClientCredentials,
            vec![Ok(HttpResponse::json(200, format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"x"#)))],
        ),
    ];
    let mut outcomes = Vec::new();
    for (grant, script) in scenarios {
        let c = client(script);
        match c.request_token(&grant, &Scopes::parse("read")).await {
            Ok(t) => outcomes.push(format!("{t:?}")),
            Err(e) => outcomes.push(format!("{e} | {e:?}")),
        }
    }
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes[0].starts_with("AccessToken"), "{}", outcomes[0]);
    assert!(outcomes[1].contains("invalid_client") && outcomes[1].contains("[redacted]"), "{}", outcomes[1]);
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_clean(&format!("outcome {i}"), outcome);
    }
    let logs = log.text();
    assert!(logs.contains("retrying"), "each retry is logged:\n{logs}");
    assert!(logs.contains("token obtained"), "{logs}");
    assert_clean("tracing output", &logs);
}

#[tokio::test]
async fn echoed_secrets_are_scrubbed_from_every_field_whatever_the_encoding_or_the_cut() {
    // Issue 15, item 4: a secret echoed in the OAuth `error` field, a secret cut in two by the
    // 200-character excerpt (its first part survived), and a short Basic credential echoed back.
    let secret = "hunter2-Sup3rS3cret";
    let padding = "x ".repeat(95); // the secret straddles the 200th character of the description
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("a:{secret}"))
    };
    let bodies = [
        format!(r#"{{"error":"bad_{secret}"}}"#),
        format!(r#"{{"error":"invalid_client","error_description":"{padding}{secret}"}}"#),
        format!(r#"{{"error":"invalid_client","error_description":"you sent Basic {basic}"}}"#),
        format!(r#"{{"message":"bad secret {}"}}"#, &secret[..9]),
        format!(r#"{{"error":"invalid_client","error_description":"json \"{}\""}}"#, secret.replace('-', "\\u002d")),
    ];
    for body in bodies {
        let mut mock = MockTransport::new();
        let reply = HttpResponse::json(401, body.clone());
        mock.expect_send().returning(move |_| Ok(reply.clone()));
        let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap());
        let client = TokenClient::builder("echo", endpoint, ClientCredentials::new("a", secret))
            .transport(Arc::new(mock))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let error = client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
        let shown = format!("{error} | {error:?}");
        for window in secret.as_bytes().windows(6) {
            let fragment = std::str::from_utf8(window).unwrap();
            assert!(!shown.contains(fragment), "`{fragment}` of the secret survived in {shown}");
        }
        let basic_fragment = &basic[basic.len() - 8..];
        assert!(!shown.contains(basic_fragment), "the Basic credential survived in {shown}");
    }
}
