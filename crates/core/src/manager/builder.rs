//! Configures a [`TokenManager`].

use foldhash::fast::RandomState;
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::cache::RefreshPolicy;
use crate::clock::{Clock, SystemClock};
use crate::store::{MemoryStore, TokenStore};

use super::{Inner, Key, Map, SHARDS, Sources, TokenManager};

/// Configures a [`TokenManager`]: made by [`TokenManager::for_users`] or
/// [`TokenManager::for_clients`].
pub struct TokenManagerBuilder<K> {
    sources: Sources<K>,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    policy: RefreshPolicy,
    max_entries: usize,
    idle_timeout: Duration,
}

impl<K> fmt::Debug for TokenManagerBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("sources", &self.sources)
            .field("max_entries", &self.max_entries)
            .field("idle_timeout", &self.idle_timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The default of [`TokenManagerBuilder::max_entries`].
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// The default of [`TokenManagerBuilder::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl<K: Key> TokenManagerBuilder<K> {
    pub(super) fn new(sources: Sources<K>) -> Self {
        TokenManagerBuilder {
            sources,
            store: None,
            clock: None,
            policy: RefreshPolicy::default(),
            max_entries: DEFAULT_MAX_ENTRIES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The token store every key's set is saved in, one record per key (default: a
    /// [`MemoryStore`] of this manager's, which keeps every set for the life of the process).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default [`SystemClock`]; use [`TokioClock`](crate::clock::TokioClock) with paused time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The refresh policy of every key.
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many keys are held in memory at most (default 100,000; at least 1). Past it, entries
    /// that nothing else holds are evicted (the least recently used first, roughly) down to 90% of
    /// it; entries busy with a fetch or an unsaved set stay, so the bound can be exceeded by as many
    /// keys as are busy at once.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// How long a key may go unused before its entry is evicted from memory (default 30 minutes).
    /// Its set stays in the store, and a later call reads it back. An entry lives at most one sweep
    /// longer: sweeps run when a key misses, at most every half idle timeout (or at
    /// [`TokenManager::evict_idle`]).
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Builds the manager. It holds no key until one is used.
    pub fn build(self) -> TokenManager<K> {
        let hasher = RandomState::default();
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let now = clock.monotonic();
        TokenManager {
            inner: Arc::new(Inner {
                shards: std::array::from_fn(|_| RwLock::new(Map::with_hasher(hasher.clone()))),
                hasher,
                sources: self.sources,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock,
                policy: self.policy,
                max_entries: self.max_entries,
                idle_timeout: self.idle_timeout,
                len: AtomicUsize::new(0),
                last_sweep: Mutex::new(now),
            }),
        }
    }
}

const _: () = assert!(SHARDS.is_power_of_two());
