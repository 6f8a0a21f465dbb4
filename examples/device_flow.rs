//! The device authorization grant (RFC 8628) against any server: discovery of its endpoints, the code
//! shown to the user, polling until they approve, the token saved to a file store.
//!
//! ```text
//! TOKENSMITH_ISSUER=https://auth.example.com/o TOKENSMITH_CLIENT_ID=my-device-app \
//!     TOKENSMITH_CLIENT_SECRET=... cargo run --example device_flow
//! ```
//!
//! `TOKENSMITH_DEVICE_AUTHORIZATION_URL` names the device authorization endpoint when the metadata
//! does not (Django OAuth Toolkit: `{base}/o/device-authorization/`); `TOKENSMITH_SCOPE` the scopes
//! (default `read`); `TOKENSMITH_STORE` the store file (default `device-tokens.json`).

use std::sync::Arc;

use tokensmith_core::flows::{FlowClient, MetadataCache};
use tokensmith_core::http::ReqwestTransport;
use tokensmith_core::{
    CachedProvider, ClientCredentials, Scopes, TokenClient, cache::RefreshTokenSource, store::FileStore,
};

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        // Display, not Debug: tokensmith's messages say what went wrong and what to do.
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn var(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = var("TOKENSMITH_ISSUER")?;
    let credentials = ClientCredentials::new(var("TOKENSMITH_CLIENT_ID")?, var("TOKENSMITH_CLIENT_SECRET")?);
    let scopes = Scopes::parse(&std::env::var("TOKENSMITH_SCOPE").unwrap_or_else(|_| "read".to_owned()));

    let transport = Arc::new(ReqwestTransport::new()?);
    let metadata = MetadataCache::new(transport.clone()).get(&issuer).await?;
    let device_url = match std::env::var("TOKENSMITH_DEVICE_AUTHORIZATION_URL") {
        Ok(url) => url.parse()?,
        Err(_) => metadata
            .device_authorization_endpoint
            .clone()
            .ok_or("the server names no device authorization endpoint; set TOKENSMITH_DEVICE_AUTHORIZATION_URL")?,
    };
    let endpoint = metadata.endpoint()?;
    let flows = FlowClient::builder(endpoint.clone(), credentials.clone()).transport(transport).build()?;

    let authorization = flows.request_device_authorization(&device_url, &scopes).await?;
    // What the user needs, one per line on stdout.
    println!("{}", authorization.verification_uri_complete().unwrap_or(authorization.verification_uri()));
    println!("{}", authorization.user_code());
    let token = flows.poll_device_token(&authorization).await?;
    eprintln!("approved: a token for {:?}", token.scopes().iter().collect::<Vec<_>>());

    let client = TokenClient::builder("device", endpoint, credentials).build()?;
    let store = std::env::var("TOKENSMITH_STORE").unwrap_or_else(|_| "device-tokens.json".to_owned());
    let cache = CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty()))
        .store(Arc::new(FileStore::new(store)))
        .build();
    cache.insert(token).await?;
    eprintln!("saved under the key {}", cache.key());
    Ok(())
}
