//! Dialects a test describes and registers: [`DialectSpec`], and [`DialectId`], which names any
//! dialect a sandbox serves.

use std::fmt;
use std::time::Duration;

use crate::clients::{DemoClient, SPECIAL_SECRET};
use crate::config::Dialect;

/// Names a dialect a [`Sandbox`](crate::Sandbox) serves: one of the four built-in [`Dialect`]s or
/// one a test registered with [`Sandbox::register`](crate::Sandbox::register).
///
/// Every method of the sandbox that takes a dialect takes `impl Into<DialectId>`, so both a
/// [`Dialect`] and a [`CustomDialect`] can be passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialectId {
    /// A built-in dialect.
    Builtin(Dialect),
    /// A dialect registered from a [`DialectSpec`].
    Custom(CustomDialect),
}

impl From<Dialect> for DialectId {
    fn from(d: Dialect) -> Self {
        DialectId::Builtin(d)
    }
}

impl From<CustomDialect> for DialectId {
    fn from(d: CustomDialect) -> Self {
        DialectId::Custom(d)
    }
}

impl PartialEq<Dialect> for DialectId {
    fn eq(&self, other: &Dialect) -> bool {
        *self == DialectId::Builtin(*other)
    }
}

impl PartialEq<CustomDialect> for DialectId {
    fn eq(&self, other: &CustomDialect) -> bool {
        *self == DialectId::Custom(*other)
    }
}

/// A dialect registered on one sandbox with [`Sandbox::register`](crate::Sandbox::register).
///
/// A cheap handle: pass it wherever the sandbox takes a dialect. It means something only to the
/// sandbox that returned it; another sandbox treats it as a dialect it does not serve (its URLs
/// answer 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomDialect {
    pub(crate) index: usize,
}

/// How a registered dialect wants the client credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `Authorization: Basic base64(urlenc(id):urlenc(secret))`, each half form-urldecoded by the
    /// server (RFC 6749 §2.3.1, as Django OAuth Toolkit does).
    BasicRfc6749,
    /// `Authorization: Basic base64(id:secret)`, split on the first `:` and not decoded further
    /// (as ProBit and Doorkeeper do).
    BasicRaw,
    /// Both in the body, under these field names.
    Body {
        /// The client id's field, e.g. `client_id`.
        id: String,
        /// The client secret's field, e.g. `client_secret`; its value never reaches the log.
        secret: String,
    },
    /// No client authentication at all: any request with the right fields gets a token.
    None,
}

impl ClientAuth {
    /// [`ClientAuth::Body`] with these field names.
    pub fn body(id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuth::Body { id: id.into(), secret: secret.into() }
    }
}

/// How a registered dialect wants the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyEncoding {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`: one object whose members are all strings.
    Json,
}

/// How a registered dialect writes the token lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifetimeFormat {
    /// Whole seconds as a JSON number: `900`.
    Number,
    /// Whole seconds as a JSON string: `"900"`.
    String,
}

/// How a registered dialect words its errors. The error codes are RFC 6749's (`invalid_client`,
/// `invalid_request`, `unsupported_grant_type`, `invalid_scope`) whatever the shape.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorShape {
    /// `{"error": "<code>", "error_description": "<text>"}` (RFC 6749 §5.2).
    Rfc6749,
    /// `{"<code>": "<code>", "<message>": "<text>"}`, under an envelope member when one is given.
    Fields {
        /// The member carrying the error code.
        code: String,
        /// The member carrying the human-readable text.
        message: String,
        /// The member the error object sits under, if any.
        envelope: Option<String>,
    },
}

