//! [`WhitebitBuilder`] and [`WhitebitProvider`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokensmith_core::dialect::ProviderOptions;
use tokensmith_core::parse::ResponseFormat;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::style::RequestBody;
use tokensmith_core::support::parse_url;
use tokensmith_core::{
    AccessToken, CachedProvider, ClientCredentials, Error, RefreshToken, Result, Scopes, SharedTokenProvider,
    TokenClient, TokenEndpoint, TokenProvider,
    cache::RefreshTokenSource,
    cache::TokenSource,
    request::{BodyFormat, Grant, TokenRequest},
    store::FileStore,
};
use url::Url;

use tokensmith_core::flows::{AuthorizationCode, AuthorizationRequest, CodeExchange, PendingAuthorization};

/// WhiteBIT's address.
pub const DEFAULT_BASE_URL: &str = "https://whitebit.com";
/// WhiteBIT's EU address.
pub const EU_BASE_URL: &str = "https://whitebit.eu";
/// The lifetime WhiteBIT documents for access tokens of the standard flow (also assumed when a
/// response has no `expires_in`).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// The lifetime WhiteBIT documents for refresh tokens: a grant not refreshed within it is gone.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// The prefix of every environment variable [`WhitebitBuilder::from_env`] reads.
pub const ENV_PREFIX: &str = "TOKENSMITH_WHITEBIT_";

const AUTHORIZE_PATH: &str = "/auth/login";
const TOKEN_PATH: &str = "/oauth2/token";
const REFRESH_PATH: &str = "/oauth2/refresh_token";

/// The dialect: no `grant_type`, credentials in the form body, the refresh token as `token` on its
/// own path, responses in a `{"data":{...}}` envelope.
fn endpoint(token_url: Url, refresh_url: Url) -> TokenEndpoint {
    TokenEndpoint::new(token_url)
        .refresh_url(refresh_url)
        .body_format(BodyFormat::Form)
        .credential_style(Arc::new(RequestBody))
        .send_grant_type(false)
        .refresh_token_param("token")
        .scope_separator(",")
        .response_format(ResponseFormat::default().envelope("/data").fallback_lifetime(ACCESS_TOKEN_LIFETIME))
}

/// WhiteBIT answers a refresh or exchange with a token it does not accept (expired, already used,
/// revoked) with `400 {"data":{"token":["Invalid token."]}}`: the user must authorize again.
fn map_error(grant: &Grant, error: Error) -> Error {
    let rejected_token = matches!(&error, Error::Http(e) if e.status == 400 && e.code.as_deref() == Some("token"));
    match grant {
        Grant::RefreshToken(_) if rejected_token => Error::ReauthorizationRequired {
            reason: format!(
                "WhiteBIT rejected the refresh token (it expires {} s after it was issued, is valid once, and may have been revoked)",
                REFRESH_TOKEN_LIFETIME.as_secs()
            ),
        },
        Grant::AuthorizationCode { .. } if rejected_token => Error::ReauthorizationRequired {
            reason:
                "WhiteBIT rejected the authorization code (it expired, was already used, or belongs to another client)"
                    .to_owned(),
        },
        _ => error,
    }
}

/// Configures a [`WhitebitProvider`].
///
/// | setter | environment variable | default |
/// | --- | --- | --- |
/// | [`base_url`](Self::base_url) | `TOKENSMITH_WHITEBIT_BASE_URL` | [`DEFAULT_BASE_URL`] (EU: [`EU_BASE_URL`]) |
/// | [`client_id`](Self::client_id) | `TOKENSMITH_WHITEBIT_CLIENT_ID` | required |
/// | [`client_secret`](Self::client_secret) | `TOKENSMITH_WHITEBIT_CLIENT_SECRET` | required |
/// | [`redirect_uri`](Self::redirect_uri) | `TOKENSMITH_WHITEBIT_REDIRECT_URI` | none: WhiteBIT uses the registered one (the PKCE flow needs one) |
/// | [`store`](Self::store) | `TOKENSMITH_WHITEBIT_STORE` (a file path: a [`FileStore`]) | in memory: tokens are lost on exit |
/// | [`allow_insecure_http`](Self::allow_insecure_http) | `TOKENSMITH_WHITEBIT_ALLOW_INSECURE_HTTP` | false (loopback `http://` is always allowed) |
/// | [`transport`](Self::transport), [`retry`](Self::retry), [`refresh_policy`](Self::refresh_policy), [`clock`](Self::clock) | — | core's defaults (the same setters as every provider's) |
pub struct WhitebitBuilder {
    base_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    redirect_uri: Option<String>,
    options: ProviderOptions,
}

