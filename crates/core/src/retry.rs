//! Retries inside one token fetch: exponential backoff with jitter, `Retry-After` honoured, bounded
//! attempts, a timeout per attempt and an overall deadline.

use std::time::Duration;

use crate::backoff::Backoff;

/// When and how often a failed token request is retried.
///
/// Only retryable failures are retried (see [`Error::is_retryable`](crate::Error::is_retryable)):
/// connect errors, timeouts, broken connections, HTTP 5xx, 408 and 429. OAuth 4xx errors never are.
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::RetryPolicy;
///
/// let policy = RetryPolicy::default().max_attempts(5).deadline(Duration::from_secs(10));
/// assert_eq!(policy.get_max_attempts(), 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    attempt_timeout: Duration,
    deadline: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// 3 attempts of at most 10 s each, backoff from 200 ms doubling up to 5 s with jitter, 30 s
    /// overall deadline.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retry: one attempt.
    pub fn none() -> Self {
        Self::default().max_attempts(1)
    }

    /// Total attempts, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff before the second attempt; it doubles for each later one.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest backoff between two attempts.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The time allowed for one attempt: sending the request and reading the whole response
    /// (default 10 s). An attempt that takes longer fails with a timeout, which is retried when the
    /// grant allows it. The overall deadline still bounds every attempt.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The time allowed for all attempts and backoffs of one fetch together.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether backoffs are randomised (uniformly between half and all of the exponential delay,
    /// "equal jitter"). On by default so that a fleet does not retry in lockstep.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Total attempts allowed.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The overall deadline.
    pub fn get_deadline(&self) -> Duration {
        self.deadline
    }

    /// The time allowed for one attempt.
    pub fn get_attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The delay before attempt `attempt + 1` (where `attempt` counts from 1), at least `retry_after`
    /// when the server asked for one.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let delay = self.schedule().delay(attempt);
        match retry_after {
            Some(ra) => delay.max(ra),
            None => delay,
        }
    }

    /// The back-off between attempts: from `initial_backoff`, doubling up to `max_backoff`; with
    /// jitter, uniformly between half and all of that ("equal jitter").
    fn schedule(&self) -> Backoff {
        Backoff::new(self.initial_backoff, self.max_backoff).jitter(if self.jitter { 0.5 } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_and_capped() {
        let p = RetryPolicy::default()
            .jitter(false)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(350));
        assert_eq!(p.backoff(1, None), Duration::from_millis(100));
        assert_eq!(p.backoff(2, None), Duration::from_millis(200));
        assert_eq!(p.backoff(3, None), Duration::from_millis(350));
        assert_eq!(p.backoff(40, None), Duration::from_millis(350));
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = RetryPolicy::default().initial_backoff(Duration::from_millis(100));
        for _ in 0..200 {
            let d = p.backoff(1, None);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default().jitter(false);
        assert_eq!(p.backoff(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.backoff(1, Some(Duration::from_millis(1))), Duration::from_millis(200));
    }

    #[test]
    fn at_least_one_attempt() {
        assert_eq!(RetryPolicy::default().max_attempts(0).get_max_attempts(), 1);
    }
}
