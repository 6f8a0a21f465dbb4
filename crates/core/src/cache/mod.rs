//! The token cache: cheap cached reads, early refresh, single-flight fetches, back-off on failure.
//!
//! [`CachedProvider`] wraps a [`TokenSource`] (anything that can fetch a token) and implements
//! [`TokenProvider`]:
//!
//! - **Cached reads** ([`CachedProvider::cached_token`], [`CachedProvider::with_cached`]) load the
//!   current entry through `arc-swap` and compare two timestamps from the [`Clock`] (coarse
//!   monotonic and coarse wall clock, so that a token that expired while the machine slept is not
//!   served): no lock, no allocation, no write to memory shared between threads. `with_cached` lends
//!   the token without cloning it; `cached_token` clones a per-thread replica of it (see its docs),
//!   so that threads reading at once do not contend on one reference count.
//! - **Early refresh** — see [`RefreshPolicy`]: a token is refreshed when a margin proportional to its
//!   lifetime remains, minus jitter.
//! - **Single flight**: however many callers need a token at once, one fetch runs (in its own task on
//!   the caller's Tokio runtime, so that a caller that gives up cannot cancel a refresh whose response
//!   would carry a rotated refresh token); everyone waits for its result. A rotated refresh token is
//!   therefore never sent twice. Whatever happens to the task (it panics, or its runtime shuts down
//!   before polling it), the flight ends with [`Error::Runtime`] and a back-off; a miss outside any
//!   Tokio runtime is [`Error::Runtime`] at once.
//! - **Failures**: while fetches fail, callers keep getting the still-valid token; once it has expired
//!   they get the error. A failed fetch starts an exponential back-off during which no new fetch is
//!   made; failures are never cached as tokens, and neither is a fetched token that is already
//!   expired (that is a failure too).
//! - **Invalidate**: reporting a rejected token drops it only if it is still current.
//! - **Store**: every new token set is saved in the [`TokenStore`] before it is handed out; the store
//!   is read before every fetch, and a set in it with a larger store version than the cached one
//!   (saved by an earlier run or another process) is adopted instead of fetching, or refreshed from.
//!   Recency is the store's version, never a comparison of expiry instants written by different
//!   hosts. A set that cannot be saved is still handed out, and saved again in the background (1 s,
//!   doubling to 60 s) until a save succeeds or a newer set replaces it: with a rotating refresh
//!   token it holds the only refresh token the provider still accepts. A store that does not
//!   coordinate and lost the newest set (its version went backwards) gets it written back.
//! - **Fleet coordination**: with a store that [coordinates](TokenStore::coordinates) (Redis), a fetch
//!   first takes the store's refresh lock, so that across every process sharing the store one refresh
//!   of a key is in flight; the others wait (at most [`RefreshPolicy::lock_wait`] of elapsed time)
//!   for the token set it saves and adopt it. The lock's lease is renewed right before the request is
//!   sent (no request goes out on a lease that may have lapsed) and while it runs, and the new set is
//!   saved *fenced*, so that a process that lost its lock cannot overwrite a newer set; a fenced save
//!   that fails keeps the lock and is retried in the background. When the store is unreachable, a
//!   source that does not rotate its grant (client credentials) fetches for its process alone, with
//!   a warning; a rotating refresh token ([`TokenSource::rotates_grant`]) is never refreshed without
//!   the lock: the fetch fails with [`Error::Store`] and the still-valid token keeps being served.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use crate::store::{LockGuard, MemoryStore, RefreshLock, TokenStore, Versioned, store_key};
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
/// - A fetched token that is already expired (or expires within the cache's skew) is never handed
///   out: the fetch counts as failed and backs off.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug + 'static {
    /// Fetches a new token.
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken>;

    /// The store key: it must name everything that decides which token is issued — the authorization
    /// server (issuer or token URL), the client id, the grant, the scopes and any audience or resource
    /// parameters — so that two sources that may get different tokens never share a stored set. Build
    /// it with [`store_key`], which escapes each part.
    fn cache_key(&self) -> String;

    /// A key this source's token sets were stored under by earlier versions of tokensmith, read (and
    /// copied to [`cache_key`](TokenSource::cache_key)) when nothing is stored under the current key,
    /// so that an upgrade loses no stored grant. Default: none.
    fn legacy_cache_key(&self) -> Option<String> {
        None
    }

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

