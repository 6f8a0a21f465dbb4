//! Authorization server metadata: RFC 8414, then OpenID Connect Discovery 1.0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::endpoint::TokenEndpoint;
use crate::error::{Error, Result};
use crate::http::Transport;
use crate::request::TokenRequest;
use crate::style::{BasicAuth, RequestBody};
use crate::support::{check_url, excerpt};

/// The largest metadata document accepted (real ones are a few KiB).
pub(crate) const MAX_METADATA_BYTES: usize = 256 * 1024;
/// The most entries a list of the document may have.
const MAX_LIST_ITEMS: usize = 256;
/// The most issuers a [`MetadataCache`] keeps.
const MAX_CACHED_ISSUERS: usize = 64;

/// What an authorization server says about itself (RFC 8414 §2; OpenID Connect Discovery §3): the
/// fields tokensmith uses. Every endpoint URL in it passed the HTTPS rule (`https://`, or `http://`
/// to a loopback host unless insecure HTTP was allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerMetadata {
    /// The issuer identifier, identical to the one asked for.
    pub issuer: String,
    /// Where the document was read.
    pub document_url: Url,
    /// The authorization endpoint (authorization code flow).
    pub authorization_endpoint: Option<Url>,
    /// The token endpoint.
    pub token_endpoint: Option<Url>,
    /// The device authorization endpoint (RFC 8628).
    pub device_authorization_endpoint: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    pub revocation_endpoint: Option<Url>,
    /// The introspection endpoint (RFC 7662).
    pub introspection_endpoint: Option<Url>,
    /// The JSON Web Key Set of the server.
    pub jwks_uri: Option<Url>,
    /// `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`.
    pub response_types_supported: Vec<String>,
    /// `grant_types_supported` (RFC 8414's default when absent: `authorization_code` and `implicit`).
    pub grant_types_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported` (default when absent: `client_secret_basic`).
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `revocation_endpoint_auth_methods_supported`.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `code_challenge_methods_supported` (PKCE).
    pub code_challenge_methods_supported: Vec<String>,
}

impl ServerMetadata {
    /// A [`TokenEndpoint`] for the server's token endpoint, authenticating the way the server
    /// supports: HTTP Basic (`client_secret_basic`, the RFC 8414 default) when it lists it or lists
    /// nothing, else the credentials in the body (`client_secret_post`). Change the style with
    /// [`TokenEndpoint::credential_style`] for a public client or JWT client authentication.
    pub fn endpoint(&self) -> Result<TokenEndpoint> {
        let url = self.token_endpoint.clone().ok_or_else(|| {
            Error::config("issuer", format!("the metadata of `{}` names no token endpoint", self.issuer))
        })?;
        let methods = &self.token_endpoint_auth_methods_supported;
        let endpoint = TokenEndpoint::new(url);
        Ok(
            if methods.is_empty()
                || methods.iter().any(|m| m == "client_secret_basic")
                || !methods.iter().any(|m| m == "client_secret_post")
            {
                endpoint.credential_style(Arc::new(BasicAuth))
            } else {
                endpoint.credential_style(Arc::new(RequestBody))
            },
        )
    }

    /// Whether the server lists `grant` (say `urn:ietf:params:oauth:grant-type:device_code`) among its
    /// grant types. A server that lists none may still support it.
    pub fn supports_grant(&self, grant: &str) -> bool {
        self.grant_types_supported.iter().any(|g| g == grant)
    }
}

/// The document as sent: only the fields read, each checked after parsing.
#[derive(Deserialize)]
struct Raw {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    response_types_supported: Vec<String>,
    #[serde(default)]
    grant_types_supported: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    revocation_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
}

/// The URLs where `issuer`'s metadata may be, in the order tried: RFC 8414 §3.1 (the well-known
/// segment inserted between the host and the issuer's path), then OpenID Connect Discovery §4
/// (appended to the issuer).
pub(crate) fn well_known_urls(issuer: &Url) -> Result<[Url; 2]> {
    let path = issuer.path().trim_end_matches('/');
    let origin = issuer.origin().ascii_serialization();
    let parse = |text: String| {
        Url::parse(&text).map_err(|e| Error::config("issuer", format!("cannot build the metadata URL `{text}`: {e}")))
    };
    Ok([
        parse(format!("{origin}/.well-known/oauth-authorization-server{path}"))?,
        parse(format!("{origin}{path}/.well-known/openid-configuration"))?,
    ])
}

/// Checks an issuer identifier as given by the caller: an `https://` URL (or loopback `http://`)
/// without query or fragment (RFC 8414 §2).
fn parse_issuer(issuer: &str, allow_insecure_http: bool) -> Result<Url> {
    let url = Url::parse(issuer.trim()).map_err(|e| {
        Error::config(
            "issuer",
            format!("`{}` is not a URL ({e}); give the issuer as an https:// URL", excerpt(issuer, 80)),
        )
    })?;
    check_url(&url, allow_insecure_http).map_err(|e| Error::config("issuer", e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config("issuer", "an issuer identifier has no query or fragment (RFC 8414 §2)"));
    }
    Ok(url)
}

