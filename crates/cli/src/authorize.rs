//! `tokensmith authorize`: the authorization code flow on a loopback listener (WhiteBIT's own, or
//! core's generic flow for any server), or the device grant.

use clap::Args;
use tokensmith::cache::RefreshTokenSource;
use tokensmith::config::{Config, StoreConfig};
use tokensmith::flows::{AuthorizationRequest, CodeExchange, FlowClient, LoopbackListener};
use tokensmith::support::parse_seconds_setting;
use tokensmith::{AccessToken, CachedProvider, Error, Result, Scopes, interactive};

use crate::{ClientArgs, FlowArgs, ProviderArgs};

#[derive(Debug, Args)]
pub(crate) struct AuthorizeArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    flow: FlowArgs,
    /// Run the device authorization grant (RFC 8628) instead: print the verification URI and the
    /// user code, poll the token endpoint until the user approves, save the tokens (custom and
    /// generic-django providers).
    #[arg(long, conflicts_with_all = ["redirect_uri", "pkce"])]
    device: bool,
    /// The redirect URI registered for the client; it must be http://127.0.0.1:PORT/callback (the
    /// listener binds PORT; port 0 or no port picks a free one). Default: http://127.0.0.1:<free port>/callback.
    #[arg(long, value_name = "URI")]
    redirect_uri: Option<String>,
    /// Send a PKCE (S256) challenge. WhiteBIT: its PKCE partner flow (a 4-hour token and no refresh
    /// token).
    #[arg(long)]
    pkce: bool,
    /// Do not try to open a browser (the URL is always printed).
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the browser to come back (or, --device, at most for the user), in seconds
    /// (1 to 86400).
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
    args.client.apply(&mut config);
    args.flow.apply(&mut config);
    if config.provider.is_none() {
        config.provider = Some("whitebit".to_owned());
    }
    let name = config.provider_name()?.to_owned();
    if args.device || name != "whitebit" {
        return generic(args, config, timeout).await;
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

/// The flows of any server (custom, generic-django): the authorization code flow through core's
/// [`AuthorizationRequest`] and [`CodeExchange`], or the device grant through [`FlowClient`]; the
/// tokens saved under the key `tokensmith token` serves.
async fn generic(args: AuthorizeArgs, config: Config, timeout: std::time::Duration) -> Result<()> {
    tokensmith::require_lasting_store(
        &config,
        "authorize saves the tokens for later runs of `tokensmith token` (give it the same store)",
    )?;
    let requested = args.redirect_uri.clone().or_else(|| config.redirect_uri.clone());
    let config = interactive::flow_config(&config).await?;
    let store = config.store.clone().unwrap_or_default();
    let (provider, _store) = interactive::refresh_provider(&config)?;
    // The code (or device code) is spent by the exchange: the store must be able to save the tokens
    // before the user is sent to consent.
    provider.check_store().await?;
    let scopes = config.scope.as_deref().map(Scopes::parse).unwrap_or_else(Scopes::empty);
    let token = if args.device {
        let url = interactive::endpoint_url(&config, "device_authorization_url", "`authorize --device`")?;
        let client = FlowClient::for_token_client(provider.source().client())
            .allow_insecure_http(config.insecure_http())
            .build()?;
        let authorization = client.request_device_authorization(&url, &scopes).await?;
        eprintln!("Open this URL on any device, enter the code below and allow access:");
        println!("{}", authorization.verification_uri());
        println!("{}", authorization.user_code());
        if let Some(complete) = authorization.verification_uri_complete() {
            eprintln!("(or open this URL, which carries the code:)");
            println!("{complete}");
        }
        let polled =
            tokio::time::timeout(timeout, client.poll_device_token(&authorization)).await.map_err(|_| {
                Error::config("timeout", format!("the user did not answer within {} s (--timeout)", timeout.as_secs()))
            })??;
        match provider.insert(polled.clone()).await {
            Ok(()) => polled,
            Err(e) => return Err(rescued(&store, &provider, e).await),
        }
    } else {
        let authorize_url = interactive::endpoint_url(&config, "authorize_url", "`authorize`")?;
        let port = match &requested {
            Some(uri) => loopback_port(uri)?,
            None => 0,
        };
        let listener = LoopbackListener::bind(port)?;
        let redirect_uri = listener.redirect_uri();
        let client_id = config.require_client_id()?.to_owned();
        let pending = AuthorizationRequest::new(authorize_url, client_id)
            .redirect_uri(redirect_uri.clone())
            .scopes(scopes)
            .pkce(args.pkce)
            .start();
        let url = pending.url().to_string();
        eprintln!("Open this URL in a browser and allow access (waiting on {redirect_uri}):");
        println!("{url}");
        if !args.no_browser {
            open_browser(&url);
        }
        let callback = listener.wait_for(&pending, timeout).await?;
        match CodeExchange::saving_to(&provider).complete(&pending, &callback).await {
            Ok(token) => token,
            Err(e @ Error::Store { .. }) => return Err(rescued(&store, &provider, e).await),
            Err(e) => return Err(e),
        }
    };
    report(&store, &token);
    Ok(())
}

/// The error to report when the store refused the new set: the set goes to a rescue file first.
async fn rescued(store: &StoreConfig, provider: &CachedProvider<RefreshTokenSource>, error: Error) -> Error {
    match provider.unsaved() {
        Some(unsaved) => crate::rescue::rescue(store, provider.key(), &unsaved, Some(error)).await,
        None => error,
    }
}

/// Says on stderr where the tokens are (never the tokens).
fn report(store: &StoreConfig, token: &AccessToken) {
    eprintln!(
        "Authorized: tokens saved in {store} (access token valid for {} s{}). Run `tokensmith token` with the same provider, client, scopes and --store to use them.",
        token.lifetime().as_secs(),
        if token.refresh_token().is_some() { ", refreshed automatically" } else { ", no refresh token" },
    );
}
