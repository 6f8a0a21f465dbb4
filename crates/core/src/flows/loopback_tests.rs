//! Unit tests of `loopback.rs`, moved from the WhiteBIT crate with the listener.

use super::*;

#[test]
fn parses_only_callbacks() {
    let p = |s: &str| parse_head(s.as_bytes());
    assert_eq!(
        p("GET /callback?code=abc&state=x HTTP/1.1\r\nHost: a\r\n\r\n"),
        Some(Parsed::Callback("code=abc&state=x".into()))
    );
    assert_eq!(
        p("GET /callback?error=access_denied&state=x HTTP/1.0\r\n\r\n"),
        Some(Parsed::Callback("error=access_denied&state=x".into()))
    );
    assert_eq!(p("GET /callback?code=a&state=x HTTP/1.1\n\n"), Some(Parsed::Callback("code=a&state=x".into())));
    assert_eq!(p("GET /favicon.ico HTTP/1.1\r\n\r\n"), Some(Parsed::Refused(404, "Not found.")));
    assert!(matches!(p("POST /callback?code=a HTTP/1.1\r\n\r\n"), Some(Parsed::Refused(405, _))));
    assert!(matches!(p("GET /callback HTTP/1.1\r\n\r\n"), Some(Parsed::Refused(400, _))));
    assert!(matches!(p("GET /callback?state=x HTTP/1.1\r\n\r\n"), Some(Parsed::Refused(400, _))));
    assert!(matches!(p("GET /callback?code=a HTTP/2\r\n\r\n"), Some(Parsed::Refused(505, _))));
    assert!(matches!(p("GET http://evil/callback?code=a HTTP/1.1\r\n\r\n"), Some(Parsed::Refused(400, _))));
    assert!(matches!(p("GET /callback?code=a HTTP/1.1 extra\r\n\r\n"), Some(Parsed::Refused(400 | 505, _))));
    assert!(matches!(p("GET /callback?code=a HTTP/1.1\r\nBad Header\r\n\r\n"), Some(Parsed::Refused(400, _))));
    assert!(matches!(parse_head(b"\xff\xfe garbage\r\n\r\n"), Some(Parsed::Refused(400, _))));
    let many = format!("GET /callback?code=a HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1));
    assert!(matches!(p(&many), Some(Parsed::Refused(431, _))));
    // Incomplete heads ask for more.
    assert_eq!(p(""), None);
    assert_eq!(p("GET /callback?code=a HTTP/1.1\r\nHost: a\r\n"), None);
}

fn shared(state: &str) -> (Arc<Shared>, mpsc::Receiver<String>) {
    let (sender, receiver) = mpsc::channel(1);
    (Arc::new(Shared { state: Arc::from(state), claimed: AtomicBool::new(false), sender }), receiver)
}

/// A connection that does not finish its request head is closed after HEAD_TIMEOUT (a few
/// seconds), not held for long.
#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_head_timeout() {
    assert!(HEAD_TIMEOUT <= Duration::from_secs(5));
    let (mut client, server) = tokio::io::duplex(4096);
    let (shared, _receiver) = shared("s");
    let waiting = Arc::new(AtomicBool::new(true));
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(handle(server, shared, waiting.clone()));
    client.write_all(b"GET /callback?code=x&state=s HTTP/1.1\r\nHost: 127.0.").await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed without an answer");
    assert_eq!(start.elapsed(), HEAD_TIMEOUT);
    task.await.unwrap();
    assert!(waiting.load(Ordering::SeqCst), "it never sent a head");
}

/// A client that sends a request but never reads the answer is dropped after WRITE_TIMEOUT.
#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_read_is_dropped_after_the_write_timeout() {
    let (mut client, server) = tokio::io::duplex(64);
    let (shared, _receiver) = shared("s");
    let waiting = Arc::new(AtomicBool::new(true));
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(handle(server, shared, waiting.clone()));
    client.write_all(b"GET /favicon.ico HTTP/1.1\r\n\r\n").await.unwrap();
    task.await.unwrap();
    assert_eq!(start.elapsed(), WRITE_TIMEOUT);
    assert!(!waiting.load(Ordering::SeqCst));
}

use tokio::net::TcpStream;

