//! A Redis [`TokenStore`] for tokensmith: one token set and one refresh per provider/client/scope key
//! across a whole fleet of processes.
//!
//! Use it when a service runs as many processes: without it each process fetches its own token
//! (multiplying load on rate-limited token endpoints), and with rotating refresh tokens (WhiteBIT)
//! two processes refreshing at once invalidate each other. With it:
//!
//! - each process still serves its in-memory cached token: Redis is consulted only when that copy
//!   needs refreshing, so a cached read costs what it costs without Redis;
//! - across all processes exactly one refresh of a key is in flight: a `SET NX PX` lock with a random
//!   owner value, released by a compare-and-delete script, with a short lease renewed while the
//!   request runs; the others wait for the token set it saves and adopt it;
//! - every lock carries a fencing number and every saved token set its version, so a process that
//!   lost its lock mid-refresh can never overwrite a newer token set;
//! - when Redis is unreachable, client-credentials providers fetch per process with a warning, and a
//!   rotating refresh token is never refreshed without the lock (a clear [`Error::Store`] instead);
//! - a granted lock marks its refresh *pending* until the new set is saved: a holder cut off from
//!   Redis after the provider answered keeps the others from refreshing with the spent refresh token
//!   until its save lands (or [`pending_timeout`](RedisStoreBuilder::pending_timeout) passes);
//! - after Redis loses data (restarted empty, flushed, failed over to a lagging replica, evicted keys),
//!   each process writes back the newest token set it knows (the newest version wins), a lock holder
//!   re-asserts its lock, the fence counter jumps far above every fence handed out, and no lock is
//!   granted for the [settle period](RedisStoreBuilder::settle_period), so that no rotated refresh
//!   token is lost or sent twice; a set whose save failed while Redis was unreachable is written back
//!   the same way (never over a newer one) once Redis answers again;
//! - TLS (`rediss://`, verified against the system's roots plus an optional private CA), ACL users,
//!   and Redis Cluster ([`cluster`](RedisStoreBuilder::cluster)).
//!
//! Design, key layout and failure policy: `docs/fleet.md`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use tokensmith_core::{CachedProvider, ClientCredentials, cache::ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
//! use tokensmith_redis::RedisStore;
//!
//! # async fn run() -> tokensmith_core::Result<()> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379/0").prefix("myapp:tokens").build()?;
//! let endpoint = TokenEndpoint::new("https://auth.example.com/oauth/token".parse().unwrap());
//! let client = TokenClient::builder("example", endpoint, ClientCredentials::new("id", "secret")).build()?;
//! let provider = CachedProvider::builder(ClientCredentialsSource::new(client, Scopes::parse("read")))
//!     .store(Arc::new(store))
//!     .build();
//! let token = provider.token().await?; // one token request for the whole fleet
//! # let _ = token; Ok(()) }
//! ```
//!
//! Every provider builder takes the store the same way (`.store(Arc::new(store))`), and the
//! `tokensmith` facade builds it from `store = { kind = "redis", url = "...", prefix = "..." }`.
//!
//! # Feature flags
//!
//! - `encryption` (off by default): `RedisStoreBuilder::encryption` seals every stored token set
//!   with AES-256-GCM, bound to its key (`tokensmith_core::store::StoreEncryption`).
//!
//! The store needs a tokio runtime (it is built on the `redis` crate's tokio support). TLS uses
//! rustls with aws-lc-rs, the provider reqwest uses; if no rustls crypto provider is installed for
//! the process when a `rediss://` store is built, the store installs aws-lc-rs's as the default.
//!
//! # Security
//!
//! Token sets are stored as JSON in the clear unless the store seals them (feature `encryption`,
//! `RedisStoreBuilder::encryption`; then a dump, a replica or a backup holds no token, and a record
//! copied under another key does not open). Either way protect the Redis server (bind it to a
//! private network, use TLS, require a password or a least-privilege ACL user, which go in the URL;
//! the exact `ACL SETUSER` line is in `docs/fleet.md`). Nothing
//! this crate logs or formats with `Debug` holds a token, and the URL's password is redacted.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use rand::Rng as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo as _, Script};
use serde::{Deserialize, Serialize};
use tokensmith_core::error::SharedError as BoxError;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::support::redact_url_password;
use tokensmith_core::{
    AccessToken, Error, Result, TokenStore, store::Coordinator, store::LockGuard, store::RefreshLock,
    store::StoredToken, store::Versioned,
};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "tokensmith";

/// How far the fence counter jumps after a data loss: far above any fencing number handed out before
/// it, so that no fence is ever handed out twice (fewer than 2^32 locks are taken between two checks).
const FENCE_JUMP: u64 = 1 << 32;

/// Redis's clock in milliseconds, for the pending marker (the same clock for every process).
const NOW_MS: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// Takes the lock if free and hands out a fencing number larger than any before it and than the
/// stored set's version, and marks a refresh pending at that fence.
///
/// KEYS: lock, fence, token, epoch, settle. ARGV: owner, lease ms, expected epoch ('' if none), new
/// epoch, known version, largest fence seen, pending timeout ms.
/// Returns `{status, fence, epoch}`; status: -1 this key lost data (the epoch changed, or the stored
/// version or fence counter is below what this process saw), 0 the lock is held, 1 granted, 2 granted
/// over a pending marker older than the pending timeout, 3 a refresh at fence `fence` is pending, 4
/// settling after a data loss.
const LOCK_SCRIPT: &str = r"
local e = redis.call('GET', KEYS[4])
if not e then
  if ARGV[3] ~= '' then return {-1, 0, ''} end
  redis.call('SET', KEYS[4], ARGV[4]); e = ARGV[4]
