//! A provider's dialect ([`TokenEndpoint`]) and the client that speaks it ([`TokenClient`]).
//!
//! A provider crate describes only what differs: the URLs, the body format, the credential style,
//! whether `grant_type` is sent and under which name and value, the scope and refresh-token
//! parameters' names, extra parameters (public or secret), the scope separator and the response
//! format. [`TokenClient`] does everything common once: builds the
//! [`TokenRequest`], sends it through the [`Transport`] with retries, and parses the response.
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenClient, TokenEndpoint, style::BasicAuthRaw, request::{BodyFormat, Grant}};
//!
//! let endpoint = TokenEndpoint::new("https://accounts.probit.com/token".parse().unwrap())
//!     .body_format(BodyFormat::Json)
//!     .credential_style(Arc::new(BasicAuthRaw));
//! let client = TokenClient::builder("probit", endpoint, ClientCredentials::new("id", "secret")).build().unwrap();
//! let request = client.build_request(&Grant::ClientCredentials, &Scopes::empty()).unwrap();
//! assert_eq!(request.wire_body(), br#"{"grant_type":"client_credentials"}"#);
//! ```
//!
//! A server that renames every field is described the same way, as data:
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::secrecy::SecretString;
//! use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, style::BodyCredentials, request::{BodyFormat, Grant}};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.test/v3/token".parse().unwrap())
//!     .body_format(BodyFormat::Json)
//!     .credential_style(Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
//!     .grant_type_param("grantKind")
//!     .scope_param("permissions")
//!     .extra_param("tenant", "eu-1")
//!     .secret_param("api_key", SecretString::from("k-123"));
//! let credentials = ClientCredentials::new("my-client", "s3cret");
//! let request = endpoint.build_request(&Grant::ClientCredentials, &credentials, &Scopes::parse("read")).unwrap();
//! assert_eq!(
//!     request.redacted_body(),
//!     r#"{"grantKind":"client_credentials","permissions":"read","tenant":"eu-1","api_key":"[redacted]","consumerKey":"my-client","consumerSecret":"[redacted]"}"#
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tracing::Instrument as _;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result, TransportError, TransportErrorKind};
#[cfg(feature = "reqwest")]
use crate::http::ReqwestTransport;
use crate::http::Transport;
use crate::parse::{ResponseFormat, parse_response};
use crate::request::{BodyFormat, Grant, TokenRequest, Value};
use crate::retry::RetryPolicy;
use crate::style::{BasicAuth, CredentialStyle};
use crate::support::{REDACTED, check_url};
use crate::token::{AccessToken, ClientCredentials, Scopes};

/// What a provider's token endpoint expects: the dialect.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    token_url: Url,
    refresh_url: Option<Url>,
    body_format: BodyFormat,
    credential_style: Arc<dyn CredentialStyle>,
    send_grant_type: bool,
    grant_type_param: Cow<'static, str>,
    /// Wire values replacing RFC 6749 `grant_type` values: (RFC value, value sent).
    grant_type_values: Vec<(Cow<'static, str>, String)>,
    scope_param: Cow<'static, str>,
    refresh_token_param: Cow<'static, str>,
    /// Sent with every request, in order; secret values are redacted wherever a request is shown.
    extra_params: Vec<(String, Value)>,
    /// What the store key digests of the extra parameters: plain ones as they are, secret ones by
    /// name only (a digest of a secret in a key another process can read would invite guessing).
    key_params: Vec<(String, String)>,
    scope_separator: Cow<'static, str>,
    response: ResponseFormat,
}

impl TokenEndpoint {
    /// An RFC 6749 endpoint at `token_url`: form body, HTTP Basic with §2.3.1 encoding, `grant_type`
    /// sent, refresh token as `refresh_token`, scopes separated by spaces, no envelope.
    pub fn new(token_url: Url) -> Self {
        TokenEndpoint {
            token_url,
            refresh_url: None,
            body_format: BodyFormat::Form,
            credential_style: Arc::new(BasicAuth),
            send_grant_type: true,
            grant_type_param: Cow::Borrowed("grant_type"),
            grant_type_values: Vec::new(),
            scope_param: Cow::Borrowed("scope"),
            refresh_token_param: Cow::Borrowed("refresh_token"),
            extra_params: Vec::new(),
            key_params: Vec::new(),
            scope_separator: Cow::Borrowed(" "),
            response: ResponseFormat::default(),
        }
    }

