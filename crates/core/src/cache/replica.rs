//! Per-thread replicas of cached tokens, so that threads reading at once do not write one shared
//! reference count.

use std::cell::RefCell;

use crate::token::AccessToken;

use super::entry::Entry;

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
pub(super) fn replica(entry: &Entry) -> AccessToken {
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
