//! `tokensmith`: print an OAuth 2.0 access token for scripts, authorize (any server or WhiteBIT; device grant too), revoke, run the sandbox.
//!
//! ```text
//! curl -H "Authorization: Bearer $(tokensmith token --provider probit --client-id ID --client-secret-env PROBIT_SECRET)" ...
//! ```
//!
//! See `docs/cli.md` for every flag and the exit codes: 0 success, 1 anything else, 2 usage or
//! configuration error, 3 the provider refused, 4 transport failure, 5 invalid response.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Nothing from outside (a response, a configuration, a store, a callback) may panic: arithmetic and
// indexing in product code go through checked, saturating or `get` forms (issue 15).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::indexing_slicing, clippy::unchecked_time_subtraction)
)]

mod authorize;
mod rescue;
mod revoke;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use tokensmith::cache::RefreshTokenSource;
use tokensmith::config::{CONFIG_FILE_VAR, Config, Secret, StoreConfig, StoreSpecError, warn_unknown_env_vars};
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::support::check_env_var_name;
use tokensmith::{CachedProvider, Error, Registry, interactive};

/// Exit code: a usage or configuration error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: the provider refused (an OAuth or HTTP error, or authorization is needed again).
pub const EXIT_REFUSED: u8 = 3;
/// Exit code: the request could not be sent or its response not read.
pub const EXIT_TRANSPORT: u8 = 4;
/// Exit code: the provider's answer was not a usable token response.
pub const EXIT_INVALID_RESPONSE: u8 = 5;
/// Exit code: anything else (a token store failure, ...).
pub const EXIT_OTHER: u8 = 1;

#[derive(Debug, Parser)]
#[command(name = "tokensmith", version, about = "OAuth 2.0 access tokens for scripts", long_about = None)]
struct Cli {
    /// Log more on stderr: -v info, -vv debug, -vvv trace (default: warnings and errors only;
    /// RUST_LOG, e.g. `tokensmith_core=debug`, overrides it).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, for every command's `--help`.
const EXIT_CODES: &str = "Exit codes:
  0  success
  1  anything else: the token store could not be read or written (a refreshed set it refused is in a
     rescue file named on stderr), the sandbox could not bind its port
  2  usage or configuration error (unknown flag or key, missing setting, bad URL, number out of range)
  3  the provider refused (invalid_client, invalid_grant, ...; WhiteBIT: authorize again)
  4  transport failure (connection refused, timeout, TLS, a redirect: never followed)
  5  the answer was not a usable token response";

const TOKEN_HELP: &str = "Examples:
  export PROBIT_SECRET=...
  tokensmith token --provider probit --client-id my-client --client-secret-env PROBIT_SECRET
  tokensmith token --config tokensmith.toml --json
  TOKENSMITH_CONFIG=tokensmith.toml tokensmith token --scope 'read write' --store tokens.json
  curl -H \"Authorization: Bearer $(tokensmith token --config tokensmith.toml)\" https://api.example.com/

Environment:
  TOKENSMITH_CONFIG        a TOML file read first (flags override it, variables override the file)
  TOKENSMITH_*             every configuration key (TOKENSMITH_PROVIDER, TOKENSMITH_CLIENT_ID,
                           TOKENSMITH_CLIENT_SECRET_ENV, TOKENSMITH_STORE, ...; docs/configuration.md)
  XDG_CACHE_HOME, HOME     where the per-user token cache lives (see --no-cache)
  RUST_LOG                 log filter for stderr (overrides -v)

The token alone goes to stdout; warnings and errors go to stderr, never a secret.
";

const AUTHORIZE_HELP: &str = "Examples:
  tokensmith authorize --provider whitebit --client-id ID --client-secret-env WHITEBIT_SECRET \\
      --store ~/.config/tokensmith/whitebit.json
  tokensmith token --provider whitebit --client-id ID --client-secret-env WHITEBIT_SECRET \\
      --store ~/.config/tokensmith/whitebit.json

