//! [`Entry`]: the cached token set and the instants, on both clocks, at which it is due for refresh
//! and stops being handed out.

use std::time::Duration;

use crate::clock::Clock;
use crate::token::AccessToken;

use super::policy::RefreshPolicy;

/// The current token and the instants at which it is refreshed and stops being usable, on the
/// monotonic clock and on the wall clock: it is fresh (or usable) only while both say so (see
/// [`Clock`]: the wall clock counts a suspended machine's sleep, the monotonic one does not).
pub(super) struct Entry {
    pub(super) token: AccessToken,
    pub(super) refresh_at: Duration,
    pub(super) usable_until: Duration,
    /// Milliseconds since the Unix epoch.
    pub(super) refresh_at_wall: u64,
    pub(super) usable_until_wall: u64,
    /// The store's version of this set; for a set not (yet) saved, the version of the set it was
    /// fetched from, so that a set saved later by another process is recognised as newer.
    pub(super) version: Option<u64>,
    /// Whether the store holds this set, or need not: a set fetched for this process alone while a
    /// shared store is unreachable (client credentials) is nobody's to save. `false` only while a
    /// failed save is retried in the background.
    pub(super) saved: bool,
}

impl Entry {
    /// `token`, cached now: due for refresh when the policy's jittered margin of its life remains,
    /// usable until its expiry skew.
    pub(super) fn new(
        token: AccessToken,
        clock: &dyn Clock,
        policy: &RefreshPolicy,
        version: Option<u64>,
        saved: bool,
    ) -> Entry {
        let now = clock.monotonic();
        let wall = clock.wall_millis();
        let remaining = token.expires_in(clock.system_time());
        let lifetime = token.lifetime().max(remaining);
        let refresh_in = remaining.saturating_sub(policy.jittered_margin(lifetime));
        let usable_for = remaining.saturating_sub(policy.expiry_skew(lifetime));
        Entry {
            token,
            refresh_at: now.saturating_add(refresh_in),
            usable_until: now.saturating_add(usable_for),
            refresh_at_wall: wall.saturating_add(millis(refresh_in)),
            usable_until_wall: wall.saturating_add(millis(usable_for)),
            version,
            saved,
        }
    }

    /// Whether the token is not yet due for refresh (by both clocks).
    #[inline]
    pub(super) fn fresh(&self, clock: &dyn Clock) -> bool {
        let (monotonic, wall) = clock.both();
        monotonic < self.refresh_at && wall < self.refresh_at_wall
    }

    /// Whether the token may still be handed out (by both clocks), fresh or not.
    pub(super) fn usable(&self, clock: &dyn Clock) -> bool {
        clock.monotonic() < self.usable_until && clock.wall_millis() < self.usable_until_wall
    }

    /// The same token set, never fresh nor usable again (its refresh token is kept for the next fetch).
    pub(super) fn stale(&self) -> Entry {
        Entry {
            token: self.token.clone(),
            refresh_at: Duration::ZERO,
            usable_until: Duration::ZERO,
            refresh_at_wall: 0,
            usable_until_wall: 0,
            version: self.version,
            saved: self.saved,
        }
    }

    /// The same entry, now saved in the store at `version` (or at its own version if `None`).
    pub(super) fn saved_at(&self, version: Option<u64>) -> Entry {
        Entry {
            token: self.token.clone(),
            refresh_at: self.refresh_at,
            usable_until: self.usable_until,
            refresh_at_wall: self.refresh_at_wall,
            usable_until_wall: self.usable_until_wall,
            version: version.or(self.version),
            saved: true,
        }
    }
}

/// `d` in whole milliseconds, `u64::MAX` past what fits.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{SplitClock, token_for};
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn exact() -> RefreshPolicy {
        RefreshPolicy::default().jitter(0.0)
    }

    #[test]
    fn fresh_until_the_margin_usable_until_the_skew() {
        let clock = SplitClock::new();
        let entry = Entry::new(token_for(&clock, "t", S(300)), &clock, &exact(), Some(3), true);
        assert!(entry.fresh(&clock) && entry.usable(&clock));
        clock.advance(S(239));
        assert!(entry.fresh(&clock), "refreshed when 60 s remain, not before");
        clock.advance(S(1));
        assert!(!entry.fresh(&clock) && entry.usable(&clock), "due, still handed out");
        clock.advance(S(57));
        assert!(entry.usable(&clock));
        clock.advance(S(1));
        assert!(!entry.usable(&clock), "not handed out in the last 2 s");
        assert_eq!((entry.version, entry.saved), (Some(3), true));
    }

    #[test]
    fn a_suspended_machine_sees_the_token_expire_by_the_wall_clock() {
        // The monotonic clock stops while the machine sleeps; the wall clock does not.
        let clock = SplitClock::new();
        let entry = Entry::new(token_for(&clock, "t", S(300)), &clock, &exact(), None, true);
        clock.sleep_wall_only(S(400));
        assert!(!entry.fresh(&clock) && !entry.usable(&clock));
        let entry = Entry::new(token_for(&clock, "u", S(300)), &clock, &exact(), None, true);
        clock.advance_monotonic_only(S(400));
        assert!(!entry.fresh(&clock) && !entry.usable(&clock), "and the reverse");
    }

    #[test]
    fn an_expired_token_is_neither_fresh_nor_usable() {
        let clock = SplitClock::new();
        let expired = token_for(&clock, "t", Duration::ZERO);
        let entry = Entry::new(expired, &clock, &exact(), None, true);
        assert!(!entry.fresh(&clock) && !entry.usable(&clock));
    }

    #[test]
    fn stale_keeps_the_set_but_never_serves_it_and_saved_at_keeps_the_instants() {
        let clock = SplitClock::new();
        let entry = Entry::new(token_for(&clock, "t", S(300)), &clock, &exact(), Some(1), false);
        let stale = entry.stale();
        assert!(stale.token.same_token(&entry.token));
        assert!(!stale.fresh(&clock) && !stale.usable(&clock));
        assert_eq!((stale.version, stale.saved), (Some(1), false));
        let saved = entry.saved_at(Some(9));
        assert_eq!((saved.refresh_at, saved.version, saved.saved), (entry.refresh_at, Some(9), true));
        assert_eq!(entry.saved_at(None).version, Some(1));
        assert!(saved.fresh(&clock));
    }

    #[test]
    fn millis_saturate() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
