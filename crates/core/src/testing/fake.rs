//! [`FakeEndpoint`]: an in-memory token endpoint with scripted answers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::rfc6749_success;
use crate::error::{Result, TransportError};
use crate::http::{HttpResponse, Transport};
use crate::request::TokenRequest;

/// What a [`FakeEndpoint`] answers when nothing is queued: `success(token, lifetime)`.
pub type SuccessResponse = fn(&str, Duration) -> HttpResponse;

struct FakeState {
    queued: VecDeque<HttpResponse>,
    requests: Vec<TokenRequest>,
    issued: u64,
    lifetime: Duration,
}

/// A token endpoint in memory, used as a [`Transport`]: it records every request and answers with the
/// next queued response, or else with a new token (`fake-token-1`, `fake-token-2`, ...) of the
/// configured lifetime in the configured success shape.
pub struct FakeEndpoint {
    state: Mutex<FakeState>,
    success: SuccessResponse,
}

impl fmt::Debug for FakeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeEndpoint").field("requests", &self.request_count()).finish_non_exhaustive()
    }
}

impl Default for FakeEndpoint {
    fn default() -> Self {
        Self::new(rfc6749_success)
    }
}

impl FakeEndpoint {
    /// An endpoint answering successes with `success`, tokens living 100 s.
    pub fn new(success: SuccessResponse) -> Self {
        FakeEndpoint {
            state: Mutex::new(FakeState {
                queued: VecDeque::new(),
                requests: Vec::new(),
                issued: 0,
                lifetime: Duration::from_secs(100),
            }),
            success,
        }
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.state.lock().unwrap().lifetime = lifetime;
    }

    /// Queues a response for the next request.
    pub fn push_response(&self, response: HttpResponse) {
        self.state.lock().unwrap().queued.push_back(response);
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.state.lock().map(|s| s.requests.len()).unwrap_or_default()
    }

    /// The requests that arrived, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

#[async_trait]
impl Transport for FakeEndpoint {
    async fn send(&self, request: &TokenRequest) -> Result<HttpResponse, TransportError> {
        // Yield a few times so that concurrent callers pile up while the request is "in flight".
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        let mut state = self.state.lock().unwrap();
        state.requests.push(request.clone());
        if let Some(response) = state.queued.pop_front() {
            return Ok(response);
        }
        state.issued += 1;
        let token = format!("fake-token-{}", state.issued);
        Ok((self.success)(&token, state.lifetime))
    }
}
