//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256) for any server:
//! [`AuthorizationRequest`] builds the URL to send the user to, [`PendingAuthorization`] keeps what
//! the callback is verified with, and [`CodeExchange`](super::CodeExchange) (in `code_exchange.rs`) trades the code for tokens, once,
//! and saves them.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::error::{CallbackError, OAuthErrorCode};
use crate::failure::{Error, Result};
use crate::support::{REDACTED, excerpt};
use crate::token::Scopes;

/// The parameters an [`AuthorizationRequest`] sets itself; an extra parameter may not take their
/// names (a second `state` could be the one a server reads).
const RESERVED: &[&str] =
    &["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"];

/// The authorization request of the authorization code grant, described as data: where to send the
/// user and what the URL carries. [`start`](Self::start) makes a [`PendingAuthorization`] with a
/// fresh `state` (and PKCE verifier).
///
/// The URL is `{authorize_url}?response_type=code&client_id=..&state=..&redirect_uri=..&scope=..
/// &code_challenge=..&code_challenge_method=S256` and then the extra parameters: `redirect_uri` and
/// `scope` only when set, the PKCE pair unless [`pkce(false)`](Self::pkce). A dialect that differs
/// says so here: WhiteBIT sends no `response_type` and names the client `clientId`.
///
/// ```
/// use tokensmith_core::Scopes;
/// use tokensmith_core::flows::AuthorizationRequest;
///
/// let request = AuthorizationRequest::new("https://auth.example.com/authorize".parse().unwrap(), "my-app")
///     .redirect_uri("http://127.0.0.1:8765/callback")
///     .scopes(Scopes::parse("read write"));
/// let pending = request.start();
/// let url = pending.url().as_str();
/// assert!(url.starts_with("https://auth.example.com/authorize?response_type=code&client_id=my-app&state="));
/// assert!(url.contains("&scope=read+write&code_challenge=") && url.ends_with("&code_challenge_method=S256"));
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    authorize_url: Url,
    client_id: String,
    client_id_param: String,
    send_response_type: bool,
    redirect_uri: Option<String>,
    scopes: Scopes,
    scope_separator: String,
    pkce: bool,
    extra: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// A request to `authorize_url` (the server's authorization endpoint) for `client_id`, with the
    /// RFC 6749 parameter names, no redirect URI (the server uses the registered one), no scope, and
    /// PKCE (S256) on.
    pub fn new(authorize_url: Url, client_id: impl Into<String>) -> Self {
        AuthorizationRequest {
            authorize_url,
            client_id: client_id.into(),
            client_id_param: "client_id".to_owned(),
            send_response_type: true,
            redirect_uri: None,
            scopes: Scopes::empty(),
            scope_separator: " ".to_owned(),
            pkce: true,
            extra: Vec::new(),
        }
    }

    /// The name of the client id parameter (default `client_id`; WhiteBIT: `clientId`).
    pub fn client_id_param(mut self, name: impl Into<String>) -> Self {
        self.client_id_param = name.into();
        self
    }

    /// Whether `response_type=code` is sent (default `true`, as RFC 6749 §4.1.1 requires; WhiteBIT
    /// takes none).
    pub fn send_response_type(mut self, send: bool) -> Self {
        self.send_response_type = send;
        self
    }

    /// The redirect URI (e.g. a [`LoopbackListener`](crate::flows)'s); it is kept in the pending
    /// authorization and, by default, sent again with the code (RFC 6749 §4.1.3).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The scopes to ask for, sent as `scope` when not empty.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The separator of the scopes in `scope` (default a space, RFC 6749 §3.3).
    pub fn scope_separator(mut self, separator: impl Into<String>) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// Whether to use PKCE with S256 (default `true`: RFC 9700 §2.1.1 recommends it for every client).
    pub fn pkce(mut self, pkce: bool) -> Self {
        self.pkce = pkce;
        self
    }

    /// Adds a parameter after the standard ones (e.g. `prompt=consent`, `audience=..`). A name this
    /// request sets itself (`response_type`, `client_id`, `redirect_uri`, `scope`, `state`,
    /// `code_challenge`, `code_challenge_method`, or the [client id name](Self::client_id_param)) is
    /// ignored, with a warning: the request's own value stands.
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        if RESERVED.contains(&name.as_str()) || name == self.client_id_param {
            tracing::warn!(param = %name, "an authorization request sets this parameter itself; the extra one is ignored");
        } else {
            self.extra.push((name, value.into()));
        }
        self
    }

    /// The authorization endpoint.
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI, if one is set.
    pub fn get_redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// A new authorization: a fresh 256-bit `state` and, with PKCE, a fresh 64-character code
    /// verifier, both from the operating system's CSPRNG (through `rand`'s thread-local generator).
    pub fn start(&self) -> PendingAuthorization {
        let state = random_base64url(STATE_BYTES);
        let verifier = self.pkce.then(|| random_base64url(VERIFIER_BYTES));
        self.start_with(state, verifier)
    }

    /// An authorization with the given state and verifier (tests use fixed values).
    pub(crate) fn start_with(&self, state: String, verifier: Option<String>) -> PendingAuthorization {
        let mut url = self.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            if self.send_response_type {
                query.append_pair("response_type", "code");
            }
            query.append_pair(&self.client_id_param, &self.client_id).append_pair("state", &state);
            if let Some(uri) = &self.redirect_uri {
                query.append_pair("redirect_uri", uri);
            }
            if !self.scopes.is_empty() {
                query.append_pair("scope", &self.scopes.join(&self.scope_separator));
            }
            if let Some(v) = &verifier {
                query.append_pair("code_challenge", &pkce_challenge(v)).append_pair("code_challenge_method", "S256");
            }
            // A client id name set after an extra parameter of that name still wins.
            for (name, value) in self.extra.iter().filter(|(name, _)| *name != self.client_id_param) {
                query.append_pair(name, value);
            }
        }
        PendingAuthorization {
            url,
            state,
            redirect_uri: self.redirect_uri.clone(),
            code_verifier: verifier.map(SecretString::from),
            used: AtomicBool::new(false),
        }
    }
}