/// The description of a dialect a test registers on a running sandbox with
/// [`Sandbox::register`](crate::Sandbox::register) (or up front with
/// [`SandboxConfig::dialect`](crate::SandboxConfig::dialect)).
///
/// It is served under its own path prefix, as strictly as the built-in dialects: a request that
/// differs from the description in any way (another path or method, a query string, another
/// content type, a field it does not name, a field sent twice, a missing or wrong grant type,
/// credentials sent another way, an unknown scope) is refused with a 400 (401 for bad credentials,
/// 404 and 405 for paths and methods) whose error, in the dialect's [`ErrorShape`], says what was
/// wrong. Its requests are recorded and counted and take injected faults like the others.
///
/// [`DialectSpec::new`] starts from RFC 6749: token endpoint `/token`, HTTP Basic with §2.3.1
/// encoding, a form body, `grant_type=client_credentials`, an optional `scope`, and the answer
/// `{"access_token","token_type":"Bearer","expires_in":3600,"scope"}`; every part can be changed.
///
/// ```
/// use tokensmith_sandbox::{BodyEncoding, ClientAuth, DialectSpec, LifetimeFormat};
///
/// // A JSON dialect that renames every field and answers `{"issued":{"bearer":..,"lifetime":"900"}}`.
/// let spec = DialectSpec::new("acme", "/acme")
///     .token_path("/v1/grants")
///     .body(BodyEncoding::Json)
///     .client_auth(ClientAuth::body("consumerKey", "consumerSecret"))
///     .grant("grantKind", "machine")
///     .scope_field("permissions")
///     .envelope("issued")
///     .access_token_field("bearer")
///     .no_token_type()
///     .no_answer_scope()
///     .lifetime_field("lifetime", LifetimeFormat::String);
/// # let _ = spec;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DialectSpec {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) token_path: String,
    pub(crate) protected_path: String,
    pub(crate) client_auth: ClientAuth,
    pub(crate) body: BodyEncoding,
    pub(crate) grant_field: String,
    pub(crate) grant_value: String,
    pub(crate) scope_field: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) default_scopes: Vec<String>,
    pub(crate) envelope: Option<String>,
    pub(crate) access_token_field: String,
    pub(crate) token_type_field: Option<String>,
    pub(crate) lifetime_field: String,
    pub(crate) lifetime_format: LifetimeFormat,
    pub(crate) answer_scope_field: Option<String>,
    pub(crate) error_shape: ErrorShape,
    pub(crate) lifetime: Duration,
    pub(crate) client: DemoClient,
}

