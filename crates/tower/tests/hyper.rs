//! The layer on a hyper-util client against the sandbox: one token request for many calls, exactly
//! one retry after a 401, and none for a body that cannot be replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokensmith_probit::ProbitProvider;
use tokensmith_sandbox::{Dialect, Fault, Sandbox};
use tokensmith_tower::{AuthLayer, AuthService, ReplayBody};
use tower::{Layer as _, ServiceExt as _};

const D: Dialect = Dialect::Probit;
const BALANCE: &str = "/api/exchange/v1/balance";

fn provider(sandbox: &Sandbox) -> ProbitProvider {
    let demo = sandbox.credentials(D);
    ProbitProvider::builder()
        .client_id(demo.client_id)
        .client_secret(demo.client_secret)
        .base_url(sandbox.base_url(D))
        .build()
        .unwrap()
}

fn client<B>(sandbox: &Sandbox) -> AuthService<Client<HttpConnector, B>>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    AuthLayer::new(provider(sandbox).shared()).layer(Client::builder(TokioExecutor::new()).build_http::<B>())
}

fn get<B>(sandbox: &Sandbox, body: B) -> http::Request<B> {
    http::Request::get(sandbox.protected_url(D)).body(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_cost_one_token_request() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = client::<Full<Bytes>>(&sandbox);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (client, request) = (client.clone(), get(&sandbox, Full::default()));
            tokio::spawn(async move { client.oneshot(request).await.unwrap().status().as_u16() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(sandbox.request_count(D, "/token"), 1);
    assert_eq!(sandbox.request_count(D, BALANCE), 50);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_new_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = client::<Full<Bytes>>(&sandbox);
    assert_eq!(client.clone().oneshot(get(&sandbox, Full::default())).await.unwrap().status(), 200);
    sandbox.inject(D, BALANCE, Fault::Status(401), 1);
    let response = client.clone().oneshot(get(&sandbox, Full::from("{}"))).await.unwrap();
    assert_eq!(response.status(), 200, "replayed with a new token");
    assert_eq!(sandbox.request_count(D, "/token"), 2);
    assert_eq!(sandbox.request_count(D, BALANCE), 3);

    sandbox.inject(D, BALANCE, Fault::Status(401), 2);
    let response = client.oneshot(get(&sandbox, Full::default())).await.unwrap();
    assert_eq!(response.status(), 401, "exactly one retry, then the 401 is the caller's");
    assert_eq!(sandbox.request_count(D, BALANCE), 5);
    sandbox.shutdown().await;
}

/// A body that can be read once only.
struct Once(Full<Bytes>);

impl http_body::Body for Once {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

impl ReplayBody for Once {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_replayed_gets_the_401_and_the_next_call_a_new_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = client::<Once>(&sandbox);
    sandbox.inject(D, BALANCE, Fault::Status(401), 1);
    let response = client.clone().oneshot(get(&sandbox, Once(Full::default()))).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(sandbox.request_count(D, BALANCE), 1, "not replayed");
    let response = client.oneshot(get(&sandbox, Once(Full::default()))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sandbox.request_count(D, "/token"), 2, "the refused token was dropped");
    sandbox.shutdown().await;
}
