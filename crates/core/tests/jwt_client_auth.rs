//! JWT client authentication (RFC 7523 §2.2): the assertions `PrivateKeyJwt` (RS256, ES256) and
//! `ClientSecretJwt` (HS256) put on token requests, verified with jsonwebtoken's verifier and the
//! public key (or the secret); the bounds on their configuration; keys that cannot be used, refused
//! with errors that show nothing of them; and the assertion kept out of every rendering and log.
//! The keys are TEST-ONLY keys from `tests/fixtures/` (see its README).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokensmith_core::request::{BodyFormat, Grant, TokenRequest};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::style::{
    CLIENT_ASSERTION_TYPE, ClientSecretJwt, CredentialStyle, PrivateKeyJwt, SigningAlgorithm, by_name,
};
use tokensmith_core::testing::{FakeEndpoint, LogCapture, ManualClock};
use tokensmith_core::{ClientCredentials, Error, Scopes, TokenClient, TokenEndpoint};

const TOKEN_URL: &str = "https://auth.example.test/oauth/token";
const CLIENT_ID: &str = "jwt-client";
const CLIENT_SECRET: &str = "a-client-secret-of-at-least-32-bytes-for-hs256";

const RSA: &str = include_str!("fixtures/test-only-rsa.pem");
const RSA_PKCS1: &str = include_str!("fixtures/test-only-rsa-pkcs1.pem");
const RSA_PUB: &str = include_str!("fixtures/test-only-rsa.pub.pem");
const RSA_OTHER: &str = include_str!("fixtures/test-only-rsa-unregistered.pem");
const EC: &str = include_str!("fixtures/test-only-ec-p256.pem");
const EC_PUB: &str = include_str!("fixtures/test-only-ec-p256.pub.pem");
const EC_P384: &str = include_str!("fixtures/test-only-ec-p384.pem");
const EC_SEC1: &str = include_str!("fixtures/test-only-ec-p256-sec1.pem");

#[derive(Debug, serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    jti: String,
    iat: u64,
    exp: u64,
}

fn request() -> TokenRequest {
    TokenRequest::for_grant(TOKEN_URL.parse().unwrap(), BodyFormat::Form, &Grant::ClientCredentials)
}

/// The body's parameters as sent, secrets included.
fn wire_params(request: &TokenRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.wire_body()).into_owned().collect()
}

fn param(request: &TokenRequest, name: &str) -> String {
    wire_params(request).into_iter().find(|(n, _)| n == name).map(|(_, v)| v).unwrap_or_else(|| panic!("no {name}"))
}

fn validation(alg: Algorithm, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[CLIENT_ID]);
    v.sub = Some(CLIENT_ID.to_owned());
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    v.leeway = 0;
    v
}

