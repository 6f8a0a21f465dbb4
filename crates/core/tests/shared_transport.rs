//! Clients built without a transport share the process-wide one (one connection pool, issue 20),
//! while each keeps its own HTTPS rule; a transport given explicitly is kept.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tokensmith_core::http::{ReqwestTransport, Transport};
use tokensmith_core::{ClientCredentials, TokenClient, TokenEndpoint};

fn client(url: &str, allow_insecure_http: bool, transport: Option<Arc<dyn Transport>>) -> TokenClient {
    let endpoint = TokenEndpoint::new(url.parse().unwrap());
    let mut builder = TokenClient::builder("t", endpoint, ClientCredentials::new("id", "secret"))
        .allow_insecure_http(allow_insecure_http);
    if let Some(transport) = transport {
        builder = builder.transport(transport);
    }
    builder.build().unwrap()
}

#[test]
fn clients_built_without_a_transport_share_one() {
    let a = client("https://a.example/token", false, None);
    let b = client("https://b.example/token", false, None);
    assert!(Arc::ptr_eq(a.transport(), b.transport()), "one transport for every default client");

    // Insecure HTTP allowed is another handle on the same pool, not the same rule.
    let c = client("http://c.example/token", true, None);
    assert!(!Arc::ptr_eq(a.transport(), c.transport()));
    let c_again = client("http://d.example/token", true, None);
    assert!(Arc::ptr_eq(c.transport(), c_again.transport()));
    assert!(ReqwestTransport::shared(false).unwrap().shares_pool_with(&ReqwestTransport::shared(true).unwrap()));
}

#[test]
fn an_explicit_transport_is_kept() {
    let own: Arc<dyn Transport> = Arc::new(ReqwestTransport::new().unwrap());
    let a = client("https://a.example/token", false, Some(own.clone()));
    assert!(Arc::ptr_eq(a.transport(), &own));
    let default = client("https://b.example/token", false, None);
    assert!(!Arc::ptr_eq(a.transport(), default.transport()));
}

#[tokio::test]
async fn the_shared_transport_still_refuses_plain_http_to_a_remote_host() {
    use tokensmith_core::request::{BodyFormat, TokenRequest};
    // A client that allows insecure HTTP does not lend that to one that does not.
    let _lenient = client("http://c.example/token", true, None);
    let strict = ReqwestTransport::shared(false).unwrap();
    let request = TokenRequest::new("http://remote.example/token".parse().unwrap(), BodyFormat::Form);
    let err = strict.send(&request).await.unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
}