  tokensmith authorize --provider generic-django --base-url https://auth.example.com --client-id ID \\
      --client-secret-env DJANGO_SECRET --scope read --pkce --store tokens.json
  tokensmith authorize --provider custom --issuer https://auth.example.com --client-id ID \\
      --client-secret-env SECRET --pkce --store tokens.json
  tokensmith authorize --device --provider custom --device-authorization-url URL --token-url URL \\
      --client-id ID --scope read --store tokens.json

The URL to open is printed on stdout, one line (--device: the verification URI, the user code, and
the complete verification URI when the server sends one, one per line); the tokens are saved in
--store (a file or Redis) before success is reported, and `tokensmith token` with the same
provider, client, scopes and --store serves and refreshes them.

Environment:
  TOKENSMITH_CONFIG, TOKENSMITH_*   as for `tokensmith token` (docs/configuration.md)
";

const REVOKE_HELP: &str = "Examples:
  tokensmith revoke --provider generic-django --base-url https://auth.example.com --client-id ID \\
      --client-secret-env DJANGO_SECRET --store tokens.json
  tokensmith revoke --provider custom --issuer https://auth.example.com --client-id ID --store tokens.json

Give the same provider, client, scopes and --store as to `tokensmith authorize`. Afterwards
`tokensmith token` with that store exits 3 (authorize again).

Environment:
  TOKENSMITH_CONFIG, TOKENSMITH_*   as for `tokensmith token` (docs/configuration.md)
";

const SANDBOX_HELP: &str = "Examples:
  tokensmith sandbox --port 8080
  tokensmith sandbox --port 0 --fault probit:/token=status:503*2 --fault ruby-style:/oauth/token=latency_ms:500

While it runs: GET /_sandbox/counts, GET /_sandbox/requests[?dialect=NAME], POST and DELETE
/_sandbox/faults (docs/cli.md).
";

#[derive(Debug, Subcommand)]
enum Command {
    /// Print an access token (alone on stdout, or as JSON with --json).
    #[command(after_help = format!("{TOKEN_HELP}\n{EXIT_CODES}"))]
    Token(TokenArgs),
    /// Run the authorization code flow (WhiteBIT, or any server: --provider custom or generic-django),
    /// or the device grant (--device), and save the tokens in a file or Redis store.
    #[command(after_help = format!("{AUTHORIZE_HELP}\n{EXIT_CODES}"))]
    Authorize(authorize::AuthorizeArgs),
    /// Revoke the tokens `authorize` saved (refresh token, then access token; RFC 7009) and remove
    /// them from the store.
    #[command(after_help = format!("{REVOKE_HELP}\n{EXIT_CODES}"))]
    Revoke(revoke::RevokeArgs),
    /// Run the local sandbox of the four provider dialects and print its URLs and demo credentials.
    #[command(after_help = format!("{SANDBOX_HELP}\n{EXIT_CODES}"))]
    Sandbox(SandboxArgs),
}

/// Where the provider configuration comes from: a file, the environment, then these flags (each
/// overriding the one before).
#[derive(Debug, Args)]
pub(crate) struct ProviderArgs {
    /// A TOML configuration file (default: the file named by TOKENSMITH_CONFIG, if any).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The provider: probit, generic-django, ruby-style, whitebit or custom.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// The provider's base URL.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The token endpoint's URL (overrides the provider's default endpoint).
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// The client id.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The name of an environment variable holding the client secret (never the secret itself).
    #[arg(long, value_name = "VAR", conflicts_with = "client_secret_file")]
    client_secret_env: Option<String>,
    /// A file holding the client secret.
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<PathBuf>,
    /// Where tokens are kept: a JSON file that keeps them between runs (needed by whitebit),
    /// `redis://host:port/db` (or `rediss://`, `redis+unix://`) to share them (and their refreshes)
    /// with a fleet of processes, or `memory`. A Redis URL with a password belongs in --store-env or
    /// --store-file, not on the command line.
    #[arg(long, value_name = "FILE|redis://...|memory", conflicts_with_all = ["store_env", "store_file"])]
    store: Option<String>,
    /// The name of an environment variable holding what --store takes (e.g. a Redis URL with its
    /// password), so that the password stays off the command line.
    #[arg(long, value_name = "VAR", conflicts_with = "store_file")]
    store_env: Option<String>,
    /// A file holding a Redis URL for the store (e.g. with its password) on one line, so that the
    /// password stays off the command line; `memory` is taken too. For a file store, pass --store FILE.
    #[arg(long, value_name = "PATH")]
    store_file: Option<PathBuf>,
    /// Allow plain http:// to hosts that are not loopback.
    #[arg(long)]
    allow_insecure_http: bool,
}

/// What shapes a client-credentials request (`tokensmith token` only: `authorize` runs WhiteBIT's
/// flow, whose dialect is fixed).
#[derive(Debug, Args)]
struct DialectArgs {
    /// Scopes to request, separated by spaces or commas.
    #[arg(long, value_name = "SCOPES")]
    scope: Option<String>,
    /// How credentials are sent: basic, basic-raw, body or none.
    #[arg(long, value_name = "STYLE")]
    credential_style: Option<String>,
    /// The request body format: form or json (custom provider).
    #[arg(long, value_name = "FORMAT")]
    body_format: Option<String>,
    /// A JSON pointer to the token fields in the response, e.g. /data (custom provider).
    #[arg(long, value_name = "POINTER")]
    envelope: Option<String>,
}

impl DialectArgs {
    /// Applies the flags over `config`.
    fn apply(&self, config: &mut Config) {
        for (slot, flag) in [
            (&mut config.scope, &self.scope),
            (&mut config.credential_style, &self.credential_style),
            (&mut config.body_format, &self.body_format),
            (&mut config.envelope, &self.envelope),
        ] {
            if let Some(value) = flag {
                *slot = Some(value.clone());
            }
        }
    }
}

/// The scopes and credential style of `authorize` and `revoke` (any server; WhiteBIT fixes both).
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// Scopes to request, separated by spaces or commas (custom, generic-django).
    #[arg(long, value_name = "SCOPES")]
    scope: Option<String>,
    /// How credentials are sent: basic, basic-raw, body, none, private-key-jwt or client-secret-jwt
    /// (custom, generic-django).
    #[arg(long, value_name = "STYLE")]
    credential_style: Option<String>,
}

