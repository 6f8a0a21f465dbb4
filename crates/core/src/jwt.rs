//! JWT client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the `private_key_jwt` and
//! `client_secret_jwt` credential styles, reached as [`style::PrivateKeyJwt`](crate::style::PrivateKeyJwt)
//! and [`style::ClientSecretJwt`](crate::style::ClientSecretJwt) (feature `jwt`).
//!
//! Each request gets a fresh signed assertion: `iss` = `sub` = the client id, `aud` = the token
//! endpoint's URL (or a configured audience, such as the issuer), a random 128-bit `jti`, `iat` and a
//! short `exp`, sent as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and the `client_id`.
//! The assertion is a secret: every rendering of the request (`Debug`, snapshots, logs) shows
//! `[redacted]` in its place. Signing is `jsonwebtoken`'s, on aws-lc-rs.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::request::{TokenRequest, Value};
use crate::style::CredentialStyle;
use crate::support::REDACTED;
use crate::token::ClientCredentials;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid by default: one minute, enough for one request and its retries.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The longest lifetime an assertion may be given: ten minutes. An assertion is used once; a longer
/// one only widens the window in which a captured one could be replayed.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// The configuration key the private key's errors name.
const KEY: &str = "private_key_file";

/// The signature algorithm of a client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, from an RSA private key (`private_key_jwt`).
    Rs256,
    /// ECDSA on P-256 with SHA-256, from a P-256 private key in PKCS#8 (`private_key_jwt`).
    Es256,
    /// HMAC with SHA-256, keyed with the client secret (`client_secret_jwt`).
    Hs256,
}

impl SigningAlgorithm {
    /// The JOSE name (`RS256`, `ES256`, `HS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Hs256 => "HS256",
        }
    }

    fn jose(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every assertion carries besides its key: the audience, the lifetime and the clock.
#[derive(Clone)]
struct Assertion {
    audience: Option<String>,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl Default for Assertion {
    fn default() -> Self {
        Assertion { audience: None, lifetime: DEFAULT_ASSERTION_LIFETIME, clock: Arc::new(SystemClock::new()) }
    }
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assertion").field("audience", &self.audience).field("lifetime", &self.lifetime).finish()
    }
}

/// The claims of RFC 7523 §3, in the order they are serialized.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl Assertion {
    fn check(&self) -> Result<()> {
        if self.lifetime < Duration::from_secs(1) || self.lifetime > MAX_ASSERTION_LIFETIME {
            return Err(Error::config(
                "assertion_lifetime",
                format!(
                    "the client assertion's lifetime is {} s; give one between 1 s and {} s (60 s is usual)",
                    self.lifetime.as_secs(),
                    MAX_ASSERTION_LIFETIME.as_secs()
                ),
            ));
        }
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(Error::config(
                "audience",
                "the client assertion's audience is empty; remove it (the token endpoint's URL is used) or give the issuer",
            ));
        }
        Ok(())
    }

    /// Signs the claims for `client_id`, with the request's URL as audience unless one was configured.
    fn sign(
        &self,
        client_id: &str,
        url: &url::Url,
        (algorithm, key_id): (SigningAlgorithm, Option<&str>),
        key: &EncodingKey,
        key_name: &str,
    ) -> Result<String> {
        let iat = self.clock.system_time().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).map_err(|_| {
            Error::config("clock", "the system clock is set before 1970; a client assertion cannot be dated")
        })?;
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: self.audience.as_deref().unwrap_or(url.as_str()),
            jti: new_jti(),
            iat,
            exp: iat.saturating_add(self.lifetime.as_secs()),
        };
        sign(algorithm, key_id, &claims, key, key_name)
    }
}

