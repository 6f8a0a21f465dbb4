//! The layer on a tonic channel: a gRPC server (tonic-health behind an interceptor that checks the
//! bearer token) refuses a stale token once; the next call gets a new token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use tokensmith_probit::ProbitProvider;
use tokensmith_sandbox::{Dialect, Sandbox};
use tokensmith_tower::AuthLayer;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer as _;

/// What the server has seen: every bearer token, and the one it now refuses.
#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    stale: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_channel_gets_tokens_and_a_refused_one_is_replaced() {
    let sandbox = Sandbox::start().await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let checker = seen.clone();
    let interceptor = move |request: tonic::Request<()>| {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
        let mut seen = checker.lock().unwrap();
        seen.tokens.push(token.clone());
        if seen.stale.as_deref() == Some(token.as_str()) {
            return Err(Status::unauthenticated("stale token"));
        }
        Ok(request)
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        Server::builder()
            .add_service(tonic::service::interceptor::InterceptedService::new(health, interceptor))
            .serve_with_incoming(incoming),
    );

    let demo = sandbox.credentials(Dialect::Probit);
    let provider = ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .base_url(sandbox.base_url(Dialect::Probit))
        .build()
        .unwrap();
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let client = HealthClient::new(AuthLayer::new(provider.shared()).layer(channel));

    // Twenty concurrent calls share one token.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.check(HealthCheckRequest { service: String::new() }).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(sandbox.request_count(Dialect::Probit, "/token"), 1);
    let first = {
        let mut seen = seen.lock().unwrap();
        assert_eq!(seen.tokens.len(), 20);
        assert!(seen.tokens.iter().all(|t| *t == seen.tokens[0]));
        seen.stale = Some(seen.tokens[0].clone());
        seen.tokens[0].clone()
    };

    // The server now refuses that token: the call fails UNAUTHENTICATED (a gRPC body cannot be
    // replayed), the layer drops the token, and the next call carries a new one.
    let mut client = client.clone();
    let refused = client.check(HealthCheckRequest { service: String::new() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    client.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(sandbox.request_count(Dialect::Probit, "/token"), 2);
    let last = seen.lock().unwrap().tokens.last().cloned().unwrap();
    assert_ne!(last, first);
    sandbox.shutdown().await;
}