/// Verifies `assertion` with `key` and returns its header and claims.
fn verify(assertion: &str, key: &DecodingKey, alg: Algorithm, audience: &str) -> (jsonwebtoken::Header, Claims) {
    let data = jsonwebtoken::decode::<Claims>(assertion, key, &validation(alg, audience))
        .unwrap_or_else(|e| panic!("{alg:?} assertion does not verify: {e}"));
    (data.header, data.claims)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Every claim and header field of a signed assertion, for RS256 (PKCS#8 and PKCS#1 keys) and ES256.
#[test]
fn private_key_assertions_verify_with_the_public_key_and_carry_every_claim() {
    let cases = [
        (RSA, RSA_PUB, SigningAlgorithm::Rs256, Algorithm::RS256),
        (RSA_PKCS1, RSA_PUB, SigningAlgorithm::Rs256, Algorithm::RS256),
        (EC, EC_PUB, SigningAlgorithm::Es256, Algorithm::ES256),
    ];
    for (pem, public, expected, alg) in cases {
        let style = PrivateKeyJwt::builder(SecretString::from(pem)).key_id("key-1").build().unwrap();
        assert_eq!(style.algorithm(), expected, "the algorithm follows from the key");
        let before = now_secs();
        let shaped = style.shape(&ClientCredentials::public(CLIENT_ID), request()).unwrap();
        let after = now_secs();
        assert_eq!(
            wire_params(&shaped).iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["grant_type", "client_id", "client_assertion_type", "client_assertion"]
        );
        assert_eq!(param(&shaped, "client_id"), CLIENT_ID);
        assert_eq!(param(&shaped, "client_assertion_type"), CLIENT_ASSERTION_TYPE);
        assert!(!shaped.has_header("authorization"), "credentials go one way only");
        let key = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            _ => DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
        };
        let (header, claims) = verify(&param(&shaped, "client_assertion"), &key, alg, TOKEN_URL);
        assert_eq!(header.alg, alg);
        assert_eq!(header.kid.as_deref(), Some("key-1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!((claims.iss.as_str(), claims.sub.as_str()), (CLIENT_ID, CLIENT_ID));
        assert_eq!(claims.aud, TOKEN_URL, "the audience is the token endpoint's URL");
        assert!((before..=after).contains(&claims.iat), "iat {} not in {before}..={after}", claims.iat);
        assert_eq!(claims.exp - claims.iat, 60, "one minute by default");
        let jti = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&claims.jti).unwrap();
        assert_eq!(jti.len(), 16, "a 128-bit jti");
    }
}

/// A key that signs is not a key that verifies: the unregistered key's assertion fails against the
/// registered public key (what the server's `invalid_client` rests on).
#[test]
fn another_key_does_not_verify() {
    let style = PrivateKeyJwt::builder(SecretString::from(RSA_OTHER)).build().unwrap();
    let shaped = style.shape(&ClientCredentials::public(CLIENT_ID), request()).unwrap();
    let key = DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).unwrap();
    let err = jsonwebtoken::decode::<Claims>(
        &param(&shaped, "client_assertion"),
        &key,
        &validation(Algorithm::RS256, TOKEN_URL),
    )
    .unwrap_err();
    assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature);
}

#[test]
fn client_secret_assertions_verify_with_the_secret_only() {
    let style = by_name("client-secret-jwt").expect("client-secret-jwt by name");
    assert_eq!(style.name(), "client-secret-jwt");
    let shaped = style.shape(&ClientCredentials::new(CLIENT_ID, CLIENT_SECRET), request()).unwrap();
    let assertion = param(&shaped, "client_assertion");
    assert!(!String::from_utf8(shaped.wire_body()).unwrap().contains(CLIENT_SECRET), "the secret is not sent");
    let (header, claims) =
        verify(&assertion, &DecodingKey::from_secret(CLIENT_SECRET.as_bytes()), Algorithm::HS256, TOKEN_URL);
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid, None);
    assert_eq!(claims.exp - claims.iat, 60);
    let wrong = jsonwebtoken::decode::<Claims>(
        &assertion,
        &DecodingKey::from_secret(b"another-secret-of-at-least-32-bytes-long"),
        &validation(Algorithm::HS256, TOKEN_URL),
    );
    assert!(wrong.is_err(), "verified with a secret it was not signed with");
    // No secret, no assertion.
    let err = ClientSecretJwt::new().shape(&ClientCredentials::public(CLIENT_ID), request()).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret"), "{err}");
    // An empty secret is no HMAC key.
    let err = ClientSecretJwt::new().shape(&ClientCredentials::new(CLIENT_ID, ""), request()).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret"), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
}

/// Each request gets its own assertion: a fresh jti, through a `TokenClient` too (the style is not
/// `reusable`, so the client does not resend a prepared request).
#[tokio::test]
async fn every_request_has_a_new_jti() {
    let style = Arc::new(PrivateKeyJwt::builder(SecretString::from(EC)).build().unwrap());
    assert!(!style.reusable());
    let endpoint = TokenEndpoint::new(TOKEN_URL.parse().unwrap()).credential_style(style);
    let fake = Arc::new(FakeEndpoint::default());
    let client = TokenClient::builder("jwt", endpoint, ClientCredentials::public(CLIENT_ID))
        .secret_required(false)
        .transport(fake.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        client.request_token(&Grant::ClientCredentials, &Scopes::parse("read")).await.unwrap();
    }
    let key = DecodingKey::from_ec_pem(EC_PUB.as_bytes()).unwrap();
    let jtis: HashSet<String> = fake
        .requests()
        .iter()
        .map(|r| verify(&param(r, "client_assertion"), &key, Algorithm::ES256, TOKEN_URL).1.jti)
        .collect();
    assert_eq!(fake.request_count(), 3);
    assert_eq!(jtis.len(), 3, "a jti was sent twice");
}