elseif ARGV[3] ~= '' and e ~= ARGV[3] then return {-1, 0, e} end
local v = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
local fc = tonumber(redis.call('GET', KEYS[2]) or '0')
if v < tonumber(ARGV[5]) or fc < tonumber(ARGV[6]) then return {-1, 0, e} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {4, 0, e} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0, e} end
local now = now_ms()
local status = 1
local p = tonumber(redis.call('HGET', KEYS[3], 'pending') or '0')
if p > v then
  local at = tonumber(redis.call('HGET', KEYS[3], 'pending_at') or '0')
  if now - at < tonumber(ARGV[7]) then return {3, p, e} end
  status = 2
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local f = redis.call('INCR', KEYS[2])
if f <= v then f = v + 1; redis.call('SET', KEYS[2], string.format('%d', f)) end
redis.call('HSET', KEYS[3], 'pending', string.format('%d', f), 'pending_at', string.format('%d', now))
return {status, f, e}
";

/// Checks one key for data loss and repairs it; reads its set.
///
/// KEYS: epoch, token, fence, settle, lock. ARGV: expected epoch ('' if none), new epoch, known
/// version (0 if none), known set, largest fence seen, settle ms, held owner ('' if none), held fence,
/// held lease ms left (0 if lapsed).
/// On a loss (the epoch changed; the stored version or fence counter is below what this process saw;
/// the held lock vanished before its lease): holds locks back for the settle period, writes back the
/// known set unless a set at least as new is there, re-asserts the held lock and its pending marker,
/// and jumps the fence counter far above anything known.
/// Returns `{lost, epoch, version, restored, reasserted, set}`.
const CHECK_SCRIPT: &str = r"
local e = redis.call('GET', KEYS[1])
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local fc = tonumber(redis.call('GET', KEYS[3]) or '0')
local known = tonumber(ARGV[3])
local seen = tonumber(ARGV[5])
local hf = tonumber(ARGV[8])
local lost = 0
if not e then
  redis.call('SET', KEYS[1], ARGV[2]); e = ARGV[2]
  if ARGV[1] ~= '' then lost = 1 end
elseif ARGV[1] ~= '' and e ~= ARGV[1] then lost = 1 end
if v < known or fc < seen then lost = 1 end
if ARGV[7] ~= '' and tonumber(ARGV[9]) > 0 and redis.call('EXISTS', KEYS[5]) == 0 then lost = 1 end
local restored, reasserted = 0, 0
if lost == 1 then
  redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[6])
  if v < known then
    redis.call('HSET', KEYS[2], 'v', ARGV[3], 'set', ARGV[4]); v = known; restored = 1
  end
  local p = tonumber(redis.call('HGET', KEYS[2], 'pending') or '0')
  if p > 0 and p <= v then redis.call('HDEL', KEYS[2], 'pending', 'pending_at') end
  if ARGV[7] ~= '' and v < hf then
    if tonumber(ARGV[9]) > 0 and redis.call('SET', KEYS[5], ARGV[7], 'NX', 'PX', ARGV[9]) then reasserted = 1 end
    p = tonumber(redis.call('HGET', KEYS[2], 'pending') or '0')
    if p < hf then
      redis.call('HSET', KEYS[2], 'pending', ARGV[8], 'pending_at', string.format('%d', now_ms()))
      reasserted = 1
    end
  end
  local top = math.max(known, seen, hf, v) + tonumber(ARGV[10])
  if fc < top then redis.call('SET', KEYS[3], string.format('%d', top)) end
end
return {lost, e, v, restored, reasserted, redis.call('HGET', KEYS[2], 'set') or false}
";

/// Renews the lease if the owner still holds the lock; if the lock is gone but the pending marker is
/// still this holder's (nobody took the lock since), takes it again.
/// KEYS: lock, token. ARGV: owner, lease ms, fence. Returns 1 renewed, 2 re-asserted, 0 lost.
const EXTEND_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1 end
if not cur and redis.call('HGET', KEYS[2], 'pending') == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 2
end
return 0
";

/// Compare-and-delete, and clears the pending marker if it is the unlocker's.
/// KEYS: lock, token. ARGV: owner, fence.
const UNLOCK_SCRIPT: &str = r"
if redis.call('HGET', KEYS[2], 'pending') == ARGV[2] then redis.call('HDEL', KEYS[2], 'pending', 'pending_at') end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Clears a pending marker that the stored version has caught up with (shared by the save scripts).
const CLEAR_PENDING: &str = r"
local function clear_pending(token, v)
  local p = tonumber(redis.call('HGET', token, 'pending') or '0')
  if p > 0 and p <= v then redis.call('HDEL', token, 'pending', 'pending_at') end
end
";

/// Writes the set only if no set with a version >= the fence is stored. KEYS: token. ARGV: fence, set.
const SAVE_FENCED_SCRIPT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local written = 0
if v < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'set', ARGV[2]); v = tonumber(ARGV[1]); written = 1
end
clear_pending(KEYS[1], v)
return written
";

/// An unconditional save (an authorization's first token set): takes a new fencing number so that the
/// set is newer than anything before it. KEYS: token, fence. ARGV: set. Returns the version.
const SAVE_SCRIPT: &str = r"
local f = redis.call('INCR', KEYS[2])
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if f <= v then f = v + 1; redis.call('SET', KEYS[2], string.format('%d', f)) end
redis.call('HSET', KEYS[1], 'v', string.format('%d', f), 'set', ARGV[1])
clear_pending(KEYS[1], f)
return f
";

/// Removes the set but leaves a tombstone: its version, raised above every fence handed out so far,
/// so that a process that knew the set does not take the removal for a data loss and write it back.
/// KEYS: token, fence. Returns the tombstone's version.
const REMOVE_SCRIPT: &str = r"
local f = redis.call('INCR', KEYS[2])
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if f <= v then f = v + 1; redis.call('SET', KEYS[2], string.format('%d', f)) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', string.format('%d', f))
return f
";

/// Writes back a set this process knows (its save failed, or Redis lost it), unless a set at least as
/// new is there; keeps the fence counter above it. KEYS: token, fence. ARGV: version, set.
const RESTORE_SCRIPT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local r = tonumber(ARGV[1])
local written = 0
if v < r then redis.call('HSET', KEYS[1], 'v', ARGV[1], 'set', ARGV[2]); written = 1; v = r end
clear_pending(KEYS[1], v)
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if f < r then redis.call('SET', KEYS[2], ARGV[1]) end
return written
";

