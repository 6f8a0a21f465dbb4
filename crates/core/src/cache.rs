//! The token cache: cheap cached reads, early refresh, single-flight fetches, back-off on failure.
//!
//! [`CachedProvider`] wraps a [`TokenSource`] (anything that can fetch a token) and implements
//! [`TokenProvider`]:
//!
//! - **Cached reads** ([`CachedProvider::cached_token`], [`CachedProvider::with_cached`]) load the
//!   current entry through `arc-swap` and compare one timestamp from the [`Clock`]: no lock, no
//!   allocation, no write to memory shared between threads. `with_cached` lends the token without
//!   cloning it; `cached_token` clones a per-thread replica of it (see its docs), so that threads
//!   reading at once do not contend on one reference count.
//! - **Early refresh** — see [`RefreshPolicy`]: a token is refreshed when a margin proportional to its
//!   lifetime remains, minus jitter.
//! - **Single flight**: however many callers need a token at once, one fetch runs (in its own task, so
//!   a caller that gives up cannot cancel a refresh whose response would carry a rotated refresh
//!   token); everyone waits for its result. A rotated refresh token is therefore never sent twice.
//! - **Failures**: while fetches fail, callers keep getting the still-valid token; once it has expired
//!   they get the error. A failed fetch starts an exponential back-off during which no new fetch is
//!   made; failures are never cached as tokens.
//! - **Invalidate**: reporting a rejected token drops it only if it is still current.
//! - **Store**: every new token set is saved in the [`TokenStore`] before it is handed out; the store
//!   is read before every fetch, and a token set in it that is newer than the cached one (saved by an
//!   earlier run or another process) is adopted instead of fetching, or refreshed from. A set that
//!   cannot be saved is still handed out, and saved again in the background (1 s, doubling to 60 s)
//!   until a save succeeds or a newer set replaces it: with a rotating refresh token it holds the
//!   only refresh token the provider still accepts.
//! - **Fleet coordination**: with a store that [coordinates](TokenStore::coordinates) (Redis), a fetch
//!   first takes the store's refresh lock, so that across every process sharing the store one refresh
//!   of a key is in flight; the others wait for the token set it saves and adopt it. The lock's lease
//!   is renewed while the fetch runs, and the new set is saved *fenced*, so that a process that lost
//!   its lock cannot overwrite a newer set. When the store is unreachable, a source that does not
//!   rotate its grant (client credentials) fetches for its process alone, with a warning; a rotating
//!   refresh token ([`TokenSource::rotates_grant`]) is never refreshed without the lock: the fetch
//!   fails with [`Error::Store`] and the still-valid token keeps being served.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use rand::Rng as _;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::endpoint::TokenClient;
use crate::error::{BoxError, Error, OAuthErrorCode, Result};
use crate::provider::TokenProvider;
use crate::request::Grant;
use crate::store::{LockGuard, MemoryStore, RefreshLock, TokenStore};
use crate::token::{AccessToken, Scopes};

/// Fetches new tokens for a [`CachedProvider`].
///
/// # Contract
/// - `fetch` gets one new token. `current` is the latest token set the cache knows (in memory or
///   loaded from the store), whose refresh token a refreshing source uses; it may be expired.
/// - The cache never runs two fetches of the same source at once, so a source may consume `current`'s
///   refresh token.
/// - A source that consumes its grant (a refresh token that may rotate) says so with
///   [`rotates_grant`](TokenSource::rotates_grant): the cache then never fetches without the fleet-wide
///   lock of a coordinating store.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug + 'static {
    /// Fetches a new token.
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken>;

    /// A key naming what this source fetches (provider, client, scopes), used as the store key.
    fn cache_key(&self) -> String;

    /// Whether a fetch consumes the grant it fetches with, so that two processes fetching at once
    /// would invalidate each other (rotating refresh tokens). Default `false`.
    fn rotates_grant(&self) -> bool {
        false
    }
}

/// Fetches tokens with the client-credentials grant.
#[derive(Debug)]
pub struct ClientCredentialsSource {
    client: TokenClient,
    scopes: Scopes,
}

