//! Test support (feature `testing`): a fake token endpoint, a manual clock, the conformance suite
//! every provider crate runs (as object_store's `integration.rs` is run by each backend), and a
//! capture of everything logged, to check that no secret reaches a log line.
//!
//! The suite needs no network and no sandbox: the provider under test gets a [`FakeEndpoint`] as its
//! transport and a [`ManualClock`], so time moves only when the suite says so.
//!
//! ```
//! use tokensmith_core::testing::Conformance;
//! use tokensmith_core::{CachedProvider, ClientCredentials, cache::ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! Conformance::new(|h| {
//!     let endpoint = TokenEndpoint::new(format!("{}/token", h.base_url).parse().unwrap());
//!     let client = TokenClient::builder("example", endpoint, ClientCredentials::new(h.client_id, h.client_secret))
//!         .transport(h.transport)
//!         .clock(h.clock.clone())
//!         .build()?;
//!     Ok(CachedProvider::builder(ClientCredentialsSource::new(client, Scopes::empty())).clock(h.clock).build())
//! })
//! .run()
//! .await;
//! # }
//! ```

// This module exists to fail tests loudly: panicking on a broken expectation is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
// Test support: a panic here is a failing test, not a failure in production code.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::http::HttpResponse;

mod conformance;
mod fake;
#[cfg(test)]
mod tests;

pub use conformance::{Conformance, Harness};
pub use fake::{FakeEndpoint, SuccessResponse};

/// The client id the suite hands to providers.
pub const CLIENT_ID: &str = "conformance-client";
/// The client secret the suite hands to providers: characters encodings disagree on, so that a leak
/// is found in any encoding.
pub const CLIENT_SECRET: &str = "CONFORMANCE-secret: %+/&= x";
/// The base URL the suite hands to providers (nothing listens there: the transport is fake).
pub const BASE_URL: &str = "https://conformance.tokensmith.invalid";

/// Everything `tracing` records on the current thread while installed (every level, TRACE included),
/// as text: for tests that check that no secret reaches a log line.
///
/// ```
/// use tokensmith_core::testing::LogCapture;
///
/// let (log, guard) = LogCapture::install();
/// tracing::info!(attempt = 1, "token obtained");
/// drop(guard);
/// assert!(log.text().contains("token obtained"));
/// ```
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs a subscriber writing to a new capture for the current thread, until the guard is
    /// dropped. On a multi-thread runtime, only what runs on this thread is captured: use a
    /// current-thread runtime (`#[tokio::test]`'s default).
    pub fn install() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        // `tracing` caches, per call site, whether any subscriber wants it, and a global maximum
        // level, both computed from the subscribers alive at the time. With per-thread subscribers
        // coming and going in parallel tests, a call site first hit while none was installed could be
        // switched off for the later ones, and a log test would miss a line it should see. A global
        // subscriber that is interested in everything, and records nothing, keeps every call site on.
        static INTERESTED: std::sync::Once = std::sync::Once::new();
        INTERESTED.call_once(|| {
            // Fails only when the program installed a global subscriber of its own: that one counts.
            let _ = tracing::subscriber::set_global_default(Interested);
        });
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .with_ansi(false)
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The global subscriber [`LogCapture::install`] sets: enables everything, records nothing.
struct Interested;

impl tracing::Subscriber for Interested {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Shows the size only: a test prints the text itself when it wants to.
impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture").field("bytes", &self.0.lock().map_or(0, |b| b.len())).finish()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The RFC 6749 §5.1 success body: `{"access_token", "token_type":"Bearer", "expires_in"}`.
pub fn rfc6749_success(token: &str, lifetime: Duration) -> HttpResponse {
    HttpResponse::json(
        200,
        serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs()})
            .to_string(),
    )
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A clock at monotonic zero, its wall time now.
    pub fn new() -> Self {
        ManualClock { nanos: AtomicU64::new(0), wall_origin: SystemTime::now() }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn system_time(&self) -> SystemTime {
        self.wall_origin + self.monotonic()
    }
}
