//! Builds the configured [`TokenStore`].

use std::sync::Arc;

use tokensmith_core::{Error, FileStore, MemoryStore, Result, TokenStore};

use crate::config::{Config, StoreConfig};

/// The token store `config` asks for (`[store]`; default: in memory).
pub fn build_store(config: &Config) -> Result<Arc<dyn TokenStore>> {
    match config.store.as_ref().unwrap_or(&StoreConfig::Memory) {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::File { path } => {
            if path.as_os_str().is_empty() {
                return Err(Error::config("store.path", "the store file's path is empty"));
            }
            Ok(Arc::new(FileStore::new(path.clone())))
        }
        #[cfg(feature = "redis")]
        StoreConfig::Redis { url, prefix } => {
            let mut builder = tokensmith_redis::RedisStore::builder(url.clone());
            if let Some(prefix) = prefix {
                builder = builder.prefix(prefix.clone());
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
