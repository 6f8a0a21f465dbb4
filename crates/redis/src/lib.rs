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
//! - after Redis restarts empty (no persistence), each process writes back the newest token set it
//!   knows, the newest version wins, and refresh locks are held back for a short settling period
//!   meanwhile, so that no rotated refresh token is lost; a set whose save failed while Redis was
//!   unreachable is written back the same way (never over a newer one) once Redis answers again.
//!
//! Design, key layout and failure policy: `docs/fleet.md`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use tokensmith_core::{CachedProvider, ClientCredentials, ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
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
//! None. The store needs a tokio runtime (it is built on the `redis` crate's tokio support).
//!
//! # Security
//!
//! Token sets are stored as JSON in the clear, like the file store's: protect the Redis server
//! (bind it to a private network, require a password or an ACL user, which go in the URL). Nothing
//! this crate logs or formats with `Debug` holds a token, and the URL's password is redacted.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use rand::Rng as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};
use serde::{Deserialize, Serialize};
use tokensmith_core::error::BoxError;
use tokensmith_core::http::redact_url_password;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{AccessToken, Error, LockGuard, RefreshLock, Result, StoredToken, TokenStore, Versioned};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "tokensmith";

/// Takes the lock if free and hands out a fencing number larger than any before it and than the
/// stored set's version. Returns the fence, `0` when the lock is held (or Redis is settling after a
/// restart), `-1` when the data-loss marker changed (Redis restarted or was flushed).
///
/// KEYS: lock, fence, token, epoch, settle. ARGV: owner, lease ms, expected epoch.
const LOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[4]) ~= ARGV[3] then return -1 end
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local f = redis.call('INCR', KEYS[2])
local v = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
if f <= v then f = v + 1; redis.call('SET', KEYS[2], f) end
return f
";

/// Renews the lease if the owner still holds the lock. KEYS: lock. ARGV: owner, lease ms.
const EXTEND_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Compare-and-delete. KEYS: lock. ARGV: owner.
const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Writes the set only if no set with a version >= the fence is stored. KEYS: token. ARGV: fence, set.
const SAVE_FENCED_SCRIPT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'set', ARGV[2])
return 1
";

/// An unconditional save (an authorization's first token set): takes a new fencing number so that the
/// set is newer than anything before it. KEYS: token, fence. ARGV: set. Returns the version.
const SAVE_SCRIPT: &str = r"
local f = redis.call('INCR', KEYS[2])
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if f <= v then f = v + 1; redis.call('SET', KEYS[2], f) end
redis.call('HSET', KEYS[1], 'v', f, 'set', ARGV[1])
return f
";

/// Writes back a set this process knows after Redis lost its data, unless a set at least as new is
/// there; keeps the fence counter above it. KEYS: token, fence. ARGV: version, set.
const RESTORE_SCRIPT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local r = tonumber(ARGV[1])
local written = 0
if v < r then redis.call('HSET', KEYS[1], 'v', ARGV[1], 'set', ARGV[2]); written = 1 end
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if f < r then redis.call('SET', KEYS[2], r) end
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
    fn encode(token: &AccessToken) -> Result<SecretString> {
        let expires_at_ms =
            token.expires_at().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let record = Record { token: StoredToken::from(token), expires_at_ms };
        serde_json::to_string(&record)
            .map(SecretString::from)
            .map_err(|e| Error::store(format!("the token set could not be serialized ({e})"), None))
    }

    fn decode(key: &str, json: &str) -> Result<AccessToken> {
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
        let expires_at = UNIX_EPOCH + Duration::from_millis(record.expires_at_ms);
        Ok(AccessToken::from(record.token).to_builder().expires_at(expires_at).build())
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

/// Configures a [`RedisStore`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    watchdog: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url_password(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("watchdog", &self.watchdog)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_PREFIX`]); give each application its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long connecting or one command may take before it fails (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the store checks, in the background, whether Redis lost its data (default 200 ms).
    pub fn watchdog_interval(mut self, interval: Duration) -> Self {
        self.watchdog = interval.max(Duration::from_millis(10));
        self
    }

    /// Builds the store. Nothing connects until the first command, so the store builds while Redis
    /// is down; a URL that cannot be parsed gives [`Error::Config`] naming `store.url`.
    pub fn build(self) -> Result<RedisStore> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| {
            Error::config(
                "store.url",
                format!(
                    "`{}` is not a Redis URL ({:?}); use redis://[user:password@]host[:port][/db]",
                    redact_url_password(&self.url),
                    e.kind()
                ),
            )
        })?;
        if self.prefix.is_empty() {
            return Err(Error::config("store.prefix", "the key prefix is empty; leave it out for `tokensmith`"));
        }
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                url: redact_url_password(&self.url),
                prefix: self.prefix,
                timeout: self.timeout,
                watchdog: self.watchdog,
                conn: tokio::sync::OnceCell::new(),
                known: Mutex::new(HashMap::new()),
                epoch: Mutex::new(None),
                watchdog_started: AtomicBool::new(false),
                scripts: Scripts::new(),
            }),
        })
    }
}

