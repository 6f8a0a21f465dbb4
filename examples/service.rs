//! The service recipe (docs/services.md): configuration → facade → `SharedTokenProvider` →
//! `AuthorizedClient`, in an axum service with a readiness check at start-up, a health route and a
//! graceful shutdown.
//!
//! ```sh
//! cargo run --example service                                  # against an in-process sandbox
//! SERVICE_CONFIG=service.toml UPSTREAM_URL=https://api.example.com/balance cargo run --example service
//! ```
//!
//! With `SERVICE_CONFIG`, tokensmith's keys come from the `[tokensmith]` table of that file, with the
//! `TOKENSMITH_*` variables on top. Without it, the example starts the sandbox, serves, calls its own
//! routes once and shuts down, so that it runs anywhere with no network.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokensmith::config::Config;
use tokensmith::{AuthorizedClient, SharedTokenProvider, TokenProvider as _};
use tokensmith_sandbox::{Dialect, Sandbox};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every request handler shares: built once at start-up.
struct App {
    provider: SharedTokenProvider,
    client: AuthorizedClient,
    upstream: String,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Log tokensmith's warnings (a refresh that failed while a valid token is still served, a store
    // that cannot be written) with the service's own, on stderr; docs/services.md lists the targets.
    tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::stderr).init();

    // 1. Configuration: the service's own file with a [tokensmith] table, or the sandbox.
    let (config, upstream, sandbox) = match std::env::var("SERVICE_CONFIG") {
        Ok(path) => (Config::load_section(&path, "tokensmith")?, std::env::var("UPSTREAM_URL")?, None),
        Err(_) => {
            let sandbox = Sandbox::start().await?;
            let demo = sandbox.credentials(Dialect::Probit);
            let file = format!(
                "listen = \"127.0.0.1:0\"\n\n[tokensmith]\nprovider = \"probit\"\nbase_url = \"{}\"\n\
                 client_id = \"{}\"\nclient_secret = \"{}\"\ntimeout = 5\n",
                sandbox.base_url(Dialect::Probit),
                demo.client_id,
                demo.client_secret
            );
            (Config::from_toml_section(&file, "tokensmith")?, sandbox.protected_url(Dialect::Probit), Some(sandbox))
        }
    };

    // 2. The facade builds the provider the configuration names. No I/O yet.
    let provider = tokensmith::from_config(&config)?;

    // 3. Readiness: get one token before accepting traffic. A wrong secret, an unreachable token
    //    endpoint or a store that cannot be written fails here, at start-up, with a one-line error.
    if let Err(e) = provider.token().await {
        return Err(format!("tokensmith is not ready: {e}").into());
    }

    // 4. One AuthorizedClient for the whole service: it puts the token on every request and, on a 401,
    //    reports the token and retries once with a new one.
    let app = Arc::new(App { client: AuthorizedClient::new(provider.clone()), provider, upstream });
    let router = Router::new().route("/healthz", get(health)).route("/balance", get(balance)).with_state(app);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("service listening on http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                // A real service waits for SIGTERM / Ctrl-C here (tokio::signal).
                let _ = stopped.await;
            })
            .await
    });

    if let Some(sandbox) = sandbox {
        // Self-check: call our own routes once, then shut down.
        let http = reqwest::Client::new();
        for route in ["healthz", "balance"] {
            let response = http.get(format!("http://{addr}/{route}")).send().await?;
            let status = response.status();
            println!("GET /{route}: {status} {}", response.text().await?);
            if !status.is_success() {
                return Err(format!("/{route} answered {status}").into());
            }
        }
        let _ = stop.send(());
        server.await??;
        sandbox.shutdown().await;
    } else {
        tokio::signal::ctrl_c().await?;
        let _ = stop.send(());
        server.await??;
    }
    Ok(())
}

/// Liveness with the token's state, from `cached_token()`: it never blocks and never does I/O, and is
/// `Some` while a token is at hand that is not yet due for refresh. `None` is not a failure (nothing
/// fetched yet, or due for refresh: the next request fetches one), so the route answers 200 either way.
async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let token = match app.provider.cached_token() {
        Some(token) => json!({ "state": "fresh", "expires_in_s": token.remaining().as_secs() }),
        None => json!({ "state": "fetched on next use" }),
    };
    Json(json!({ "status": "ok", "token": token }))
}

/// A route that calls the upstream API with the token.
async fn balance(State(app): State<Arc<App>>) -> Result<Json<Value>, (StatusCode, String)> {
    let response = app
        .client
        .send(app.client.get(&app.upstream))
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, format!("upstream unreachable: {e}")))?;
    let status = response.status().as_u16();
    Ok(Json(json!({ "upstream_status": status })))
}
