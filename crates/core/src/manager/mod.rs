//! A keyed token manager: one cached token per key, for a process that holds tokens for thousands
//! of users of one client, or for thousands of clients.
//!
//! [`TokenManager<K>`] gives, per key, everything a single [`CachedProvider`] does — it *is* one
//! `CachedProvider` per key, created on first use:
//!
//! - **Cached reads**: a hit is a shard's read lock, a hash-map lookup and the provider's lock-free
//!   read; no allocation.
//! - **Early refresh, single flight, back-off, serve-valid-on-failure**, per key: however many
//!   callers need one key's token at once, one fetch of that key runs; other keys are fetched
//!   independently.
//! - **Invalidate** ([`TokenManager::invalidate`]) after a 401, per key.
//! - **Store**: every key's token set is one record of the [`TokenStore`] (a private
//!   [`MemoryStore`](crate::MemoryStore) by default; a [`FileStore`](crate::store::FileStore) or Redis to
//!   keep them across restarts). With a store that [coordinates](TokenStore::coordination) (Redis),
//!   every process sharing it refreshes each key once: the fleet coordination of `CachedProvider`
//!   applies per key.
//! - **Bounded memory**: at most [`max_entries`](TokenManagerBuilder::max_entries) keys are held in
//!   memory, and a key unused for the [`idle_timeout`](TokenManagerBuilder::idle_timeout) is dropped
//!   from memory; a later [`token`](TokenManager::token) reads its set back from the store (no
//!   request when the stored token is fresh). An entry is evicted only when nothing but the manager
//!   holds it — no caller is waiting on it, no fetch of it is in flight, and its current set is saved
//!   — so eviction never lets a second fetch of a key start beside one in flight, and never drops a
//!   set the store does not hold (a rotated refresh token).
//!
//! Two constructors cover the two cases:
//!
//! - [`TokenManager::for_users`]: many **users** of one client. One [`TokenSource`] (typically a
//!   [`RefreshTokenSource`](crate::cache::RefreshTokenSource), whose refresh token may rotate) serves
//!   every key; each user's set is stored under the source's [`cache_key`](TokenSource::cache_key)
//!   followed by `/` and the escaped key ([`store_key`]). A user is added with
//!   [`insert`](TokenManager::insert) from the authorization callback (authorization code, device
//!   flow) and removed with [`remove`](TokenManager::remove), or with
//!   [`revoke`](TokenManager::revoke), which ends the grant at the server first.
//! - [`TokenManager::for_clients`]: many **clients** (tenants). A factory makes each key's source
//!   on first use; each key's set is stored under that source's `cache_key` followed by the escaped
//!   key, so that two keys never share a record.
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::manager::TokenManager;
//! use tokensmith_core::{AccessToken, cache::ProviderSource, cache::TokenSource, provide_token_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith_core::Result<()> {
//! // One source per tenant, made on first use of its key.
//! let manager = TokenManager::for_clients(|tenant: &String| {
//!     let secret = format!("token-of-{tenant}");
//!     let source = provide_token_fn(move || {
//!         let secret = secret.clone();
//!         async move { Ok(AccessToken::builder(secret).build()) }
//!     });
//!     Ok(Arc::new(ProviderSource::new(source, "tenants")) as Arc<dyn TokenSource>)
//! })
//! .max_entries(10_000)
//! .build();
//!
//! let token = manager.token(&"acme".to_owned()).await?;
//! assert!(token.same_token(&AccessToken::builder("token-of-acme").build()));
//! assert_eq!(manager.len(), 1);
//! # Ok(()) }
//! ```

mod builder;
mod evict;
mod keyed;
#[cfg(test)]
mod tests;

use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::cache::{CachedProvider, RefreshPolicy, TokenSource};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{TokenStore, store_key};
use crate::token::AccessToken;

pub use builder::TokenManagerBuilder;
use keyed::KeySource;

/// What a [`TokenManager`] key must be: hashable, cloneable, shareable between threads, and
/// [`Display`](fmt::Display)ed in the store key of its token set.
///
/// Two different keys must display differently (their store records would otherwise be one).
/// `String`, `Arc<str>`, integers and UUIDs qualify. A key is part of its store key, which the
/// cache's log lines name; the manager's `Debug` output shows no key.
pub trait Key: Eq + Hash + Clone + fmt::Display + Send + Sync + 'static {}

impl<T: Eq + Hash + Clone + fmt::Display + Send + Sync + 'static> Key for T {}

/// Makes the source of a key, for [`TokenManager::for_clients`].
type Factory<K> = dyn Fn(&K) -> Result<Arc<dyn TokenSource>> + Send + Sync;

