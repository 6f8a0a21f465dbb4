//! Gets a ProBit access token and calls the balance API with it.
//!
//! ```text
//! cargo run --example probit
//! ```
//!
//! By default it runs against the local sandbox, started in-process. To run it against ProBit, set
//! `TOKENSMITH_PROBIT_CLIENT_ID` and `TOKENSMITH_PROBIT_CLIENT_SECRET` (from "API Settings" on
//! probit.com); `TOKENSMITH_PROBIT_TOKEN_URL` overrides the token URL.

use std::time::SystemTime;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, AuthorizedClient};
use tokensmith_probit::{ENV_CLIENT_ID, ProbitBuilder};
use tokensmith_sandbox::{Dialect, Sandbox};

const BALANCE_URL: &str = "https://api.probit.com/api/exchange/v1/balance";

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        // Display, not Debug: tokensmith's messages say what went wrong and what to do.
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let real = std::env::var(ENV_CLIENT_ID).is_ok_and(|v| !v.trim().is_empty());
    // Keep the sandbox alive until the end of main.
    let (_sandbox, builder, balance_url) = if real {
        println!("using ProBit (configured from TOKENSMITH_PROBIT_*)");
        (None, ProbitBuilder::from_env(), BALANCE_URL.to_owned())
    } else {
        let sandbox = Sandbox::start().await?;
        println!("using the sandbox at {} (set {ENV_CLIENT_ID} to use ProBit)", sandbox.base_url(Dialect::Probit));
        let demo = sandbox.credentials(Dialect::Probit);
        let builder = ProbitBuilder::new()
            .client_id(demo.client_id)
            .client_secret(demo.client_secret)
            .token_url(sandbox.token_url(Dialect::Probit));
        let balance_url = sandbox.protected_url(Dialect::Probit);
        (Some(sandbox), builder, balance_url)
    };

    let provider = builder.build()?;
    let token = provider.token().await?;
    println!("token {} expires in {}s", masked(&token), token.expires_in(SystemTime::now()).as_secs());

    let client = AuthorizedClient::new(provider.shared());
    let response = client.send(client.get(&balance_url)).await?;
    println!("GET {balance_url}: HTTP {}", response.status());
    let body = response.text().await?;
    println!("{}", body.chars().take(300).collect::<String>());
    Ok(())
}

/// The first 4 characters of the token and an ellipsis: enough to tell tokens apart, useless to a thief.
fn masked(token: &AccessToken) -> String {
    let prefix: String = token.secret().expose_secret().chars().take(4).collect();
    format!("{prefix}…")
}
