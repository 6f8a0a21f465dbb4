//! [`CodeExchange`]: the token request of the authorization code grant, the code sent once.

use crate::cache::{CachedProvider, RefreshTokenSource};
use crate::endpoint::TokenClient;
use crate::error::OAuthErrorCode;
use crate::failure::{Error, Result};
use crate::request::{Grant, TokenRequest};
use crate::token::{AccessToken, Scopes};

use super::authorization_code::{AuthorizationCode, PendingAuthorization};

/// The token request side of the authorization code grant: verifies the callback (once), sends the
/// code with the PKCE verifier through a [`TokenClient`], and, when made with
/// [`saving_to`](Self::saving_to), saves the tokens in the provider's store before returning them.
///
/// The code is sent once. The client's retry policy never resends a grant that may have reached the
/// server (after a timeout, a broken connection or a 5xx other than 503 the code may be spent, and
/// a second use could revoke what the first issued); it retries only when the connection was never
/// made or the server answered 429 or 503. And the callback is accepted once, so the same pending
/// authorization cannot exchange twice.
///
/// ```no_run
/// use std::sync::Arc;
/// use tokensmith_core::flows::{AuthorizationRequest, CodeExchange};
/// use tokensmith_core::{CachedProvider, ClientCredentials, MemoryStore, cache::RefreshTokenSource, Scopes, TokenClient, TokenEndpoint};
///
/// # async fn run(callback: &str) -> tokensmith_core::Result<()> {
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token".parse().unwrap());
/// let client = TokenClient::builder("example", endpoint, ClientCredentials::new("my-app", "secret")).build()?;
/// let provider = CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty()))
///     .store(Arc::new(MemoryStore::new()))
///     .build();
/// let pending = AuthorizationRequest::new("https://auth.example.com/authorize".parse().unwrap(), "my-app")
///     .redirect_uri("http://127.0.0.1:8765/callback")
///     .start();
/// // ... send the user to pending.url(), receive `callback` on the redirect URI ...
/// CodeExchange::saving_to(&provider).complete(&pending, callback).await?;
/// let token = provider.token().await?; // refreshed with the stored refresh token from now on
/// # let _ = token; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    client: &'a TokenClient,
    provider: Option<&'a CachedProvider<RefreshTokenSource>>,
    send_redirect_uri: bool,
}

impl<'a> CodeExchange<'a> {
    /// An exchange through `client` that saves nothing: the caller keeps the tokens.
    pub fn new(client: &'a TokenClient) -> Self {
        CodeExchange { client, provider: None, send_redirect_uri: true }
    }

    /// An exchange through `provider`'s client that puts the tokens in `provider` with
    /// [`CachedProvider::insert`] (saved to its store before the exchange returns); from then on
    /// `provider.token()` serves the access token and refreshes it with the refresh token, saving
    /// each rotated refresh token.
    pub fn saving_to(provider: &'a CachedProvider<RefreshTokenSource>) -> Self {
        CodeExchange { client: provider.source().client(), provider: Some(provider), send_redirect_uri: true }
    }

    /// Whether the redirect URI of the authorization is sent again with the code (default `true`,
    /// as RFC 6749 §4.1.3 requires when the authorization request carried one; WhiteBIT takes none).
    pub fn send_redirect_uri(mut self, send: bool) -> Self {
        self.send_redirect_uri = send;
        self
    }

    /// The grant that exchanges `code` for `pending`: the code, the redirect URI (unless turned off)
    /// and the PKCE code verifier.
    pub fn grant(&self, pending: &PendingAuthorization, code: &AuthorizationCode) -> Grant {
        Grant::AuthorizationCode {
            code: code.secret().clone(),
            redirect_uri: pending.redirect_uri().filter(|_| self.send_redirect_uri).map(str::to_owned),
            code_verifier: pending.code_verifier().cloned(),
        }
    }

    /// The token request this exchange would send for `code` (no I/O), for inspection and snapshots.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the request cannot be built.
    pub fn request(&self, pending: &PendingAuthorization, code: &AuthorizationCode) -> Result<TokenRequest> {
        self.client.build_request(&self.grant(pending, code), &Scopes::empty())
    }

    /// Verifies `callback` (the full callback URL or its query string) against `pending` and, when
    /// it carries a code, exchanges it ([`exchange`](Self::exchange)).
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] when the callback is refused (see [`PendingAuthorization::verify_callback`]:
    /// a wrong `state` sends nothing; `error=access_denied` is [`CallbackError::Denied`](crate::error::CallbackError::Denied)); then as
    /// [`exchange`](Self::exchange).
    pub async fn complete(&self, pending: &PendingAuthorization, callback: &str) -> Result<AccessToken> {
        let code = pending.verify_callback(callback)?;
        self.exchange(pending, &code).await
    }

    /// Exchanges a code already taken from a verified callback and, with
    /// [`saving_to`](Self::saving_to), saves the tokens before returning the access token.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthorizationRequired`] when the server refuses the code (`invalid_grant`: expired,
    /// already used, or issued for another client or redirect URI); any other token request error;
    /// [`Error::Store`] when the tokens cannot be saved (they stay in the provider's cache, served and
    /// saved again in the background: see [`CachedProvider::insert`]).
    pub async fn exchange(&self, pending: &PendingAuthorization, code: &AuthorizationCode) -> Result<AccessToken> {
        let grant = self.grant(pending, code);
        let token = match self.client.request_token(&grant, &Scopes::empty()).await {
            Err(Error::OAuth(e)) if e.code == OAuthErrorCode::InvalidGrant => {
                return Err(Error::ReauthorizationRequired {
                    reason: format!(
                        "the server refused the authorization code ({}: expired, already used, or issued for another client or redirect URI)",
                        e.code
                    ),
                });
            }
            other => other?,
        };
        if let Some(provider) = self.provider {
            provider.insert(token.clone()).await?;
        }
        tracing::info!(
            provider = %self.client.provider(),
            pkce = pending.is_pkce(),
            refresh_token = token.refresh_token().is_some(),
            lifetime_s = token.lifetime().as_secs(),
            saved = self.provider.is_some(),
            "authorization completed"
        );
        Ok(token)
    }
}
