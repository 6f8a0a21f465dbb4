//! Single flight: however many callers need a token at once, one fetch runs, in its own task, and
//! everyone waits for its result; a failed fetch starts a back-off, and a flight always ends, whatever
//! happens to its task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::token::AccessToken;

use super::cached::Erased;
use super::entry::millis;
use super::{CachedProvider, TokenSource};

/// What a flight's waiters get: `None` until the fetch ends.
pub(super) type FlightResult = Option<Result<AccessToken>>;

/// The cache's mutable state besides the current entry.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The flight in progress, if any.
    pub(super) flight: Option<watch::Receiver<FlightResult>>,
    /// Consecutive failed fetches.
    pub(super) failures: u32,
    /// No fetch starts before this instant (monotonic clock).
    pub(super) backoff_until: Option<std::time::Duration>,
    pub(super) last_error: Option<Error>,
}

impl State {
    /// Forgets failures and back-off.
    pub(super) fn reset(&mut self) {
        self.failures = 0;
        self.backoff_until = None;
    }
}

impl<S: TokenSource> CachedProvider<S> {
    /// Returns a valid token, fetching one if the cached one is missing or due for refresh.
    ///
    /// # Runtime
    ///
    /// A fetch runs as a task on the Tokio runtime of the calling thread (so that a caller that gives
    /// up cannot cancel a refresh whose response carries a rotated refresh token). Called where no
    /// Tokio runtime is running, a cache hit is still served, and a miss is [`Error::Runtime`] (never
    /// a panic). Blocking on `token()` (e.g. with `Handle::block_on` or `futures::executor::block_on`)
    /// from the only thread of a `current_thread` runtime cannot complete: the fetch task needs that
    /// thread to run. Use a multi-thread runtime, or `.await` it.
    ///
    /// # Cost on a hit
    ///
    /// The cached path runs when `token()` is called, and the future it returns is then ready at its
    /// first poll: no state machine of the fetch is built or moved, and nothing is allocated. Only a
    /// miss boxes the fetch's future (one allocation, next to a network request).
    pub fn token(&self) -> impl Future<Output = Result<AccessToken>> + Send + '_ {
        match self.cached_token() {
            Some(token) => TokenFuture::Ready(Some(token)),
            None => TokenFuture::Fetch(Box::pin(Erased::fetch_or_wait(self.shared.clone()))),
        }
    }
}

impl Erased {
    /// The miss path of [`CachedProvider::token`]: joins the flight in progress or starts one.
    async fn fetch_or_wait(self: Arc<Self>) -> Result<AccessToken> {
        let (mut receiver, flight) = {
            let mut state = self.lock_state();
            if let Some(token) = self.fresh() {
                return Ok(token);
            }
            match &state.flight {
                Some(receiver) => (receiver.clone(), None),
                None => {
                    let now = self.clock.monotonic();
                    if let Some(until) = state.backoff_until.filter(|until| now < *until) {
                        // A failure that retrying cannot fix (the provider refused the client, the
                        // user must authorize again) is repeated as it was, so callers see its type;
                        // a passing one is reported as the back-off it caused.
                        return self.usable().ok_or_else(|| match &state.last_error {
                            Some(last) if !last.is_retryable() => last.clone(),
                            last => Error::BackingOff {
                                retry_in: until.saturating_sub(now),
                                last: last.as_ref().map(ToString::to_string).unwrap_or_default(),
                            },
                        });
                    }
                    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Runtime {
                        message: "no Tokio runtime is running on this thread, and the token must be fetched; call `token()` from within a Tokio runtime (`cached_token()` needs none)".to_owned(),
                    })?;
                    let (sender, receiver) = watch::channel(None);
                    state.flight = Some(receiver.clone());
                    let guard = FlightGuard { shared: self.clone(), sender: Some(sender) };
                    (receiver, Some((runtime, guard)))
                }
            }
        };
        // Spawned with the state lock released: a runtime that is shutting down drops the task at
        // once, and the guard's drop then takes the lock to end the flight.
        if let Some((runtime, mut guard)) = flight {
            runtime.spawn(async move {
                let result = guard.shared.run_fetch().await;
                guard.finish(result);
            });
        }
        let outcome = receiver.wait_for(Option::is_some).await.map_err(|_| Error::Runtime {
            message: "the token fetch task ended without a result (its runtime shut down)".to_owned(),
        })?;
        match outcome.as_ref() {
            Some(result) => result.clone(),
            None => Err(Error::Runtime { message: "the token fetch ended without a result".to_owned() }),
        }
    }
}

/// What [`CachedProvider::token`] returns: the cached token, ready, or the boxed fetch.
enum TokenFuture {
    Ready(Option<AccessToken>),
    Fetch(Pin<Box<dyn Future<Output = Result<AccessToken>> + Send>>),
}

impl Future for TokenFuture {
    type Output = Result<AccessToken>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<AccessToken>> {
        match self.get_mut() {
            TokenFuture::Ready(token) => Poll::Ready(token.take().ok_or_else(|| Error::Runtime {
                message: "a token future was polled again after it completed".to_owned(),
            })),
            TokenFuture::Fetch(fetch) => fetch.as_mut().poll(cx),
        }
    }
}

impl Erased {
    /// Ends a flight with `result`: records success, or a failure and its back-off, clears the
    /// in-flight marker, and returns what the waiters get (on failure, the still-usable token if
    /// there is one).
    pub(super) fn settle(&self, result: Result<AccessToken>) -> Result<AccessToken> {
        let now = self.clock.monotonic();
        let mut state = self.lock_state();
        state.flight = None;
        match result {
            Ok(token) => {
                state.reset();
                state.last_error = None;
                Ok(token)
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = self.policy.backoff(state.failures);
                state.backoff_until = Some(now.saturating_add(backoff));
                state.last_error = Some(error.clone());
                let backoff_ms = millis(backoff);
                match self.usable() {
                    Some(old) => {
                        tracing::warn!(key = %self.key, error = %error, backoff_ms, "token refresh failed; serving the still-valid token");
                        Ok(old)
                    }
                    None => {
                        tracing::warn!(key = %self.key, error = %error, backoff_ms, "token fetch failed");
                        Err(error)
                    }
                }
            }
        }
    }
}