/// A random `jti`: 128 bits from the thread's CSPRNG, base64url.
fn new_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs with jsonwebtoken on aws-lc-rs. The error never carries jsonwebtoken's text: it names the
/// key and the algorithm, nothing of the key.
fn sign<T: Serialize>(
    algorithm: SigningAlgorithm,
    key_id: Option<&str>,
    claims: &T,
    key: &EncodingKey,
    key_name: &str,
) -> Result<String> {
    // jsonwebtoken picks its crypto from a process-wide provider; installing ours is a no-op when one
    // (ours or the application's) is there already.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let mut header = Header::new(algorithm.jose());
    header.kid = key_id.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).map_err(|e| {
        let why = match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => "the key does not fit the algorithm",
            jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey => {
                "the signer refused the key (ES256 needs a P-256 key, RS256 an RSA key of 2048 bits or more)"
            }
            _ => "the key could not sign",
        };
        Error::config(key_name, format!("cannot sign a {algorithm} client assertion: {why}"))
    })
}

/// Puts the assertion and the client id on the request.
fn place(credentials: &ClientCredentials, request: &mut TokenRequest, assertion: String) {
    request.set_param("client_id", credentials.client_id());
    request.set_param("client_assertion_type", CLIENT_ASSERTION_TYPE);
    request.set_param("client_assertion", Value::Secret(SecretString::from(assertion)));
}

/// The `private_key_jwt` credential style: a client assertion signed with the client's private key,
/// RS256 or ES256, with an optional key id (`kid`) in its header.
///
/// The PEM is a secret: it is kept in a [`SecretString`] and parsed, and tried with a trial signature,
/// when the style is built, so that a bad key is an [`Error::Config`] naming `private_key_file` at
/// start-up, not a failure at the first token. No error or `Debug` output shows any of it.
///
/// ```
/// use tokensmith_core::{ClientCredentials, secrecy::SecretString, style::{CredentialStyle as _, PrivateKeyJwt}};
/// use tokensmith_core::request::{BodyFormat, Grant, TokenRequest};
///
/// # let pem = SecretString::from(include_str!("../tests/fixtures/test-only-rsa.pem"));
/// let style = PrivateKeyJwt::builder(pem).key_id("k1").build()?;
/// let url = "https://auth.example.test/token".parse().unwrap();
/// let request = TokenRequest::for_grant(url, BodyFormat::Form, &Grant::ClientCredentials);
/// let request = style.shape(&ClientCredentials::public("my-client"), request)?;
/// assert_eq!(request.param_redacted("client_assertion").as_deref(), Some("[redacted]"));
/// assert_eq!(request.param_redacted("client_id").as_deref(), Some("my-client"));
/// # Ok::<(), tokensmith_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PrivateKeyJwt {
    pem: SecretString,
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    assertion: Assertion,
}

impl fmt::Debug for PrivateKeyJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyJwt")
            .field("private_key", &REDACTED)
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("audience", &self.assertion.audience)
            .field("lifetime", &self.assertion.lifetime)
            .finish()
    }
}

/// Builds a [`PrivateKeyJwt`]; from [`PrivateKeyJwt::builder`] or [`PrivateKeyJwt::builder_from_file`].
#[derive(Clone)]
pub struct PrivateKeyJwtBuilder {
    pem: SecretString,
    algorithm: Option<SigningAlgorithm>,
    key_id: Option<String>,
    assertion: Assertion,
}

impl fmt::Debug for PrivateKeyJwtBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyJwtBuilder")
            .field("private_key", &REDACTED)
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("assertion", &self.assertion)
            .finish()
    }
}

impl PrivateKeyJwt {
    /// A builder for the private key `pem`: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8
    /// (`BEGIN PRIVATE KEY`) RSA, or PKCS#8 P-256 EC. The algorithm follows from the key unless
    /// [set](PrivateKeyJwtBuilder::algorithm).
    pub fn builder(pem: SecretString) -> PrivateKeyJwtBuilder {
        PrivateKeyJwtBuilder { pem, algorithm: None, key_id: None, assertion: Assertion::default() }
    }