/// Shows the description; the demo client's secret is redacted.
impl fmt::Debug for DialectSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DialectSpec")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("token_path", &self.token_path)
            .field("client_auth", &self.client_auth)
            .field("body", &self.body)
            .field("grant", &(&self.grant_field, &self.grant_value))
            .field("scope_field", &self.scope_field)
            .field("envelope", &self.envelope)
            .field("access_token_field", &self.access_token_field)
            .field("lifetime_field", &(&self.lifetime_field, self.lifetime_format))
            .field("error_shape", &self.error_shape)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl DialectSpec {
    /// An RFC 6749 client-credentials dialect called `name` (letters, digits and `-`), served under
    /// `prefix` (e.g. `/acme`: one or more `/segment`s, no trailing slash).
    ///
    /// Its demo clients are `{name}-demo-client` / `{name}-demo-secret` (see
    /// [`client`](Self::client)) and `{name}-special-client` /
    /// [`SPECIAL_SECRET`](crate::SPECIAL_SECRET). Its protected resource is `GET /protected`. Any
    /// scope is accepted and none is granted by default (see [`scopes`](Self::scopes)); tokens live
    /// an hour (see [`lifetime`](Self::lifetime)).
    pub fn new(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        let name = name.into();
        let client =
            DemoClient { client_id: format!("{name}-demo-client"), client_secret: format!("{name}-demo-secret") };
        DialectSpec {
            name,
            prefix: prefix.into(),
            token_path: "/token".to_owned(),
            protected_path: "/protected".to_owned(),
            client_auth: ClientAuth::BasicRfc6749,
            body: BodyEncoding::Form,
            grant_field: "grant_type".to_owned(),
            grant_value: "client_credentials".to_owned(),
            scope_field: Some("scope".to_owned()),
            scopes: Vec::new(),
            default_scopes: Vec::new(),
            envelope: None,
            access_token_field: "access_token".to_owned(),
            token_type_field: Some("token_type".to_owned()),
            lifetime_field: "expires_in".to_owned(),
            lifetime_format: LifetimeFormat::Number,
            answer_scope_field: Some("scope".to_owned()),
            error_shape: ErrorShape::Rfc6749,
            lifetime: Duration::from_secs(3600),
            client,
        }
    }

    /// The dialect's name, as given to [`new`](Self::new).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path prefix the dialect is served under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The token endpoint's path below the prefix (default `/token`); only `POST` is allowed.
    #[must_use]
    pub fn token_path(mut self, path: impl Into<String>) -> Self {
        self.token_path = path.into();
        self
    }

    /// The protected resource's path below the prefix (default `/protected`): `GET` with a valid
    /// `Authorization: Bearer` token answers 200, anything else 401.
    #[must_use]
    pub fn protected_path(mut self, path: impl Into<String>) -> Self {
        self.protected_path = path.into();
        self
    }

    /// How the client credentials must arrive (default [`ClientAuth::BasicRfc6749`]).
    #[must_use]
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The request body's encoding (default [`BodyEncoding::Form`]).
    #[must_use]
    pub fn body(mut self, body: BodyEncoding) -> Self {
        self.body = body;
        self
    }

    /// The grant type's field and the only value accepted (default `grant_type` =
    /// `client_credentials`).
    #[must_use]
    pub fn grant(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.grant_field = field.into();
        self.grant_value = value.into();
        self
    }

    /// The optional field naming the requested scopes, separated by spaces (default `scope`).
    #[must_use]
    pub fn scope_field(mut self, field: impl Into<String>) -> Self {
        self.scope_field = Some(field.into());
        self
    }

    /// No scope field: a request naming scopes is refused like any other unknown field.
    #[must_use]
    pub fn no_scope(mut self) -> Self {
        self.scope_field = None;
        self
    }

    /// The scopes a client may ask for (others are `invalid_scope`), and those granted when it asks
    /// for none. By default any scope is accepted and none is granted unasked.
    #[must_use]
    pub fn scopes<S: Into<String>>(
        mut self,
        allowed: impl IntoIterator<Item = S>,
        default: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scopes = allowed.into_iter().map(Into::into).collect();
        self.default_scopes = default.into_iter().map(Into::into).collect();
        self
    }

    /// The member the successful answer's fields sit under, e.g. `data` (default: none).
    #[must_use]
    pub fn envelope(mut self, member: impl Into<String>) -> Self {
        self.envelope = Some(member.into());
        self
    }

    /// The answer's access token field (default `access_token`).
    #[must_use]
    pub fn access_token_field(mut self, field: impl Into<String>) -> Self {
        self.access_token_field = field.into();
        self
    }

    /// The answer's token type field, whose value is `Bearer` (default `token_type`).
    #[must_use]
    pub fn token_type_field(mut self, field: impl Into<String>) -> Self {
        self.token_type_field = Some(field.into());
        self
    }

    /// The answer has no token type field.
    #[must_use]
    pub fn no_token_type(mut self) -> Self {
        self.token_type_field = None;
        self
    }

    /// The answer's lifetime field and how it is written (default `expires_in`, a number).
    #[must_use]
    pub fn lifetime_field(mut self, field: impl Into<String>, format: LifetimeFormat) -> Self {
        self.lifetime_field = field.into();
        self.lifetime_format = format;
        self
    }

    /// The answer's field listing the granted scopes, space-separated (default `scope`); it is left
    /// out when no scope was granted.
    #[must_use]
    pub fn answer_scope_field(mut self, field: impl Into<String>) -> Self {
        self.answer_scope_field = Some(field.into());
        self
    }

    /// The answer never lists the granted scopes.
    #[must_use]
    pub fn no_answer_scope(mut self) -> Self {
        self.answer_scope_field = None;
        self
    }

    /// The error shape (default [`ErrorShape::Rfc6749`]).
    #[must_use]
    pub fn error_shape(mut self, shape: ErrorShape) -> Self {
        self.error_shape = shape;
        self
    }

    /// The access token lifetime (default an hour); whole seconds on the wire. It can be changed
    /// later with [`Sandbox::set_lifetime`](crate::Sandbox::set_lifetime).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The plain demo client (default `{name}-demo-client` / `{name}-demo-secret`). Its secret is
    /// redacted from the request log like the built-in ones.
    #[must_use]
    pub fn client(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.client = DemoClient { client_id: client_id.into(), client_secret: client_secret.into() };
        self
    }

    /// The special demo client: `{name}-special-client` with [`SPECIAL_SECRET`].
    pub(crate) fn special_client(&self) -> DemoClient {
        DemoClient { client_id: format!("{}-special-client", self.name), client_secret: SPECIAL_SECRET.to_owned() }
    }

    /// The request fields the dialect accepts, credentials included.
    pub(crate) fn request_fields(&self) -> Vec<&str> {
        let mut fields = vec![self.grant_field.as_str()];
        fields.extend(self.scope_field.as_deref());
        if let ClientAuth::Body { id, secret } = &self.client_auth {
            fields.push(id);
            fields.push(secret);
        }
        fields
    }

    /// Checks the description, as [`Sandbox::register`](crate::Sandbox::register) does before
    /// serving it.
    pub(crate) fn validate(&self) -> Result<(), RegisterError> {
        let invalid =
            |field: &'static str, reason: &str| Err(RegisterError::Invalid { field, reason: reason.to_owned() });
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return invalid("name", "must be letters, digits and `-`, not empty");
        }
        if Dialect::ALL.iter().any(|d| d.name() == self.name) {
            return Err(RegisterError::NameTaken { name: self.name.clone() });
        }
        if !valid_path(&self.prefix) || self.prefix.ends_with('/') {
            return invalid("prefix", "must be `/segment` or `/a/b`, URL-safe characters, no trailing slash");
        }
        for (field, path) in [("token_path", &self.token_path), ("protected_path", &self.protected_path)] {
            if !valid_path(path) {
                return invalid(field, "must start with `/` and hold URL-safe characters only");
            }
        }
        if self.token_path == self.protected_path {
            return invalid("protected_path", "must differ from the token path");
        }
        let fields = self.request_fields();
        if fields.iter().any(|f| f.is_empty()) {
            return invalid("fields", "request field names must not be empty");
        }
        if fields.iter().enumerate().any(|(i, f)| fields.iter().skip(i + 1).any(|g| g == f)) {
            return invalid("fields", "two request fields have the same name");
        }
        let mut answer = vec![self.access_token_field.as_str(), self.lifetime_field.as_str()];
        answer.extend(self.token_type_field.as_deref());
        answer.extend(self.answer_scope_field.as_deref());
        if answer.iter().chain(self.envelope.as_deref().iter()).any(|f| f.is_empty()) {
            return invalid("answer", "answer field names must not be empty");
        }
        if answer.iter().enumerate().any(|(i, f)| answer.iter().skip(i + 1).any(|g| g == f)) {
            return invalid("answer", "two answer fields have the same name");
        }
        if self.client.client_id.is_empty() || self.client.client_secret.is_empty() {
            return invalid("client", "the demo client needs an id and a secret");
        }
        if self.client.client_id.contains(':') {
            return invalid("client", "the demo client id must not contain `:` (HTTP Basic could not carry it)");
        }
        if self.default_scopes.iter().any(|s| !self.scopes.is_empty() && !self.scopes.contains(s)) {
            return invalid("scopes", "a default scope is not among the allowed ones");
        }
        Ok(())
    }
}

