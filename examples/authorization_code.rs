//! The authorization code flow with PKCE for any RFC 6749 server, with core's building blocks:
//! `AuthorizationRequest` (the URL), `LoopbackListener` (the callback on 127.0.0.1), `CodeExchange`
//! (the code sent once, the tokens saved in a file), then refreshes with the rotating refresh token.
//!
//! ```text
//! cargo run --example authorization_code
//! ```
//!
//! By default it runs against a tiny authorization server started in-process, which approves at
//! once (as if the user clicked Allow) and checks the PKCE verifier. To run it against your server,
//! set `AUTHORIZE_URL`, `TOKEN_URL`, `CLIENT_ID`, `CLIENT_SECRET` (and optionally `SCOPE`): it
//! prints the URL to open and waits 5 minutes for your browser to come back to
//! `http://127.0.0.1:8765/callback` (register that redirect URI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokensmith_core::flows::{AuthorizationRequest, CodeExchange, LoopbackListener, pkce_challenge};
use tokensmith_core::{
    CachedProvider, ClientCredentials, Scopes, TokenClient, TokenEndpoint, cache::RefreshTokenSource, store::FileStore,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let real = env("AUTHORIZE_URL").zip(env("TOKEN_URL"));
    let (authorize_url, token_url, client_id, secret) = match &real {
        Some((authorize, token)) => (
            authorize.clone(),
            token.clone(),
            env("CLIENT_ID").ok_or("CLIENT_ID is not set")?,
            env("CLIENT_SECRET").ok_or("CLIENT_SECRET is not set")?,
        ),
        None => {
            let base = demo_server().await?;
            (format!("{base}/authorize"), format!("{base}/token"), "demo-app".to_owned(), "demo-secret".to_owned())
        }
    };

    // The provider: the token endpoint's dialect (RFC 6749 here), refreshing through a file store.
    let store_path = std::env::temp_dir().join(format!("tokensmith-authcode-example-{}.json", std::process::id()));
    let endpoint = TokenEndpoint::new(token_url.parse()?);
    let client =
        TokenClient::builder("example", endpoint, ClientCredentials::new(client_id.as_str(), secret)).build()?;
    let provider = CachedProvider::builder(RefreshTokenSource::new(client, Scopes::empty()))
        .store(Arc::new(FileStore::new(&store_path)))
        .build();
    provider.check_store().await?; // the code is spent by the exchange: fail before asking the user

    // 1. The authorization URL, with a fresh state and PKCE verifier, redirecting to the listener.
    let listener = LoopbackListener::bind(if real.is_some() { 8765 } else { 0 })?;
    let pending = AuthorizationRequest::new(authorize_url.parse()?, client_id)
        .redirect_uri(listener.redirect_uri())
        .scopes(Scopes::parse(&env("SCOPE").unwrap_or_else(|| "read".to_owned())))
        .start();
    let callback = tokio::spawn(listener.wait_for(&pending, Duration::from_secs(300)));
    println!("open {}", pending.url());

    // 2. The user's part. Against the demo server a client follows the redirects, as a browser would.
    if real.is_none() {
        reqwest::get(pending.url().as_str()).await?.error_for_status()?;
    }
    let callback = callback.await??;

    // 3. The code, exchanged once; the tokens are in the file when this returns.
    let token = CodeExchange::saving_to(&provider).complete(&pending, &callback).await?;
    println!("authorized: a token for {:?}, with a refresh token: {}", token.scopes(), token.refresh_token().is_some());

    // 4. Later: the provider refreshes with the stored refresh token (forced here), keeping the
    //    rotated one in the file.
    provider.invalidate(&token);
    let refreshed = provider.token().await?;
    let rotated = match (token.refresh_token(), refreshed.refresh_token()) {
        (Some(old), Some(new)) => !old.same_as(new),
        _ => false,
    };
    println!("refreshed: a new access token: {}; refresh token rotated: {rotated}", !refreshed.same_token(&token));
    let _ = std::fs::remove_file(&store_path);
    Ok(())
}

/// What the demo server remembers: codes (with their challenge and redirect URI) and live refresh tokens.
#[derive(Default)]
struct Demo {
    codes: HashMap<String, (String, String)>,
    refresh_tokens: Vec<String>,
    issued: u32,
}

type Shared = Arc<Mutex<Demo>>;

/// Starts the demo authorization server on a free port; returns its base URL.
async fn demo_server() -> std::io::Result<String> {
    let app = axum::Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(Shared::default());
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", socket.local_addr()?);
    tokio::spawn(async move { axum::serve(socket, app).await });
    Ok(base)
}

/// Approves at once: redirects to `redirect_uri` with a new code and the `state`.
async fn authorize(State(demo): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(redirect), Some(state), Some(challenge)) =
        (q.get("redirect_uri"), q.get("state"), q.get("code_challenge"))
    else {
        return (axum::http::StatusCode::BAD_REQUEST, "redirect_uri, state and code_challenge are required")
            .into_response();
    };
    let Ok(mut target) = url::Url::parse(redirect) else {
        return (axum::http::StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let mut demo = demo.lock().unwrap_or_else(|e| e.into_inner());
    demo.issued = demo.issued.saturating_add(1);
    let code = format!("code-{}", demo.issued);
    demo.codes.insert(code.clone(), (challenge.clone(), redirect.clone()));
    target.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
    Redirect::to(target.as_str()).into_response()
}

/// The token endpoint: a code once (with the right verifier and redirect URI), or a live refresh
/// token once (it rotates).
async fn token(State(demo): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut demo = demo.lock().unwrap_or_else(|e| e.into_inner());
    let field = |name: &str| f.get(name).cloned().unwrap_or_default();
    let granted = match field("grant_type").as_str() {
        "authorization_code" => demo.codes.remove(&field("code")).is_some_and(|(challenge, redirect)| {
            pkce_challenge(&field("code_verifier")) == challenge && redirect == field("redirect_uri")
        }),
        "refresh_token" => {
            let before = demo.refresh_tokens.len();
            let presented = field("refresh_token");
            demo.refresh_tokens.retain(|t| *t != presented);
            demo.refresh_tokens.len() < before
        }
        _ => false,
    };
    if !granted {
        let body = serde_json::json!({"error": "invalid_grant"});
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    demo.issued = demo.issued.saturating_add(1);
    let refresh = format!("refresh-{}", demo.issued);
    demo.refresh_tokens.push(refresh.clone());
    axum::Json(serde_json::json!({
        "access_token": format!("access-{}", demo.issued),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh,
        "scope": "read",
    }))
    .into_response()
}