/// The JSON stored in a token set's `set` field: the shared [`StoredToken`] form plus the expiry in
/// milliseconds (short-lived tokens need better than whole seconds).
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    token: StoredToken,
    expires_at_ms: u64,
}

impl Record {
    /// The value stored for `key`: the record as JSON, sealed when the store encrypts.
    fn encode(key: &str, token: &AccessToken, sealer: Option<&Sealer>) -> Result<SecretString> {
        let expires_at_ms = token
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        let record = Record { token: StoredToken::from(token), expires_at_ms };
        let json = serde_json::to_string(&record)
            .map(SecretString::from)
            .map_err(|e| Error::store(format!("the token set could not be serialized ({e})"), None))?;
        match sealer {
            Some(sealer) => sealer.seal(key, json.expose_secret().as_bytes()).map(SecretString::from),
            None => Ok(json),
        }
    }

    fn decode(key: &str, value: &str, sealer: Option<&Sealer>) -> Result<AccessToken> {
        // A record is a JSON object; anything else was sealed.
        let sealed = !value.trim_start().starts_with('{');
        let opened;
        let json = match (sealer, sealed) {
            (Some(sealer), true) => {
                opened = sealer.open(key, value)?;
                std::str::from_utf8(opened.expose_secret()).map_err(|_| {
                    Error::store(format!("the token set stored in Redis for `{key}` is not valid after decryption; delete the key and authorize again"), None)
                })?
            }
            (None, true) => {
                return Err(Error::store(
                    format!(
                        "the token set stored in Redis for `{key}` is encrypted, and this store has no encryption key: configure the key the other processes use (`[store] encryption_key`)"
                    ),
                    None,
                ));
            }
            (Some(_), false) => {
                return Err(Error::store(
                    format!(
                        "the token set stored in Redis for `{key}` is not encrypted, and this store encrypts: it was left untouched; delete the key and authorize again, or configure no encryption key"
                    ),
                    None,
                ));
            }
            (None, false) => value,
        };
        // serde_json's message may quote a value, which could be a token: report the position only.
        let record: Record = serde_json::from_str(json).map_err(|e| {
            Error::store(
                format!(
                    "the token set stored in Redis for `{key}` is not valid (line {}, column {}); it was left untouched: delete the key and authorize again",
                    e.line(),
                    e.column()
                ),
                None,
            )
        })?;
        let expires_at = UNIX_EPOCH.checked_add(Duration::from_millis(record.expires_at_ms)).unwrap_or(UNIX_EPOCH);
        Ok(AccessToken::from(record.token).to_builder().expires_at(expires_at).build())
    }
}

/// What seals stored records: the core's `StoreEncryption` with the `encryption` feature, and a type
/// with no values without it (so that a store never has one).
#[cfg(feature = "encryption")]
type Sealer = tokensmith_core::store::StoreEncryption;

/// Without the `encryption` feature no store seals its records.
#[cfg(not(feature = "encryption"))]
#[derive(Clone)]
enum Sealer {}

#[cfg(not(feature = "encryption"))]
impl Sealer {
    fn seal(&self, _key: &str, _plaintext: &[u8]) -> Result<String> {
        match *self {}
    }

    fn open(&self, _key: &str, _sealed: &str) -> Result<tokensmith_core::secrecy::SecretBox<Vec<u8>>> {
        match *self {}
    }
}

/// A token set this process saved or loaded, kept to write it back if Redis loses its data, or if
/// saving it failed.
struct Known {
    version: u64,
    json: SecretString,
    /// Whether Redis is known to hold it: false while a fenced save of it has failed.
    stored: bool,
}

/// A refresh lock this process holds (from `lock_refresh` until `unlock`), re-asserted with its pending
/// marker if Redis loses it.
struct Held {
    owner: String,
    fence: u64,
    /// When the lease lapses at the latest, by this process's clock (measured from before the command
    /// was sent, so never later than Redis's own expiry).
    until: Instant,
}

/// What this process knows about one store key.
#[derive(Default)]
struct KeyState {
    /// The key's data-loss marker as last seen.
    epoch: Option<String>,
    /// The newest token set this process saved or loaded.
    known: Option<Known>,
    /// The locks this process holds on the key (normally none or one).
    held: Vec<Held>,
    /// The largest fencing number or version this process has seen for the key: the fence counter
    /// can never be below it unless Redis lost data.
    seen: u64,
}

/// How the store reaches Redis: one server (or a replicated pair behind one address), or a cluster.
#[derive(Clone)]
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A connection: the single-server one reconnects by itself; the cluster one follows the cluster's
/// topology.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The connection in use and when it was built.
struct Slot {
    conn: Conn,
    built: Instant,
}

/// Where a CA certificate to trust comes from.
enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
}

