//! A reqwest-free HTTP client with tokens: hyper-util's client behind `AuthLayer`, against the
//! sandbox, whose API refuses the first token once (as a resource server does after revoking one).
//!
//! ```sh
//! cargo run -p tokensmith-tower --example hyper_client
//! ```

use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokensmith_sandbox::{Dialect, Fault, Sandbox};
use tokensmith_tower::AuthLayer;
use tower::{Layer as _, ServiceExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let sandbox = Sandbox::start().await?;
    let demo = sandbox.credentials(Dialect::Probit);
    let provider = tokensmith_probit::ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .base_url(sandbox.base_url(Dialect::Probit))
        .build()?;
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let client = AuthLayer::new(provider.shared()).layer(hyper);

    // The resource server refuses the first token once: the layer gets a new one and retries.
    sandbox.inject(Dialect::Probit, "/api/exchange/v1/balance", Fault::Status(401), 1);
    let request = http::Request::get(sandbox.protected_url(Dialect::Probit)).body(Full::default())?;
    let response = client.oneshot(request).await?;
    println!(
        "balance: HTTP {} after {} token requests",
        response.status(),
        sandbox.request_count(Dialect::Probit, "/token")
    );
    if response.status() != 200 {
        return Err("the refused token was not replaced".into());
    }
    sandbox.shutdown().await;
    Ok(())
}