impl ClientCredentialsSource {
    /// A source asking `client` for tokens with `scopes`.
    pub fn new(client: TokenClient, scopes: Scopes) -> Self {
        ClientCredentialsSource { client, scopes }
    }

    /// The client.
    pub fn client(&self) -> &TokenClient {
        &self.client
    }

    /// The requested scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }
}

fn cache_key(client: &TokenClient, scopes: &Scopes) -> String {
    format!("{}/{}/{}", client.provider(), client.credentials().client_id(), scopes.join(" "))
}

#[async_trait]
impl TokenSource for ClientCredentialsSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.client.request_token(&Grant::ClientCredentials, &self.scopes).await
    }

    fn cache_key(&self) -> String {
        cache_key(&self.client, &self.scopes)
    }
}

/// Refreshes tokens with the refresh-token grant, from the refresh token of the current token set.
///
/// With no refresh token, or when the provider rejects it (`invalid_grant`), the fetch fails with
/// [`Error::ReauthorizationRequired`].
#[derive(Debug)]
pub struct RefreshTokenSource {
    client: TokenClient,
    scopes: Scopes,
}

impl RefreshTokenSource {
    /// A source refreshing through `client`, asking for `scopes` (empty: the provider's default).
    pub fn new(client: TokenClient, scopes: Scopes) -> Self {
        RefreshTokenSource { client, scopes }
    }

    /// The client.
    pub fn client(&self) -> &TokenClient {
        &self.client
    }
}

#[async_trait]
impl TokenSource for RefreshTokenSource {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        let refresh = current
            .and_then(AccessToken::refresh_token)
            .ok_or_else(|| Error::ReauthorizationRequired { reason: "no refresh token is stored".to_owned() })?;
        match self.client.request_token(&Grant::RefreshToken(refresh.clone()), &self.scopes).await {
            Err(Error::OAuth(e)) if e.code == OAuthErrorCode::InvalidGrant => Err(Error::ReauthorizationRequired {
                reason: format!("the provider rejected the refresh token ({})", e.code),
            }),
            other => other,
        }
    }

    fn cache_key(&self) -> String {
        cache_key(&self.client, &self.scopes)
    }

    /// `true`: a refresh token may rotate (WhiteBIT's do), and then it can be used once only.
    fn rotates_grant(&self) -> bool {
        true
    }
}

/// Adapts any [`TokenProvider`] into a [`TokenSource`], so that it can be cached.
#[derive(Debug)]
pub struct ProviderSource<P> {
    provider: P,
    key: String,
}

impl<P: TokenProvider> ProviderSource<P> {
    /// Wraps `provider`; `key` names it in the store.
    pub fn new(provider: P, key: impl Into<String>) -> Self {
        ProviderSource { provider, key: key.into() }
    }
}

#[async_trait]
impl<P: TokenProvider> TokenSource for ProviderSource<P> {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.provider.token().await
    }

    fn cache_key(&self) -> String {
        self.key.clone()
    }
}

/// When a cached token is refreshed and how failures back off.
///
/// A token of lifetime `L` is refreshed when `margin = clamp(fraction × L, min_margin, max_margin)`
/// of its life remains, plus a random jitter of up to `jitter × margin` so that a fleet of processes
/// does not refresh in lockstep. The margin plus jitter never exceeds half the lifetime, so a token is
/// always used for at least half its life.
///
/// | lifetime | margin (defaults) | refreshed after |
/// | --- | --- | --- |
/// | 2 s (tests) | 1 s (half-life cap) | 1 s |
/// | 300 s (WhiteBIT) | 60 s + up to 15 s | 225–240 s |
/// | 900 s (ProBit) | 180 s + up to 45 s | 675–720 s |
/// | 7200 s (Doorkeeper) | 300 s + up to 75 s | 6825–6900 s |
/// | 36000 s (Django) | 300 s + up to 75 s | 35625–35700 s |
///
/// A token is handed out until `expiry_skew` before it expires (default: a tenth of its lifetime, at
/// most 2 s), so that it does not expire on its way to the resource server.
///
/// With a store that coordinates a fleet (Redis), a refresh holds the store's lock for
/// [`lock_lease`](RefreshPolicy::lock_lease) (default 5 s, renewed every third of it while the
/// request runs, so that a crashed process frees it within one lease), and a process that finds the
/// lock held waits up to [`lock_wait`](RefreshPolicy::lock_wait) (default 10 s) for the token set the
/// holder saves.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshPolicy {
    fraction: f64,
    min_margin: Duration,
    max_margin: Duration,
    jitter: f64,
    max_expiry_skew: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    lock_lease: Duration,
    lock_wait: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            fraction: 0.2,
            min_margin: Duration::from_secs(10),
            max_margin: Duration::from_secs(300),
            jitter: 0.25,
            max_expiry_skew: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            lock_lease: Duration::from_secs(5),
            lock_wait: Duration::from_secs(10),
        }
    }
}

