//! The exact token request ProBit gets, secrets redacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use tokensmith_probit::ProbitProvider;

const SECRET: &str = "s3cr3t: %+/&= with space";

fn provider() -> ProbitProvider {
    ProbitProvider::builder().client_id("probit-client").client_secret(SECRET).build().unwrap()
}

#[test]
fn token_request_snapshot() {
    let request = provider().token_request().unwrap();
    insta::assert_yaml_snapshot!("probit_token_request", request);
}

#[test]
fn token_request_wire_bytes() {
    let request = provider().token_request().unwrap();
    assert_eq!(request.url().as_str(), "https://accounts.probit.com/token");
    assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
    let headers = request.wire_headers().unwrap();
    // Raw Basic: base64 of the id and secret exactly as issued, not form-encoded.
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("probit-client:{SECRET}")));
    assert_eq!(headers["authorization"], expected.as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert!(!format!("{request:?}").contains("s3cr3t"));
}
