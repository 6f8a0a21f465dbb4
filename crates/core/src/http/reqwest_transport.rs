//! [`ReqwestTransport`], the default [`Transport`] (feature `reqwest`), and the one classification of
//! `reqwest` errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{HttpResponse, Transport};
use crate::error::{Error, Result, TransportError, TransportErrorKind};
use crate::request::TokenRequest;
use crate::support::{check_url, excerpt};

/// The default transport, on `reqwest`.
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::http::ReqwestTransport;
///
/// let transport = ReqwestTransport::builder()
///     .connect_timeout(Duration::from_secs(5))
///     .max_body_bytes(64 * 1024)
///     .build()
///     .unwrap();
/// # let _ = transport;
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: Client,
    max_body_bytes: usize,
    allow_insecure_http: bool,
}

/// The `reqwest` client a transport sends through.
#[derive(Debug, Clone)]
enum Client {
    /// Its own client (its clones share its pool); `pool` tells clients apart.
    Own { client: reqwest::Client, pool: u64 },
    /// The process-wide client of the runtime that sends ([`shared_client`]).
    Shared,
}

/// How many runtimes' shared clients are kept (a program has one runtime, a test binary one per
/// running test); the least recently created goes first.
const SHARED_CLIENTS: usize = 16;

/// The process-wide client for the tokio runtime this is called on (one for calls outside a
/// runtime). A pooled connection runs on the runtime that opened it and dies with it; a client per
/// runtime means no request is sent on a connection whose runtime is shutting down ("dispatch task is
/// gone"), which a single client shared by a test binary's many runtimes would do.
fn shared_client() -> Result<reqwest::Client> {
    type Clients = Vec<(Option<tokio::runtime::Id>, reqwest::Client)>;
    static CLIENTS: Mutex<Clients> = Mutex::new(Vec::new());
    let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    let find = |clients: &Clients| clients.iter().find(|(id, _)| *id == runtime).map(|(_, c)| c.clone());
    if let Some(client) = find(&CLIENTS.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(client);
    }
    // Built outside the lock (it takes a few milliseconds); two first callers may both build one.
    let built = ReqwestTransportBuilder::default().client(reqwest::Client::builder())?;
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = find(&clients) {
        return Ok(client);
    }
    if clients.len() >= SHARED_CLIENTS {
        clients.remove(0);
    }
    clients.push((runtime, built.clone()));
    Ok(built)
}

/// Configures a [`ReqwestTransport`].
#[derive(Debug, Clone)]
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    timeout: Option<Duration>,
    max_body_bytes: usize,
    allow_insecure_http: bool,
    user_agent: String,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        ReqwestTransportBuilder {
            connect_timeout: Duration::from_secs(10),
            timeout: None,
            max_body_bytes: 1024 * 1024,
            allow_insecure_http: false,
            user_agent: concat!("tokensmith/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ReqwestTransportBuilder {
    /// Time allowed to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request and response, enforced by the transport itself (default:
    /// none here, because [`TokenClient`](crate::TokenClient) already bounds every attempt with
    /// [`RetryPolicy::attempt_timeout`](crate::RetryPolicy::attempt_timeout); set one when you call the
    /// transport directly).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The largest response body read (default 1 MiB); larger bodies are an error of kind
    /// [`TransportErrorKind::BodyTooLarge`].
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Allows plain `http://` to hosts that are not loopback. Credentials then cross the network in
    /// clear text: only for networks you trust.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The `User-Agent` sent (default `tokensmith/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Result<ReqwestTransport> {
        self.build_from(reqwest::Client::builder())
    }

    /// Builds the transport on a `reqwest` client builder of your own: a proxy, extra root
    /// certificates, a client certificate, a DNS resolver. The token rules still hold, because they are
    /// set here, over whatever `client` says: redirects are never followed, the connect timeout,
    /// user agent and optional overall timeout are this builder's, bodies are capped at
    /// [`max_body_bytes`](ReqwestTransportBuilder::max_body_bytes), and plain `http://` goes to
    /// loopback hosts only unless allowed.
    ///
    /// ```
    /// use tokensmith_core::http::{ReqwestTransport, reqwest};
    ///
    /// let corporate = reqwest::Client::builder().no_proxy(); // or .proxy(..), .add_root_certificate(..)
    /// let transport = ReqwestTransport::builder().build_from(corporate).unwrap();
    /// # let _ = transport;
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `transport` when `reqwest` cannot build the client.
    pub fn build_from(self, client: reqwest::ClientBuilder) -> Result<ReqwestTransport> {
        static POOLS: AtomicU64 = AtomicU64::new(0);
        let (max_body_bytes, allow_insecure_http) = (self.max_body_bytes, self.allow_insecure_http);
        Ok(ReqwestTransport {
            client: Client::Own { client: self.client(client)?, pool: POOLS.fetch_add(1, Ordering::Relaxed) },
            max_body_bytes,
            allow_insecure_http,
        })
    }

    /// The `reqwest` client with the token rules set over `client`.
    fn client(self, client: reqwest::ClientBuilder) -> Result<reqwest::Client> {
        install_crypto_provider();
        let mut client = client
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent);
        if let Some(timeout) = self.timeout {
            client = client.timeout(timeout);
        }
        client.build().map_err(|e| Error::config("transport", format!("the HTTP client could not be built: {e}")))
    }
}