struct Scripts {
    lock: Script,
    extend: Script,
    unlock: Script,
    save_fenced: Script,
    save: Script,
    restore: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            lock: Script::new(LOCK_SCRIPT),
            extend: Script::new(EXTEND_SCRIPT),
            unlock: Script::new(UNLOCK_SCRIPT),
            save_fenced: Script::new(SAVE_FENCED_SCRIPT),
            save: Script::new(SAVE_SCRIPT),
            restore: Script::new(RESTORE_SCRIPT),
        }
    }
}

/// A [`TokenStore`] in Redis that coordinates refreshes across every process sharing it. See the
/// [crate docs](crate) and `docs/fleet.md`.
///
/// # Keys
///
/// For a store key `K` (providers use `provider/client_id/scopes`) and prefix `P`:
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | `P:token:{K}` | hash | `v`: the set's version (the fencing number it was saved with); `set`: the token set as JSON |
/// | `P:lock:{K}` | string | the refresh lock: a random owner value, with a lease (`PX`) |
/// | `P:fence:{K}` | string | the fencing counter |
/// | `P:epoch` | string | a random marker; when it is missing, Redis lost its data |
/// | `P:settle` | string | present for a moment after a data loss, while processes write back what they know |
///
/// Cloning is cheap; clones share one connection (which reconnects by itself).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    url: String,
    prefix: String,
    timeout: Duration,
    watchdog: Duration,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    known: Mutex<HashMap<String, Known>>,
    epoch: Mutex<Option<String>>,
    watchdog_started: AtomicBool,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.inner.url).field("prefix", &self.inner.prefix).finish()
    }
}

