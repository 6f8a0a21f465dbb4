//! Gets an access token from a Django OAuth Toolkit server and calls its `payments/` API with it.
//!
//! ```text
//! cargo run --example generic_django
//! ```
//!
//! By default it runs against the local sandbox, started in-process. To run it against your server,
//! set `TOKENSMITH_DJANGO_BASE_URL`, `TOKENSMITH_DJANGO_CLIENT_ID` and `TOKENSMITH_DJANGO_CLIENT_SECRET`
//! (optionally `TOKENSMITH_DJANGO_SCOPE`, `TOKENSMITH_DJANGO_CREDENTIALS=basic|body`,
//! `TOKENSMITH_DJANGO_TOKEN_PATH`); `RESOURCE_URL` names the API to call (default `{base}/payments/`).

use std::time::SystemTime;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, AuthorizedClient, Scopes};
use tokensmith_generic_django::{DjangoBuilder, ENV_BASE_URL};
use tokensmith_sandbox::{Dialect, Sandbox};

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        // Display, not Debug: tokensmith's messages say what went wrong and what to do.
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let base_url = std::env::var(ENV_BASE_URL).ok().filter(|v| !v.trim().is_empty());
    // Keep the sandbox alive until the end of main.
    let (_sandbox, builder, resource_url) = match base_url {
        Some(base) => {
            println!("using {base} (configured from TOKENSMITH_DJANGO_*)");
            let resource =
                std::env::var("RESOURCE_URL").unwrap_or_else(|_| format!("{}/payments/", base.trim_end_matches('/')));
            (None, DjangoBuilder::from_env(), resource)
        }
        None => {
            let sandbox = Sandbox::start().await?;
            println!(
                "using the sandbox at {} (set {ENV_BASE_URL} to use your server)",
                sandbox.base_url(Dialect::GenericDjango)
            );
            let demo = sandbox.credentials(Dialect::GenericDjango);
            let builder = DjangoBuilder::new()
                .base_url(sandbox.base_url(Dialect::GenericDjango))
                .client_id(demo.client_id)
                .client_secret(demo.client_secret)
                .scopes(Scopes::parse("read write"));
            let resource = sandbox.protected_url(Dialect::GenericDjango);
            (Some(sandbox), builder, resource)
        }
    };

    let provider = builder.build()?;
    let token = provider.token().await?;
    println!(
        "token {} with scopes `{}` expires in {}s",
        masked(&token),
        token.scopes(),
        token.expires_in(SystemTime::now()).as_secs()
    );

    let client = AuthorizedClient::new(provider.shared());
    let response = client.send(client.get(&resource_url)).await?;
    println!("GET {resource_url}: HTTP {}", response.status());
    let body = response.text().await?;
    println!("{}", body.chars().take(300).collect::<String>());
    Ok(())
}

/// The first 4 characters of the token and an ellipsis: enough to tell tokens apart, useless to a thief.
fn masked(token: &AccessToken) -> String {
    let prefix: String = token.secret().expose_secret().chars().take(4).collect();
    format!("{prefix}…")
}
