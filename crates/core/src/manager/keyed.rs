//! The source of one key's entry: the manager's shared source (or the key's own), behind an `Arc`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::TokenSource;
use crate::error::Result;
use crate::token::AccessToken;

/// A [`TokenSource`] shared by many entries: every call goes to the inner source. Its cache key is
/// never used (each entry is built with its own key).
#[derive(Debug, Clone)]
pub(super) struct KeySource(pub(super) Arc<dyn TokenSource>);

#[async_trait]
impl TokenSource for KeySource {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        self.0.fetch(current).await
    }

    fn cache_key(&self) -> String {
        self.0.cache_key()
    }

    fn rotates_grant(&self) -> bool {
        self.0.rotates_grant()
    }
}
