//! [`Backoff`]: the one exponential back-off behind every waiting loop of the crate — retries inside
//! a token fetch ([`RetryPolicy`](crate::RetryPolicy)), the cache's back-off after a failed fetch
//! ([`RefreshPolicy`](crate::cache::RefreshPolicy)), the background re-save of a token set the store did not
//! take, and the polling of a coordinating store while another process refreshes.

use std::time::Duration;

use rand::Rng as _;

/// An exponential back-off: the delay before retry `n` (counting from 1) is
/// `initial × factorⁿ⁻¹`, capped at `max`, then shortened by a random jitter of up to
/// `jitter × delay` (`jitter` in `0..=1`; 0 gives exact delays).
///
/// All arithmetic is checked: a factor or a retry count too large for a [`Duration`] gives `max`,
/// never a panic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
    jitter: f64,
}

impl Backoff {
    /// From `initial`, doubling up to `max`, without jitter.
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, factor: 2, jitter: 0.0 }
    }

    /// The growth factor per retry (default 2; 0 is read as 1, a constant delay).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const fn factor(mut self, factor: u32) -> Self {
        self.factor = if factor == 0 { 1 } else { factor };
        self
    }

    /// The jitter as a fraction of the delay taken off at random (clamped to `0..=1`; not finite: 0).
    pub(crate) fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// The largest delay.
    pub(crate) const fn max(&self) -> Duration {
        self.max
    }

    /// The delay before retry `n` without jitter: `initial × factorⁿ⁻¹`, at most `max` (`n` = 0 is
    /// read as 1).
    pub(crate) fn ceiling(&self, n: u32) -> Duration {
        let exponent = n.saturating_sub(1);
        self.factor
            .checked_pow(exponent)
            .and_then(|growth| self.initial.checked_mul(growth))
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// The delay before retry `n` with a random jitter.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        self.delay_with(n, rand::rng().random_range(0.0..=1.0))
    }

    /// The delay before retry `n` with the jitter drawn as `unit` (in `0..=1`: 0 takes nothing off,
    /// 1 takes off the whole jitter).
    pub(crate) fn delay_with(&self, n: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(n);
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        let off = Duration::try_from_secs_f64(ceiling.as_secs_f64() * self.jitter * unit).unwrap_or_default();
        ceiling.saturating_sub(off.min(ceiling))
    }

    /// The delays before retries 1, 2, 3, ... (jittered), for a loop that waits between attempts.
    pub(crate) fn delays(self) -> impl Iterator<Item = Duration> {
        (1..=u32::MAX).map(move |n| self.delay(n)).chain(std::iter::repeat_with(move || self.delay(u32::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn grows_by_its_factor_and_is_capped() {
        let b = Backoff::new(MS(100), MS(350));
        assert_eq!([1, 2, 3, 4].map(|n| b.ceiling(n)), [MS(100), MS(200), MS(350), MS(350)]);
        assert_eq!(b.ceiling(0), MS(100), "retry 0 is read as the first");
        let tripling = Backoff::new(MS(10), Duration::from_secs(1)).factor(3);
        assert_eq!([1, 2, 3, 5, 6].map(|n| tripling.ceiling(n)), [MS(10), MS(30), MS(90), MS(810), MS(1000)]);
        assert_eq!(Backoff::new(MS(10), MS(100)).factor(0).ceiling(9), MS(10), "factor 0 is constant");
        assert_eq!(Backoff::new(MS(500), MS(100)).ceiling(1), MS(100), "max below initial wins");
    }

    #[test]
    fn overflow_gives_the_cap_never_a_panic() {
        let b = Backoff::new(Duration::MAX, Duration::MAX).factor(u32::MAX);
        assert_eq!(b.ceiling(u32::MAX), Duration::MAX);
        assert_eq!(b.delay(u32::MAX), Duration::MAX, "no jitter: the cap");
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(b.ceiling(64), Duration::from_secs(60));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(60));
        let jittered = Backoff::new(Duration::MAX, Duration::MAX).jitter(1.0);
        assert!(jittered.delay_with(40, 1.0) <= Duration::MAX);
        assert_eq!(jittered.delay_with(40, 0.0), Duration::MAX);
    }

    #[test]
    fn jitter_takes_off_at_most_its_fraction() {
        let b = Backoff::new(MS(100), MS(1000)).jitter(0.25);
        assert_eq!(b.delay_with(1, 0.0), MS(100));
        assert_eq!(b.delay_with(1, 1.0), MS(75));
        assert_eq!(b.delay_with(2, 0.5), Duration::from_micros(175_000));
        for _ in 0..200 {
            let d = b.delay(1);
            assert!((MS(75)..=MS(100)).contains(&d), "{d:?}");
        }
        assert_eq!(Backoff::new(MS(100), MS(100)).jitter(f64::NAN).delay_with(1, 1.0), MS(100));
        assert_eq!(Backoff::new(MS(100), MS(100)).jitter(7.0).delay_with(1, 1.0), Duration::ZERO);
        assert_eq!(b.delay_with(1, f64::INFINITY), MS(100), "a bad draw takes nothing off");
    }

    #[test]
    fn delays_follow_the_sequence_and_stay_capped() {
        let delays: Vec<Duration> = Backoff::new(MS(10), MS(100)).delays().take(6).collect();
        assert_eq!(delays, [MS(10), MS(20), MS(40), MS(80), MS(100), MS(100)]);
    }
}