/// Configures a [`RedisStore`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    watchdog: Duration,
    settle: Duration,
    pending_timeout: Duration,
    cluster: bool,
    ca: Option<CaSource>,
    sealer: Option<Sealer>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url_password(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("watchdog", &self.watchdog)
            .field("settle_period", &self.settle)
            .field("pending_timeout", &self.pending_timeout)
            .field("cluster", &self.cluster)
            .field("ca_certificate", &self.ca.is_some())
            .field("encrypted", &self.sealer.is_some())
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Seals every stored token set with `encryption` (AES-256-GCM, bound to its key), so that a
    /// Redis dump, a replica or a backup holds no token in the clear. Every process sharing the
    /// keys must use the same key. Needs the `encryption` feature.
    #[cfg(feature = "encryption")]
    pub fn encryption(mut self, encryption: tokensmith_core::store::StoreEncryption) -> Self {
        self.sealer = Some(encryption);
        self
    }

    /// The prefix of every key (default [`DEFAULT_PREFIX`]); give each application its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long connecting or one command may take before it fails (default 2 s). After an
    /// authentication or connection error the store builds a new connection, at most once per
    /// `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the store checks, in the background, whether Redis lost the data of a key this
    /// process uses (default 200 ms; one script call per key).
    pub fn watchdog_interval(mut self, interval: Duration) -> Self {
        self.watchdog = interval.max(Duration::from_millis(10));
        self
    }

    /// How long no refresh lock is granted on a key after Redis lost its data (default 15 s), while
    /// every process writes back the newest token set it knows and a lock holder re-asserts its lock.
    ///
    /// Make it **at least the lock lease plus the token request's timeout**
    /// (`RefreshPolicy::lock_lease`, default 5 s, plus the attempt timeout, default 10 s): a refresh
    /// that was in flight when Redis lost the lock then lands, or its holder re-asserts the lock,
    /// before anyone else may refresh.
    pub fn settle_period(mut self, period: Duration) -> Self {
        self.settle = period.max(Duration::from_millis(1));
        self
    }

    /// How long a refresh marked pending blocks the lock after its holder's lease lapsed (default
    /// 60 s).
    ///
    /// When a lock is granted, the refresh is marked pending on the key until the new token set is
    /// saved or the holder unlocks. A holder cut off from Redis after the provider answered still has
    /// the only valid refresh token; until it saves, nobody may refresh with the spent one. After this
    /// timeout a process assumes the holder died before sending, takes the lock with a warning and
    /// refreshes.
    pub fn pending_timeout(mut self, timeout: Duration) -> Self {
        self.pending_timeout = timeout;
        self
    }

    /// Talks to a Redis Cluster (default `false`): the URL is a seed node (`redis://` or
    /// `rediss://`), the store discovers the others and follows slot moves. Every key of one token
    /// set shares a hash tag, so each script runs on one node.
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// Trusts, in addition to the system's roots, the CA certificate(s) in this PEM file, for a
    /// `rediss://` URL whose server certificate a private CA signed. Read when the store is built.
    pub fn ca_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaSource::File(path.into()));
        self
    }

    /// Trusts, in addition to the system's roots, the CA certificate(s) in `pem` (see
    /// [`ca_certificate_file`](Self::ca_certificate_file)).
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// Builds the store. Nothing connects until the first command, so the store builds while Redis
    /// is down; a URL that cannot be parsed gives [`Error::Config`] naming `store.url`, a CA
    /// certificate that cannot be read one naming `store.ca_certificate`.
    pub fn build(self) -> Result<RedisStore> {
        let redacted = redact_url_password(&self.url);
        let bad_url = |e: redis::RedisError| {
            Error::config(
                "store.url",
                format!(
                    "`{redacted}` is not a Redis URL ({:?}); use redis://[user:password@]host[:port][/db], or rediss:// for TLS",
                    e.kind()
                ),
            )
        };
        if self.prefix.is_empty() {
            return Err(Error::config("store.prefix", "the key prefix is empty; leave it out for `tokensmith`"));
        }
        let info = self.url.as_str().into_connection_info().map_err(bad_url)?;
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        let certs = match &self.ca {
            None => None,
            Some(_) if !tls => {
                return Err(Error::config(
                    "store.ca_certificate",
                    format!("a CA certificate is set but `{redacted}` does not use TLS; use a rediss:// URL"),
                ));
            }
            Some(source) => Some(redis::TlsCertificates { client_tls: None, root_cert: Some(trust_roots(source)?) }),
        };
        if tls {
            install_crypto_provider();
        }
        let client = if self.cluster {
            let mut builder = redis::cluster::ClusterClient::builder(vec![info])
                .connection_timeout(self.timeout)
                .response_timeout(self.timeout)
                .retries(1);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            Client::Cluster(builder.build().map_err(bad_url)?)
        } else {
            match certs {
                Some(certs) => Client::Single(redis::Client::build_with_tls(info, certs).map_err(bad_url)?),
                None => Client::Single(redis::Client::open(info).map_err(bad_url)?),
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                url: redacted,
                prefix: self.prefix,
                timeout: self.timeout,
                watchdog: self.watchdog,
                settle: self.settle,
                pending_timeout: self.pending_timeout,
                slot: tokio::sync::Mutex::new(None),
                rebuild: AtomicBool::new(false),
                keys: Mutex::new(HashMap::new()),
                checking: tokio::sync::Mutex::new(()),
                watchdog_started: AtomicBool::new(false),
                scripts: Scripts::new(),
                sealer: self.sealer,
            }),
        })
    }
}

/// Makes aws-lc-rs (the provider reqwest uses) rustls's process-wide default unless one is installed:
/// the `redis` crate builds its TLS configuration with the default provider, and rustls cannot pick
/// one by itself when a build enables both `ring` and `aws-lc-rs`.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread installed one meanwhile; that one is used.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The system's roots of trust and the given CA certificate(s), as PEM (the form the `redis` crate
/// takes; with it, it trusts only what it is given).
fn trust_roots(source: &CaSource) -> Result<Vec<u8>> {
    let bad = |what: String| Error::config("store.ca_certificate", what);
    let pem = match source {
        CaSource::File(path) => std::fs::read(path)
            .map_err(|e| bad(format!("the CA certificate file `{}` cannot be read ({e})", path.display())))?,
        CaSource::Pem(pem) => pem.clone(),
    };
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("the CA certificate is not PEM (no `-----BEGIN CERTIFICATE-----` block)".to_owned()));
    }
    let mut all = Vec::new();
    let system = rustls_native_certs::load_native_certs();
    for cert in system.certs {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        all.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            all.extend_from_slice(line);
            all.push(b'\n');
        }
        all.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    all.extend_from_slice(&pem);
    all.push(b'\n');
    Ok(all)
}