impl RefreshPolicy {
    /// The fraction of the lifetime kept as margin (default 0.2).
    pub fn fraction(mut self, fraction: f64) -> Self {
        self.fraction = if fraction.is_finite() { fraction.clamp(0.0, 0.5) } else { 0.2 };
        self
    }

    /// The smallest margin (default 10 s).
    pub fn min_margin(mut self, margin: Duration) -> Self {
        self.min_margin = margin;
        self
    }

    /// The largest margin (default 5 min).
    pub fn max_margin(mut self, margin: Duration) -> Self {
        self.max_margin = margin;
        self
    }

    /// The jitter as a fraction of the margin (default 0.25; 0 disables it).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.25 };
        self
    }

    /// The first back-off after a failed fetch (default 250 ms); it doubles per consecutive failure.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest back-off (default 30 s).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The lease of a coordinating store's refresh lock (default 5 s; at least 100 ms). It is renewed
    /// every third of it while the refresh runs.
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease.max(Duration::from_millis(100));
        self
    }

    /// How long a process waits for another process's refresh before it applies the failure policy
    /// (default 10 s).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The margin before expiry for a token of `lifetime`, without jitter.
    pub fn margin(&self, lifetime: Duration) -> Duration {
        let proportional = lifetime.mul_f64(self.fraction);
        proportional.clamp(self.min_margin, self.max_margin.max(self.min_margin)).min(lifetime / 2)
    }

    /// The margin with a random jitter added, never more than half the lifetime.
    pub fn jittered_margin(&self, lifetime: Duration) -> Duration {
        let margin = self.margin(lifetime);
        let max_extra = margin.mul_f64(self.jitter);
        let extra = if max_extra.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..=max_extra.as_nanos().min(u64::MAX as u128) as u64))
        };
        (margin + extra).min(lifetime / 2)
    }

    /// How long before expiry a token stops being handed out.
    pub fn expiry_skew(&self, lifetime: Duration) -> Duration {
        (lifetime / 10).min(self.max_expiry_skew)
    }

    /// The back-off after `failures` consecutive failed fetches.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(31)));
        let capped = exp.min(self.max_backoff);
        // Up to 25 % jitter downwards.
        let jitter = capped / 4;
        if jitter.is_zero() {
            capped
        } else {
            capped - Duration::from_nanos(rand::rng().random_range(0..=jitter.as_nanos().min(u64::MAX as u128) as u64))
        }
    }
}

/// The current token and the monotonic instants at which it is refreshed and stops being usable.
struct Entry {
    /// Unique in the process, so that a thread's replica of an entry's token is never mistaken for
    /// another entry's (see [`replica`]).
    id: u64,
    token: AccessToken,
    refresh_at: Duration,
    usable_until: Duration,
}

static NEXT_ENTRY_ID: AtomicU64 = AtomicU64::new(1);

impl Entry {
    fn new(token: AccessToken, refresh_at: Duration, usable_until: Duration) -> Self {
        Entry { id: NEXT_ENTRY_ID.fetch_add(1, Ordering::Relaxed), token, refresh_at, usable_until }
    }
}

/// How many entries' tokens a thread keeps replicas of (most programs cache one or two tokens).
const REPLICA_SLOTS: usize = 4;

/// A thread's replicas: deep copies of recently read tokens, keyed by entry id.
struct Replicas {
    slots: [(u64, Option<AccessToken>); REPLICA_SLOTS],
    next: usize,
}

thread_local! {
    static REPLICAS: RefCell<Replicas> =
        const { RefCell::new(Replicas { slots: [const { (0, None) }; REPLICA_SLOTS], next: 0 }) };
}

