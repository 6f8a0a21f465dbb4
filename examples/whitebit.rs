//! The whole WhiteBIT authorization code flow against the local sandbox: authorize, consent (clicked
//! programmatically, as if the user pressed Allow), receive the callback on a loopback listener,
//! exchange the code, call the API, refresh with the rotating refresh token, and pick the tokens up
//! again from the file store as a restarted program would.
//!
//! ```text
//! cargo run --example whitebit
//! ```
//!
//! With `TOKENSMITH_WHITEBIT_CLIENT_ID` and `TOKENSMITH_WHITEBIT_CLIENT_SECRET` set it runs against
//! WhiteBIT instead (`TOKENSMITH_WHITEBIT_BASE_URL` for the EU): it prints the authorization URL for
//! you to open, and waits up to 5 minutes for your browser to come back to
//! `http://127.0.0.1:8765/callback` (register that redirect URI for your client).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, AuthorizedClient, TokenProvider, TokenStore, store::FileStore};
use tokensmith_sandbox::{Dialect, Sandbox};
use tokensmith_whitebit::{LoopbackListener, WhitebitBuilder, WhitebitProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let real = std::env::var("TOKENSMITH_WHITEBIT_CLIENT_ID").is_ok_and(|v| !v.trim().is_empty());
    let store_path = std::env::temp_dir().join(format!("tokensmith-whitebit-example-{}.json", std::process::id()));
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&store_path));

    // 1. A loopback listener for the callback (RFC 8252 §7.3), and the provider redirecting to it.
    let listener = LoopbackListener::bind(if real { 8765 } else { 0 })?;
    let redirect_uri = listener.redirect_uri();
    let (sandbox, builder) = if real {
        (None, WhitebitBuilder::from_env()?)
    } else {
        let sandbox = Sandbox::start().await?;
        let demo = sandbox.credentials(Dialect::Whitebit);
        println!("using the sandbox at {}", sandbox.base_url(Dialect::Whitebit));
        let builder = WhitebitProvider::builder()
            .base_url(sandbox.base_url(Dialect::Whitebit))
            .client_id(demo.client_id)
            .client_secret(demo.client_secret);
        (Some(sandbox), builder)
    };
    let make_provider = |builder: WhitebitBuilder| builder.redirect_uri(&redirect_uri).store(store.clone()).build();
    let provider = make_provider(builder)?;
    let base = provider.authorize_url().as_str().trim_end_matches("/auth/login").to_owned();
    let resource_url = format!("{base}/api/v4/main-account/balance");

    // 2. Send the user to the authorization URL; keep `pending` until the callback.
    let pending = provider.authorize();
    println!("authorize at: {}", pending.url());
    let user = match &sandbox {
        Some(sandbox) => Some(tokio::spawn(click_allow(sandbox.addr().to_string(), pending.url().clone()))),
        None => {
            println!("open the URL above in your browser");
            None
        }
    };

    // 3. The browser comes back to the listener; verify the callback and exchange the code.
    let callback = listener.wait_for(&pending, Duration::from_secs(300)).await?;
    if let Some(user) = user {
        user.await??;
    }
    let token = provider.complete(&pending, &callback).await?;
    println!(
        "authorized: token {} for {}s, scopes {}, refresh token {}",
        masked(&token),
        token.expires_in(SystemTime::now()).as_secs(),
        token.scopes(),
        if token.refresh_token().is_some() { "received" } else { "none" }
    );
    println!("tokens saved in {}", store_path.display());

    // 4. Call the API; the client gets tokens from the provider (and retries once on a 401).
    let api = AuthorizedClient::new(provider.clone().shared());
    let response = api.send(api.get(&resource_url)).await?;
    println!("GET {resource_url}: HTTP {}", response.status());

    // 5. Refresh: here we pretend the API rejected the token; normally the provider refreshes on its
    //    own before the 300 s are up. The refresh token rotates, and the new one is saved first.
    provider.invalidate(&token);
    let refreshed = provider.token().await?;
    println!(
        "refreshed: token {} (was {}), refresh token rotated: {}",
        masked(&refreshed),
        masked(&token),
        refresh_fingerprint(&refreshed) != refresh_fingerprint(&token)
    );

    // 6. A restarted program finds the tokens in the store, without authorizing again.
    drop(provider);
    let restarted = match &sandbox {
        Some(sandbox) => {
            let demo = sandbox.credentials(Dialect::Whitebit);
            make_provider(
                WhitebitProvider::builder()
                    .base_url(sandbox.base_url(Dialect::Whitebit))
                    .client_id(demo.client_id)
                    .client_secret(demo.client_secret),
            )?
        }
        None => make_provider(WhitebitBuilder::from_env()?)?,
    };
    let again = restarted.token().await?;
    println!("after a restart: token {} (the same: {})", masked(&again), again.same_token(&refreshed));

    let _ = std::fs::remove_file(&store_path);
    Ok(())
}

/// What the user does in the browser: opens the consent page, clicks Allow, and follows the redirect
/// back to the loopback listener.
async fn click_allow(sandbox_addr: String, url: url::Url) -> Result<(), String> {
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    let html = http.get(url).send().await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
    let action = between(&html, "action=\"", "\"").ok_or("no form on the consent page")?;
    let id = between(&html, "name=\"authorization_id\" value=\"", "\"").ok_or("no authorization id on the page")?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("authorization_id", id)
        .append_pair("decision", "allow")
        .finish();
    let answer = http
        .post(format!("http://{sandbox_addr}{action}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("the consent did not redirect")?
        .to_owned();
    let page = http.get(location).send().await.map_err(|e| e.to_string())?;
    println!("browser: the listener answered HTTP {}", page.status());
    Ok(())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = from + text[from..].find(end)?;
    Some(&text[from..to])
}

/// The first 4 characters of the token and an ellipsis: enough to tell tokens apart, useless to a thief.
fn masked(token: &AccessToken) -> String {
    let prefix: String = token.secret().expose_secret().chars().take(4).collect();
    format!("{prefix}…")
}

fn refresh_fingerprint(token: &AccessToken) -> Option<String> {
    token.refresh_token().map(|r| r.secret().expose_secret().chars().take(4).collect())
}
