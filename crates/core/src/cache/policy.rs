//! [`RefreshPolicy`]: when a cached token is refreshed, when it stops being handed out, and how the
//! cache backs off after a failed fetch.

use std::time::Duration;

use rand::Rng as _;

use crate::backoff::Backoff;

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
    pub(super) fraction: f64,
    pub(super) min_margin: Duration,
    pub(super) max_margin: Duration,
    pub(super) jitter: f64,
    pub(super) max_expiry_skew: Duration,
    pub(super) initial_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) lock_lease: Duration,
    pub(super) lock_wait: Duration,
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

    /// The back-off after `failures` consecutive failed fetches: from
    /// [`initial_backoff`](Self::initial_backoff), doubling per failure up to
    /// [`max_backoff`](Self::max_backoff), less a random jitter of up to a quarter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokensmith_core::cache::RefreshPolicy;
    ///
    /// let policy = RefreshPolicy::default();
    /// let third = policy.backoff(3); // 250 ms × 2 × 2 = 1 s, less up to 25 %
    /// assert!(third <= Duration::from_secs(1) && third >= Duration::from_millis(750));
    /// assert!(policy.backoff(100) <= Duration::from_secs(30));
    /// ```
    pub fn backoff(&self, failures: u32) -> Duration {
        Backoff::new(self.initial_backoff, self.max_backoff).jitter(0.25).delay(failures)
    }
}

/// Half of `d` (no arithmetic that could panic, for the lints that check it).
fn half(d: Duration) -> Duration {
    d.checked_div(2).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_margin_is_proportional_clamped_and_at_most_half_the_life() {
        let p = RefreshPolicy::default();
        assert_eq!(p.margin(S(300)), S(60));
        assert_eq!(p.margin(S(900)), S(180));
        assert_eq!(p.margin(S(36_000)), S(300), "capped at max_margin");
        assert_eq!(p.margin(S(40)), S(10), "at least min_margin");
        assert_eq!(p.margin(S(2)), S(1), "never more than half the life");
        assert_eq!(p.margin(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            let m = p.jittered_margin(S(300));
            assert!((S(60)..=S(75)).contains(&m), "{m:?}");
            assert!(p.jittered_margin(S(30)) <= S(15));
        }
        let exact = RefreshPolicy::default().jitter(0.0);
        assert_eq!(exact.jittered_margin(S(300)), S(60));
    }

    #[test]
    fn out_of_range_settings_are_clamped_not_trusted() {
        let p = RefreshPolicy::default().fraction(f64::NAN).jitter(f64::INFINITY).lock_lease(Duration::ZERO);
        assert_eq!(p, RefreshPolicy::default().lock_lease(Duration::from_millis(100)));
        assert_eq!(RefreshPolicy::default().fraction(3.0).margin(S(100)), S(50));
        let inverted = RefreshPolicy::default().min_margin(S(100)).max_margin(S(10));
        assert_eq!(inverted.margin(S(10_000)), S(100), "a max below the min is read as the min");
    }

    #[test]
    fn the_expiry_skew_is_a_tenth_of_the_life_at_most_two_seconds() {
        let p = RefreshPolicy::default();
        assert_eq!(p.expiry_skew(S(10)), S(1));
        assert_eq!(p.expiry_skew(S(300)), S(2));
        assert_eq!(p.expiry_skew(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_backoff_doubles_per_failure_is_capped_and_jittered_downwards() {
        let p = RefreshPolicy::default().initial_backoff(Duration::from_millis(100)).max_backoff(S(1));
        for (failures, ceiling) in [(0, 100), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (u32::MAX, 1000)] {
            let ceiling = Duration::from_millis(ceiling);
            for _ in 0..50 {
                let d = p.backoff(failures);
                assert!(d <= ceiling && d >= ceiling.mul_f64(0.75), "{failures}: {d:?} vs {ceiling:?}");
            }
        }
        assert_eq!(RefreshPolicy::default().initial_backoff(Duration::ZERO).backoff(3), Duration::ZERO);
    }
}