/// A clone of `entry`'s token whose reference count only this thread writes.
///
/// Cloning the one `Arc` behind a cached token on every read makes every reading core write the same
/// cache line (the strong count), and two cores then read slower than one. Instead each thread clones
/// its own deep copy, made on its first read of the entry. A replica lives until the thread reads
/// [`REPLICA_SLOTS`] other entries or exits; it is never handed out once its entry is replaced.
fn replica(entry: &Entry) -> AccessToken {
    let from_slot = REPLICAS.try_with(|replicas| {
        let mut replicas = replicas.try_borrow_mut().ok()?;
        if let Some((_, Some(token))) = replicas.slots.iter().find(|(id, _)| *id == entry.id) {
            return Some(token.clone());
        }
        let copy = entry.token.to_builder().build();
        let slot = replicas.next;
        replicas.next = (slot + 1) % REPLICA_SLOTS;
        replicas.slots[slot] = (entry.id, Some(copy.clone()));
        Some(copy)
    });
    // Only while the thread is being torn down (or re-entered): fall back to the shared `Arc`.
    from_slot.ok().flatten().unwrap_or_else(|| entry.token.clone())
}

type FlightResult = Option<Result<AccessToken>>;

#[derive(Default)]
struct State {
    flight: Option<watch::Receiver<FlightResult>>,
    failures: u32,
    backoff_until: Option<Duration>,
    last_error: Option<Error>,
}

struct Shared<S> {
    source: S,
    key: String,
    current: ArcSwapOption<Entry>,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    store: Arc<dyn TokenStore>,
}

/// A caching [`TokenProvider`] around a [`TokenSource`]: lock-free cached reads, early refresh
/// ([`RefreshPolicy`]), single-flight fetches, back-off on failure, invalidation, and a [`TokenStore`].
///
/// Cloning is cheap and clones share the cache.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tokensmith_core::{AccessToken, CachedProvider, ProviderSource, TokenProvider, provide_token_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith_core::Result<()> {
/// let fetches = Arc::new(AtomicUsize::new(0));
/// let counter = fetches.clone();
/// let source = provide_token_fn(move || {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async { Ok(AccessToken::builder("t").build()) }
/// });
/// let cached = CachedProvider::new(ProviderSource::new(source, "demo"));
/// cached.token().await?;
/// cached.token().await?;
/// assert_eq!(fetches.load(Ordering::SeqCst), 1);
/// # Ok(()) }
/// ```
pub struct CachedProvider<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for CachedProvider<S> {
    fn clone(&self) -> Self {
        CachedProvider { shared: self.shared.clone() }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedProvider<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.shared.current.load();
        f.debug_struct("CachedProvider")
            .field("source", &self.shared.source)
            .field("key", &self.shared.key)
            .field("cached", &current.as_ref().map(|e| &e.token))
            .field("policy", &self.shared.policy)
            .field("store", &self.shared.store)
            .finish()
    }
}

/// Configures a [`CachedProvider`].
pub struct CachedProviderBuilder<S> {
    source: S,
    key: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    policy: RefreshPolicy,
    store: Option<Arc<dyn TokenStore>>,
}

