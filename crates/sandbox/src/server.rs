//! The listener, the connection loop and the [`Sandbox`] handle.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::clients::{self, DemoClient};
use crate::config::{Dialect, SandboxConfig};
use crate::dialects::{self, Req, Route};
use crate::fault::{AnswerNames, Applied, ConnAction, Fault, STANDARD_NAMES};
use crate::record::{Extra, RecordedRequest};
use crate::reply::Reply;
use crate::spec::{ClientAuth, CustomDialect, DialectId, DialectSpec, RegisterError, prefixes_overlap};
use crate::state::{Custom, Shared};

/// Requests with a larger body are answered 413 without being processed.
const MAX_BODY: usize = 1024 * 1024;

/// How long shutdown waits for open connections to finish their request.
const GRACE: Duration = Duration::from_secs(1);

/// A running sandbox: a local HTTP server speaking the four dialects.
///
/// The handle is cheap to clone; all clones control the same server. The server
/// stops when [`shutdown`](Sandbox::shutdown) is called or when the last clone is
/// dropped, which frees its port.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.inner.addr).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox with the default configuration on an ephemeral port of
    /// 127.0.0.1. Must be called within a Tokio runtime.
    pub async fn start() -> io::Result<Sandbox> {
        Sandbox::start_with(SandboxConfig::default()).await
    }

    /// Starts a sandbox with `config` on 127.0.0.1. Must be called within a
    /// Tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the port cannot be bound, or with [`io::ErrorKind::InvalidInput`] when a dialect
    /// added with [`SandboxConfig::dialect`] cannot be registered (see [`Sandbox::register`]).
    pub async fn start_with(config: SandboxConfig) -> io::Result<Sandbox> {
        let specs = config.dialects.clone();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, addr.port()));
        for spec in specs {
            register(&shared, spec).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let router = Router::new().fallback(dispatch).with_state(Arc::clone(&shared));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, router, rx));
        tracing::debug!(%addr, "sandbox listening");
        Ok(Sandbox { inner: Arc::new(Handle { shared, addr, shutdown: tx, task: Mutex::new(Some(task)) }) })
    }

    /// The address the sandbox listens on (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Serves a dialect described by `spec` under its own prefix, from now on, next to the others:
    /// as strict as the built-in ones, recorded, counted and open to injected faults. Pass the
    /// handle it returns wherever the sandbox takes a dialect.
    ///
    /// ```
    /// use tokensmith_sandbox::{DialectSpec, Sandbox};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sandbox = Sandbox::start().await?;
    /// let acme = sandbox.register(DialectSpec::new("acme", "/acme").token_path("/oauth/grant"))?;
    /// assert_eq!(sandbox.token_url(acme), format!("http://{}/acme/oauth/grant", sandbox.addr()));
    /// assert_eq!(sandbox.credentials(acme).client_id, "acme-demo-client");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`RegisterError`] when the description is not usable (e.g. two request fields of the same
    /// name), or when its name or prefix is already served (the prefix of a built-in dialect or of
    /// one registered before, or a prefix that contains or lies below one of them).
    pub fn register(&self, spec: DialectSpec) -> Result<CustomDialect, RegisterError> {
        register(&self.inner.shared, spec)
    }

    /// The registered dialect called `name` (e.g. one added with [`SandboxConfig::dialect`]).
    pub fn custom_dialect(&self, name: &str) -> Option<CustomDialect> {
        let inner = self.inner.shared.lock();
        inner.customs.iter().position(|c| c.spec.name == name).map(|index| CustomDialect { index })
    }

    /// The dialect's prefix, token path and protected path.
    fn paths(&self, d: DialectId) -> (String, String, String) {
        match d {
            DialectId::Builtin(d) => (d.prefix().to_owned(), d.token_path().to_owned(), d.protected_path().to_owned()),
            DialectId::Custom(c) => match self.inner.shared.lock().custom(c) {
                Some(spec) => (spec.prefix.clone(), spec.token_path.clone(), spec.protected_path.clone()),
                None => (format!("/unregistered-dialect-{}", c.index), "/token".to_owned(), "/protected".to_owned()),
            },
        }
    }

    /// The dialect's base URL, e.g. `http://127.0.0.1:PORT/probit` (no trailing slash).
    pub fn base_url(&self, d: impl Into<DialectId>) -> String {
        format!("http://{}{}", self.inner.addr, self.paths(d.into()).0)
    }

    /// The dialect's token endpoint: `/token` (probit), `/o/token/`
    /// (generic-django), `/oauth/token` (ruby-style), `/oauth2/token` (whitebit), or a registered
    /// dialect's token path.
    pub fn token_url(&self, d: impl Into<DialectId>) -> String {
        let (prefix, token, _) = self.paths(d.into());
        format!("http://{}{prefix}{token}", self.inner.addr)
    }

    /// The dialect's protected resource, which needs a valid access token:
    /// `/api/exchange/v1/balance` (probit), `/payments/` (generic-django, scope
    /// `read`), `/api/v1/me` (ruby-style), `/api/v4/main-account/balance` (whitebit), or a
    /// registered dialect's protected path.
    pub fn protected_url(&self, d: impl Into<DialectId>) -> String {
        let (prefix, _, protected) = self.paths(d.into());
        format!("http://{}{prefix}{protected}", self.inner.addr)
    }

    /// WhiteBIT's authorization page, `{base}/auth/login`, without parameters.
    pub fn authorize_url(&self) -> String {
        format!("{}/auth/login", self.base_url(Dialect::Whitebit))
    }

    /// WhiteBIT's refresh endpoint, `{base}/oauth2/refresh_token`.
    pub fn refresh_url(&self) -> String {
        format!("{}/oauth2/refresh_token", self.base_url(Dialect::Whitebit))
    }

    /// The dialect's plain demo client.
    pub fn credentials(&self, d: impl Into<DialectId>) -> DemoClient {
        match d.into() {
            DialectId::Builtin(d) => clients::plain(d),
            DialectId::Custom(c) => self.inner.shared.lock().custom(c).map(|s| s.client.clone()).unwrap_or_default(),
        }
    }

    /// The dialect's second demo client, whose secret is
    /// [`SPECIAL_SECRET`](crate::SPECIAL_SECRET) (`: % + / & =` and spaces).
    pub fn special_credentials(&self, d: impl Into<DialectId>) -> DemoClient {
        match d.into() {
            DialectId::Builtin(d) => clients::special(d),
            DialectId::Custom(c) => self.inner.shared.lock().custom(c).map(|s| s.special_client()).unwrap_or_default(),
        }
    }

    /// How many requests reached `path` (relative to the dialect's base, e.g.
    /// `/token` or `/oauth2/refresh_token`), whatever their method or answer.
    pub fn request_count(&self, d: impl Into<DialectId>, path: &str) -> usize {
        self.inner.shared.lock().counts.get(&(d.into(), path.to_owned())).copied().unwrap_or(0)
    }

    /// The requests the dialect received, oldest first, with secrets redacted
    /// (see [`RecordedRequest`]). The log keeps the last 10 000 requests.
    pub fn requests(&self, d: impl Into<DialectId>) -> Vec<RecordedRequest> {
        let d = d.into();
        self.inner.shared.lock().log.iter().filter(|r| r.dialect == d).cloned().collect()
    }

    /// Makes the next `times` requests to `path` (relative to the dialect's base)
    /// meet `fault`, whatever their method. Faults injected on the same route
    /// queue up: the next request meets the oldest one still pending.
    pub fn inject(&self, d: impl Into<DialectId>, path: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.inner.shared.lock().faults.entry((d.into(), path.to_owned())).or_default().push_back((fault, times));
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.inner.shared.lock().faults.clear();
    }

    /// Changes the access token lifetime of a dialect for tokens issued from now on.
    pub fn set_lifetime(&self, d: impl Into<DialectId>, lifetime: Duration) {
        let mut inner = self.inner.shared.lock();
        match d.into() {
            DialectId::Builtin(d) => inner.lifetimes[d.index()] = lifetime,
            DialectId::Custom(c) => {
                if let Some(custom) = inner.customs.get_mut(c.index) {
                    custom.lifetime = lifetime;
                }
            }
        }
    }

    /// Moves the sandbox's clock forward: access tokens, codes, refresh tokens
    /// and the refresh rate limit see the time as `by` later, and Doorkeeper's
    /// `created_at` moves with it. Nothing sleeps.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.lock().clock_offset += by;
    }

    /// Stops the server for every clone of this handle and waits until open
    /// connections have finished (at most about a second) and the port is free.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown.send(true);
        let task = self.inner.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Registers a described dialect on the shared state, unless its name or prefix is taken.
