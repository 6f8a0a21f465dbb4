//! Gets an access token from a Rails/Doorkeeper-style API (`POST {base}/oauth/token`, JSON body) and
//! calls the API with it.
//!
//! ```text
//! cargo run --example ruby_style
//! ```
//!
//! By default it runs against the local sandbox, started in-process. To run it against your API, set
//! `TOKENSMITH_RUBY_BASE_URL`, `TOKENSMITH_RUBY_CLIENT_ID` and `TOKENSMITH_RUBY_CLIENT_SECRET`
//! (optionally `TOKENSMITH_RUBY_SCOPE`); `RESOURCE_URL` names the API to call (default
//! `{base}/api/v1/me`).

use std::time::SystemTime;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, AuthorizedClient};
use tokensmith_ruby_style::{ENV_BASE_URL, RubyStyleBuilder};
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
            println!("using {base} (configured from TOKENSMITH_RUBY_*)");
            let resource =
                std::env::var("RESOURCE_URL").unwrap_or_else(|_| format!("{}/api/v1/me", base.trim_end_matches('/')));
            (None, RubyStyleBuilder::from_env(), resource)
        }
        None => {
            let sandbox = Sandbox::start().await?;
            println!(
                "using the sandbox at {} (set {ENV_BASE_URL} to use your API)",
                sandbox.base_url(Dialect::RubyStyle)
            );
            let demo = sandbox.credentials(Dialect::RubyStyle);
            let builder = RubyStyleBuilder::new()
                .base_url(sandbox.base_url(Dialect::RubyStyle))
                .client_id(demo.client_id)
                .client_secret(demo.client_secret);
            let resource = sandbox.protected_url(Dialect::RubyStyle);
            (Some(sandbox), builder, resource)
        }
    };

    let provider = builder.build()?;
    let token = provider.token().await?;
    println!("token {} expires in {}s", masked(&token), token.expires_in(SystemTime::now()).as_secs());

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