/// The store key of the token sets `client` gets with `grant` and `scopes`: provider, token URL,
/// client id, grant, scopes (sorted) and, when the endpoint sends extra parameters (audience,
/// resource, tenant, ...), a digest of them (their values may be secrets, so they are not written
/// out).
fn cache_key(client: &TokenClient, grant: &str, scopes: &Scopes) -> String {
    let endpoint = client.endpoint();
    let mut sorted: Vec<&str> = scopes.iter().collect();
    sorted.sort_unstable();
    let scopes = sorted.join(" ");
    let params = endpoint.extra_params();
    let digest = (!params.is_empty()).then(|| {
        use sha2::Digest as _;
        let mut pairs: Vec<&(String, String)> = params.iter().collect();
        pairs.sort();
        let mut hasher = sha2::Sha256::new();
        for (name, value) in pairs {
            for part in [name, value] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
        let hash = hasher.finalize();
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("params-{hex}")
    });
    let parts = [client.provider(), endpoint.token_url().as_str(), client.credentials().client_id(), grant, &scopes];
    store_key(parts.into_iter().chain(digest.as_deref()))
}

/// The key of tokensmith 0.1.0 (`provider/client_id/scopes`), read once when the current key holds
/// nothing.
fn legacy_cache_key(client: &TokenClient, scopes: &Scopes) -> String {
    format!("{}/{}/{}", client.provider(), client.credentials().client_id(), scopes.join(" "))
}

#[async_trait]
impl TokenSource for ClientCredentialsSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.client.request_token(&Grant::ClientCredentials, &self.scopes).await
    }

    fn cache_key(&self) -> String {
        cache_key(&self.client, "client_credentials", &self.scopes)
    }

    fn legacy_cache_key(&self) -> Option<String> {
        Some(legacy_cache_key(&self.client, &self.scopes))
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
        cache_key(&self.client, "refresh_token", &self.scopes)
    }

    fn legacy_cache_key(&self) -> Option<String> {
        Some(legacy_cache_key(&self.client, &self.scopes))
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
        proportional.clamp(self.min_margin, self.max_margin.max(self.min_margin)).min(half(lifetime))
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
        margin.saturating_add(extra).min(half(lifetime))
    }

    /// How long before expiry a token stops being handed out.
    pub fn expiry_skew(&self, lifetime: Duration) -> Duration {
        lifetime.checked_div(10).unwrap_or_default().min(self.max_expiry_skew)
    }

    /// The back-off after `failures` consecutive failed fetches.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(31)));
        let capped = exp.min(self.max_backoff);
        // Up to 25 % jitter downwards.
        let jitter = capped.checked_div(4).unwrap_or_default();
        if jitter.is_zero() {
            capped
        } else {
            capped.saturating_sub(Duration::from_nanos(
                rand::rng().random_range(0..=u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX)),
            ))
        }
    }
}

/// The current token and the instants at which it is refreshed and stops being usable, on the
/// monotonic clock and on the wall clock: it is fresh (or usable) only while both say so (see
/// [`Clock`]: the wall clock counts a suspended machine's sleep, the monotonic one does not).
struct Entry {
    /// Unique in the process, so that a thread's replica of an entry's token is never mistaken for
    /// another entry's (see [`replica`]).
    id: u64,
    token: AccessToken,
    refresh_at: Duration,
    usable_until: Duration,
    /// Milliseconds since the Unix epoch.
    refresh_at_wall: u64,
    usable_until_wall: u64,
    /// The store's version of this set; for a set not (yet) saved, the version of the set it was
    /// fetched from, so that a set saved later by another process is recognised as newer.
    version: Option<u64>,
    /// Whether the store holds this set, or need not: a set fetched for this process alone while a
    /// shared store is unreachable (client credentials) is nobody's to save. `false` only while a
    /// failed save is retried in the background.
    saved: bool,
}

static NEXT_ENTRY_ID: AtomicU64 = AtomicU64::new(1);

impl Entry {
    #[inline]
    fn fresh(&self, clock: &dyn Clock) -> bool {
        let (monotonic, wall) = clock.both();
        monotonic < self.refresh_at && wall < self.refresh_at_wall
    }

    fn usable(&self, clock: &dyn Clock) -> bool {
        clock.monotonic() < self.usable_until && clock.wall_millis() < self.usable_until_wall
    }

    /// The same token set, never fresh nor usable again (its refresh token is kept for the next fetch).
    fn stale(&self) -> Entry {
        Entry {
            id: NEXT_ENTRY_ID.fetch_add(1, Ordering::Relaxed),
            token: self.token.clone(),
            refresh_at: Duration::ZERO,
            usable_until: Duration::ZERO,
            refresh_at_wall: 0,
            usable_until_wall: 0,
            version: self.version,
            saved: self.saved,
        }
    }
}