/// With the `rustls-ring` feature (and not `rustls`, which brings aws-lc-rs), rustls needs a
/// process-wide crypto provider: ring is installed unless the program installed one.
fn install_crypto_provider() {
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls")))]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl ReqwestTransport {
    /// A builder with the defaults.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// The transport with all defaults, on a `reqwest` client of its own (its own connection pool and
    /// TLS configuration). Most programs want [`shared`](ReqwestTransport::shared) instead.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// The process-wide transport with all defaults: one `reqwest` client per tokio runtime (a
    /// program has one), created on first use, whose connection pool and TLS configuration every
    /// caller on that runtime shares. This is what a [`TokenClient`](crate::TokenClient) built without
    /// a transport uses, so that a thousand providers cost one pool, not a thousand (see
    /// `docs/performance.md`). Each returned value is a small handle with its own
    /// `allow_insecure_http` setting; timeouts, retries and the HTTPS rule of each provider still apply
    /// to each of its requests.
    ///
    /// The client is chosen when a request is sent, by the runtime sending it: a pooled connection
    /// runs on the runtime that opened it, so a test binary whose tests each run their own runtime
    /// against one server never sends on a connection whose runtime has shut down. The clients of the
    /// 16 most recent runtimes are kept.
    ///
    /// ```
    /// use tokensmith_core::http::ReqwestTransport;
    ///
    /// let a = ReqwestTransport::shared(false);
    /// let b = ReqwestTransport::shared(true);
    /// assert!(a.shares_pool_with(&b));
    /// assert!(!a.shares_pool_with(&ReqwestTransport::new().unwrap()));
    /// ```
    pub fn shared(allow_insecure_http: bool) -> Self {
        ReqwestTransport {
            client: Client::Shared,
            max_body_bytes: ReqwestTransportBuilder::default().max_body_bytes,
            allow_insecure_http,
        }
    }

    /// Whether `self` and `other` send through the same `reqwest` clients (the same connection pools).
    pub fn shares_pool_with(&self, other: &ReqwestTransport) -> bool {
        match (&self.client, &other.client) {
            (Client::Own { pool: a, .. }, Client::Own { pool: b, .. }) => a == b,
            (Client::Shared, Client::Shared) => true,
            _ => false,
        }
    }

    /// Whether plain `http://` to non-loopback hosts is allowed.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }
}

/// What kind of failure a `reqwest` error is: the one classification, for token requests and for
/// [`AuthorizedClient`](crate::AuthorizedClient)'s resource requests alike.
fn classify(e: &reqwest::Error) -> TransportErrorKind {
    if e.is_timeout() {
        return TransportErrorKind::Timeout;
    }
    if e.is_redirect() {
        return TransportErrorKind::RedirectRefused;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return TransportErrorKind::Tls;
        }
        source = s.source();
    }
    if e.is_builder() {
        TransportErrorKind::InvalidUrl
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_body() || e.is_decode() || e.is_request() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    }
}

/// A `reqwest` error as a [`TransportError`] whose message says `what` failed, at which host and
/// port, and why: the causes under reqwest's own "error sending request" (`tcp connect error:
/// Connection refused`, `dns error: failed to lookup address information: ...`), never the URL's
/// path or query (a resource URL's query may carry a secret).
pub(crate) fn transport_error(e: reqwest::Error, what: &str) -> TransportError {
    let kind = classify(&e);
    let at = e.url().and_then(|url| {
        let host = url.host_str()?;
        Some(match url.port_or_known_default() {
            Some(port) => format!(" ({host}:{port})"),
            None => format!(" ({host})"),
        })
    });
    let e = e.without_url();
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        // A wrapper often repeats its source's text, and hyper's client wraps everything in "client
        // error (Connect)": keep each message once, and the ones that say something.
        let says_something = !text.is_empty() && !text.starts_with("client error (");
        if says_something && !causes.iter().any(|c| c.contains(&text) || text.contains(c.as_str())) {
            causes.push(excerpt(&text, 200));
        }
        source = cause.source();
    }
    let why = if causes.is_empty() { e.to_string() } else { causes.join(": ") };
    TransportError::new(kind, format!("{what}{}: {why}", at.unwrap_or_default())).with_source(e)
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        check_url(request.url(), self.allow_insecure_http)?;
        let mut outgoing = reqwest::Request::new(request.method().clone(), request.url().clone());
        *outgoing.headers_mut() =
            request.wire_headers().map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))?;
        *outgoing.body_mut() = Some(request.wire_body_bytes().into());
        let client = match &self.client {
            Client::Own { client, .. } => client.clone(),
            Client::Shared => {
                shared_client().map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))?
            }
        };
        let mut response =
            client.execute(outgoing).await.map_err(|e| transport_error(e, "sending the token request failed"))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| excerpt(l, 120))
                .unwrap_or_default();
            return Err(TransportError::new(
                TransportErrorKind::RedirectRefused,
                format!("the token endpoint answered {status} redirecting to `{location}`"),
            ));
        }
        if let Some(len) = response.content_length() {
            if len > self.max_body_bytes as u64 {
                return Err(TransportError::new(
                    TransportErrorKind::BodyTooLarge,
                    format!("the response announces {len} bytes, more than the limit of {}", self.max_body_bytes),
                ));
            }
        }
        let headers = std::mem::take(response.headers_mut());
        let too_large = |max: usize| {
            TransportError::new(
                TransportErrorKind::BodyTooLarge,
                format!("the response body is larger than the limit of {max} bytes"),
            )
        };
        // A small body arrives in one chunk, kept as it is; more chunks are joined.
        let mut first: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| transport_error(e, "reading the token response failed"))?
        {
            let received =
                first.as_ref().map_or(0, Bytes::len).saturating_add(joined.len()).saturating_add(chunk.len());
            if received > self.max_body_bytes {
                return Err(too_large(self.max_body_bytes));
            }
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                None => joined.extend_from_slice(&chunk),
                Some(previous) => {
                    joined.extend_from_slice(&previous);
                    joined.extend_from_slice(&chunk);
                }
            }
        }
        let body = first.unwrap_or_else(|| Bytes::from(joined));
        Ok(HttpResponse { status, headers, body })
    }
}