impl<S: fmt::Debug> fmt::Debug for CachedProviderBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProviderBuilder")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> CachedProviderBuilder<S> {
    /// The clock (default [`SystemClock`]; use [`TokioClock`](crate::TokioClock) with paused time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The refresh policy.
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The token store (default: a private [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The store key (default: the source's [`cache_key`](TokenSource::cache_key)).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Builds the cache. It starts empty; the store is read when a token is first needed.
    pub fn build(self) -> CachedProvider<S> {
        let key = self.key.unwrap_or_else(|| self.source.cache_key());
        CachedProvider {
            shared: Arc::new(Shared {
                source: self.source,
                key,
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                policy: self.policy,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            }),
        }
    }
}

impl<S: TokenSource> CachedProvider<S> {
    /// A cache around `source` with the defaults.
    pub fn new(source: S) -> Self {
        Self::builder(source).build()
    }

    /// Starts configuring a cache around `source`.
    pub fn builder(source: S) -> CachedProviderBuilder<S> {
        CachedProviderBuilder { source, key: None, clock: None, policy: RefreshPolicy::default(), store: None }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// Calls `f` with the cached token if it is fresh, without cloning it: the cheapest read, for hot
    /// paths that only need to look at the token (e.g. to format a header).
    #[inline]
    pub fn with_cached<R>(&self, f: impl FnOnce(&AccessToken) -> R) -> Option<R> {
        let guard = self.shared.current.load();
        let entry = guard.as_ref()?;
        (self.shared.clock.monotonic() < entry.refresh_at).then(|| f(&entry.token))
    }

    /// The cached token if it is fresh (not yet due for refresh).
    ///
    /// No lock and, after a thread's first read of a token, no allocation: each thread clones its own
    /// replica of the token (made on its first read), so that reads from many threads scale instead of
    /// contending on one shared reference count. The replica is equal to the cached token
    /// ([`AccessToken::same_token`]) but is another allocation; a thread keeps replicas of its last few
    /// tokens until it exits.
    #[inline]
    pub fn cached_token(&self) -> Option<AccessToken> {
        let guard = self.shared.current.load();
        let entry = guard.as_ref()?;
        (self.shared.clock.monotonic() < entry.refresh_at).then(|| replica(entry))
    }

    /// Returns a valid token, fetching one if the cached one is missing or due for refresh.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let mut receiver = {
            let mut state = self.shared.state.lock().map_err(|_| poisoned())?;
            let now = self.shared.clock.monotonic();
            if let Some(token) = self.fresh_at(now) {
                return Ok(token);
            }
            match &state.flight {
                Some(receiver) => receiver.clone(),
                None => {
                    if let Some(until) = state.backoff_until.filter(|until| now < *until) {
                        // A failure that retrying cannot fix (the provider refused the client, the
                        // user must authorize again) is repeated as it was, so callers see its type;
                        // a passing one is reported as the back-off it caused.
                        return self.usable_at(now).ok_or_else(|| match &state.last_error {
                            Some(last) if !last.is_retryable() => last.clone(),
                            last => Error::BackingOff {
                                retry_in: until - now,
                                last: last.as_ref().map(ToString::to_string).unwrap_or_default(),
                            },
                        });
                    }
                    let (sender, receiver) = watch::channel(None);
                    state.flight = Some(receiver.clone());
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        let mut guard = FlightGuard { shared: &shared, sender: Some(sender) };
                        let result = shared.run_fetch().await;
                        guard.finish(result);
                    });
                    receiver
                }
            }
        };
        let outcome = receiver.wait_for(Option::is_some).await.map_err(|_| {
            Error::store("the token fetch task ended without a result (it panicked or the runtime shut down)", None)
        })?;
        match outcome.as_ref() {
            Some(result) => result.clone(),
            None => Err(Error::store("the token fetch ended without a result", None)),
        }
    }

    /// Reports that `token` was rejected; it is dropped if it is still the current token, so that the
    /// next call fetches a new one. Its refresh token is kept for that fetch.
    pub fn invalidate(&self, token: &AccessToken) {
        let current = self.shared.current.load();
        if let Some(entry) = current.as_ref() {
            if entry.token.same_token(token) && entry.usable_until > Duration::ZERO {
                let stale = Arc::new(Entry::new(entry.token.clone(), Duration::ZERO, Duration::ZERO));
                let _ = self.shared.current.compare_and_swap(&current, Some(stale));
                tracing::debug!(key = %self.shared.key, "cached token invalidated after a rejection");
            }
        }
    }

    /// Stops handing out the cached token and forgets failures, so the next call fetches. The store
    /// is kept, and so is the token's refresh token for that fetch; the same token read back from the
    /// store is not adopted again.
    pub fn clear(&self) {
        let current = self.shared.current.load();
        if let Some(entry) = current.as_ref() {
            let stale = Arc::new(Entry::new(entry.token.clone(), Duration::ZERO, Duration::ZERO));
            // If a fetch published a new token meanwhile, that one stays.
            let _ = self.shared.current.compare_and_swap(&current, Some(stale));
        }
        if let Ok(mut state) = self.shared.state.lock() {
            state.failures = 0;
            state.backoff_until = None;
        }
    }

    /// Puts `token` in the cache and the store, e.g. after an authorization-code exchange.
    pub async fn insert(&self, token: AccessToken) -> Result<()> {
        self.shared.store.save(&self.shared.key, &token).await?;
        self.shared.publish(token);
        if let Ok(mut state) = self.shared.state.lock() {
            state.failures = 0;
            state.backoff_until = None;
        }
        Ok(())
    }

    fn fresh_at(&self, now: Duration) -> Option<AccessToken> {
        let guard = self.shared.current.load();
        guard.as_ref().filter(|e| now < e.refresh_at).map(|e| e.token.clone())
    }

    fn usable_at(&self, now: Duration) -> Option<AccessToken> {
        self.shared.usable_at(now)
    }
}