fn register(shared: &Shared, spec: DialectSpec) -> Result<CustomDialect, RegisterError> {
    spec.validate()?;
    let mut inner = shared.lock();
    let builtins = Dialect::ALL.iter().map(|d| (d.name(), d.prefix()));
    let customs = inner.customs.iter().map(|c| (c.spec.name.as_str(), c.spec.prefix.as_str()));
    for (name, prefix) in builtins.chain(customs) {
        if name == spec.name {
            return Err(RegisterError::NameTaken { name: spec.name });
        }
        if prefixes_overlap(prefix, &spec.prefix) {
            return Err(RegisterError::PrefixTaken { prefix: spec.prefix, by: name.to_owned() });
        }
    }
    let index = inner.customs.len();
    inner.customs.push(Custom { lifetime: spec.lifetime, spec: Arc::new(spec) });
    Ok(CustomDialect { index })
}

/// Every request lands here: record it, apply a fault, route it to its dialect.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path().starts_with(crate::control::PREFIX) {
        let body = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
        return crate::control::handle(&shared, &parts.method, parts.uri.path(), parts.uri.query(), &body)
            .into_response();
    }
    let Some((route, path)) = Route::split(&shared, parts.uri.path()) else {
        return index(&shared, parts.uri.path());
    };
    let dialect = route.id();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let mut resp = Response::new(Body::from("request body too large or unreadable"));
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return resp;
        }
    };
    let query = parts.uri.query();
    let recorded = match &route {
        Route::Builtin(_) => RecordedRequest::capture(
            dialect,
            (parts.method.as_str(), path, query),
            &parts.headers,
            &body,
            &Extra::default(),
        ),
        Route::Custom(_, spec) => {
            let fields: Vec<&str> = match &spec.client_auth {
                ClientAuth::Body { secret, .. } => vec![secret.as_str()],
                _ => Vec::new(),
            };
            let extra = Extra { fields: &fields, secrets: &[spec.client.client_secret.as_str()] };
            RecordedRequest::capture(dialect, (parts.method.as_str(), path, query), &parts.headers, &body, &extra)
        }
    };
    let fault = {
        let mut inner = shared.lock();
        inner.record(recorded);
        inner.take_fault(dialect, path)
    };
    let mut rewrite = None;
    match fault.map(|f| f.apply(&route, shared.port)) {
        None => {}
        Some(Applied::Replace(resp)) => return resp,
        Some(Applied::Delay(d)) => tokio::time::sleep(d).await,
        Some(Applied::Rewrite(f)) => rewrite = Some(f),
    }
    let req = Req { method: &parts.method, path, query, headers: &parts.headers, body: &body };
    let mut reply = dialects::handle(&shared, &route, &req);
    if let Some(f) = rewrite {
        let lifetime = shared.lock().lifetime(dialect).as_secs();
        let names = match &route {
            Route::Builtin(_) => STANDARD_NAMES,
            Route::Custom(_, spec) => AnswerNames {
                envelope: spec.envelope.as_deref(),
                access_token: &spec.access_token_field,
                expires_in: &spec.lifetime_field,
                token_type: spec.token_type_field.as_deref(),
            },
        };
        f.rewrite(&mut reply, lifetime, &names);
    }
    reply.into_response()
}