impl ClientArgs {
    /// Applies the flags over `config`.
    pub(crate) fn apply(&self, config: &mut Config) {
        for (slot, flag) in [(&mut config.scope, &self.scope), (&mut config.credential_style, &self.credential_style)] {
            if let Some(value) = flag {
                *slot = Some(value.clone());
            }
        }
    }
}

/// The endpoints and keys of the user-facing flows (custom and generic-django providers).
#[derive(Debug, Args)]
pub(crate) struct FlowArgs {
    /// The authorization server's issuer URL: the endpoints come from its metadata (RFC 8414, then
    /// OpenID Connect discovery) where no URL flag sets them.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The authorization endpoint (`authorize`; generic-django default {base_url}/o/authorize/).
    #[arg(long, value_name = "URL")]
    authorize_url: Option<String>,
    /// The device authorization endpoint (`authorize --device`; generic-django default
    /// {base_url}/o/device-authorization/).
    #[arg(long, value_name = "URL")]
    device_authorization_url: Option<String>,
    /// The revocation endpoint (`revoke`; generic-django default {base_url}/o/revoke_token/).
    #[arg(long, value_name = "URL")]
    revocation_url: Option<String>,
    /// The PEM private key of `--credential-style private-key-jwt` (RS256 or ES256).
    #[arg(long, value_name = "PEM")]
    private_key_file: Option<String>,
    /// The key id (`kid`) of `--credential-style private-key-jwt` assertions.
    #[arg(long, value_name = "KID")]
    key_id: Option<String>,
}

