//! The conformance kit (feature `conformance`): the checks every client-credentials provider runs
//! against the sandbox, in a few lines of your own tests.
//!
//! [`ClientCredentialsKit`] starts a fresh sandbox for each check, asks your factory for a provider
//! configured with the [`KitContext`] it hands over (the sandbox, which credentials to use, a manual
//! clock), and checks it against the dialect, built-in or [described](crate::DialectSpec):
//!
//! - **special secret**: the demo client whose secret holds `: % + / & =` and spaces gets a token
//!   the protected resource accepts, and the provider's `Debug` output does not show the secret;
//! - **invalid client**: a wrong secret is [`Error::OAuth`] with
//!   [`OAuthErrorCode::InvalidClient`] and status 401, whose text does not show the secret (and
//!   mentions what you ask it to);
//! - **single flight**: 50 concurrent first callers cause one token request and share its token;
//! - **refresh under concurrency**: with 2-second tokens and 50 callers every 100 ms for 3.5 s of
//!   manual time, every caller gets a token the protected resource accepts, 3 to 5 tokens are
//!   fetched in all (never one per round), with exactly one request per token.
//!
//! Nothing sleeps: the provider's clock and the sandbox's clock are moved together.
//!
//! # Running it for your own provider
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::{CachedProvider, ClientCredentials, cache::ClientCredentialsSource, Scopes, TokenClient, TokenEndpoint};
//! use tokensmith_sandbox::DialectSpec;
//! use tokensmith_sandbox::conformance::{ClientCredentialsKit, KitContext};
//!
//! /// Your provider: here a plain RFC 6749 client with a token cache.
//! fn my_provider(cx: KitContext) -> tokensmith_core::Result<CachedProvider<ClientCredentialsSource>> {
//!     let endpoint = TokenEndpoint::new(cx.token_url().parse().map_err(|_| tokensmith_core::Error::config("token_url", "not a URL"))?);
//!     let client = TokenClient::builder("acme", endpoint, ClientCredentials::new(cx.client_id, cx.client_secret))
//!         .clock(cx.clock.clone())
//!         .build()?;
//!     Ok(CachedProvider::builder(ClientCredentialsSource::new(client, Scopes::empty())).clock(cx.clock).build())
//! }
//!
//! // In a test: #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! // Your server's dialect, described (or a built-in `Dialect`).
//! let acme = DialectSpec::new("acme", "/acme").token_path("/oauth/token");
//! ClientCredentialsKit::new(acme, my_provider).run().await;
//! # }
//! ```
//!
//! Run it on a multi-thread runtime, as above, so that the concurrent callers really run at once.

// A test kit: failing loudly with a message naming the check is its job.
#![allow(clippy::panic)]

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::testing::ManualClock;
use tokensmith_core::{
    AuthorizedClient, Error, SharedTokenProvider, TokenProvider, clock::Clock, error::OAuthErrorCode,
};

use crate::clients::SPECIAL_SECRET;
use crate::config::{Dialect, SandboxConfig};
use crate::server::Sandbox;
use crate::spec::{DialectId, DialectSpec};

/// The wrong secret the invalid-client check configures.
pub const WRONG_SECRET: &str = "not-the-secret";

/// The dialect a kit runs against: a built-in one, or a description registered on each sandbox
/// the kit starts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KitDialect {
    /// A built-in dialect.
    Builtin(Dialect),
    /// A described dialect.
    Custom(Box<DialectSpec>),
}

impl From<Dialect> for KitDialect {
    fn from(d: Dialect) -> Self {
        KitDialect::Builtin(d)
    }
}

impl From<DialectSpec> for KitDialect {
    fn from(spec: DialectSpec) -> Self {
        KitDialect::Custom(Box::new(spec))
    }
}

/// What the kit hands the provider factory for each check.
#[derive(Clone)]
pub struct KitContext {
    /// The sandbox of this check, already serving the dialect.
    pub sandbox: Sandbox,
    /// The dialect under test on that sandbox.
    pub dialect: DialectId,
    /// The client id to configure.
    pub client_id: String,
    /// The client secret to configure: the demo secret, [`SPECIAL_SECRET`] or [`WRONG_SECRET`].
    pub client_secret: String,
    /// The clock the provider must use for its cache and expiry stamps (a manual clock the kit moves
    /// together with the sandbox's).
    pub clock: Arc<dyn Clock>,
}

