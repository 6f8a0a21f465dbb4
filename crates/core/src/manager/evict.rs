//! Bounded memory: idle sweeps and eviction past `max_entries`. Only an entry that nothing but the
//! manager holds is evicted ([`CachedProvider::is_idle`](crate::CachedProvider)), checked under its
//! shard's write lock: no caller can then get a handle on it, so no fetch of it can start after it
//! is gone, and a key's next entry is the only one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Inner, Key, write};

impl<K: Key> Inner<K> {
    /// After a miss: evicts past `max_entries`, and sweeps idle entries if the last sweep is half an
    /// idle timeout old.
    pub(super) fn maintain(&self) {
        if self.len.load(Ordering::Relaxed) > self.max_entries {
            self.evict_for_space();
        }
        let now = self.clock.monotonic();
        let due = {
            let Ok(mut last) = self.last_sweep.try_lock() else { return };
            let due = now.saturating_sub(*last) >= self.idle_timeout.checked_div(2).unwrap_or_default();
            if due {
                *last = now;
            }
            due
        };
        if due {
            let evicted = self.sweep_idle(now);
            if evicted > 0 {
                tracing::debug!(evicted, held = self.len.load(Ordering::Relaxed), "idle token entries evicted");
            }
        }
    }

    /// Evicts the entries unused since a sweep at least an idle timeout before `now`; returns how
    /// many.
    pub(super) fn sweep_idle(&self, now: Duration) -> usize {
        let mut evicted = 0usize;
        for shard in &self.shards {
            let mut map = write(shard);
            map.retain(|_, slot| {
                if std::mem::take(slot.touched.get_mut()) {
                    slot.idle_since = now;
                    return true;
                }
                if now.saturating_sub(slot.idle_since) >= self.idle_timeout && slot.provider.is_idle() {
                    evicted = evicted.saturating_add(1);
                    return false;
                }
                true
            });
        }
        self.len.fetch_sub(evicted, Ordering::Relaxed);
        evicted
    }

    /// Evicts entries down to 90% of `max_entries`: first those unused since the last sweep (the
    /// others get a second chance: their mark is cleared), then any that nothing else holds.
    fn evict_for_space(&self) {
        // One thread evicts at a time; the others go on (the bound is soft while it runs).
        let Ok(_sweeping) = self.last_sweep.try_lock() else { return };
        let target = self.max_entries.saturating_sub(self.max_entries / 10);
        let now = self.clock.monotonic();
        let mut evicted = 0usize;
        for second_pass in [false, true] {
            for shard in &self.shards {
                if self.len.load(Ordering::Relaxed) <= target {
                    break;
                }
                let mut map = write(shard);
                map.retain(|_, slot| {
                    if self.len.load(Ordering::Relaxed) <= target {
                        return true;
                    }
                    if !second_pass && std::mem::take(slot.touched.get_mut()) {
                        slot.idle_since = now;
                        return true;
                    }
                    if slot.provider.is_idle() {
                        self.len.fetch_sub(1, Ordering::Relaxed);
                        evicted = evicted.saturating_add(1);
                        return false;
                    }
                    true
                });
            }
        }
        let held = self.len.load(Ordering::Relaxed);
        if held > self.max_entries {
            tracing::warn!(
                held,
                max_entries = self.max_entries,
                "more token entries busy than max_entries; evicting when they are done"
            );
        } else {
            tracing::debug!(evicted, held, "token entries evicted past max_entries");
        }
    }
}
