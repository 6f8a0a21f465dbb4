//! What every client-credentials provider builder offers besides its endpoint and credentials, and
//! the one place that turns it into a cached provider.
//!
//! A provider crate keeps a [`ProviderOptions`] in its builder, forwards its `transport`, `retry`,
//! `refresh_policy`, `clock`, `store` and `allow_insecure_http` setters to it, and ends `build` with
//! [`ProviderOptions::client_credentials`]:
//!
//! ```
//! use tokensmith_core::options::ProviderOptions;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenClient, TokenEndpoint};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap());
//! let client = TokenClient::builder("example", endpoint, ClientCredentials::new("id", "secret"));
//! let cache = ProviderOptions::default().client_credentials(client, Scopes::parse("read")).unwrap();
//! assert_eq!(cache.source().scopes().to_string(), "read");
//! ```

use std::fmt;
use std::sync::Arc;

use crate::cache::{CachedProvider, ClientCredentialsSource, RefreshPolicy};
use crate::clock::Clock;
use crate::endpoint::TokenClientBuilder;
use crate::error::{Error, Result};
use crate::http::Transport;
use crate::retry::RetryPolicy;
use crate::store::TokenStore;
use crate::token::Scopes;

/// The transport, retries, refresh policy, clock, token store and plain-`http://` opt-in of a
/// provider; every field defaults to what a provider uses when its setter is not called.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ProviderOptions {
    /// The HTTP transport (default: a `ReqwestTransport` with its defaults).
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
        let mut client = client.retry(self.retry).allow_insecure_http(self.allow_insecure_http);
        if let Some(transport) = self.transport {
            client = client.transport(transport);
        }
        if let Some(clock) = &self.clock {
            client = client.clock(clock.clone());
        }
        let mut cache =
            CachedProvider::builder(ClientCredentialsSource::new(client.build()?, scopes)).policy(self.refresh_policy);
        if let Some(clock) = self.clock {
            cache = cache.clock(clock);
        }
        if let Some(store) = self.store {
            cache = cache.store(store);
        }
        Ok(cache.build())
    }
}

/// Reads a boolean setting (an environment variable or configuration value named `name`): `1`,
/// `true`, `yes`, `on` or `0`, `false`, `no`, `off`, any case, surrounding spaces ignored.
///
/// ```
/// use tokensmith_core::options::parse_bool_setting;
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