fn index(shared: &Shared, path: &str) -> Response {
    let mut text = String::from("tokensmith sandbox\n\n");
    for d in Dialect::ALL {
        text.push_str(&format!("{:<15} http://127.0.0.1:{}{}{}\n", d.name(), shared.port, d.prefix(), d.token_path()));
    }
    for c in &shared.lock().customs {
        let spec = &c.spec;
        text.push_str(&format!(
            "{:<15} http://127.0.0.1:{}{}{}\n",
            spec.name, shared.port, spec.prefix, spec.token_path
        ));
    }
    let status = if path == "/" { 200 } else { 404 };
    let mut resp = Reply::empty(status).into_response();
    *resp.body_mut() = Body::from(text);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Accepts connections until told to stop (or until every handle is gone).
async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, router.clone(), stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, async { while conns.join_next().await.is_some() {} }).await;
    conns.shutdown().await;
}

/// Serves one connection with hyper, honouring [`ConnAction`] markers.
async fn serve_connection(stream: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let io = ConnIo { io: TokioIo::new(stream), reset: Arc::clone(&reset) };
    let inner = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req| {
        let inner = inner.clone();
        let reset = Arc::clone(&reset);
        async move {
            let resp = match hyper::service::Service::call(&inner, req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if resp.extensions().get::<ConnAction>() == Some(&ConnAction::Reset) {
                reset.store(true, Ordering::SeqCst);
                // An error from the service makes hyper drop the connection
                // without writing a response.
                return Err(AbortConnection);
            }
            Ok(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, conn.as_mut()).await;
        }
    }
}

/// Resolves once shutdown was asked for or every handle is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct AbortConnection;

impl fmt::Display for AbortConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sandbox fault: connection reset")
    }
}

impl std::error::Error for AbortConnection {}

/// A TCP stream that, when a reset was asked for, closes with RST instead of FIN.
struct ConnIo {
    io: TokioIo<TcpStream>,
    reset: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0 turns the close into a reset; with a zero timeout the
            // close never blocks, which is what the deprecation warns about.
            #[allow(deprecated)]
            let _ = self.io.inner().set_linger(Some(Duration::ZERO));
        }
    }
}

impl Read for ConnIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ConnIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
