//! Time, injectable so that tests run on tokio's paused clock instead of sleeping.
//!
//! The cache asks its [`Clock`] for the time on every cached read, so the default clock is cheap:
//! [`SystemClock`] reads the operating system's coarse monotonic clock (a few nanoseconds, a
//! resolution of a few milliseconds, which is plenty for tokens that live minutes). [`TokioClock`]
//! follows tokio's clock, so `tokio::time::pause()` and `advance()` move it; use it in tests.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

/// A source of time.
///
/// # Contract
/// - [`monotonic`](Clock::monotonic) never goes backwards and counts from an origin fixed when the clock
///   was created.
/// - [`system_time`](Clock::system_time) is wall-clock time, used only to stamp expiry instants that
///   leave the process (token stores, display); it advances at the same rate as `monotonic`.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Monotonic time since the clock's origin.
    fn monotonic(&self) -> Duration;

    /// Wall-clock time.
    fn system_time(&self) -> SystemTime;
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
        self.system_origin + self.monotonic()
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
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.monotonic();
        let b = clock.monotonic();
        assert!(b >= a);
    }
}
