//! [`Config`]: which provider to use and how, read from a TOML file and/or environment variables.
//!
//! Every key is documented in `docs/configuration.md`. The short version:
//!
//! ```toml
//! provider = "generic-django"          # probit | generic-django | ruby-style | whitebit | custom | a registered name
//! client_id = "my-client"
//! client_secret = { env = "DJANGO_SECRET" }   # or "inline", or { file = "/run/secrets/django" }
//! base_url = "https://auth.example.com"
//! scope = "read write"
//!
//! [store]
//! kind = "file"                        # memory (default) | file | redis
//! path = "/var/lib/myapp/tokens.json"
//! encryption_key = { env = "MYAPP_TOKEN_KEY" }   # optional: encrypt the file's token sets
//! # or, shared by a fleet of processes (cargo feature `redis`):
//! # store = { kind = "redis", url = "redis://127.0.0.1:6379/0", prefix = "myapp" }
//! ```
//!
//! Environment variables (`TOKENSMITH_PROVIDER`, `TOKENSMITH_CLIENT_ID`, ...; see [`ENV_VARS`]) override
//! the file. Every error names the key at fault; a secret given inline is never shown by `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokensmith_core::http::redact_url_password;
use tokensmith_core::options::{
    check_env_var_name, is_env_var_name, parse_bool_setting, parse_seconds_setting, seconds_setting,
};
use tokensmith_core::{Error, Result, RetryPolicy};

/// A client secret (or refresh token): given by value, by the name of an environment variable that
/// holds it, or by the path of a file that holds it.
///
/// In TOML: `client_secret = "value"`, `client_secret = { env = "VAR" }` or
/// `client_secret = { file = "/path" }`. `Debug` never shows a value, nor an `Env` "name" that is not
/// a variable name (most likely the secret itself, given there by mistake).
#[derive(Clone)]
#[non_exhaustive]
pub enum Secret {
    /// The secret itself.
    Value(SecretString),
    /// The name of an environment variable holding the secret.
    Env(String),
    /// A file holding the secret (surrounding whitespace, such as a trailing newline, is trimmed).
    File(PathBuf),
}

impl Secret {
    /// A secret given by value.
    pub fn value(secret: impl Into<String>) -> Self {
        Secret::Value(SecretString::from(secret.into()))
    }

    /// Reads the secret, looking environment variables up in the process environment. `key` names the
    /// configuration key in errors.
    pub fn resolve(&self, key: &str) -> Result<SecretString> {
        self.resolve_with(key, &|name| std::env::var(name).ok())
    }

    /// Reads the secret, looking environment variables up with `env`.
    ///
    /// An `Env` name that is not a variable name (`[A-Za-z_][A-Za-z0-9_]*`) is refused without being
    /// shown: it is most likely the secret itself.
    pub fn resolve_with(&self, key: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretString> {
        let secret = match self {
            Secret::Value(secret) => secret.clone(),
            Secret::Env(name) => match check_env_var_name(key, name).map(|()| env(name))? {
                Some(value) => SecretString::from(value),
                None => {
                    return Err(Error::config(
                        key,
                        format!("the environment variable `{name}` that should hold it is not set; export it"),
                    ));
                }
            },
            Secret::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => SecretString::from(text.trim().to_owned()),
                Err(e) => {
                    return Err(Error::config(
                        key,
                        format!(
                            "cannot read the secret file `{}` ({e}); check the path and its permissions",
                            path.display()
                        ),
                    ));
                }
            },
        };
        if secret.expose_secret().is_empty() {
            return Err(Error::config(key, format!("the secret ({}) is empty", self.describe())));
        }
        Ok(secret)
    }

    /// Where the secret comes from, without the secret: `inline`, `env VAR` or `file PATH` (`env`
    /// alone when the name is not a variable name).
    pub fn describe(&self) -> String {
        match self {
            Secret::Value(_) => "inline".to_owned(),
            Secret::Env(name) if is_env_var_name(name) => format!("env {name}"),
            Secret::Env(_) => "env (not a variable name, not shown)".to_owned(),
            Secret::File(path) => format!("file {}", path.display()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Value(** redacted **)"),
            Secret::Env(name) if is_env_var_name(name) => f.debug_tuple("Env").field(name).finish(),
            Secret::Env(_) => f.write_str("Env(** not a variable name, not shown **)"),
            Secret::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            value: Option<String>,
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(String),
            Table(Table),
        }
        let raw = Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "expected a string (the secret itself) or a table with one of `value`, `env` or `file`",
            )
        })?;
        match raw {
            Raw::Plain(value) => Ok(Secret::value(value)),
            Raw::Table(Table { value: Some(value), env: None, file: None }) => Ok(Secret::value(value)),
            Raw::Table(Table { value: None, env: Some(env), file: None }) => {
                check_env_var_name("env", &env).map_err(|e| match e {
                    Error::Config { message, .. } => serde::de::Error::custom(format!("`env`: {message}")),
                    other => serde::de::Error::custom(other),
                })?;
                Ok(Secret::Env(env))
            }
            Raw::Table(Table { value: None, env: None, file: Some(file) }) => Ok(Secret::File(file)),
            Raw::Table(_) => Err(serde::de::Error::custom("give exactly one of `value`, `env` or `file`")),
        }
    }
}

