//! Access tokens, refresh tokens, scopes and client credentials.
//!
//! Every secret is held in a [`secrecy`] type and every type here that holds one has a hand-written
//! `Debug` that prints `[redacted]` in its place.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::error::{Error, Result};

use crate::support::REDACTED;

/// Client credentials: the client id and, for confidential clients, the client secret.
///
/// ```
/// use tokensmith_core::ClientCredentials;
///
/// let creds = ClientCredentials::new("my-client", "s3cr3t");
/// assert_eq!(creds.client_id(), "my-client");
/// assert!(!format!("{creds:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: Option<SecretString>,
}

impl ClientCredentials {
    /// Credentials of a confidential client.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<SecretString>) -> Self {
        ClientCredentials { client_id: client_id.into(), client_secret: Some(client_secret.into()) }
    }

    /// Credentials of a public client: a client id and no secret.
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientCredentials { client_id: client_id.into(), client_secret: None }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret, if this is a confidential client.
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// Checks that the client id is not empty (and, when `secret_required`, that a non-empty secret is
    /// present), naming the key at fault.
    pub fn validate(&self, secret_required: bool) -> Result<()> {
        if self.client_id.trim().is_empty() {
            return Err(Error::config("client_id", "the client id is empty; set it to the id the provider issued"));
        }
        if secret_required && self.client_secret.as_ref().is_none_or(|s| s.expose_secret().is_empty()) {
            return Err(Error::config(
                "client_secret",
                "the client secret is empty; set it to the secret the provider issued",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// A refresh token.
///
/// ```
/// use tokensmith_core::RefreshToken;
///
/// let rt = RefreshToken::new("rt-123");
/// assert_eq!(format!("{rt:?}"), "RefreshToken([redacted])");
/// ```
#[derive(Clone)]
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// Wraps a refresh token.
    pub fn new(token: impl Into<String>) -> Self {
        RefreshToken(SecretString::from(token.into()))
    }

    /// The secret value.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// Whether two refresh tokens are the same value (compared in constant time).
    pub fn same_as(&self, other: &RefreshToken) -> bool {
        bool::from(self.0.expose_secret().as_bytes().ct_eq(other.0.expose_secret().as_bytes()))
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshToken({REDACTED})")
    }
}

/// A set of scopes, in the order the provider gave them.
///
/// Providers separate scopes with spaces (RFC 6749 §3.3) or commas (WhiteBIT); [`Scopes::parse`]
/// accepts both.
///
/// ```
/// use tokensmith_core::Scopes;
///
/// let granted = Scopes::parse("general,users.read");
/// assert!(granted.contains("users.read"));
/// assert_eq!(granted.to_string(), "general users.read");
/// assert_eq!(granted.join(","), "general,users.read");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// No scope.
    pub fn empty() -> Self {
        Scopes(Vec::new())
    }

    /// Splits on spaces and commas, dropping empty items and duplicates.
    pub fn parse(text: &str) -> Self {
        text.split([' ', ',', '\t', '\n']).filter(|s| !s.is_empty()).collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether there is no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes joined with `separator`.
    pub fn join(&self, separator: &str) -> String {
        self.0.join(separator)
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out: Vec<String> = Vec::new();
        for s in iter {
            let s = s.into();
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
        Scopes(out)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join(" "))
    }
}

/// An access token with what tokensmith knows about it.
///
/// Cloning is cheap (an `Arc` clone). The token value is a [`SecretString`]; `Debug` and `Display`
/// never show it.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::AccessToken;
///
/// let token = AccessToken::builder("abc123")
///     .expires_at(SystemTime::now() + Duration::from_secs(900))
///     .build();
/// assert_eq!(token.token_type(), "Bearer");
/// assert!(!format!("{token:?}").contains("abc123"));
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<Inner>);

struct Inner {
    secret: SecretString,
    expires_at: SystemTime,
    lifetime: Duration,
    scopes: Scopes,
    refresh_token: Option<RefreshToken>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl AccessToken {
    /// Starts building a token from its secret value. Defaults: expires now + 1 hour, no scope, no
    /// refresh token.
    pub fn builder(secret: impl Into<String>) -> AccessTokenBuilder {
        AccessTokenBuilder {
            secret: SecretString::from(secret.into()),
            expires_at: None,
            lifetime: None,
            scopes: Scopes::empty(),
            refresh_token: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The token value.
    pub fn secret(&self) -> &SecretString {
        &self.0.secret
    }

    /// The token type; tokensmith only accepts bearer tokens and always sends `Bearer`.
    pub fn token_type(&self) -> &'static str {
        "Bearer"
    }

    /// When the token expires (the provider's `expires_in` counted from when the response arrived).
    pub fn expires_at(&self) -> SystemTime {
        self.0.expires_at
    }

    /// The lifetime the provider granted (`expires_in`, or the configured fallback).
    pub fn lifetime(&self) -> Duration {
        self.0.lifetime
    }

    /// Time left until expiry as seen from `now` (zero once expired). With an injected clock, pass
    /// its time; otherwise [`remaining`](AccessToken::remaining) reads the system clock.
    pub fn expires_in(&self, now: SystemTime) -> Duration {
        self.0.expires_at.duration_since(now).unwrap_or(Duration::ZERO)
    }

    /// Time left until expiry now, by the system clock (zero once expired): for a health route or a
    /// log line. The cache itself decides freshness on its own clock, with a safety margin, so a
    /// token [`cached_token`](crate::TokenProvider::cached_token) returns has more left than its
    /// refresh margin.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tokensmith_core::AccessToken;
    ///
    /// let token = AccessToken::builder("t").expires_in(SystemTime::now(), Duration::from_secs(900)).build();
    /// assert!(token.remaining() > Duration::from_secs(890));
    /// ```
    pub fn remaining(&self) -> Duration {
        self.expires_in(SystemTime::now())
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.0.expires_at
    }

    /// The granted scopes (the requested ones when the provider did not say, per RFC 6749 §5.1).
    pub fn scopes(&self) -> &Scopes {
        &self.0.scopes
    }

    /// The refresh token, if the provider issued one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.0.refresh_token.as_ref()
    }

    /// Response fields tokensmith does not interpret (e.g. Doorkeeper's `created_at`).
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0.extra
    }

    /// The value of an `Authorization` header carrying this token: `Bearer <token>`, marked sensitive
    /// so that `http`'s `Debug` does not print it.
    pub fn header_value(&self) -> Result<http::HeaderValue> {
        let mut value =
            http::HeaderValue::try_from(format!("Bearer {}", self.0.secret.expose_secret())).map_err(|_| {
                Error::invalid_response("the access token contains characters not allowed in an HTTP header")
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Whether `other` carries the same token value (constant time).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || bool::from(self.0.secret.expose_secret().as_bytes().ct_eq(other.0.secret.expose_secret().as_bytes()))
    }

    /// A builder pre-filled with this token's values, for deriving a changed copy.
    pub fn to_builder(&self) -> AccessTokenBuilder {
        AccessTokenBuilder {
            secret: self.0.secret.clone(),
            expires_at: Some(self.0.expires_at),
            lifetime: Some(self.0.lifetime),
            scopes: self.0.scopes.clone(),
            refresh_token: self.0.refresh_token.clone(),
            extra: self.0.extra.clone(),
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &REDACTED)
            .field("token_type", &self.token_type())
            .field("expires_at", &httpdate::fmt_http_date(self.0.expires_at))
            .field("lifetime", &self.0.lifetime)
            .field("scopes", &self.0.scopes)
            .field("refresh_token", &self.0.refresh_token.as_ref().map(|_| REDACTED))
            .field("extra_fields", &self.0.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The latest expiry a token can have: 9999-12-31T23:59:59Z, the last instant an HTTP date can show.
fn latest_expiry() -> SystemTime {
    UNIX_EPOCH.checked_add(Duration::from_secs(253_402_300_799)).unwrap_or(UNIX_EPOCH)
}

/// Builds an [`AccessToken`]; see [`AccessToken::builder`].
#[derive(Clone)]
pub struct AccessTokenBuilder {
    secret: SecretString,
    expires_at: Option<SystemTime>,
    lifetime: Option<Duration>,
    scopes: Scopes,
    refresh_token: Option<RefreshToken>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for AccessTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenBuilder")
            .field("token", &REDACTED)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| REDACTED))
            .finish_non_exhaustive()
    }
}

impl AccessTokenBuilder {
    /// Sets the expiry instant.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the expiry as `lifetime` after `now`, and records the lifetime.
    pub fn expires_in(mut self, now: SystemTime, lifetime: Duration) -> Self {
        self.expires_at = Some(now.checked_add(lifetime).unwrap_or_else(latest_expiry));
        self.lifetime = Some(lifetime);
        self
    }

    /// Sets the granted scopes.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets (or clears) the refresh token.
    pub fn refresh_token(mut self, refresh_token: Option<RefreshToken>) -> Self {
        self.refresh_token = refresh_token;
        self
    }

    /// Sets the uninterpreted response fields.
    pub fn extra(mut self, extra: serde_json::Map<String, serde_json::Value>) -> Self {
        self.extra = extra;
        self
    }

    /// Builds the token. An expiry before the Unix epoch or after the end of year 9999 (from a store,
    /// a response or a caller) is moved to that bound, and the lifetime is at most the time to it:
    /// no later arithmetic or formatting of them can overflow.
    pub fn build(self) -> AccessToken {
        // The system clock is read only for what the caller left out: a token from a store or from
        // `expires_in(now, ..)` (the injected clock's now) has both, so its build reads no clock.
        let expires_at = self
            .expires_at
            .unwrap_or_else(|| {
                let now = SystemTime::now();
                now.checked_add(Duration::from_secs(3600)).unwrap_or(now)
            })
            .clamp(UNIX_EPOCH, latest_expiry());
        let lifetime = self
            .lifetime
            .unwrap_or_else(|| expires_at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
            .min(latest_expiry().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO));
        AccessToken(Arc::new(Inner {
            secret: self.secret,
            expires_at,
            lifetime,
            scopes: self.scopes,
            refresh_token: self.refresh_token,
            extra: self.extra,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_expiries_are_bounded_and_debug_never_panics() {
        // Issue 15, item 2: `Debug` formatted the expiry as an HTTP date, which panics past year 9999.
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        for token in [
            AccessToken::builder("t").expires_at(far).build(),
            AccessToken::builder("t").expires_at(UNIX_EPOCH - Duration::from_secs(10)).build(),
            AccessToken::builder("t").expires_in(SystemTime::now(), Duration::MAX).build(),
        ] {
            let debug = format!("{token:?}");
            assert!(debug.contains("expires_at"), "{debug}");
            assert!(token.expires_at() <= latest_expiry() && token.expires_at() >= UNIX_EPOCH);
            let _ = token.expires_in(SystemTime::now());
        }
        let huge = AccessToken::builder("t").expires_in(SystemTime::now(), Duration::MAX).build();
        assert_eq!(huge.expires_at(), latest_expiry(), "a huge lifetime is the latest expiry, not none");
    }

    #[test]
    fn scopes_parse_spaces_and_commas() {
        let s = Scopes::parse("read, write  admin,read");
        assert_eq!(s.iter().collect::<Vec<_>>(), ["read", "write", "admin"]);
        assert!(Scopes::parse("").is_empty());
    }

    #[test]
    fn token_expiry_math() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = AccessToken::builder("x").expires_in(now, Duration::from_secs(900)).build();
        assert_eq!(t.lifetime(), Duration::from_secs(900));
        assert_eq!(t.expires_in(now), Duration::from_secs(900));
        assert!(!t.is_expired_at(now + Duration::from_secs(899)));
        assert!(t.is_expired_at(now + Duration::from_secs(900)));
        assert_eq!(t.expires_in(now + Duration::from_secs(1000)), Duration::ZERO);
    }

    #[test]
    fn header_value_is_sensitive_bearer() {
        let t = AccessToken::builder("abc").build();
        let v = t.header_value().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer abc");
        assert!(v.is_sensitive());
        assert!(AccessToken::builder("a\nb").build().header_value().is_err());
    }

    #[test]
    fn validate_names_the_key() {
        match ClientCredentials::new("", "x").validate(true) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "client_id"),
            other => panic!("unexpected {other:?}"),
        }
        match ClientCredentials::new("id", "").validate(true) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "client_secret"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(ClientCredentials::public("id").validate(false).is_ok());
    }
}