/// `iat` and `exp` come from the style's clock; the lifetime is configurable within 1 s..=600 s.
#[test]
fn the_clock_dates_and_the_lifetime_bounds_the_assertion() {
    // The manual clock's wall time starts at its creation; an hour later by `advance`.
    let before = now_secs() + 3600;
    let clock = Arc::new(ManualClock::new());
    let after = now_secs() + 3600;
    clock.advance(Duration::from_secs(3600));
    let style = PrivateKeyJwt::builder(SecretString::from(RSA))
        .lifetime(Duration::from_secs(300))
        .audience("https://issuer.example.test")
        .clock(clock.clone())
        .build()
        .unwrap();
    let shaped = style.shape(&ClientCredentials::public(CLIENT_ID), request()).unwrap();
    let key = DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).unwrap();
    let mut v = validation(Algorithm::RS256, "https://issuer.example.test");
    v.validate_exp = false; // the manual clock is an hour ahead of the verifier's
    let claims = jsonwebtoken::decode::<Claims>(&param(&shaped, "client_assertion"), &key, &v).unwrap().claims;
    assert!((before..=after).contains(&claims.iat), "iat {} is not the clock's, {before}..={after}", claims.iat);
    assert_eq!(claims.exp, claims.iat + 300);
    assert_eq!(claims.aud, "https://issuer.example.test", "a configured audience replaces the URL");

    for (lifetime, ok) in [(0, false), (1, true), (600, true), (601, false), (86_400, false)] {
        let built = PrivateKeyJwt::builder(SecretString::from(RSA)).lifetime(Duration::from_secs(lifetime)).build();
        assert_eq!(built.is_ok(), ok, "lifetime {lifetime} s");
        if let Err(err) = built {
            assert!(matches!(err, Error::Config { ref key, .. } if key == "assertion_lifetime"), "{err}");
        }
        let hs = ClientSecretJwt::new()
            .lifetime(Duration::from_secs(lifetime))
            .shape(&ClientCredentials::new(CLIENT_ID, CLIENT_SECRET), request());
        assert_eq!(hs.is_ok(), ok, "HS256 lifetime {lifetime} s");
    }
    let err = PrivateKeyJwt::builder(SecretString::from(RSA)).key_id(" ").build().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "key_id"), "{err}");
    let err = PrivateKeyJwt::builder(SecretString::from(RSA)).audience("").build().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "audience"), "{err}");
}

/// The base64 lines of every PEM fixture: none may show in an error.
fn key_fragments() -> Vec<&'static str> {
    [RSA, RSA_PKCS1, RSA_OTHER, EC, EC_P384, EC_SEC1]
        .iter()
        .flat_map(|pem| pem.lines())
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

fn assert_no_key_material(text: &str) {
    for fragment in key_fragments() {
        // Any 12 characters of a key line would be a leak.
        for window in fragment.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "{text:?} shows key material {window:?}");
        }
    }
}

