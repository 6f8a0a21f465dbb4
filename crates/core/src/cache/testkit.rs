//! Test doubles for the cache's unit tests, all on simulated time: a clock whose monotonic and wall
//! parts move separately, a scripted token source, and an in-memory store that coordinates like the
//! Redis store (locks with leases on tokio's paused clock, fencing numbers, an outage switch).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use tokio::time::Instant;

use crate::clock::{Clock, TokioClock};
use crate::error::{Error, Result, TransportError, TransportErrorKind};
use crate::store::{Coordinator, LockGuard, RefreshLock, TokenStore, Versioned};
use crate::token::{AccessToken, RefreshToken};

use super::{CachedProvider, RefreshPolicy, TokenSource};

/// A clock for [`Entry`](super::entry::Entry) tests: the monotonic and the wall part advance
/// together, or one alone (a suspended machine: the wall clock runs, the monotonic one stops).
#[derive(Debug)]
pub(crate) struct SplitClock {
    monotonic: AtomicU64,
    wall: AtomicU64,
    origin: SystemTime,
}

impl SplitClock {
    pub(crate) fn new() -> Self {
        SplitClock { monotonic: AtomicU64::new(0), wall: AtomicU64::new(0), origin: SystemTime::now() }
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.advance_monotonic_only(by);
        self.sleep_wall_only(by);
    }

    pub(crate) fn advance_monotonic_only(&self, by: Duration) {
        self.monotonic.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    pub(crate) fn sleep_wall_only(&self, by: Duration) {
        self.wall.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for SplitClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.monotonic.load(Ordering::SeqCst))
    }

    fn system_time(&self) -> SystemTime {
        self.origin + Duration::from_nanos(self.wall.load(Ordering::SeqCst))
    }
}

/// A token `secret` issued now by `clock`'s wall clock, living `lifetime`.
pub(crate) fn token_for(clock: &dyn Clock, secret: &str, lifetime: Duration) -> AccessToken {
    AccessToken::builder(secret).expires_in(clock.system_time(), lifetime).build()
}

/// The secret of `token`.
pub(crate) fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

/// A retryable failure (connection refused).
pub(crate) fn refused() -> Error {
    Error::Transport(TransportError::new(TransportErrorKind::Connect, "connection refused"))
}

/// What a [`Source`] does, shared with the test.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) clock: TokioClock,
    pub(crate) lifetime: Mutex<Duration>,
    /// How long a fetch takes (on tokio's clock).
    pub(crate) delay: Mutex<Duration>,
    pub(crate) fail: AtomicBool,
    pub(crate) panic: AtomicBool,
    pub(crate) rotates: bool,
    pub(crate) fetches: AtomicUsize,
    /// The refresh tokens fetches were made with, in order.
    pub(crate) used: Mutex<Vec<String>>,
}

impl Script {
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub(crate) fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}

/// A source issuing `token-N` (with refresh token `refresh-N`) as the script says.
#[derive(Debug, Clone)]
pub(crate) struct Source(pub(crate) Arc<Script>);

impl Source {
    /// A source of tokens living `lifetime`, on a [`TokioClock`] created now.
    pub(crate) fn new(lifetime: Duration, rotates: bool) -> Self {
        Source(Arc::new(Script {
            clock: TokioClock::new(),
            lifetime: Mutex::new(lifetime),
            delay: Mutex::new(Duration::ZERO),
            fail: AtomicBool::new(false),
            panic: AtomicBool::new(false),
            rotates,
            fetches: AtomicUsize::new(0),
            used: Mutex::new(Vec::new()),
        }))
    }
}

#[async_trait]
impl TokenSource for Source {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        let n = self.0.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(refresh) = current.and_then(AccessToken::refresh_token) {
            self.0.used.lock().unwrap().push(refresh.secret().expose_secret().to_owned());
        }
        let delay = *self.0.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.0.panic.load(Ordering::SeqCst) {
            panic!("the source panicked");
        }
        if self.0.fail.load(Ordering::SeqCst) {
            return Err(refused());
        }
        let lifetime = *self.0.lifetime.lock().unwrap();
        Ok(AccessToken::builder(format!("token-{n}"))
            .expires_in(self.0.clock.system_time(), lifetime)
            .refresh_token(Some(RefreshToken::new(format!("refresh-{n}"))))
            .build())
    }

    fn cache_key(&self) -> String {
        "test-key".to_owned()
    }

    fn rotates_grant(&self) -> bool {
        self.0.rotates
    }
}

/// The default policy without jitter, so that refresh instants are exact.
pub(crate) fn exact() -> RefreshPolicy {
    RefreshPolicy::default().jitter(0.0)
}

/// A cache around `source` on the source's clock, with `store` (default: a private memory store).
pub(crate) fn cache(
    source: &Source,
    store: Option<Arc<dyn TokenStore>>,
    policy: RefreshPolicy,
) -> CachedProvider<Source> {
    let mut builder = CachedProvider::builder(source.clone()).clock(Arc::new(source.0.clock)).policy(policy);
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder.build()
}

