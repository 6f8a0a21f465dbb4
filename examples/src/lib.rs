//! Runnable examples of tokensmith; see the files beside this one and run them with `cargo run --example NAME`.