async fn send(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn accepts_one_callback_after_ignoring_noise() {
    let listener = LoopbackListener::bind(0).unwrap();
    let port = listener.port();
    assert_eq!(listener.redirect_uri(), format!("http://127.0.0.1:{port}/callback"));
    let waiter = tokio::spawn(listener.wait("s", Duration::from_secs(10)));
    // A silent connection (a browser preconnect) must not block the callback.
    let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(send(port, b"GET /favicon.ico HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
    assert!(send(port, b"\x00\x01garbage\r\n\r\n").await.starts_with("HTTP/1.1 400"));
    let huge = format!("GET /callback?code={} HTTP/1.1\r\n", "a".repeat(MAX_HEAD + 10));
    assert!(send(port, huge.as_bytes()).await.starts_with("HTTP/1.1 431"));
    let page = send(port, b"GET /callback?code=c0de&state=s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("You can close this tab"), "{page}");
    assert!(page.contains("Referrer-Policy: no-referrer"));
    assert_eq!(waiter.await.unwrap().unwrap(), "code=c0de&state=s");
    // The listener is gone: its port no longer accepts.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// 40 connections held open and silent (more than MAX_CONNECTIONS) do not lock out the
/// callback: the oldest idle ones are closed to make room, and the callback is answered at once,
/// well before any silent connection times out. Real sockets, real time: bounded at 2 s.
#[tokio::test]
async fn forty_silent_connections_do_not_lock_out_the_callback() {
    let listener = LoopbackListener::bind(0).unwrap();
    let port = listener.port();
    let waiter = tokio::spawn(listener.wait("s", Duration::from_secs(30)));
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let started = std::time::Instant::now();
    let bound = Duration::from_secs(2);
    assert!(bound < HEAD_TIMEOUT, "the callback must get through before any silent connection times out");
    let callback = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"GET /callback?code=c0de&state=s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let page = tokio::time::timeout(bound, callback).await.expect("the callback was not answered in time");
    let page = page.expect("the callback connection failed");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert_eq!(tokio::time::timeout(bound, waiter).await.unwrap().unwrap().unwrap(), "code=c0de&state=s");
    assert!(started.elapsed() < bound);
    // The oldest silent connection was closed to make room.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(bound, silent[0].read(&mut byte)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test(start_paused = true)]
async fn times_out_with_a_clear_error() {
    let listener = LoopbackListener::bind(0).unwrap();
    let err = listener.wait("s", Duration::from_secs(300)).await.unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::TimedOut(d)) if d == Duration::from_secs(300)), "{err:?}");
    assert!(err.to_string().contains("start the authorization again"), "{err}");
}

/// Any web page can make the browser send `http://127.0.0.1:PORT/callback?...`: callbacks
/// without the authorization's state are answered 400 and do not end the wait, `error=` ones
/// included; the genuine callback still gets through.
#[tokio::test]
async fn forged_callbacks_are_refused_and_the_wait_goes_on() {
    let listener = LoopbackListener::bind(0).unwrap();
    let port = listener.port();
    let waiter = tokio::spawn(listener.wait("the-state", Duration::from_secs(10)));
    for forged in [
        "code=x&state=wrong",
        "code=x",
        "code=x&state=",
        "code=x&state=the-stat",
        "code=x&state=the-statee",
        "code=x&state=the-state&state=wrong",
        "code=x&state=wrong&state=the-state",
        "error=access_denied",
        "error=access_denied&state=wrong",
    ] {
        let request = format!("GET /callback?{forged} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let page = send(port, request.as_bytes()).await;
        assert!(page.starts_with("HTTP/1.1 400 "), "{forged}: {page}");
        assert!(page.contains("state is missing or wrong"), "{forged}: {page}");
        assert!(!page.contains("the-state"), "{page}");
        assert!(!waiter.is_finished(), "{forged} ended the wait");
    }
    let page = send(port, b"GET /callback?error=access_denied&state=the-state HTTP/1.1\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert_eq!(waiter.await.unwrap().unwrap(), "error=access_denied&state=the-state");
}

#[tokio::test]
async fn wait_for_takes_the_state_of_the_pending_authorization() {
    let listener = LoopbackListener::bind(0).unwrap();
    let port = listener.port();
    let pending = super::super::AuthorizationRequest::new("https://as.example/authorize".parse().unwrap(), "cid")
        .redirect_uri(listener.redirect_uri())
        .start();
    let waiter = tokio::spawn(listener.wait_for(&pending, Duration::from_secs(10)));
    assert!(send(port, b"GET /callback?code=x&state=forged HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 400"));
    let genuine = format!("GET /callback?code=c0de&state={} HTTP/1.1\r\n\r\n", pending.state());
    assert!(send(port, genuine.as_bytes()).await.starts_with("HTTP/1.1 200"));
    let callback = waiter.await.unwrap().unwrap();
    assert!(pending.verify_callback(&callback).is_ok());
}

#[tokio::test]
async fn an_empty_expected_state_is_refused() {
    let listener = LoopbackListener::bind(0).unwrap();
    let err = listener.wait("", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(&err, Error::Config { key, .. } if key == "state"), "{err:?}");
}

#[test]
fn port_in_use_names_the_key() {
    let first = LoopbackListener::bind(0).unwrap();
    let err = LoopbackListener::bind(first.port()).unwrap_err();
    assert!(matches!(&err, Error::Config { key, .. } if key == "port"), "{err:?}");
}