    /// A separate URL for refresh requests (WhiteBIT's `/oauth2/refresh_token`).
    pub fn refresh_url(mut self, url: Url) -> Self {
        self.refresh_url = Some(url);
        self
    }

    /// The body format.
    pub fn body_format(mut self, format: BodyFormat) -> Self {
        self.body_format = format;
        self
    }

    /// How client credentials are sent.
    pub fn credential_style(mut self, style: Arc<dyn CredentialStyle>) -> Self {
        self.credential_style = style;
        self
    }

    /// Whether `grant_type` is sent (WhiteBIT sends none). When false, neither a renamed
    /// [`grant_type_param`](Self::grant_type_param) nor a [`grant_type_value`](Self::grant_type_value)
    /// is sent either.
    pub fn send_grant_type(mut self, send: bool) -> Self {
        self.send_grant_type = send;
        self
    }

    /// The name the grant type is sent under (`grant_type` per RFC 6749; say `grantKind`).
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap()).grant_type_param("grantKind");
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grantKind=client_credentials");
    /// ```
    pub fn grant_type_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.grant_type_param = name.into();
        self
    }

    /// Sends `value` in place of the RFC 6749 grant type `grant` (`client_credentials`,
    /// `authorization_code` or `refresh_token`), e.g. `("client_credentials", "clientCredentials")`.
    /// Other grants keep their RFC values; an unknown `grant` is refused when the client is built.
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap())
    ///     .grant_type_value("client_credentials", "server");
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grant_type=server");
    /// ```
    pub fn grant_type_value(mut self, grant: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        let grant = grant.into();
        let value = value.into();
        match self.grant_type_values.iter_mut().find(|(g, _)| *g == grant) {
            Some(slot) => slot.1 = value,
            None => self.grant_type_values.push((grant, value)),
        }
        self
    }

    /// The name requested scopes are sent under (`scope` per RFC 6749; say `permissions`).
    pub fn scope_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.scope_param = name.into();
        self
    }

    /// The name of the refresh token parameter (`refresh_token` per RFC 6749; WhiteBIT uses `token`).
    pub fn refresh_token_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.refresh_token_param = name.into();
        self
    }

    /// A parameter added to every request (e.g. `audience`). A second parameter of the same name
    /// replaces the first.
    pub fn extra_param(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.put_extra(name.into(), Value::Plain(value.into()))
    }

    /// A parameter added to every request whose value is a secret (an API key, say): sent on the wire
    /// like any other, shown as `[redacted]` in the request's `Debug` and `Serialize` renderings
    /// (snapshots), and removed from errors like the client secret, should a server echo it. A second
    /// parameter of the same name replaces the first.
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// use tokensmith_core::secrecy::SecretString;
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap())
    ///     .secret_param("api_key", SecretString::from("k-123"));
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grant_type=client_credentials&api_key=k-123");
    /// assert!(!format!("{request:?}").contains("k-123"));
    /// ```
    pub fn secret_param(self, name: impl Into<String>, value: secrecy::SecretString) -> Self {
        self.put_extra(name.into(), Value::Secret(value))
    }

    fn put_extra(mut self, name: String, value: Value) -> Self {
        let key_value = match &value {
            Value::Plain(v) => v.clone(),
            _ => REDACTED.to_owned(),
        };
        match self.extra_params.iter().position(|(n, _)| *n == name) {
            Some(at) => {
                if let Some(slot) = self.extra_params.get_mut(at) {
                    slot.1 = value;
                }
                if let Some(slot) = self.key_params.get_mut(at) {
                    slot.1 = key_value;
                }
            }
            None => {
                self.extra_params.push((name.clone(), value));
                self.key_params.push((name, key_value));
            }
        }
        self
    }

    /// How requested scopes are joined (a space per RFC 6749 §3.3).
    pub fn scope_separator(mut self, separator: impl Into<Cow<'static, str>>) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// How responses are shaped.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response = format;
        self
    }

    /// The extra parameters sent with every request (audience, resource, ...), in order, as the store
    /// key digests them: a secret one's value is [`REDACTED`].
    pub(crate) fn extra_params(&self) -> &[(String, String)] {
        &self.key_params
    }

    /// The values of the secret extra parameters, for scrubbing errors.
    fn secret_values(&self) -> impl Iterator<Item = &secrecy::SecretString> {
        self.extra_params.iter().filter_map(|(_, v)| match v {
            Value::Secret(s) => Some(s),
            _ => None,
        })
    }

    /// Checks what can be checked before a request is sent: the credentials fit the credential style,
    /// grant-type overrides name known grants, names are not empty, nothing secret goes in the URL,
    /// and no request would carry one name twice (say an extra parameter named like the renamed scope
    /// parameter, which would silently replace it). [`TokenClientBuilder::build`] runs it; it shapes
    /// one request with the credential style.
    pub fn validate(&self, credentials: &ClientCredentials) -> Result<()> {
        const GRANTS: [&str; 3] = ["client_credentials", "authorization_code", "refresh_token"];
        for (grant, value) in &self.grant_type_values {
            if !GRANTS.contains(&grant.as_ref()) {
                return Err(Error::config(
                    "grant_type_value",
                    format!(
                        "`{grant}` is not a grant type; override client_credentials, authorization_code or refresh_token"
                    ),
                ));
            }
            if value.trim().is_empty() {
                return Err(Error::config("grant_type_value", "the grant type value is empty"));
            }
        }
        let mut common: Vec<(&str, &str)> = Vec::new();
        if self.send_grant_type {
            common.push((&self.grant_type_param, "grant_type_param"));
        }
        common.push((&self.scope_param, "scope_param"));
        for (name, _) in &self.extra_params {
            common.push((name, "extra_params"));
        }
        for (name, key) in &common {
            if name.trim().is_empty() {
                return Err(Error::config(*key, "a parameter name is empty; give the field name the server expects"));
            }
        }
        // What the style adds, on a request of its own (so that a name it shares with another field
        // shows rather than replacing it), checked by the rules every request obeys.
        let shaped = self
            .get_credential_style()
            .shape(credentials, TokenRequest::new(self.token_url.clone(), self.body_format))?;
        self.unshaped_request(&Grant::ClientCredentials, &Scopes::empty()).validate()?;
        let style_names = shaped.param_names();
        common.extend(style_names.iter().map(|n| (n.as_str(), "credential_style")));
        let refresh = [(self.refresh_token_param.as_ref(), "refresh_token_param")];
        let code = [("code", "the authorization code"), ("redirect_uri", "redirect_uri"), ("code_verifier", "PKCE")];
        for per_grant in [&refresh[..], &code[..]] {
            let names: Vec<(&str, &str)> = common.iter().chain(per_grant).copied().collect();
            for (at, (name, key)) in names.iter().enumerate() {
                let earlier = names.get(..at).unwrap_or_default();
                if let Some((_, other)) = earlier.iter().find(|(n, _)| n == name) {
                    return Err(Error::config(
                        *key,
                        format!(
                            "`{name}` would be sent twice in one request (also for {other}); give each field its own name"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The token URL.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The URL refresh requests go to.
    pub fn refresh_target(&self) -> &Url {
        self.refresh_url.as_ref().unwrap_or(&self.token_url)
    }

    /// The credential style (set with [`credential_style`](Self::credential_style)).
    pub fn get_credential_style(&self) -> &dyn CredentialStyle {
        self.credential_style.as_ref()
    }

    /// The response format (set with [`response_format`](Self::response_format)).
    pub fn get_response_format(&self) -> &ResponseFormat {
        &self.response
    }

    /// The body format (set with [`body_format`](Self::body_format)).
    pub fn get_body_format(&self) -> BodyFormat {
        self.body_format
    }

    /// Builds the request for `grant` with `credentials`, asking for `scopes`. No I/O.
    pub fn build_request(
        &self,
        grant: &Grant,
        credentials: &ClientCredentials,
        scopes: &Scopes,
    ) -> Result<TokenRequest> {
        self.credential_style.shape(credentials, self.unshaped_request(grant, scopes))
    }

    /// The request for `grant` and `scopes` before the credential style shapes it.
    fn unshaped_request(&self, grant: &Grant, scopes: &Scopes) -> TokenRequest {
        let url = match grant {
            Grant::RefreshToken(_) => self.refresh_target().clone(),
            _ => self.token_url.clone(),
        };
        let mut request = TokenRequest::for_grant(url, self.body_format, grant).scopes(scopes, &self.scope_separator);
        if !self.send_grant_type {
            request = request.without_param("grant_type");
        } else {
            if let Some((_, value)) = self.grant_type_values.iter().find(|(g, _)| *g == grant.grant_type()) {
                request = request.param("grant_type", value.as_str());
            }
            if self.grant_type_param != "grant_type" {
                request = request.rename_param("grant_type", &self.grant_type_param);
            }
        }
        if self.scope_param != "scope" {
            request = request.rename_param("scope", &self.scope_param);
        }
        if self.refresh_token_param != "refresh_token" {
            request = request.rename_param("refresh_token", &self.refresh_token_param);
        }
        for (name, value) in &self.extra_params {
            request = request.param(name.clone(), value.clone());
        }
        request
    }
}

/// Sends a provider's token requests: builds them from its [`TokenEndpoint`], sends them with retries
/// and parses the responses.
pub struct TokenClient {
    provider: Cow<'static, str>,
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    error_mapper: Option<fn(&Grant, Error) -> Error>,
    /// The last client-credentials request built, with the scopes it asks for. It depends on nothing
    /// else (the dialect and the credentials never change), so later fetches send it again as it is,
    /// wire form included, instead of building and rendering it anew — when the credential style
    /// says its requests may be reused.
    prepared: ArcSwapOption<(Scopes, TokenRequest)>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("transport", &self.transport)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenClient`].
pub struct TokenClientBuilder {
    provider: Cow<'static, str>,
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    transport: Option<Arc<dyn Transport>>,
    retry: RetryPolicy,
    clock: Option<Arc<dyn Clock>>,
    error_mapper: Option<fn(&Grant, Error) -> Error>,
    allow_insecure_http: bool,
    secret_required: bool,
}

impl fmt::Debug for TokenClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClientBuilder")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenClientBuilder {
    /// The transport (default, with the `reqwest` feature: the process-wide
    /// `ReqwestTransport::shared`, one connection pool for every client built without one, with this
    /// builder's insecure-HTTP setting; without the feature a transport must be given).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The clock used to stamp expiry (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A hook that turns a provider's own error shape into the error tokensmith should report (e.g.
    /// WhiteBIT's `400 {"data":{"token":[..]}}` on refresh into [`Error::ReauthorizationRequired`]).
    pub fn error_mapper(mut self, mapper: fn(&Grant, Error) -> Error) -> Self {
        self.error_mapper = Some(mapper);
        self
    }

    /// Allows plain `http://` to non-loopback hosts (default: refused).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Whether a client secret is required (default true; false for public clients).
    pub fn secret_required(mut self, required: bool) -> Self {
        self.secret_required = required;
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<TokenClient> {
        self.credentials.validate(self.secret_required)?;
        check_url(self.endpoint.token_url(), self.allow_insecure_http)
            .map_err(|e| Error::config("token_url", e.to_string()))?;
        if let Some(url) = &self.endpoint.refresh_url {
            check_url(url, self.allow_insecure_http).map_err(|e| Error::config("refresh_url", e.to_string()))?;
        }
        self.endpoint.response.validate("envelope")?;
        // Shaping a request once proves the dialect and credentials fit together.
        self.endpoint.validate(&self.credentials)?;
        let transport = match self.transport {
            Some(t) => t,
            None => default_transport(self.allow_insecure_http)?,
        };
        Ok(TokenClient {
            provider: self.provider,
            endpoint: self.endpoint,
            credentials: self.credentials,
            transport,
            retry: self.retry,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            error_mapper: self.error_mapper,
            prepared: ArcSwapOption::empty(),
        })
    }
}

/// The transport a client gets when none is given, when the `reqwest` feature is on: the process-wide
/// [`ReqwestTransport::shared`], one connection pool for every provider. The two handles (HTTPS only,
/// and plain `http://` allowed) are made once, so building a provider allocates no transport.
#[cfg(feature = "reqwest")]
fn default_transport(allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    static HTTPS_ONLY: std::sync::LazyLock<Arc<dyn Transport>> =
        std::sync::LazyLock::new(|| Arc::new(ReqwestTransport::shared(false)));
    static INSECURE_ALLOWED: std::sync::LazyLock<Arc<dyn Transport>> =
        std::sync::LazyLock::new(|| Arc::new(ReqwestTransport::shared(true)));
    Ok(Arc::clone(if allow_insecure_http { &INSECURE_ALLOWED } else { &HTTPS_ONLY }))
}

/// Without the `reqwest` feature there is no default transport.
#[cfg(not(feature = "reqwest"))]
fn default_transport(_allow_insecure_http: bool) -> Result<Arc<dyn Transport>> {
    Err(Error::config(
        "transport",
        "no transport is set and tokensmith-core was built without its `reqwest` feature; give one with `transport(..)` or enable the feature",
    ))
}

impl TokenClient {
    /// Starts configuring a client for `provider` (a name used in tracing) speaking `endpoint`'s
    /// dialect with `credentials`.
    pub fn builder(
        provider: impl Into<Cow<'static, str>>,
        endpoint: TokenEndpoint,
        credentials: ClientCredentials,
    ) -> TokenClientBuilder {
        TokenClientBuilder {
            provider: provider.into(),
            endpoint,
            credentials,
            transport: None,
            retry: RetryPolicy::default(),
            clock: None,
            error_mapper: None,
            allow_insecure_http: false,
            secret_required: true,
        }
    }

    /// The provider name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The dialect.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The client credentials.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The transport the client sends through (unless one was given: the process-wide shared one).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The request this client would send for `grant` and `scopes`. No I/O: use it to snapshot-test
    /// a provider's wire shape.
    pub fn build_request(&self, grant: &Grant, scopes: &Scopes) -> Result<TokenRequest> {
        self.endpoint.build_request(grant, &self.credentials, scopes)
    }

    /// Sends a token request for `grant`, retrying per the policy, and parses the token.
    ///
    /// When the response names no scope, the requested `scopes` are taken as granted (RFC 6749 §5.1).
    /// A refresh response without a new refresh token keeps the one sent.
    pub async fn request_token(&self, grant: &Grant, scopes: &Scopes) -> Result<AccessToken> {
        let prepared;
        let built;
        let request = match grant {
            Grant::ClientCredentials => {
                prepared = self.client_credentials_request(scopes)?;
                &prepared.1
            }
            _ => {
                built = self.build_request(grant, scopes)?;
                &built
            }
        };
        let span = tracing::info_span!(
            "tokensmith.token_request",
            provider = %self.provider,
            grant = request.grant_type(),
            host = request.url().host_str().unwrap_or(""),
            path = request.url().path(),
        );
        let result = self.send_with_retries(request, grant, scopes).instrument(span).await;
        let result = match (result, self.error_mapper) {
            (Err(e), Some(map)) => Err(map(grant, e)),
            (result, _) => result,
        };
        result.map_err(|e| self.scrub(e, grant))
    }

    /// The client-credentials request for `scopes`: the one kept from the last fetch when it asked for
    /// the same scopes (the usual case: a provider always asks for its configured scopes), else a new
    /// one, which is kept in its place. Nothing is kept when the credential style is not
    /// [reusable](CredentialStyle::reusable).
    fn client_credentials_request(&self, scopes: &Scopes) -> Result<Arc<(Scopes, TokenRequest)>> {
        let reusable = self.endpoint.credential_style.reusable();
        if reusable {
            if let Some(prepared) = self.prepared.load_full().filter(|p| p.0 == *scopes) {
                return Ok(prepared);
            }
        }
        let prepared = Arc::new((scopes.clone(), self.build_request(&Grant::ClientCredentials, scopes)?));
        if reusable {
            self.prepared.store(Some(Arc::clone(&prepared)));
        }
        Ok(prepared)
    }

    /// Removes this client's secret and the grant's secrets from an error's texts, in case a server
    /// echoed them.
    fn scrub(&self, error: Error, grant: &Grant) -> Error {
        use base64::Engine as _;
        use secrecy::ExposeSecret as _;
        let mut secrets: Vec<&str> = Vec::new();
        // Both Basic encodings a style may have sent (RFC 6749 form-encoded parts, or raw).
        let mut basic: Vec<String> = Vec::new();
        if let Some(secret) = self.credentials.client_secret() {
            let (id, secret) = (self.credentials.client_id(), secret.expose_secret());
            let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            for pair in [format!("{}:{}", form(id), form(secret)), format!("{id}:{secret}")] {
                basic.push(base64::engine::general_purpose::STANDARD.encode(pair));
            }
            secrets.push(secret);
        }
        secrets.extend(basic.iter().map(String::as_str));
        secrets.extend(self.endpoint.secret_values().map(|s| s.expose_secret()));
        match grant {
            Grant::ClientCredentials => {}
            Grant::AuthorizationCode { code, code_verifier, .. } => {
                secrets.push(code.expose_secret());
                if let Some(v) = code_verifier {
                    secrets.push(v.expose_secret());
                }
            }
            Grant::RefreshToken(rt) => secrets.push(rt.secret().expose_secret()),
        }
        error.scrub(&secrets)
    }

    async fn send_with_retries(&self, request: &TokenRequest, grant: &Grant, scopes: &Scopes) -> Result<AccessToken> {
        let started = Instant::now();
        let deadline = instant_after(tokio::time::Instant::now(), self.retry.get_deadline());
        let previous_refresh = match grant {
            Grant::RefreshToken(rt) => Some(rt),
            _ => None,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let attempt_started = Instant::now();
            // One timer bounds the attempt: its own timeout, or what is left of the deadline.
            let attempt_deadline = instant_after(tokio::time::Instant::now(), self.retry.get_attempt_timeout());
            let sent = tokio::time::timeout_at(attempt_deadline.min(deadline), self.transport.send(request)).await;
            let outcome = match sent {
                Err(_) if attempt_deadline < deadline => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the attempt timeout of {:?}", self.retry.get_attempt_timeout()),
                ))),
                Err(_) => Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within the overall deadline of {:?}", self.retry.get_deadline()),
                ))),
                Ok(Err(e)) => Err(Error::Transport(e)),
                Ok(Ok(response)) => {
                    tracing::debug!(
                        attempt,
                        status = response.status,
                        elapsed_ms = attempt_started.elapsed().as_millis() as u64,
                        "token endpoint answered"
                    );
                    parse_response(&response, &self.endpoint.response, self.clock.system_time(), previous_refresh).map(
                        |token| {
                            if token.scopes().is_empty() && !scopes.is_empty() {
                                token.to_builder().scopes(scopes.clone()).build()
                            } else {
                                token
                            }
                        },
                    )
                }
            };
            let error = match outcome {
                Ok(token) => {
                    tracing::info!(
                        attempt,
                        lifetime_s = token.lifetime().as_secs(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "token obtained"
                    );
                    return Ok(token);
                }
                // Scrubbed before anything logs it: a server may echo what it was sent.
                Err(e) => self.scrub(e, grant),
            };
            let now = tokio::time::Instant::now();
            let backoff = self.retry.backoff(attempt, error.retry_after());
            let retry = error.is_retryable()
                && (!consumes_grant(grant) || surely_not_processed(&error))
                && attempt < self.retry.get_max_attempts()
                && now.checked_add(backoff).is_some_and(|retry_at| retry_at < deadline);
            if !retry {
                tracing::warn!(attempt, error = %error, elapsed_ms = started.elapsed().as_millis() as u64, "token request failed");
                return Err(error);
            }
            tracing::warn!(attempt, error = %error, backoff_ms = backoff.as_millis() as u64, "token request failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }
}

/// `now + after`, or a far-future instant when that does not fit (a duration from a configuration or
/// a server can be anything).
fn instant_after(now: tokio::time::Instant, after: std::time::Duration) -> tokio::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(after.min(FAR)).unwrap_or(now)
}

/// Whether a grant can be used only once: a code, or a refresh token that the provider may rotate.
fn consumes_grant(grant: &Grant) -> bool {
    matches!(grant, Grant::AuthorizationCode { .. } | Grant::RefreshToken(_))
}

/// Whether a failure means the server surely did not act on the request: the connection was never
/// made, or the server said it is rate limiting (429) or unavailable (503). After a timeout, a broken
/// connection or another 5xx the grant may already be spent, and sending it again could be rejected
/// as reuse (or, with rotation, revoke the new tokens), so such failures are not retried for
/// consuming grants.
fn surely_not_processed(error: &Error) -> bool {
    match error {
        Error::Transport(e) => e.kind() == TransportErrorKind::Connect,
        other => matches!(other.status(), Some(429 | 503)),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::http::HttpResponse;
    use crate::style::{BasicAuth, BodyCredentials};
    use crate::token::RefreshToken;

    const API_KEY: &str = "api-key-4f9c2e";
    const SECRET: &str = "client-secret-77ab";

    fn renamed() -> TokenEndpoint {
        TokenEndpoint::new("https://auth.example.test/v3/token".parse().unwrap())
            .body_format(BodyFormat::Json)
            .credential_style(Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
            .grant_type_param("grantKind")
            .scope_param("permissions")
            .extra_param("tenant", "eu-1")
            .secret_param("api_key", SecretString::from(API_KEY))
    }

    fn credentials() -> ClientCredentials {
        ClientCredentials::new("my-client", SECRET)
    }

    #[test]
    fn every_field_renamed_on_the_wire() {
        let request =
            renamed().build_request(&Grant::ClientCredentials, &credentials(), &Scopes::parse("read")).unwrap();
        assert_eq!(
            String::from_utf8(request.wire_body()).unwrap(),
            format!(
                r#"{{"grantKind":"client_credentials","permissions":"read","tenant":"eu-1","api_key":"{API_KEY}","consumerKey":"my-client","consumerSecret":"{SECRET}"}}"#
            )
        );
        assert!(!request.has_header("authorization"));
        for shown in [format!("{request:?}"), serde_json::to_string(&request).unwrap(), format!("{:?}", renamed())] {
            assert!(!shown.contains(API_KEY) && !shown.contains(SECRET), "{shown}");
        }
    }

    #[test]
    fn grant_type_overrides() {
        let endpoint = renamed().grant_type_value("client_credentials", "server");
        let cc = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
        assert_eq!(cc.param_redacted("grantKind").as_deref(), Some("server"));
        assert!(!cc.has_param("grant_type") && !cc.has_param("permissions"));
        // Another grant keeps its RFC value, under the renamed parameter.
        let refresh = Grant::RefreshToken(RefreshToken::new("rt-1"));
        let rt = endpoint.build_request(&refresh, &credentials(), &Scopes::empty()).unwrap();
        assert_eq!(rt.param_redacted("grantKind").as_deref(), Some("refresh_token"));
        // `send_grant_type(false)` sends none, whatever its name or value.
        let none = endpoint.send_grant_type(false);
        let r = none.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
        assert!(!r.has_param("grantKind") && !r.has_param("grant_type"));
        assert!(none.validate(&credentials()).is_ok());
        // An override of a grant that does not exist is refused.
        let err = renamed().grant_type_value("password", "pw").validate(&credentials()).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "grant_type_value"), "{err}");
    }

    #[test]
    fn a_later_extra_param_of_the_same_name_replaces_the_first() {
        let endpoint = renamed().extra_param("api_key", "public-now").secret_param("tenant", SecretString::from("t"));
        let r = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap();
        assert_eq!(r.param_redacted("api_key").as_deref(), Some("public-now"));
        assert_eq!(r.param_redacted("tenant").as_deref(), Some(REDACTED));
        assert_eq!(
            endpoint.extra_params(),
            [("tenant".to_owned(), REDACTED.to_owned()), ("api_key".to_owned(), "public-now".to_owned())]
        );
    }

    #[test]
    fn one_name_for_two_fields_is_refused() {
        let cases: Vec<(TokenEndpoint, &str)> = vec![
            (renamed().scope_param("grantKind"), "scope_param"),
            (renamed().extra_param("permissions", "x"), "extra_params"),
            (renamed().extra_param("consumerKey", "x"), "credential_style"),
            (renamed().refresh_token_param("tenant"), "refresh_token_param"),
            (renamed().extra_param("code", "x"), "the authorization code"),
            (renamed().scope_param(" "), "scope_param"),
        ];
        for (endpoint, key) in cases {
            let err = endpoint.validate(&credentials()).unwrap_err();
            assert!(matches!(err, Error::Config { key: ref k, .. } if k == key || k == "extra_params"), "{key}: {err}");
        }
        assert!(renamed().validate(&credentials()).is_ok());
        // The RFC 6749 defaults never clash.
        let plain =
            TokenEndpoint::new("https://a.example/token".parse().unwrap()).credential_style(Arc::new(BasicAuth));
        assert!(plain.validate(&credentials()).is_ok());
        // And the client builder runs the check.
        let built = TokenClient::builder("t", renamed().scope_param("tenant"), credentials()).build();
        assert!(matches!(built, Err(Error::Config { .. })));
    }

    #[test]
    fn a_secret_param_in_the_url_query_is_refused() {
        let endpoint = TokenEndpoint::new("https://a.example/token?api_key=x".parse().unwrap())
            .secret_param("api_key", SecretString::from(API_KEY));
        let err = endpoint.build_request(&Grant::ClientCredentials, &credentials(), &Scopes::empty()).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "token_url"), "{err}");
    }

    /// Answers every request with an error that echoes what it was sent.
    #[derive(Debug)]
    struct Echo;

    #[async_trait::async_trait]
    impl Transport for Echo {
        async fn send(&self, request: &TokenRequest) -> std::result::Result<HttpResponse, TransportError> {
            let body = String::from_utf8_lossy(&request.wire_body()).into_owned();
            let answer =
                serde_json::json!({"problem": {"type": "invalid_request", "detail": format!("bad request: {body}")}});
            Ok(HttpResponse::json(400, answer.to_string()))
        }
    }

    #[tokio::test]
    async fn a_secret_param_echoed_by_the_server_is_scrubbed_from_the_error() {
        use crate::parse::ResponseField;
        let endpoint = renamed().response_format(
            ResponseFormat::default()
                .field(ResponseField::Error, "/problem/type")
                .field(ResponseField::ErrorDescription, "/problem/detail"),
        );
        let client = TokenClient::builder("renamed", endpoint, credentials())
            .transport(Arc::new(Echo))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.request_token(&Grant::ClientCredentials, &Scopes::empty()).await.unwrap_err();
        let Error::OAuth(oauth) = &err else { panic!("{err:?}") };
        assert_eq!(oauth.code, crate::error::OAuthErrorCode::InvalidRequest);
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("bad request") && shown.contains("tenant"), "{shown}");
        assert!(!shown.contains(API_KEY) && !shown.contains(SECRET), "{shown}");
    }
}
