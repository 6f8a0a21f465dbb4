//! Where token sets (access token, expiry, refresh token) live between fetches and, for persistent
//! stores, between runs: what a [`TokenStore`] implementation names.
//!
//! The cache keeps the current token in memory for reads and goes to its store only around a fetch:
//! it loads before every fetch (so a token set saved by an earlier run, or by another process sharing
//! the store, is reused or refreshed from) and saves every new token set *before* handing it out (so a
//! rotated refresh token is never lost). The in-memory [`MemoryStore`] is the
//! default; a [`FileStore`] persists to a JSON file (and coordinates the processes sharing it); a
//! store shared by many processes (Redis) plugs in the same way.
//!
//! The trait and the in-memory store are at the crate root; this module has the rest:
//! [`Coordinator`] (with [`RefreshLock`] and [`LockGuard`]) for stores that coordinate refreshes
//! across processes, [`Versioned`], [`StoredToken`] (the serialized form persistent stores share),
//! [`store_key`], and the file store and its encryption ([`StoreEncryption`]).

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::token::{AccessToken, RefreshToken, Scopes};

pub(crate) mod memory;
pub(crate) mod token_store;

#[cfg(feature = "file-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "file-store")))]
pub use crate::file_store::FileStore;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use crate::seal::StoreEncryption;
// For this crate: `TokenStore` and `MemoryStore` are public at the crate root only (one path per item).
pub(crate) use memory::MemoryStore;
pub(crate) use token_store::TokenStore;

/// Cross-process coordination of refreshes, offered by a store shared by many processes through
/// [`TokenStore::coordination`].
///
/// # Contract
///
/// A store whose locks have no lease (OS file locks last until released or until their process
/// exits) ignores `lease`.
/// - [`lock_refresh`](Coordinator::lock_refresh) takes a lease-bound lock on the key, without
///   waiting, and returns [`RefreshLock::Acquired`] with a [`LockGuard`] carrying a *fencing number*
///   that is larger than any handed out before for the key, or [`RefreshLock::HeldElsewhere`].
/// - [`extend_lock`](Coordinator::extend_lock) renews the lease while the refresh runs; `Ok(false)`
///   when the lock was lost (the lease lapsed and someone else took it).
/// - [`save_fenced`](Coordinator::save_fenced) saves only if no token set with a larger fencing
///   number was saved meanwhile, and says whether it wrote: a process that lost its lock
///   mid-refresh can never overwrite a newer token set. A set written this way has the version
///   `guard.fence()` (see [`TokenStore::load_versioned`]).
/// - [`unlock`](Coordinator::unlock) releases the lock only if `guard` still holds it.
///
/// The cache ([`CachedProvider`](crate::CachedProvider)) calls these only around a fetch, never on a
/// cached read. When a coordinating store fails, the cache applies its failure policy: sources that
/// do not rotate their grant (client credentials) fetch on their own with a warning, if the store
/// [may be unreachable](Coordinator::may_be_unreachable) for a while; a rotating refresh token is
/// never refreshed without the lock.
#[async_trait]
pub trait Coordinator: Send + Sync + fmt::Debug {
    /// Tries to take the refresh lock on `key` for `lease`, without waiting.
    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock>;

    /// Renews a held lock for another `lease`; `Ok(false)` if `guard` no longer holds it.
    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool>;

    /// Saves `token` under `key` unless a token set with a larger fencing number than `guard`'s was
    /// saved meanwhile; returns whether it was written.
    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool>;

    /// Releases the lock if `guard` still holds it (compare-and-delete).
    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()>;

    /// Whether a failure of this store may be an outage that passes (a server briefly unreachable),
    /// so that a source that does not rotate its grant (client credentials) may fetch for its
    /// process alone meanwhile (default `false`; Redis: `true`). A store that says `false` fails the
    /// fetch with its error instead: a file that cannot be read or decrypted will not fix itself.
    fn may_be_unreachable(&self) -> bool {
        false
    }
}

/// The characters [`store_key`] escapes in a part: its separator, the escape character itself,
/// Redis Cluster's hash-tag braces, white space and control characters.
const KEY_PART: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b'/').add(b'%').add(b'{').add(b'}').add(b' ');

/// A store key made of `parts` (provider, token URL, client id, grant, ...), each percent-escaped and
/// joined with `/`, so that two different lists of parts never give the same key.
///
/// ```
/// use tokensmith_core::store::store_key;
///
/// let key = store_key(["django", "https://auth.example.test/o/token/", "my/client", "client_credentials", "read"]);
/// assert_eq!(key, "django/https:%2F%2Fauth.example.test%2Fo%2Ftoken%2F/my%2Fclient/client_credentials/read");
/// assert_ne!(store_key(["a/b", "c"]), store_key(["a", "b/c"]));
/// ```
pub fn store_key<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut key = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        key.extend(percent_encoding::utf8_percent_encode(part, KEY_PART));
    }
    key
}

/// A token set as a store holds it: the set and the version the store gave it when it was saved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Versioned {
    /// The token set.
    pub token: AccessToken,
    /// The store's version of the set: every later save of the same key has a larger one. `None`
    /// when the store keeps no versions.
    pub version: Option<u64>,
}

impl Versioned {
    /// `token` at `version`.
    pub fn new(token: AccessToken, version: Option<u64>) -> Self {
        Versioned { token, version }
    }
}

/// The outcome of [`Coordinator::lock_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshLock {
    /// This process holds the lock until the lease lapses or it unlocks.
    Acquired(LockGuard),
    /// Another process holds the lock: wait for the token set it will save.
    HeldElsewhere,
}

/// A held refresh lock: the random owner value that proves who holds it, and its fencing number.
#[derive(Clone, PartialEq, Eq)]
pub struct LockGuard {
    owner: String,
    fence: u64,
}

