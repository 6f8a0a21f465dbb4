//! `provider = "custom"`: a new dialect described in configuration, with no code.
//!
//! The keys map one to one onto core's [`TokenEndpoint`] and [`ResponseFormat`]:
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `token_url` | the token endpoint (required) | |
//! | `credential_style` | `basic` (RFC 6749 §2.3.1), `basic-raw`, `body`, `none`; with the `jwt` feature `private-key-jwt`, `client-secret-jwt` (RFC 7523) | `basic` |
//! | `private_key_file`, `key_id` | the `private-key-jwt` style's PEM key and the `kid` of its assertions | |
//! | `body_format` | `form` or `json` | `form` |
//! | `scope`, `scope_separator` | requested scopes and how they are joined | none, a space |
//! | `extra_params` | parameters added to every request; `{ env = .. }` / `{ file = .. }` values are secrets | none |
//! | `client_id_param`, `client_secret_param` | the body style's field names | `client_id`, `client_secret` |
//! | `grant_type_param`, `grant_type_value` | the grant type's name and value | `grant_type`, the grant's RFC 6749 value |
//! | `scope_param` | the requested scopes' name | `scope` |
//! | `envelope` | JSON pointer to the token fields, e.g. `/data` | none |
//! | `[response]` | a JSON pointer per response field: `access_token`, `expires_in` or `expires_at`, `token_type`, `refresh_token`, `scope`, `error`, `error_description` | RFC 6749 names (under `envelope`) |
//! | `fallback_lifetime` | seconds assumed when `expires_in` is missing | 3600 |
//! | `grant` | `client_credentials`, `refresh_token` to keep a refresh token going, or `authorization_code` / `device_code` to serve what `tokensmith authorize` saved (these three need a file or Redis `store`) | `client_credentials` |
//! | `refresh_token`, `refresh_url`, `refresh_token_param`, `send_grant_type` | the refresh grant's shape | |
//! | `name` | the provider's name in logs and store keys | `custom` |

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use tokensmith_core::parse::{ResponseField, ResponseFormat};
use tokensmith_core::support::parse_url;
use tokensmith_core::{
    AccessToken, CachedProvider, ClientCredentials, Error, RefreshToken, Result, Scopes, SharedTokenProvider,
    TokenClient, TokenEndpoint, cache::ClientCredentialsSource, cache::RefreshTokenSource, cache::TokenSource,
    request::BodyFormat, style, style::CredentialStyle,
};

use crate::config::{Config, ExtraParam, check_response_key};
use crate::store_build::{build_store, require_lasting_store};

/// Builds the declarative provider described by `config` (see the [module docs](self)).
pub fn build(config: &Config) -> Result<SharedTokenProvider> {
    let (client, scopes) = client(config)?;
    let grant = config.grant.as_deref().unwrap_or("client_credentials");
    match grant {
        "client_credentials" => {
            config.reject_keys("custom", &["refresh_token"])?;
            let store = build_store(config)?;
            let source = ClientCredentialsSource::new(client, scopes);
            Ok(SharedTokenProvider::new(CachedProvider::builder(source).store(store).build()))
        }
        "refresh_token" => {
            // The server may rotate the refresh token on every use: a store that forgets the new one
            // at exit makes the next run replay a spent token (`invalid_grant`, or the whole grant
            // revoked by reuse detection).
            require_lasting_store(
                config,
                "`grant = \"refresh_token\"` must keep the refresh token the server rotates, or the next run replays a spent one",
            )?;
            let seed = match &config.refresh_token {
                Some(secret) => Some(RefreshToken::new(secret.resolve("refresh_token")?.expose_secret())),
                None => None,
            };
            let store = build_store(config)?;
            let source = SeededRefreshSource { inner: RefreshTokenSource::new(client, scopes), seed };
            Ok(SharedTokenProvider::new(CachedProvider::builder(source).store(store).build()))
        }
        "authorization_code" | "device_code" => {
            // What `tokensmith authorize` saved: served, and refreshed with rotation, from the store.
            #[cfg(feature = "interactive")]
            return crate::interactive::build_authorized(config);
            #[cfg(not(feature = "interactive"))]
            return Err(crate::registry::feature_needed(
                "grant",
                "interactive",
                "serving what `tokensmith authorize` saved",
            ));
        }
        other => Err(Error::config(
            "grant",
            format!(
                "unknown grant `{other}`; the custom provider supports client_credentials, refresh_token, authorization_code and device_code"
            ),
        )),
    }
}

