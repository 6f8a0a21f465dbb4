//! [`LoopbackListener`]: receives the authorization callback on 127.0.0.1 (RFC 8252 §7.3), for CLIs
//! and desktop applications.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokensmith_core::{Error, Result, error::CallbackError};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use crate::PendingAuthorization;
use crate::authorize::callback_state_matches;

/// The request head (request line and headers) may be at most this long.
const MAX_HEAD: usize = 8 * 1024;
/// Headers in a request head; more are answered 431.
const MAX_HEADERS: usize = 64;
/// How long one connection may take to send its request head. A browser sends it at once; a
/// preconnected socket that stays silent longer is closed (the browser opens a new one when needed).
const HEAD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long writing the answer may take (a client that does not read is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections handled at once. When all are taken, a new connection closes the oldest one that
/// has not sent its request head yet, so that silent connections never lock out the callback.
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
/// Connections are bounded: each must send its request head (parsed by `httparse`, at most 8 KiB
/// and 64 headers) within 3 s and take its answer within 2 s. At most 32 are handled at once; when
/// all are taken, a new connection closes the oldest one that has sent nothing yet, so connections
/// held open and silent cannot lock the callback out.
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
        // A timeout from a caller can be anything: one past what an instant can hold waits "forever".
        let now = tokio::time::Instant::now();
        let deadline =
            now.checked_add(timeout).or_else(|| now.checked_add(Duration::from_secs(86_400 * 365 * 30))).unwrap_or(now);
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(|e| {
            Error::config("port", format!("cannot listen on 127.0.0.1:{} ({e}); choose another port", self.port))
        })?;
        let (sender, mut receiver) = mpsc::channel::<String>(1);
        let shared = Arc::new(Shared { state, claimed: AtomicBool::new(false), sender });
        // Dropped on return, which stops every connection still being handled.
        let mut connections = JoinSet::new();
        // The connections being handled, oldest first.
        let mut slots: VecDeque<Slot> = VecDeque::with_capacity(MAX_CONNECTIONS);
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
                        if !make_room(&mut slots) {
                            // Every slot is answering a request, each within WRITE_TIMEOUT.
                            continue;
                        }
                        let waiting = Arc::new(AtomicBool::new(true));
                        let abort = connections.spawn(handle(stream, shared.clone(), waiting.clone()));
                        slots.push_back(Slot { abort, waiting });
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

/// A connection being handled.
#[derive(Debug)]
struct Slot {
    abort: AbortHandle,
    /// Whether it is still waiting for the request head (an idle connection, which may be closed
    /// to make room).
    waiting: Arc<AtomicBool>,
}

/// Makes room for one more connection: forgets finished ones and, when all [`MAX_CONNECTIONS`] are
/// taken, closes the oldest one still waiting for its request head. `false` when every slot is busy
/// answering a request.
fn make_room(slots: &mut VecDeque<Slot>) -> bool {
    slots.retain(|slot| !slot.abort.is_finished());
    if slots.len() < MAX_CONNECTIONS {
        return true;
    }
    match slots.iter().position(|slot| slot.waiting.load(Ordering::SeqCst)) {
        Some(oldest_idle) => {
            if let Some(slot) = slots.remove(oldest_idle) {
                slot.abort.abort();
                tracing::debug!("loopback: closed the oldest idle connection to make room");
            }
            true
        }
        None => false,
    }
}

/// What every connection of one wait shares.
struct Shared {
    /// The `state` of the authorization waited for.
    state: Arc<str>,
    /// Whether the callback was accepted.
    claimed: AtomicBool,
    sender: mpsc::Sender<String>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("state", &tokensmith_core::support::REDACTED)
            .field("claimed", &self.claimed)
            .finish()
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

/// Handles one connection: reads its request head (within [`HEAD_TIMEOUT`]), answers it (within
/// [`WRITE_TIMEOUT`]) and hands a callback with the right state to the waiting listener.
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, shared: Arc<Shared>, waiting: Arc<AtomicBool>) {
    let parsed = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(parsed)) => parsed,
        // Closed or broken before a request head arrived: nothing to answer.
        Ok(None) => return,
        // A silent connection (a browser's preconnect, or one held open on purpose): close it.
        Err(_) => return,
    };
    waiting.store(false, Ordering::SeqCst);
    match parsed {
        Parsed::Callback(query) => {
            // Any web page can make the browser send a callback here: only the one with the
            // authorization's state counts, and nothing else may end the wait.
            if !callback_state_matches(&query, &shared.state) {
                tracing::debug!("loopback: ignored a callback without the authorization's state");
                answer(&mut stream, 400, &error_page(400, WRONG_STATE)).await;
                return;
            }
            if shared.claimed.swap(true, Ordering::SeqCst) {
                answer(&mut stream, 409, &error_page(409, "The authorization callback was already received.")).await;
                return;
            }
            // The browser may be gone already, or too slow to read: the callback still counts.
            answer(&mut stream, 200, DONE_PAGE).await;
            let _ = shared.sender.send(query).await;
        }
        Parsed::Refused(status, message) => {
            answer(&mut stream, status, &error_page(status, message)).await;
        }
    }
}

/// Reads until a whole request head is parsed; `None` when the connection ends or fails first.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Parsed> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
        if let Some(parsed) = parse_head(&buf) {
            return Some(parsed);
        }
        if buf.len() > MAX_HEAD {
            return Some(Parsed::Refused(431, "The request head is too large."));
        }
    }
}

/// Parses a request head with `httparse`: `None` while it is incomplete. Only `GET /callback?<query
/// with code or error> HTTP/1.x` is a callback.
fn parse_head(buf: &[u8]) -> Option<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let (method, target) = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return None,
        Ok(httparse::Status::Complete(_)) => (request.method.unwrap_or_default(), request.path.unwrap_or_default()),
        Err(httparse::Error::TooManyHeaders) => return Some(Parsed::Refused(431, "Too many request headers.")),
        Err(httparse::Error::Version) => return Some(Parsed::Refused(505, "Only HTTP/1.x is supported.")),
        Err(_) => return Some(Parsed::Refused(400, "Malformed request.")),
    };
    Some(classify(method, target))
}

/// Whether a parsed request line is the callback.
fn classify(method: &str, target: &str) -> Parsed {
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

/// Writes the answer, at most [`WRITE_TIMEOUT`].
async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, page: &str) {
    if tokio::time::timeout(WRITE_TIMEOUT, respond_page(stream, status, page)).await.is_err() {
        tracing::debug!(status, "loopback: the client did not read the answer in time");
    }
}

fn error_page(status: u16, message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{status} {reason}</title></head>\n<body>\n<p>{message}</p>\n</body>\n</html>\n",
        reason = reason(status)
    )
}

async fn respond_page<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, page: &str) {
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{page}",
        reason = reason(status),
        len = page.len()
    );
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
        let provider = crate::WhitebitProvider::builder()
            .client_id("cid")
            .client_secret("secret")
            .redirect_uri(listener.redirect_uri())
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
