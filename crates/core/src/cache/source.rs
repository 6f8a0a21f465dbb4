//! Where a [`CachedProvider`](super::CachedProvider) gets its tokens: the [`TokenSource`] trait and
//! the built-in sources (client credentials, refresh token, any [`TokenProvider`]).

use std::fmt;

use async_trait::async_trait;

use crate::endpoint::TokenClient;
use crate::error::{Error, OAuthErrorCode, Result};
use crate::provider::TokenProvider;
use crate::request::Grant;
use crate::store::store_key;
use crate::token::{AccessToken, Scopes};

/// Fetches new tokens for a [`CachedProvider`](super::CachedProvider).
///
/// # Contract
/// - `fetch` gets one new token. `current` is the latest token set the cache knows (in memory or
///   loaded from the store), whose refresh token a refreshing source uses; it may be expired.
/// - The cache never runs two fetches of the same source at once, so a source may consume `current`'s
///   refresh token.
/// - A source that consumes its grant (a refresh token that may rotate) says so with
///   [`rotates_grant`](TokenSource::rotates_grant): the cache then never fetches without the fleet-wide
///   lock of a coordinating store.
/// - A fetched token that is already expired (or expires within the cache's skew) is never handed
///   out: the fetch counts as failed and backs off.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug + 'static {
    /// Fetches a new token.
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken>;

    /// The store key: it must name everything that decides which token is issued — the authorization
    /// server (issuer or token URL), the client id, the grant, the scopes and any audience or resource
    /// parameters — so that two sources that may get different tokens never share a stored set. Build
    /// it with [`store_key`], which escapes each part.
    fn cache_key(&self) -> String;

    /// A key this source's token sets were stored under by earlier versions of tokensmith, read (and
    /// copied to [`cache_key`](TokenSource::cache_key)) when nothing is stored under the current key,
    /// so that an upgrade loses no stored grant. Default: none.
    fn legacy_cache_key(&self) -> Option<String> {
        None
    }

    /// Whether a fetch consumes the grant it fetches with, so that two processes fetching at once
    /// would invalidate each other (rotating refresh tokens). Default `false`.
    fn rotates_grant(&self) -> bool {
        false
    }
}

/// Fetches tokens with the client-credentials grant.
#[derive(Debug)]
pub struct ClientCredentialsSource {
    client: TokenClient,
    scopes: Scopes,
}

impl ClientCredentialsSource {
    /// A source asking `client` for tokens with `scopes`.
    pub fn new(client: TokenClient, scopes: Scopes) -> Self {
        ClientCredentialsSource { client, scopes }
    }

    /// The client.
    pub fn client(&self) -> &TokenClient {
        &self.client
    }

    /// The requested scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }
}

/// The store key of the token sets `client` gets with `grant` and `scopes`: provider, token URL,
/// client id, grant, scopes (sorted) and, when the endpoint sends extra parameters (audience,
/// resource, tenant, ...), a digest of them (their values may be secrets, so they are not written
/// out).
fn cache_key(client: &TokenClient, grant: &str, scopes: &Scopes) -> String {
    let endpoint = client.endpoint();
    let mut sorted: Vec<&str> = scopes.iter().collect();
    sorted.sort_unstable();
    let scopes = sorted.join(" ");
    let params = endpoint.extra_params();
    let digest = (!params.is_empty()).then(|| {
        use sha2::Digest as _;
        let mut pairs: Vec<&(String, String)> = params.iter().collect();
        pairs.sort();
        let mut hasher = sha2::Sha256::new();
        for (name, value) in pairs {
            for part in [name, value] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
        let hash = hasher.finalize();
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("params-{hex}")
    });
    let parts = [client.provider(), endpoint.token_url().as_str(), client.credentials().client_id(), grant, &scopes];
    store_key(parts.into_iter().chain(digest.as_deref()))
}

/// The key of tokensmith 0.1.0 (`provider/client_id/scopes`), read once when the current key holds
/// nothing.
fn legacy_cache_key(client: &TokenClient, scopes: &Scopes) -> String {
    format!("{}/{}/{}", client.provider(), client.credentials().client_id(), scopes.join(" "))
}

#[async_trait]
impl TokenSource for ClientCredentialsSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.client.request_token(&Grant::ClientCredentials, &self.scopes).await
    }

    fn cache_key(&self) -> String {
        cache_key(&self.client, "client_credentials", &self.scopes)
    }

    fn legacy_cache_key(&self) -> Option<String> {
        Some(legacy_cache_key(&self.client, &self.scopes))
    }
}

/// Refreshes tokens with the refresh-token grant, from the refresh token of the current token set.
///
/// With no refresh token, or when the provider rejects it (`invalid_grant`), the fetch fails with
/// [`Error::ReauthorizationRequired`].
#[derive(Debug)]
pub struct RefreshTokenSource {
    client: TokenClient,
    scopes: Scopes,
}

impl RefreshTokenSource {
    /// A source refreshing through `client`, asking for `scopes` (empty: the provider's default).
    pub fn new(client: TokenClient, scopes: Scopes) -> Self {
        RefreshTokenSource { client, scopes }
    }