/// Half of `d` (no arithmetic that could panic, for the lints that check it).
fn half(d: Duration) -> Duration {
    d.checked_div(2).unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
        replicas.next = slot.saturating_add(1) % REPLICA_SLOTS;
        if let Some(place) = replicas.slots.get_mut(slot) {
            *place = (entry.id, Some(copy.clone()));
        }
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
    /// Read, and copied to `key`, when `key` holds nothing (see [`TokenSource::legacy_cache_key`]).
    legacy_key: Option<String>,
    legacy_checked: AtomicBool,
    current: ArcSwapOption<Entry>,
    state: Mutex<State>,
    /// Held around every save of a token set and the publication that follows, so that a
    /// background re-save never puts an older set over a newer one saved by this process.
    save_lock: tokio::sync::Mutex<()>,
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
    legacy_key: Option<String>,
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

    /// A key earlier versions stored this cache's token sets under: read, and copied to the key,
    /// when the key holds nothing, so that a change of key loses no stored grant (default: the
    /// source's [`legacy_cache_key`](TokenSource::legacy_cache_key) when no [`key`](Self::key) is set).
    pub fn legacy_key(mut self, key: impl Into<String>) -> Self {
        self.legacy_key = Some(key.into());
        self
    }

    /// Builds the cache. It starts empty; the store is read when a token is first needed.
    pub fn build(self) -> CachedProvider<S> {
        let legacy_key = match &self.key {
            Some(_) => self.legacy_key,
            None => self.legacy_key.or_else(|| self.source.legacy_cache_key()),
        };
        let key = self.key.unwrap_or_else(|| self.source.cache_key());
        CachedProvider {
            shared: Arc::new(Shared {
                source: self.source,
                legacy_key: legacy_key.filter(|legacy| *legacy != key),
                key,
                legacy_checked: AtomicBool::new(false),
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                save_lock: tokio::sync::Mutex::new(()),
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
        CachedProviderBuilder {
            source,
            key: None,
            legacy_key: None,
            clock: None,
            policy: RefreshPolicy::default(),
            store: None,
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// The store key of this cache's token sets.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Calls `f` with the cached token if it is fresh, without cloning it: the cheapest read, for hot
    /// paths that only need to look at the token (e.g. to format a header).
    #[inline]
    pub fn with_cached<R>(&self, f: impl FnOnce(&AccessToken) -> R) -> Option<R> {
        let guard = self.shared.current.load();
        let entry = guard.as_ref()?;
        entry.fresh(&*self.shared.clock).then(|| f(&entry.token))
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
        entry.fresh(&*self.shared.clock).then(|| replica(entry))
    }

    /// Returns a valid token, fetching one if the cached one is missing or due for refresh.
    ///
    /// # Runtime
    ///
    /// A fetch runs as a task on the Tokio runtime of the calling thread (so that a caller that gives
    /// up cannot cancel a refresh whose response carries a rotated refresh token). Called where no
    /// Tokio runtime is running, a cache hit is still served, and a miss is [`Error::Runtime`] (never
    /// a panic). Blocking on `token()` (e.g. with `Handle::block_on` or `futures::executor::block_on`)
    /// from the only thread of a `current_thread` runtime cannot complete: the fetch task needs that
    /// thread to run. Use a multi-thread runtime, or `.await` it.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let (mut receiver, flight) = {
            let mut state = self.shared.lock_state();
            if let Some(token) = self.shared.fresh() {
                return Ok(token);
            }
            match &state.flight {
                Some(receiver) => (receiver.clone(), None),
                None => {
                    let now = self.shared.clock.monotonic();
                    if let Some(until) = state.backoff_until.filter(|until| now < *until) {
                        // A failure that retrying cannot fix (the provider refused the client, the
                        // user must authorize again) is repeated as it was, so callers see its type;
                        // a passing one is reported as the back-off it caused.
                        return self.shared.usable().ok_or_else(|| match &state.last_error {
                            Some(last) if !last.is_retryable() => last.clone(),
                            last => Error::BackingOff {
                                retry_in: until.saturating_sub(now),
                                last: last.as_ref().map(ToString::to_string).unwrap_or_default(),
                            },
                        });
                    }
                    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Runtime {
                        message: "no Tokio runtime is running on this thread, and the token must be fetched; call `token()` from within a Tokio runtime (`cached_token()` needs none)".to_owned(),
                    })?;
                    let (sender, receiver) = watch::channel(None);
                    state.flight = Some(receiver.clone());
                    let guard = FlightGuard { shared: self.shared.clone(), sender: Some(sender) };
                    (receiver, Some((runtime, guard)))
                }
            }
        };
        // Spawned with the state lock released: a runtime that is shutting down drops the task at
        // once, and the guard's drop then takes the lock to end the flight.
        if let Some((runtime, mut guard)) = flight {
            runtime.spawn(async move {
                let result = guard.shared.run_fetch().await;
                guard.finish(result);
            });
        }
        let outcome = receiver.wait_for(Option::is_some).await.map_err(|_| Error::Runtime {
            message: "the token fetch task ended without a result (its runtime shut down)".to_owned(),
        })?;
        match outcome.as_ref() {
            Some(result) => result.clone(),
            None => Err(Error::Runtime { message: "the token fetch ended without a result".to_owned() }),
        }
    }

    /// Reports that `token` was rejected; it is dropped if it is still the current token, so that the
    /// next call fetches a new one. Its refresh token is kept for that fetch.
    pub fn invalidate(&self, token: &AccessToken) {
        let current = self.shared.current.load();
        if let Some(entry) = current.as_ref() {
            if entry.token.same_token(token) && entry.usable_until > Duration::ZERO {
                let _ = self.shared.current.compare_and_swap(&current, Some(Arc::new(entry.stale())));
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
            // If a fetch published a new token meanwhile, that one stays.
            let _ = self.shared.current.compare_and_swap(&current, Some(Arc::new(entry.stale())));
        }
        let mut state = self.shared.lock_state();
        state.failures = 0;
        state.backoff_until = None;
    }

    /// Puts `token` in the cache and the store, e.g. after an authorization-code exchange.
    ///
    /// The set is cached whatever happens to the save, so that a grant whose code is already spent
    /// is never lost: when the save fails, the set is served from this cache, saved again in the
    /// background (as after any failed save), and the error ([`Error::Store`]) says so. Probe the
    /// store with [`check_store`](Self::check_store) before an authorization to fail before the code
    /// is spent instead.
    pub async fn insert(&self, token: AccessToken) -> Result<()> {
        let saved = {
            let _writing = self.shared.save_lock.lock().await;
            let base = self.shared.current.load().as_ref().and_then(|e| e.version);
            match self.shared.store.save_versioned(&self.shared.key, &token).await {
                Ok(version) => {
                    self.shared.publish(token, version, true);
                    Ok(())
                }
                Err(e) => {
                    self.shared.publish(token.clone(), base, false);
                    self.shared.save_later(token, None);
                    Err(e)
                }
            }
        };
        let mut state = self.shared.lock_state();
        state.failures = 0;
        state.backoff_until = None;
        drop(state);
        saved.map_err(|e| {
            tracing::error!(key = %self.shared.key, error = %e, "new token set could not be saved; kept in memory and saved again in the background");
            Error::store(
                format!(
                    "the new token set could not be saved ({e}); this provider keeps it in memory, serves it, and saves it again in the background until the store accepts it: fix the store (its path, permissions, or server) before this process exits"
                ),
                Some(Arc::new(e) as BoxError),
            )
        })
    }

    /// Checks that the store can save token sets ([`TokenStore::probe`]): call it before sending a
    /// user to consent, since the code the consent yields is spent by the exchange.
    pub async fn check_store(&self) -> Result<()> {
        self.shared.store.probe().await
    }

    /// The current token set if it is not yet saved in the store (a save failed and is being retried
    /// in the background), e.g. to write it somewhere safe before the process exits.
    pub fn unsaved(&self) -> Option<AccessToken> {
        let current = self.shared.current.load();
        current.as_ref().filter(|e| !e.saved).map(|e| e.token.clone())
    }
}

impl<S: TokenSource> Shared<S> {
    /// The state, also after a panic elsewhere while it was held (it is consistent at every point a
    /// panic could happen: a few plain fields).
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| e.fresh(&*self.clock)).map(|e| e.token.clone())
    }

    fn usable(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        guard.as_ref().filter(|e| e.usable(&*self.clock)).map(|e| e.token.clone())
    }

    /// Caches `token` as the current set: `version` is its store version (or, unsaved, the version
    /// of the set it was fetched from), `saved` whether the store holds it.
    fn publish(&self, token: AccessToken, version: Option<u64>, saved: bool) {
        let now = self.clock.monotonic();
        let wall = self.clock.wall_millis();
        let remaining = token.expires_in(self.clock.system_time());
        let lifetime = token.lifetime().max(remaining);
        let refresh_in = remaining.saturating_sub(self.policy.jittered_margin(lifetime));
        let usable_for = remaining.saturating_sub(self.policy.expiry_skew(lifetime));
        let entry = Entry {
            id: NEXT_ENTRY_ID.fetch_add(1, Ordering::Relaxed),
            token,
            refresh_at: now.saturating_add(refresh_in),
            usable_until: now.saturating_add(usable_for),
            refresh_at_wall: wall.saturating_add(millis(refresh_in)),
            usable_until_wall: wall.saturating_add(millis(usable_for)),
            version,
            saved,
        };
        tracing::debug!(
            key = %self.key,
            lifetime_s = lifetime.as_secs(),
            refresh_in_ms = millis(refresh_in),
            version,
            saved,
            "token cached"
        );
        self.current.store(Some(Arc::new(entry)));
    }

    /// Records that the store now holds `token` at `version`, if it is still the current set.
    fn mark_saved(&self, token: &AccessToken, version: Option<u64>) {
        let current = self.current.load();
        if let Some(entry) = current.as_ref().filter(|e| e.token.same_token(token)) {
            let updated = Entry {
                id: entry.id,
                token: entry.token.clone(),
                refresh_at: entry.refresh_at,
                usable_until: entry.usable_until,
                refresh_at_wall: entry.refresh_at_wall,
                usable_until_wall: entry.usable_until_wall,
                version: version.or(entry.version),
                saved: true,
            };
            let _ = self.current.compare_and_swap(&current, Some(Arc::new(updated)));
        }
    }

    /// A fetched token, or an error if it is already expired or expires within the skew: such a
    /// token is never handed out, and the fetch counts as failed (so it backs off).
    fn usable_or_error(&self, token: AccessToken) -> Result<AccessToken> {
        let remaining = token.expires_in(self.clock.system_time());
        let skew = self.policy.expiry_skew(token.lifetime().max(remaining));
        if remaining.is_zero() || remaining <= skew {
            return Err(Error::invalid_response(format!(
                "the token source returned a token that expires in {} ms, too soon to be used (a zero or negative `expires_in`, an expiry in the past, or a clock far off)",
                millis(remaining)
            )));
        }
        Ok(token)
    }

    /// Loads the stored set, falling back once to the legacy key (copying what it holds to the
    /// current key, so that an upgrade loses no grant).
    async fn load(&self) -> Result<Option<Versioned>> {
        let stored = self.store.load_versioned(&self.key).await?;
        if stored.is_some() {
            return Ok(stored);
        }
        let Some(legacy) = self.legacy_key.as_deref().filter(|_| !self.legacy_checked.load(Ordering::Relaxed)) else {
            return Ok(None);
        };
        let old = self.store.load(legacy).await?;
        self.legacy_checked.store(true, Ordering::Relaxed);
        let Some(old) = old else { return Ok(None) };
        // Copied, not moved: a rollback to the earlier version still finds it.
        let version = self.store.save_versioned(&self.key, &old).await?;
        tracing::info!(key = %self.key, legacy_key = %legacy, "token set copied from the key earlier versions stored it under");
        Ok(Some(Versioned::new(old, version)))
    }

    /// One fetch: read the store, fetch, save, publish. Runs in its own task.
    ///
    /// The store is read before every fetch: a set in it that is newer than the cached one (by the
    /// store's version) was saved by an earlier run or by another process sharing the store. It is
    /// adopted; if it is fresh no request is made, otherwise its refresh token (the latest, with
    /// rotating refresh tokens) is the one refreshed from. A coordinating store is then locked (see
    /// [`fetch_coordinated`](Self::fetch_coordinated)).
    async fn run_fetch(self: &Arc<Self>) -> Result<AccessToken> {
        let coordinated = self.store.coordinates();
        match self.load().await {
            Ok(stored) => {
                if !coordinated {
                    self.write_back_if_lost(stored.as_ref()).await;
                }
                if let Some(token) = stored.and_then(|stored| self.adopt(stored)) {
                    tracing::debug!(key = %self.key, "fresh token found in the token store; no request made");
                    return Ok(token);
                }
            }
            Err(e) if coordinated => return self.store_failed(e).await,
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "token store could not be read");
                return Err(e);
            }
        }
        if coordinated { self.fetch_coordinated().await } else { self.fetch_and_save().await }
    }

    /// Adopts `stored` if it is newer than the cached set; returns it if it is fresh.
    ///
    /// Newer means a larger store version. Only when the store or the cached set has no version
    /// (a store that keeps none, a set fetched while the store was unreachable) does a different
    /// set that expires later count as newer.
    fn adopt(&self, stored: Versioned) -> Option<AccessToken> {
        let newer = match self.current.load().as_ref() {
            None => true,
            Some(entry) => match (stored.version, entry.version) {
                (Some(stored_version), Some(cached_version)) => stored_version > cached_version,
                (Some(_), None) => !stored.token.same_token(&entry.token),
                (None, _) => {
                    !stored.token.same_token(&entry.token) && stored.token.expires_at() > entry.token.expires_at()
                }
            },
        };
        if !newer {
            return None;
        }
        self.publish(stored.token, stored.version, true);
        self.fresh()
    }

    /// A store that does not coordinate (memory, file) and lost the set this process saved (its
    /// version went backwards, or the set is gone: a restored backup, a deleted file) gets it back,
    /// so that the newest refresh token is not lost.
    async fn write_back_if_lost(&self, stored: Option<&Versioned>) {
        let current = self.current.load_full();
        let Some(entry) = current.as_ref().filter(|e| e.saved) else { return };
        let Some(cached_version) = entry.version else { return };
        let lost = match stored {
            None => true,
            Some(stored) => stored.version.is_some_and(|v| v < cached_version),
        };
        if !lost {
            return;
        }
        let _writing = self.save_lock.lock().await;
        tracing::warn!(
            key = %self.key,
            cached_version,
            stored_version = stored.and_then(|s| s.version),
            "the token store lost the newest token set this process saved; writing it back"
        );
        match self.store.save_versioned(&self.key, &entry.token).await {
            Ok(version) => self.mark_saved(&entry.token, version),
            Err(e) => tracing::warn!(key = %self.key, error = %e, "the lost token set could not be written back"),
        }
    }

    /// Fetches, saves (unconditionally) and publishes: a store that does not coordinate.
    ///
    /// A token set that cannot be saved is still valid: it is served from memory, and saved again in
    /// the background (see [`save_later`](Self::save_later)), because with a rotating refresh token
    /// the set in memory holds the only refresh token the provider still accepts.
    async fn fetch_and_save(self: &Arc<Self>) -> Result<AccessToken> {
        let current = self.current.load_full();
        let token = self.source.fetch(current.as_ref().map(|e| &e.token)).await?;
        {
            let _writing = self.save_lock.lock().await;
            // The version of the set this one replaces, read now: a background re-save may have
            // saved it since the fetch started.
            let base = self.current.load().as_ref().and_then(|e| e.version);
            match self.store.save_versioned(&self.key, &token).await {
                Ok(version) => self.publish(token.clone(), version, true),
                Err(e) => {
                    tracing::error!(key = %self.key, error = %e, "new token could not be saved in the token store; retrying in the background");
                    self.publish(token.clone(), base, false);
                    self.save_later(token.clone(), None);
                }
            }
        }
        self.usable_or_error(token)
    }

    /// Saves `token` in the background after a failed save: from 1 s, doubling up to 60 s, until a
    /// save succeeds, a newer set replaces it (in the cache or, by version, in the store), or the
    /// cache is dropped.
    ///
    /// With `guard` (a fleet refresh whose fenced save failed) the lock is re-asserted and the save
    /// is fenced, so that the store decides atomically whether a newer set is there; the lock is
    /// released only once the set is saved, so that no other process refreshes from the spent
    /// refresh token meanwhile. Without it (a store that does not coordinate) the check and the save
    /// run under this process's save lock.
    fn save_later(self: &Arc<Self>, token: AccessToken, guard: Option<LockGuard>) {
        const FIRST: Duration = Duration::from_secs(1);
        const MAX: Duration = Duration::from_secs(60);
        let shared = Arc::downgrade(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(key = %self.key, "no Tokio runtime to save the token set again in the background; it is kept in memory only");
            return;
        };
        runtime.spawn(async move {
            let mut delay = FIRST;
            for attempt in 2u32.. {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2).min(MAX);
                let Some(shared) = shared.upgrade() else { return };
                let done = match &guard {
                    Some(guard) => shared.save_fenced_again(&token, guard, attempt).await,
                    None => shared.save_again(&token, attempt).await,
                };
                if done {
                    return;
                }
            }
        });
    }

    /// One background re-save of an unsaved set (no coordination); whether to stop.
    async fn save_again(&self, token: &AccessToken, attempt: u32) -> bool {
        let _writing = self.save_lock.lock().await;
        let current = self.current.load_full();
        let Some(entry) = current.as_ref().filter(|e| e.token.same_token(token) && !e.saved) else {
            return true; // replaced by a newer set, which had its own save, or saved meanwhile
        };
        match self.store.load_versioned(&self.key).await {
            Ok(Some(stored)) => {
                let newer = match (stored.version, entry.version) {
                    (Some(stored_version), Some(base)) => stored_version > base,
                    (Some(_), None) => !stored.token.same_token(token),
                    (None, _) => stored.token.expires_at() >= token.expires_at(),
                };
                if newer {
                    tracing::warn!(key = %self.key, attempt, "a newer token set was saved by another process since this one failed to save; keeping the store's");
                    return true;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token store still unreadable; the token set is not saved yet");
                return false;
            }
        }
        match self.store.save_versioned(&self.key, token).await {
            Ok(version) => {
                self.mark_saved(token, version);
                tracing::info!(key = %self.key, attempt, "token set saved in the token store after an earlier failure");
                true
            }
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token set still not saved in the token store");
                false
            }
        }
    }

    /// One background re-save of a fleet refresh's set whose fenced save failed; whether to stop.
    async fn save_fenced_again(&self, token: &AccessToken, guard: &LockGuard, attempt: u32) -> bool {
        // Re-asserted first, so that the lock is held again if the store lost or lapsed it; the
        // fence decides below either way.
        if let Err(e) = self.store.extend_lock(&self.key, guard, self.policy.lock_lease).await {
            tracing::warn!(key = %self.key, attempt, error = %e, "the refresh lock could not be renewed; the saved set is still pending");
        }
        match self.store.save_fenced(&self.key, token, guard).await {
            Ok(written) => {
                if written {
                    self.mark_saved(token, Some(guard.fence()));
                    tracing::info!(key = %self.key, attempt, fence = guard.fence(), "token set saved in the shared store after an earlier failure");
                } else {
                    tracing::warn!(key = %self.key, attempt, fence = guard.fence(), "a newer token set is in the shared store; this one was not written");
                }
                if let Err(e) = self.store.unlock(&self.key, guard).await {
                    tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be released; it lapses with its lease");
                }
                true
            }
            Err(e) => {
                tracing::warn!(key = %self.key, attempt, error = %e, "token set still not saved in the shared store; the refresh lock is kept");
                false
            }
        }
    }

    /// Takes the fleet-wide refresh lock, or waits for the process holding it to save a new token set.
    ///
    /// While another process holds the lock, the store is polled (10 ms, doubling to 100 ms) for a
    /// fresh token set and the lock is tried again (it is free again once the holder unlocks, or its
    /// lease lapses because the holder died). After [`RefreshPolicy::lock_wait`] of elapsed time
    /// (round-trips included) the failure policy applies.
    async fn fetch_coordinated(self: &Arc<Self>) -> Result<AccessToken> {
        const FIRST_POLL: Duration = Duration::from_millis(10);
        const MAX_POLL: Duration = Duration::from_millis(100);
        let started = self.clock.monotonic();
        let mut delay = FIRST_POLL;
        loop {
            match self.store.lock_refresh(&self.key, self.policy.lock_lease).await {
                Ok(RefreshLock::Acquired(guard)) => {
                    let (result, release) = self.fetch_locked(&guard).await;
                    if release {
                        if let Err(e) = self.store.unlock(&self.key, &guard).await {
                            tracing::warn!(key = %self.key, error = %e, "the refresh lock could not be released; it lapses with its lease");
                        }
                    }
                    return result;
                }
                Ok(RefreshLock::HeldElsewhere) => {}
                Ok(RefreshLock::NotCoordinated) => return self.fetch_and_save().await,
                Err(e) => return self.store_failed(e).await,
            }
            if self.clock.monotonic().saturating_sub(started) >= self.policy.lock_wait {
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
            delay = delay.saturating_mul(2).min(MAX_POLL);
            match self.store.load_versioned(&self.key).await {
                Ok(Some(stored)) => {
                    if let Some(token) = self.adopt(stored) {
                        tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                        return Ok(token);
                    }
                }
                Ok(None) => {}
                Err(e) => return self.store_failed(e).await,
            }
        }
    }

    /// Holding the lock: re-reads the store, renews the lease right before sending, fetches while
    /// renewing it, saves fenced, publishes. Returns the result and whether to release the lock: a
    /// set whose fenced save failed keeps it (see [`save_later`](Self::save_later)).
    async fn fetch_locked(self: &Arc<Self>, guard: &LockGuard) -> (Result<AccessToken>, bool) {
        // Another process may have saved a new set between our load and our lock.
        match self.store.load_versioned(&self.key).await {
            Ok(Some(stored)) => {
                if let Some(token) = self.adopt(stored) {
                    tracing::debug!(key = %self.key, "adopted the token set another process refreshed");
                    return (Ok(token), true);
                }
            }
            Ok(None) => {}
            Err(e) => return (self.store_failed(e).await, true),
        }
        // Never send with a lease that may have lapsed (this process may have stalled since it took
        // the lock): renew it right before sending, and do not send if that fails.
        match self.store.extend_lock(&self.key, guard, self.policy.lock_lease).await {
            Ok(true) => {}
            Ok(false) => {
                let error = Error::store(
                    "the refresh lock's lease lapsed before the refresh was sent (this process stalled for longer than the lease); not refreshing, since another process may be: the next call tries again",
                    None,
                );
                tracing::warn!(key = %self.key, fence = guard.fence(), "{error}");
                return (Err(error), true);
            }
            Err(e) => return (self.store_failed(e).await, true),
        }
        let current = self.current.load_full();
        let fetched = {
            let fetch = self.source.fetch(current.as_ref().map(|e| &e.token));
            let renew = self.renew_lock(guard);
            tokio::pin!(fetch, renew);
            tokio::select! {
                biased;
                result = &mut fetch => result,
                never = &mut renew => match never {},
            }
        };
        let token = match fetched {
            Ok(token) => token,
            Err(e) => return (Err(e), true),
        };
        let _writing = self.save_lock.lock().await;
        match self.store.save_fenced(&self.key, &token, guard).await {
            Ok(true) => self.publish(token.clone(), Some(guard.fence()), true),
            Ok(false) => {
                tracing::warn!(
                    key = %self.key,
                    fence = guard.fence(),
                    "another process saved a newer token set while this one refreshed (the lock's lease lapsed); adopting it"
                );
                if let Ok(Some(stored)) = self.store.load_versioned(&self.key).await {
                    if let Some(token) = self.adopt(stored) {
                        return (Ok(token), true);
                    }
                }
                // The store holds a newer set; this one is served but not to be saved.
                self.publish(token.clone(), None, true);
            }
            Err(e) => {
                // The token is valid and may hold the only refresh token the provider still accepts:
                // serve it from memory, keep the lock, and save it again in the background.
                tracing::error!(key = %self.key, error = %e, "new token could not be saved in the shared store; keeping the refresh lock and retrying in the background");
                let base = current.as_ref().and_then(|e| e.version);
                self.publish(token.clone(), base, false);
                self.save_later(token.clone(), Some(guard.clone()));
                return (self.usable_or_error(token), false);
            }
        }
        (self.usable_or_error(token), true)
    }

    /// Renews the lock every third of its lease while the fetch runs; never returns.
    async fn renew_lock(&self, guard: &LockGuard) -> std::convert::Infallible {
        let lease = self.policy.lock_lease;
        loop {
            tokio::time::sleep(lease.checked_div(3).unwrap_or_default()).await;
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

    /// A coordinating store failed: the failure policy of [`fetch_unlocked`](Self::fetch_unlocked) for
    /// a store that may be briefly unreachable (Redis), the error itself for one whose failure will
    /// not pass by waiting (a file that cannot be read, a lock file that cannot be created).
    async fn store_failed(&self, error: Error) -> Result<AccessToken> {
        if self.store.may_be_unreachable() {
            self.fetch_unlocked(error).await
        } else {
            tracing::warn!(key = %self.key, error = %error, "token store failed");
            Err(error)
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
                    "the refresh was refused because the fleet-wide refresh lock could not be taken ({cause}); a rotating refresh token is never refreshed without it, since two processes refreshing it would invalidate each other: make the token store usable again (the cache retries after a back-off and serves the current token while it is valid)"
                ),
                Some(Arc::new(cause) as BoxError),
            ));
        }
        tracing::warn!(
            key = %self.key,
            error = %cause,
            "the shared token store cannot coordinate this refresh; fetching a token for this process alone"
        );
        let current = self.current.load_full();
        let token = self.source.fetch(current.as_ref().map(|e| &e.token)).await?;
        // Not saved, and not to be: it is this process's alone (see `Entry::saved`).
        self.publish(token.clone(), None, true);
        self.usable_or_error(token)
    }

    /// Ends a flight with `result`: records success, or a failure and its back-off, clears the
    /// in-flight marker, and returns what the waiters get (on failure, the still-usable token if
    /// there is one).
    fn settle(&self, result: Result<AccessToken>) -> Result<AccessToken> {
        let now = self.clock.monotonic();
        let mut state = self.lock_state();
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
                let backoff = self.policy.backoff(state.failures);
                state.backoff_until = Some(now.saturating_add(backoff));
                state.last_error = Some(error.clone());
                let backoff_ms = millis(backoff);
                match self.usable() {
                    Some(old) => {
                        tracing::warn!(key = %self.key, error = %error, backoff_ms, "token refresh failed; serving the still-valid token");
                        Ok(old)
                    }
                    None => {
                        tracing::warn!(key = %self.key, error = %error, backoff_ms, "token fetch failed");
                        Err(error)
                    }
                }
            }
        }
    }
}

/// Ends a flight whatever happens to its task: [`finish`](FlightGuard::finish) with the fetch's
/// result, or, when the task panics or is dropped (even before its first poll: a runtime shutting
/// down), on drop with [`Error::Runtime`] — the in-flight marker is cleared, a back-off recorded,
/// and every waiter woken.
struct FlightGuard<S: TokenSource> {
    shared: Arc<Shared<S>>,
    sender: Option<watch::Sender<FlightResult>>,
}

impl<S: TokenSource> FlightGuard<S> {
    fn finish(&mut self, result: Result<AccessToken>) {
        let result = self.shared.settle(result);
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(result));
        }
    }
}

impl<S: TokenSource> Drop for FlightGuard<S> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let error = Error::Runtime {
                message: "the token fetch task ended without a result (it panicked, or its runtime shut down before it finished); the next call tries again after a back-off".to_owned(),
            };
            let result = self.shared.settle(Err(error));
            sender.send_replace(Some(result));
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

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        CachedProvider::unsaved(self).map(|token| (self.shared.key.clone(), token))
    }
}