/// Where the keys' tokens come from.
enum Sources<K> {
    /// One source for every key; `prefix` is its `cache_key`.
    Users { source: Arc<dyn TokenSource>, prefix: String },
    /// A source per key.
    Clients(Box<Factory<K>>),
}

impl<K> fmt::Debug for Sources<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sources::Users { source, .. } => f.debug_tuple("Users").field(source).finish(),
            Sources::Clients(_) => f.write_str("Clients(factory)"),
        }
    }
}

/// How many shards the key map is split into: a hit takes one shard's read lock, so that threads
/// reading different keys rarely touch the same lock. Keys are hashed with foldhash, seeded at random
/// per manager: a fifth less time per hit than std's SipHash in the bench (issue 20's target is a
/// hit within 1.5x a single provider's), at the price of a hash that is fast rather than
/// cryptographic; keys are the application's user or tenant ids, and `max_entries` bounds each map.
const SHARDS: usize = 64;
const SHARD_MASK: u64 = SHARDS as u64 - 1;

type Map<K> = HashMap<K, Slot, RandomState>;

/// One key's entry.
struct Slot {
    provider: CachedProvider<KeySource>,
    /// Set by every read, cleared by the sweep that sees it: whether the key was used since.
    touched: AtomicBool,
    /// The instant (manager clock, monotonic) since which the key counts as unused: its creation,
    /// or the last sweep that found it used.
    idle_since: Duration,
}

impl Slot {
    /// Marks the key as used; writes shared memory only the first time between two sweeps.
    #[inline]
    fn touch(&self) {
        if !self.touched.load(Ordering::Relaxed) {
            self.touched.store(true, Ordering::Relaxed);
        }
    }
}

struct Inner<K> {
    shards: [RwLock<Map<K>>; SHARDS],
    hasher: RandomState,
    sources: Sources<K>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    max_entries: usize,
    idle_timeout: Duration,
    /// Entries held, across shards.
    len: AtomicUsize,
    /// The instant of the last idle sweep (manager clock, monotonic).
    last_sweep: Mutex<Duration>,
}

/// One cached token per key: [`CachedProvider`]'s guarantees per key, bounded memory, token sets in
/// a [`TokenStore`]. See [the module](self) for what it guarantees and the two ways to build one.
///
/// Cloning is cheap and clones share the keys. `Send + Sync`.
///
/// ```no_run
/// use tokensmith_core::manager::TokenManager;
/// use tokensmith_core::{AccessToken, ClientCredentials, cache::RefreshTokenSource, Scopes, TokenClient, TokenEndpoint};
///
/// # async fn run(token_from_the_code_exchange: AccessToken) -> tokensmith_core::Result<()> {
/// let endpoint = TokenEndpoint::new("https://auth.example.com/oauth/token".parse().unwrap());
/// let client = TokenClient::builder("example", endpoint, ClientCredentials::new("id", "secret")).build()?;
/// let users: TokenManager<String> = TokenManager::for_users(RefreshTokenSource::new(client, Scopes::default()))
///     .max_entries(100_000)
///     .build();
///
/// // In the authorization callback: the set the code was exchanged for is saved before this returns.
/// users.insert(&"user-42".to_owned(), token_from_the_code_exchange).await?;
/// // Wherever the service acts for the user: a valid token, refreshed (and rotated) as needed.
/// let token = users.token(&"user-42".to_owned()).await?;
/// # let _ = token; Ok(()) }
/// ```
pub struct TokenManager<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for TokenManager<K> {
    fn clone(&self) -> Self {
        TokenManager { inner: self.inner.clone() }
    }
}

