//! The conformance kit against a hand-made provider of a described dialect, and against providers
//! that break the contract, to prove the kit can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use tokensmith_core::{
    AccessToken, CachedProvider, ClientCredentials, Result, Scopes, TokenClient, TokenEndpoint, TokenProvider,
    cache::ClientCredentialsSource, request::Grant,
};
use tokensmith_sandbox::conformance::{ClientCredentialsKit, KitContext};
use tokensmith_sandbox::{ClientAuth, Dialect, DialectSpec, ErrorShape};

fn client(cx: &KitContext) -> Result<TokenClient> {
    let endpoint = TokenEndpoint::new(cx.token_url().parse().unwrap());
    TokenClient::builder("kit", endpoint, ClientCredentials::new(cx.client_id.clone(), cx.client_secret.clone()))
        .clock(cx.clock.clone())
        .build()
}

fn cached(cx: KitContext) -> Result<CachedProvider<ClientCredentialsSource>> {
    Ok(CachedProvider::builder(ClientCredentialsSource::new(client(&cx)?, Scopes::empty())).clock(cx.clock).build())
}

/// An RFC 6749 dialect with its own paths and error shape, which core's defaults speak as they are.
fn acme() -> DialectSpec {
    DialectSpec::new("acme", "/acme")
        .token_path("/oauth2/token")
        .protected_path("/api/me")
        .error_shape(ErrorShape::Fields { code: "error".into(), message: "error_description".into(), envelope: None })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_rfc6749_provider_passes_against_a_described_dialect() {
    ClientCredentialsKit::new(acme(), cached).invalid_client_mentions("do not match").run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_provider_passes_against_a_built_in_dialect() {
    // Django OAuth Toolkit decodes Basic credentials as RFC 6749 says, like core's default style.
    ClientCredentialsKit::new(Dialect::GenericDjango, cached).run().await;
}

/// Fetches on every call.
#[derive(Debug)]
struct Uncached(TokenClient);

#[async_trait]
impl TokenProvider for Uncached {
    async fn token(&self) -> Result<AccessToken> {
        self.0.request_token(&Grant::ClientCredentials, &Scopes::empty()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "[single flight]")]
async fn an_uncached_provider_fails_the_kit() {
    ClientCredentialsKit::new(acme(), |cx| Ok::<_, tokensmith_core::Error>(Uncached(client(&cx)?))).run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "[special secret]")]
async fn a_provider_that_encodes_the_secret_wrongly_fails_the_kit() {
    // The server wants RFC 6749's encoding; raw Basic loses the special secret's `+` and `%`.
    let strict = acme().client_auth(ClientAuth::BasicRfc6749);
    ClientCredentialsKit::new(strict, |cx| {
        let endpoint = TokenEndpoint::new(cx.token_url().parse().unwrap())
            .credential_style(Arc::new(tokensmith_core::style::BasicAuthRaw));
        let client = TokenClient::builder("raw", endpoint, ClientCredentials::new(cx.client_id, cx.client_secret))
            .clock(cx.clock.clone())
            .build()?;
        Ok::<_, tokensmith_core::Error>(
            CachedProvider::builder(ClientCredentialsSource::new(client, Scopes::empty())).clock(cx.clock).build(),
        )
    })
    .run()
    .await;
}