impl fmt::Debug for WhitebitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhitebitBuilder")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| tokensmith_core::support::REDACTED))
            .field("redirect_uri", &self.redirect_uri)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for WhitebitBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WhitebitBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        WhitebitBuilder {
            base_url: None,
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            options: ProviderOptions::default(),
        }
    }

    /// A builder from the process environment (`TOKENSMITH_WHITEBIT_*`, see the table above).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when a value cannot be used.
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// A builder from an injected environment: `get` returns a variable's value. Empty values count
    /// as unset.
    ///
    /// ```
    /// use tokensmith_whitebit::WhitebitBuilder;
    ///
    /// let env = |name: &str| match name {
    ///     "TOKENSMITH_WHITEBIT_CLIENT_ID" => Some("my-client".to_owned()),
    ///     "TOKENSMITH_WHITEBIT_CLIENT_SECRET" => Some("my-secret".to_owned()),
    ///     "TOKENSMITH_WHITEBIT_BASE_URL" => Some("https://whitebit.eu".to_owned()),
    ///     _ => None,
    /// };
    /// let provider = WhitebitBuilder::from_env_with(env).unwrap().build().unwrap();
    /// assert!(provider.authorize().url().as_str().starts_with("https://whitebit.eu/auth/login?clientId=my-client"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when a value cannot be used.
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |suffix: &str| get(&format!("{ENV_PREFIX}{suffix}")).filter(|v| !v.trim().is_empty());
        let mut builder = WhitebitBuilder::new();
        builder.base_url = var("BASE_URL");
        builder.client_id = var("CLIENT_ID");
        builder.client_secret = var("CLIENT_SECRET").map(SecretString::from);
        builder.redirect_uri = var("REDIRECT_URI");
        if let Some(path) = var("STORE") {
            builder.options.store = Some(Arc::new(FileStore::new(path)));
        }
        if let Some(value) = var("ALLOW_INSECURE_HTTP") {
            builder.options.allow_insecure_http =
                tokensmith_core::support::parse_bool_setting(&format!("{ENV_PREFIX}ALLOW_INSECURE_HTTP"), &value)?;
        }
        Ok(builder)
    }

    /// The configuration keys [`with_config`](WhitebitBuilder::with_config) takes.
    pub const KEYS: &'static [&'static str] =
        &["client_id", "client_secret", "base_url", "token_url", "redirect_uri", "allow_insecure_http"];

    /// Sets the setting whose configuration key is `key` (one of [`KEYS`](WhitebitBuilder::KEYS))
    /// from its text: `token_url` must end with `/oauth2/token` (the part before it is the base URL,
    /// as WhiteBIT's other endpoints hang off it too); `allow_insecure_http` is `true` or `false`.
    ///
    /// ```
    /// use tokensmith_whitebit::WhitebitBuilder;
    ///
    /// let builder = WhitebitBuilder::new().with_config("token_url", "https://whitebit.eu/oauth2/token").unwrap();
    /// let provider = builder.client_id("id").client_secret("s").build().unwrap();
    /// assert!(provider.authorize_url().as_str().starts_with("https://whitebit.eu/auth/login"));
    /// let err = WhitebitBuilder::new().with_config("token_url", "https://whitebit.eu/token").unwrap_err();
    /// assert!(err.to_string().contains("/oauth2/token"), "{err}");
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `key`: a key WhiteBIT does not take, or a value it cannot use.
    pub fn with_config(self, key: &str, value: &str) -> Result<Self> {
        Ok(match key {
            "client_id" => self.client_id(value),
            "client_secret" => self.client_secret(value),
            "base_url" => self.base_url(value.trim()),
            "redirect_uri" => self.redirect_uri(value),
            "token_url" => {
                let trimmed = value.trim().trim_end_matches('/');
                match trimmed.strip_suffix(TOKEN_PATH) {
                    Some(base) if !base.is_empty() => self.base_url(base),
                    _ => {
                        return Err(Error::config(
                            key,
                            format!(
                                "WhiteBIT's token endpoint is `{{base_url}}{TOKEN_PATH}`; give a token_url ending in \
                                 `{TOKEN_PATH}`, set base_url instead, or use provider = \"custom\" for another path"
                            ),
                        ));
                    }
                }
            }
            "allow_insecure_http" => {
                self.allow_insecure_http(tokensmith_core::support::parse_bool_setting(key, value)?)
            }
            _ => {
                return Err(Error::config(
                    key,
                    format!("the `whitebit` provider does not take this setting; it takes {}", Self::KEYS.join(", ")),
                ));
            }
        })
    }

    /// WhiteBIT's address (default [`DEFAULT_BASE_URL`]; [`EU_BASE_URL`] for the EU). The endpoints
    /// are `{base}/auth/login`, `{base}/oauth2/token` and `{base}/oauth2/refresh_token`.
    pub fn base_url(mut self, base_url: impl AsRef<str>) -> Self {
        self.base_url = Some(base_url.as_ref().to_owned());
        self
    }

    /// The OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The OAuth client secret.
    pub fn client_secret(mut self, client_secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// The redirect URI sent in the authorization URL (e.g. a [`LoopbackListener`]'s). Without one the
    /// standard flow sends none and WhiteBIT uses the URI registered for the client.
    ///
    /// [`LoopbackListener`]: crate::LoopbackListener
    pub fn redirect_uri(mut self, redirect_uri: impl AsRef<str>) -> Self {
        self.redirect_uri = Some(redirect_uri.as_ref().to_owned());
        self
    }

    // transport, retry, refresh_policy, clock, store, allow_insecure_http: the same setters as every
    // provider's. Use a `FileStore` (or a Redis store) so that a CLI or service survives restarts
    // without authorizing again.
    tokensmith_core::provider_option_setters!();

    /// Validates the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting at fault (`client_id`, `client_secret`, `base_url`,
    /// `redirect_uri`).
    pub fn build(self) -> Result<WhitebitProvider> {
        let client_id = self.client_id.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "client_id",
                format!(
                    "no client id is set; set it with client_id() or {ENV_PREFIX}CLIENT_ID to the id WhiteBIT issued"
                ),
            )
        })?;
        let client_secret = self.client_secret.ok_or_else(|| {
            Error::config(
                "client_secret",
                format!(
                    "no client secret is set; set it with client_secret() or {ENV_PREFIX}CLIENT_SECRET to the secret WhiteBIT issued"
                ),
            )
        })?;
        let base_text = self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL).trim();
        let base_url = parse_url("base_url", base_text.trim_end_matches('/'), self.options.allow_insecure_http)?;
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(Error::config(
                "base_url",
                "the base URL has a query or fragment; give only scheme, host and path, e.g. https://whitebit.com",
            ));
        }
        let base = base_url.as_str().trim_end_matches('/').to_owned();
        let at = |key: &str, path: &str| parse_url(key, &format!("{base}{path}"), self.options.allow_insecure_http);
        let authorize_url = at("base_url", AUTHORIZE_PATH)?;
        let token_url = at("base_url", TOKEN_PATH)?;
        let refresh_url = at("base_url", REFRESH_PATH)?;
        let redirect_uri = match self.redirect_uri {
            None => None,
            Some(uri) => {
                let parsed = Url::parse(uri.trim()).map_err(|e| {
                    Error::config(
                        "redirect_uri",
                        format!("not an absolute URL ({e}); give the URI registered at WhiteBIT, e.g. http://127.0.0.1:8765/callback"),
                    )
                })?;
                if parsed.fragment().is_some() {
                    return Err(Error::config(
                        "redirect_uri",
                        "a redirect URI may not have a fragment (RFC 6749 §3.1.2)",
                    ));
                }
                Some(uri.trim().to_owned())
            }
        };

        let client = TokenClient::builder(
            "whitebit",
            endpoint(token_url, refresh_url),
            ClientCredentials::new(client_id.clone(), client_secret),
        )
        .error_mapper(map_error);
        let cache = self
            .options
            .cache(client, |client| RefreshTokenSource::new(client, Scopes::empty()))?
            // The key names the token URL (so two WhiteBIT hosts never share a grant); earlier versions
            // stored under `whitebit/{client_id}/{base}`, read once so an upgrade loses no grant.
            .legacy_key(format!("whitebit/{client_id}/{base}"));
        // WhiteBIT's authorization request: `clientId`, no `response_type`, no scope (fixed when the
        // client is set up), PKCE only in the Fast API Key flow.
        let mut authorization = AuthorizationRequest::new(authorize_url, client_id)
            .client_id_param("clientId")
            .send_response_type(false)
            .pkce(false);
        if let Some(uri) = &redirect_uri {
            authorization = authorization.redirect_uri(uri);
        }
        Ok(WhitebitProvider { inner: Arc::new(Inner { authorization, redirect_uri, cache: cache.build() }) })
    }
}