struct Scripts {
    lock: Script,
    check: Script,
    extend: Script,
    unlock: Script,
    save_fenced: Script,
    save: Script,
    restore: Script,
    remove: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            lock: Script::new(&format!("{NOW_MS}{LOCK_SCRIPT}")),
            check: Script::new(&format!("{NOW_MS}{CHECK_SCRIPT}")),
            extend: Script::new(EXTEND_SCRIPT),
            unlock: Script::new(UNLOCK_SCRIPT),
            save_fenced: Script::new(&format!("{CLEAR_PENDING}{SAVE_FENCED_SCRIPT}")),
            save: Script::new(&format!("{CLEAR_PENDING}{SAVE_SCRIPT}")),
            restore: Script::new(&format!("{CLEAR_PENDING}{RESTORE_SCRIPT}")),
            remove: Script::new(REMOVE_SCRIPT),
        }
    }
}

/// A [`TokenStore`] in Redis that coordinates refreshes across every process sharing it. See the
/// [crate docs](crate) and `docs/fleet.md`.
///
/// # Keys
///
/// For a store key `K` (providers use `provider/client_id/scopes`) and prefix `P`; every key of one
/// token set carries the hash tag `{K}`, so a script touches one Redis Cluster slot only
/// (`tests/cluster.rs::a_one_node_cluster_locks_saves_loads_and_shares_a_refresh`):
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | `P:token:{K}` | hash | `v`: the set's version (the fencing number it was saved with); `set`: the token set as JSON (`tests/store.rs::token_sets_round_trip_under_the_documented_keys`); `pending`, `pending_at`: the fence of a refresh in flight and when (Redis time, ms) its lock was granted (`tests/faults.rs::the_lock_marks_a_refresh_pending_until_it_is_saved_or_unlocked`) |
/// | `P:lock:{K}` | string | the refresh lock: a random owner value, with a lease (`PX`) (`tests/store.rs::the_lock_is_exclusive_leased_and_released_by_its_owner_only`) |
/// | `P:fence:{K}` | string | the fencing counter; after a data loss it jumps 2^32 above anything known (`tests/faults.rs::a_refresh_in_flight_survives_redis_restarting_empty`) |
/// | `P:epoch:{K}` | string | a random marker; when it is missing or changed, Redis lost the key's data (`tests/outage.rs::a_rotated_refresh_token_survives_a_redis_restart`) |
/// | `P:settle:{K}` | string | present for the [settle period](RedisStoreBuilder::settle_period) after a data loss: no lock is granted meanwhile (`tests/faults.rs::a_refresh_in_flight_survives_redis_restarting_empty`) |
///
/// Cloning is cheap; clones share one connection (which reconnects by itself, and is rebuilt after an
/// authentication error).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    url: String,
    prefix: String,
    timeout: Duration,
    watchdog: Duration,
    settle: Duration,
    pending_timeout: Duration,
    slot: tokio::sync::Mutex<Option<Slot>>,
    /// Set by an authentication or connection error: the next command builds a new connection (at
    /// most once per `timeout`).
    rebuild: AtomicBool,
    keys: Mutex<HashMap<String, KeyState>>,
    /// Serializes a data-loss check of a key with releasing a lock, so that a lock released meanwhile
    /// is never re-asserted.
    checking: tokio::sync::Mutex<()>,
    watchdog_started: AtomicBool,
    scripts: Scripts,
    sealer: Option<Sealer>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .field("cluster", &matches!(self.inner.client, Client::Cluster(_)))
            .field("encrypted", &self.inner.sealer.is_some())
            .finish()
    }
}

fn random_value() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The outcome of the check script.
struct Checked {
    lost: bool,
    json: Option<String>,
    version: u64,
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS) with the
    /// default prefix.
    pub fn new(url: &str) -> Result<Self> {
        Self::builder(url).build()
    }

    /// Starts configuring a store at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: Duration::from_secs(2),
            watchdog: Duration::from_millis(200),
            settle: Duration::from_secs(15),
            pending_timeout: Duration::from_secs(60),
            cluster: false,
            ca: None,
            sealer: None,
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key holding the token set of store key `key` (see [the key table](RedisStore#keys)).
    pub fn token_key(&self, key: &str) -> String {
        self.inner.key("token", key)
    }

    /// The Redis key of the refresh lock of store key `key`.
    pub fn lock_key(&self, key: &str) -> String {
        self.inner.key("lock", key)
    }

    /// Checks that Redis answers (`PING`).
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.inner.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| self.inner.error("ping", e))?;
        Ok(())
    }

    async fn ready(&self) -> Result<Conn> {
        let conn = self.inner.conn().await?;
        self.start_watchdog();
        Ok(conn)
    }

    fn start_watchdog(&self) {
        if self.inner.watchdog_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.watchdog;
        tokio::spawn(async move {
            if let Some(inner) = weak.upgrade() {
                inner.check_server_settings().await;
            }
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { break };
                inner.write_back_unsaved().await;
                for key in inner.watched_keys() {
                    if let Err(e) = inner.check_key(&key).await {
                        tracing::trace!(error = %e, "the Redis token store's watchdog could not reach Redis");
                        break;
                    }
                }
            }
        });
    }
}

impl Inner {
    fn key(&self, kind: &str, key: &str) -> String {
        // The braces make every key of one token set hash to the same Redis Cluster slot.
        format!("{}:{kind}:{{{key}}}", self.prefix)
    }

    fn error(&self, action: &str, e: redis::RedisError) -> Error {
        let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"));
        let unreachable = e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped();
        if auth || unreachable {
            self.rebuild.store(true, Ordering::SeqCst);
        }
        let detail = e.to_string();
        let message = if detail.contains("invalid peer certificate") || detail.contains("UnknownIssuer") {
            format!(
                "Redis at {} presented a TLS certificate that is not trusted while trying to {action} (it is not signed by a trusted CA); if a private CA signed it, add that CA with RedisStoreBuilder::ca_certificate_file (or ca_certificate_pem)",
                self.url
            )
        } else if auth {
            format!(
                "Redis at {} refused the store's credentials while trying to {action} ({:?}); check the user and password in the URL, and that the ACL user is enabled and allowed the store's commands and keys (docs/fleet.md)",
                self.url,
                e.kind()
            )
        } else if unreachable {
            format!(
                "Redis at {} unreachable while trying to {action} ({:?}); check that Redis is running and reachable",
                self.url,
                e.kind()
            )
        } else {
            format!(
                "Redis at {} failed while trying to {action} ({:?}); check that Redis is running and reachable",
                self.url,
                e.kind()
            )
        };
        Error::store(message, Some(Arc::new(e) as BoxError))
    }

