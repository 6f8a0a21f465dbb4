//! Dialects and sandbox configuration.

use std::fmt;
use std::time::Duration;

use crate::spec::DialectSpec;

/// One of the four provider dialects the sandbox emulates.
///
/// Each dialect is served under its own path prefix on the sandbox's single
/// listener: `/probit`, `/django`, `/ruby` and `/whitebit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// ProBit Global (seed 000): Basic credentials, JSON body, errorCode errors.
    Probit,
    /// A Django OAuth Toolkit server (seed 001): form body, Basic or body credentials, scopes.
    GenericDjango,
    /// A Rails/Doorkeeper server (seed 002): JSON body credentials, `created_at`.
    RubyStyle,
    /// WhiteBIT (seed 003): authorization code flow (optionally with PKCE) and refresh tokens.
    Whitebit,
}

impl Dialect {
    /// All four dialects, in a stable order.
    pub const ALL: [Dialect; 4] = [Dialect::Probit, Dialect::GenericDjango, Dialect::RubyStyle, Dialect::Whitebit];

    /// The path prefix the dialect is served under, e.g. `/probit`.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::Probit => "/probit",
            Dialect::GenericDjango => "/django",
            Dialect::RubyStyle => "/ruby",
            Dialect::Whitebit => "/whitebit",
        }
    }

    /// The dialect's name as the tokensmith provider crates spell it, e.g. `generic-django`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Probit => "probit",
            Dialect::GenericDjango => "generic-django",
            Dialect::RubyStyle => "ruby-style",
            Dialect::Whitebit => "whitebit",
        }
    }

    /// The token endpoint's path relative to the dialect's base URL.
    pub fn token_path(self) -> &'static str {
        match self {
            Dialect::Probit => "/token",
            Dialect::GenericDjango => "/o/token/",
            Dialect::RubyStyle => "/oauth/token",
            Dialect::Whitebit => "/oauth2/token",
        }
    }

    /// The protected resource's path relative to the dialect's base URL.
    pub fn protected_path(self) -> &'static str {
        match self {
            Dialect::Probit => "/api/exchange/v1/balance",
            Dialect::GenericDjango => "/payments/",
            Dialect::RubyStyle => "/api/v1/me",
            Dialect::Whitebit => "/api/v4/main-account/balance",
        }
    }

    /// The access token lifetime the real provider documents (probit 900 s,
    /// generic-django 36000 s, ruby-style 7200 s, whitebit 300 s).
    pub fn default_lifetime(self) -> Duration {
        Duration::from_secs(match self {
            Dialect::Probit => 900,
            Dialect::GenericDjango => 36_000,
            Dialect::RubyStyle => 7_200,
            Dialect::Whitebit => 300,
        })
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Dialect::Probit => 0,
            Dialect::GenericDjango => 1,
            Dialect::RubyStyle => 2,
            Dialect::Whitebit => 3,
        }
    }

    /// Splits a request path into the dialect it belongs to and the path
    /// relative to the dialect's base (`/` when the path is the base itself).
    pub(crate) fn split_path(path: &str) -> Option<(Dialect, &str)> {
        Dialect::ALL.into_iter().find_map(|d| Some((d, crate::dialects::below(path, d.prefix())?)))
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The WhiteBIT client's registered redirect URI unless configured otherwise.
pub const DEFAULT_WHITEBIT_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// How a [`Sandbox`](crate::Sandbox) behaves: token lifetimes, quirks and the port.
///
/// Built with chained setters from [`SandboxConfig::default()`]:
///
/// ```
/// use std::time::Duration;
/// use tokensmith_sandbox::{Dialect, SandboxConfig};
///
/// let config = SandboxConfig::default()
///     .lifetime(Dialect::Probit, Duration::from_secs(60))
///     .probit_expires_in_as_string(true)
///     .port(0);
/// # let _ = config;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxConfig {
    pub(crate) lifetimes: [Duration; 4],
    pub(crate) probit_expires_in_as_string: bool,
    pub(crate) whitebit_refresh_lifetime: Duration,
    pub(crate) whitebit_pkce_lifetime: Duration,
    pub(crate) whitebit_code_lifetime: Duration,
    pub(crate) whitebit_redirect_uri: String,
    pub(crate) whitebit_auto_approve: bool,
    pub(crate) port: u16,
    pub(crate) dialects: Vec<DialectSpec>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            lifetimes: Dialect::ALL.map(Dialect::default_lifetime),
            probit_expires_in_as_string: false,
            whitebit_refresh_lifetime: Duration::from_secs(600),
            whitebit_pkce_lifetime: Duration::from_secs(4 * 3600),
            whitebit_code_lifetime: Duration::from_secs(60),
            whitebit_redirect_uri: DEFAULT_WHITEBIT_REDIRECT_URI.to_owned(),
            whitebit_auto_approve: false,
            port: 0,
            dialects: Vec::new(),
        }
    }
}