/// WhiteBIT OAuth: runs the authorization code flow and hands out access tokens, refreshing them
/// with the stored refresh token. See the [crate docs](crate).
///
/// Cloning is cheap; clones share the cache.
#[derive(Clone)]
pub struct WhitebitProvider {
    inner: Arc<Inner>,
}

struct Inner {
    authorization: AuthorizationRequest,
    redirect_uri: Option<String>,
    cache: CachedProvider<RefreshTokenSource>,
}

impl fmt::Debug for WhitebitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhitebitProvider")
            .field("authorize_url", &self.inner.authorization.authorize_url().as_str())
            .field("redirect_uri", &self.inner.redirect_uri)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

impl WhitebitProvider {
    /// Starts configuring a provider.
    pub fn builder() -> WhitebitBuilder {
        WhitebitBuilder::new()
    }

    /// A provider configured from `TOKENSMITH_WHITEBIT_*` (see [`WhitebitBuilder`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable or setting at fault.
    pub fn from_env() -> Result<Self> {
        WhitebitBuilder::from_env()?.build()
    }

    /// The standard flow: an authorization URL `{base}/auth/login?clientId=..&state=..` (plus
    /// `redirect_uri` when one is configured) and what is needed to complete it. Scopes are not sent:
    /// WhiteBIT fixes them when the client is set up.
    ///
    /// The code the user's consent yields is spent by the exchange, so check first that the tokens
    /// can be saved: `provider.cache().check_store().await?` before showing the URL. If the save
    /// still fails after the exchange, [`complete`](Self::complete) returns [`Error::Store`] and the
    /// tokens stay in this provider's cache (served, saved again in the background, and readable
    /// with `provider.cache().unsaved()`).
    pub fn authorize(&self) -> PendingAuthorization {
        self.inner.authorization.start()
    }

