//! [`MemoryStore`], the default store (public at the crate root).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{TokenStore, Versioned};
use crate::error::Result;
use crate::token::AccessToken;

/// A store in process memory: tokens survive as long as the store does. Every save gets a new
/// version (a counter shared by all keys).
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<Versions>,
}

#[derive(Default)]
struct Versions {
    sets: HashMap<String, (AccessToken, u64)>,
    last: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token sets, also after a panic elsewhere while they were held: every change is one
    /// insert or remove, so a panic cannot leave them half-changed, and a lock poisoned by another
    /// thread's panic is not the store's failure.
    fn sets(&self) -> std::sync::MutexGuard<'_, Versions> {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.sets().sets.keys().cloned().collect();
        f.debug_struct("MemoryStore").field("keys", &keys).finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        Ok(self.load_versioned(key).await?.map(|v| v.token))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.sets().sets.remove(key);
        Ok(())
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let tokens = self.sets();
        Ok(tokens.sets.get(key).map(|(token, version)| Versioned::new(token.clone(), Some(*version))))
    }

    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        let mut tokens = self.sets();
        tokens.last = tokens.last.saturating_add(1);
        let version = tokens.last;
        tokens.sets.insert(key.to_owned(), (token.clone(), version));
        Ok(Some(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_memory_store_survives_a_panic_while_its_lock_is_held() {
        let store = std::sync::Arc::new(MemoryStore::new());
        store.save("k", &AccessToken::builder("at").build()).await.unwrap();
        let poisoner = store.clone();
        let panicked = std::thread::spawn(move || {
            let _held = poisoner.tokens.lock().unwrap();
            panic!("a panic while the store's lock is held");
        })
        .join();
        assert!(panicked.is_err() && store.tokens.is_poisoned());
        assert!(store.load("k").await.unwrap().is_some(), "still readable");
        store.save("k2", &AccessToken::builder("at2").build()).await.unwrap();
        store.remove("k").await.unwrap();
        assert!(store.load("k").await.unwrap().is_none() && store.load("k2").await.unwrap().is_some());
    }
}