/// Whether the issuer in a document is the one asked for: identical (RFC 8414 §3.3), but for one
/// trailing `/` (a URL parser adds one to a bare origin).
fn same_issuer(asked: &str, found: &str) -> bool {
    let trim = |s: &str| s.trim().strip_suffix('/').map(str::to_owned).unwrap_or_else(|| s.trim().to_owned());
    trim(asked) == trim(found)
}

/// An issuer identifier for a message: not a secret, so not masked as [`excerpt`] would, but without
/// control characters and at most 200 characters.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Fetches `issuer`'s metadata: `/.well-known/oauth-authorization-server` (RFC 8414, the segment
/// inserted before the issuer's path), and when that is not found (an HTTP error status),
/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery).
///
/// The `issuer` in the document must equal the one asked for, else [`Error::Config`] naming the
/// `issuer` key: a server answering for another issuer is how a mix-up attack starts. A document
/// that is not JSON, lacks `issuer` or names an unusable endpoint is [`Error::InvalidResponse`]. The issuer and every endpoint
/// in the document must be `https://` or `http://` to a loopback host ([`Error::Config`] and
/// [`Error::InvalidResponse`]); [`MetadataCache::allow_insecure_http`] lifts that. Redirects are
/// never followed (the transport refuses them) and a document over 256 KiB is refused.
///
/// Nothing is cached here: keep the [`ServerMetadata`], or use a [`MetadataCache`].
pub async fn discover(transport: &dyn Transport, issuer: &str) -> Result<ServerMetadata> {
    discover_with(transport, issuer, false).await
}

async fn discover_with(transport: &dyn Transport, issuer: &str, allow_insecure_http: bool) -> Result<ServerMetadata> {
    let issuer_url = parse_issuer(issuer, allow_insecure_http)?;
    let mut not_found = Vec::new();
    for url in well_known_urls(&issuer_url)? {
        let response = transport.send(&TokenRequest::get(url.clone())).await.map_err(Error::Transport)?;
        if !(200..300).contains(&response.status) {
            tracing::debug!(
                host = url.host_str().unwrap_or(""),
                path = url.path(),
                status = response.status,
                "no metadata document here"
            );
            not_found.push(format!("{} answered HTTP {}", url.path(), response.status));
            continue;
        }
        if response.body.len() > MAX_METADATA_BYTES {
            return Err(Error::invalid_response(format!(
                "the metadata document at {url} has {} bytes, more than the limit of {MAX_METADATA_BYTES}",
                response.body.len()
            )));
        }
        return parse_metadata(&response.body, issuer, url, allow_insecure_http);
    }
    Err(Error::config(
        "issuer",
        format!(
            "no metadata document for `{}` ({}); check the issuer URL, or give the endpoints' URLs instead",
            excerpt(issuer, 120),
            not_found.join(", ")
        ),
    ))
}

