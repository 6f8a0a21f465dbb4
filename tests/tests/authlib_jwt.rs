//! Conformance of JWT client authentication (RFC 7523 §2.2; `private_key_jwt`, `client_secret_jwt`)
//! against a real Authlib server (software nobody here wrote): `tests/authlib/serve.py`, whose token
//! endpoint verifies client assertions with Authlib's `JWTBearerClientAssertion` (signature, iss =
//! sub, aud, exp, a jti never seen before). `tests/authlib/setup.sh` creates its venv;
//! `TOKENSMITH_SKIP_AUTHLIB=1` skips these tests (each prints that it was skipped).
//!
//! The keys are the TEST-ONLY keys of `crates/core/tests/fixtures/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authlib;

use std::sync::Arc;

use authlib::{AuthlibServer, ES256_CLIENT_ID, HS256_CLIENT_ID, HS256_SECRET, RS256_CLIENT_ID};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::style::{ClientSecretJwt, CredentialStyle, PrivateKeyJwt};
use tokensmith_core::{
    AccessToken, ClientCredentials, Error, Scopes, TokenClient, TokenEndpoint, error::OAuthErrorCode, request::Grant,
};

/// The server shared by this binary's tests, or return (skipped).
macro_rules! server {
    () => {
        match authlib::shared() {
            Some(server) => server,
            None => return,
        }
    };
}

fn fixture(name: &str) -> std::path::PathBuf {
    authlib::repo_root().join("crates/core/tests/fixtures").join(name)
}

fn private_key(name: &str) -> PrivateKeyJwt {
    PrivateKeyJwt::builder_from_file(fixture(name)).unwrap().key_id("test-key").build().unwrap()
}

fn client(server: &AuthlibServer, style: Arc<dyn CredentialStyle>, credentials: ClientCredentials) -> TokenClient {
    let endpoint = TokenEndpoint::new(server.token_url().parse().unwrap()).credential_style(style);
    TokenClient::builder("authlib", endpoint, credentials)
        .secret_required(false)
        .allow_insecure_http(true)
        .build()
        .expect("a valid client")
}

async fn token(client: &TokenClient) -> Result<AccessToken, Error> {
    client.request_token(&Grant::ClientCredentials, &Scopes::parse("read")).await
}

fn assert_invalid_client(result: Result<AccessToken, Error>, what: &str) -> Error {
    match result {
        Err(Error::OAuth(ref e)) if e.code == OAuthErrorCode::InvalidClient && e.status == 400 => result.unwrap_err(),
        other => panic!("{what}: expected invalid_client (HTTP 400), got {other:?}"),
    }
}

/// RS256 and ES256 (`private_key_jwt`) and HS256 (`client_secret_jwt`) each get tokens, three times
/// from one client: Authlib refuses a jti it has seen, so each request carried a new assertion.
#[tokio::test]
async fn each_style_gets_tokens_from_authlib() {
    let server = server!();
    let cases: [(&str, Arc<dyn CredentialStyle>, ClientCredentials); 3] = [
        (RS256_CLIENT_ID, Arc::new(private_key("test-only-rsa.pem")), ClientCredentials::public(RS256_CLIENT_ID)),
        (RS256_CLIENT_ID, Arc::new(private_key("test-only-rsa-pkcs1.pem")), ClientCredentials::public(RS256_CLIENT_ID)),
        (ES256_CLIENT_ID, Arc::new(private_key("test-only-ec-p256.pem")), ClientCredentials::public(ES256_CLIENT_ID)),
    ];
    let hs256 = (
        HS256_CLIENT_ID,
        Arc::new(ClientSecretJwt::new()) as Arc<dyn CredentialStyle>,
        ClientCredentials::new(HS256_CLIENT_ID, HS256_SECRET),
    );
    for (id, style, credentials) in cases.into_iter().chain([hs256]) {
        let name = style.name();
        let client = client(server, style, credentials);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let token = token(&client).await.unwrap_or_else(|e| panic!("{id} ({name}) was refused: {e}"));
            assert!(!token.secret().expose_secret().is_empty());
            let left = token.expires_at().duration_since(std::time::SystemTime::now()).unwrap_or_default();
            assert!(left.as_secs() > 3000, "expires_in 3600 was read: {left:?} left");
            seen.push(token.secret().expose_secret().to_owned());
        }
        seen.dedup();
        assert_eq!(seen.len(), 3, "{id}: three requests, three tokens");
    }
}

