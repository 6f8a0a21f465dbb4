//! What every client-credentials provider builder offers besides its endpoint and credentials, and
//! the one place that turns it into a cached provider.
//!
//! A provider crate keeps a [`ProviderOptions`] in its builder, forwards its `transport`, `retry`,
//! `refresh_policy`, `clock`, `store` and `allow_insecure_http` setters to it, and ends `build` with
//! [`ProviderOptions::client_credentials`]:
//!
//! ```
//! use tokensmith_core::dialect::ProviderOptions;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenClient, TokenEndpoint};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap());
//! let client = TokenClient::builder("example", endpoint, ClientCredentials::new("id", "secret"));
//! let cache = ProviderOptions::default().client_credentials(client, Scopes::parse("read")).unwrap();
//! assert_eq!(cache.source().scopes().to_string(), "read");
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CachedProvider, CachedProviderBuilder, ClientCredentialsSource, RefreshPolicy, TokenSource};
use crate::clock::Clock;
use crate::endpoint::{TokenClient, TokenClientBuilder};
use crate::error::{Error, Result};
use crate::http::Transport;
use crate::retry::RetryPolicy;
use crate::store::TokenStore;
use crate::support::excerpt;
use crate::token::Scopes;

/// The transport, retries, refresh policy, clock, token store and plain-`http://` opt-in of a
/// provider; every field defaults to what a provider uses when its setter is not called.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ProviderOptions {
    /// The HTTP transport (default: the process-wide `ReqwestTransport::shared`, one connection pool).
    pub transport: Option<Arc<dyn Transport>>,
    /// How failed token requests are retried.
    pub retry: RetryPolicy,
    /// When the cached token is refreshed.
    pub refresh_policy: RefreshPolicy,
    /// The clock of the cache and of expiry stamps (default: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
    /// Where tokens are kept between fetches (default: a private in-memory store).
    pub store: Option<Arc<dyn TokenStore>>,
    /// Whether plain `http://` to a host that is not loopback is allowed.
    pub allow_insecure_http: bool,
}

impl fmt::Debug for ProviderOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ProviderOptions");
        self.debug_fields(&mut s);
        s.finish()
    }
}

impl ProviderOptions {
    /// Adds these options as fields of a builder's `Debug` output, so that a provider builder shows
    /// them beside its own fields.
    pub fn debug_fields<'s, 'a, 'b>(&self, s: &'s mut fmt::DebugStruct<'a, 'b>) -> &'s mut fmt::DebugStruct<'a, 'b> {
        s.field("transport", &self.transport)
            .field("retry", &self.retry)
            .field("refresh_policy", &self.refresh_policy)
            .field("clock", &self.clock)
            .field("store", &self.store)
            .field("allow_insecure_http", &self.allow_insecure_http)
    }

    /// Builds `client` with the transport, retry policy, clock and plain-`http://` opt-in, and caches
    /// client-credentials tokens for `scopes` with the refresh policy, clock and store.
    ///
    /// # Errors
    ///
    /// What [`TokenClientBuilder::build`] reports (an endpoint URL that is not allowed, a transport
    /// that cannot be built).
    pub fn client_credentials(
        self,
        client: TokenClientBuilder,
        scopes: Scopes,
    ) -> Result<CachedProvider<ClientCredentialsSource>> {
        Ok(self.cache(client, |client| ClientCredentialsSource::new(client, scopes))?.build())
    }

    /// Builds `client` with the transport, retry policy, clock and plain-`http://` opt-in, makes the
    /// token source from it, and starts a cache around the source with the refresh policy, clock and
    /// store: for a provider whose source is not client credentials (a refresh token, say), which may
    /// set more on the cache before building it.
    ///
    /// # Errors
    ///
    /// What [`TokenClientBuilder::build`] reports.
    pub fn cache<S: TokenSource>(
        self,
        client: TokenClientBuilder,
        source: impl FnOnce(TokenClient) -> S,
    ) -> Result<CachedProviderBuilder<S>> {
        let mut client = client.retry(self.retry).allow_insecure_http(self.allow_insecure_http);
        if let Some(transport) = self.transport {
            client = client.transport(transport);
        }
        if let Some(clock) = &self.clock {
            client = client.clock(clock.clone());
        }
        let mut cache = CachedProvider::builder(source(client.build()?)).policy(self.refresh_policy);
        if let Some(clock) = self.clock {
            cache = cache.clock(clock);
        }
        if let Some(store) = self.store {
            cache = cache.store(store);
        }
        Ok(cache)
    }
}