    /// The partner "Fast API Key" flow: the standard URL plus `redirect_uri` (when configured),
    /// `code_challenge` and `code_challenge_method=S256`. Its token lasts 4 hours and comes without a
    /// refresh token, so after it expires [`token`](TokenProvider::token) says to authorize again.
    pub fn authorize_pkce(&self) -> PendingAuthorization {
        self.inner.authorization.clone().pkce(true).start()
    }

    /// Verifies `callback` (the full callback URL or its query string) against `pending`, exchanges
    /// the code, and saves the tokens in the store before returning the access token.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] when the callback is rejected (see
    /// [`PendingAuthorization::verify_callback`]); [`Error::ReauthorizationRequired`] when WhiteBIT
    /// rejects the code; any token request error; [`Error::Store`] when the tokens cannot be saved.
    pub async fn complete(&self, pending: &PendingAuthorization, callback: &str) -> Result<AccessToken> {
        let code = pending.verify_callback(callback)?;
        self.exchange(pending, &code).await
    }

    /// Exchanges a code already taken from a verified callback (as [`complete`](Self::complete) does
    /// after verifying) and saves the tokens.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete), without the callback errors.
    pub async fn exchange(&self, pending: &PendingAuthorization, code: &AuthorizationCode) -> Result<AccessToken> {
        self.code_exchange().exchange(pending, code).await
    }

    /// For a service acting for many users: verifies `callback` against `pending` and exchanges the
    /// code like [`complete`](Self::complete), but returns the token set without caching or saving
    /// it here. Give it to the user's entry of a [`TokenManager`](tokensmith_core::manager::TokenManager)
    /// built on [`user_source`](Self::user_source), whose `insert` saves it.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete), without [`Error::Store`].
    pub async fn redeem(&self, pending: &PendingAuthorization, callback: &str) -> Result<AccessToken> {
        // Core's exchange with WhiteBIT's difference (no `redirect_uri` with the code), saving nothing.
        CodeExchange::new(self.client()).send_redirect_uri(false).complete(pending, callback).await
    }

    /// This client's refresh grant as a source for a keyed
    /// [`TokenManager`](tokensmith_core::manager::TokenManager) of many users: it refreshes any
    /// user's set (rotating refresh tokens, so the manager never refreshes a user without the
    /// fleet lock of a coordinating store), with this provider's client and WhiteBIT's rules.
    pub fn user_source(&self) -> UserRefresh {
        UserRefresh(self.clone())
    }

