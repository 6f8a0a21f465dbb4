//! `ReqwestTransport` against a hand-written HTTP/1.1 server on 127.0.0.1 that answers each
//! connection with canned bytes: bodies in one or many chunks, the body limit, redirects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use tokensmith_core::error::TransportErrorKind;
use tokensmith_core::http::{ReqwestTransport, Transport};
use tokensmith_core::request::{BodyFormat, TokenRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The requests a server received, as raw text (head and body).
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Serves `answer` (raw bytes, written in the given pieces, flushing between them) to every
/// request; returns the token URL and the requests seen.
async fn serve(answer: Vec<Vec<u8>>) -> (url::Url, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let seen = Arc::new(Seen::default());
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                // Read the request head and its (small, Content-Length) body.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.0.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
                for piece in answer {
                    if stream.write_all(&piece).await.is_err() {
                        return;
                    }
                    let _ = stream.flush().await;
                    tokio::task::yield_now().await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

fn chunked(pieces: &[&str]) -> Vec<Vec<u8>> {
    let mut out =
        vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
    for piece in pieces {
        out.push(format!("{:x}\r\n{piece}\r\n", piece.len()).into_bytes());
    }
    out.push(b"0\r\n\r\n".to_vec());
    out
}

fn request(url: &url::Url) -> TokenRequest {
    TokenRequest::new(url.clone(), BodyFormat::Form).param("grant_type", "client_credentials")
}

fn transport_error(
    result: Result<tokensmith_core::http::HttpResponse, tokensmith_core::error::TransportError>,
) -> TransportErrorKind {
    match result {
        Err(e) => e.kind(),
        Ok(r) => panic!("expected a transport error, got {r:?}"),
    }
}

#[tokio::test]
async fn a_body_in_many_chunks_is_joined_in_order() {
    let pieces = [r#"{"access_token":"#, r#""abc","#, r#""token_type":"bearer","#, r#""expires_in":60}"#];
    let (url, seen) = serve(chunked(&pieces)).await;
    let response = ReqwestTransport::new().unwrap().send(&request(&url)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type(), Some("application/json"));
    assert_eq!(response.body, pieces.concat().as_bytes());
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn the_request_goes_out_as_rendered_with_the_user_agent() {
    let (url, seen) = serve(chunked(&["{}"])).await;
    let request = request(&url).header("x-extra", "1");
    let transport = ReqwestTransport::new().unwrap();
    // Twice: the second send uses the wire form the first one rendered.
    for _ in 0..2 {
        transport.send(&request).await.unwrap();
    }
    let requests = seen.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1]);
    let (head, body) = requests[0].split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("POST /token HTTP/1.1"));
    let mut headers: Vec<String> = lines.map(str::to_ascii_lowercase).filter(|l| !l.starts_with("host:")).collect();
    headers.sort();
    let user_agent = format!("user-agent: tokensmith/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        headers,
        [
            "accept: application/json",
            "content-length: 29",
            "content-type: application/x-www-form-urlencoded",
            user_agent.as_str(),
            "x-extra: 1",
        ]
    );
    assert_eq!(body, "grant_type=client_credentials");
}

#[tokio::test]
async fn a_body_in_one_piece_is_kept_whole() {
    let body = r#"{"access_token":"abc","expires_in":60}"#;
    let answer =
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    let (url, _) = serve(vec![answer.into_bytes()]).await;
    let response = ReqwestTransport::new().unwrap().send(&request(&url)).await.unwrap();
    assert_eq!(response.body, body.as_bytes());
}

#[tokio::test]
async fn chunks_beyond_the_limit_are_refused() {
    // Each chunk alone is under the limit; together they are over it.
    let piece = "x".repeat(40);
    let (url, _) = serve(chunked(&[&piece, &piece, &piece])).await;
    let transport = ReqwestTransport::builder().max_body_bytes(100).build().unwrap();
    assert_eq!(transport_error(transport.send(&request(&url)).await), TransportErrorKind::BodyTooLarge);
    // Exactly at the limit is fine.
    let (url, _) = serve(chunked(&[&piece, &piece, &"x".repeat(20)])).await;
    assert_eq!(transport.send(&request(&url)).await.unwrap().body.len(), 100);
}

#[tokio::test]
async fn an_announced_length_beyond_the_limit_is_refused_before_reading() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000000\r\n\r\n{".to_vec();
    let (url, _) = serve(vec![answer]).await;
    let transport = ReqwestTransport::new().unwrap();
    assert_eq!(transport_error(transport.send(&request(&url)).await), TransportErrorKind::BodyTooLarge);
}

#[tokio::test]
async fn redirects_are_refused_not_followed() {
    let (target, target_seen) = serve(chunked(&["{}"])).await;
    let answer = format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n");
    let (url, seen) = serve(vec![answer.into_bytes()]).await;
    let transport = ReqwestTransport::new().unwrap();
    assert_eq!(transport_error(transport.send(&request(&url)).await), TransportErrorKind::RedirectRefused);
    assert_eq!(seen.count(), 1);
    assert_eq!(target_seen.count(), 0, "the redirect was followed");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_without_a_request() {
    let url = url::Url::parse("http://auth.example.com/token").unwrap();
    let transport = ReqwestTransport::new().unwrap();
    assert_eq!(transport_error(transport.send(&request(&url)).await), TransportErrorKind::InsecureUrl);
}