/// The [`TokenClient`] and scopes described by `config`, without a cache: use it to look at the exact
/// request a declarative provider sends ([`TokenClient::build_request`]).
pub fn client(config: &Config) -> Result<(TokenClient, Scopes)> {
    config.reject_keys("custom", &["base_url", "token_path", "redirect_uri"])?;
    let insecure = config.insecure_http();
    let token_url = config.token_url.as_deref().ok_or_else(|| {
        Error::config("token_url", "the custom provider needs the token endpoint's URL; set `token_url`")
    })?;
    let token_url = parse_url("token_url", token_url, insecure)?;
    let style_name = config.credential_style.as_deref().unwrap_or("basic");
    let mut style = credential_style(config, style_name)?;
    if config.client_id_param.is_some() || config.client_secret_param.is_some() {
        if style_name != "body" {
            let key = if config.client_id_param.is_some() { "client_id_param" } else { "client_secret_param" };
            return Err(Error::config(
                key,
                format!(
                    "only `credential_style = \"body\"` sends the credentials as named body fields, not `{style_name}`; set it, or remove this key"
                ),
            ));
        }
        style = Arc::new(style::BodyCredentials::named(
            config.client_id_param.clone().unwrap_or_else(|| "client_id".to_owned()),
            config.client_secret_param.clone().unwrap_or_else(|| "client_secret".to_owned()),
        ));
    }
    let body_format = match config.body_format.as_deref().unwrap_or("form") {
        "form" => BodyFormat::Form,
        "json" => BodyFormat::Json,
        other => return Err(Error::config("body_format", format!("unknown body format `{other}`; use form or json"))),
    };
    let mut response = ResponseFormat::default();
    if let Some(envelope) = &config.envelope {
        response = response.envelope(envelope.clone());
    }
    if let Some(lifetime) = config.fallback_lifetime()? {
        response = response.fallback_lifetime(lifetime);
    }
    for (key, pointer) in config.response.iter().flatten() {
        check_response_key(key)?;
        let field = ResponseField::from_name(key).ok_or_else(|| Error::config("response", "unknown field"))?;
        if pointer.is_empty() {
            return Err(Error::config(
                format!("response.{key}"),
                "the pointer is empty; remove the key or give one, e.g. \"/issued/bearer\"",
            ));
        }
        response = response.field(field, pointer.clone());
    }
    response.validate("envelope")?;
    let mut endpoint = TokenEndpoint::new(token_url)
        .credential_style(style)
        .body_format(body_format)
        .response_format(response)
        .send_grant_type(config.send_grant_type.unwrap_or(true));
    if let Some(separator) = &config.scope_separator {
        if separator.is_empty() {
            return Err(Error::config("scope_separator", "the scope separator is empty; use \" \" or \",\""));
        }
        endpoint = endpoint.scope_separator(separator.clone());
    }
    if let Some(url) = &config.refresh_url {
        endpoint = endpoint.refresh_url(parse_url("refresh_url", url, insecure)?);
    }
    if let Some(param) = &config.refresh_token_param {
        if param.trim().is_empty() {
            return Err(Error::config("refresh_token_param", "the parameter name is empty"));
        }
        endpoint = endpoint.refresh_token_param(param.clone());
    }
    if let Some(param) = &config.grant_type_param {
        endpoint = endpoint.grant_type_param(param.clone());
    }
    if let Some(param) = &config.scope_param {
        endpoint = endpoint.scope_param(param.clone());
    }
    if let Some(value) = &config.grant_type_value {
        let grant = config.grant.clone().unwrap_or_else(|| "client_credentials".to_owned());
        endpoint = endpoint.grant_type_value(grant, value.clone());
    }
    for (name, value) in config.extra_params.iter().flatten() {
        if name.trim().is_empty() {
            return Err(Error::config("extra_params", "a parameter name is empty"));
        }
        if matches!(name.as_str(), "client_secret" | "client_id" | "refresh_token" | "code" | "code_verifier") {
            return Err(Error::config(
                "extra_params",
                format!("`{name}` cannot be an extra parameter; it is set by the credential style or the grant"),
            ));
        }
        endpoint = match value {
            ExtraParam::Plain(value) => endpoint.extra_param(name.clone(), value.clone()),
            ExtraParam::Secret(secret) => {
                endpoint.secret_param(name.clone(), secret.resolve(&format!("extra_params.{name}"))?)
            }
        };
    }
    let client_id = config.require_client_id()?;
    // A private-key client signs with its key: it has no secret to send.
    let public = matches!(style_name, "none" | "private-key-jwt");
    let credentials = if public {
        ClientCredentials::public(client_id)
    } else {
        ClientCredentials::new(client_id, config.require_client_secret()?)
    };
    let name = config.name.clone().unwrap_or_else(|| "custom".to_owned());
    let client = TokenClient::builder(name, endpoint, credentials)
        .allow_insecure_http(insecure)
        .retry(config.retry_policy()?)
        .secret_required(!public)
        .build()?;
    let scopes = config.scope.as_deref().map(Scopes::parse).unwrap_or_else(Scopes::empty);
    Ok((client, scopes))
}

