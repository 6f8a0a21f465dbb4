//! The quickstart: four providers, one facade, no network and no credentials.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! It starts the sandbox (a local emulator of the four dialects) in-process and, for each provider, builds a
//! provider through the `tokensmith` facade from a configuration, gets a token, calls that provider's
//! protected endpoint with it and prints one row. WhiteBIT acts on behalf of a user, so it first runs the
//! authorization code flow (the consent page is clicked programmatically) and keeps the tokens in a file
//! store, from which the facade then serves them.

use tokensmith::config::{Config, Secret, StoreConfig};
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{AccessToken, AuthorizedClient, SharedTokenProvider};
use tokensmith_sandbox::{DEFAULT_WHITEBIT_REDIRECT_URI, Dialect, Sandbox};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let sandbox = Sandbox::start().await?;
    println!("sandbox listening on http://{}\n", sandbox.addr());
    let store_dir = std::env::temp_dir().join(format!("tokensmith-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&store_dir)?;

    let mut rows = Vec::new();
    for dialect in Dialect::ALL {
        let config = config_for(&sandbox, dialect, &store_dir);
        if dialect == Dialect::Whitebit {
            authorize_whitebit(&config).await?;
        }
        // The facade picks the provider named in the configuration.
        let provider: SharedTokenProvider = tokensmith::from_config(&config)?;
        let token = provider.token().await?;
        let status = protected_call(&sandbox, dialect, provider).await?;
        rows.push(row(dialect, &token, status));
    }
    let _ = std::fs::remove_dir_all(&store_dir);

    print_table(&rows);
    sandbox.shutdown().await;
    if rows.iter().any(|r| r[5] != "200") {
        return Err("a protected call failed".into());
    }
    Ok(())
}

/// The configuration a service would keep in a TOML file or in `TOKENSMITH_*` variables. Here the sandbox's
/// demo secret is given by value; in production use `Secret::Env("VAR")` or `Secret::File(path)`.
fn config_for(sandbox: &Sandbox, dialect: Dialect, store_dir: &std::path::Path) -> Config {
    let client = sandbox.credentials(dialect);
    let mut config = Config::default();
    config.provider = Some(dialect.name().to_owned());
    config.base_url = Some(sandbox.base_url(dialect));
    config.client_id = Some(client.client_id);
    config.client_secret = Some(Secret::value(client.client_secret));
    match dialect {
        Dialect::GenericDjango => config.scope = Some("read write".to_owned()),
        Dialect::Whitebit => {
            config.redirect_uri = Some(DEFAULT_WHITEBIT_REDIRECT_URI.to_owned());
            config.store = Some(StoreConfig::File { path: store_dir.join("whitebit.json") });
        }
        _ => {}
    }
    config
}

/// Runs WhiteBIT's authorization code flow against the sandbox: the user's part (open the URL, click
/// Allow) is played by an HTTP client; the app's part (check `state`, exchange the code, save the tokens
/// in the file store) is the provider's.
async fn authorize_whitebit(config: &Config) -> Result<(), BoxError> {
    let provider = tokensmith::whitebit_builder(config)?.build()?;
    let pending = provider.authorize();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let callback = click_allow(&browser, pending.url().as_str()).await?;
    let query = callback.query().unwrap_or_default().to_owned();
    provider.complete(&pending, &query).await?;
    Ok(())
}

/// GETs the consent page, posts its form with `decision=allow` and returns where the provider redirects.
async fn click_allow(browser: &reqwest::Client, authorize_url: &str) -> Result<url::Url, BoxError> {
    let page_url = url::Url::parse(authorize_url)?;
    let page = browser.get(page_url.clone()).send().await?.text().await?;
    let action = attribute_after(&page, "<form", "action").ok_or("the consent page has no form")?;
    let id = attribute_after(&page, "name=\"authorization_id\"", "value").ok_or("the consent form has no id")?;
    let answer = browser
        .post(page_url.join(&action)?)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("authorization_id", &id)
                .append_pair("decision", "allow")
                .finish(),
        )
        .send()
        .await?;
    let location = answer.headers().get("location").ok_or("the consent answer is not a redirect")?.to_str()?;
    Ok(url::Url::parse(location)?)
}

/// The value of `attribute="..."` in the first tag that follows `marker` (enough for the sandbox's page).
fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let rest = &html[html.find(marker)?..];
    let needle = format!("{attribute}=\"");
    let start = rest.find(&needle)? + needle.len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

/// Calls the dialect's protected endpoint with the provider's token (via `AuthorizedClient`, which puts
/// `Authorization: Bearer ...` on the request and retries once on a 401).
async fn protected_call(sandbox: &Sandbox, dialect: Dialect, provider: SharedTokenProvider) -> Result<u16, BoxError> {
    let client = AuthorizedClient::new(provider);
    let response = client.send(client.get(sandbox.protected_url(dialect))).await?;
    Ok(response.status().as_u16())
}

fn row(dialect: Dialect, token: &AccessToken, status: u16) -> [String; 6] {
    let secret = token.secret().expose_secret();
    let masked = format!("{}…({} chars)", secret.chars().take(4).collect::<String>(), secret.chars().count());
    let scope = if token.scopes().is_empty() { "-".to_owned() } else { token.scopes().join(" ") };
    [
        dialect.name().to_owned(),
        token.token_type().to_owned(),
        masked,
        format!("{} s", token.expires_in(std::time::SystemTime::now()).as_secs()),
        scope,
        status.to_string(),
    ]
}

fn print_table(rows: &[[String; 6]]) {
    let header = ["provider", "token type", "token (masked)", "expires in", "scope", "protected call"];
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header);
    line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
}
