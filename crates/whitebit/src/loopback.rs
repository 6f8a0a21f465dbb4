//! [`LoopbackListener`]: receives the authorization callback on 127.0.0.1 (RFC 8252 §7.3), for CLIs
//! and desktop applications.

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokensmith_core::{CallbackError, Error, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::PendingAuthorization;
use crate::authorize::callback_state_matches;

/// The request head (request line and headers) may be at most this long.
const MAX_HEAD: usize = 8 * 1024;
/// How long one connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handled at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

const DONE_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Authorization received</title></head>\n<body>\n<h1>Authorization received</h1>\n<p>You can close this tab and return to the application.</p>\n</body>\n</html>\n";

const WRONG_STATE: &str =
    "This callback is not for the authorization in progress (its state is missing or wrong); it was ignored.";

/// A one-shot HTTP listener on `127.0.0.1` that receives the authorization callback (RFC 8252 §7.3
/// "Loopback Interface Redirection").
///
/// Bind it, register (or pass) its [`redirect_uri`](Self::redirect_uri), send the user to the
/// authorization URL, then [`wait_for`](Self::wait_for) the pending authorization: it accepts
/// exactly one callback (a `GET /callback` with a `code` or `error` parameter and the authorization's
/// `state`), answers it with a small "you can close this tab" page, and returns the callback's query
/// string for [`WhitebitProvider::complete`](crate::WhitebitProvider::complete). Other requests (a
/// favicon, a browser's speculative connection, garbage) get a short error answer and the wait goes
/// on.
///
/// It listens on 127.0.0.1 only, so nothing on the network can reach it; but any web page the user
/// has open can make the browser send a request to it. A callback whose `state` is missing or is not
/// the authorization's (compared in constant time) is therefore answered `400` and ignored, `error=`
/// callbacks included, and the listener goes on waiting for the genuine one until its timeout.
///
/// ```no_run
/// use std::time::Duration;
/// use tokensmith_whitebit::{LoopbackListener, WhitebitProvider};
///
/// # async fn run() -> tokensmith_core::Result<()> {
/// let listener = LoopbackListener::bind(0)?; // a free port
/// let provider = WhitebitProvider::builder()
///     .client_id("my-client")
///     .client_secret("my-secret")
///     .redirect_uri(&listener.redirect_uri())
///     .build()?;
/// let pending = provider.authorize();
/// println!("open {}", pending.url());
/// let callback = listener.wait_for(&pending, Duration::from_secs(300)).await?;
/// let token = provider.complete(&pending, &callback).await?;
/// # let _ = token; Ok(()) }
/// ```
pub struct LoopbackListener {
    listener: std::net::TcpListener,
    port: u16,
}

impl fmt::Debug for LoopbackListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackListener").field("redirect_uri", &self.redirect_uri()).finish()
    }
}

impl LoopbackListener {
    /// The path the callback must arrive on.
    pub const PATH: &'static str = "/callback";

