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
use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokensmith_core::support::redact_url_password;
use tokensmith_core::support::{
    check_env_var_name, is_env_var_name, parse_bool_setting, parse_seconds_setting, seconds_setting,
};
use tokensmith_core::{Error, Result, RetryPolicy};

#[cfg(feature = "toml")]
mod file;
mod keys;

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
            Secret::Value(_) => write!(f, "Value({})", tokensmith_core::support::REDACTED),
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

    /// [`StoreConfig::parse`], checked: what `TOKENSMITH_STORE` and the CLI's `--store`, `--store-env`
    /// and `--store-file` go through. Surrounding whitespace (a file's trailing newline) is trimmed;
    /// then the spec must not be empty nor hold a line break or another control character, and one
    /// that starts like a Redis URL in any case (`redis:`, `rediss:`, `redis+unix:`) must start like
    /// one exactly (`redis://`, `rediss://`, `redis+unix://`, in lower case) and go on with a host or,
    /// for `redis+unix://`, an absolute socket path. The rest of a URL, like a file path, is checked
    /// when the store is built.
    ///
    /// The error never holds the spec, which may hold a Redis password (or, from a file given by
    /// mistake, tokens): turn it into an [`Error::Config`] naming the setting with
    /// [`StoreSpecError::into_config_error`].
    ///
    /// ```
    /// use tokensmith::config::{StoreConfig, StoreSpecError};
    ///
    /// assert_eq!(StoreConfig::try_parse("memory\n"), Ok(StoreConfig::Memory));
    /// assert!(matches!(StoreConfig::try_parse("redis+unix:///run/redis.sock"), Ok(StoreConfig::Redis { .. })));
    /// assert_eq!(StoreConfig::try_parse("  "), Err(StoreSpecError::Empty));
    /// assert!(matches!(StoreConfig::try_parse("Redis:/host:6379"), Err(StoreSpecError::BadRedisUrl(_))));
    /// ```
    pub fn try_parse(spec: &str) -> Result<StoreConfig, StoreSpecError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(StoreSpecError::Empty);
        }
        if spec.chars().any(char::is_control) {
            return Err(StoreSpecError::ControlCharacter);
        }
        let lower = spec.to_ascii_lowercase();
        if !["redis:", "rediss:", "redis+unix:"].iter().any(|scheme| lower.starts_with(scheme)) {
            return Ok(Self::parse(spec));
        }
        if !Self::is_redis_url(spec) {
            return Err(StoreSpecError::BadRedisUrl(
                "it starts like a Redis URL but is not `redis://`, `rediss://` or `redis+unix://` (in lower case)",
            ));
        }
        // What follows the scheme is the Redis client's to check when the store is built (its errors
        // redact the password); only an obviously missing host or socket path is refused here.
        let rest = spec.split_once("://").map_or("", |(_, rest)| rest);
        if rest.is_empty() || rest.starts_with(['?', '#']) {
            return Err(StoreSpecError::BadRedisUrl("nothing follows the scheme (no host, no socket path)"));
        }
        if lower.starts_with("redis+unix:") && !rest.starts_with('/') {
            return Err(StoreSpecError::BadRedisUrl("`redis+unix://` needs the socket's absolute path"));
        }
        Ok(Self::parse(spec))
    }

    /// Whether `spec` starts like a Redis URL (`redis://`, `rediss://` or `redis+unix://`).
    pub fn is_redis_url(spec: &str) -> bool {
        ["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| spec.starts_with(scheme))
    }
}

/// Why [`StoreConfig::try_parse`] refused a store spec. It never holds the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpecError {
    /// Nothing but whitespace.
    Empty,
    /// A line break or another control character (a file of several lines, say).
    ControlCharacter,
    /// It starts like a Redis URL but is not a usable one; the text says why.
    BadRedisUrl(&'static str),
}

impl StoreSpecError {
    /// An [`Error::Config`] naming `setting`, the variable or flag the spec came from (e.g.
    /// `TOKENSMITH_STORE`, `--store`).
    pub fn into_config_error(self, setting: &str) -> Error {
        Error::config(setting, self.to_string())
    }
}

