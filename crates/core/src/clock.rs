//! Time, injectable so that tests run on tokio's paused clock instead of sleeping.
//!
//! The cache asks its [`Clock`] for the time on every cached read, so the default clock is cheap:
//! [`SystemClock`] reads the operating system's coarse monotonic and coarse wall clocks (a few
//! nanoseconds each, a resolution of a few milliseconds, which is plenty for tokens that live
//! minutes). The cache checks a token against both: the monotonic clock is immune to the wall clock
//! being set back, and the wall clock counts the time a laptop slept or a VM was paused, which the
//! monotonic clock does not (`CLOCK_MONOTONIC` stops during suspend), so a token that expired while
//! the machine slept is never served. [`TokioClock`] follows tokio's clock, so `tokio::time::pause()`
//! and `advance()` move it; use it in tests.

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time.
///
/// # Contract
/// - [`monotonic`](Clock::monotonic) never goes backwards and counts from an origin fixed when the clock
///   was created.
/// - [`system_time`](Clock::system_time) is wall-clock time, used to stamp expiry instants that
///   leave the process (token stores, display); it advances at the same rate as `monotonic` while
///   the machine runs, and also while it is suspended.
/// - [`wall_millis`](Clock::wall_millis) is the same wall-clock time in milliseconds since the Unix
///   epoch, read on every cached read: it may be coarse (a few milliseconds) but must be cheap.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Monotonic time since the clock's origin.
    fn monotonic(&self) -> Duration;

    /// Wall-clock time.
    fn system_time(&self) -> SystemTime;

    /// Wall-clock time in milliseconds since the Unix epoch (0 before it). The default reads
    /// [`system_time`](Clock::system_time).
    fn wall_millis(&self) -> u64 {
        millis_since_epoch(self.system_time())
    }

    /// [`monotonic`](Clock::monotonic) and [`wall_millis`](Clock::wall_millis) in one call (one
    /// dynamic dispatch on the cached-read path).
    #[inline]
    fn both(&self) -> (Duration, u64) {
        (self.monotonic(), self.wall_millis())
    }
}

/// `at` in milliseconds since the Unix epoch: 0 before it, `u64::MAX` past what fits.
pub(crate) fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// The default clock: the OS coarse monotonic clock and the system wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: coarsetime::Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock { origin: coarsetime::Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn monotonic(&self) -> Duration {
        coarsetime::Instant::now_without_cache_update().duration_since(self.origin).into()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }

    #[inline]
    fn both(&self) -> (Duration, u64) {
        (self.monotonic(), self.wall_millis())
    }

    /// `CLOCK_REALTIME_COARSE` on Linux (a few nanoseconds, no system call); elsewhere the wall clock.
    #[inline]
    fn wall_millis(&self) -> u64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
            // Before the epoch (a badly set clock) reads as 0: every token then looks fresh by the
            // wall clock, and the monotonic clock still decides.
            let secs = u64::try_from(now.tv_sec).unwrap_or(0);
            let millis = u64::try_from(now.tv_nsec / 1_000_000).unwrap_or(0);
            secs.saturating_mul(1000).saturating_add(millis)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            millis_since_epoch(SystemTime::now())
        }
    }
}

/// A clock that follows tokio's time, so that `tokio::time::pause()` and `tokio::time::advance()`
/// move it. Its wall clock is the wall time at creation plus tokio's elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    system_origin: SystemTime,
}

impl TokioClock {
    /// A clock whose origin is tokio's now.
    pub fn new() -> Self {
        TokioClock { origin: tokio::time::Instant::now(), system_origin: SystemTime::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn monotonic(&self) -> Duration {
        tokio::time::Instant::now().duration_since(self.origin)
    }

    fn system_time(&self) -> SystemTime {
        self.system_origin.checked_add(self.monotonic()).unwrap_or(self.system_origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let wall = clock.system_time();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.monotonic(), Duration::from_secs(90));
        assert_eq!(clock.system_time(), wall + Duration::from_secs(90));
    }

    #[test]
    fn system_clock_wall_millis_is_the_wall_clock_within_its_resolution() {
        let clock = SystemClock::new();
        let precise = millis_since_epoch(SystemTime::now());
        let coarse = clock.wall_millis();
        // The coarse clock lags by at most a tick (4 ms at HZ=250; 100 ms is a wide margin).
        assert!(coarse.abs_diff(precise) < 100, "coarse {coarse} precise {precise}");
    }

    #[test]
    fn millis_since_epoch_saturates_instead_of_panicking() {
        assert_eq!(millis_since_epoch(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(millis_since_epoch(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.monotonic();
        let b = clock.monotonic();
        assert!(b >= a);
    }
}