/// The value of an extra parameter (`[extra_params]`): shown as it is, or a [`Secret`] that is sent
/// on the wire but redacted everywhere else, like the client secret.
///
/// In TOML: `tenant = "eu-1"` is plain; `api_key = { env = "MY_API_KEY" }`, `{ file = "/path" }` or
/// `{ value = "..." }` is a secret.
///
/// ```
/// use tokensmith::config::{Config, ExtraParam};
///
/// let config =
///     Config::from_toml_str("[extra_params]\ntenant = \"eu-1\"\napi_key = { env = \"MY_API_KEY\" }").unwrap();
/// let params = config.extra_params.as_ref().unwrap();
/// assert_eq!(params["tenant"], "eu-1");
/// assert!(matches!(params["api_key"], ExtraParam::Secret(_)));
/// ```
#[derive(Clone, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ExtraParam {
    /// A value that may be shown.
    Plain(String),
    /// A secret: by value, by environment variable or by file.
    Secret(Secret),
}

impl ExtraParam {
    /// The value, when it is not a secret.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            ExtraParam::Plain(value) => Some(value),
            ExtraParam::Secret(_) => None,
        }
    }
}

impl fmt::Debug for ExtraParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtraParam::Plain(value) => fmt::Debug::fmt(value, f),
            ExtraParam::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
        }
    }
}

impl From<String> for ExtraParam {
    fn from(value: String) -> Self {
        ExtraParam::Plain(value)
    }
}

impl From<&str> for ExtraParam {
    fn from(value: &str) -> Self {
        ExtraParam::Plain(value.to_owned())
    }
}

impl PartialEq<str> for ExtraParam {
    /// A plain value equal to `other`; a secret equals nothing.
    fn eq(&self, other: &str) -> bool {
        matches!(self, ExtraParam::Plain(value) if value == other)
    }
}

impl PartialEq<&str> for ExtraParam {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

/// Where token sets are kept between fetches (and, for `file`, between runs).
///
/// In TOML: `[store]` with `kind = "memory"` (the default), `kind = "file"` and `path = "..."`, or
/// `kind = "redis"`, `url = "redis://..."` and optionally `prefix = "..."`. `Debug` hides a password in
/// the Redis URL.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum StoreConfig {
    /// In process memory (the default): tokens live as long as the provider.
    #[default]
    Memory,
    /// A JSON file (created with owner-only permissions); needed by WhiteBIT to keep refresh tokens.
    File {
        /// The file's path.
        path: PathBuf,
    },
    /// Redis, shared by a fleet of processes that coordinate their refreshes (`docs/fleet.md`);
    /// needs the cargo feature `redis`.
    Redis {
        /// `redis://[user:password@]host[:port][/db]`.
        url: String,
        /// The prefix of every key (default `tokensmith`).
        #[serde(default)]
        prefix: Option<String>,
    },
}

impl StoreConfig {
    /// The store a one-line description names: `memory`, a `redis://`, `rediss://` or
    /// `redis+unix://` URL, or else the path of a file. What `TOKENSMITH_STORE` and the CLI's
    /// `--store`, `--store-env` and `--store-file` take.
    ///
    /// ```
    /// use tokensmith::config::StoreConfig;
    ///
    /// assert_eq!(StoreConfig::parse("memory"), StoreConfig::Memory);
    /// assert!(matches!(StoreConfig::parse("redis+unix:///run/redis.sock"), StoreConfig::Redis { .. }));
    /// assert!(matches!(StoreConfig::parse("/var/lib/app/tokens.json"), StoreConfig::File { .. }));
    /// ```
    pub fn parse(spec: &str) -> StoreConfig {
        if spec == "memory" {
            StoreConfig::Memory
        } else if Self::is_redis_url(spec) {
            StoreConfig::Redis { url: spec.to_owned(), prefix: None }
        } else {
            StoreConfig::File { path: spec.into() }
        }
    }

    /// Whether `spec` starts like a Redis URL (`redis://`, `rediss://` or `redis+unix://`).
    pub fn is_redis_url(spec: &str) -> bool {
        ["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| spec.starts_with(scheme))
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("Memory"),
            StoreConfig::File { path } => f.debug_struct("File").field("path", path).finish(),
            StoreConfig::Redis { url, prefix } => {
                f.debug_struct("Redis").field("url", &redact_url_password(url)).field("prefix", prefix).finish()
            }
        }
    }
}

/// Where the tokens go, for messages: `memory`, the file's path, or the Redis URL with its password
/// redacted.
///
/// ```
/// use tokensmith::config::StoreConfig;
///
/// let redis = StoreConfig::Redis { url: "redis://:hunter2@10.0.0.5:6379/0".into(), prefix: None };
/// assert_eq!(redis.to_string(), "Redis at redis://:redacted@10.0.0.5:6379/0");
/// ```
impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("memory"),
            StoreConfig::File { path } => write!(f, "{}", path.display()),
            StoreConfig::Redis { url, prefix: None } => write!(f, "Redis at {}", redact_url_password(url)),
            StoreConfig::Redis { url, prefix: Some(prefix) } => {
                write!(f, "Redis at {} (prefix `{prefix}`)", redact_url_password(url))
            }
        }
    }
}