fn poisoned() -> Error {
    Error::store("the token cache's lock is poisoned (a thread panicked while holding it)", None)
}

impl<S: TokenSource> Shared<S> {
    fn usable_at(&self, now: Duration) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| now < e.usable_until).map(|e| e.token.clone())
    }

    fn publish(&self, token: AccessToken) {
        let now = self.clock.monotonic();
        let remaining = token.expires_in(self.clock.system_time());
        let lifetime = token.lifetime().max(remaining);
        let margin = self.policy.jittered_margin(lifetime);
        let skew = self.policy.expiry_skew(lifetime);
        let entry = Entry::new(token, now + remaining.saturating_sub(margin), now + remaining.saturating_sub(skew));
        tracing::debug!(
            key = %self.key,
            lifetime_s = lifetime.as_secs(),
            refresh_in_ms = (entry.refresh_at - now).as_millis() as u64,
            "token cached"
        );
        self.current.store(Some(Arc::new(entry)));
    }

    /// One fetch: read the store, fetch, save, publish. Runs in its own task.
    ///
    /// The store is read before every fetch: a token set in it that expires later than the cached one
    /// was saved by an earlier run or by another process sharing the store. It is adopted; if it is
    /// fresh no request is made, otherwise its refresh token (the latest, with rotating refresh
    /// tokens) is the one refreshed from. A coordinating store is then locked (see
    /// [`fetch_coordinated`](Self::fetch_coordinated)).
    async fn run_fetch(self: &Arc<Self>) -> Result<AccessToken> {
        let coordinated = self.store.coordinates();
        match self.store.load(&self.key).await {
            Ok(Some(stored)) => {
                if let Some(token) = self.adopt(stored) {
                    tracing::debug!(key = %self.key, "fresh token found in the token store; no request made");
                    return Ok(token);
                }
            }
            Ok(None) => {}
            Err(e) if coordinated => return self.fetch_unlocked(e).await,
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "token store could not be read");
                return Err(e);
            }
        }
        if coordinated { self.fetch_coordinated().await } else { self.fetch_and_save().await }
    }

    /// Adopts `stored` if it is newer than the cached token; returns it if it is fresh.
    fn adopt(&self, stored: AccessToken) -> Option<AccessToken> {
        let newer = self.current.load().as_ref().is_none_or(|e| stored.expires_at() > e.token.expires_at());
        if !newer {
            return None;
        }
        self.publish(stored);
        self.fresh(self.clock.monotonic())
    }

    fn current_token(&self) -> Option<AccessToken> {
        self.current.load_full().map(|e| e.token.clone())
    }

    /// Fetches, saves (unconditionally) and publishes: a store that does not coordinate.
    ///
    /// A token set that cannot be saved is still valid: it is served from memory, and saved again in
    /// the background (see [`save_later`](Self::save_later)), because with a rotating refresh token
    /// the set in memory holds the only refresh token the provider still accepts.
    async fn fetch_and_save(self: &Arc<Self>) -> Result<AccessToken> {
        let token = self.source.fetch(self.current_token().as_ref()).await?;
        let saved = self.store.save(&self.key, &token).await;
        self.publish(token.clone());
        if let Err(e) = saved {
            tracing::error!(key = %self.key, error = %e, "new token could not be saved in the token store; retrying in the background");
            self.save_later(token.clone());
        }
        Ok(token)
    }

    /// Saves `token` in the background after a failed save: from 1 s, doubling up to 60 s, until a
    /// save succeeds, a newer token set replaces it in the cache or the store, or the cache is dropped.
    fn save_later(self: &Arc<Self>, token: AccessToken) {
        const FIRST: Duration = Duration::from_secs(1);
        const MAX: Duration = Duration::from_secs(60);
        let shared = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut delay = FIRST;
            for attempt in 2u32.. {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX);
                let Some(shared) = shared.upgrade() else { return };
                let current = shared.current.load();
                if !current.as_ref().is_some_and(|e| e.token.same_token(&token)) {
                    return; // replaced by a newer set, which had its own save
                }
                drop(current);
                match shared.store.load(&shared.key).await {
                    Ok(Some(stored)) if stored.expires_at() >= token.expires_at() => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(key = %shared.key, attempt, error = %e, "token store still unreadable; the token set is not saved yet");
                        continue;
                    }
                }
                match shared.store.save(&shared.key, &token).await {
                    Ok(()) => {
                        tracing::info!(key = %shared.key, attempt, "token set saved in the token store after an earlier failure");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(key = %shared.key, attempt, error = %e, "token set still not saved in the token store");
                    }
                }
            }
        });
    }

    /// Takes the fleet-wide refresh lock, or waits for the process holding it to save a new token set.
    ///
    /// While another process holds the lock, the store is polled (10 ms, doubling to 100 ms) for a
    /// fresh token set and the lock is tried again (it is free again once the holder unlocks, or its
    /// lease lapses because the holder died). After [`RefreshPolicy::lock_wait`] the failure policy
    /// applies.
    async fn fetch_coordinated(self: &Arc<Self>) -> Result<AccessToken> {
        const FIRST_POLL: Duration = Duration::from_millis(10);
        const MAX_POLL: Duration = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        let mut delay = FIRST_POLL;
        loop {
            match self.store.lock_refresh(&self.key, self.policy.lock_lease).await {
                Ok(RefreshLock::Acquired(guard)) => {
                    let result = self.fetch_locked(&guard).await;
                    if let Err(e) = self.store.unlock(&self.key, &guard).await {
                        tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be released; it lapses with its lease");
                    }
                    return result;
                }
                Ok(RefreshLock::HeldElsewhere) => {}
                Ok(RefreshLock::NotCoordinated) => return self.fetch_and_save().await,
                Err(e) => return self.fetch_unlocked(e).await,
            }
            if waited >= self.policy.lock_wait {
                let cause = Error::store(
                    format!(
                        "another process has held the refresh lock for over {:?} without saving a new token set",
                        self.policy.lock_wait
                    ),
                    None,
                );
                return self.fetch_unlocked(cause).await;
            }
            tokio::time::sleep(delay).await;
            waited += delay;
            delay = (delay * 2).min(MAX_POLL);
            match self.store.load(&self.key).await {
                Ok(Some(stored)) => {
                    if let Some(token) = self.adopt(stored) {
                        tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                        return Ok(token);
                    }
                }
                Ok(None) => {}
                Err(e) => return self.fetch_unlocked(e).await,
            }
        }
    }

    /// Holding the lock: re-reads the store, fetches while renewing the lease, saves fenced, publishes.
    async fn fetch_locked(&self, guard: &LockGuard) -> Result<AccessToken> {
        // Another process may have saved a new set between our load and our lock.
        match self.store.load(&self.key).await {
            Ok(Some(stored)) => {
                if let Some(token) = self.adopt(stored) {
                    tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                    return Ok(token);
                }
            }
            Ok(None) => {}
            Err(e) => return self.fetch_unlocked(e).await,
        }
        let current = self.current_token();
        let fetched = {
            let fetch = self.source.fetch(current.as_ref());
            let renew = self.renew_lock(guard);
            tokio::pin!(fetch, renew);
            tokio::select! {
                biased;
                result = &mut fetch => result,
                never = &mut renew => match never {},
            }
        };
        let token = fetched?;
        match self.store.save_fenced(&self.key, &token, guard).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    key = %self.key,
                    fence = guard.fence(),
                    "another process saved a newer token set while this one refreshed (the lock's lease lapsed); adopting it"
                );
                if let Ok(Some(stored)) = self.store.load(&self.key).await {
                    if let Some(token) = self.adopt(stored) {
                        return Ok(token);
                    }
                }
            }
            Err(e) => {
                // The token is valid; keep serving it from memory, but say that it was not saved.
                tracing::error!(key = %self.key, error = %e, "new token could not be saved in the token store");
            }
        }
        self.publish(token.clone());
        Ok(token)
    }

    /// Renews the lock every third of its lease while the fetch runs; never returns.
    async fn renew_lock(&self, guard: &LockGuard) -> std::convert::Infallible {
        let lease = self.policy.lock_lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            match self.store.extend_lock(&self.key, guard, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(key = %self.key, fence = guard.fence(), "the refresh lock was lost while refreshing; the new token set is saved only if no newer one was");
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be renewed");
                }
            }
        }
    }

    /// The failure policy when the coordinating store fails (or the lock is never freed): a source that
    /// does not rotate its grant fetches for this process alone, with a warning, and the token is not
    /// saved; a rotating grant is never refreshed without the lock.
    async fn fetch_unlocked(&self, cause: Error) -> Result<AccessToken> {
        if self.source.rotates_grant() {
            tracing::error!(
                key = %self.key,
                error = %cause,
                "the refresh was refused: a rotating refresh token is never refreshed without the fleet-wide lock"
            );
            return Err(Error::store(
                format!(
                    "the refresh was refused because the fleet-wide refresh lock could not be taken ({cause}); a rotating refresh token is never refreshed without it, since two processes refreshing it would invalidate each other: make the shared store reachable again (the cache retries after a back-off and serves the current token while it is valid)"
                ),
                Some(Arc::new(cause) as BoxError),
            ));
        }
        tracing::warn!(
            key = %self.key,
            error = %cause,
            "the shared token store cannot coordinate this refresh; fetching a token for this process alone"
        );
        let token = self.source.fetch(self.current_token().as_ref()).await?;
        self.publish(token.clone());
        Ok(token)
    }

    fn fresh(&self, now: Duration) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| now < e.refresh_at).map(|e| e.token.clone())
    }
}