impl fmt::Display for StoreSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpecError::Empty => f.write_str(
                "the store is empty; give `memory`, a file path, or a Redis URL (redis://, rediss:// or redis+unix://)",
            ),
            StoreSpecError::ControlCharacter => f.write_str(
                "the store (not shown) holds a line break or another control character; give `memory`, a file path, or a Redis URL on one line",
            ),
            StoreSpecError::BadRedisUrl(why) => write!(
                f,
                "the store (not shown: it may hold a password) is not a usable Redis URL: {why}; give `redis://[:PASSWORD@]HOST[:PORT][/DB]`, `rediss://...` or `redis+unix:///path/to/socket`"
            ),
        }
    }
}

impl std::error::Error for StoreSpecError {}

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
/// assert_eq!(redis.to_string(), "Redis at redis://:[redacted]@10.0.0.5:6379/0");
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

/// One configuration key: a row of [`KEY_TABLE`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// The key's name in a TOML file: `client_secret`, or `store.encryption_key` for `encryption_key`
    /// in `[store]`. [`Error::Config`] names it.
    pub key: &'static str,
    /// The name of the [`Config`] field that holds it (`store_encryption_key` for
    /// `store.encryption_key`; the others are the key).
    pub field: &'static str,
    /// What kind of value it takes.
    pub kind: KeyKind,
    /// The environment variables that set it, in the order they are documented.
    pub env: &'static [EnvVar],
    /// Which providers use it, as in the "used by" column of `docs/configuration.md`: `all`,
    /// `custom`, `whitebit`, ...
    pub used_by: &'static str,
    /// What it means: the documentation of its [`Config`] field, as rustdoc Markdown (one source
    /// line per line, each starting with a space). [`KeySpec::meaning`] gives it as one line.
    pub doc: &'static str,
}

impl KeySpec {
    /// What the key means, as one line of Markdown.
    ///
    /// ```
    /// use tokensmith::config::KEY_TABLE;
    ///
    /// let name = KEY_TABLE.iter().find(|spec| spec.key == "name").unwrap();
    /// assert!(name.meaning().starts_with("A name for the provider in logs and store keys"));
    /// ```
    pub fn meaning(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Where to set it, for messages: `` `client_secret` (or TOKENSMITH_CLIENT_SECRET, _ENV or _FILE) ``.
    pub fn hint(&self) -> String {
        let mut vars = self.env.iter().map(|var| var.name);
        let Some(first) = vars.next() else {
            return format!("`{}`", self.key);
        };
        let rest: Vec<&str> = vars.map(|name| name.strip_prefix(first).unwrap_or(name)).collect();
        match rest.split_last() {
            None => format!("`{}` (or {first})", self.key),
            Some((last, [])) => format!("`{}` (or {first} or {last})", self.key),
            Some((last, middle)) => format!("`{}` (or {first}, {} or {last})", self.key, middle.join(", ")),
        }
    }
}

/// The kind of value a [`KeySpec`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A string, taken as it is.
    Text,
    /// A boolean; in a variable `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`.
    Bool,
    /// A whole number of seconds in this range, checked wherever it is set.
    Seconds(RangeInclusive<u64>),
    /// A [`Secret`]: by value, by environment variable name or by file; in the environment the
    /// variable holds the value, `_ENV` a variable name and `_FILE` a path (set only one).
    Secret,
    /// A value with a syntax of its own (`extra_params`, `[response]`, `[store]`), described in
    /// [`KeySpec::doc`].
    Special,
}

/// An environment variable that sets a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvVar {
    /// The variable's name, e.g. `TOKENSMITH_CLIENT_SECRET_FILE`.
    pub name: &'static str,
    /// The key it sets: the [`KeySpec::key`], or for `[response]` the field within it
    /// (`response.access_token`).
    pub key: &'static str,
}