/// The setters of a provider builder that keeps its [`ProviderOptions`] in a field named `options`:
/// `transport`, `retry`, `refresh_policy`, `clock`, `store` and `allow_insecure_http`, written once
/// for every builder (core's generic one, WhiteBIT's, a user's own). Use it inside the builder's
/// `impl` block.
///
/// ```
/// use tokensmith_core::dialect::ProviderOptions;
///
/// #[derive(Debug, Default)]
/// struct MyBuilder {
///     options: ProviderOptions,
/// }
///
/// impl MyBuilder {
///     tokensmith_core::provider_option_setters!();
/// }
///
/// let builder = MyBuilder::default().allow_insecure_http(true);
/// assert!(builder.options.allow_insecure_http);
/// ```
#[macro_export]
macro_rules! provider_option_setters {
    () => {
        /// The HTTP transport (default: the process-wide `ReqwestTransport::shared`, one connection pool).
        pub fn transport(mut self, transport: ::std::sync::Arc<dyn $crate::http::Transport>) -> Self {
            self.options.transport = ::std::option::Option::Some(transport);
            self
        }

        /// How failed token requests are retried (default `RetryPolicy::default()`: 3 attempts of at
        /// most 10 s each within a 30 s deadline).
        pub fn retry(mut self, retry: $crate::RetryPolicy) -> Self {
            self.options.retry = retry;
            self
        }

        /// When the cached token is refreshed (default `RefreshPolicy::default()`: a 300 s token after
        /// 225–240 s, a 900 s token after 675–720 s).
        pub fn refresh_policy(mut self, policy: $crate::cache::RefreshPolicy) -> Self {
            self.options.refresh_policy = policy;
            self
        }

        /// The clock of the cache and of expiry stamps (default: the system clock; use
        /// `TokioClock` in tests with paused time).
        pub fn clock(mut self, clock: ::std::sync::Arc<dyn $crate::clock::Clock>) -> Self {
            self.options.clock = ::std::option::Option::Some(clock);
            self
        }

        /// Where tokens are kept between fetches (default: a private in-memory store; a `FileStore`
        /// or a Redis store keeps them across restarts and shares them between processes).
        pub fn store(mut self, store: ::std::sync::Arc<dyn $crate::TokenStore>) -> Self {
            self.options.store = ::std::option::Option::Some(store);
            self
        }

        /// Allows a plain `http://` URL to a host that is not loopback (default `false`; loopback is
        /// always allowed). The credentials then cross the network in clear text: only for networks
        /// you trust.
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.options.allow_insecure_http = allow;
            self
        }
    };
}

/// Reads a boolean setting (an environment variable or configuration value named `name`): `1`,
/// `true`, `yes`, `on` or `0`, `false`, `no`, `off`, any case, surrounding spaces ignored.
///
/// ```
/// use tokensmith_core::support::parse_bool_setting;
///
/// assert_eq!(parse_bool_setting("X", " Yes ").unwrap(), true);
/// assert!(parse_bool_setting("X", "maybe").unwrap_err().to_string().contains("X"));
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming `name` for any other value.
pub fn parse_bool_setting(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(name, format!("`{}` is not a boolean; use `true` or `false`", value.trim()))),
    }
}

/// Checks a number of seconds from configuration against its allowed `range`: the one check every
/// duration setting goes through (a file key, an environment variable, a command-line flag), so that
/// no setting can ask for a duration that overflows a clock (`Instant + Duration`) or is absurd.
///
/// ```
/// use tokensmith_core::support::seconds_setting;
///
/// assert_eq!(seconds_setting("timeout", 30, 1..=3600).unwrap().as_secs(), 30);
/// let err = seconds_setting("timeout", u64::MAX, 1..=3600).unwrap_err().to_string();
/// assert!(err.contains("`timeout`") && err.contains("from 1 to 3600"), "{err}");
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming `name` (the key, variable or flag the user set) and the allowed range.
pub fn seconds_setting(name: &str, secs: u64, range: RangeInclusive<u64>) -> Result<Duration> {
    if range.contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(Error::config(
            name,
            format!("{secs} seconds is out of range; give a whole number of seconds {}", describe_range(&range)),
        ))
    }
}

/// [`seconds_setting`] for text (an environment variable or a flag): surrounding spaces are ignored;
/// anything but a whole number in `range` is an error.
///
/// ```
/// use tokensmith_core::support::parse_seconds_setting;
///
/// assert_eq!(parse_seconds_setting("TOKENSMITH_TIMEOUT", " 15 ", 1..=3600).unwrap().as_secs(), 15);
/// for bad in ["18446744073709551615", "99999999999999999999999", "-1", "1.5", "ten", "0"] {
///     let err = parse_seconds_setting("TOKENSMITH_TIMEOUT", bad, 1..=3600).unwrap_err().to_string();
///     assert!(err.contains("TOKENSMITH_TIMEOUT") && err.contains("from 1 to 3600"), "{err}");
/// }
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming `name` and the allowed range.
pub fn parse_seconds_setting(name: &str, text: &str, range: RangeInclusive<u64>) -> Result<Duration> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a number too large for u64 is out of range, not "not a number".
        let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
        return seconds_setting(name, secs, range);
    }
    Err(Error::config(
        name,
        format!("`{}` is not a whole number of seconds; give one {}", excerpt(trimmed, 40), describe_range(&range)),
    ))
}

fn describe_range(range: &RangeInclusive<u64>) -> String {
    format!("from {} to {}", range.start(), range.end())
}

/// The longest environment variable name [`check_env_var_name`] accepts.
pub const MAX_ENV_VAR_NAME_LEN: usize = 128;

/// Whether `name` looks like an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most
/// 128 characters.
pub fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && name.len() <= MAX_ENV_VAR_NAME_LEN && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks that `name`, given where the *name* of an environment variable is expected (a `*_ENV`
/// variable, `{ env = "..." }`, `--client-secret-env`), looks like one. Setting one of those to the
/// secret itself is an easy mistake; the error then says so **without echoing the value**, which is
/// likely the secret.
///
/// ```
/// use tokensmith_core::support::check_env_var_name;
///
/// assert!(check_env_var_name("client_secret", "DJANGO_SECRET").is_ok());
/// let err = check_env_var_name("client_secret", "Sup3rS3cretValue!").unwrap_err().to_string();
/// assert!(err.contains("`client_secret`") && !err.contains("Sup3rS3cretValue"), "{err}");
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming `setting` (never `name`).
pub fn check_env_var_name(setting: &str, name: &str) -> Result<()> {
    if is_env_var_name(name) {
        return Ok(());
    }
    Err(Error::config(
        setting,
        format!(
            "the value given is not an environment variable name (letters, digits and `_`, not starting with a digit, at most {MAX_ENV_VAR_NAME_LEN} characters), so it is not shown: give the name of the variable that holds the value, not the value itself"
        ),
    ))
}
