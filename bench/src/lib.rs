//! Benchmarks of tokensmith side by side with raw `reqwest` and the `oauth2` crate; the code is in
//! `benches/side_by_side.rs` and the figures in `docs/performance.md`. This library is empty.
//!
//! ```sh
//! cargo bench -p tokensmith-bench --bench side_by_side
//! ```
//!
//! # Feature flags
//!
//! None.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