    /// The code exchange request this provider would send (no I/O), for inspection and snapshots.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the request cannot be built.
    pub fn exchange_request(&self, pending: &PendingAuthorization, code: &str) -> Result<TokenRequest> {
        self.code_exchange().request(pending, &AuthorizationCode::new(code))
    }

    /// Core's exchange with WhiteBIT's difference: no `redirect_uri` with the code. It saves the
    /// tokens in this provider's cache and store.
    fn code_exchange(&self) -> CodeExchange<'_> {
        CodeExchange::saving_to(&self.inner.cache).send_redirect_uri(false)
    }

    /// The refresh request this provider would send (no I/O), for inspection and snapshots.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the request cannot be built.
    pub fn refresh_request(&self, refresh_token: &RefreshToken) -> Result<TokenRequest> {
        self.client().build_request(&Grant::RefreshToken(refresh_token.clone()), &Scopes::empty())
    }

    /// A valid token: the cached one while it is fresh, read without a lock, an allocation or a
    /// boxed future (this inherent method is what `provider.token()` calls, also with the
    /// [`TokenProvider`] trait in scope); otherwise fetched, one request however many callers wait.
    pub fn token(&self) -> impl std::future::Future<Output = Result<AccessToken>> + Send + '_ {
        self.inner.cache.token()
    }

    /// This provider as a cloneable [`SharedTokenProvider`].
    pub fn shared(self) -> SharedTokenProvider {
        SharedTokenProvider::new(self)
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.client().credentials().client_id()
    }

    /// The authorization endpoint, `{base}/auth/login`.
    pub fn authorize_url(&self) -> &Url {
        self.inner.authorization.authorize_url()
    }

    /// The configured redirect URI, if any.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.inner.redirect_uri.as_deref()
    }

    /// The cache, e.g. to [`clear`](CachedProvider::clear) it.
    pub fn cache(&self) -> &CachedProvider<RefreshTokenSource> {
        &self.inner.cache
    }

    fn client(&self) -> &TokenClient {
        self.inner.cache.source().client()
    }
}

/// WhiteBIT's refresh grant for many users: [`WhitebitProvider::user_source`].
#[derive(Clone)]
pub struct UserRefresh(WhitebitProvider);

impl fmt::Debug for UserRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UserRefresh").field(self.0.cache().source()).finish()
    }
}

#[async_trait]
impl TokenSource for UserRefresh {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        self.0.cache().source().fetch(current).await
    }

    /// The single-user provider's key; a manager stores each user under it plus `/` and the user.
    fn cache_key(&self) -> String {
        self.0.cache().source().cache_key()
    }

    fn rotates_grant(&self) -> bool {
        true
    }
}

#[async_trait]
impl TokenProvider for WhitebitProvider {
    /// The cached access token, refreshed with the stored refresh token when due (one refresh at a
    /// time, the rotated refresh token saved before the new access token is handed out).
    ///
    /// With nothing stored, or when WhiteBIT rejects the refresh token (it lives 600 s and is valid
    /// once), fails with [`Error::ReauthorizationRequired`].
    async fn token(&self) -> Result<AccessToken> {
        self.inner.cache.token().await
    }

    fn cached_token(&self) -> Option<AccessToken> {
        self.inner.cache.cached_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        self.inner.cache.invalidate(token);
    }

