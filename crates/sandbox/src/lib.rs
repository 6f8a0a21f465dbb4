//! A strict local emulator of the four OAuth 2.0 dialects tokensmith speaks
//! (ProBit, a Django OAuth Toolkit server, a Rails/Doorkeeper server and
//! WhiteBIT), with fault injection, a clock tests can move, request counters and
//! a redacted request log.
//!
//! Use it in your own tests to run a token client against something that
//! behaves like the real providers, including their error shapes, without
//! network access. The quickstart, the integration tests and the benchmarks of
//! tokensmith use it too.
//!
//! Everything is served on one listener on 127.0.0.1, each dialect under its own
//! prefix: `/probit`, `/django`, `/ruby`, `/whitebit`. Each dialect accepts only
//! the requests its provider's documentation describes and rejects everything
//! else with that provider's own error shape; see the crate README for the
//! routes and rules of each.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tokensmith_sandbox::{Dialect, Fault, Sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::start().await?;
//! let client = sandbox.credentials(Dialect::RubyStyle);
//! let http = reqwest::Client::new();
//!
//! // The next token request fails with a 503 from the "proxy".
//! sandbox.inject(Dialect::RubyStyle, "/oauth/token", Fault::Status(503), 1);
//! let body = format!(
//!     r#"{{"client_id":"{}","client_secret":"{}","grant_type":"client_credentials"}}"#,
//!     client.client_id, client.client_secret
//! );
//! let send = || {
//!     http.post(sandbox.token_url(Dialect::RubyStyle))
//!         .header("content-type", "application/json")
//!         .body(body.clone())
//!         .send()
//! };
//! assert_eq!(send().await?.status(), 503);
//!
//! // The retry gets a token that works on the protected route...
//! let token: serde_json::Value = serde_json::from_str(&send().await?.text().await?)?;
//! let access_token = token["access_token"].as_str().unwrap_or_default();
//! let me = http
//!     .get(sandbox.protected_url(Dialect::RubyStyle))
//!     .bearer_auth(access_token)
//!     .send()
//!     .await?;
//! assert_eq!(me.status(), 200);
//!
//! // ...until the sandbox's clock passes its two hours; nothing sleeps.
//! sandbox.advance_clock(Duration::from_secs(7200));
//! let me = http
//!     .get(sandbox.protected_url(Dialect::RubyStyle))
//!     .bearer_auth(access_token)
//!     .send()
//!     .await?;
//! assert_eq!(me.status(), 401);
//!
//! assert_eq!(sandbox.request_count(Dialect::RubyStyle, "/oauth/token"), 2);
//! let log = sandbox.requests(Dialect::RubyStyle);
//! assert!(log[0].body.contains(r#""client_secret":"[redacted]""#));
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Run it standalone with `cargo run -p tokensmith-sandbox -- --port 8080`
//! (or [`run_standalone`]): it prints each dialect's URLs and demo credentials.
//!
//! # Your own dialects
//!
//! A test can describe a dialect of its own with a [`DialectSpec`] (paths, where the
//! credentials go, body format, field names, answer and error shapes) and serve it next to the
//! built-in ones with [`Sandbox::register`] or [`SandboxConfig::dialect`]: it is as strict as they
//! are, recorded, counted and open to faults. Every method that takes a dialect takes either.
//!
//! # Feature flags
//!
//! - `conformance`: `conformance::ClientCredentialsKit`, the checks every client-credentials
//!   provider (yours too) runs against the sandbox in a few lines. Adds `tokensmith-core` and
//!   `reqwest`.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod clients;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod control;
mod dialects;
mod fault;
mod record;
mod reply;
mod server;
mod spec;
mod standalone;
mod state;

pub use clients::{DemoClient, SPECIAL_SECRET};
pub use config::{DEFAULT_WHITEBIT_REDIRECT_URI, Dialect, SandboxConfig};
pub use fault::{ExpiresInFault, Fault};
pub use record::{REDACTED, RecordedRequest, fingerprint};
pub use server::Sandbox;
pub use spec::{
    BodyEncoding, ClientAuth, CustomDialect, DialectId, DialectSpec, ErrorShape, LifetimeFormat, RegisterError,
};
pub use standalone::{FaultSpec, run_standalone, run_standalone_with};

// The README's samples are compiled and run as doctests (they use the `conformance` feature).
#[cfg(all(doctest, feature = "conformance"))]
#[doc = include_str!("../README.md")]
mod readme {}