    /// A builder for the private key in the PEM file at `path`. A file that cannot be read is an
    /// [`Error::Config`] naming `private_key_file`, the path and the reason.
    pub fn builder_from_file(path: impl AsRef<Path>) -> Result<PrivateKeyJwtBuilder> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Error::config(KEY, format!("cannot read the private key file {}: {}", path.display(), e.kind()))
        })?;
        Ok(PrivateKeyJwt::builder(SecretString::from(pem)))
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The key id sent as the header's `kid`, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// A freshly signed assertion for `client_id` with audience `audience` (the token endpoint's URL
    /// unless the style has one configured): what [`apply`](CredentialStyle::apply) sends as
    /// `client_assertion`.
    pub fn assertion(&self, client_id: &str, audience: &url::Url) -> Result<SecretString> {
        let key = parse_key(&self.pem, self.algorithm)?;
        self.assertion
            .sign(client_id, audience, (self.algorithm, self.key_id.as_deref()), &key, KEY)
            .map(SecretString::from)
    }
}

impl PrivateKeyJwtBuilder {
    /// The algorithm: [`Rs256`](SigningAlgorithm::Rs256) or [`Es256`](SigningAlgorithm::Es256). By
    /// default it follows from the key.
    pub fn algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// The key id (`kid`) sent in the assertion's header, for a server that holds several keys of
    /// the client.
    pub fn key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// The assertion's `aud`; by default the token endpoint's URL. Some servers want their issuer
    /// identifier instead.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion.audience = Some(audience.into());
        self
    }

    /// How long each assertion is valid (`exp` − `iat`): 1 s to [`MAX_ASSERTION_LIFETIME`], by
    /// default [`DEFAULT_ASSERTION_LIFETIME`].
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion.lifetime = lifetime;
        self
    }

    /// The clock that dates the assertions (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.assertion.clock = clock;
        self
    }

    /// Parses the key and signs a trial assertion with it: a key that is not PEM, is encrypted, is of
    /// an unsupported type or does not fit the algorithm is an [`Error::Config`] naming
    /// `private_key_file` that says which, and shows nothing of the key.
    pub fn build(self) -> Result<PrivateKeyJwt> {
        self.assertion.check()?;
        if self.key_id.as_deref().is_some_and(|kid| kid.trim().is_empty()) {
            return Err(Error::config("key_id", "the key id is empty; remove it or give the `kid` the server knows"));
        }
        let algorithm = match self.algorithm {
            Some(SigningAlgorithm::Hs256) => {
                return Err(Error::config(
                    KEY,
                    "HS256 signs with the client secret, not a private key; use the `client-secret-jwt` style",
                ));
            }
            Some(algorithm) => algorithm,
            None => detect(&self.pem)?,
        };
        // What the PEM parser would take for a key but cannot sign: a public key, a certificate.
        let text = self.pem.expose_secret();
        if matches!(
            labels(text).first().copied(),
            None | Some("ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY" | "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE")
        ) {
            return Err(unusable(text, Some(algorithm)));
        }
        let key = parse_key(&self.pem, algorithm)?;
        // A trial signature: the signer checks what the PEM parser does not (the curve, the RSA size).
        sign(algorithm, None, &serde_json::json!({ "trial": true }), &key, KEY)?;
        Ok(PrivateKeyJwt { pem: self.pem, algorithm, key_id: self.key_id, assertion: self.assertion })
    }
}

/// The PEM labels (`BEGIN <label>`) in `pem`: public text, safe to name in an error.
fn labels(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .filter(|label| label.len() <= 40 && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' '))
        .collect()
}

/// The algorithm a PEM key signs with, or an error saying what the PEM holds instead.
fn detect(pem: &SecretString) -> Result<SigningAlgorithm> {
    let text = pem.expose_secret();
    if EncodingKey::from_rsa_pem(text.as_bytes()).is_ok() {
        return Ok(SigningAlgorithm::Rs256);
    }
    if EncodingKey::from_ec_pem(text.as_bytes()).is_ok() {
        return Ok(SigningAlgorithm::Es256);
    }
    Err(unusable(text, None))
}