/// The credential style named `style_name`; `private-key-jwt` from `private_key_file` and `key_id`,
/// which no other style takes.
fn credential_style(config: &Config, style_name: &str) -> Result<Arc<dyn CredentialStyle>> {
    if style_name != "private-key-jwt" {
        for (key, set) in [("private_key_file", config.private_key_file.is_some()), ("key_id", config.key_id.is_some())]
        {
            if set {
                return Err(Error::config(
                    key,
                    format!(
                        "only `credential_style = \"private-key-jwt\"` signs with a private key, not `{style_name}`; set it, or remove this key"
                    ),
                ));
            }
        }
    }
    if style_name == "private-key-jwt" {
        return private_key_jwt(config);
    }
    style::by_name(style_name).ok_or_else(|| {
        let message = if matches!(style_name, "client-secret-jwt") {
            JWT_FEATURE.to_owned()
        } else {
            format!(
                "unknown credential style `{style_name}`; use basic, basic-raw, body, none, private-key-jwt or client-secret-jwt"
            )
        };
        Error::config("credential_style", message)
    })
}

/// Why a JWT style cannot be built without the feature.
const JWT_FEATURE: &str =
    "the JWT credential styles need tokensmith's `jwt` feature (tokensmith = { features = [\"jwt\"] })";

/// The `private-key-jwt` style: the key read from `private_key_file` and checked now, so that a bad
/// key fails at start-up naming the key, not at the first token.
#[cfg(feature = "jwt")]
fn private_key_jwt(config: &Config) -> Result<Arc<dyn CredentialStyle>> {
    let path = config.private_key_file.as_deref().ok_or_else(|| {
        Error::config(
            "private_key_file",
            "`credential_style = \"private-key-jwt\"` signs with the client's private key; set `private_key_file` to its PEM file",
        )
    })?;
    let mut builder = style::PrivateKeyJwt::builder_from_file(path)?;
    if let Some(kid) = &config.key_id {
        builder = builder.key_id(kid.clone());
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "jwt"))]
fn private_key_jwt(_config: &Config) -> Result<Arc<dyn CredentialStyle>> {
    Err(Error::config("credential_style", JWT_FEATURE))
}

/// A refresh-token source that starts from a configured refresh token when the store holds none.
#[derive(Debug)]
struct SeededRefreshSource {
    inner: RefreshTokenSource,
    seed: Option<RefreshToken>,
}

#[async_trait]
impl TokenSource for SeededRefreshSource {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        if current.and_then(AccessToken::refresh_token).is_some() {
            return self.inner.fetch(current).await;
        }
        match &self.seed {
            Some(seed) => {
                // An already expired placeholder that only carries the configured refresh token.
                let placeholder = AccessToken::builder("unused")
                    .expires_at(std::time::UNIX_EPOCH)
                    .refresh_token(Some(seed.clone()))
                    .build();
                self.inner.fetch(Some(&placeholder)).await
            }
            None => self.inner.fetch(current).await,
        }
    }

    fn cache_key(&self) -> String {
        self.inner.cache_key()
    }

    fn legacy_cache_key(&self) -> Option<String> {
        self.inner.legacy_cache_key()
    }

    fn rotates_grant(&self) -> bool {
        self.inner.rotates_grant()
    }
}