/// Keys that cannot be used are refused at build time, naming `private_key_file` and saying why,
/// with nothing of the key in the message.
#[test]
fn unusable_keys_are_typed_errors_without_key_material() {
    let damaged = {
        // A valid-looking PEM whose DER is cut short.
        let mut lines: Vec<&str> = RSA.lines().collect();
        lines.drain(3..lines.len() - 2);
        lines.join("\n")
    };
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let cases: Vec<(String, Option<SigningAlgorithm>, &str)> = vec![
        ("not a key at all".to_owned(), None, "no PEM block"),
        (damaged, None, "damaged"),
        (encrypted.to_owned(), None, "encrypted"),
        (EC_SEC1.to_owned(), None, "PKCS#8"),
        (RSA_PUB.to_owned(), None, "not a private key"),
        (EC_P384.to_owned(), None, "P-256"),
        (RSA.to_owned(), Some(SigningAlgorithm::Es256), "ES256"),
        (EC.to_owned(), Some(SigningAlgorithm::Rs256), "RS256"),
        (RSA.to_owned(), Some(SigningAlgorithm::Hs256), "client-secret-jwt"),
    ];
    for (pem, algorithm, says) in cases {
        let mut builder = PrivateKeyJwt::builder(SecretString::from(pem.as_str()));
        if let Some(algorithm) = algorithm {
            builder = builder.algorithm(algorithm);
        }
        let err = builder.build().unwrap_err();
        let Error::Config { ref key, ref message } = err else { panic!("not a config error: {err:?}") };
        assert_eq!(key, "private_key_file");
        assert!(message.contains(says), "{message:?} does not say {says:?}");
        assert_no_key_material(&format!("{err} {err:?}"));
        assert!(!format!("{err:?}").contains("MII"), "{err:?}");
    }
    let err = PrivateKeyJwt::builder_from_file("/nonexistent/key.pem").unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "private_key_file"), "{err}");
    assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
    let from_file =
        PrivateKeyJwt::builder_from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-only-ec-p256.pem"));
    assert_eq!(from_file.unwrap().build().unwrap().algorithm(), SigningAlgorithm::Es256);
}

/// The key and the assertion show nowhere: not in the style's or builder's `Debug`, not in the
/// request's `Debug` or snapshot rendering, not in the logs of a token request.
#[tokio::test]
async fn the_key_and_the_assertion_never_show() {
    let builder = PrivateKeyJwt::builder(SecretString::from(RSA)).key_id("key-1");
    assert_no_key_material(&format!("{builder:?}"));
    let style = builder.build().unwrap();
    assert_no_key_material(&format!("{style:?}"));
    assert!(format!("{style:?}").contains("key-1"));

    let shaped = style.shape(&ClientCredentials::public(CLIENT_ID), request()).unwrap();
    let assertion = param(&shaped, "client_assertion");
    let signature = assertion.rsplit('.').next().unwrap();
    let payload = assertion.split('.').nth(1).unwrap();
    for rendering in [format!("{shaped:?}"), serde_json::to_string(&shaped).unwrap(), shaped.redacted_body()] {
        assert!(!rendering.contains(signature) && !rendering.contains(payload), "{rendering}");
    }
    insta::assert_yaml_snapshot!("private_key_jwt__form__client_credentials", shaped);

    let hs = ClientSecretJwt::new().shape(&ClientCredentials::new(CLIENT_ID, CLIENT_SECRET), request()).unwrap();
    insta::assert_yaml_snapshot!("client_secret_jwt__form__client_credentials", hs);

    // A token request through a client, with every log line captured.
    let (log, guard) = LogCapture::install();
    let fake = Arc::new(FakeEndpoint::default());
    let endpoint = TokenEndpoint::new(TOKEN_URL.parse().unwrap()).credential_style(Arc::new(style));
    let client = TokenClient::builder("jwt", endpoint, ClientCredentials::public(CLIENT_ID))
        .secret_required(false)
        .transport(fake.clone())
        .build()
        .unwrap();
    client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap();
    drop(guard);
    let sent = param(&fake.requests()[0], "client_assertion");
    let text = log.text();
    assert!(!text.is_empty());
    for part in sent.split('.').skip(1) {
        assert!(!text.contains(part), "the log shows the assertion:\n{text}");
    }
    assert_no_key_material(&text);
    let secret = SecretString::from(sent);
    assert!(!format!("{secret:?}").contains(secret.expose_secret()));
}

/// An assertion in the body and a Basic header would be credentials sent two ways.
#[test]
fn an_assertion_and_a_basic_header_are_refused_together() {
    let style = PrivateKeyJwt::builder(SecretString::from(EC)).build().unwrap();
    let with_basic = request().header(
        "authorization",
        tokensmith_core::request::Value::Basic { user: CLIENT_ID.to_owned(), password: SecretString::from("x") },
    );
    let err = style.shape(&ClientCredentials::public(CLIENT_ID), with_basic).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "credential_style"), "{err}");
}
