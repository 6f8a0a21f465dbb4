//! Token revocation (RFC 7009).

use secrecy::{ExposeSecret as _, SecretString};
use tracing::Instrument as _;
use url::Url;

use super::FlowClient;
use crate::error::Result;
use crate::parse::parse_error_with;
use crate::request::Value;
use crate::store::TokenStore;
use crate::token::AccessToken;

/// Which kind of token a revocation request carries (RFC 7009 §2.1 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `refresh_token`.
    RefreshToken,
    /// `access_token`.
    AccessToken,
}

impl TokenTypeHint {
    /// The value sent.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::RefreshToken => "refresh_token",
            TokenTypeHint::AccessToken => "access_token",
        }
    }
}

impl FlowClient {
    /// Revokes one token at the revocation endpoint `url` with the client's credentials and
    /// `token_type_hint` (RFC 7009 §2.1). A 2xx answer is success (the server also answers so for a
    /// token it does not know, §2.2); an error answer is an [`Error`](crate::Error) as for a token
    /// request (`unsupported_token_type` is
    /// [`OAuthErrorCode::UnsupportedTokenType`](crate::error::OAuthErrorCode::UnsupportedTokenType)).
    pub async fn revoke_token(&self, url: &Url, token: &SecretString, hint: TokenTypeHint) -> Result<()> {
        let request = self.authenticated_post(
            url,
            "revocation_url",
            vec![("token", Value::Secret(token.clone())), ("token_type_hint", Value::from(hint.as_str()))],
        )?;
        let span = tracing::info_span!("tokensmith.revoke", host = url.host_str().unwrap_or(""), hint = hint.as_str());
        async {
            let scrub = |e| self.scrub(e, &[token.expose_secret()]);
            let response = self.send(&request, None).await.map_err(scrub)?;
            if (200..300).contains(&response.status) {
                tracing::info!("token revoked");
                return Ok(());
            }
            let error =
                scrub(parse_error_with(&response, self.endpoint.get_response_format(), self.clock.system_time()));
            tracing::info!(error = %error, "revocation refused");
            Err(error)
        }
        .instrument(span)
        .await
    }

    /// Revokes `token`'s refresh token (when it has one), then the access token itself (RFC 7009
    /// §2.1 asks for this order: revoking the refresh token may revoke its access tokens too, and
    /// the grant is gone first). Stops at the first failure.
    pub async fn revoke(&self, url: &Url, token: &AccessToken) -> Result<()> {
        if let Some(refresh) = token.refresh_token() {
            self.revoke_token(url, refresh.secret(), TokenTypeHint::RefreshToken).await?;
        }
        self.revoke_token(url, token.secret(), TokenTypeHint::AccessToken).await
    }

    /// Revokes the token set saved under `key` in `store` as [`revoke`](Self::revoke) does and
    /// removes it from the store: once the refresh token is revoked the set is useless, so it is
    /// removed then, before the access token is revoked (whose failure is still returned). Returns
    /// `false` when nothing was saved under `key`. A [`CachedProvider`](crate::CachedProvider)
    /// over the same store still holds its copy in memory: call its
    /// [`clear`](crate::CachedProvider::clear) too.
    pub async fn revoke_stored(&self, url: &Url, store: &dyn TokenStore, key: &str) -> Result<bool> {
        let Some(token) = store.load(key).await? else {
            return Ok(false);
        };
        if let Some(refresh) = token.refresh_token() {
            self.revoke_token(url, refresh.secret(), TokenTypeHint::RefreshToken).await?;
        }
        store.remove(key).await?;
        self.revoke_token(url, token.secret(), TokenTypeHint::AccessToken).await?;
        Ok(true)
    }
}