/// Ends a flight whatever happens to its task: [`finish`](FlightGuard::finish) with the fetch's
/// result, or, when the task panics or is dropped (even before its first poll: a runtime shutting
/// down), on drop with [`Error::Runtime`] — the in-flight marker is cleared, a back-off recorded,
/// and every waiter woken.
struct FlightGuard {
    shared: Arc<Erased>,
    sender: Option<watch::Sender<FlightResult>>,
}

impl FlightGuard {
    fn finish(&mut self, result: Result<AccessToken>) {
        let result = self.shared.settle(result);
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(result));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let error = Error::Runtime {
                message: "the token fetch task ended without a result (it panicked, or its runtime shut down before it finished); the next call tries again after a back-off".to_owned(),
            };
            let result = self.shared.settle(Err(error));
            sender.send_replace(Some(result));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::pin::pin;
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use super::super::testkit::{Source, cache, exact, secret};
    use crate::error::Error;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let source = Source::new(S(300), false);
        *source.0.delay.lock().unwrap() = MS(500);
        let cache = cache(&source, None, exact());
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let cache = cache.clone();
            callers.spawn(async move { cache.token().await });
        }
        let tokens: Vec<String> = callers.join_all().await.into_iter().map(|r| secret(&r.unwrap())).collect();
        assert_eq!(source.0.fetches(), 1, "one fetch for 50 callers");
        assert!(tokens.iter().all(|t| t == "token-1"), "{tokens:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
        let source = Source::new(S(300), false);
        *source.0.delay.lock().unwrap() = S(2);
        let cache = cache(&source, None, exact());
        assert!(tokio::time::timeout(S(1), cache.token()).await.is_err(), "gave up");
        tokio::time::sleep(S(2)).await;
        assert_eq!(secret(&cache.cached_token().expect("the fetch finished anyway")), "token-1");
        assert_eq!(source.0.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_refreshed_early_by_the_policy_and_not_before() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact());
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1");
        tokio::time::advance(S(239)).await;
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1", "60 s margin not reached");
        assert_eq!(source.0.fetches(), 1);
        tokio::time::advance(S(1)).await;
        assert!(cache.cached_token().is_none(), "due for refresh");
        assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
        assert_eq!(source.0.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_serves_the_still_valid_token_then_the_error() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact());
        cache.token().await.unwrap();
        tokio::time::advance(S(240)).await;
        source.0.set_failing(true);
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1", "served while valid");
        assert_eq!(source.0.fetches(), 2);
        assert_eq!(secret(&cache.token().await.unwrap()), "token-1", "backing off: served, no fetch");
        assert_eq!(source.0.fetches(), 2);
        tokio::time::advance(S(58)).await; // within the last 2 s of its life: no longer handed out
        let err = cache.token().await.unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert_eq!(source.0.fetches(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_success_resets_it() {
        let source = Source::new(S(300), false);
        let policy = exact().initial_backoff(S(1)).max_backoff(S(4));
        let cache = cache(&source, None, policy);
        source.0.set_failing(true);
        assert!(matches!(cache.token().await, Err(Error::Transport(_))));
        let Err(Error::BackingOff { retry_in, last }) = cache.token().await else { panic!("not backing off") };
        assert!(retry_in <= S(1) && retry_in >= MS(750) && last.contains("connection refused"), "{retry_in:?} {last}");
        assert_eq!(source.0.fetches(), 1, "no fetch during the back-off");
        tokio::time::advance(S(1)).await;
        assert!(cache.token().await.is_err());
        assert_eq!(source.0.fetches(), 2);
        tokio::time::advance(MS(1400)).await; // the second back-off is 1.5–2 s
        assert!(matches!(cache.token().await, Err(Error::BackingOff { .. })));
        assert_eq!(source.0.fetches(), 2);
        tokio::time::advance(MS(600)).await;
        source.0.set_failing(false);
        assert_eq!(secret(&cache.token().await.unwrap()), "token-3");
        let state = cache.shared.lock_state();
        assert_eq!((state.failures, state.backoff_until, state.flight.is_none()), (0, None, true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_fetch_ends_the_flight_with_a_runtime_error_and_backs_off() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact());
        source.0.panic.store(true, Ordering::SeqCst);
        let err = cache.token().await.unwrap_err();
        assert!(matches!(err, Error::Runtime { .. }) && err.to_string().contains("panicked"), "{err}");
        let again = cache.token().await.unwrap_err();
        assert!(matches!(again, Error::Runtime { .. }), "repeated during the back-off: {again:?}");
        assert_eq!(source.0.fetches(), 1);
        source.0.panic.store(false, Ordering::SeqCst);
        tokio::time::advance(S(1)).await;
        assert_eq!(secret(&cache.token().await.unwrap()), "token-2");
    }

    #[test]
    fn a_miss_outside_a_runtime_is_a_runtime_error_not_a_panic() {
        let source = Source::new(S(300), false);
        let cache = cache(&source, None, exact());
        let mut call = pin!(cache.token());
        let Poll::Ready(Err(err)) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("not an immediate error")
        };
        assert!(matches!(err, Error::Runtime { .. }), "{err:?}");
        assert_eq!(source.0.fetches(), 0);
    }
}
