//! The authorization request and its callback: [`PendingAuthorization`], [`AuthorizationCode`] and
//! PKCE (RFC 7636, S256 only).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::support::excerpt;
use tokensmith_core::{
    Error, Result,
    error::{CallbackError, OAuthErrorCode},
};
use url::Url;

use tokensmith_core::support::REDACTED;

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
/// let challenge = tokensmith_whitebit::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
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
/// Created by [`WhitebitProvider::authorize`](crate::WhitebitProvider::authorize) (standard flow) or
/// [`authorize_pkce`](crate::WhitebitProvider::authorize_pkce) (Fast API Key flow). Keep it between the
/// redirect and the callback, then hand it to [`complete`](crate::WhitebitProvider::complete) (or call
/// [`verify_callback`](PendingAuthorization::verify_callback) yourself).
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
    /// A new authorization at `authorize_url` (`{base}/auth/login`) with a fresh state and, when
    /// `pkce`, a fresh code verifier.
    pub(crate) fn start(authorize_url: &Url, client_id: &str, redirect_uri: Option<&str>, pkce: bool) -> Self {
        let state = random_base64url(STATE_BYTES);
        let verifier = pkce.then(|| random_base64url(VERIFIER_BYTES));
        Self::with_values(authorize_url, client_id, redirect_uri, state, verifier)
    }

    /// An authorization with the given state and verifier (tests use fixed values).
    pub(crate) fn with_values(
        authorize_url: &Url,
        client_id: &str,
        redirect_uri: Option<&str>,
        state: String,
        verifier: Option<String>,
    ) -> Self {
        let mut url = authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("clientId", client_id).append_pair("state", &state);
            if let Some(uri) = redirect_uri {
                query.append_pair("redirect_uri", uri);
            }
            if let Some(v) = &verifier {
                query.append_pair("code_challenge", &pkce_challenge(v)).append_pair("code_challenge_method", "S256");
            }
        }
        PendingAuthorization {
            url,
            state,
            redirect_uri: redirect_uri.map(str::to_owned),
            code_verifier: verifier.map(SecretString::from),
            used: AtomicBool::new(false),
        }
    }

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

    /// Whether this is a PKCE (Fast API Key) authorization.
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
    /// [`LoopbackListener::wait_for`](crate::LoopbackListener::wait_for) returns.
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
pub(crate) fn callback_state_matches(callback: &str, expected: &str) -> bool {
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
mod tests {
    use super::*;

    const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn login() -> Url {
        Url::parse("https://whitebit.com/auth/login").unwrap()
    }

    fn pending() -> PendingAuthorization {
        PendingAuthorization::with_values(&login(), "cid", None, "the-state".into(), None)
    }

    fn callback_error(result: Result<AuthorizationCode>) -> CallbackError {
        match result {
            Err(Error::Callback(e)) => e,
            other => panic!("expected a callback error, got {other:?}"),
        }
    }

    #[test]
    fn rfc7636_appendix_b_s256() {
        assert_eq!(pkce_challenge(RFC7636_VERIFIER), RFC7636_CHALLENGE);
        let p = PendingAuthorization::with_values(
            &login(),
            "cid",
            Some("http://127.0.0.1:9/callback"),
            "s".into(),
            Some(RFC7636_VERIFIER.into()),
        );
        let query: Vec<(String, String)> = p.url().query_pairs().into_owned().collect();
        assert!(query.contains(&("code_challenge".into(), RFC7636_CHALLENGE.into())), "{query:?}");
        assert!(query.contains(&("code_challenge_method".into(), "S256".into())));
        assert_eq!(p.code_challenge().as_deref(), Some(RFC7636_CHALLENGE));
    }

    #[test]
    fn state_and_verifier_are_random_and_well_formed() {
        let a = PendingAuthorization::start(&login(), "cid", None, true);
        let b = PendingAuthorization::start(&login(), "cid", None, true);
        assert_ne!(a.state(), b.state());
        assert!(a.state().len() >= 22, "at least 128 bits of base64url");
        let (va, vb) = (a.code_verifier().unwrap().expose_secret(), b.code_verifier().unwrap().expose_secret());
        assert_ne!(va, vb);
        assert!(is_valid_verifier(va), "{}", va.len());
        assert_eq!(va.len(), 64);
        // Standard flow: no PKCE parameters.
        let plain = PendingAuthorization::start(&login(), "cid", None, false);
        assert!(!plain.is_pkce());
        assert!(!plain.url().as_str().contains("code_challenge"));
    }

    #[test]
    fn debug_redacts_the_verifier() {
        let p = PendingAuthorization::with_values(&login(), "cid", None, "st".into(), Some(RFC7636_VERIFIER.into()));
        let text = format!("{p:?}");
        assert!(!text.contains(RFC7636_VERIFIER), "{text}");
        assert!(text.contains(REDACTED));
        assert!(format!("{:?}", AuthorizationCode::new("abc-code")).contains(REDACTED));
        assert!(!format!("{:?}", AuthorizationCode::new("abc-code")).contains("abc-code"));
    }

    #[test]
    fn accepts_a_url_or_a_query_string() {
        for callback in [
            "http://127.0.0.1:8765/callback?code=c0de&state=the-state",
            "?code=c0de&state=the-state",
            "code=c0de&state=the-state",
            "  code=c0de&state=the-state#frag ",
            // A `?` in the fragment does not start a query.
            "code=c0de&state=the-state#?code=evil",
            "http://127.0.0.1:8765/callback?code=c0de&state=the-state#x?state=no",
        ] {
            let code = pending().verify_callback(callback).unwrap();
            assert_eq!(code.secret().expose_secret(), "c0de", "{callback}");
        }
    }

    #[test]
    fn state_mismatch_does_not_use_up_the_authorization() {
        let p = pending();
        for bad in ["code=c&state=other", "code=c", "code=c&state=", "code=c&state=the-stat"] {
            assert_eq!(callback_error(p.verify_callback(bad)), CallbackError::StateMismatch, "{bad}");
        }
        assert!(!p.is_used());
        assert!(p.verify_callback("code=c&state=the-state").is_ok());
    }

    #[test]
    fn second_callback_is_rejected() {
        let p = pending();
        assert!(p.verify_callback("code=c&state=the-state").is_ok());
        assert!(p.is_used());
        assert_eq!(callback_error(p.verify_callback("code=c&state=the-state")), CallbackError::AlreadyUsed);
        assert_eq!(callback_error(p.verify_callback("code=other&state=the-state")), CallbackError::AlreadyUsed);
    }

    #[test]
    fn error_callbacks_are_typed() {
        let p = pending();
        let e = callback_error(p.verify_callback("error=access_denied&error_description=User+said+no&state=the-state"));
        assert_eq!(
            e,
            CallbackError::Denied { code: OAuthErrorCode::AccessDenied, description: Some("User said no".into()) }
        );
        assert!(e.to_string().contains("access_denied"), "{e}");
        assert!(p.is_used());
    }

    /// Anyone (any web page the user visits) can send an `error=` callback: without the right
    /// `state` it is a mismatch and leaves the authorization usable for the genuine callback.
    #[test]
    fn error_callback_without_the_right_state_does_not_use_up_the_authorization() {
        let p = pending();
        for forged in ["error=access_denied", "error=access_denied&state=x", "error=server_error&state="] {
            assert_eq!(callback_error(p.verify_callback(forged)), CallbackError::StateMismatch, "{forged}");
            assert!(!p.is_used(), "{forged}");
        }
        assert!(p.verify_callback("code=c&state=the-state").is_ok());
    }

    #[test]
    fn malformed_callbacks() {
        for bad in [
            "",
            "http://127.0.0.1:1/callback",
            "/callback",
            "state=the-state",
            "code=&state=the-state",
            "code=a&code=b&state=the-state",
        ] {
            let p = pending();
            let e = p.verify_callback(bad);
            assert!(matches!(callback_error(e), CallbackError::Malformed(_)), "{bad}");
            assert!(!p.is_used(), "a malformed callback does not use up the authorization: {bad}");
        }
        let repeated_state = pending().verify_callback("code=a&state=the-state&state=the-state");
        assert!(matches!(callback_error(repeated_state), CallbackError::Malformed(_)));
        let long = format!("code={}&state=the-state", "a".repeat(MAX_CALLBACK_LEN));
        assert!(matches!(callback_error(pending().verify_callback(&long)), CallbackError::Malformed(_)));
    }

    #[test]
    fn serde_round_trip_keeps_everything() {
        let p = PendingAuthorization::with_values(
            &login(),
            "cid",
            Some("http://127.0.0.1:9/callback"),
            "st".into(),
            Some(RFC7636_VERIFIER.into()),
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(RFC7636_VERIFIER), "the verifier is kept, as documented");
        let back: PendingAuthorization = serde_json::from_str(&json).unwrap();
        assert_eq!(back.url(), p.url());
        assert_eq!(back.state(), "st");
        assert_eq!(back.redirect_uri(), Some("http://127.0.0.1:9/callback"));
        assert_eq!(back.code_challenge().as_deref(), Some(RFC7636_CHALLENGE));
        assert!(!back.is_used());
        back.verify_callback("code=c&state=st").unwrap();
        let used: PendingAuthorization = serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
        assert_eq!(callback_error(used.verify_callback("code=c&state=st")), CallbackError::AlreadyUsed);
        let bad = json.replace(RFC7636_VERIFIER, "short");
        assert!(serde_json::from_str::<PendingAuthorization>(&bad).is_err());
    }
}
