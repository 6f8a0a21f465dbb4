//! Issue 16's worked example in Rust: a server that renames every field, described as data (the same
//! dialect as the TOML in `docs/writing-a-provider.md`). Prints the request it would send, secrets
//! redacted; no network.
//!
//! `cargo run --example renamed_dialect`

use std::sync::Arc;

use tokensmith::parse::{ResponseField, ResponseFormat};
use tokensmith::secrecy::SecretString;
use tokensmith::style::BodyCredentials;
use tokensmith::{
    CachedProvider, ClientCredentials, Result, Scopes, TokenClient, TokenEndpoint,
    cache::ClientCredentialsSource,
    request::{BodyFormat, Grant},
};

/// The dialect: every field renamed, an API key with every request.
fn acme_v3(api_key: SecretString) -> Result<TokenEndpoint> {
    let response = ResponseFormat::default()
        .field(ResponseField::AccessToken, "/issued/bearer")
        .field(ResponseField::ExpiresIn, "/issued/lifetime") // or ExpiresAt: epoch seconds or RFC 3339
        .field(ResponseField::TokenType, "/issued/type")
        .field(ResponseField::RefreshToken, "/issued/renewal")
        .field(ResponseField::Scope, "/issued/permissions")
        .field(ResponseField::Error, "/problem/type")
        .field(ResponseField::ErrorDescription, "/problem/detail");
    let token_url = "https://auth.example.test/v3/token"
        .parse()
        .map_err(|e| tokensmith::Error::config("token_url", format!("not a URL: {e}")))?;
    Ok(TokenEndpoint::new(token_url)
        .body_format(BodyFormat::Json)
        .credential_style(Arc::new(BodyCredentials::named("consumerKey", "consumerSecret")))
        .grant_type_param("grantKind")
        .scope_param("permissions")
        .extra_param("tenant", "eu-1")
        .secret_param("api_key", api_key) // redacted in Debug, snapshots, logs and errors
        .response_format(response))
}

fn main() -> Result<()> {
    let secret = std::env::var("MY_SECRET").unwrap_or_else(|_| "demo-secret".to_owned());
    let api_key = std::env::var("MY_API_KEY").unwrap_or_else(|_| "demo-api-key".to_owned());
    let endpoint = acme_v3(SecretString::from(api_key))?;
    let client = TokenClient::builder("acme-v3", endpoint, ClientCredentials::new("my-client", secret)).build()?;
    let scopes = Scopes::parse("read write");
    println!("{}", client.build_request(&Grant::ClientCredentials, &scopes)?.redacted_body());
    // Cached, refreshed early, single-flight, retried like any built-in provider: `provider.token().await`.
    let _provider = CachedProvider::builder(ClientCredentialsSource::new(client, scopes)).build();
    Ok(())
}
