//! Unit tests of `testing`.

use super::*;
use crate::clock::Clock;
use crate::error::Result;
use crate::http::{HttpResponse, Transport};
use crate::provider::TokenProvider;
use crate::request::TokenRequest;
use crate::token::AccessToken;
use crate::{CachedProvider, ClientCredentials, Scopes, TokenClient, TokenEndpoint, cache::ClientCredentialsSource};
use async_trait::async_trait;
use std::time::Duration;

fn client(h: &Harness) -> Result<TokenClient> {
    let endpoint = TokenEndpoint::new(format!("{}/token", h.base_url).parse().unwrap());
    TokenClient::builder("conformance", endpoint, ClientCredentials::new(h.client_id, h.client_secret))
        .transport(h.transport.clone())
        .clock(h.clock.clone())
        .build()
}

#[tokio::test]
async fn a_cached_client_credentials_provider_conforms() {
    Conformance::new(|h| {
        Ok(CachedProvider::builder(ClientCredentialsSource::new(client(&h)?, Scopes::empty())).clock(h.clock).build())
    })
    .run()
    .await;
}

/// A provider that fetches on every call, to prove the suite can fail.
#[derive(Debug)]
struct Uncached(TokenClient);

#[async_trait]
impl TokenProvider for Uncached {
    async fn token(&self) -> Result<AccessToken> {
        self.0.request_token(&crate::request::Grant::ClientCredentials, &Scopes::empty()).await
    }
}

#[tokio::test]
#[should_panic(expected = "[caching]")]
async fn an_uncached_provider_fails_the_suite() {
    Conformance::new(|h| Ok(Uncached(client(&h)?))).run().await;
}

#[tokio::test]
async fn fake_endpoint_records_and_answers_in_order() {
    let endpoint = FakeEndpoint::default();
    endpoint.push_response(HttpResponse::json(503, "{}"));
    let request = TokenRequest::new(BASE_URL.parse().unwrap(), crate::request::BodyFormat::Form);
    assert_eq!(endpoint.send(&request).await.unwrap().status, 503);
    let ok = endpoint.send(&request).await.unwrap();
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("fake-token-1"));
    assert_eq!(endpoint.request_count(), 2);
}

#[test]
fn manual_clock_moves_only_when_told() {
    let clock = ManualClock::new();
    let wall = clock.system_time();
    assert_eq!(clock.monotonic(), Duration::ZERO);
    clock.advance(Duration::from_secs(5));
    assert_eq!(clock.monotonic(), Duration::from_secs(5));
    assert_eq!(clock.system_time(), wall + Duration::from_secs(5));
}
