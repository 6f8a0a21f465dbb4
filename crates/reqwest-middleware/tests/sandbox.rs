//! The middleware against the sandbox: one token request for many calls, exactly one retry after a 401.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokensmith_probit::ProbitProvider;
use tokensmith_reqwest_middleware::AuthMiddleware;
use tokensmith_sandbox::{Dialect, Fault, Sandbox};

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

fn client(sandbox: &Sandbox) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(AuthMiddleware::new(provider(sandbox).shared())).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_cost_one_token_request() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = client(&sandbox);
    let url = sandbox.protected_url(D);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(sandbox.request_count(D, "/token"), 1);
    assert_eq!(sandbox.request_count(D, BALANCE), 50);
    let logged = sandbox.requests(D);
    assert!(
        logged.iter().filter(|r| r.path == BALANCE).all(|r| r.header("authorization") == Some("Bearer [redacted]"))
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_new_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = client(&sandbox);
    assert_eq!(client.get(sandbox.protected_url(D)).send().await.unwrap().status(), 200);
    // The resource server refuses the current token once: the middleware invalidates it, gets a new
    // one and replays the request (with a body, which can be cloned).
    sandbox.inject(D, BALANCE, Fault::Status(401), 1);
    let response = client.get(sandbox.protected_url(D)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sandbox.request_count(D, "/token"), 2, "one new token for the retry");
    assert_eq!(sandbox.request_count(D, BALANCE), 3);

    // Refused twice: exactly one retry, then the 401 is the caller's.
    sandbox.inject(D, BALANCE, Fault::Status(401), 2);
    let response = client.get(sandbox.protected_url(D)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(sandbox.request_count(D, BALANCE), 5, "the call and one retry");
    assert_eq!(sandbox.request_count(D, "/token"), 3);
    sandbox.shutdown().await;
}

/// With reqwest-retry before it and reqwest-tracing around it: a 503 is retried by the retry
/// middleware, and each attempt carries the current token.
#[tokio::test]
async fn it_composes_with_reqwest_retry_and_reqwest_tracing() {
    use reqwest_retry::RetryTransientMiddleware;
    use reqwest_retry::policies::ExponentialBackoff;

    let sandbox = Sandbox::start().await.unwrap();
    let retry = ExponentialBackoff::builder()
        .retry_bounds(std::time::Duration::from_millis(1), std::time::Duration::from_millis(5))
        .build_with_max_retries(2);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_tracing::TracingMiddleware::default())
        .with(RetryTransientMiddleware::new_with_policy(retry))
        .with(AuthMiddleware::new(provider(&sandbox).shared()))
        .build();
    sandbox.inject(D, BALANCE, Fault::Status(503), 1);
    let response = client.get(sandbox.protected_url(D)).send().await.unwrap();
    assert_eq!(response.status(), 200, "the 503 was retried");
    assert_eq!(sandbox.request_count(D, BALANCE), 2);
    assert_eq!(sandbox.request_count(D, "/token"), 1, "both attempts used the one cached token");
    let logged = sandbox.requests(D);
    assert!(
        logged.iter().filter(|r| r.path == BALANCE).all(|r| r.header("authorization") == Some("Bearer [redacted]"))
    );
    sandbox.shutdown().await;
}
