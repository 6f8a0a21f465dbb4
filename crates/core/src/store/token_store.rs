//! The [`TokenStore`] trait (public at the crate root).

use std::fmt;

use async_trait::async_trait;

use super::{Coordinator, Versioned};
use crate::error::Result;
use crate::token::AccessToken;

/// Stores token sets by key.
///
/// Keys are chosen by the cache's owner; a store treats them as opaque strings. The built-in sources
/// make them with [`store_key`](super::store_key) from everything that decides which token is issued (provider, token
/// URL, client id, grant, scopes, extra parameters), so that two authorization servers, tenants or
/// scope sets never share a token set.
///
/// # Contract
/// - `save` replaces the whole token set for the key atomically: a concurrent or later `load` sees
///   either the old set or the new one, never a mix.
/// - `load` of a key never saved returns `Ok(None)`; a store that cannot read what it holds returns an
///   error and does not silently discard it.
/// - Neither method logs secrets; `Debug` shows none.
///
/// # Coordinating refreshes across processes
///
/// A store shared by many processes (Redis; a [`FileStore`](crate::store::FileStore), with OS file locks)
/// can also make sure that across all of them exactly one refresh of a key is in flight: it
/// implements [`Coordinator`] and returns itself from [`coordination`](TokenStore::coordination).
/// That is the one way a store says whether it coordinates; a store that does not (the default:
/// [`MemoryStore`](crate::MemoryStore)) implements nothing more.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// Loads the token set saved under `key`.
    async fn load(&self, key: &str) -> Result<Option<AccessToken>>;

    /// Saves `token` (with its refresh token) under `key`.
    async fn save(&self, key: &str, token: &AccessToken) -> Result<()>;

    /// Removes the token set saved under `key`.
    async fn remove(&self, key: &str) -> Result<()>;

    /// Loads the token set saved under `key` with the version the store gave it (see [`Versioned`]).
    ///
    /// The cache decides which of two token sets is newer by this version, never by comparing
    /// expiry instants (written by hosts whose clocks differ, and shortened by providers that cap a
    /// login). The default is [`load`](TokenStore::load) with no version, for stores that keep none;
    /// the cache then falls back to comparing expiries.
    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.load(key).await?.map(|token| Versioned::new(token, None)))
    }

    /// Saves `token` under `key` and returns the version the store gave it: larger than the version
    /// of every set saved under `key` before. The default is [`save`](TokenStore::save), with no
    /// version.
    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        self.save(key, token).await.map(|()| None)
    }

    /// Checks that the store can save token sets, before something that cannot be repeated: an
    /// authorization whose code is spent by the exchange loses its grant if the tokens cannot be
    /// saved, so the authorization flow probes the store before sending the user to consent. The
    /// default checks nothing.
    async fn probe(&self) -> Result<()> {
        Ok(())
    }

    /// How this store coordinates refreshes across processes, if it does (default `None`: it does
    /// not, and the cache fetches as a single process would).
    ///
    /// ```
    /// use tokensmith_core::{MemoryStore, TokenStore};
    ///
    /// assert!(MemoryStore::new().coordination().is_none());
    /// ```
    fn coordination(&self) -> Option<&dyn Coordinator> {
        None
    }
}