impl FlowArgs {
    /// Applies the flags over `config`.
    pub(crate) fn apply(&self, config: &mut Config) {
        for (slot, flag) in [
            (&mut config.issuer, &self.issuer),
            (&mut config.authorize_url, &self.authorize_url),
            (&mut config.device_authorization_url, &self.device_authorization_url),
            (&mut config.revocation_url, &self.revocation_url),
            (&mut config.private_key_file, &self.private_key_file),
            (&mut config.key_id, &self.key_id),
        ] {
            if let Some(value) = flag {
                *slot = Some(value.clone());
            }
        }
    }
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    #[command(flatten)]
    dialect: DialectArgs,
    #[command(flatten)]
    flow: FlowArgs,
    /// The grant: client_credentials (default), or authorization_code / device_code to serve and
    /// refresh what `tokensmith authorize` saved in --store (the default too when --store holds a
    /// refresh token for this client).
    #[arg(long, value_name = "GRANT")]
    grant: Option<String>,
    /// Print one JSON object: access_token, token_type, expires_in, scope.
    #[arg(long)]
    json: bool,
    /// Keep no token between runs. Without --store (or TOKENSMITH_STORE, or a store in the
    /// configuration), tokens are kept in a per-user cache, $XDG_CACHE_HOME/tokensmith/tokens.json
    /// (else ~/.cache/tokensmith/tokens.json; directory 0700, file 0600), one entry per provider,
    /// token URL, client id and scopes, so that runs in a row send one token request.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Debug, Args)]
struct SandboxArgs {
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A fault to inject before the first request, as DIALECT:PATH=FAULT[*TIMES], e.g.
    /// `probit:/token=status:503*2` (repeatable). FAULT: status:CODE, 429[:RETRY_AFTER], latency_ms:MS,
    /// reset, truncated, malformed_json, html:CODE, error_in_200, oversized:BYTES, redirect,
    /// expires_in:missing|zero|negative|huge|string, missing_access_token, lowercase_token_type.
    /// While it runs, POST /_sandbox/faults injects more; GET /_sandbox/counts and /_sandbox/requests
    /// show what it received.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<tokensmith_sandbox::FaultSpec>,
}

impl ProviderArgs {
    /// The configuration: file (--config or TOKENSMITH_CONFIG), then the environment, then the flags.
    pub(crate) fn config(&self) -> tokensmith::Result<Config> {
        let env = |name: &str| std::env::var(name).ok();
        warn_unknown_env_vars();
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => match env(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
                Some(path) => Config::from_file(path)?,
                None => Config::default(),
            },
        };
        config.merge_env(env)?;
        let set = |slot: &mut Option<String>, flag: &Option<String>| {
            if let Some(v) = flag {
                *slot = Some(v.clone());
            }
        };
        set(&mut config.provider, &self.provider);
        set(&mut config.base_url, &self.base_url);
        set(&mut config.token_url, &self.token_url);
        set(&mut config.client_id, &self.client_id);
        if let Some(var) = &self.client_secret_env {
            check_env_var_name("--client-secret-env", var)?;
            config.client_secret = Some(Secret::Env(var.clone()));
        }
        if let Some(path) = &self.client_secret_file {
            config.client_secret = Some(Secret::File(path.clone()));
        }
        if let Some(store) = self.store()? {
            config.store = Some(store);
        }
        if self.allow_insecure_http {
            config.allow_insecure_http = Some(true);
        }
        Ok(config)
    }
}