    /// Listens on `127.0.0.1:port`; `0` picks a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] (key `port`) when the port cannot be bound, e.g. because it is in use.
    pub fn bind(port: u16) -> Result<Self> {
        let bind_error = |e: std::io::Error| {
            Error::config(
                "port",
                format!("cannot listen on 127.0.0.1:{port} ({e}); choose another port, or 0 for a free one"),
            )
        };
        let listener = std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        Ok(LoopbackListener { listener, port })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The redirect URI to give the provider: `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, Self::PATH)
    }

    /// Waits, at most `timeout`, for the callback of `pending` (one with its `state`) and returns its
    /// query string (without `?`). Callbacks with another `state`, or none, are answered `400` and
    /// ignored.
    ///
    /// The future does not borrow `pending` (it can be spawned). It must run within a Tokio runtime
    /// with I/O and time enabled.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_for(
        self,
        pending: &PendingAuthorization,
        timeout: Duration,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.wait(pending.state(), timeout)
    }

    /// Waits, at most `timeout`, for the callback that carries `state` (the
    /// [`PendingAuthorization::state`] of the authorization in progress, e.g. one kept in a session)
    /// and returns its query string (without `?`). Callbacks with another `state`, or none, are
    /// answered `400` and ignored. [`wait_for`](Self::wait_for) takes the pending authorization
    /// itself.
    ///
    /// The future does not borrow `state` (it can be spawned). It must run within a Tokio runtime
    /// with I/O and time enabled.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] with [`CallbackError::TimedOut`] when no callback with `state` arrived in
    /// time; [`Error::Config`] (key `state`) when `state` is empty, (key `port`) when the listener
    /// cannot be used.
    pub fn wait(self, state: &str, timeout: Duration) -> impl Future<Output = Result<String>> + Send + 'static {
        let state: Arc<str> = Arc::from(state);
        self.wait_owned(state, timeout)
    }

    async fn wait_owned(self, state: Arc<str>, timeout: Duration) -> Result<String> {
        if state.is_empty() {
            return Err(Error::config(
                "state",
                "the expected state is empty; pass the state of the authorization in progress (PendingAuthorization::state)",
            ));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(|e| {
            Error::config("port", format!("cannot listen on 127.0.0.1:{} ({e}); choose another port", self.port))
        })?;
        let (sender, mut receiver) = mpsc::channel::<String>(1);
        let claimed = Arc::new(AtomicBool::new(false));
        // Dropped on return, which stops every connection still being handled.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Callback(CallbackError::TimedOut(timeout)));
                }
                Some(query) = receiver.recv() => {
                    tracing::debug!(port = self.port, "authorization callback received");
                    return Ok(query);
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        while connections.try_join_next().is_some() {}
                        if connections.len() < MAX_CONNECTIONS {
                            connections.spawn(handle(stream, state.clone(), claimed.clone(), sender.clone()));
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "loopback accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// `GET /callback?...` with `code` or `error`: the query.
    Callback(String),
    /// Anything else, answered with this status and message.
    Refused(u16, &'static str),
}

async fn handle(mut stream: TcpStream, state: Arc<str>, claimed: Arc<AtomicBool>, sender: mpsc::Sender<String>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(status)) => {
            respond(&mut stream, status, "The request is too large or malformed.").await;
            return;
        }
        // A silent connection (a browser's preconnect) or a broken one: close it.
        Err(_) => return,
    };
    match parse_head(&head) {
        Parsed::Callback(query) => {
            // Any web page can make the browser send a callback here: only the one with the
            // authorization's state counts, and nothing else may end the wait.
            if !callback_state_matches(&query, &state) {
                tracing::debug!("loopback: ignored a callback without the authorization's state");
                respond(&mut stream, 400, WRONG_STATE).await;
                return;
            }
            if claimed.swap(true, Ordering::SeqCst) {
                respond(&mut stream, 409, "The authorization callback was already received.").await;
                return;
            }
            respond_page(&mut stream, 200, DONE_PAGE).await;
            let _ = sender.send(query).await;
        }
        Parsed::Refused(status, message) => respond(&mut stream, status, message).await,
    }
}

/// Reads up to the end of the request head; `Err(status)` when it is too large or the connection
/// ends first.
async fn read_head(stream: &mut TcpStream) -> std::result::Result<Vec<u8>, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return if buf.is_empty() { Err(400) } else { Ok(buf) };
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
    }
}

/// Parses the request line of a request head: only `GET /callback?<query with code or error>
/// HTTP/1.x` is a callback.
fn parse_head(head: &[u8]) -> Parsed {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Parsed::Refused(400, "Malformed request.");
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Refused(400, "Malformed request.");
    };
    if !version.starts_with("HTTP/1.") {
        return Parsed::Refused(505, "Only HTTP/1.x is supported.");
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Parsed::Refused(400, "Malformed request target.");
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, query.split('#').next().unwrap_or_default()),
        None => (target, ""),
    };
    if path != LoopbackListener::PATH {
        return Parsed::Refused(404, "Not found.");
    }
    if method != "GET" {
        return Parsed::Refused(405, "The callback must be a GET request.");
    }
    let is_callback = url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "code" || k == "error");
    if !is_callback {
        return Parsed::Refused(400, "This is not an authorization callback: it has neither code nor error.");
    }
    Parsed::Callback(query.to_owned())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

async fn respond(stream: &mut TcpStream, status: u16, message: &str) {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{status} {reason}</title></head>\n<body>\n<p>{message}</p>\n</body>\n</html>\n",
        reason = reason(status)
    );
    respond_page(stream, status, &page).await;
}

async fn respond_page(stream: &mut TcpStream, status: u16, page: &str) {
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{page}",
        reason = reason(status),
        len = page.len()
    );
    // The browser may be gone already; the callback still counts.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_callbacks() {
        let p = |s: &str| parse_head(s.as_bytes());
        assert_eq!(
            p("GET /callback?code=abc&state=x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Parsed::Callback("code=abc&state=x".into())
        );
        assert_eq!(
            p("GET /callback?error=access_denied&state=x HTTP/1.0\r\n\r\n"),
            Parsed::Callback("error=access_denied&state=x".into())
        );
        assert_eq!(p("GET /favicon.ico HTTP/1.1\r\n\r\n"), Parsed::Refused(404, "Not found."));
        assert!(matches!(p("POST /callback?code=a HTTP/1.1\r\n\r\n"), Parsed::Refused(405, _)));
        assert!(matches!(p("GET /callback HTTP/1.1\r\n\r\n"), Parsed::Refused(400, _)));
        assert!(matches!(p("GET /callback?state=x HTTP/1.1\r\n\r\n"), Parsed::Refused(400, _)));
        assert!(matches!(p("GET /callback?code=a HTTP/2\r\n\r\n"), Parsed::Refused(505, _)));
        assert!(matches!(p("GET http://evil/callback?code=a HTTP/1.1\r\n\r\n"), Parsed::Refused(400, _)));
        assert!(matches!(p("GET /callback?code=a HTTP/1.1 extra\r\n\r\n"), Parsed::Refused(400, _)));
        assert!(matches!(parse_head(b"\xff\xfe garbage\r\n\r\n"), Parsed::Refused(400, _)));
        assert!(matches!(p(""), Parsed::Refused(400, _)));
    }

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
        let provider = crate::WhitebitProvider::builder()
            .client_id("cid")
            .client_secret("secret")
            .redirect_uri(&listener.redirect_uri())
            .build()
            .unwrap();
        let pending = provider.authorize();
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
}