/// `/a/b`: non-empty segments of unreserved URL characters.
fn valid_path(path: &str) -> bool {
    match path.strip_prefix('/') {
        Some(rest) => rest.split('/').enumerate().all(|(i, seg)| {
            (seg.is_empty() && i > 0 && !rest.contains("//"))
                || (!seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)))
        }),
        None => false,
    }
}

/// Why [`Sandbox::register`](crate::Sandbox::register) refused a [`DialectSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A part of the description is not usable.
    Invalid {
        /// The part, e.g. `prefix`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A dialect of that name is already served.
    NameTaken {
        /// The name.
        name: String,
    },
    /// The prefix is, contains or lies below the prefix of a dialect already served.
    PrefixTaken {
        /// The prefix asked for.
        prefix: String,
        /// The dialect already served there.
        by: String,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Invalid { field, reason } => write!(f, "invalid dialect description: `{field}` {reason}"),
            RegisterError::NameTaken { name } => write!(f, "a dialect named `{name}` is already served"),
            RegisterError::PrefixTaken { prefix, by } => {
                write!(f, "the prefix `{prefix}` overlaps the one of the dialect `{by}`")
            }
        }
    }
}

impl std::error::Error for RegisterError {}

/// Whether one prefix equals the other or lies below it (whole segments).
pub(crate) fn prefixes_overlap(a: &str, b: &str) -> bool {
    let below = |x: &str, y: &str| x.strip_prefix(y).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    below(a, b) || below(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_prefixes() {
        assert!(valid_path("/acme") && valid_path("/a/b") && valid_path("/o/token/"));
        assert!(!valid_path("acme") && !valid_path("/a//b") && !valid_path("/a b") && !valid_path("/a?b"));
        assert!(prefixes_overlap("/probit", "/probit/x") && prefixes_overlap("/a", "/a"));
        assert!(!prefixes_overlap("/probit", "/probitx"));
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(DialectSpec::new("acme", "/acme").validate().is_ok());
        let bad = DialectSpec::new("acme", "/acme/").validate();
        assert!(matches!(bad, Err(RegisterError::Invalid { field: "prefix", .. })), "{bad:?}");
        let bad = DialectSpec::new("probit", "/p").validate();
        assert!(matches!(bad, Err(RegisterError::NameTaken { .. })), "{bad:?}");
        let bad = DialectSpec::new("acme", "/acme").grant("scope", "x").validate();
        assert!(matches!(bad, Err(RegisterError::Invalid { field: "fields", .. })), "{bad:?}");
    }

    #[test]
    fn debug_hides_the_secret() {
        let spec = DialectSpec::new("acme", "/acme").client("id", "hush-hush");
        assert!(!format!("{spec:?}").contains("hush-hush"));
    }
}