/// Parses and checks a metadata document read at `document_url` for `asked` (the issuer).
pub(crate) fn parse_metadata(
    body: &[u8],
    asked: &str,
    document_url: Url,
    allow_insecure_http: bool,
) -> Result<ServerMetadata> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        Error::invalid_response(format!(
            "the metadata document at {document_url} is not a JSON object of the RFC 8414 fields: {e}"
        ))
    })?;
    let found = raw
        .issuer
        .ok_or_else(|| Error::invalid_response(format!("the metadata document at {document_url} has no `issuer`")))?;
    if !same_issuer(asked, &found) {
        return Err(Error::config(
            "issuer",
            format!(
                "the metadata document at {document_url} is for the issuer `{}`, not `{}` (RFC 8414 §3.3: they must be identical); check the issuer URL, and do not use this server's endpoints",
                shown(&found),
                shown(asked)
            ),
        ));
    }
    let endpoint = |name: &str, value: Option<String>| -> Result<Option<Url>> {
        let Some(text) = value else { return Ok(None) };
        let url = Url::parse(&text).map_err(|e| {
            Error::invalid_response(format!("the metadata's `{name}` is not a URL ({e}): `{}`", excerpt(&text, 120)))
        })?;
        check_url(&url, allow_insecure_http)
            .map_err(|e| Error::invalid_response(format!("the metadata's `{name}` cannot be used: {e}")))?;
        Ok(Some(url))
    };
    let list = |name: &str, items: Vec<String>| -> Result<Vec<String>> {
        if items.len() > MAX_LIST_ITEMS {
            return Err(Error::invalid_response(format!(
                "the metadata's `{name}` has {} entries, more than {MAX_LIST_ITEMS}",
                items.len()
            )));
        }
        Ok(items.into_iter().map(|item| excerpt(&item, 200)).collect())
    };
    Ok(ServerMetadata {
        issuer: found,
        authorization_endpoint: endpoint("authorization_endpoint", raw.authorization_endpoint)?,
        token_endpoint: endpoint("token_endpoint", raw.token_endpoint)?,
        device_authorization_endpoint: endpoint("device_authorization_endpoint", raw.device_authorization_endpoint)?,
        revocation_endpoint: endpoint("revocation_endpoint", raw.revocation_endpoint)?,
        introspection_endpoint: endpoint("introspection_endpoint", raw.introspection_endpoint)?,
        jwks_uri: endpoint("jwks_uri", raw.jwks_uri)?,
        scopes_supported: list("scopes_supported", raw.scopes_supported)?,
        response_types_supported: list("response_types_supported", raw.response_types_supported)?,
        grant_types_supported: list("grant_types_supported", raw.grant_types_supported)?,
        token_endpoint_auth_methods_supported: list(
            "token_endpoint_auth_methods_supported",
            raw.token_endpoint_auth_methods_supported,
        )?,
        revocation_endpoint_auth_methods_supported: list(
            "revocation_endpoint_auth_methods_supported",
            raw.revocation_endpoint_auth_methods_supported,
        )?,
        code_challenge_methods_supported: list(
            "code_challenge_methods_supported",
            raw.code_challenge_methods_supported,
        )?,
        document_url,
    })
}

/// Metadata documents kept per issuer for a time (default one hour), so that a process asks for
/// each issuer's document once: [`get`](MetadataCache::get) fetches on a miss or when the kept one
/// is older than the time to live. Failures are not kept. At most 64 issuers are kept; the oldest
/// goes first.
#[derive(Debug)]
pub struct MetadataCache {
    transport: Arc<dyn Transport>,
    ttl: Duration,
    allow_insecure_http: bool,
    entries: Mutex<HashMap<String, (tokio::time::Instant, Arc<ServerMetadata>)>>,
}

impl MetadataCache {
    /// A cache fetching through `transport`, keeping documents for an hour.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        MetadataCache {
            transport,
            ttl: Duration::from_secs(3600),
            allow_insecure_http: false,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long a document is kept.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Allows plain `http://` issuers and endpoints on hosts that are not loopback (default: refused).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// `issuer`'s metadata: the kept document when it is fresh, else fetched as [`discover`] does.
    pub async fn get(&self, issuer: &str) -> Result<Arc<ServerMetadata>> {
        let now = tokio::time::Instant::now();
        if let Some(kept) = self.lookup(issuer, now) {
            return Ok(kept);
        }
        let metadata = Arc::new(discover_with(self.transport.as_ref(), issuer, self.allow_insecure_http).await?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_CACHED_ISSUERS && !entries.contains_key(issuer) {
                let oldest = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
            entries.insert(issuer.to_owned(), (tokio::time::Instant::now(), Arc::clone(&metadata)));
        }
        Ok(metadata)
    }

    fn lookup(&self, issuer: &str, now: tokio::time::Instant) -> Option<Arc<ServerMetadata>> {
        let entries = self.entries.lock().ok()?;
        let (at, metadata) = entries.get(issuer)?;
        (now.checked_duration_since(*at)? < self.ttl).then(|| Arc::clone(metadata))
    }

    /// Forgets `issuer`'s document (say after its endpoints moved).
    pub fn invalidate(&self, issuer: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(issuer);
        }
    }
}