/// The shared state of a fleet of processes: token sets with versions, leased locks, fences.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    state: Mutex<FleetState>,
    /// Every call fails (the store is unreachable).
    pub(crate) down: AtomicBool,
    /// Fenced saves fail (the store was lost after the provider answered).
    pub(crate) fail_fenced: AtomicBool,
    /// Plain saves fail.
    pub(crate) fail_saves: AtomicBool,
    pub(crate) acquired: AtomicUsize,
    pub(crate) renewed: AtomicUsize,
    pub(crate) unreachable_may_pass: bool,
}

#[derive(Debug, Default)]
struct FleetState {
    tokens: HashMap<String, (u64, AccessToken)>,
    locks: HashMap<String, (String, Instant)>,
    fences: HashMap<String, u64>,
    owners: u64,
}

impl Fleet {
    /// A fleet whose store failures may be an outage that passes (as Redis's).
    pub(crate) fn new() -> Arc<Fleet> {
        Arc::new(Fleet { unreachable_may_pass: true, ..Fleet::default() })
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("the shared store is unreachable", None));
        }
        Ok(())
    }

    /// A lock held by another process, lapsing after `lease`.
    pub(crate) fn hold_lock(&self, key: &str, lease: Duration) {
        self.state.lock().unwrap().locks.insert(key.to_owned(), ("elsewhere".to_owned(), Instant::now() + lease));
    }

    /// Saves `token` as another process would (a plain versioned save).
    pub(crate) fn put(&self, key: &str, token: AccessToken) -> u64 {
        let mut state = self.state.lock().unwrap();
        let fence = state.fences.entry(key.to_owned()).or_default();
        *fence += 1;
        let fence = *fence;
        state.tokens.insert(key.to_owned(), (fence, token));
        fence
    }

    pub(crate) fn stored(&self, key: &str) -> Option<(u64, AccessToken)> {
        self.state.lock().unwrap().tokens.get(key).cloned()
    }

    pub(crate) fn locked(&self, key: &str) -> bool {
        self.state.lock().unwrap().locks.get(key).is_some_and(|(_, until)| *until > Instant::now())
    }
}

/// One process's handle on a [`Fleet`].
#[derive(Debug, Clone)]
pub(crate) struct FleetStore(pub(crate) Arc<Fleet>);

#[async_trait]
impl TokenStore for FleetStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        Ok(self.load_versioned(key).await?.map(|v| v.token))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.0.check()?;
        self.0.state.lock().unwrap().tokens.remove(key);
        Ok(())
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.check()?;
        Ok(self.0.stored(key).map(|(v, t)| Versioned::new(t, Some(v))))
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        self.0.check()?;
        if self.0.fail_saves.load(Ordering::SeqCst) {
            return Err(Error::store("the store refused the save", None));
        }
        Ok(Some(self.0.put(key, token.clone())))
    }

    fn coordination(&self) -> Option<&dyn Coordinator> {
        Some(self)
    }
}

#[async_trait]
impl Coordinator for FleetStore {
    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
        self.0.check()?;
        let mut state = self.0.state.lock().unwrap();
        let now = Instant::now();
        if state.locks.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(RefreshLock::HeldElsewhere);
        }
        state.owners += 1;
        let owner = format!("owner-{}", state.owners);
        state.locks.insert(key.to_owned(), (owner.clone(), now + lease));
        let fence = state.fences.entry(key.to_owned()).or_default();
        *fence += 1;
        let fence = *fence;
        self.0.acquired.fetch_add(1, Ordering::SeqCst);
        Ok(RefreshLock::Acquired(LockGuard::new(owner, fence)))
    }

    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
        self.0.check()?;
        let mut state = self.0.state.lock().unwrap();
        let now = Instant::now();
        match state.locks.get_mut(key) {
            Some((owner, until)) if owner == guard.owner() && *until > now => {
                *until = now + lease;
                self.0.renewed.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
        self.0.check()?;
        if self.0.fail_fenced.load(Ordering::SeqCst) {
            return Err(Error::store("the shared store is unreachable (connection reset)", None));
        }
        let mut state = self.0.state.lock().unwrap();
        if state.tokens.get(key).is_some_and(|(version, _)| *version >= guard.fence()) {
            return Ok(false);
        }
        state.tokens.insert(key.to_owned(), (guard.fence(), token.clone()));
        Ok(true)
    }

    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
        self.0.check()?;
        let mut state = self.0.state.lock().unwrap();
        if state.locks.get(key).is_some_and(|(owner, _)| owner == guard.owner()) {
            state.locks.remove(key);
        }
        Ok(())
    }

    fn may_be_unreachable(&self) -> bool {
        self.0.unreachable_may_pass
    }
}

/// A store that does not coordinate, whose saves fail while `fail_saves` is set.
#[derive(Debug, Default)]
pub(crate) struct FlakyStore {
    pub(crate) inner: crate::store::MemoryStore,
    pub(crate) fail_saves: AtomicBool,
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        self.inner.load(key).await
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key).await
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.load_versioned(key).await
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(Error::store("the disk is full", None));
        }
        self.inner.save_versioned(key, token).await
    }
}