    /// The client.
    pub fn client(&self) -> &TokenClient {
        &self.client
    }
}

#[async_trait]
impl TokenSource for RefreshTokenSource {
    async fn fetch(&self, current: Option<&AccessToken>) -> Result<AccessToken> {
        let refresh = current
            .and_then(AccessToken::refresh_token)
            .ok_or_else(|| Error::ReauthorizationRequired { reason: "no refresh token is stored".to_owned() })?;
        match self.client.request_token(&Grant::RefreshToken(refresh.clone()), &self.scopes).await {
            Err(Error::OAuth(e)) if e.code == OAuthErrorCode::InvalidGrant => Err(Error::ReauthorizationRequired {
                reason: format!("the provider rejected the refresh token ({})", e.code),
            }),
            other => other,
        }
    }

    fn cache_key(&self) -> String {
        cache_key(&self.client, "refresh_token", &self.scopes)
    }

    fn legacy_cache_key(&self) -> Option<String> {
        Some(legacy_cache_key(&self.client, &self.scopes))
    }

    /// `true`: a refresh token may rotate (WhiteBIT's do), and then it can be used once only.
    fn rotates_grant(&self) -> bool {
        true
    }
}

/// Adapts any [`TokenProvider`] into a [`TokenSource`], so that it can be cached.
#[derive(Debug)]
pub struct ProviderSource<P> {
    provider: P,
    key: String,
}

impl<P: TokenProvider> ProviderSource<P> {
    /// Wraps `provider`; `key` names it in the store.
    pub fn new(provider: P, key: impl Into<String>) -> Self {
        ProviderSource { provider, key: key.into() }
    }
}

#[async_trait]
impl<P: TokenProvider> TokenSource for ProviderSource<P> {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        self.provider.token().await
    }

    fn cache_key(&self) -> String {
        self.key.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::TokenEndpoint;
    use crate::provider::provide_token_fn;
    use crate::token::ClientCredentials;

    fn client(url: &str, params: &[(&str, &str)]) -> TokenClient {
        let mut endpoint = TokenEndpoint::new(url.parse().unwrap());
        for (name, value) in params {
            endpoint = endpoint.extra_param(*name, *value);
        }
        TokenClient::builder("demo", endpoint, ClientCredentials::new("client/1", "s3cret")).build().unwrap()
    }

    #[test]
    fn the_key_names_server_client_grant_and_sorted_scopes() {
        let a = ClientCredentialsSource::new(client("https://a.test/token", &[]), Scopes::parse("b a"));
        let same = ClientCredentialsSource::new(client("https://a.test/token", &[]), Scopes::parse("a b"));
        assert_eq!(a.cache_key(), same.cache_key(), "scope order does not matter");
        assert_eq!(a.cache_key(), "demo/https:%2F%2Fa.test%2Ftoken/client%2F1/client_credentials/a%20b");
        let other_server = ClientCredentialsSource::new(client("https://b.test/token", &[]), Scopes::parse("a b"));
        assert_ne!(a.cache_key(), other_server.cache_key());
        let refresh = RefreshTokenSource::new(client("https://a.test/token", &[]), Scopes::parse("a b"));
        assert_ne!(a.cache_key(), refresh.cache_key(), "the grant is part of the key");
        assert_eq!(a.legacy_cache_key().as_deref(), Some("demo/client/1/b a"));
        assert!(!a.rotates_grant() && refresh.rotates_grant());
    }

    #[test]
    fn extra_parameters_are_digested_never_written_out() {
        let plain = ClientCredentialsSource::new(client("https://a.test/token", &[]), Scopes::default());
        let one = ClientCredentialsSource::new(
            client("https://a.test/token", &[("audience", "secret-aud")]),
            Scopes::default(),
        );
        let two =
            ClientCredentialsSource::new(client("https://a.test/token", &[("audience", "other")]), Scopes::default());
        assert_ne!(one.cache_key(), plain.cache_key());
        assert_ne!(one.cache_key(), two.cache_key());
        assert!(one.cache_key().contains("params-") && !one.cache_key().contains("secret-aud"), "{}", one.cache_key());
    }

    #[tokio::test]
    async fn a_refresh_source_without_a_refresh_token_asks_for_authorization() {
        let source = RefreshTokenSource::new(client("https://a.test/token", &[]), Scopes::default());
        let err = source.fetch(None).await.unwrap_err();
        assert!(matches!(err, Error::ReauthorizationRequired { .. }), "{err:?}");
        let without = AccessToken::builder("at").build();
        let err = source.fetch(Some(&without)).await.unwrap_err();
        assert!(matches!(err, Error::ReauthorizationRequired { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_provider_source_fetches_from_its_provider_under_its_key() {
        let source = ProviderSource::new(provide_token_fn(|| async { Ok(AccessToken::builder("p").build()) }), "k");
        assert_eq!(source.cache_key(), "k");
        assert!(source.legacy_cache_key().is_none() && !source.rotates_grant());
        let token = source.fetch(None).await.unwrap();
        assert!(token.same_token(&AccessToken::builder("p").build()));
    }
}
