//! Clients built without a transport share the process-wide one (one connection pool, issue 20),
//! while each keeps its own HTTPS rule; a transport given explicitly is kept.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    assert!(ReqwestTransport::shared(false).shares_pool_with(&ReqwestTransport::shared(true)));
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
    let strict = ReqwestTransport::shared(false);
    let request = TokenRequest::new("http://remote.example/token".parse().unwrap(), BodyFormat::Form);
    let err = strict.send(&request).await.unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
}

/// A keep-alive HTTP/1.1 token endpoint on its own runtime thread; returns its token URL and the
/// number of connections it accepted.
fn token_endpoint() -> (String, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut pending = Vec::new();
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        // One request: headers, then Content-Length bytes of body.
                        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if pending.len() < end + 4 + len {
                            continue;
                        }
                        pending.drain(..end + 4 + len);
                        let body = r#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#;
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    (rx.recv().unwrap(), accepted)
}

/// Each test of a test binary runs its own runtime, and a pooled connection dies with the runtime
/// that opened it. With one client for the whole process, a request sent on one runtime could take
/// the idle connection of another that was shutting down, and fail ("dispatch task is gone": seen
/// against the shared DOT server of `tests/tests/dot_conformance.rs`). So each runtime sends through
/// its own connections: the server sees one per runtime, and a runtime reuses its own.
#[test]
fn each_runtime_sends_on_connections_of_its_own() {
    use tokensmith_core::{Scopes, request::Grant};
    let (url, accepted) = token_endpoint();
    let fetch = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(client(&url, false, None).request_token(&Grant::ClientCredentials, &Scopes::empty())).unwrap();
    };
    let first = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let second = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    fetch(&first);
    fetch(&first);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "a runtime reuses its pooled connection");
    // The first runtime's connection is idle in a pool, and alive: the second does not take it.
    fetch(&second);
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "another runtime opens its own");
    fetch(&second);
    fetch(&first);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // A runtime that is gone takes its connections along; the next one still gets a token.
    drop(first);
    fetch(&second);
    let third = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    fetch(&third);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}