impl KitContext {
    /// The dialect's base URL on this sandbox.
    pub fn base_url(&self) -> String {
        self.sandbox.base_url(self.dialect)
    }

    /// The dialect's token endpoint on this sandbox.
    pub fn token_url(&self) -> String {
        self.sandbox.token_url(self.dialect)
    }
}

/// Shows the client id; the secret is redacted.
impl fmt::Debug for KitContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KitContext")
            .field("sandbox", &self.sandbox)
            .field("dialect", &self.dialect)
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::REDACTED)
            .finish_non_exhaustive()
    }
}

/// Which credentials a check gives the factory.
#[derive(Clone, Copy, Debug)]
enum Client {
    Plain,
    Special,
    WrongSecret,
}

/// The conformance kit for client-credentials providers; see the [module docs](self).
pub struct ClientCredentialsKit<F> {
    dialect: KitDialect,
    make: F,
    config: SandboxConfig,
    invalid_client_mentions: Vec<String>,
}

impl<F> fmt::Debug for ClientCredentialsKit<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsKit")
            .field("dialect", &self.dialect)
            .field("config", &self.config)
            .field("invalid_client_mentions", &self.invalid_client_mentions)
            .finish_non_exhaustive()
    }
}

/// A check's sandbox, the provider built for it and the clock it was given.
struct Setup<P> {
    sandbox: Sandbox,
    dialect: DialectId,
    provider: P,
    clock: Arc<ManualClock>,
}

