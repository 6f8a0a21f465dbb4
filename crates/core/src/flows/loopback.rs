//! [`LoopbackListener`]: receives the authorization callback on 127.0.0.1 (RFC 8252 §7.3), for CLIs
//! and desktop applications.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::CallbackError;
use crate::failure::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::authorization_code::{PendingAuthorization, callback_state_matches};

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
/// string for [`CodeExchange::complete`](super::CodeExchange::complete) (or a provider's own
/// `complete`, e.g. WhiteBIT's). Other requests (a
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
/// use tokensmith_core::flows::{AuthorizationRequest, CodeExchange, LoopbackListener};
/// use tokensmith_core::{ClientCredentials, TokenClient, TokenEndpoint};
///
/// # async fn run() -> tokensmith_core::Result<()> {
/// let listener = LoopbackListener::bind(0)?; // a free port
/// let pending = AuthorizationRequest::new("https://auth.example.com/authorize".parse().unwrap(), "my-app")
///     .redirect_uri(listener.redirect_uri())
///     .start();
/// println!("open {}", pending.url());
/// let callback = listener.wait_for(&pending, Duration::from_secs(300)).await?;
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap());
/// let client = TokenClient::builder("example", endpoint, ClientCredentials::new("my-app", "secret")).build()?;
/// let token = CodeExchange::new(&client).complete(&pending, &callback).await?;
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
        f.debug_struct("Shared").field("state", &crate::support::REDACTED).field("claimed", &self.claimed).finish()
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
#[path = "loopback_tests.rs"]
mod tests;