    async fn conn(&self) -> Result<Conn> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            let stale = self.rebuild.load(Ordering::SeqCst) && current.built.elapsed() >= self.timeout;
            if !stale {
                return Ok(current.conn.clone());
            }
            tracing::debug!(
                "rebuilding the Redis token store's connection after an authentication or connection error"
            );
        }
        self.rebuild.store(false, Ordering::SeqCst);
        let conn = match &self.client {
            Client::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Conn::Single(
                    ConnectionManager::new_lazy_with_config(client.clone(), config)
                        .map_err(|e| self.error("connect", e))?,
                )
            }
            Client::Cluster(client) => {
                // Counted as built even if it fails, so that an unreachable cluster is retried at
                // most once per timeout.
                let attempt = tokio::time::timeout(self.timeout, client.get_async_connection()).await;
                match attempt {
                    Ok(Ok(conn)) => Conn::Cluster(conn),
                    Ok(Err(e)) => return Err(self.error("connect", e)),
                    Err(_) => {
                        return Err(self.error(
                            "connect",
                            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                        ));
                    }
                }
            }
        };
        *slot = Some(Slot { conn: conn.clone(), built: Instant::now() });
        Ok(conn)
    }

    /// Warns once if Redis is configured so that the guarantees do not hold: an eviction policy that
    /// can drop keys, or no persistence. Errors are ignored (managed Redis often disables `CONFIG`).
    async fn check_server_settings(&self) {
        let Ok(mut conn) = self.conn().await else { return };
        let policy: redis::RedisResult<Vec<String>> =
            redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(&mut conn).await;
        if let Some(policy) = policy.ok().and_then(|p| p.get(1).cloned()) {
            if policy != "noeviction" {
                tracing::warn!(
                    maxmemory_policy = %policy,
                    "Redis's maxmemory-policy is not `noeviction`: under memory pressure it can evict refresh locks (they have a TTL) or token sets, and two processes may then refresh with the same refresh token; set `maxmemory-policy noeviction` (docs/fleet.md)"
                );
            }
        }
        let info: redis::RedisResult<String> = redis::cmd("INFO").arg("persistence").query_async(&mut conn).await;
        let save: redis::RedisResult<Vec<String>> =
            redis::cmd("CONFIG").arg("GET").arg("save").query_async(&mut conn).await;
        if let Ok(info) = info {
            let aof = info.lines().any(|l| l.trim() == "aof_enabled:1");
            let rdb = save.ok().map(|s| s.get(1).is_some_and(|v| !v.trim().is_empty()));
            if !aof && rdb == Some(false) {
                tracing::warn!(
                    "Redis persists nothing (no AOF, no RDB save points): a restart loses every token set and lock, and the fleet relies on its processes writing back what they know; enable `appendonly yes` (docs/fleet.md)"
                );
            }
        }
    }

    fn with_key<T>(&self, key: &str, f: impl FnOnce(&mut KeyState) -> T) -> Option<T> {
        self.keys.lock().ok().map(|mut keys| f(keys.entry(key.to_owned()).or_default()))
    }

    fn watched_keys(&self) -> Vec<String> {
        self.keys
            .lock()
            .map(|keys| {
                keys.iter()
                    .filter(|(_, s)| s.epoch.is_some() || s.known.is_some() || !s.held.is_empty())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks `key` for data loss and repairs it (see [`CHECK_SCRIPT`]); returns its stored set.
    async fn check_key(&self, key: &str) -> Result<Checked> {
        let _serial = self.checking.lock().await;
        let mut conn = self.conn().await?;
        let now = Instant::now();
        let (epoch, known_version, known_json, seen, held) = self
            .with_key(key, |s| {
                let (version, json) = match s.known.as_ref().filter(|k| k.stored) {
                    Some(k) => (k.version, k.json.expose_secret().to_owned()),
                    None => (0, String::new()),
                };
                s.held.retain(|h| h.until.checked_add(self.pending_timeout).is_none_or(|end| end > now));
                let held = s
                    .held
                    .iter()
                    .max_by_key(|h| h.fence)
                    .map(|h| (h.owner.clone(), h.fence, h.until.checked_duration_since(now).map_or(0, millis)));
                (s.epoch.clone(), version, json, s.seen, held)
            })
            .unwrap_or_default();
        let (owner, fence, lease_left) = held.clone().unwrap_or_default();
        let (lost, new_epoch, version, restored, reasserted, json): (i64, String, u64, i64, i64, Option<String>) = self
            .scripts
            .check
            .key(self.key("epoch", key))
            .key(self.key("token", key))
            .key(self.key("fence", key))
            .key(self.key("settle", key))
            .key(self.key("lock", key))
            .arg(epoch.as_deref().unwrap_or(""))
            .arg(random_value())
            .arg(known_version)
            .arg(known_json)
            .arg(seen)
            .arg(millis(self.settle))
            .arg(&owner)
            .arg(fence)
            .arg(lease_left)
            .arg(FENCE_JUMP)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("check a token set for data loss", e))?;
        let lost = lost == 1;
        if lost {
            tracing::warn!(
                key = %key,
                version,
                restored = restored == 1,
                reasserted_lock = reasserted == 1,
                settle_ms = millis(self.settle),
                "Redis lost data of this key (restarted empty, flushed, failed over to a lagging replica, or evicted): wrote back the newest token set this process knows, re-asserted its refresh lock if it holds one, and holds refresh locks back for the settle period"
            );
        }
        self.with_key(key, |s| {
            s.epoch = Some(new_epoch);
            if lost {
                s.seen = s.seen.max(known_version).max(fence).max(version).saturating_add(FENCE_JUMP);
            }
            s.seen = s.seen.max(version);
        });
        Ok(Checked { lost, json, version })
    }

    /// Writes back, for every key whose fenced save failed, the set this process knows, unless a set
    /// at least as new is there (the restore script compares versions, so a set another process saved
    /// since, with a later fence, is never overwritten).
    async fn write_back_unsaved(&self) {
        let unsaved: Vec<(String, u64, String)> = self
            .keys
            .lock()
            .map(|keys| {
                keys.iter()
                    .filter_map(|(key, s)| s.known.as_ref().filter(|k| !k.stored).map(|k| (key, k)))
                    .map(|(key, k)| (key.clone(), k.version, k.json.expose_secret().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if unsaved.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conn().await else { return };
        for (key, version, json) in unsaved {
            let written: redis::RedisResult<i64> = self
                .scripts
                .restore
                .key(self.key("token", &key))
                .key(self.key("fence", &key))
                .arg(version)
                .arg(json)
                .invoke_async(&mut conn)
                .await;
            match written {
                Ok(written) => {
                    self.mark_stored(&key, version);
                    tracing::warn!(key = %key, version, written = written == 1, "wrote back a token set whose save had failed while Redis was unreachable");
                }
                Err(e) => {
                    // Through `error`, like every Redis error here: it names the URL without its password.
                    let e = self.error("write back a token set", e);
                    tracing::trace!(key = %key, error = %e, "a token set whose save failed is still not written back");
                }
            }
        }
    }

    /// Keeps `json` as the set of `key` at `version` unless a newer one is known; `stored` says
    /// whether Redis is known to hold it.
    fn remember(&self, key: &str, version: u64, json: SecretString, stored: bool) {
        self.with_key(key, |s| {
            if s.known.as_ref().is_none_or(|k| k.version <= version) {
                s.known = Some(Known { version, json, stored });
            }
            s.seen = s.seen.max(version);
        });
    }

    /// Notes that Redis holds the set of `key` at `version` (or a newer one), if it is the known one.
    fn mark_stored(&self, key: &str, version: u64) {
        self.with_key(key, |s| {
            if let Some(k) = s.known.as_mut().filter(|k| k.version == version) {
                k.stored = true;
            }
        });
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        Ok(self.load_versioned(key).await?.map(|v| v.token))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.ready().await?;
        // The check reads the set; if the key lost data (the stored version is below the one this
        // process knows, or the epoch changed), it writes back the known set first.
        let checked = self.inner.check_key(key).await?;
        let Some(json) = checked.json else { return Ok(None) };
        let token = Record::decode(key, &json, self.inner.sealer.as_ref())?;
        self.inner.remember(key, checked.version, SecretString::from(json), true);
        Ok(Some(Versioned::new(token, Some(checked.version))))
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        let json = Record::encode(key, token, self.inner.sealer.as_ref())?;
        let mut conn = self.ready().await?;
        let version: u64 = self
            .inner
            .scripts
            .save
            .key(self.token_key(key))
            .key(self.inner.key("fence", key))
            .arg(json.expose_secret())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.error("save a token set", e))?;
        self.inner.remember(key, version, json, true);
        Ok(Some(version))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let mut conn = self.ready().await?;
        let version: u64 = self
            .inner
            .scripts
            .remove
            .key(self.token_key(key))
            .key(self.inner.key("fence", key))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.error("remove a token set", e))?;
        self.inner.with_key(key, |s| {
            s.known = None;
            s.seen = s.seen.max(version);
        });
        Ok(())
    }

    /// `PING`: Redis answers (with the configured credentials).
    async fn probe(&self) -> Result<()> {
        self.ping().await
    }

    /// Refreshes are coordinated across every process sharing the store.
    fn coordination(&self) -> Option<&dyn Coordinator> {
        Some(self)
    }
}

#[async_trait]
impl Coordinator for RedisStore {
    /// `true`: Redis may be unreachable for a while; client credentials are fetched per process
    /// meanwhile.
    fn may_be_unreachable(&self) -> bool {
        true
    }

    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
        let mut conn = self.ready().await?;
        let owner = random_value();
        for _ in 0..2 {
            let (epoch, known, seen) = self
                .inner
                .with_key(key, |s| {
                    let known = s.known.as_ref().filter(|k| k.stored).map_or(0, |k| k.version);
                    (s.epoch.clone(), known, s.seen)
                })
                .unwrap_or_default();
            let sent = Instant::now();
            let (status, fence, epoch_now): (i64, u64, String) = self
                .inner
                .scripts
                .lock
                .key(self.lock_key(key))
                .key(self.inner.key("fence", key))
                .key(self.token_key(key))
                .key(self.inner.key("epoch", key))
                .key(self.inner.key("settle", key))
                .arg(&owner)
                .arg(millis(lease))
                .arg(epoch.as_deref().unwrap_or(""))
                .arg(random_value())
                .arg(known)
                .arg(seen)
                .arg(millis(self.inner.pending_timeout))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.inner.error("take the refresh lock", e))?;
            match status {
                -1 => {
                    self.inner.check_key(key).await?;
                    continue;
                }
                0 => return Ok(RefreshLock::HeldElsewhere),
                3 => {
                    tracing::debug!(key = %key, pending = fence, "a refresh is pending elsewhere (its holder's lease lapsed before it saved); not taking the lock");
                    return Ok(RefreshLock::HeldElsewhere);
                }
                4 => {
                    tracing::debug!(key = %key, "Redis is settling after a data loss; not taking the lock");
                    return Ok(RefreshLock::HeldElsewhere);
                }
                _ => {}
            }
            if status == 2 {
                tracing::warn!(
                    key = %key,
                    fence,
                    pending_timeout_ms = millis(self.inner.pending_timeout),
                    "took the refresh lock over a refresh marked pending for longer than the pending timeout: its holder is assumed to have died before sending its refresh token"
                );
            }
            self.inner.with_key(key, |s| {
                s.epoch = Some(epoch_now);
                s.seen = s.seen.max(fence);
                s.held.push(Held { owner: owner.clone(), fence, until: sent.checked_add(lease).unwrap_or(sent) });
            });
            return Ok(RefreshLock::Acquired(LockGuard::new(owner, fence)));
        }
        // The key lost data twice in a row: let the caller wait and try again.
        Ok(RefreshLock::HeldElsewhere)
    }

    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
        let mut conn = self.ready().await?;
        for attempt in 0..2 {
            let sent = Instant::now();
            let extended: i64 = self
                .inner
                .scripts
                .extend
                .key(self.lock_key(key))
                .key(self.token_key(key))
                .arg(guard.owner())
                .arg(millis(lease))
                .arg(guard.fence())
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.inner.error("renew the refresh lock", e))?;
            if extended > 0 {
                if extended == 2 {
                    tracing::warn!(key = %key, fence = guard.fence(), "the refresh lock had lapsed or vanished while nobody else took it (its refresh is still marked pending): re-asserted it");
                }
                self.inner.with_key(key, |s| {
                    if let Some(h) = s.held.iter_mut().find(|h| h.owner == guard.owner()) {
                        h.until = sent.checked_add(lease).unwrap_or(sent);
                    }
                });
                return Ok(true);
            }
            // The lock and its pending marker are gone: if Redis lost them, the check re-asserts them
            // (unless someone else took the lock); then renew once more.
            if attempt == 0 && !self.inner.check_key(key).await?.lost {
                break;
            }
        }
        Ok(false)
    }

    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
        let json = Record::encode(key, token, self.inner.sealer.as_ref())?;
        // Remembered first: if Redis is down now, the set is written back when it answers again (by
        // the watchdog; after a data loss, with every other set this process knows).
        self.inner.remember(key, guard.fence(), json.clone(), false);
        let saved = async {
            let mut conn = self.ready().await?;
            self.inner
                .scripts
                .save_fenced
                .key(self.token_key(key))
                .arg(guard.fence())
                .arg(json.expose_secret())
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(|e| self.inner.error("save a token set", e))
        }
        .await;
        // Saved, or refused because a newer set is there: either way Redis holds this set or a later
        // one. A failure leaves it unstored, for the watchdog (or the caller's retry) to write back.
        let written = saved?;
        self.inner.mark_stored(key, guard.fence());
        Ok(written == 1)
    }

    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
        let _serial = self.inner.checking.lock().await;
        self.inner.with_key(key, |s| s.held.retain(|h| h.owner != guard.owner()));
        let mut conn = self.ready().await?;
        let _: i64 = self
            .inner
            .scripts
            .unlock
            .key(self.lock_key(key))
            .key(self.token_key(key))
            .arg(guard.owner())
            .arg(guard.fence())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.error("release the refresh lock", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::RefreshToken;

    #[test]
    fn debug_and_errors_hide_the_password() {
        let store = RedisStore::builder("redis://user:hunter2@127.0.0.1:6379/0").prefix("app").build().unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("hunter2") && debug.contains("redacted") && debug.contains("app"), "{debug}");
        let builder = format!("{:?}", RedisStore::builder("redis://:hunter2@h/1"));
        assert!(!builder.contains("hunter2"), "{builder}");
        // The documented defaults: settle = lease 5 s + attempt timeout 10 s; pending timeout 60 s.
        assert!(builder.contains("settle_period: 15s") && builder.contains("pending_timeout: 60s"), "{builder}");
        let err = RedisStore::new("http://:hunter2@nope").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.url"), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = RedisStore::builder("redis://127.0.0.1").prefix("").build().unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.prefix"), "{err:?}");
    }

    /// Issue 15 item 5: a password in a `pass` / `password` query parameter (which the redis crate
    /// reads for `redis+unix://`) is hidden too, in `Debug` and in every error.
    #[test]
    fn debug_and_errors_hide_a_query_password() {
        let store = RedisStore::new("redis+unix:///run/redis.sock?db=1&pass=hunter2").unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("hunter2") && debug.contains("pass=[redacted]"), "{debug}");
        let builder = format!("{:?}", RedisStore::builder("redis+unix:///run/redis.sock?password=hunter2"));
        assert!(!builder.contains("hunter2"), "{builder}");
        for url in ["redis+unix:///run/redis.sock?db=x&pass=hunter2", "redis://:hunter2@h:99999/0?pass=hunter2"] {
            let err = RedisStore::new(url).unwrap_err();
            assert!(matches!(err, Error::Config { ref key, .. } if key == "store.url"), "{err:?}");
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
        let err = store.inner.error("ping", redis::RedisError::from((redis::ErrorKind::Io, "refused")));
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn keys_share_a_cluster_slot_per_token_set() {
        let store = RedisStore::builder("redis://127.0.0.1").prefix("p").build().unwrap();
        assert_eq!(store.token_key("whitebit/id/x"), "p:token:{whitebit/id/x}");
        assert_eq!(store.lock_key("whitebit/id/x"), "p:lock:{whitebit/id/x}");
    }

    #[test]
    fn records_keep_millisecond_expiry_and_the_refresh_token() {
        let expires = UNIX_EPOCH + Duration::from_millis(2_000_000_000_123);
        let token = AccessToken::builder("at")
            .expires_in(expires - Duration::from_secs(2), Duration::from_secs(2))
            .refresh_token(Some(RefreshToken::new("rt")))
            .build();
        let json = Record::encode("k", &token, None).unwrap();
        let back = Record::decode("k", json.expose_secret(), None).unwrap();
        assert_eq!(back.expires_at(), expires);
        assert!(back.same_token(&token));
        assert!(back.refresh_token().unwrap().same_as(&RefreshToken::new("rt")));
        let err = Record::decode("k", r#"{"access_token": "secret-value", "#, None).unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
    }
}

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