impl SandboxConfig {
    /// Sets the access token lifetime of a dialect (the `expires_in` it answers).
    ///
    /// For WhiteBIT this is the standard flow's token; the PKCE flow's token lives
    /// 4 hours. Lifetimes are whole seconds on the wire; sub-second parts are dropped.
    #[must_use]
    pub fn lifetime(mut self, dialect: Dialect, lifetime: Duration) -> Self {
        self.lifetimes[dialect.index()] = lifetime;
        self
    }

    /// Makes ProBit answer its lifetime as a string (`"expires_in":"900"` by default) instead of a number.
    #[must_use]
    pub fn probit_expires_in_as_string(mut self, as_string: bool) -> Self {
        self.probit_expires_in_as_string = as_string;
        self
    }

    /// Sets how long a WhiteBIT refresh token stays usable (default 600 s).
    #[must_use]
    pub fn whitebit_refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.whitebit_refresh_lifetime = lifetime;
        self
    }

    /// Sets the redirect URI registered for the WhiteBIT demo clients
    /// (default [`DEFAULT_WHITEBIT_REDIRECT_URI`]).
    ///
    /// When it is a loopback `http` URI, a `redirect_uri` parameter with the same
    /// host and path but any port is accepted (RFC 8252 §7.3).
    #[must_use]
    pub fn whitebit_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.whitebit_redirect_uri = uri.into();
        self
    }

    /// Makes WhiteBIT's `/auth/login` skip the consent page and redirect at once
    /// with a code, as if the user had clicked Allow (default `false`).
    #[must_use]
    pub fn whitebit_auto_approve(mut self, auto_approve: bool) -> Self {
        self.whitebit_auto_approve = auto_approve;
        self
    }

    /// Adds a dialect described by a test, served from the start as if
    /// [`Sandbox::register`](crate::Sandbox::register)ed; find its handle with
    /// [`Sandbox::custom_dialect`](crate::Sandbox::custom_dialect).
    #[must_use]
    pub fn dialect(mut self, spec: DialectSpec) -> Self {
        self.dialects.push(spec);
        self
    }

    /// Sets the port to bind on 127.0.0.1; `0` (the default) picks a free one.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_matches_whole_segments() {
        assert_eq!(Dialect::split_path("/probit/token"), Some((Dialect::Probit, "/token")));
        assert_eq!(Dialect::split_path("/django"), Some((Dialect::GenericDjango, "/")));
        assert_eq!(Dialect::split_path("/probitx/token"), None);
        assert_eq!(Dialect::split_path("/"), None);
    }

    #[test]
    fn setters_apply() {
        let c = SandboxConfig::default().lifetime(Dialect::RubyStyle, Duration::from_secs(5)).port(8080);
        assert_eq!(c.lifetimes[2], Duration::from_secs(5));
        assert_eq!(c.lifetimes[0], Duration::from_secs(900));
        assert_eq!(c.port, 8080);
    }
}