impl ProviderArgs {
    /// The store --store, --store-env or --store-file gives, if one of them is set: each goes through
    /// the facade's own check ([`StoreConfig::try_parse`], as `TOKENSMITH_STORE` does), and errors
    /// name the flag, never the spec (it may hold a Redis password).
    fn store(&self) -> tokensmith::Result<Option<StoreConfig>> {
        if let Some(var) = &self.store_env {
            check_env_var_name("--store-env", var)?;
            let Some(spec) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
                return Err(Error::config(
                    "--store-env",
                    format!(
                        "the environment variable `{var}` that should hold the store (a Redis URL, a file path or `memory`) is not set or empty; export it"
                    ),
                ));
            };
            return StoreConfig::try_parse(&spec)
                .map(Some)
                .map_err(|e| Error::config("--store-env", format!("in `{var}`: {e}")));
        }
        if let Some(path) = &self.store_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::config(
                    "--store-file",
                    format!("cannot read `{}` ({e}); check the path and its permissions", path.display()),
                )
            })?;
            // Never echo the content: it holds a password, or (the file store's own file given by
            // mistake) tokens. Only a Redis URL or `memory` is taken: content that reads as a file
            // path is most likely such a mistake, and a path needs no hiding (--store PATH).
            return match StoreConfig::try_parse(&text) {
                Ok(StoreConfig::File { .. }) | Err(StoreSpecError::ControlCharacter) => Err(Error::config(
                    "--store-file",
                    format!(
                        "`{}` does not hold a Redis URL (redis://, rediss:// or redis+unix://) or `memory` on one line; --store-file is for a Redis URL kept off the command line, for a file store pass --store PATH",
                        path.display()
                    ),
                )),
                Ok(store) => Ok(Some(store)),
                Err(e) => Err(Error::config("--store-file", format!("in `{}`: {e}", path.display()))),
            };
        }
        self.store.as_deref().map(StoreConfig::try_parse).transpose().map_err(|e| e.into_config_error("--store"))
    }
}

/// The exit code for an error: see the crate docs.
pub(crate) fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Config { .. } => EXIT_CONFIG,
        Error::OAuth(_) | Error::Http(_) | Error::ReauthorizationRequired { .. } | Error::Callback(_) => EXIT_REFUSED,
        Error::Transport(_) => EXIT_TRANSPORT,
        Error::InvalidResponse { .. } => EXIT_INVALID_RESPONSE,
        _ => EXIT_OTHER,
    }
}

/// Prints `error` as one line on stderr and returns its exit code.
pub(crate) fn fail(error: &Error) -> ExitCode {
    let mut text = error.to_string();
    if matches!(error, Error::ReauthorizationRequired { .. }) {
        text.push_str(
            " (run `tokensmith authorize` again with the same provider, client, scopes and --store, e.g. `tokensmith authorize --provider whitebit ... --store FILE`)",
        );
    }
    eprintln!("tokensmith: error: {}", text.split_whitespace().collect::<Vec<_>>().join(" "));
    ExitCode::from(exit_code(error))
}

async fn token(args: TokenArgs) -> Result<(), Error> {
    let mut config = args.provider.config()?;
    args.dialect.apply(&mut config);
    args.flow.apply(&mut config);
    if let Some(grant) = &args.grant {
        config.grant = Some(grant.clone());
    }
    interactive::check_grant(&config)?;
    if config.store.is_none() && !args.no_cache {
        config.store = user_cache().map(|path| StoreConfig::File { path });
    }
    let token = match served(config.clone()).await? {
        Served::Authorized(provider) => {
            let token = provider.token().await?;
            if let Some(unsaved) = provider.unsaved() {
                return Err(
                    rescue::rescue(&config.store.clone().unwrap_or_default(), provider.key(), &unsaved, None).await
                );
            }
            token
        }
        Served::Configured(config) => {
            let provider = Registry::default().build(&config)?;
            let token = provider.token().await?;
            // The set is saved before the token is printed; a set the store refused (with a rotating
            // refresh token, the only one the provider still accepts) goes to a rescue file, and the
            // run fails.
            if let Some((key, unsaved)) = provider.as_dyn().unsaved() {
                return Err(rescue::rescue(&config.store.clone().unwrap_or_default(), &key, &unsaved, None).await);
            }
            token
        }
    };
    let secret = token.secret().expose_secret();
    if args.json {
        let expires_in = token.expires_in(SystemTime::now()).as_secs();
        let scope = if token.scopes().is_empty() { None } else { Some(token.scopes().join(" ")) };
        let object = serde_json::json!({
            "access_token": secret,
            "token_type": token.token_type(),
            "expires_in": expires_in,
            "scope": scope,
        });
        println!("{object}");
    } else {
        println!("{secret}");
    }
    Ok(())
}