impl<K> fmt::Debug for TokenManager<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("sources", &self.inner.sources)
            .field("entries", &self.inner.len.load(Ordering::Relaxed))
            .field("max_entries", &self.inner.max_entries)
            .field("idle_timeout", &self.inner.idle_timeout)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl<K: Key> TokenManager<K> {
    /// Starts configuring a manager of many users of one client: `source` fetches every key's
    /// tokens, from that key's current set (its refresh token). Add a user with
    /// [`insert`](Self::insert).
    pub fn for_users(source: impl TokenSource) -> TokenManagerBuilder<K> {
        let prefix = source.cache_key();
        TokenManagerBuilder::new(Sources::Users { source: Arc::new(source), prefix })
    }

    /// Starts configuring a manager of many clients: `factory` makes a key's source when the key is
    /// first used (and again after its entry was evicted). An error it returns is returned by the
    /// call that needed the source.
    pub fn for_clients(
        factory: impl Fn(&K) -> Result<Arc<dyn TokenSource>> + Send + Sync + 'static,
    ) -> TokenManagerBuilder<K> {
        TokenManagerBuilder::new(Sources::Clients(Box::new(factory)))
    }

    /// A valid token for `key`, fetched (or read from the store) if the cached one is missing or
    /// due for refresh: [`CachedProvider::token`] of the key's entry, created on first use.
    ///
    /// On a hit the future is ready at once and nothing is allocated; a miss boxes the fetch.
    pub fn token(&self, key: &K) -> impl Future<Output = Result<AccessToken>> + Send + '_ {
        match self.cached_token(key) {
            Some(token) => TokenFuture::Ready(Some(token)),
            None => TokenFuture::Fetch(Box::pin(self.fetch(key.clone()))),
        }
    }

    /// The cached token of `key` if it is held in memory and fresh; no fetch, no store read.
    #[inline]
    pub fn cached_token(&self, key: &K) -> Option<AccessToken> {
        let map = read(self.inner.shard(key));
        let slot = map.get(key)?;
        slot.touch();
        slot.provider.cached_token()
    }

    /// The miss path of [`token`](Self::token).
    async fn fetch(&self, key: K) -> Result<AccessToken> {
        let provider = self.inner.provider(&key)?;
        provider.token().await
    }

    /// Reports that `token`, served for `key`, was rejected (a 401): it is dropped if it is still
    /// the key's current token, so that the next call fetches (see [`CachedProvider::invalidate`]).
    pub fn invalidate(&self, key: &K, token: &AccessToken) {
        let loaded = read(self.inner.shard(key)).get(key).map(|slot| slot.provider.clone());
        match loaded {
            Some(provider) => provider.invalidate(token),
            // Evicted since it handed `token` out: the store still holds that set, which must not be
            // read back and served again. The entry is made (no request) and told.
            None => {
                if let Ok(provider) = self.inner.provider(key) {
                    provider.invalidate_unloaded(token);
                }
            }
        }
    }

    /// Adds or replaces `key`'s token set, e.g. the one an authorization code or a device flow
    /// yielded: saved in the store before this returns, and served from then on.
    ///
    /// As [`CachedProvider::insert`]: when the save fails the set is still served from memory (its
    /// entry is not evicted) and saved again in the background, and the error ([`Error::Store`])
    /// says so. Probe the store with [`check_store`](Self::check_store) before sending a user to
    /// consent, to fail before the code is spent.
    pub async fn insert(&self, key: &K, token: AccessToken) -> Result<()> {
        let provider = self.inner.provider(key)?;
        provider.insert(token).await
    }

    /// Removes `key`: its entry is dropped from memory and its token set from the store.
    ///
    /// Call it when the key is no longer used (the user disconnected the service): a fetch of the key
    /// in flight when it is called still completes, and saves the set it gets.
    ///
    /// This forgets the grant without telling the server: to revoke it there too, call
    /// [`revoke`](Self::revoke) instead.
    pub async fn remove(&self, key: &K) -> Result<()> {
        let store_key = match self.forget(key) {
            Some(store_key) => store_key,
            None => self.inner.store_key(key, &*self.inner.source(key)?),
        };
        self.inner.store.remove(&store_key).await
    }

    /// Revokes `key`'s grant at the authorization server (RFC 7009) and removes the key: for a
    /// user who disconnected the service, whose refresh token must stop working and not only be
    /// forgotten.
    ///
    /// The set saved for `key` is revoked at `url` with `client`'s credentials as
    /// [`FlowClient::revoke_stored`](crate::flows::FlowClient::revoke_stored) does: its refresh
    /// token first, then (the grant being gone) the record is removed from the store, then the
    /// access token is revoked. The key's entry is dropped from memory whatever the outcome.
    /// Returns `false` when the store held nothing for `key`.
    ///
    /// When the server refuses to revoke the refresh token the error is returned and the set stays
    /// in the store (the grant is still alive): a later [`token`](Self::token) reads it back, and a
    /// later call can try again. A caller asking for the key's token while this runs may still get
    /// the access token being revoked.
    ///
    /// ```
    /// use tokensmith_core::flows::FlowClient;
    /// use tokensmith_core::manager::TokenManager;
    /// use url::Url;
    ///
    /// /// The user pressed "disconnect": their grant ends at the server, then here.
    /// async fn disconnect(
    ///     manager: &TokenManager<String>,
    ///     client: &FlowClient,
    ///     revocation: &Url,
    ///     user: &String,
    /// ) -> tokensmith_core::Result<()> {
    ///     if !manager.revoke(user, client, revocation).await? {
    ///         tracing::info!("nothing was saved for this user: nothing to revoke");
    ///     }
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "flows")]
    #[cfg_attr(docsrs, doc(cfg(feature = "flows")))]
    pub async fn revoke(&self, key: &K, client: &crate::flows::FlowClient, url: &url::Url) -> Result<bool> {
        // The shard's lock is released before a factory (the caller's code) may be called.
        let loaded = read(self.inner.shard(key)).get(key).map(|slot| slot.provider.key().to_owned());
        let store_key = match loaded {
            Some(store_key) => store_key,
            None => self.inner.store_key(key, &*self.inner.source(key)?),
        };
        let revoked = client.revoke_stored(url, &*self.inner.store, &store_key).await;
        self.forget(key);
        revoked
    }

    /// Drops `key`'s entry from memory; returns its store key when it had one.
    fn forget(&self, key: &K) -> Option<String> {
        let slot = write(self.inner.shard(key)).remove(key)?;
        self.inner.len.fetch_sub(1, Ordering::Relaxed);
        Some(slot.provider.key().to_owned())
    }

    /// Checks that the store can save token sets ([`TokenStore::probe`]).
    pub async fn check_store(&self) -> Result<()> {
        self.inner.store.probe().await
    }

    /// Whether `key` has an entry in memory (it may still have a set in the store if not).
    pub fn is_loaded(&self, key: &K) -> bool {
        read(self.inner.shard(key)).contains_key(key)
    }

    /// How many keys are held in memory.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    /// Whether no key is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps now: evicts every entry unused for the idle timeout that nothing else holds, and
    /// returns how many. The manager also sweeps by itself, at most every half idle timeout, when a
    /// key misses; call this from a timer to free memory in a process that stops asking for keys.
    pub fn evict_idle(&self) -> usize {
        let now = self.inner.clock.monotonic();
        *lock(&self.inner.last_sweep) = now;
        self.inner.sweep_idle(now)
    }
}

