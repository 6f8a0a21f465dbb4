//! The sandbox's shared state: its clock, issued credentials, faults and log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use tokio::time::Instant;

use crate::config::{Dialect, SandboxConfig};
use crate::fault::Fault;
use crate::record::RecordedRequest;
use crate::spec::{CustomDialect, DialectId, DialectSpec};

/// The log keeps at most this many requests (the oldest are dropped); counters
/// are never dropped.
pub(crate) const LOG_CAPACITY: usize = 10_000;

/// State shared by the server task and every [`Sandbox`](crate::Sandbox) handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) port: u16,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
pub(crate) struct AccessGrant {
    pub(crate) dialect: DialectId,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Instant,
}

#[derive(Debug)]
pub(crate) struct PendingAuthorization {
    pub(crate) client_id: String,
    pub(crate) state: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
}

#[derive(Debug)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) expires_at: Instant,
    /// Set once redeemed: the credentials issued for it, revoked on reuse.
    pub(crate) redeemed: Option<(String, Option<String>)>,
}

#[derive(Debug)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) expires_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) clock_offset: Duration,
    pub(crate) lifetimes: [Duration; 4],
    pub(crate) access_tokens: HashMap<String, AccessGrant>,
    pub(crate) pending: HashMap<String, PendingAuthorization>,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) last_refresh: HashMap<String, Instant>,
    pub(crate) faults: HashMap<(DialectId, String), VecDeque<(Fault, usize)>>,
    pub(crate) counts: HashMap<(DialectId, String), usize>,
    pub(crate) log: VecDeque<RecordedRequest>,
    /// The registered dialects, in registration order ([`CustomDialect::index`]), never removed.
    pub(crate) customs: Vec<Custom>,
}

/// A registered dialect: its description, shared with the requests it is serving, and its current
/// token lifetime.
#[derive(Debug)]
pub(crate) struct Custom {
    pub(crate) spec: Arc<DialectSpec>,
    pub(crate) lifetime: Duration,
}

impl Inner {
    /// The sandbox clock: tokio's clock (so paused-time tests move it too) plus
    /// whatever [`Sandbox::advance_clock`](crate::Sandbox::advance_clock) added.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.clock_offset
    }

    /// Unix seconds on the sandbox clock.
    pub(crate) fn unix_now(&self) -> u64 {
        (SystemTime::now() + self.clock_offset).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// The access token lifetime of a dialect (zero for a dialect this sandbox does not serve).
    pub(crate) fn lifetime(&self, dialect: impl Into<DialectId>) -> Duration {
        match dialect.into() {
            DialectId::Builtin(d) => self.lifetimes[d.index()],
            DialectId::Custom(c) => self.customs.get(c.index).map_or(Duration::ZERO, |c| c.lifetime),
        }
    }

    /// The description of a registered dialect.
    pub(crate) fn custom(&self, dialect: CustomDialect) -> Option<Arc<DialectSpec>> {
        self.customs.get(dialect.index).map(|c| Arc::clone(&c.spec))
    }

    /// Issues a fresh access token and remembers it.
    pub(crate) fn issue_access_token(
        &mut self,
        dialect: impl Into<DialectId>,
        client_id: &str,
        scopes: Vec<String>,
        lifetime: Duration,
    ) -> String {
        let dialect = dialect.into();
        let token = match dialect {
            // Django OAuth Toolkit: 30 alphanumerics (oauthlib's generate_token).
            DialectId::Builtin(Dialect::GenericDjango) => random_alphanumeric(30),
            _ => random_token(32),
        };
        let now = self.now();
        if self.access_tokens.len() >= 4096 && self.access_tokens.len().is_power_of_two() {
            self.access_tokens.retain(|_, g| g.expires_at > now);
        }
        self.access_tokens.insert(
            token.clone(),
            AccessGrant { dialect, client_id: client_id.to_owned(), scopes, expires_at: now + lifetime },
        );
        token
    }

    /// Finds an access token of `dialect` that has not expired.
    pub(crate) fn valid_access_token(&self, dialect: impl Into<DialectId>, token: &str) -> TokenCheck<'_> {
        let dialect = dialect.into();
        match self.access_tokens.get(token) {
            Some(g) if g.dialect == dialect => {
                if g.expires_at > self.now() {
                    TokenCheck::Valid(g)
                } else {
                    TokenCheck::Expired
                }
            }
            _ => TokenCheck::Unknown,
        }
    }

    /// Takes the next fault injected for a route, if any.
    pub(crate) fn take_fault(&mut self, dialect: DialectId, path: &str) -> Option<Fault> {
        let key = (dialect, path.to_owned());
        let queue = self.faults.get_mut(&key)?;
        let fault = {
            let (fault, remaining) = queue.front_mut()?;
            *remaining -= 1;
            let fault = fault.clone();
            if *remaining == 0 {
                queue.pop_front();
            }
            fault
        };
        if queue.is_empty() {
            self.faults.remove(&key);
        }
        Some(fault)
    }

    pub(crate) fn record(&mut self, request: RecordedRequest) {
        *self.counts.entry((request.dialect, request.path.clone())).or_default() += 1;
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(request);
    }
}

/// The outcome of looking up a bearer token.
#[derive(Debug)]
pub(crate) enum TokenCheck<'a> {
    Valid(&'a AccessGrant),
    Expired,
    Unknown,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, port: u16) -> Shared {
        let inner = Inner { lifetimes: config.lifetimes, ..Inner::default() };
        Shared { config, port, inner: Mutex::new(inner) }
    }

    /// Locks the state; a panic elsewhere while holding the lock cannot poison it
    /// for good, as every update leaves it consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `bytes` random bytes from the thread-local CSPRNG, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn random_alphanumeric(len: usize) -> String {
    use rand::Rng as _;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_run_out_in_order() {
        let mut inner = Inner::default();
        inner
            .faults
            .entry((Dialect::Probit.into(), "/token".into()))
            .or_default()
            .extend([(Fault::Status(500), 2), (Fault::MalformedJson, 1)]);
        let mut seen = Vec::new();
        while let Some(f) = inner.take_fault(Dialect::Probit.into(), "/token") {
            seen.push(f);
        }
        assert_eq!(seen, vec![Fault::Status(500), Fault::Status(500), Fault::MalformedJson]);
        assert!(inner.faults.is_empty());
    }

    #[test]
    fn tokens_are_random_and_distinct() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert_eq!(random_alphanumeric(30).len(), 30);
    }

    #[test]
    fn expiry_follows_the_offset() {
        let mut inner = Inner { lifetimes: [Duration::from_secs(10); 4], ..Inner::default() };
        let t = inner.issue_access_token(Dialect::Probit, "c", vec![], Duration::from_secs(10));
        assert!(matches!(inner.valid_access_token(Dialect::Probit, &t), TokenCheck::Valid(_)));
        assert!(matches!(inner.valid_access_token(Dialect::RubyStyle, &t), TokenCheck::Unknown));
        inner.clock_offset = Duration::from_secs(10);
        assert!(matches!(inner.valid_access_token(Dialect::Probit, &t), TokenCheck::Expired));
    }
}