/// Ends a flight: records success or failure, clears the in-flight marker and wakes every waiter,
/// also when the fetch task panics (then waiters see the channel close).
struct FlightGuard<'a, S: TokenSource> {
    shared: &'a Shared<S>,
    sender: Option<watch::Sender<FlightResult>>,
}

impl<S: TokenSource> FlightGuard<'_, S> {
    fn finish(&mut self, result: Result<AccessToken>) {
        let now = self.shared.clock.monotonic();
        let result = {
            let Ok(mut state) = self.shared.state.lock() else { return };
            state.flight = None;
            match result {
                Ok(token) => {
                    state.failures = 0;
                    state.backoff_until = None;
                    state.last_error = None;
                    Ok(token)
                }
                Err(error) => {
                    state.failures = state.failures.saturating_add(1);
                    let backoff = self.shared.policy.backoff(state.failures);
                    state.backoff_until = Some(now + backoff);
                    state.last_error = Some(error.clone());
                    match self.shared.usable_at(now) {
                        Some(old) => {
                            tracing::warn!(key = %self.shared.key, error = %error, backoff_ms = backoff.as_millis() as u64, "token refresh failed; serving the still-valid token");
                            Ok(old)
                        }
                        _ => {
                            tracing::warn!(key = %self.shared.key, error = %error, backoff_ms = backoff.as_millis() as u64, "token fetch failed");
                            Err(error)
                        }
                    }
                }
            }
        };
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(result));
        }
    }
}

impl<S: TokenSource> Drop for FlightGuard<'_, S> {
    fn drop(&mut self) {
        if self.sender.is_some() {
            if let Ok(mut state) = self.shared.state.lock() {
                state.flight = None;
            }
        }
    }
}

#[async_trait]
impl<S: TokenSource> TokenProvider for CachedProvider<S> {
    async fn token(&self) -> Result<AccessToken> {
        CachedProvider::token(self).await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        CachedProvider::cached_token(self)
    }

    fn invalidate(&self, token: &AccessToken) {
        CachedProvider::invalidate(self, token)
    }
}