/// Random bytes in a `state` (256 bits; the issue asks for at least 128).
const STATE_BYTES: usize = 32;
/// Random bytes in a PKCE code verifier: 48 bytes are 64 characters of base64url (RFC 7636 §4.1
/// allows 43 to 128).
const VERIFIER_BYTES: usize = 48;
/// Callbacks longer than this are refused without being parsed.
const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// `BASE64URL(SHA256(ASCII(code_verifier)))`: the PKCE S256 code challenge (RFC 7636 §4.2).
///
/// ```
/// // RFC 7636 Appendix B.
/// let challenge = tokensmith_core::flows::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// ```
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `n` bytes from the thread-local CSPRNG (ChaCha, seeded from the operating system), base64url.
fn random_base64url(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` is a valid PKCE code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
fn is_valid_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An authorization code from a verified callback. `Debug` does not show it.
#[derive(Clone)]
pub struct AuthorizationCode(SecretString);

impl AuthorizationCode {
    /// Wraps a code received some other way (e.g. by your own web handler that verified `state`).
    pub fn new(code: impl Into<String>) -> Self {
        AuthorizationCode(SecretString::from(code.into()))
    }

    /// The code.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorizationCode({REDACTED})")
    }
}

/// One authorization in progress: the URL to send the user to, and what is needed to verify the
/// callback and exchange its code.
///
/// Created by [`AuthorizationRequest::start`] (and by the providers built on it, e.g. WhiteBIT's
/// `authorize`). Keep it between the redirect and the callback, then hand it with the callback to
/// [`CodeExchange::complete`](super::CodeExchange::complete) (or call [`verify_callback`](PendingAuthorization::verify_callback)
/// yourself).
///
/// - `state` is 256 bits from a CSPRNG, compared in constant time on the callback.
/// - The PKCE code verifier is 64 characters from a CSPRNG; `Debug` does not show it.
/// - A callback is accepted once: a second one (a replay, or a double submit) is
///   [`CallbackError::AlreadyUsed`].
///
/// # Keeping it in a session
///
/// It is `Serialize`/`Deserialize` so that a web application can keep it in the user's session. The
/// serialized form **includes the PKCE code verifier in the clear** (the exchange needs it), so keep
/// it only where the session is private to the user (a server-side session, or an encrypted cookie),
/// and remove it from the session once the callback has been handled: the "used" mark lives in this
/// value, and a copy deserialized again from an old session would not carry it.
pub struct PendingAuthorization {
    url: Url,
    state: String,
    redirect_uri: Option<String>,
    code_verifier: Option<SecretString>,
    used: AtomicBool,
}

impl PendingAuthorization {
    /// The URL to send the user to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `state` sent in the URL (not a secret: it travels in the URL, but compare it only through
    /// [`verify_callback`](Self::verify_callback)).
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The redirect URI sent in the URL, if any.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// Whether this authorization uses PKCE (a code verifier is kept for the exchange).
    pub fn is_pkce(&self) -> bool {
        self.code_verifier.is_some()
    }

    /// The PKCE code challenge sent in the URL, if any.
    pub fn code_challenge(&self) -> Option<String> {
        self.code_verifier.as_ref().map(|v| pkce_challenge(v.expose_secret()))
    }

    /// The PKCE code verifier, sent with the code exchange.
    pub fn code_verifier(&self) -> Option<&SecretString> {
        self.code_verifier.as_ref()
    }

    /// Whether a callback was already accepted.
    pub fn is_used(&self) -> bool {
        self.used.load(Ordering::SeqCst)
    }

    /// Verifies the callback the provider redirected the user to and returns its code.
    ///
    /// `callback` is the full callback URL, or its query string (with or without the `?`), e.g. what
    /// `LoopbackListener::wait_for` (feature `loopback`) returns.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] with:
    /// - [`CallbackError::StateMismatch`] when `state` is missing or differs (compared in constant
    ///   time), for `error=` callbacks too: anyone can send one, so it proves nothing without the
    ///   state. This does not use up the authorization, so the genuine callback can still arrive;
    /// - [`CallbackError::AlreadyUsed`] when a callback was already accepted;
    /// - [`CallbackError::Denied`] for an `error=` callback with the right `state` (e.g.
    ///   `access_denied` when the user clicked Deny);
    /// - [`CallbackError::Malformed`] when there is no query, a parameter is repeated, or neither
    ///   `code` nor `error` is present.
    pub fn verify_callback(&self, callback: &str) -> Result<AuthorizationCode> {
        let params = callback_params(callback)?;
        if !state_matches(&params, &self.state) {
            return Err(CallbackError::StateMismatch.into());
        }
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let error = get("error").filter(|e| !e.is_empty());
        let code = get("code").filter(|c| !c.is_empty());
        if error.is_none() && code.is_none() {
            return Err(CallbackError::Malformed("the callback has neither `code` nor `error`".to_owned()).into());
        }
        if self.used.swap(true, Ordering::SeqCst) {
            return Err(CallbackError::AlreadyUsed.into());
        }
        match (error, code) {
            (Some(error), _) => Err(CallbackError::Denied {
                code: OAuthErrorCode::parse(error),
                description: get("error_description").map(|d| excerpt(d, 200)),
            }
            .into()),
            (None, Some(code)) => Ok(AuthorizationCode::new(code)),
            (None, None) => {
                Err(CallbackError::Malformed("the callback has neither `code` nor `error`".to_owned()).into())
            }
        }
    }
}

/// Whether `params` (from [`callback_params`], so with at most one `state`) carry a `state` equal
/// to `expected`, compared in constant time. An empty `expected` matches nothing.
fn state_matches(params: &[(String, String)], expected: &str) -> bool {
    let state = params.iter().find(|(n, _)| n == "state").map(|(_, v)| v.as_str());
    !expected.is_empty() && state.is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// Whether `callback` (a URL or query string) is well formed and carries the `expected` state: the
/// check [`PendingAuthorization::verify_callback`] starts with, for the loopback listener, which
/// must ignore callbacks that do not belong to the authorization it waits for.
#[cfg(feature = "loopback")]
pub(super) fn callback_state_matches(callback: &str, expected: &str) -> bool {
    callback_params(callback).is_ok_and(|params| state_matches(&params, expected))
}

/// The parameters of a callback URL or query string; refuses repeated parameters (RFC 6749 §3.1).
fn callback_params(callback: &str) -> Result<Vec<(String, String)>, Error> {
    let malformed = |m: &str| Error::Callback(CallbackError::Malformed(m.to_owned()));
    let text = callback.trim();
    if text.len() > MAX_CALLBACK_LEN {
        return Err(malformed("the callback is too long"));
    }
    // A fragment is never part of the query, and a `?` inside it does not start one: cut it first.
    let text = text.split_once('#').map_or(text, |(before, _)| before);
    let query = match text.split_once('?') {
        Some((_, query)) => query,
        None if text.contains("://") || text.starts_with('/') => {
            return Err(malformed("the callback URL has no query string"));
        }
        None => text,
    };
    if query.is_empty() {
        return Err(malformed("the callback has no parameters"));
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    for name in ["code", "state", "error", "error_description"] {
        if params.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(malformed(&format!("the callback repeats `{name}`")));
        }
    }
    Ok(params)
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("url", &self.url.as_str())
            .field("state", &self.state)
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &self.code_verifier.as_ref().map(|_| REDACTED))
            .field("used", &self.is_used())
            .finish()
    }
}

/// The serialized form of a [`PendingAuthorization`].
#[derive(Serialize, Deserialize)]
struct Persisted {
    url: String,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_verifier: Option<String>,
    #[serde(default)]
    used: bool,
}

impl Serialize for PendingAuthorization {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        Persisted {
            url: self.url.to_string(),
            state: self.state.clone(),
            redirect_uri: self.redirect_uri.clone(),
            code_verifier: self.code_verifier.as_ref().map(|v| v.expose_secret().to_owned()),
            used: self.is_used(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PendingAuthorization {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let p = Persisted::deserialize(deserializer)?;
        let url = Url::parse(&p.url).map_err(|e| D::Error::custom(format!("invalid authorization url: {e}")))?;
        if p.state.is_empty() {
            return Err(D::Error::custom("the state is empty"));
        }
        if p.code_verifier.as_deref().is_some_and(|v| !is_valid_verifier(v)) {
            return Err(D::Error::custom("the code verifier is not 43 to 128 characters of [A-Za-z0-9-._~]"));
        }
        Ok(PendingAuthorization {
            url,
            state: p.state,
            redirect_uri: p.redirect_uri,
            code_verifier: p.code_verifier.map(SecretString::from),
            used: AtomicBool::new(p.used),
        })
    }
}

#[cfg(test)]
#[path = "authorization_code_tests.rs"]
mod tests;
