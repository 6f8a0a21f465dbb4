#!/usr/bin/env bash
# Weight of a service on the tokensmith facade against the same service on the `oauth2` crate
# (issue 21, item 9; figures in docs/performance.md, "Weight: build time and binary size").
#
#   scripts/measure-weight.sh [WORKDIR] [ROUNDS]      (WEIGHT_SKIP_DEFAULT=1: leave out facade-default)
#
# Writes three throwaway crates under WORKDIR (default /tmp/tokensmith-weight), outside the workspace:
#   facade-light    tokensmith, default-features = false, features = ["generic-django", "rustls-ring"]
#                   (one provider, rustls on ring, no HTTP/2, no custom/interactive/toml: configured by
#                   TOKENSMITH_* variables)
#   facade-default  tokensmith with its default features
#   oauth2          oauth2 5 (reqwest 0.12 + rustls/ring) with a hand-written RwLock<Option<(token, expiry)>> cache
# all three an axum 0.8 service on tokio with one route that fetches data with a client-credentials token.
# Then builds each from an empty target dir (`cargo build --release`, dependencies fetched beforehand, so
# no download is timed), light and oauth2 alternately ROUNDS times (default 2), facade-default once, and
# prints wall time, CPU time (user + sys, the fair figure on a shared machine), the binary's size
# unstripped and stripped, and the number of crates. Not run by CI. Needs /usr/bin/time (GNU time).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/tokensmith-weight}"
rounds="${2:-2}"
mkdir -p "$work"
export CARGO_INCREMENTAL=0

service_main_facade='use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokensmith::AuthorizedClient;

struct App {
    client: AuthorizedClient,
    upstream: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The provider and its keys from TOKENSMITH_* variables (provider = "generic-django", ...).
    let provider = tokensmith::from_env()?;
    let upstream = std::env::var("UPSTREAM_URL")?;
    let app = Arc::new(App { client: AuthorizedClient::new(provider), upstream });
    let router = Router::new().route("/data", get(data)).with_state(app);
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    axum::serve(tokio::net::TcpListener::bind(listen).await?, router).await?;
    Ok(())
}

async fn data(State(app): State<Arc<App>>) -> Result<String, (StatusCode, String)> {
    let response = app
        .client
        .send(app.client.get(&app.upstream))
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, format!("upstream: {e}")))?;
    response.text().await.map_err(|e| (StatusCode::BAD_GATEWAY, format!("upstream: {e}")))
}
'

service_main_oauth2='use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, TokenResponse, TokenUrl, reqwest};
use tokio::sync::RwLock;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

struct App {
    oauth: Client,
    http: reqwest::Client,
    cache: RwLock<Option<(String, Instant)>>,
    upstream: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let token_url = std::env::var("TOKEN_URL")?;
    let oauth = BasicClient::new(ClientId::new(std::env::var("CLIENT_ID")?))
        .set_client_secret(ClientSecret::new(std::env::var("CLIENT_SECRET")?))
        .set_auth_uri(AuthUrl::new(token_url.clone())?)
        .set_token_uri(TokenUrl::new(token_url)?);
    // No redirects on the token request (the oauth2 crate'"'"'s advice against SSRF).
    let http = reqwest::ClientBuilder::new().redirect(reqwest::redirect::Policy::none()).build()?;
    let upstream = std::env::var("UPSTREAM_URL")?;
    let app = Arc::new(App { oauth, http, cache: RwLock::new(None), upstream });
    let router = Router::new().route("/data", get(data)).with_state(app);
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    axum::serve(tokio::net::TcpListener::bind(listen).await?, router).await?;
    Ok(())
}

impl App {
    /// The cached token while it has more than 60 s left, else a new one (checked again under the write lock).
    async fn token(&self) -> Result<String, BoxError> {
        let margin = Duration::from_secs(60);
        if let Some((token, expiry)) = &*self.cache.read().await {
            if Instant::now() + margin < *expiry {
                return Ok(token.clone());
            }
        }
        let mut cache = self.cache.write().await;
        if let Some((token, expiry)) = &*cache {
            if Instant::now() + margin < *expiry {
                return Ok(token.clone());
            }
        }
        let response = self.oauth.exchange_client_credentials().request_async(&self.http).await?;
        let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3600));
        let token = response.access_token().secret().clone();
        *cache = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }
}

async fn data(State(app): State<Arc<App>>) -> Result<String, (StatusCode, String)> {
    let token = app.token().await.map_err(|e| (StatusCode::BAD_GATEWAY, format!("token: {e}")))?;
    let response = app
        .http
        .get(&app.upstream)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, format!("upstream: {e}")))?;
    response.text().await.map_err(|e| (StatusCode::BAD_GATEWAY, format!("upstream: {e}")))
}
'

# write_crate NAME MAIN DEPENDENCY-LINE
write_crate() {
    mkdir -p "$work/$1/src"
    cat >"$work/$1/Cargo.toml" <<EOF
[package]
name = "weight-$1"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
$3
axum = "0.8"
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }

[workspace]
EOF
    printf '%s' "$2" >"$work/$1/src/main.rs"
    (cd "$work/$1" && cargo fetch -q)
}

write_crate facade-light "$service_main_facade" \
    "tokensmith = { path = \"$repo/crates/tokensmith\", default-features = false, features = [\"generic-django\", \"rustls-ring\"] }"
write_crate facade-default "$service_main_facade" "tokensmith = { path = \"$repo/crates/tokensmith\" }"
write_crate oauth2 "$service_main_oauth2" \
    'oauth2 = { version = "5", default-features = false, features = ["reqwest", "rustls-tls"] }'

# measure NAME: one clean release build into $work/NAME/target; prints one row.
measure() {
    local dir="$work/$1" log="$work/$1.build.log"
    rm -rf "$dir/target"
    (cd "$dir" && /usr/bin/time -v cargo build --release --locked) >"$log" 2>&1
    local user sys wall bin size stripped units crates
    user=$(awk -F': ' '/User time/ {print $2}' "$log")
    sys=$(awk -F': ' '/System time/ {print $2}' "$log")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    bin="$dir/target/release/weight-$1"
    size=$(stat -c %s "$bin")
    strip -o "$dir/target/stripped" "$bin"
    stripped=$(stat -c %s "$dir/target/stripped")
    units=$(grep -c '^ *Compiling ' "$log")
    crates=$(cd "$dir" && cargo tree -e normal --prefix none --offline | sed 's/ (\*)$//' | sort -u | wc -l)
    printf '%-15s wall %8s  cpu %7.1f s (user %s + sys %s)  binary %5.2f MiB, stripped %5.2f MiB  compiled %3d crates, %3d in `cargo tree -e normal`\n' \
        "$1" "$wall" "$(echo "$user + $sys" | bc)" "$user" "$sys" \
        "$(echo "scale=2; $size / 1048576" | bc)" "$(echo "scale=2; $stripped / 1048576" | bc)" "$units" "$crates"
}

for _ in $(seq "$rounds"); do
    measure facade-light
    measure oauth2
done
[ -n "${WEIGHT_SKIP_DEFAULT:-}" ] || measure facade-default