    fn unsaved(&self) -> Option<(String, AccessToken)> {
        TokenProvider::unsaved(&self.inner.cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokensmith_core::error::HttpError;

    fn builder() -> WhitebitBuilder {
        WhitebitProvider::builder().client_id("cid").client_secret("secret")
    }

    fn config_key(result: Result<WhitebitProvider>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn required_settings_are_named() {
        assert_eq!(config_key(WhitebitProvider::builder().client_secret("s").build()), "client_id");
        assert_eq!(config_key(WhitebitProvider::builder().client_id(" ").client_secret("s").build()), "client_id");
        assert_eq!(config_key(WhitebitProvider::builder().client_id("c").build()), "client_secret");
        assert_eq!(config_key(WhitebitProvider::builder().client_id("c").client_secret("").build()), "client_secret");
        assert_eq!(config_key(builder().base_url("http://whitebit.example").build()), "base_url");
        assert_eq!(config_key(builder().base_url("not a url").build()), "base_url");
        assert_eq!(config_key(builder().base_url("https://whitebit.com/?x=1").build()), "base_url");
        assert_eq!(config_key(builder().redirect_uri("/callback").build()), "redirect_uri");
        assert_eq!(config_key(builder().redirect_uri("http://127.0.0.1/cb#x").build()), "redirect_uri");
        assert!(builder().base_url("http://whitebit.example").allow_insecure_http(true).build().is_ok());
    }

    #[test]
    fn endpoints_follow_the_base_url() {
        let p = builder().base_url("https://whitebit.eu/").build().unwrap();
        assert_eq!(p.authorize_url().as_str(), "https://whitebit.eu/auth/login");
        assert_eq!(p.client().endpoint().token_url().as_str(), "https://whitebit.eu/oauth2/token");
        assert_eq!(p.client().endpoint().refresh_target().as_str(), "https://whitebit.eu/oauth2/refresh_token");
        let sandbox = builder().base_url("http://127.0.0.1:9/whitebit").build().unwrap();
        assert_eq!(sandbox.authorize_url().as_str(), "http://127.0.0.1:9/whitebit/auth/login");
        let default = builder().build().unwrap();
        assert_eq!(default.authorize_url().as_str(), "https://whitebit.com/auth/login");
    }

    #[test]
    fn env_is_read_with_the_prefix() {
        let env = |name: &str| {
            match name {
                "TOKENSMITH_WHITEBIT_CLIENT_ID" => Some("env-client"),
                "TOKENSMITH_WHITEBIT_CLIENT_SECRET" => Some("env-secret"),
                "TOKENSMITH_WHITEBIT_REDIRECT_URI" => Some("http://127.0.0.1:8765/callback"),
                "TOKENSMITH_WHITEBIT_STORE" => Some("/tmp/tokensmith-whitebit-test.json"),
                "TOKENSMITH_WHITEBIT_ALLOW_INSECURE_HTTP" => Some("yes"),
                "TOKENSMITH_WHITEBIT_BASE_URL" => Some(""),
                _ => None,
            }
            .map(str::to_owned)
        };
        let builder = WhitebitBuilder::from_env_with(env).unwrap();
        let debug = format!("{builder:?}");
        assert!(!debug.contains("env-secret"), "{debug}");
        assert!(debug.contains("tokensmith-whitebit-test.json"), "{debug}");
        let p = builder.build().unwrap();
        assert_eq!(p.client_id(), "env-client");
        assert_eq!(p.redirect_uri(), Some("http://127.0.0.1:8765/callback"));
        assert_eq!(p.authorize_url().as_str(), "https://whitebit.com/auth/login");

        let bad = |name: &str| (name == "TOKENSMITH_WHITEBIT_ALLOW_INSECURE_HTTP").then(|| "maybe".to_owned());
        match WhitebitBuilder::from_env_with(bad) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "TOKENSMITH_WHITEBIT_ALLOW_INSECURE_HTTP"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejected_tokens_mean_authorize_again() {
        let invalid_token = || {
            Error::Http(
                HttpError::new(400, r#"{"data":{"token":["Invalid token."]}}"#)
                    .with_code(Some("token".into()), Some("Invalid token.".into())),
            )
        };
        let refresh = Grant::RefreshToken(RefreshToken::new("r"));
        let e = map_error(&refresh, invalid_token());
        assert!(matches!(e, Error::ReauthorizationRequired { .. }), "{e:?}");
        assert!(e.to_string().contains("run the authorization flow again"), "{e}");
        let exchange = Grant::AuthorizationCode { code: "c".into(), redirect_uri: None, code_verifier: None };
        assert!(matches!(map_error(&exchange, invalid_token()), Error::ReauthorizationRequired { .. }));
        // Other errors pass through: a bad client is not fixed by authorizing again.
        let unauthorized = Error::Http(HttpError::new(401, r#"{"data":{"message":["Invalid request"]}}"#));
        assert!(matches!(map_error(&refresh, unauthorized), Error::Http(_)));
        let verifier = Error::Http(HttpError::new(400, "").with_code(Some("code_verifier".into()), None));
        assert!(matches!(map_error(&exchange, verifier), Error::Http(_)));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let b = builder().client_secret("very-secret-value");
        assert!(!format!("{b:?}").contains("very-secret-value"));
        let p = b.build().unwrap();
        assert!(!format!("{p:?}").contains("very-secret-value"));
    }
}