fn parse_key(pem: &SecretString, algorithm: SigningAlgorithm) -> Result<EncodingKey> {
    let text = pem.expose_secret();
    let key = match algorithm {
        SigningAlgorithm::Rs256 => EncodingKey::from_rsa_pem(text.as_bytes()),
        SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(text.as_bytes()),
        SigningAlgorithm::Hs256 => return Err(Error::config(KEY, "HS256 does not sign with a private key")),
    };
    key.map_err(|_| unusable(text, Some(algorithm)))
}

/// Why `pem` gives no key (for `algorithm`, when one was asked for), from its labels only.
fn unusable(pem: &str, algorithm: Option<SigningAlgorithm>) -> Error {
    let labels = labels(pem);
    let wanted = match algorithm {
        Some(SigningAlgorithm::Es256) => "a PKCS#8 P-256 private key (BEGIN PRIVATE KEY) for ES256",
        Some(SigningAlgorithm::Rs256) => "an RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY) for RS256",
        _ => "an RSA or P-256 EC private key in PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)",
    };
    let found = match labels.first().copied() {
        None => "no PEM block (a `-----BEGIN ...-----` line) was found".to_owned(),
        Some("ENCRYPTED PRIVATE KEY") => {
            "the key is encrypted; decrypt it first (`openssl pkey -in KEY -out PLAIN`)".to_owned()
        }
        Some("EC PRIVATE KEY") => {
            "the EC key is in SEC1 form (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY8`".to_owned()
        }
        Some(label @ ("PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE")) => {
            format!("the file holds a {label}, not a private key; give the private key (the server keeps the public one)")
        }
        Some(label) => format!("a `{label}` block that is not a usable key of this kind, or whose content is damaged"),
    };
    Error::config(KEY, format!("the private key is unusable: {found}; expected {wanted}"))
}

/// The `client_secret_jwt` credential style: a client assertion signed with HS256, keyed with the
/// client secret. The secret itself never leaves the process.
///
/// The secret should have at least 32 bytes (RFC 7518 §3.2 asks HMAC keys to be as long as the hash);
/// the server decides whether it accepts a shorter one.
#[derive(Debug, Clone, Default)]
pub struct ClientSecretJwt {
    assertion: Assertion,
}

impl ClientSecretJwt {
    /// The style with the token endpoint's URL as audience and a one-minute lifetime.
    pub fn new() -> Self {
        ClientSecretJwt::default()
    }

    /// The assertion's `aud`; by default the token endpoint's URL.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion.audience = Some(audience.into());
        self
    }

    /// How long each assertion is valid: 1 s to [`MAX_ASSERTION_LIFETIME`] (checked at each request).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion.lifetime = lifetime;
        self
    }

    /// The clock that dates the assertions (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.assertion.clock = clock;
        self
    }
}

impl CredentialStyle for PrivateKeyJwt {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let assertion = self.assertion(credentials.client_id(), request.url())?;
        place(credentials, request, assertion.expose_secret().to_owned());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "private-key-jwt"
    }
}

impl CredentialStyle for ClientSecretJwt {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        self.assertion.check()?;
        let secret = credentials.client_secret().ok_or_else(|| {
            Error::config(
                "client_secret",
                "the `client-secret-jwt` credential style signs with the client secret; set one, or use `private-key-jwt`",
            )
        })?;
        if secret.expose_secret().is_empty() {
            return Err(Error::config("client_secret", "the client secret is empty; HS256 needs a key"));
        }
        let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
        let assertion = self.assertion.sign(
            credentials.client_id(),
            request.url(),
            (SigningAlgorithm::Hs256, None),
            &key,
            "client_secret",
        )?;
        place(credentials, request, assertion);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "client-secret-jwt"
    }
}
