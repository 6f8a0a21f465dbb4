//! Builds the configured [`TokenStore`].

use std::sync::Arc;

use tokensmith_core::{Error, MemoryStore, Result, TokenStore, store::FileStore};

use crate::config::{Config, StoreConfig};

/// The token store `config` asks for (`[store]`; default: in memory), encrypting its token sets when
/// `[store] encryption_key` is set (see [`build_store_encryption`]).
pub fn build_store(config: &Config) -> Result<Arc<dyn TokenStore>> {
    let store = config.store.as_ref().unwrap_or(&StoreConfig::Memory);
    if config.store_encryption_key.is_some() && matches!(store, StoreConfig::Memory) {
        return Err(Error::config(
            "store.encryption_key",
            "an encryption key is set (`[store] encryption_key` or TOKENSMITH_STORE_ENCRYPTION_KEY*) but the store is in memory, which keeps nothing to encrypt: configure a file or Redis store, or remove the key",
        ));
    }
    #[cfg(not(feature = "encryption"))]
    if config.store_encryption_key.is_some() {
        return Err(Error::config(
            "store.encryption_key",
            "store encryption is compiled out; enable the `encryption` cargo feature of `tokensmith`",
        ));
    }
    match store {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::File { path } => {
            if path.as_os_str().is_empty() {
                return Err(Error::config("store.path", "the store file's path is empty"));
            }
            let file = FileStore::new(path.clone());
            #[cfg(feature = "encryption")]
            if let Some(encryption) = build_store_encryption(config)? {
                return Ok(Arc::new(file.with_encryption(encryption)));
            }
            Ok(Arc::new(file))
        }
        #[cfg(feature = "redis")]
        StoreConfig::Redis { url, prefix } => {
            let mut builder = tokensmith_redis::RedisStore::builder(url.clone());
            if let Some(prefix) = prefix {
                builder = builder.prefix(prefix.clone());
            }
            #[cfg(feature = "encryption")]
            if let Some(encryption) = build_store_encryption(config)? {
                builder = builder.encryption(encryption);
            }
            Ok(Arc::new(builder.build()?))
        }
        #[cfg(not(feature = "redis"))]
        StoreConfig::Redis { .. } => Err(Error::config(
            "store.kind",
            "the Redis store is compiled out; enable the `redis` cargo feature of `tokensmith`",
        )),
    }
}

/// Fails with [`Error::Config`] for `store` unless `config` keeps tokens somewhere that outlives the
/// process (a file or Redis): for what must not lose a token set at exit, such as a rotating refresh
/// token (`provider = "custom"` with `grant = "refresh_token"`) or the tokens `tokensmith authorize`
/// saves. `why` says what needs it, e.g. "a refresh-token grant keeps the rotated refresh token".
///
/// ```
/// use tokensmith::config::{Config, StoreConfig};
///
/// let mut config = Config::default();
/// let err = tokensmith::require_lasting_store(&config, "the refresh token rotates").unwrap_err();
/// assert!(err.to_string().contains("`store`"), "{err}");
/// config.store = Some(StoreConfig::File { path: "/var/lib/app/tokens.json".into() });
/// assert!(tokensmith::require_lasting_store(&config, "the refresh token rotates").is_ok());
/// ```
pub fn require_lasting_store(config: &Config, why: &str) -> Result<()> {
    match config.store {
        Some(StoreConfig::File { .. } | StoreConfig::Redis { .. }) => Ok(()),
        _ => Err(Error::config(
            "store",
            format!(
                "{why}, but the in-memory store (the default) loses what it holds when the process exits: configure a file store (`[store] kind = \"file\"` and `path`, TOKENSMITH_STORE=/path/tokens.json, or the CLI's --store FILE) or a Redis store (`kind = \"redis\"` and `url`, TOKENSMITH_STORE=redis://..., or the CLI's --store-env VAR)"
            ),
        )),
    }
}

/// The [`StoreEncryption`](tokensmith_core::store::StoreEncryption) that `[store] encryption_key` (or
/// `TOKENSMITH_STORE_ENCRYPTION_KEY`, `_ENV`, `_FILE`) describes, or `None` when no key is set.
///
/// A key given by environment variable is looked up in the process environment (unless
/// [`Config::resolve_secrets_with`] already resolved it). Errors are [`Error::Config`] for
/// `store.encryption_key`, naming the variable or file, never the key.
///
/// ```
/// use tokensmith::config::{Config, Secret};
///
/// let mut config = Config::from_toml_str(
///     "[store]\nkind = \"file\"\npath = \"/tmp/tokens.json\"\nencryption_key = { env = \"MYAPP_TOKEN_KEY\" }",
/// )
/// .unwrap();
/// config.resolve_secrets_with(&|name| {
///     (name == "MYAPP_TOKEN_KEY").then(|| "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=".to_owned())
/// })
/// .unwrap();
/// assert!(tokensmith::build_store_encryption(&config).unwrap().is_some());
/// ```
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub fn build_store_encryption(config: &Config) -> Result<Option<tokensmith_core::store::StoreEncryption>> {
    use crate::config::Secret;
    use tokensmith_core::store::StoreEncryption;
    const KEY: &str = "store.encryption_key";
    let rekey = |e: Error| match e {
        Error::Config { message, .. } => Error::config(KEY, message),
        other => other,
    };
    match &config.store_encryption_key {
        None => Ok(None),
        Some(Secret::Value(key)) => StoreEncryption::from_base64(key, KEY).map(Some),
        Some(Secret::Env(var)) => StoreEncryption::from_env(var).map(Some).map_err(rekey),
        Some(Secret::File(path)) => StoreEncryption::from_file(path).map(Some).map_err(rekey),
    }
}