keys::config_keys! {
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
    ///
    /// Its fields are declared once, in a table from which [`KEY_TABLE`], [`KEYS`], [`ENV_VARS`],
    /// [`SECONDS_KEYS`], [`Config::is_set`], `Debug` and [`Config::merge_env`] all come.
    #[derive(Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[non_exhaustive]
    pub struct Config {
        /// The provider: `probit`, `generic-django`, `ruby-style`, `whitebit`, `custom`, or a name
        /// registered in a [`Registry`](crate::Registry).
        provider: Option<String> = text {
            key: "provider",
            env: ["TOKENSMITH_PROVIDER"],
            used_by: "all",
            present: some,
        },
        /// The client id.
        client_id: Option<String> = text {
            key: "client_id",
            env: ["TOKENSMITH_CLIENT_ID"],
            used_by: "all",
            present: some,
        },
        /// The client secret.
        client_secret: Option<Secret> = secret {
            key: "client_secret",
            env: ["TOKENSMITH_CLIENT_SECRET"],
            used_by: "all (not `credential_style = \"none\"`)",
            present: some,
        },
        /// The provider's base URL (probit: the token URL is `{base_url}/token`).
        base_url: Option<String> = text {
            key: "base_url",
            env: ["TOKENSMITH_BASE_URL"],
            used_by: "probit, generic-django, ruby-style, whitebit",
            present: some,
        },
        /// The token endpoint's full URL; overrides the provider's default endpoint.
        token_url: Option<String> = text {
            key: "token_url",
            env: ["TOKENSMITH_TOKEN_URL"],
            used_by: "all",
            present: some,
        },
        /// The token path under `base_url` (generic-django; default `/o/token/`).
        token_path: Option<String> = text {
            key: "token_path",
            env: ["TOKENSMITH_TOKEN_PATH"],
            used_by: "generic-django",
            present: some,
        },
        /// Requested scopes, separated by spaces or commas.
        scope: Option<String> = text {
            key: "scope",
            env: ["TOKENSMITH_SCOPE"],
            used_by: "generic-django, ruby-style, custom",
            present: nonblank,
        },
        /// How client credentials are sent: `basic`, `basic-raw`, `body`, `none`, and with the `jwt`
        /// feature `private-key-jwt` or `client-secret-jwt` (custom; generic-django takes `basic` or `body`).
        credential_style: Option<String> = text {
            key: "credential_style",
            env: ["TOKENSMITH_CREDENTIAL_STYLE"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// The request body format: `form` or `json` (custom).
        body_format: Option<String> = text {
            key: "body_format",
            env: ["TOKENSMITH_BODY_FORMAT"],
            used_by: "custom",
            present: some,
        },
        /// A JSON pointer to the token fields in the response, e.g. `/data` (custom).
        envelope: Option<String> = text {
            key: "envelope",
            env: ["TOKENSMITH_ENVELOPE"],
            used_by: "custom",
            present: some,
        },
        /// How requested scopes are joined on the wire (custom; default a space).
        scope_separator: Option<String> = text {
            key: "scope_separator",
            env: ["TOKENSMITH_SCOPE_SEPARATOR"],
            used_by: "custom",
            present: some,
        },
        /// The lifetime in seconds assumed when a response has no `expires_in` (custom; default 3600).
        fallback_lifetime: Option<u64> = seconds(FALLBACK_LIFETIME_SECS) {
            key: "fallback_lifetime",
            env: ["TOKENSMITH_FALLBACK_LIFETIME"],
            used_by: "custom",
            present: some,
        },
        /// Parameters added to every token request (custom), e.g. `{ audience = "api" }`; a value given
        /// as `{ env = .. }`, `{ file = .. }` or `{ value = .. }` is a secret, redacted everywhere but on
        /// the wire. In the environment: form-encoded, `audience=api&resource=x` (plain values only).
        extra_params: Option<BTreeMap<String, ExtraParam>> = special(merge_extra_params) {
            key: "extra_params",
            env: ["TOKENSMITH_EXTRA_PARAMS"],
            used_by: "custom",
            present: nonblank,
        },
        /// The body field the client id is sent as, with `credential_style = "body"` (custom; default
        /// `client_id`).
        client_id_param: Option<String> = text {
            key: "client_id_param",
            env: ["TOKENSMITH_CLIENT_ID_PARAM"],
            used_by: "custom with `credential_style = \"body\"`",
            present: some,
        },
        /// The body field the client secret is sent as, with `credential_style = "body"` (custom; default
        /// `client_secret`).
        client_secret_param: Option<String> = text {
            key: "client_secret_param",
            env: ["TOKENSMITH_CLIENT_SECRET_PARAM"],
            used_by: "custom with `credential_style = \"body\"`",
            present: some,
        },
        /// The PEM file of the client's private key (RS256 or ES256, PKCS#8 or PKCS#1 RSA), with
        /// `credential_style = "private-key-jwt"` (custom; needs the `jwt` feature). A path relative
        /// to the working directory.
        private_key_file: Option<String> = text {
            key: "private_key_file",
            env: ["TOKENSMITH_PRIVATE_KEY_FILE"],
            used_by: "custom with `credential_style = \"private-key-jwt\"`",
            present: some,
        },
        /// The key id (`kid`) put in the header of the signed client assertion, with
        /// `credential_style = "private-key-jwt"` (custom).
        key_id: Option<String> = text {
            key: "key_id",
            env: ["TOKENSMITH_KEY_ID"],
            used_by: "custom with `credential_style = \"private-key-jwt\"`",
            present: some,
        },
        /// The name the grant type is sent as (custom; default `grant_type`).
        grant_type_param: Option<String> = text {
            key: "grant_type_param",
            env: ["TOKENSMITH_GRANT_TYPE_PARAM"],
            used_by: "custom",
            present: some,
        },
        /// The value sent as the grant type for the configured `grant` (custom; default its RFC 6749
        /// value, e.g. `client_credentials`).
        grant_type_value: Option<String> = text {
            key: "grant_type_value",
            env: ["TOKENSMITH_GRANT_TYPE_VALUE"],
            used_by: "custom",
            present: some,
        },
        /// The name requested scopes are sent as (custom; default `scope`).
        scope_param: Option<String> = text {
            key: "scope_param",
            env: ["TOKENSMITH_SCOPE_PARAM"],
            used_by: "custom",
            present: some,
        },
        /// JSON pointers to the fields of the token response (custom): `[response]` with `access_token`,
        /// `expires_in` or `expires_at`, `token_type`, `refresh_token`, `scope`, `error`,
        /// `error_description` (see [`ResponseField`](tokensmith_core::parse::ResponseField)). Fields
        /// not named keep their RFC 6749 name (under `envelope`, if set).
        response: Option<BTreeMap<String, String>> = special(merge_response) {
            key: "response",
            env: [
                "TOKENSMITH_RESPONSE_ACCESS_TOKEN" => "response.access_token",
                "TOKENSMITH_RESPONSE_EXPIRES_IN" => "response.expires_in",
                "TOKENSMITH_RESPONSE_EXPIRES_AT" => "response.expires_at",
                "TOKENSMITH_RESPONSE_TOKEN_TYPE" => "response.token_type",
                "TOKENSMITH_RESPONSE_REFRESH_TOKEN" => "response.refresh_token",
                "TOKENSMITH_RESPONSE_SCOPE" => "response.scope",
                "TOKENSMITH_RESPONSE_ERROR" => "response.error",
                "TOKENSMITH_RESPONSE_ERROR_DESCRIPTION" => "response.error_description",
            ],
            used_by: "custom",
            present: nonblank,
        },
        /// The grant: `client_credentials` (default), `refresh_token` (custom), or `authorization_code` /
        /// `device_code` (custom, generic-django: serve and refresh what `tokensmith authorize` saved).
        grant: Option<String> = text {
            key: "grant",
            env: ["TOKENSMITH_GRANT"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// The refresh token to start from when `grant = "refresh_token"` (custom).
        refresh_token: Option<Secret> = secret {
            key: "refresh_token",
            env: ["TOKENSMITH_REFRESH_TOKEN"],
            used_by: "custom with `grant = \"refresh_token\"`",
            present: some,
        },
        /// A separate URL for refresh requests (custom).
        refresh_url: Option<String> = text {
            key: "refresh_url",
            env: ["TOKENSMITH_REFRESH_URL"],
            used_by: "custom",
            present: some,
        },
        /// The name of the refresh token parameter (custom; default `refresh_token`).
        refresh_token_param: Option<String> = text {
            key: "refresh_token_param",
            env: ["TOKENSMITH_REFRESH_TOKEN_PARAM"],
            used_by: "custom",
            present: some,
        },
        /// Whether `grant_type` is sent (custom; default true).
        send_grant_type: Option<bool> = bool {
            key: "send_grant_type",
            env: ["TOKENSMITH_SEND_GRANT_TYPE"],
            used_by: "custom",
            present: some,
        },
        /// A name for the provider in logs and store keys (custom; default `custom`).
        name: Option<String> = text {
            key: "name",
            env: ["TOKENSMITH_NAME"],
            used_by: "custom",
            present: some,
        },
        /// The redirect URI registered for the client (whitebit).
        redirect_uri: Option<String> = text {
            key: "redirect_uri",
            env: ["TOKENSMITH_REDIRECT_URI"],
            used_by: "whitebit",
            present: some,
        },
        /// The authorization endpoint of the authorization code flow, `tokensmith authorize` (custom,
        /// generic-django; default from `issuer`'s discovery, or generic-django's `{base_url}/o/authorize/`).
        authorize_url: Option<String> = text {
            key: "authorize_url",
            env: ["TOKENSMITH_AUTHORIZE_URL"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// The device authorization endpoint of the device grant, `tokensmith authorize --device`
        /// (custom, generic-django; default from `issuer`'s discovery, or generic-django's
        /// `{base_url}/o/device-authorization/`).
        device_authorization_url: Option<String> = text {
            key: "device_authorization_url",
            env: ["TOKENSMITH_DEVICE_AUTHORIZATION_URL"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// The revocation endpoint, `tokensmith revoke` (custom, generic-django; default from
        /// `issuer`'s discovery, or generic-django's `{base_url}/o/revoke_token/`).
        revocation_url: Option<String> = text {
            key: "revocation_url",
            env: ["TOKENSMITH_REVOCATION_URL"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// The authorization server's issuer URL: its endpoints come from its metadata (RFC 8414, then
        /// OpenID Connect discovery) where no URL key sets them (custom, generic-django).
        issuer: Option<String> = text {
            key: "issuer",
            env: ["TOKENSMITH_ISSUER"],
            used_by: "custom, generic-django",
            present: some,
        },
        /// Where tokens are kept. In the environment: what [`StoreConfig::try_parse`] takes (a file
        /// path, a Redis URL, or `memory`).
        store: Option<StoreConfig> = special(merge_store) {
            key: "store",
            env: ["TOKENSMITH_STORE"],
            used_by: "all",
            present: some,
        },
        /// The key that encrypts the stored token sets (AES-256-GCM; a `file` or `redis` store): in
        /// TOML `encryption_key` in `[store]`, by value, `{ env = "VAR" }` or `{ file = "/path" }`; in
        /// the environment `TOKENSMITH_STORE_ENCRYPTION_KEY` (the key), `_ENV` or `_FILE`. The key is
        /// 32 random bytes in base64 (a file may also hold the 32 raw bytes); needs the cargo feature
        /// `encryption` (on by default).
        ///
        /// It sits here rather than in [`StoreConfig`] so that a store given later (an environment
        /// variable, a command-line flag) keeps it. [`Config::from_toml_str`] reads it from `[store]`; a
        /// `Config` deserialized by other means does not.
        @serde(skip)
        store_encryption_key: Option<Secret> = secret {
            key: "store.encryption_key",
            env: ["TOKENSMITH_STORE_ENCRYPTION_KEY"],
            used_by: "all, with a `file` or `redis` store",
            present: some,
        },
        /// The seconds one token request attempt may take (default 10; at least 1). A fetch makes up to
        /// three attempts within an overall deadline of 30 s, or of this timeout when it is longer.
        timeout: Option<u64> = seconds(TIMEOUT_SECS) {
            key: "timeout",
            env: ["TOKENSMITH_TIMEOUT"],
            used_by: "all",
            present: some,
        },
        /// Allow plain `http://` to hosts that are not loopback (default false).
        allow_insecure_http: Option<bool> = bool {
            key: "allow_insecure_http",
            env: ["TOKENSMITH_ALLOW_INSECURE_HTTP"],
            used_by: "all",
            present: some,
        },
    }
}

/// The seconds `timeout` may be: at least 1, at most an hour per attempt.
pub const TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;

/// The seconds `fallback_lifetime` may be: at least 1, at most 30 days (the longest lifetime a token
/// response is believed).
pub const FALLBACK_LIFETIME_SECS: RangeInclusive<u64> = 1..=30 * 24 * 3600;

/// The keys that hold a number of seconds, as `(key, variable, allowed range)`: each is checked by
/// [`seconds_setting`] wherever it is read (the file, the environment, a `Config` built in code).
/// From [`KEY_TABLE`].
pub const SECONDS_KEYS: &[(&str, &str, RangeInclusive<u64>)] = &SECONDS_KEYS_ARRAY;
const SECONDS_KEYS_ARRAY: [(&str, &str, RangeInclusive<u64>); keys::count_seconds()] = keys::seconds_keys();

/// Every environment variable [`Config::from_env`] reads, with the key it sets (from [`KEY_TABLE`]).
/// [`CONFIG_FILE_VAR`] is read by [`Config::load`] besides these.
pub const ENV_VARS: &[(&str, &str)] = &ENV_VARS_ARRAY;
const ENV_VARS_ARRAY: [(&str, &str); keys::count_env_vars()] = keys::env_vars();

/// The environment variable naming a configuration file that [`Config::load`] reads first.
pub const CONFIG_FILE_VAR: &str = "TOKENSMITH_CONFIG";

/// The keys a configuration file may hold at its top level, in documentation order (from
/// [`KEY_TABLE`]; `store.encryption_key` is within `[store]`).
pub const KEYS: &[&str] = &KEYS_ARRAY;
const KEYS_ARRAY: [&str; keys::count_top_level()] = keys::top_level_keys();

/// The known top-level key nearest to an unknown `key`, if `key` looks like a typo of it (`client_secrt`
/// → `client_secret`), or the key that a known environment variable written as a key sets
/// (`TOKENSMITH_SCOPE` → `scope`). `None` for a known key.
///
/// ```
/// use tokensmith::config::suggest_key;
///
/// assert_eq!(suggest_key("client_secrt"), Some("client_secret"));
/// assert_eq!(suggest_key("colour"), None);
/// ```
pub fn suggest_key(key: &str) -> Option<&'static str> {
    if KEYS.contains(&key) {
        return None;
    }
    if let Some((_, known)) = ENV_VARS.iter().find(|(var, _)| var.eq_ignore_ascii_case(key)) {
        return keys::spec(known).or_else(|| keys::spec("response")).map(|spec| spec.key);
    }
    keys::nearest(key, KEYS.iter().copied())
}

/// The known variable nearest to an unknown `TOKENSMITH_*` variable, if `name` looks like a typo of
/// it (`TOKENSMITH_CLIENT_SECRT` → `TOKENSMITH_CLIENT_SECRET`): at most one edit per three characters
/// after the prefix. `None` for a known variable, a name without the `TOKENSMITH_` prefix, a provider
/// crate's own (`TOKENSMITH_PROBIT_*`, `TOKENSMITH_DJANGO_*`, `TOKENSMITH_RUBY_*`,
/// `TOKENSMITH_WHITEBIT_*`), and one far from every known variable.
///
/// ```
/// use tokensmith::config::suggest_env_var;
///
/// assert_eq!(suggest_env_var("TOKENSMITH_CLIENT_SECRT"), Some("TOKENSMITH_CLIENT_SECRET"));
/// assert_eq!(suggest_env_var("TOKENSMITH_PROBIT_CLIENT_ID"), None);
/// ```
pub fn suggest_env_var(name: &str) -> Option<&'static str> {
    const PREFIX: &str = "TOKENSMITH_";
    // The provider crates' own variables (`tokensmith_probit::ProbitBuilder::from_env`, ...).
    const PROVIDER_PREFIXES: [&str; 4] = ["PROBIT_", "DJANGO_", "RUBY_", "WHITEBIT_"];
    let rest = name.strip_prefix(PREFIX)?;
    if name == CONFIG_FILE_VAR
        || ENV_VARS.iter().any(|(var, _)| *var == name)
        || PROVIDER_PREFIXES.iter().any(|prefix| rest.starts_with(prefix))
    {
        return None;
    }
    let known = ENV_VARS.iter().map(|(var, _)| *var).chain([CONFIG_FILE_VAR]);
    // Stricter than for keys: other `TOKENSMITH_*` variables are legitimate, a warning must be likely.
    let limit = rest.chars().count().checked_div(3).unwrap_or(0).max(1);
    let nearest = keys::nearest_within(rest, known.clone().filter_map(|var| var.strip_prefix(PREFIX)), limit)?;
    known.into_iter().find(|var| var.strip_prefix(PREFIX) == Some(nearest))
}

/// Logs a warning (`tracing::warn!`) for each `TOKENSMITH_*` variable of the process environment that
/// is not read but looks like a typo of one that is (see [`suggest_env_var`]); it names both
/// variables, never a value. [`Config::from_env`] and [`Config::load`] call it; the `_with` forms,
/// which look variables up one by one, cannot list an environment and do not.
///
/// Only a warning: other `TOKENSMITH_*` variables (a provider crate's own, a script's) are none of the
/// facade's business, and a name near a known one is the most an unread variable can tell.
pub fn warn_unknown_env_vars() {
    for (name, _) in std::env::vars_os() {
        if let Some(known) = name.to_str().and_then(suggest_env_var) {
            let name = name.to_string_lossy();
            tracing::warn!(
                "the environment variable `{name}` is not a tokensmith setting and is ignored; did you mean `{known}`?"
            );
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment (see [`ENV_VARS`]).
    ///
    /// A `TOKENSMITH_*` variable that is not read but looks like a typo of one that is
    /// (`TOKENSMITH_CLIENT_SECRT`) is logged as a warning: see [`warn_unknown_env_vars`].
    pub fn from_env() -> Result<Self> {
        warn_unknown_env_vars();
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from an injected environment (see [`ENV_VARS`]); secrets given by
    /// variable name (`TOKENSMITH_CLIENT_SECRET_ENV`, `{ env = .. }`) are looked up with `env` too, when
    /// it has them.
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
        config.merge_env(&env)?;
        config.take_env_secrets(&env);
        Ok(config)
    }

    /// Reads the file named by `TOKENSMITH_CONFIG` (if set; reading it needs the `toml` feature, and
    /// without it the variable is an [`Error::Config`] for `config` naming the feature), then applies
    /// the environment variables on top: the environment overrides the file. Like
    /// [`Config::from_env`], warns of a `TOKENSMITH_*` variable that looks like a typo
    /// ([`warn_unknown_env_vars`]).
    pub fn load() -> Result<Self> {
        warn_unknown_env_vars();
        Self::load_with(|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with an injected environment: the file variable, the `TOKENSMITH_*` variables and
    /// the variables secrets name (`client_secret = { env = .. }`, when `env` has them) are all looked up
    /// with `env`.
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = match env(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            #[cfg(feature = "toml")]
            Some(path) => Self::from_file(path)?,
            #[cfg(not(feature = "toml"))]
            Some(path) => {
                return Err(Error::config(
                    "config",
                    format!(
                        "{CONFIG_FILE_VAR} names a configuration file (`{path}`), and this build of tokensmith reads none: enable the `toml` feature of the `tokensmith` crate, or configure with `TOKENSMITH_*` variables and unset {CONFIG_FILE_VAR}"
                    ),
                ));
            }
            None => Config::default(),
        };
        config.merge_env(&env)?;
        config.take_env_secrets(&env);
        Ok(config)
    }

    /// Replaces each secret given by variable name (`{ env = "VAR" }`, `TOKENSMITH_CLIENT_SECRET_ENV`)
    /// with the variable's value when `env` has it, so that a configuration read through an injected
    /// environment does not later read the process's. A variable `env` lacks is left for building to
    /// report (a flag may still override the secret); files are read when the provider is built.
    fn take_env_secrets(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let take = |secret: &mut Secret| {
            if let Secret::Env(var) = secret {
                if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                    *secret = Secret::Value(SecretString::from(value));
                }
            }
        };
        self.client_secret.iter_mut().for_each(take);
        self.refresh_token.iter_mut().for_each(take);
        for value in self.extra_params.iter_mut().flat_map(|params| params.values_mut()) {
            if let ExtraParam::Secret(secret) = value {
                take(secret);
            }
        }
    }

    /// Applies environment variables (see [`ENV_VARS`]) on top of this configuration. Errors name the
    /// variable at fault.
    pub fn merge_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        merge_keys(self, &get)
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
            tokensmith_core::store::StoreEncryption::from_env_with(_var, env).map_err(|e| match e {
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
                format!(
                    "no provider is configured; set {} to {} or custom, or point {CONFIG_FILE_VAR} at a configuration file",
                    hint("provider"),
                    crate::BUILT_IN.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The client id, or an error naming `client_id`.
    pub fn require_client_id(&self) -> Result<&str> {
        self.client_id
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| Error::config("client_id", format!("no client id is configured; set {}", hint("client_id"))))
    }

    /// The client secret, read from wherever it is given, or an error naming `client_secret`.
    pub fn require_client_secret(&self) -> Result<SecretString> {
        match &self.client_secret {
            Some(secret) => secret.resolve("client_secret"),
            None => Err(Error::config(
                "client_secret",
                format!("no client secret is configured; set {}", hint("client_secret")),
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
                let deadline = timeout.max(policy.get_deadline());
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

/// Where `key` is set, for messages (see [`KeySpec::hint`]).
fn hint(key: &str) -> String {
    keys::spec(key).map_or_else(|| format!("`{key}`"), KeySpec::hint)
}

/// The variables of `key` in [`KEY_TABLE`] (none for a key not in it).
fn env_vars_of(key: &str) -> &'static [EnvVar] {
    keys::spec(key).map_or(&[], |spec| spec.env)
}

/// `TOKENSMITH_EXTRA_PARAMS`: form-encoded `name=value` pairs (plain values only).
fn merge_extra_params(config: &mut Config, key: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for var in env_vars_of(key) {
        if let Some(v) = get(var.name) {
            let params: BTreeMap<String, ExtraParam> = url::form_urlencoded::parse(v.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned().into()))
                .collect();
            if params.keys().any(String::is_empty) {
                return Err(Error::config(
                    var.name,
                    "expected form-encoded `name=value` pairs joined by `&`, e.g. `audience=api&resource=x`",
                ));
            }
            config.extra_params = Some(params);
        }
    }
    Ok(())
}

/// `TOKENSMITH_RESPONSE_*`: one JSON pointer per response field, added to `[response]`.
fn merge_response(config: &mut Config, key: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for var in env_vars_of(key) {
        if let (Some(field), Some(pointer)) = (var.key.strip_prefix("response."), get(var.name)) {
            config.response.get_or_insert_with(BTreeMap::new).insert(field.to_owned(), pointer);
        }
    }
    Ok(())
}

/// `TOKENSMITH_STORE`: what [`StoreConfig::try_parse`] takes.
fn merge_store(config: &mut Config, key: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for var in env_vars_of(key) {
        if let Some(spec) = get(var.name) {
            config.store = Some(StoreConfig::try_parse(&spec).map_err(|e| e.into_config_error(var.name))?);
        }
    }
    Ok(())
}

/// Refuses a `[response]` key that names no field, listing those that do.
#[cfg(any(feature = "custom", feature = "toml"))]
pub(crate) fn check_response_key(key: &str) -> Result<()> {
    use tokensmith_core::parse::ResponseField;
    if ResponseField::from_name(key).is_none() {
        let known: Vec<&str> = ResponseField::ALL.iter().map(|f| f.name()).collect();
        return Err(Error::config(
            format!("response.{key}"),
            unknown_key_message(
                keys::nearest(key, known.iter().copied()),
                &format!("`[response]` takes {}", known.join(", ")),
            ),
        ));
    }
    Ok(())
}

/// `unknown key; did you mean `suggestion`? (known)`, or `unknown key; known` with no suggestion.
#[cfg(any(feature = "custom", feature = "toml"))]
fn unknown_key_message(suggestion: Option<&str>, known: &str) -> String {
    match suggestion {
        Some(suggestion) => format!("unknown key; did you mean `{suggestion}`? ({known})"),
        None => format!("unknown key; {known}"),
    }
}

/// The grants that serve what `tokensmith authorize` saved (see `interactive::AUTHORIZED_GRANTS`).
pub(crate) const AUTHORIZED_GRANTS: &[&str] = &["authorization_code", "device_code"];

/// Whether `config` asks for the tokens `tokensmith authorize` saved (`grant = "authorization_code"`
/// or `"device_code"`): known with or without the `interactive` feature, so that a build without it
/// can say which feature the configuration needs.
pub(crate) fn is_authorized_grant(config: &Config) -> bool {
    config.grant.as_deref().map(str::trim).is_some_and(|g| AUTHORIZED_GRANTS.contains(&g))
}

/// Whether any key of the user-facing flows is set (`authorize_url`, `device_authorization_url`,
/// `revocation_url`, `issuer`).
pub(crate) fn uses_flow_keys(config: &Config) -> bool {
    config.authorize_url.is_some()
        || config.device_authorization_url.is_some()
        || config.revocation_url.is_some()
        || config.issuer.is_some()
}