/// What `tokensmith token` serves.
#[derive(Debug)]
enum Served {
    /// What `tokensmith authorize` saved, refreshed from the store.
    Authorized(CachedProvider<RefreshTokenSource>),
    /// The configured provider's own grant, from this configuration.
    Configured(Box<Config>),
}

/// What `config` asks `token` to serve: what `tokensmith authorize` saved when `grant =
/// "authorization_code"` or `"device_code"`, or when the grant is unset and the store already holds a
/// token set with a refresh token for this client (custom and generic-django); else the configured
/// grant, with its endpoints resolved (`issuer`, generic-django's defaults) when a flow key is set.
async fn served(config: Config) -> Result<Served, Error> {
    if interactive::is_authorized_grant(&config) {
        let flow = interactive::flow_config(&config).await?;
        return Ok(Served::Authorized(interactive::refresh_provider(&flow)?.0));
    }
    if !matches!(config.provider.as_deref().map(str::trim), Some("custom" | "generic-django")) {
        return Ok(Served::Configured(Box::new(config)));
    }
    let flow_keys = interactive::uses_flow_keys(&config);
    let lasting = matches!(config.store, Some(StoreConfig::File { .. } | StoreConfig::Redis { .. }));
    let look = config.grant.is_none() && lasting;
    let flow = if flow_keys {
        Some(interactive::flow_config(&config).await?)
    } else if look {
        // An error here (a key the flow does not take) is left to the configured provider's path.
        interactive::flow_config(&config).await.ok()
    } else {
        None
    };
    let Some(flow) = flow else { return Ok(Served::Configured(Box::new(config))) };
    if look {
        if let Ok((provider, store)) = interactive::refresh_provider(&flow) {
            if matches!(store.load(provider.key()).await, Ok(Some(set)) if set.refresh_token().is_some()) {
                return Ok(Served::Authorized(provider));
            }
        }
    }
    Ok(Served::Configured(Box::new(if flow_keys { flow } else { config })))
}

/// The per-user token cache file, its directory created owner-only (0700): `$XDG_CACHE_HOME/tokensmith`
/// (an absolute path), else `$HOME/.cache/tokensmith`. `None`, with a warning, when there is no such
/// place or it cannot be made private: the run then keeps its token in memory only.
fn user_cache() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    let dir = base.join("tokensmith");
    match private_dir(&dir) {
        Ok(()) => Some(dir.join("tokens.json")),
        Err(e) => {
            eprintln!(
                "tokensmith: warning: the per-user token cache `{}` cannot be used ({e}); this run keeps its token in memory (pass --store FILE, or --no-cache to silence this)",
                dir.display()
            );
            None
        }
    }
}

/// Creates `dir` (and its parents) and makes it owner-only.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Installs the log subscriber: tokensmith's warnings (a token file others could read, a refresh
/// refused, ...) go to stderr, one line each, so that stdout stays exactly the token.
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // Verbosity applies to tokensmith's own crates; other crates log warnings and errors only.
    let default = Targets::new().with_default(LevelFilter::WARN).with_target("tokensmith", level);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("tokensmith: warning: RUST_LOG is not a valid filter ({e}); using the default");
            default
        }),
        _ => default,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .with_target(false)
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(filter);
    // Only fails if a subscriber is already installed, which nothing else here does.
    let _ = subscriber.try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Token(args) => token(args).await,
        Command::Authorize(args) => authorize::run(args).await,
        Command::Revoke(args) => revoke::run(args).await,
        Command::Sandbox(args) => {
            return match tokensmith_sandbox::run_standalone_with(args.port, args.faults).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tokensmith: error: the sandbox failed: {e}");
                    ExitCode::from(EXIT_OTHER)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}
