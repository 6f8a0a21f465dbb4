//! A gRPC client with tokens: a tonic channel behind `AuthLayer` (feature `tonic`), calling a
//! tonic-health server whose interceptor wants a bearer token and refuses a stale one.
//!
//! ```sh
//! cargo run -p tokensmith-tower --features tonic --example tonic_client
//! ```

use std::sync::{Arc, Mutex};

use tokensmith_sandbox::{Dialect, Sandbox};
use tokensmith_tower::AuthLayer;
use tonic::Status;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The gRPC server: refuses the token named in `stale`.
    let stale: Arc<Mutex<Option<String>>> = Arc::default();
    let last: Arc<Mutex<Option<String>>> = Arc::default();
    let (check_stale, record) = (stale.clone(), last.clone());
    let interceptor = move |request: tonic::Request<()>| {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
        *record.lock().map_err(|_| Status::internal("lock"))? = Some(token.clone());
        if check_stale.lock().map_err(|_| Status::internal("lock"))?.as_deref() == Some(token.as_str()) {
            return Err(Status::unauthenticated("stale token"));
        }
        Ok(request)
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(tonic::service::interceptor::InterceptedService::new(health, interceptor))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    // The client: tokens from a provider (here ProBit's dialect in the sandbox).
    let sandbox = Sandbox::start().await?;
    let demo = sandbox.credentials(Dialect::Probit);
    let provider = tokensmith_probit::ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .base_url(sandbox.base_url(Dialect::Probit))
        .build()?;
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let mut client = HealthClient::new(AuthLayer::new(provider.shared()).layer(channel));
    let check = || HealthCheckRequest { service: String::new() };

    client.check(check()).await?;
    // The server now refuses that token: the call fails once, the layer drops the token, and the
    // next call carries a new one.
    *stale.lock().map_err(|_| "lock")? = last.lock().map_err(|_| "lock")?.clone();
    let refused = client.check(check()).await.err().map(|status| status.code());
    let answer = client.check(check()).await?;
    println!(
        "refused once ({refused:?}), then {:?} with a new token ({} token requests)",
        answer.into_inner().status(),
        sandbox.request_count(Dialect::Probit, "/token")
    );
    sandbox.shutdown().await;
    Ok(())
}