/// Wrong keys are refused with `invalid_client`: a key the server does not have for the client, an
/// ES256 key for the RS256 client, the wrong HS256 secret, an HS256 assertion for a private-key
/// client, and an audience that is neither the token endpoint nor the issuer. The errors show no secret.
#[tokio::test]
async fn wrong_keys_and_audiences_are_refused_with_invalid_client() {
    let server = server!();
    let (issued_before, refused_before) = server.stats().await;
    let rs_public = ClientCredentials::public(RS256_CLIENT_ID);
    let cases: Vec<(&str, TokenClient)> = vec![
        (
            "an unregistered RSA key",
            client(server, Arc::new(private_key("test-only-rsa-unregistered.pem")), rs_public.clone()),
        ),
        (
            "the ES256 client's key for the RS256 client",
            client(server, Arc::new(private_key("test-only-ec-p256.pem")), rs_public.clone()),
        ),
        (
            "the wrong HS256 secret",
            client(
                server,
                Arc::new(ClientSecretJwt::new()),
                ClientCredentials::new(HS256_CLIENT_ID, "not-the-secret-but-long-enough-for-hs256"),
            ),
        ),
        (
            "an HS256 assertion for a private_key_jwt client",
            client(server, Arc::new(ClientSecretJwt::new()), ClientCredentials::new(RS256_CLIENT_ID, HS256_SECRET)),
        ),
        (
            "another audience",
            client(
                server,
                Arc::new(
                    PrivateKeyJwt::builder_from_file(fixture("test-only-rsa.pem"))
                        .unwrap()
                        .audience("https://elsewhere.example.test")
                        .build()
                        .unwrap(),
                ),
                rs_public.clone(),
            ),
        ),
    ];
    let refusals = cases.len() as u64;
    for (what, client) in cases {
        let error = assert_invalid_client(token(&client).await, what);
        let text = format!("{error} {error:?}");
        assert!(!text.contains(HS256_SECRET) && !text.contains("not-the-secret"), "{what}: {text}");
        assert!(!text.contains("eyJ"), "{what}: an error shows a JWT: {text}");
    }
    // The issuer is an audience the server accepts too.
    let issuer = PrivateKeyJwt::builder_from_file(fixture("test-only-rsa.pem"))
        .unwrap()
        .audience(server.base_url())
        .build()
        .unwrap();
    token(&client(server, Arc::new(issuer), rs_public)).await.expect("the issuer as audience");
    let (issued, refused) = server.stats().await;
    assert!(refused - refused_before >= refusals, "the server refused {} of {refusals}", refused - refused_before);
    assert!(issued > issued_before);
}

/// The HS256 secret is never sent: only the assertion it signed.
#[tokio::test]
async fn the_client_secret_never_goes_on_the_wire() {
    let server = server!();
    let client =
        client(server, Arc::new(ClientSecretJwt::new()), ClientCredentials::new(HS256_CLIENT_ID, HS256_SECRET));
    let request = client.build_request(&Grant::ClientCredentials, &Scopes::parse("read")).unwrap();
    let body = String::from_utf8(request.wire_body()).unwrap();
    assert!(body.contains("client_assertion=eyJ"), "{}", request.redacted_body());
    assert!(!body.contains(HS256_SECRET) && !body.contains("client_secret"));
    assert!(!request.has_header("authorization"));
    token(&client).await.expect("a token");
}

/// The facade's declarative provider (`provider = "custom"`), configured in TOML with
/// `credential_style = "private-key-jwt"`, `private_key_file` and `key_id`, or `"client-secret-jwt"`,
/// gets tokens through its cache; an unregistered key is `invalid_client`, and a bad key file fails at
/// build naming `private_key_file`.
#[tokio::test]
async fn the_configured_custom_provider_authenticates_with_jwts() {
    let server = server!();
    let config = |id: &str, style: &str, extra: &str| {
        tokensmith::Config::from_toml_str(&format!(
            "provider = 'custom'\n\
             token_url = '{}'\n\
             allow_insecure_http = true\n\
             client_id = '{id}'\n\
             credential_style = '{style}'\n\
             scope = 'read'\n\
             {extra}",
            server.token_url()
        ))
        .expect("a valid configuration")
    };
    let key_file = |name: &str| format!("private_key_file = '{}'\nkey_id = 'test-key'\n", fixture(name).display());
    let rs = tokensmith::from_config(&config(RS256_CLIENT_ID, "private-key-jwt", &key_file("test-only-rsa.pem")))
        .expect("a private-key-jwt provider");
    let first = rs.token().await.expect("a token through the facade");
    let again = rs.token().await.expect("the cached token");
    assert_eq!(first.secret().expose_secret(), again.secret().expose_secret(), "served from the cache");
    let es = tokensmith::from_config(&config(ES256_CLIENT_ID, "private-key-jwt", &key_file("test-only-ec-p256.pem")))
        .expect("an ES256 provider");
    es.token().await.expect("an ES256 token through the facade");
    let hs = tokensmith::from_config(&config(
        HS256_CLIENT_ID,
        "client-secret-jwt",
        &format!("client_secret = '{HS256_SECRET}'\n"),
    ))
    .expect("a client-secret-jwt provider");
    hs.token().await.expect("an HS256 token through the facade");

    let wrong = tokensmith::from_config(&config(
        RS256_CLIENT_ID,
        "private-key-jwt",
        &key_file("test-only-rsa-unregistered.pem"),
    ))
    .expect("a provider with a key the server does not know");
    assert_invalid_client(wrong.token().await, "an unregistered key through the facade");

    let missing = tokensmith::from_config(&config(RS256_CLIENT_ID, "private-key-jwt", "")).unwrap_err();
    assert!(matches!(missing, Error::Config { ref key, .. } if key == "private_key_file"), "{missing}");
    let public = tokensmith::from_config(&config(
        RS256_CLIENT_ID,
        "private-key-jwt",
        &format!("private_key_file = '{}'\n", fixture("test-only-rsa.pub.pem").display()),
    ))
    .unwrap_err();
    assert!(matches!(public, Error::Config { ref key, .. } if key == "private_key_file"), "{public}");
    assert!(public.to_string().contains("not a private key"), "{public}");
    let stray = tokensmith::from_config(&config(
        HS256_CLIENT_ID,
        "client-secret-jwt",
        &format!("client_secret = '{HS256_SECRET}'\nkey_id = 'k'\n"),
    ))
    .unwrap_err();
    assert!(matches!(stray, Error::Config { ref key, .. } if key == "key_id"), "{stray}");
}
