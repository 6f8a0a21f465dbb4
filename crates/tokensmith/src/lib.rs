//! tokensmith: OAuth 2.0 access tokens from a provider chosen by configuration.
//!
//! This is the facade. Use it when the provider is picked at run time (a config file, environment
//! variables, a CLI flag), or to describe a new provider's dialect in configuration with no code
//! (`provider = "custom"`). A service that always talks to one provider can depend on that provider's
//! crate instead (`tokensmith-probit`, ...) and get a smaller dependency tree.
//!
//! It re-exports [`tokensmith_core`] (so `tokensmith::TokenProvider`, `tokensmith::Error`, ... work) and
//! adds:
//!
//! - [`Config`]: which provider and how, from a TOML file and/or `TOKENSMITH_*` environment variables
//!   (the environment overrides the file); secrets by value, environment variable or file;
//! - [`from_config`], [`from_env`], [`from_env_with`], [`from_file`]: a [`SharedTokenProvider`] from
//!   that configuration;
//! - [`Registry`]: provider names to builders, so that a provider you write in Rust can be named in
//!   configuration too;
//! - [`custom`]: the declarative provider (`token_url`, `credential_style`, `body_format`,
//!   `envelope`, ...).
//!
//! Every configuration error is [`Error::Config`] naming the key at fault; a provider that exists but
//! is compiled out names the cargo feature to enable.
//!
//! # Example
//!
//! A declarative provider (a Doorkeeper-style JSON dialect), here against the local sandbox:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = tokensmith_sandbox::Sandbox::start().await?;
//! # let token_url = sandbox.token_url(tokensmith_sandbox::Dialect::RubyStyle);
//! let mut config = tokensmith::Config::from_toml_str(&format!(
//!     r#"
//!     provider = "custom"
//!     token_url = "{token_url}"
//!     credential_style = "body"
//!     body_format = "json"
//!     client_id = "ruby-demo-client"
//!     client_secret = {{ env = "RUBY_SECRET" }}
//!     "#
//! ))?;
//! # config.resolve_secrets_with(&|name| (name == "RUBY_SECRET").then(|| "ruby-demo-secret".to_owned()))?;
//! let provider = tokensmith::from_config(&config)?;
//! let token = provider.token().await?;
//! assert_eq!(token.token_type(), "Bearer");
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! One per built-in provider, all on by default:
//!
//! | feature | provider name | crate |
//! | --- | --- | --- |
//! | `probit` | `probit` | `tokensmith-probit` |
//! | `generic-django` | `generic-django` | `tokensmith-generic-django` |
//! | `ruby-style` | `ruby-style` | `tokensmith-ruby-style` |
//! | `whitebit` | `whitebit` | `tokensmith-whitebit` |
//!
//! Besides the providers, on by default:
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `custom` | the declarative provider, `provider = "custom"` (the `custom` module) |
//! | `interactive` | serving what `tokensmith authorize` saved (`grant = "authorization_code"` or `"device_code"`), discovery from an `issuer`, and the `interactive` module the CLI's flows run on; implies `custom` and tokensmith-core's `flows` |
//! | `toml` | TOML configuration files: `Config::from_file`, `from_toml_str`, `from_toml_section`, `load_section`, `from_file`, and the file `TOKENSMITH_CONFIG` names |
//! | `encryption` | encrypts stored token sets when `[store] encryption_key` is set ([`build_store_encryption`]) |
//! | `rustls`, `http2` | TLS by rustls with aws-lc-rs, and HTTP/2 (`rustls-ring` and `native-tls` are the other TLS choices) |
//!
//! Off by default: `blocking` adds `blocking::BlockingProvider` for programs that are not async,
//! `redis` the Redis store, `jwt` the JWT client-authentication styles of the custom provider.
//!
//! `default-features = false, features = ["probit", "rustls-ring"]` compiles only ProBit, configured
//! by `TOKENSMITH_*` variables or in code: the lightest service (see `docs/performance.md`, "Weight").
//! A configuration that needs a feature that is off (`provider = "custom"`, a `TOKENSMITH_CONFIG`
//! file, `grant = "authorization_code"`) is an [`Error::Config`] that names the feature to enable.
//! Each provider crate is also re-exported under its short name ([`probit`], [`generic_django`],
//! [`ruby_style`], [`whitebit`]) when its feature is on.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// These docs link the items of every provider and feature, which resolve when all of them are on
// (docs.rs builds so; CI checks those links with `-D warnings`). A build leaving some out keeps the
// links as plain text instead of warning about each.
#![cfg_attr(
    not(all(
        feature = "probit",
        feature = "generic-django",
        feature = "ruby-style",
        feature = "whitebit",
        feature = "custom",
        feature = "interactive",
        feature = "toml",
        feature = "encryption"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

// The Rust samples of the guides in docs/, compiled as doctests so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-a-provider.md")]
mod writing_a_provider_doc {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/configuration.md")]
mod configuration_doc {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/services.md")]
mod services_doc {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/snapshot-testing.md")]
mod snapshot_testing_doc {}
#[cfg(doctest)]
#[doc = include_str!("../../../docs/flows.md")]
mod flows_doc {}
#[cfg(all(doctest, feature = "whitebit", feature = "redis"))]
#[doc = include_str!("../../../docs/many-users.md")]
mod many_users_doc {}

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
pub mod config;
#[cfg(feature = "custom")]
#[cfg_attr(docsrs, doc(cfg(feature = "custom")))]
pub mod custom;
#[cfg(feature = "interactive")]
#[cfg_attr(docsrs, doc(cfg(feature = "interactive")))]
pub mod interactive;
mod providers;
#[macro_use]
mod registry;
// Not `store`: that name is core's `store` module, re-exported below.
mod store_build;

pub use tokensmith_core::*;

pub use config::{Config, ExtraParam, Secret, StoreConfig};
pub use registry::{BuildFn, Registry};
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use store_build::build_store_encryption;
pub use store_build::{build_store, require_lasting_store};

#[cfg(feature = "whitebit")]
#[cfg_attr(docsrs, doc(cfg(feature = "whitebit")))]
pub use providers::whitebit_builder;

built_in_providers! {
    /// The ProBit provider crate.
    "probit" => tokensmith_probit as probit, providers::declared::<tokensmith_probit::Probit>;
    /// The Django OAuth Toolkit provider crate.
    "generic-django" => tokensmith_generic_django as generic_django,
        providers::declared::<tokensmith_generic_django::GenericDjango>;
    /// The Rails/Doorkeeper-style provider crate.
    "ruby-style" => tokensmith_ruby_style as ruby_style, providers::declared::<tokensmith_ruby_style::RubyStyle>;
    /// The WhiteBIT provider crate.
    "whitebit" => tokensmith_whitebit as whitebit, providers::whitebit;
}

/// Builds the provider `config` describes, with the built-in [`Registry`].
pub fn from_config(config: &Config) -> Result<SharedTokenProvider> {
    Registry::default().build(config)
}

/// Builds the provider described by the file named in `TOKENSMITH_CONFIG` (if set) and the
/// `TOKENSMITH_*` environment variables (which override the file).
///
/// Reading the file needs the `toml` feature (default); without it, `TOKENSMITH_CONFIG` set is an
/// [`Error::Config`] for `config` that names the feature.
pub fn from_env() -> Result<SharedTokenProvider> {
    from_config(&Config::load()?)
}

/// [`from_env`] with an injected environment: `TOKENSMITH_*` variables, the config file variable and
/// the variables that secrets name (`client_secret = { env = ".." }`) are all looked up with `env`.
///
/// ```
/// let env = |name: &str| match name {
///     "TOKENSMITH_PROVIDER" => Some("custom".to_owned()),
///     "TOKENSMITH_TOKEN_URL" => Some("https://auth.example.com/oauth/token".to_owned()),
///     "TOKENSMITH_CLIENT_ID" => Some("me".to_owned()),
///     "TOKENSMITH_CLIENT_SECRET_ENV" => Some("MY_SECRET".to_owned()),
///     "MY_SECRET" => Some("s3cr3t".to_owned()),
///     _ => None,
/// };
/// let provider = tokensmith::from_env_with(env).unwrap();
/// # let _ = provider;
/// ```
pub fn from_env_with(env: impl Fn(&str) -> Option<String>) -> Result<SharedTokenProvider> {
    let mut config = Config::load_with(&env)?;
    config.resolve_secrets_with(&env)?;
    from_config(&config)
}

/// Builds the provider described by a TOML file (environment variables are not read).
#[cfg(feature = "toml")]
#[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<SharedTokenProvider> {
    from_config(&Config::from_file(path)?)
}

// The README's samples are compiled as doctests, so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctest {}