fn random_value() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`) with the default prefix.
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

    async fn ready(&self) -> Result<ConnectionManager> {
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
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = inner.check_epoch().await {
                    tracing::trace!(error = %e, "the Redis token store's watchdog could not reach Redis");
                    continue;
                }
                inner.write_back_unsaved().await;
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
        let kind = if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
            "unreachable"
        } else {
            "failed"
        };
        Error::store(
            format!(
                "Redis at {} {kind} while trying to {action} ({:?}); check that Redis is running and reachable",
                self.url,
                e.kind()
            ),
            Some(Arc::new(e) as BoxError),
        )
    }

    async fn conn(&self) -> Result<ConnectionManager> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                    .map_err(|e| self.error("connect", e))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Checks the data-loss marker; on a loss (Redis restarted without persistence, or was flushed),
    /// holds refresh locks back for a settling period and writes back every token set this process
    /// knows, unless a newer one is there.
    async fn check_epoch(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let epoch_key = format!("{}:epoch", self.prefix);
        let current: Option<String> = conn.get(&epoch_key).await.map_err(|e| self.error("read the epoch", e))?;
        let mine = self.epoch.lock().ok().and_then(|e| e.clone());
        if current.is_some() && current == mine {
            return Ok(());
        }
        let lost = current.is_none() || mine.is_some();
        if lost && mine.is_some() {
            let settle_key = format!("{}:settle", self.prefix);
            let settle_ms = (self.watchdog * 3).as_millis() as u64 + 100;
            let _: Option<String> = redis::cmd("SET")
                .arg(&settle_key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(settle_ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error("mark the data loss", e))?;
        }
        let _: Option<String> = redis::cmd("SET")
            .arg(&epoch_key)
            .arg(random_value())
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("write the epoch", e))?;
        let now: Option<String> = conn.get(&epoch_key).await.map_err(|e| self.error("read the epoch", e))?;
        if mine.is_some() {
            let restore: Vec<(String, u64, String)> = self
                .known
                .lock()
                .map(|k| k.iter().map(|(key, v)| (key.clone(), v.version, v.json.expose_secret().to_owned())).collect())
                .unwrap_or_default();
            for (key, version, json) in restore {
                let written = self
                    .restore(&mut conn, &key, version, json)
                    .await
                    .map_err(|e| self.error("write back a token set", e))?;
                self.mark_stored(&key, version);
                tracing::warn!(key = %key, version, written, "Redis lost its data; wrote back the token set this process knows");
            }
        }
        if let Ok(mut epoch) = self.epoch.lock() {
            *epoch = now;
        }
        Ok(())
    }

    /// Runs the restore script: writes `json` as the set of `key` at `version` unless a set at least as
    /// new is there. Returns whether it was written.
    async fn restore(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        version: u64,
        json: String,
    ) -> redis::RedisResult<bool> {
        let written: i64 = self
            .scripts
            .restore
            .key(self.key("token", key))
            .key(self.key("fence", key))
            .arg(version)
            .arg(json)
            .invoke_async(conn)
            .await?;
        Ok(written == 1)
    }

    /// Writes back, for every key whose fenced save failed, the set this process knows, unless a set
    /// at least as new is there (the restore script compares versions, so a set another process saved
    /// since, with a later fence, is never overwritten).
    async fn write_back_unsaved(&self) {
        let unsaved: Vec<(String, u64, String)> = self
            .known
            .lock()
            .map(|known| {
                known
                    .iter()
                    .filter(|(_, k)| !k.stored)
                    .map(|(key, k)| (key.clone(), k.version, k.json.expose_secret().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if unsaved.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conn().await else { return };
        for (key, version, json) in unsaved {
            match self.restore(&mut conn, &key, version, json).await {
                Ok(written) => {
                    self.mark_stored(&key, version);
                    tracing::warn!(key = %key, version, written, "wrote back a token set whose save had failed while Redis was unreachable");
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
        if let Ok(mut known) = self.known.lock() {
            let newer = known.get(key).is_none_or(|k| k.version <= version);
            if newer {
                known.insert(key.to_owned(), Known { version, json, stored });
            }
        }
    }

    /// Notes that Redis holds the set of `key` at `version` (or a newer one), if it is the known one.
    fn mark_stored(&self, key: &str, version: u64) {
        if let Ok(mut known) = self.known.lock() {
            if let Some(k) = known.get_mut(key).filter(|k| k.version == version) {
                k.stored = true;
            }
        }
    }

    fn current_epoch(&self) -> String {
        self.epoch.lock().ok().and_then(|e| e.clone()).unwrap_or_default()
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
        let mut conn = self.ready().await?;
        let (version, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.token_key(key))
            .arg("v")
            .arg("set")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.inner.error("load a token set", e))?;
        let Some(json) = json else { return Ok(None) };
        let token = Record::decode(key, &json)?;
        let version = version.unwrap_or_default();
        self.inner.remember(key, version, SecretString::from(json), true);
        Ok(Some(Versioned::new(token, Some(version))))
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        let json = Record::encode(token)?;
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
        let _: i64 = conn.del(self.token_key(key)).await.map_err(|e| self.inner.error("remove a token set", e))?;
        if let Ok(mut known) = self.inner.known.lock() {
            known.remove(key);
        }
        Ok(())
    }

    fn coordinates(&self) -> bool {
        true
    }

    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
        let mut conn = self.ready().await?;
        let owner = random_value();
        for _ in 0..2 {
            let fence: i64 = self
                .inner
                .scripts
                .lock
                .key(self.lock_key(key))
                .key(self.inner.key("fence", key))
                .key(self.token_key(key))
                .key(format!("{}:epoch", self.inner.prefix))
                .key(format!("{}:settle", self.inner.prefix))
                .arg(&owner)
                .arg(lease.as_millis().max(1) as u64)
                .arg(self.inner.current_epoch())
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.inner.error("take the refresh lock", e))?;
            match fence {
                -1 => self.inner.check_epoch().await?,
                0 => return Ok(RefreshLock::HeldElsewhere),
                fence => return Ok(RefreshLock::Acquired(LockGuard::new(owner, fence as u64))),
            }
        }
        // The marker changed under us twice in a row: let the caller wait and try again.
        Ok(RefreshLock::HeldElsewhere)
    }

    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
        let mut conn = self.ready().await?;
        let extended: i64 = self
            .inner
            .scripts
            .extend
            .key(self.lock_key(key))
            .arg(guard.owner())
            .arg(lease.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.error("renew the refresh lock", e))?;
        Ok(extended == 1)
    }

    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
        let json = Record::encode(token)?;
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
        // one. A failure leaves it unstored, for the watchdog to write back.
        let written = saved?;
        self.inner.mark_stored(key, guard.fence());
        Ok(written == 1)
    }

    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
        let mut conn = self.ready().await?;
        let _: i64 = self
            .inner
            .scripts
            .unlock
            .key(self.lock_key(key))
            .arg(guard.owner())
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
        let err = RedisStore::new("http://:hunter2@nope").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.url"), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = RedisStore::builder("redis://127.0.0.1").prefix("").build().unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.prefix"), "{err:?}");
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
        let json = Record::encode(&token).unwrap();
        let back = Record::decode("k", json.expose_secret()).unwrap();
        assert_eq!(back.expires_at(), expires);
        assert!(back.same_token(&token));
        assert!(back.refresh_token().unwrap().same_as(&RefreshToken::new("rt")));
        let err = Record::decode("k", r#"{"access_token": "secret-value", "#).unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
    }
}