impl<P, E, F> ClientCredentialsKit<F>
where
    P: TokenProvider,
    E: fmt::Display,
    F: Fn(KitContext) -> Result<P, E>,
{
    /// A kit checking the providers `make` builds against `dialect` (a [`Dialect`] or a
    /// [`DialectSpec`]). `make` must configure the provider with the context's URL (or base URL),
    /// client id and secret, and clock.
    pub fn new(dialect: impl Into<KitDialect>, make: F) -> Self {
        ClientCredentialsKit {
            dialect: dialect.into(),
            make,
            config: SandboxConfig::default(),
            invalid_client_mentions: Vec::new(),
        }
    }

    /// The configuration each check's sandbox starts with (default [`SandboxConfig::default`]); the
    /// refresh check sets the dialect's token lifetime to 2 seconds itself.
    #[must_use]
    pub fn sandbox_config(mut self, config: SandboxConfig) -> Self {
        self.config = config;
        self
    }

    /// Text the invalid-client error must contain, e.g. the server's own description or the hint
    /// the provider adds. May be given several times.
    #[must_use]
    pub fn invalid_client_mentions(mut self, text: impl Into<String>) -> Self {
        self.invalid_client_mentions.push(text.into());
        self
    }

    /// Runs every check; panics with a message naming the check that failed.
    pub async fn run(self) {
        self.special_secret_round_trips().await;
        self.wrong_secret_is_invalid_client().await;
        self.one_request_for_concurrent_first_callers().await;
        self.two_second_tokens_refreshed_once_per_refresh_under_concurrency().await;
    }

    async fn setup(&self, client: Client) -> Setup<P> {
        let sandbox = Sandbox::start_with(self.config.clone())
            .await
            .unwrap_or_else(|e| panic!("[kit] the sandbox did not start: {e}"));
        let dialect = match &self.dialect {
            KitDialect::Builtin(d) => DialectId::Builtin(*d),
            KitDialect::Custom(spec) => DialectId::Custom(
                sandbox
                    .register(DialectSpec::clone(spec))
                    .unwrap_or_else(|e| panic!("[kit] the dialect was refused: {e}")),
            ),
        };
        let demo = match client {
            Client::Plain | Client::WrongSecret => sandbox.credentials(dialect),
            Client::Special => sandbox.special_credentials(dialect),
        };
        let client_secret = match client {
            Client::WrongSecret => WRONG_SECRET.to_owned(),
            _ => demo.client_secret,
        };
        let clock = Arc::new(ManualClock::new());
        let context = KitContext {
            sandbox: sandbox.clone(),
            dialect,
            client_id: demo.client_id,
            client_secret,
            clock: clock.clone(),
        };
        let provider = (self.make)(context).unwrap_or_else(|e| panic!("[kit] the provider failed to build: {e}"));
        Setup { sandbox, dialect, provider, clock }
    }

    async fn special_secret_round_trips(&self) {
        for c in [':', '%', '+', '/', '&', '=', ' '] {
            assert!(SPECIAL_SECRET.contains(c), "[special secret] the special secret lacks {c:?}");
        }
        let s = self.setup(Client::Special).await;
        let debug = format!("{:?}", s.provider);
        assert!(!debug.contains(SPECIAL_SECRET), "[special secret] the provider's Debug shows the secret: {debug}");
        let client = AuthorizedClient::new(SharedTokenProvider::new(s.provider));
        let response = client
            .send(client.get(s.sandbox.protected_url(s.dialect)))
            .await
            .unwrap_or_else(|e| panic!("[special secret] no token for the client with the special secret: {e}"));
        assert_eq!(response.status(), 200, "[special secret] the protected resource refused the token");
    }

    async fn wrong_secret_is_invalid_client(&self) {
        let s = self.setup(Client::WrongSecret).await;
        let error = match s.provider.token().await {
            Ok(_) => panic!("[invalid client] a wrong secret got a token"),
            Err(e) => e,
        };
        assert!(matches!(error, Error::OAuth(_)), "[invalid client] not Error::OAuth: {error:?}");
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient), "[invalid client] {error:?}");
        assert_eq!(error.status(), Some(401), "[invalid client] {error:?}");
        let text = error.to_string();
        for mention in &self.invalid_client_mentions {
            assert!(text.contains(mention.as_str()), "[invalid client] the error does not mention {mention:?}: {text}");
        }
        let all = format!("{text} {error:?}");
        assert!(!all.contains(WRONG_SECRET), "[invalid client] the error shows the secret: {all}");
    }

    async fn one_request_for_concurrent_first_callers(&self) {
        let s = self.setup(Client::Plain).await;
        let provider = Arc::new(s.provider);
        let tokens = concurrent_tokens(&provider, 50, "[single flight]").await;
        assert_eq!(tokens.len(), 1, "[single flight] 50 concurrent first callers got {} tokens", tokens.len());
        let requests = s.sandbox.request_count(s.dialect, &token_path(&s.sandbox, s.dialect));
        assert_eq!(requests, 1, "[single flight] 50 concurrent first callers sent {requests} token requests");
    }

    async fn two_second_tokens_refreshed_once_per_refresh_under_concurrency(&self) {
        let s = self.setup(Client::Plain).await;
        s.sandbox.set_lifetime(s.dialect, Duration::from_secs(2));
        let provider = Arc::new(s.provider);
        let http = reqwest::Client::new();
        let protected = s.sandbox.protected_url(s.dialect);
        let mut seen: HashSet<String> = HashSet::new();
        let step = Duration::from_millis(100);
        for _ in 0..35 {
            let round = concurrent_tokens(&provider, 50, "[refresh]").await;
            for token in &round {
                let status = http
                    .get(&protected)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("[refresh] the protected resource did not answer: {e}"))
                    .status();
                assert_eq!(status, 200, "[refresh] a caller got a token the protected resource rejects");
            }
            seen.extend(round);
            s.clock.advance(step);
            s.sandbox.advance_clock(step);
        }
        // Each token serves until at most half its life is left: 3 or 4 tokens in 3.5 s, never one per round.
        assert!(
            (3..=5).contains(&seen.len()),
            "[refresh] expected 3 to 5 tokens in 3.5 s of 2 s tokens, saw {}",
            seen.len()
        );
        let requests = s.sandbox.request_count(s.dialect, &token_path(&s.sandbox, s.dialect));
        assert_eq!(requests, seen.len(), "[refresh] expected one request per refresh");
    }
}

/// The distinct token values `callers` concurrent tasks got.
async fn concurrent_tokens<P: TokenProvider>(provider: &Arc<P>, callers: usize, check: &str) -> HashSet<String> {
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let provider = Arc::clone(provider);
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        let token = task
            .await
            .unwrap_or_else(|e| panic!("{check} a caller panicked: {e}"))
            .unwrap_or_else(|e| panic!("{check} a caller got no token: {e}"));
        tokens.insert(token.secret().expose_secret().to_owned());
    }
    tokens
}

/// The token endpoint's path relative to the dialect's base, as the request counters name it.
fn token_path(sandbox: &Sandbox, dialect: DialectId) -> String {
    let (base, url) = (sandbox.base_url(dialect), sandbox.token_url(dialect));
    url.strip_prefix(&base).unwrap_or(&url).to_owned()
}
