//! A provider written in Rust against the core traits, registered in a `Registry` and built by name from a
//! configuration, like a built-in.
//!
//! ```sh
//! cargo run --example custom_provider
//! ```
//!
//! "Acme" is a made-up dialect served here by the sandbox's Doorkeeper-style routes: a JSON body carrying
//! the client id and secret. Its provider is a `TokenSource` (how to fetch one token) wrapped in a
//! `CachedProvider` (caching, early refresh, single-flight, back-off), and reads its settings from the
//! facade's `Config`, so that `provider = "acme"` in a TOML file selects it.

use std::sync::Arc;

use tokensmith::async_trait::async_trait;
use tokensmith::config::Config;
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{
    AccessToken, CachedProvider, ClientCredentials, Registry, Result, Scopes, SharedTokenProvider, TokenClient,
    TokenEndpoint, build_store,
    cache::TokenSource,
    request::{BodyFormat, Grant},
    style::RequestBody,
};
use tokensmith_sandbox::{Dialect, Sandbox};

/// Fetches Acme tokens: client credentials at `{base_url}/oauth/token`, JSON body with the credentials.
#[derive(Debug)]
struct AcmeSource {
    client: TokenClient,
    scopes: Scopes,
}

#[async_trait]
impl TokenSource for AcmeSource {
    async fn fetch(&self, _current: Option<&AccessToken>) -> Result<AccessToken> {
        // A real dialect might sign an assertion or call two endpoints here.
        self.client.request_token(&Grant::ClientCredentials, &self.scopes).await
    }

    fn cache_key(&self) -> String {
        format!("acme/{}/{}", self.client.credentials().client_id(), self.scopes)
    }
}

/// Builds the Acme provider from the common configuration keys. Errors name the key at fault.
fn build_acme(config: &Config) -> Result<SharedTokenProvider> {
    let base = config
        .base_url
        .as_deref()
        .ok_or_else(|| tokensmith::Error::config("base_url", "acme needs its base URL; set base_url"))?;
    // `TokenClientBuilder::build` checks the scheme (https://, or http:// where allowed).
    let token_url = format!("{}/oauth/token", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| tokensmith::Error::config("base_url", format!("not a URL: {e}")))?;
    let endpoint = TokenEndpoint::new(token_url).body_format(BodyFormat::Json).credential_style(Arc::new(RequestBody));
    let credentials = ClientCredentials::new(config.require_client_id()?, config.require_client_secret()?);
    let client =
        TokenClient::builder("acme", endpoint, credentials).allow_insecure_http(config.insecure_http()).build()?;
    let scopes = config.scope.as_deref().map(Scopes::parse).unwrap_or_default();
    let source = AcmeSource { client, scopes };
    Ok(SharedTokenProvider::new(CachedProvider::builder(source).store(build_store(config)?).build()))
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start().await?;
    let demo = sandbox.credentials(Dialect::RubyStyle);

    let mut registry = Registry::default();
    registry.register("acme", build_acme);
    println!("providers this registry can build: {}", registry.names().join(", "));

    // What a service would keep in its configuration file (the demo secret comes from the environment
    // variable named here; this example sets it on the config directly instead of exporting it).
    let mut config = Config::from_toml_str(&format!(
        r#"
        provider = "acme"
        base_url = "{}"
        client_id = "{}"
        client_secret = {{ env = "ACME_CLIENT_SECRET" }}
        "#,
        sandbox.base_url(Dialect::RubyStyle),
        demo.client_id
    ))?;
    let secret = demo.client_secret.clone();
    config.resolve_secrets_with(&move |name| (name == "ACME_CLIENT_SECRET").then(|| secret.clone()))?;

    let provider = registry.build(&config)?;
    let token = provider.token().await?;
    let again = provider.token().await?;
    println!(
        "acme: got a {} token valid for {} s; second call served from the cache: {}",
        token.token_type(),
        token.lifetime().as_secs(),
        again.same_token(&token)
    );

    let status = reqwest::Client::new()
        .get(sandbox.protected_url(Dialect::RubyStyle))
        .bearer_auth(token.secret().expose_secret())
        .send()
        .await?
        .status();
    println!("protected call with it: {status}");
    sandbox.shutdown().await;
    if !status.is_success() {
        return Err("the protected call failed".into());
    }
    Ok(())
}