/// Which provider to build and how. Every field is optional here; the provider checks what it needs.
///
/// Read it with [`Config::from_file`], [`Config::from_toml_str`], [`Config::from_env`] or
/// [`Config::load`] (file, then environment on top), or build it in code:
///
/// ```
/// use tokensmith::config::{Config, Secret};
///
/// let mut config = Config::default();
/// config.provider = Some("ruby-style".into());
/// config.client_id = Some("my-client".into());
/// config.client_secret = Some(Secret::Env("RUBY_SECRET".into()));
/// assert!(format!("{config:?}").contains("RUBY_SECRET"));
/// ```
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The provider: `probit`, `generic-django`, `ruby-style`, `whitebit`, `custom`, or a name
    /// registered in a [`Registry`](crate::Registry).
    pub provider: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
    /// The client secret.
    pub client_secret: Option<Secret>,
    /// The provider's base URL (probit: the token URL is `{base_url}/token`).
    pub base_url: Option<String>,
    /// The token endpoint's full URL; overrides the provider's default endpoint.
    pub token_url: Option<String>,
    /// The token path under `base_url` (generic-django; default `/o/token/`).
    pub token_path: Option<String>,
    /// Requested scopes, separated by spaces or commas.
    pub scope: Option<String>,
    /// How client credentials are sent: `basic`, `basic-raw`, `body` or `none` (custom; generic-django
    /// takes `basic` or `body`).
    pub credential_style: Option<String>,
    /// The request body format: `form` or `json` (custom).
    pub body_format: Option<String>,
    /// A JSON pointer to the token fields in the response, e.g. `/data` (custom).
    pub envelope: Option<String>,
    /// How requested scopes are joined on the wire (custom; default a space).
    pub scope_separator: Option<String>,
    /// The lifetime in seconds assumed when a response has no `expires_in` (custom; default 3600).
    pub fallback_lifetime: Option<u64>,
    /// Parameters added to every token request (custom), e.g. `{ audience = "api" }`; a value given
    /// as `{ env = .. }`, `{ file = .. }` or `{ value = .. }` is a secret, redacted everywhere but on
    /// the wire.
    pub extra_params: Option<BTreeMap<String, ExtraParam>>,
    /// The body field the client id is sent as, with `credential_style = "body"` (custom; default
    /// `client_id`).
    pub client_id_param: Option<String>,
    /// The body field the client secret is sent as, with `credential_style = "body"` (custom; default
    /// `client_secret`).
    pub client_secret_param: Option<String>,
    /// The name the grant type is sent as (custom; default `grant_type`).
    pub grant_type_param: Option<String>,
    /// The value sent as the grant type for the configured `grant` (custom; default its RFC 6749
    /// value, e.g. `client_credentials`).
    pub grant_type_value: Option<String>,
    /// The name requested scopes are sent as (custom; default `scope`).
    pub scope_param: Option<String>,
    /// JSON pointers to the fields of the token response (custom): `[response]` with `access_token`,
    /// `expires_in` or `expires_at`, `token_type`, `refresh_token`, `scope`, `error`,
    /// `error_description` (see [`ResponseField`](tokensmith_core::parse::ResponseField)). Fields
    /// not named keep their RFC 6749 name (under `envelope`, if set).
    pub response: Option<BTreeMap<String, String>>,
    /// The grant: `client_credentials` (default) or `refresh_token` (custom).
    pub grant: Option<String>,
    /// The refresh token to start from when `grant = "refresh_token"` (custom).
    pub refresh_token: Option<Secret>,
    /// A separate URL for refresh requests (custom).
    pub refresh_url: Option<String>,
    /// The name of the refresh token parameter (custom; default `refresh_token`).
    pub refresh_token_param: Option<String>,
    /// Whether `grant_type` is sent (custom; default true).
    pub send_grant_type: Option<bool>,
    /// A name for the provider in logs and store keys (custom; default `custom`).
    pub name: Option<String>,
    /// The redirect URI registered for the client (whitebit).
    pub redirect_uri: Option<String>,
    /// Where tokens are kept.
    pub store: Option<StoreConfig>,
    /// The key that encrypts the stored token sets (AES-256-GCM; only the `file` store so far): in
    /// TOML `encryption_key` in `[store]`, by value, `{ env = "VAR" }` or `{ file = "/path" }`; in the
    /// environment `TOKENSMITH_STORE_ENCRYPTION_KEY` (the key), `_ENV` or `_FILE`. The key is 32 random
    /// bytes in base64 (a file may also hold the 32 raw bytes); needs the cargo feature `encryption`
    /// (on by default).
    ///
    /// It sits here rather than in [`StoreConfig`] so that a store given later (an environment
    /// variable, a command-line flag) keeps it. [`Config::from_toml_str`] reads it from `[store]`; a
    /// `Config` deserialized by other means does not.
    #[serde(skip)]
    pub store_encryption_key: Option<Secret>,
    /// The seconds one token request attempt may take (default 10; at least 1). A fetch makes up to
    /// three attempts within an overall deadline of 30 s, or of this timeout when it is longer.
    pub timeout: Option<u64>,
    /// Allow plain `http://` to hosts that are not loopback (default false).
    pub allow_insecure_http: Option<bool>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret`'s own `Debug` redacts values.
        f.debug_struct("Config")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("token_path", &self.token_path)
            .field("scope", &self.scope)
            .field("credential_style", &self.credential_style)
            .field("body_format", &self.body_format)
            .field("envelope", &self.envelope)
            .field("scope_separator", &self.scope_separator)
            .field("fallback_lifetime", &self.fallback_lifetime)
            .field("extra_params", &self.extra_params)
            .field("client_id_param", &self.client_id_param)
            .field("client_secret_param", &self.client_secret_param)
            .field("grant_type_param", &self.grant_type_param)
            .field("grant_type_value", &self.grant_type_value)
            .field("scope_param", &self.scope_param)
            .field("response", &self.response)
            .field("grant", &self.grant)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_url", &self.refresh_url)
            .field("refresh_token_param", &self.refresh_token_param)
            .field("send_grant_type", &self.send_grant_type)
            .field("name", &self.name)
            .field("redirect_uri", &self.redirect_uri)
            .field("store", &self.store)
            .field("store_encryption_key", &self.store_encryption_key)
            .field("timeout", &self.timeout)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

/// The seconds `timeout` may be: at least 1, at most an hour per attempt.
pub const TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;

/// The seconds `fallback_lifetime` may be: at least 1, at most 30 days (the longest lifetime a token
/// response is believed).
pub const FALLBACK_LIFETIME_SECS: RangeInclusive<u64> = 1..=30 * 24 * 3600;

/// The keys that hold a number of seconds, with their allowed ranges: each is checked by
/// [`seconds_setting`] wherever it is read (the file, the
/// environment, a `Config` built in code).
pub const SECONDS_KEYS: &[(&str, &str, RangeInclusive<u64>)] = &[
    ("timeout", "TOKENSMITH_TIMEOUT", TIMEOUT_SECS),
    ("fallback_lifetime", "TOKENSMITH_FALLBACK_LIFETIME", FALLBACK_LIFETIME_SECS),
];

/// Every environment variable [`Config::from_env`] reads, with the key it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("TOKENSMITH_PROVIDER", "provider"),
    ("TOKENSMITH_CLIENT_ID", "client_id"),
    ("TOKENSMITH_CLIENT_SECRET", "client_secret"),
    ("TOKENSMITH_CLIENT_SECRET_ENV", "client_secret"),
    ("TOKENSMITH_CLIENT_SECRET_FILE", "client_secret"),
    ("TOKENSMITH_BASE_URL", "base_url"),
    ("TOKENSMITH_TOKEN_URL", "token_url"),
    ("TOKENSMITH_TOKEN_PATH", "token_path"),
    ("TOKENSMITH_SCOPE", "scope"),
    ("TOKENSMITH_CREDENTIAL_STYLE", "credential_style"),
    ("TOKENSMITH_BODY_FORMAT", "body_format"),
    ("TOKENSMITH_ENVELOPE", "envelope"),
    ("TOKENSMITH_SCOPE_SEPARATOR", "scope_separator"),
    ("TOKENSMITH_FALLBACK_LIFETIME", "fallback_lifetime"),
    ("TOKENSMITH_EXTRA_PARAMS", "extra_params"),
    ("TOKENSMITH_CLIENT_ID_PARAM", "client_id_param"),
    ("TOKENSMITH_CLIENT_SECRET_PARAM", "client_secret_param"),
    ("TOKENSMITH_GRANT_TYPE_PARAM", "grant_type_param"),
    ("TOKENSMITH_GRANT_TYPE_VALUE", "grant_type_value"),
    ("TOKENSMITH_SCOPE_PARAM", "scope_param"),
    ("TOKENSMITH_RESPONSE_ACCESS_TOKEN", "response.access_token"),
    ("TOKENSMITH_RESPONSE_EXPIRES_IN", "response.expires_in"),
    ("TOKENSMITH_RESPONSE_EXPIRES_AT", "response.expires_at"),
    ("TOKENSMITH_RESPONSE_TOKEN_TYPE", "response.token_type"),
    ("TOKENSMITH_RESPONSE_REFRESH_TOKEN", "response.refresh_token"),
    ("TOKENSMITH_RESPONSE_SCOPE", "response.scope"),
    ("TOKENSMITH_RESPONSE_ERROR", "response.error"),
    ("TOKENSMITH_RESPONSE_ERROR_DESCRIPTION", "response.error_description"),
    ("TOKENSMITH_GRANT", "grant"),
    ("TOKENSMITH_REFRESH_TOKEN", "refresh_token"),
    ("TOKENSMITH_REFRESH_TOKEN_ENV", "refresh_token"),
    ("TOKENSMITH_REFRESH_TOKEN_FILE", "refresh_token"),
    ("TOKENSMITH_REFRESH_URL", "refresh_url"),
    ("TOKENSMITH_REFRESH_TOKEN_PARAM", "refresh_token_param"),
    ("TOKENSMITH_SEND_GRANT_TYPE", "send_grant_type"),
    ("TOKENSMITH_NAME", "name"),
    ("TOKENSMITH_REDIRECT_URI", "redirect_uri"),
    ("TOKENSMITH_STORE", "store"),
    ("TOKENSMITH_STORE_ENCRYPTION_KEY", "store.encryption_key"),
    ("TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", "store.encryption_key"),
    ("TOKENSMITH_STORE_ENCRYPTION_KEY_FILE", "store.encryption_key"),
    ("TOKENSMITH_TIMEOUT", "timeout"),
    ("TOKENSMITH_ALLOW_INSECURE_HTTP", "allow_insecure_http"),
];

/// The environment variable naming a configuration file that [`Config::load`] reads first.
pub const CONFIG_FILE_VAR: &str = "TOKENSMITH_CONFIG";

/// The keys a configuration file may hold, in documentation order.
pub const KEYS: &[&str] = &[
    "provider",
    "client_id",
    "client_secret",
    "base_url",
    "token_url",
    "token_path",
    "scope",
    "credential_style",
    "body_format",
    "envelope",
    "scope_separator",
    "fallback_lifetime",
    "extra_params",
    "client_id_param",
    "client_secret_param",
    "grant_type_param",
    "grant_type_value",
    "scope_param",
    "response",
    "grant",
    "refresh_token",
    "refresh_url",
    "refresh_token_param",
    "send_grant_type",
    "name",
    "redirect_uri",
    "store",
    "timeout",
    "allow_insecure_http",
];

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config("config", format!("cannot read the configuration file `{}` ({e})", path.display()))
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config { key, message } => Error::config(key, format!("{message} (in `{}`)", path.display())),
            other => other,
        })
    }

    /// Parses TOML text. An unknown key, or a value of the wrong type, gives [`Error::Config`] naming
    /// the key.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| Error::config("config", format!("the file is not valid TOML: {}", one_line(e.message()))))?;
        // `[store] encryption_key` goes to `store_encryption_key`, not into `StoreConfig`.
        let mut encryption_key = None;
        if let Some(toml::Value::Table(store)) = table.get_mut("store") {
            check_store_table(store)?;
            if let Some(value) = store.remove("encryption_key") {
                let secret = Secret::deserialize(value)
                    .map_err(|e| Error::config("store.encryption_key", one_line(&e.to_string())))?;
                encryption_key = Some(secret);
            }
        }
        // Check key by key so that an error names the key at fault.
        for (key, value) in &table {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::config(
                    key.as_str(),
                    format!("unknown key; the known keys are {}", KEYS.join(", ")),
                ));
            }
            match (key.as_str(), value) {
                ("response", toml::Value::Table(response)) => check_response_table(response)?,
                ("response", _) => {
                    return Err(Error::config(
                        "response",
                        "`response` is a table: `[response]` with JSON pointers, e.g. `access_token = \"/issued/bearer\"`",
                    ));
                }
                ("extra_params", toml::Value::Table(params)) => check_extra_params_table(params)?,
                ("store", toml::Value::Table(store)) => check_store_table(store)?,
                ("store", _) => {
                    return Err(Error::config(
                        "store",
                        "`store` is a table: `[store]` with `kind = \"memory\"`, `kind = \"file\"` and `path = \"...\"`, or `kind = \"redis\"` and `url = \"redis://...\"`",
                    ));
                }
                _ => {}
            }
            if let Some((_, _, range)) = SECONDS_KEYS.iter().find(|(k, _, _)| k == key) {
                match value {
                    toml::Value::Integer(n) => match u64::try_from(*n) {
                        Ok(secs) => seconds_setting(key, secs, range.clone()).map(drop)?,
                        Err(_) => parse_seconds_setting(key, &n.to_string(), range.clone()).map(drop)?,
                    },
                    other => parse_seconds_setting(key, &other.to_string(), range.clone()).map(drop)?,
                }
            }
            let mut single = toml::Table::new();
            single.insert(key.clone(), value.clone());
            if let Err(e) = Config::deserialize(toml::Value::Table(single)) {
                let key = match (key.as_str(), value) {
                    ("store", toml::Value::Table(t)) => store_key(t),
                    (key, _) => key.to_owned(),
                };
                return Err(Error::config(key, one_line(&e.to_string())));
            }
        }
        let mut config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| Error::config("config", one_line(&e.to_string())))?;
        config.store_encryption_key = encryption_key;
        Ok(config)
    }

    /// Reads the configuration from the process environment (see [`ENV_VARS`]).
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from an injected environment (see [`ENV_VARS`]).
    ///
    /// ```
    /// use tokensmith::config::Config;
    ///
    /// let env = [("TOKENSMITH_PROVIDER", "probit"), ("TOKENSMITH_CLIENT_ID", "id")];
    /// let config = Config::from_env_with(|name| {
    ///     env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    /// })
    /// .unwrap();
    /// assert_eq!(config.provider.as_deref(), Some("probit"));
    /// ```
    pub fn from_env_with(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = Config::default();
        config.merge_env(env)?;
        Ok(config)
    }

    /// Reads the file named by `TOKENSMITH_CONFIG` (if set), then applies the environment variables on
    /// top: the environment overrides the file.
    pub fn load() -> Result<Self> {
        Self::load_with(|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with an injected environment.
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = match env(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.merge_env(env)?;
        Ok(config)
    }

    /// Applies environment variables (see [`ENV_VARS`]) on top of this configuration. Errors name the
    /// variable at fault.
    pub fn merge_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let set = |slot: &mut Option<String>, name: &str| {
            if let Some(v) = get(name) {
                *slot = Some(v);
            }
        };
        set(&mut self.provider, "TOKENSMITH_PROVIDER");
        set(&mut self.client_id, "TOKENSMITH_CLIENT_ID");
        set(&mut self.base_url, "TOKENSMITH_BASE_URL");
        set(&mut self.token_url, "TOKENSMITH_TOKEN_URL");
        set(&mut self.token_path, "TOKENSMITH_TOKEN_PATH");
        set(&mut self.scope, "TOKENSMITH_SCOPE");
        set(&mut self.credential_style, "TOKENSMITH_CREDENTIAL_STYLE");
        set(&mut self.body_format, "TOKENSMITH_BODY_FORMAT");
        set(&mut self.envelope, "TOKENSMITH_ENVELOPE");
        set(&mut self.scope_separator, "TOKENSMITH_SCOPE_SEPARATOR");
        set(&mut self.grant, "TOKENSMITH_GRANT");
        set(&mut self.refresh_url, "TOKENSMITH_REFRESH_URL");
        set(&mut self.refresh_token_param, "TOKENSMITH_REFRESH_TOKEN_PARAM");
        set(&mut self.name, "TOKENSMITH_NAME");
        set(&mut self.redirect_uri, "TOKENSMITH_REDIRECT_URI");
        set(&mut self.client_id_param, "TOKENSMITH_CLIENT_ID_PARAM");
        set(&mut self.client_secret_param, "TOKENSMITH_CLIENT_SECRET_PARAM");
        set(&mut self.grant_type_param, "TOKENSMITH_GRANT_TYPE_PARAM");
        set(&mut self.grant_type_value, "TOKENSMITH_GRANT_TYPE_VALUE");
        set(&mut self.scope_param, "TOKENSMITH_SCOPE_PARAM");
        for (var, key) in ENV_VARS {
            if let (Some(field), Some(pointer)) = (key.strip_prefix("response."), get(var)) {
                self.response.get_or_insert_with(BTreeMap::new).insert(field.to_owned(), pointer);
            }
        }
        if let Some(secret) = secret_from_env(&get, "TOKENSMITH_CLIENT_SECRET")? {
            self.client_secret = Some(secret);
        }
        if let Some(secret) = secret_from_env(&get, "TOKENSMITH_REFRESH_TOKEN")? {
            self.refresh_token = Some(secret);
        }
        if let Some(secret) = secret_from_env(&get, "TOKENSMITH_STORE_ENCRYPTION_KEY")? {
            self.store_encryption_key = Some(secret);
        }
        for (key, var, range) in SECONDS_KEYS {
            if let Some(v) = get(var) {
                let secs = parse_seconds_setting(var, &v, range.clone())?.as_secs();
                match *key {
                    "timeout" => self.timeout = Some(secs),
                    _ => self.fallback_lifetime = Some(secs),
                }
            }
        }
        if let Some(v) = get("TOKENSMITH_EXTRA_PARAMS") {
            let params: BTreeMap<String, ExtraParam> = url::form_urlencoded::parse(v.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned().into()))
                .collect();
            if params.keys().any(String::is_empty) {
                return Err(Error::config(
                    "TOKENSMITH_EXTRA_PARAMS",
                    "expected form-encoded `name=value` pairs joined by `&`, e.g. `audience=api&resource=x`",
                ));
            }
            self.extra_params = Some(params);
        }
        if let Some(v) = get("TOKENSMITH_SEND_GRANT_TYPE") {
            self.send_grant_type = Some(parse_bool_setting("TOKENSMITH_SEND_GRANT_TYPE", &v)?);
        }
        if let Some(v) = get("TOKENSMITH_ALLOW_INSECURE_HTTP") {
            self.allow_insecure_http = Some(parse_bool_setting("TOKENSMITH_ALLOW_INSECURE_HTTP", &v)?);
        }
        if let Some(v) = get("TOKENSMITH_STORE") {
            self.store = Some(StoreConfig::parse(&v));
        }
        Ok(())
    }

    /// Replaces every secret given by environment variable or file with its value, looking variables up
    /// with `env`.
    ///
    /// The store's encryption key is replaced only when it is given by environment variable (after
    /// checking it, so that an error names the variable): a key file may hold raw bytes, and is read
    /// when the store is built.
    pub fn resolve_secrets_with(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(secret) = &self.client_secret {
            self.client_secret = Some(Secret::Value(secret.resolve_with("client_secret", env)?));
        }
        if let Some(secret) = &self.refresh_token {
            self.refresh_token = Some(Secret::Value(secret.resolve_with("refresh_token", env)?));
        }
        for (name, value) in self.extra_params.iter_mut().flatten() {
            if let ExtraParam::Secret(secret) = value {
                *secret = Secret::Value(secret.resolve_with(&format!("extra_params.{name}"), env)?);
            }
        }
        if let Some(secret @ Secret::Env(_var)) = &self.store_encryption_key {
            #[cfg(feature = "encryption")]
            tokensmith_core::StoreEncryption::from_env_with(_var, env).map_err(|e| match e {
                Error::Config { message, .. } => Error::config("store.encryption_key", message),
                other => other,
            })?;
            self.store_encryption_key = Some(Secret::Value(secret.resolve_with("store.encryption_key", env)?));
        }
        Ok(())
    }

    /// The provider name, or an error naming `provider`.
    pub fn provider_name(&self) -> Result<&str> {
        self.provider.as_deref().filter(|p| !p.trim().is_empty()).ok_or_else(|| {
            Error::config(
                "provider",
                "no provider is configured; set `provider` (or TOKENSMITH_PROVIDER) to probit, generic-django, ruby-style, whitebit or custom",
            )
        })
    }

    /// The client id, or an error naming `client_id`.
    pub fn require_client_id(&self) -> Result<&str> {
        self.client_id.as_deref().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            Error::config("client_id", "no client id is configured; set `client_id` (or TOKENSMITH_CLIENT_ID)")
        })
    }

    /// The client secret, read from wherever it is given, or an error naming `client_secret`.
    pub fn require_client_secret(&self) -> Result<SecretString> {
        match &self.client_secret {
            Some(secret) => secret.resolve("client_secret"),
            None => Err(Error::config(
                "client_secret",
                "no client secret is configured; set `client_secret` (or TOKENSMITH_CLIENT_SECRET_ENV / _FILE)",
            )),
        }
    }

    /// The retry policy for token requests: the defaults, with `timeout` as the time per attempt
    /// (checked against [`TIMEOUT_SECS`]).
    pub fn retry_policy(&self) -> Result<RetryPolicy> {
        let policy = RetryPolicy::default();
        match self.timeout {
            None => Ok(policy),
            Some(secs) => {
                let timeout = seconds_setting("timeout", secs, TIMEOUT_SECS)?;
                let deadline = timeout.max(policy.overall_deadline());
                Ok(policy.attempt_timeout(timeout).deadline(deadline))
            }
        }
    }

    /// The lifetime assumed when a token response has no `expires_in`, if set (checked against
    /// [`FALLBACK_LIFETIME_SECS`]).
    pub fn fallback_lifetime(&self) -> Result<Option<std::time::Duration>> {
        self.fallback_lifetime
            .map(|secs| seconds_setting("fallback_lifetime", secs, FALLBACK_LIFETIME_SECS))
            .transpose()
    }

    /// Whether insecure HTTP is allowed (default false).
    pub fn insecure_http(&self) -> bool {
        self.allow_insecure_http.unwrap_or(false)
    }

    /// Fails naming the first of `keys` that is set: for keys a provider does not take.
    pub fn reject_keys(&self, provider: &str, keys: &[&str]) -> Result<()> {
        for key in keys {
            if self.is_set(key) {
                return Err(Error::config(
                    *key,
                    format!("the `{provider}` provider does not take this key; remove it"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `key` is set.
    pub fn is_set(&self, key: &str) -> bool {
        match key {
            "provider" => self.provider.is_some(),
            "client_id" => self.client_id.is_some(),
            "client_secret" => self.client_secret.is_some(),
            "base_url" => self.base_url.is_some(),
            "token_url" => self.token_url.is_some(),
            "token_path" => self.token_path.is_some(),
            "scope" => self.scope.as_deref().is_some_and(|s| !s.trim().is_empty()),
            "credential_style" => self.credential_style.is_some(),
            "body_format" => self.body_format.is_some(),
            "envelope" => self.envelope.is_some(),
            "scope_separator" => self.scope_separator.is_some(),
            "fallback_lifetime" => self.fallback_lifetime.is_some(),
            "extra_params" => self.extra_params.as_ref().is_some_and(|p| !p.is_empty()),
            "client_id_param" => self.client_id_param.is_some(),
            "client_secret_param" => self.client_secret_param.is_some(),
            "grant_type_param" => self.grant_type_param.is_some(),
            "grant_type_value" => self.grant_type_value.is_some(),
            "scope_param" => self.scope_param.is_some(),
            "response" => self.response.as_ref().is_some_and(|r| !r.is_empty()),
            "grant" => self.grant.is_some(),
            "refresh_token" => self.refresh_token.is_some(),
            "refresh_url" => self.refresh_url.is_some(),
            "refresh_token_param" => self.refresh_token_param.is_some(),
            "send_grant_type" => self.send_grant_type.is_some(),
            "name" => self.name.is_some(),
            "redirect_uri" => self.redirect_uri.is_some(),
            "store" => self.store.is_some(),
            "timeout" => self.timeout.is_some(),
            "allow_insecure_http" => self.allow_insecure_http.is_some(),
            _ => false,
        }
    }
}

fn secret_from_env(get: &dyn Fn(&str) -> Option<String>, prefix: &str) -> Result<Option<Secret>> {
    let value = get(prefix).map(Secret::value);
    let env_var = format!("{prefix}_ENV");
    let env = match get(&env_var) {
        Some(name) => {
            check_env_var_name(&env_var, &name)?;
            Some(Secret::Env(name))
        }
        None => None,
    };
    let file = get(&format!("{prefix}_FILE")).map(|p| Secret::File(p.into()));
    match (value, env, file) {
        (v, None, None) => Ok(v),
        (None, e @ Some(_), None) => Ok(e),
        (None, None, f @ Some(_)) => Ok(f),
        _ => Err(Error::config(prefix, format!("set only one of {prefix}, {prefix}_ENV and {prefix}_FILE"))),
    }
}

/// Checks `[response]`: known field names only (the error lists them), each a string.
fn check_response_table(table: &toml::Table) -> Result<()> {
    for (key, value) in table {
        check_response_key(key)?;
        if !value.is_str() {
            return Err(Error::config(
                format!("response.{key}"),
                "expected a JSON pointer as a string, e.g. \"/issued/bearer\"",
            ));
        }
    }
    Ok(())
}

/// Refuses a `[response]` key that names no field, listing those that do.
pub(crate) fn check_response_key(key: &str) -> Result<()> {
    use tokensmith_core::parse::ResponseField;
    if ResponseField::from_name(key).is_none() {
        let known: Vec<&str> = ResponseField::ALL.iter().map(|f| f.name()).collect();
        return Err(Error::config(
            format!("response.{key}"),
            format!("unknown key; `[response]` takes {}", known.join(", ")),
        ));
    }
    Ok(())
}

/// Checks `[extra_params]`: each value a string, or a secret given as a table.
fn check_extra_params_table(table: &toml::Table) -> Result<()> {
    for (name, value) in table {
        let key = format!("extra_params.{name}");
        match value {
            toml::Value::String(_) => {}
            toml::Value::Table(_) => {
                Secret::deserialize(value.clone())
                    .map_err(|e| Error::config(key.as_str(), one_line(&e.to_string())))?;
            }
            _ => {
                return Err(Error::config(
                    key,
                    "expected a string, or a secret as `{ env = \"VAR\" }`, `{ file = \"/path\" }` or `{ value = \"...\" }`",
                ));
            }
        }
    }
    Ok(())
}

/// What serde's internally tagged enums do not check: unknown keys in `[store]`, and a `path` on a
/// memory store.
fn check_store_table(table: &toml::Table) -> Result<()> {
    if let Some(key) =
        table.keys().find(|k| !matches!(k.as_str(), "kind" | "path" | "encryption_key" | "url" | "prefix"))
    {
        return Err(Error::config(
            format!("store.{key}"),
            "unknown key; `[store]` takes `kind`, `path` (file), `url`, `prefix` (redis) and `encryption_key` (file or redis)",
        ));
    }
    let kind = table.get("kind").and_then(toml::Value::as_str);
    if kind == Some("memory") && table.contains_key("encryption_key") {
        return Err(Error::config(
            "store.encryption_key",
            "a memory store keeps nothing to encrypt; use kind = \"file\" or \"redis\", or remove the key",
        ));
    }
    if kind == Some("memory") && table.contains_key("path") {
        return Err(Error::config(
            "store.path",
            "a memory store has no path; use kind = \"file\" to keep tokens in a file",
        ));
    }
    for key in ["url", "prefix"] {
        if matches!(kind, Some("memory" | "file")) && table.contains_key(key) {
            return Err(Error::config(
                format!("store.{key}"),
                "only a Redis store takes this key; use kind = \"redis\" with `url`",
            ));
        }
    }
    if kind == Some("redis") && table.contains_key("path") {
        return Err(Error::config("store.path", "a Redis store has no path; give `url = \"redis://...\"`"));
    }
    Ok(())
}

fn store_key(table: &toml::Table) -> String {
    let allowed: &[&str] = match table.get("kind").and_then(toml::Value::as_str) {
        Some("file") if !table.contains_key("path") => return "store.path".to_owned(),
        Some("redis") if !table.contains_key("url") => return "store.url".to_owned(),
        Some("memory") => &["kind", "path"],
        Some("file") => &["kind", "path", "encryption_key"],
        Some("redis") => &["kind", "url", "prefix", "encryption_key"],
        _ => return "store.kind".to_owned(),
    };
    table
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("store.{k}"))
        .or_else(|| {
            // A value of the wrong type: name the first non-kind key present.
            table.keys().find(|k| k.as_str() != "kind").map(|k| format!("store.{k}"))
        })
        .unwrap_or_else(|| "store".to_owned())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_inline_secrets() {
        let config = Config::from_toml_str(
            r#"provider = "probit"
client_secret = "hunter2-inline"
refresh_token = { value = "rt-inline" }"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2-inline"), "{debug}");
        assert!(!debug.contains("rt-inline"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn store_keys_are_named() {
        let err = Config::from_toml_str("[store]\nkind = \"file\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.path"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"redis\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.url"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"s3\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.kind"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"memory\"\ncolour = 1").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.colour"), "{err}");
    }
}