impl<K: Key> Inner<K> {
    fn shard(&self, key: &K) -> &RwLock<Map<K>> {
        let index = usize::try_from(self.hasher.hash_one(key) & SHARD_MASK).unwrap_or(0);
        match self.shards.get(index) {
            Some(shard) => shard,
            None => &self.shards[0],
        }
    }

    /// The source of `key`.
    fn source(&self, key: &K) -> Result<Arc<dyn TokenSource>> {
        match &self.sources {
            Sources::Users { source, .. } => Ok(source.clone()),
            Sources::Clients(factory) => factory(key),
        }
    }

    /// The store key of `key`'s token set: the source's key, `/`, the escaped key.
    fn store_key(&self, key: &K, source: &dyn TokenSource) -> String {
        let escaped = store_key([key.to_string().as_str()]);
        match &self.sources {
            Sources::Users { prefix, .. } => format!("{prefix}/{escaped}"),
            Sources::Clients(_) => format!("{}/{escaped}", source.cache_key()),
        }
    }

    /// A handle on `key`'s provider, creating its entry if there is none. The handle keeps the entry
    /// from being evicted while it is held.
    fn provider(&self, key: &K) -> Result<CachedProvider<KeySource>> {
        let shard = self.shard(key);
        let found = read(shard).get(key).map(|slot| {
            slot.touch();
            slot.provider.clone()
        });
        let provider = match found {
            Some(provider) => provider,
            None => {
                // The source is made without the lock held (a factory is the caller's code).
                let source = self.source(key)?;
                let built = CachedProvider::builder(KeySource(source.clone()))
                    .key(self.store_key(key, &*source))
                    .clock(self.clock.clone())
                    .policy(self.policy.clone())
                    .store(self.store.clone())
                    .build();
                let mut map = write(shard);
                match map.get(key) {
                    // Another caller created it meanwhile: that one is the key's only entry.
                    Some(slot) => slot.provider.clone(),
                    None => {
                        let slot = Slot {
                            provider: built.clone(),
                            touched: AtomicBool::new(false),
                            idle_since: self.clock.monotonic(),
                        };
                        map.insert(key.clone(), slot);
                        self.len.fetch_add(1, Ordering::Relaxed);
                        built
                    }
                }
            }
        };
        self.maintain();
        Ok(provider)
    }
}

fn read<K>(shard: &RwLock<Map<K>>) -> RwLockReadGuard<'_, Map<K>> {
    shard.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<K>(shard: &RwLock<Map<K>>) -> RwLockWriteGuard<'_, Map<K>> {
    shard.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`TokenManager::token`] returns: the cached token, ready, or the boxed fetch.
enum TokenFuture<'a> {
    Ready(Option<AccessToken>),
    Fetch(Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + 'a>>),
}

impl Future for TokenFuture<'_> {
    type Output = Result<AccessToken>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<AccessToken>> {
        match self.get_mut() {
            TokenFuture::Ready(token) => Poll::Ready(token.take().ok_or_else(|| Error::Runtime {
                message: "a token future was polled again after it completed".to_owned(),
            })),
            TokenFuture::Fetch(fetch) => fetch.as_mut().poll(cx),
        }
    }
}