impl LockGuard {
    /// A guard for the lock taken with `owner` (a random value unique to this acquisition) and
    /// fencing number `fence`.
    pub fn new(owner: impl Into<String>, fence: u64) -> Self {
        LockGuard { owner: owner.into(), fence }
    }

    /// The random owner value stored in the lock.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The fencing number: larger than any handed out before for the key.
    pub fn fence(&self) -> u64 {
        self.fence
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The owner value is not a credential, but it is what lets a holder release the lock: keep it
        // out of logs anyway.
        f.debug_struct("LockGuard").field("owner", &crate::support::REDACTED).field("fence", &self.fence).finish()
    }
}

/// The serialized form of a token set, shared by every persistent store so that they agree on it.
///
/// It holds secrets in the clear: only stores write it, to places only the owner can read.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredToken {
    /// The access token.
    pub access_token: String,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The granted lifetime in seconds.
    pub lifetime: u64,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Scopes,
    /// The refresh token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Uninterpreted response fields.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &crate::support::REDACTED)
            .field("expires_at", &self.expires_at)
            .field("lifetime", &self.lifetime)
            .field("scopes", &self.scopes)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| crate::support::REDACTED))
            .finish_non_exhaustive()
    }
}

impl From<&AccessToken> for StoredToken {
    fn from(token: &AccessToken) -> Self {
        StoredToken {
            access_token: token.secret().expose_secret().to_owned(),
            expires_at: token.expires_at().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            lifetime: token.lifetime().as_secs(),
            scopes: token.scopes().clone(),
            refresh_token: token.refresh_token().map(|r| r.secret().expose_secret().to_owned()),
            extra: token.extra().clone(),
        }
    }
}

impl From<StoredToken> for AccessToken {
    /// A record whose expiry is out of range (a corrupted or hostile store) gives an expired token,
    /// refreshed from its refresh token if it has one: never a panic.
    fn from(stored: StoredToken) -> Self {
        let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(stored.expires_at)).unwrap_or_else(|| {
            tracing::warn!(
                expires_at = stored.expires_at,
                "a stored token set's expiry is out of range; treating it as expired"
            );
            UNIX_EPOCH
        });
        let mut builder = AccessToken::builder(stored.access_token)
            .expires_in(
                expires_at.checked_sub(Duration::from_secs(stored.lifetime)).unwrap_or(UNIX_EPOCH),
                Duration::from_secs(stored.lifetime),
            )
            .scopes(stored.scopes)
            .refresh_token(stored.refresh_token.map(RefreshToken::new))
            .extra(stored.extra);
        builder = builder.expires_at(expires_at);
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn a_memory_store_does_not_coordinate_and_a_guard_hides_its_owner() {
        assert!(MemoryStore::new().coordination().is_none());
        let guard = LockGuard::new("owner-value", 7);
        let debug = format!("{guard:?}");
        assert!(!debug.contains("owner-value") && debug.contains("fence: 7"), "{debug}");
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let store = MemoryStore::new();
        assert!(store.load("k").await.unwrap().is_none());
        let token = AccessToken::builder("at").refresh_token(Some(RefreshToken::new("rt"))).build();
        store.save("k", &token).await.unwrap();
        let loaded = store.load("k").await.unwrap().unwrap();
        assert!(loaded.same_token(&token));
        store.remove("k").await.unwrap();
        assert!(store.load("k").await.unwrap().is_none());
        assert!(!format!("{store:?}").contains("at\""));
    }

    #[tokio::test]
    async fn memory_store_versions_grow_with_every_save() {
        let store = MemoryStore::new();
        let token = AccessToken::builder("at").build();
        let first = store.save_versioned("k", &token).await.unwrap().unwrap();
        let other = store.save_versioned("other", &token).await.unwrap().unwrap();
        let second = store.save_versioned("k", &token).await.unwrap().unwrap();
        assert!(first < other && other < second, "{first} {other} {second}");
        assert_eq!(store.load_versioned("k").await.unwrap().unwrap().version, Some(second));
    }

    #[test]
    fn a_stored_record_with_an_out_of_range_expiry_is_expired_not_a_panic() {
        // Issue 15, item 2: `"expires_at": 18446744073709551615` in a token file panicked.
        let json = r#"{"access_token":"at","expires_at":18446744073709551615,"lifetime":18446744073709551615}"#;
        let token: AccessToken = serde_json::from_str::<StoredToken>(json).unwrap().into();
        assert!(token.expires_in(SystemTime::now()).is_zero(), "treated as expired");
        let _ = format!("{token:?}");
        let json = r#"{"access_token":"at","expires_at":1700000000,"lifetime":18446744073709551615}"#;
        let token: AccessToken = serde_json::from_str::<StoredToken>(json).unwrap().into();
        assert!(token.expires_in(SystemTime::now()).is_zero());
    }

    #[test]
    fn stored_token_round_trip_keeps_expiry_and_refresh() {
        let expires = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let token = AccessToken::builder("at")
            .expires_in(expires - Duration::from_secs(300), Duration::from_secs(300))
            .scopes(Scopes::parse("a,b"))
            .refresh_token(Some(RefreshToken::new("rt")))
            .build();
        let stored = StoredToken::from(&token);
        assert!(!format!("{stored:?}").contains("rt\""));
        let json = serde_json::to_string(&stored).unwrap();
        let back: AccessToken = serde_json::from_str::<StoredToken>(&json).unwrap().into();
        assert_eq!(back.expires_at(), expires);
        assert_eq!(back.lifetime(), Duration::from_secs(300));
        assert_eq!(back.scopes(), token.scopes());
        assert!(back.refresh_token().unwrap().same_as(&RefreshToken::new("rt")));
    }
}
