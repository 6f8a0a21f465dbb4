//! `tokensmith authorize`: the WhiteBIT authorization code flow, on a loopback listener.

use clap::Args;
use tokensmith::support::parse_seconds_setting;
use tokensmith::whitebit::LoopbackListener;
use tokensmith::{Error, Result};

use crate::ProviderArgs;

#[derive(Debug, Args)]
pub(crate) struct AuthorizeArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    /// The redirect URI registered for the client; it must be http://127.0.0.1:PORT/callback (the
    /// listener binds PORT; port 0 or no port picks a free one). Default: http://127.0.0.1:<free port>/callback.
    #[arg(long, value_name = "URI")]
    redirect_uri: Option<String>,
    /// Use the PKCE (S256) partner flow: a 4-hour token and no refresh token.
    #[arg(long)]
    pkce: bool,
    /// Do not try to open a browser (the URL is always printed).
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the browser to come back, in seconds (1 to 86400).
    #[arg(long, value_name = "SECS", default_value = "300")]
    timeout: String,
}

/// The seconds `--timeout` may be: up to a day.
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;

/// The port of a loopback redirect URI (`0` when it names none).
fn loopback_port(uri: &str) -> Result<u16> {
    let url = url_parse(uri)?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "http" || !loopback {
        return Err(Error::config(
            "redirect_uri",
            "the redirect URI must be a loopback http URI such as http://127.0.0.1:8765/callback, where tokensmith listens",
        ));
    }
    Ok(url.port().unwrap_or(0))
}

fn url_parse(uri: &str) -> Result<url::Url> {
    url::Url::parse(uri).map_err(|e| Error::config("redirect_uri", format!("`{uri}` is not a valid URL ({e})")))
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("(could not start `{opener}`; open the URL yourself)");
    }
}

pub(crate) async fn run(args: AuthorizeArgs) -> Result<()> {
    let timeout = parse_seconds_setting("--timeout", &args.timeout, TIMEOUT_SECS)?;
    let mut config = args.provider.config()?;
    if config.provider.is_none() {
        config.provider = Some("whitebit".to_owned());
    }
    let name = config.provider_name()?.to_owned();
    if name != "whitebit" {
        return Err(Error::config(
            "provider",
            format!(
                "`authorize` runs the authorization code flow, which only the whitebit provider uses, not `{name}`"
            ),
        ));
    }
    // The tokens must outlive this process: in a file or in Redis, where `tokensmith token` (or a
    // service with the same store) finds them.
    tokensmith::require_lasting_store(
        &config,
        "authorize saves the tokens for later runs of `tokensmith token` (give it the same store)",
    )?;
    let store = config.store.clone().unwrap_or_default();
    let requested = args.redirect_uri.clone().or_else(|| config.redirect_uri.clone());
    let port = match &requested {
        Some(uri) => loopback_port(uri)?,
        None => 0,
    };
    let listener = LoopbackListener::bind(port)?;
    let redirect_uri = listener.redirect_uri();
    let provider = tokensmith::whitebit_builder(&config)?.redirect_uri(&redirect_uri).build()?;
    // The code the consent yields is spent by the exchange: the store must be able to save the
    // tokens before the user is sent to consent.
    provider.cache().check_store().await?;
    let pending = if args.pkce { provider.authorize_pkce() } else { provider.authorize() };
    let url = pending.url().to_string();
    eprintln!("Open this URL in a browser and allow access (waiting on {redirect_uri}):");
    println!("{url}");
    if !args.no_browser {
        open_browser(&url);
    }
    let query = listener.wait_for(&pending, timeout).await?;
    let token = match provider.complete(&pending, &query).await {
        Ok(token) => token,
        Err(e @ Error::Store { .. }) => match provider.cache().unsaved() {
            Some(unsaved) => return Err(crate::rescue::rescue(&store, provider.cache().key(), &unsaved, Some(e)).await),
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    eprintln!(
        "Authorized: tokens saved in {store} (access token valid for {} s{}). Run `tokensmith token --provider whitebit` with the same --store to use them.",
        token.lifetime().as_secs(),
        if token.refresh_token().is_some() { ", refreshed automatically" } else { ", no refresh token" },
    );
    Ok(())
}
