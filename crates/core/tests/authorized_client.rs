//! `AuthorizedClient` against a tiny resource server on 127.0.0.1 (hand-rolled HTTP/1.1 on a tokio
//! `TcpListener`): the bearer header is attached; a 401 invalidates the token and retries once; a burst
//! of 401s for one token causes one refetch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokensmith_core::cache::ProviderSource;
use tokensmith_core::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// What the resource server saw and how it answers.
#[derive(Default)]
struct Resource {
    /// The `Authorization` header of every request, in arrival order.
    seen: Mutex<Vec<String>>,
    /// Bearer tokens answered with 401 (`*` rejects every token).
    rejected: HashSet<&'static str>,
    /// When set, requests carrying this token are held until this many of them have arrived.
    gate: Option<(&'static str, tokio::sync::Barrier)>,
}

async fn serve(resource: Resource) -> (String, Arc<Resource>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/resource", listener.local_addr().unwrap());
    let resource = Arc::new(resource);
    let state = resource.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let state = state.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let auth = text
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")))
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default();
                let token = auth.strip_prefix("Bearer ").unwrap_or("").to_owned();
                state.seen.lock().unwrap().push(auth);
                if let Some((gated, barrier)) = &state.gate {
                    if token == *gated {
                        barrier.wait().await;
                    }
                }
                let status = if state.rejected.contains("*") || state.rejected.contains(token.as_str()) {
                    "401 Unauthorized\r\nwww-authenticate: Bearer error=\"invalid_token\""
                } else if text.starts_with("GET /forbidden") {
                    "403 Forbidden"
                } else {
                    "200 OK"
                };
                let response = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.shutdown().await.ok();
            });
        }
    });
    (url, resource)
}

/// A cached provider issuing `token-1`, `token-2`, ... and counting its fetches.
fn provider() -> (SharedTokenProvider, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let source = provide_token_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok(AccessToken::builder(format!("token-{n}")).build()) }
    });
    (SharedTokenProvider::new(CachedProvider::new(ProviderSource::new(source, "resource-test"))), fetches)
}

fn seen(resource: &Resource) -> Vec<String> {
    resource.seen.lock().unwrap().clone()
}

#[tokio::test]
async fn a_401_invalidates_refetches_once_and_retries_once() {
    let (url, resource) = serve(Resource { rejected: ["token-1"].into(), ..Resource::default() }).await;
    let (provider, fetches) = provider();
    let client = AuthorizedClient::new(provider);

    let response = client.send(client.get(&url)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "one fetch, one refetch after the 401");
    assert_eq!(seen(&resource), ["Bearer token-1", "Bearer token-2"], "one retry, with the new token");

    // Later requests use the new token straight away.
    assert_eq!(client.send(client.get(&url)).await.unwrap().status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(seen(&resource).last().unwrap(), "Bearer token-2");
}

#[tokio::test]
async fn a_second_401_is_returned_not_retried_again_and_other_statuses_pass_through() {
    let (url, resource) = serve(Resource { rejected: ["*"].into(), ..Resource::default() }).await;
    let (provider, fetches) = provider();
    let client = AuthorizedClient::new(provider);
    let response = client.send(client.get(&url)).await.unwrap();
    assert_eq!(response.status(), 401, "the caller sees the resource server's answer");
    assert_eq!(seen(&resource).len(), 2, "exactly one retry");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    let (url, resource) = serve(Resource::default()).await;
    let forbidden = url.replace("/resource", "/forbidden");
    let response = client.send(client.get(&forbidden)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(seen(&resource).len(), 1, "a 403 is not retried");
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "a 403 does not invalidate the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_401s_for_one_token_cause_one_refetch() {
    // Every request with token-1 is held until all 50 have arrived, so all 50 see the 401.
    let resource = Resource {
        rejected: ["token-1"].into(),
        gate: Some(("token-1", tokio::sync::Barrier::new(50))),
        ..Resource::default()
    };
    let (url, resource) = serve(resource).await;
    let (provider, fetches) = provider();
    provider.token().await.unwrap(); // token-1 is cached before the burst
    let client = AuthorizedClient::new(provider);

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.send(client.get(&url)).await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "50 rejections of one token caused more than one refetch");
    let seen = seen(&resource);
    assert_eq!(seen.iter().filter(|a| *a == "Bearer token-1").count(), 50);
    assert_eq!(seen.iter().filter(|a| *a == "Bearer token-2").count(), 50);
}
