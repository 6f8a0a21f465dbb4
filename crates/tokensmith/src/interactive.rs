//! The user-facing flows of any server, from configuration: the authorization code flow, the device
//! grant and revocation (see `tokensmith_core::flows`), for `provider = "custom"` and
//! `provider = "generic-django"`. `tokensmith authorize`, `tokensmith token` and `tokensmith revoke`
//! are built on it.
//!
//! [`flow_config`] resolves the endpoints (the URL keys, else the issuer's metadata, else the
//! generic-django defaults) into a `custom` configuration; [`refresh_provider`] builds the cached
//! provider whose store key `authorize` saves under and `token` serves from.

use std::sync::Arc;

use tokensmith_core::cache::RefreshTokenSource;
use tokensmith_core::flows::{ServerMetadata, discover};
use tokensmith_core::http::ReqwestTransport;
use tokensmith_core::support::parse_url;
use tokensmith_core::{CachedProvider, Error, Result, TokenStore};
use url::Url;

use crate::config::Config;
use crate::{build_store, require_lasting_store};

/// The grants that serve what `tokensmith authorize` saved: a refresh token kept in the store.
pub const AUTHORIZED_GRANTS: &[&str] = crate::config::AUTHORIZED_GRANTS;

/// Every value `grant` takes.
pub const GRANTS: &[&str] = &["client_credentials", "refresh_token", "authorization_code", "device_code"];

/// Django OAuth Toolkit's default paths, under `base_url`.
const DOT_PATHS: [(&str, &str); 4] = [
    ("token_url", "/o/token/"),
    ("authorize_url", "/o/authorize/"),
    ("device_authorization_url", "/o/device-authorization/"),
    ("revocation_url", "/o/revoke_token/"),
];

/// Checks `grant` (when set) against [`GRANTS`].
///
/// # Errors
///
/// [`Error::Config`] for `grant`, listing the values it takes.
pub fn check_grant(config: &Config) -> Result<()> {
    match config.grant.as_deref().map(str::trim) {
        None => Ok(()),
        Some(grant) if GRANTS.contains(&grant) => Ok(()),
        Some(grant) => Err(Error::config("grant", format!("unknown grant `{grant}`; use {}", GRANTS.join(", ")))),
    }
}

/// Whether `config` asks for the tokens `tokensmith authorize` saved (`grant = "authorization_code"`
/// or `"device_code"`).
pub fn is_authorized_grant(config: &Config) -> bool {
    crate::config::is_authorized_grant(config)
}

/// Whether any key of the user-facing flows is set (`authorize_url`, `device_authorization_url`,
/// `revocation_url`, `issuer`).
pub fn uses_flow_keys(config: &Config) -> bool {
    crate::config::uses_flow_keys(config)
}

/// The `custom` configuration that `config` describes for the user-facing flows: every endpoint
/// resolved, from its URL key, else from `issuer`'s metadata (fetched now), else (generic-django)
/// from `base_url` and Django OAuth Toolkit's paths. `name` defaults to the provider's name, so
/// that store keys differ between providers.
///
/// # Errors
///
/// [`Error::Config`] naming the key at fault: a provider without these flows, a URL that does not
/// parse, a missing `base_url`; discovery's errors (an `issuer` that does not match, ...).
pub async fn flow_config(config: &Config) -> Result<Config> {
    let metadata = match config.issuer.as_deref() {
        Some(issuer) => {
            let insecure = config.insecure_http();
            parse_url("issuer", issuer, insecure)?;
            // Checked before anything is fetched.
            check_provider(config)?;
            let transport = ReqwestTransport::builder().allow_insecure_http(insecure).build()?;
            Some(discover(&transport, issuer.trim()).await?)
        }
        None => None,
    };
    resolve(config, metadata.as_ref())
}

/// [`flow_config`] without discovery, for synchronous callers such as [`from_config`](crate::from_config).
///
/// # Errors
///
/// As [`flow_config`], and [`Error::Config`] for `issuer` when it is set (discovery needs
/// [`flow_config`]).
pub fn static_flow_config(config: &Config) -> Result<Config> {
    if config.issuer.is_some() {
        return Err(Error::config(
            "issuer",
            "discovery fetches the issuer's metadata: resolve it first with `tokensmith::interactive::flow_config` (async), or set the URL keys instead",
        ));
    }
    resolve(config, None)
}

/// Refuses a provider without these flows.
fn check_provider(config: &Config) -> Result<()> {
    match config.provider_name()?.trim() {
        "custom" | "generic-django" => Ok(()),
        other => Err(Error::config(
            "provider",
            format!(
                "the `{other}` provider has no configurable authorization, device or revocation endpoints; use provider = \"custom\" (with the URL keys or `issuer`) or \"generic-django\" (\"whitebit\" has its own authorization flow)"
            ),
        )),
    }
}

/// The `custom` configuration of [`flow_config`], from `config` and the issuer's `metadata`.
fn resolve(config: &Config, metadata: Option<&ServerMetadata>) -> Result<Config> {
    check_grant(config)?;
    check_provider(config)?;
    let provider = config.provider_name()?.trim().to_owned();
    let mut out = config.clone();
    let insecure = config.insecure_http();
    for (key, value) in [
        ("authorize_url", &config.authorize_url),
        ("device_authorization_url", &config.device_authorization_url),
        ("revocation_url", &config.revocation_url),
    ] {
        if let Some(text) = value {
            parse_url(key, text, insecure)?;
        }
    }
    if provider == "generic-django" {
        if config.name.is_none() {
            out.name = Some("generic-django".to_owned());
        }
        out.base_url = None;
        out.token_path = None;
    }
    out.provider = Some("custom".to_owned());
    if let Some(metadata) = metadata {
        let fill = |slot: &mut Option<String>, found: &Option<Url>| {
            if slot.is_none() {
                *slot = found.as_ref().map(|u| u.to_string());
            }
        };
        fill(&mut out.token_url, &metadata.token_endpoint);
        fill(&mut out.authorize_url, &metadata.authorization_endpoint);
        fill(&mut out.device_authorization_url, &metadata.device_authorization_endpoint);
        fill(&mut out.revocation_url, &metadata.revocation_endpoint);
    }
    if provider == "generic-django" {
        if let Some(base) = config.base_url.as_deref() {
            let base = parse_url("base_url", base, insecure)?;
            let base = base.as_str().trim_end_matches('/').to_owned();
            for (key, path) in DOT_PATHS {
                let path = match (key, config.token_path.as_deref()) {
                    ("token_url", Some(token_path)) => token_path,
                    _ => path,
                };
                let slot = match key {
                    "token_url" => &mut out.token_url,
                    "authorize_url" => &mut out.authorize_url,
                    "device_authorization_url" => &mut out.device_authorization_url,
                    _ => &mut out.revocation_url,
                };
                if slot.is_none() {
                    *slot = Some(format!("{base}{path}"));
                }
            }
        } else if out.token_url.is_none() {
            return Err(Error::config(
                "base_url",
                "the generic-django provider needs the server's base URL (or `token_url` and the other URL keys, or `issuer`); set `base_url`",
            ));
        }
    }
    // The redirect URI is the caller's (the loopback listener's), not a key of the custom provider.
    out.redirect_uri = None;
    out.issuer = None;
    Ok(out)
}

/// The endpoint that `key` (`authorize_url`, `device_authorization_url` or `revocation_url`) names
/// in a configuration from [`flow_config`].
///
/// # Errors
///
/// [`Error::Config`] for `key` when it is not set (nor found by discovery) or not a valid URL.
pub fn endpoint_url(config: &Config, key: &str, what: &str) -> Result<Url> {
    let value = match key {
        "authorize_url" => &config.authorize_url,
        "device_authorization_url" => &config.device_authorization_url,
        "revocation_url" => &config.revocation_url,
        "token_url" => &config.token_url,
        _ => &None,
    };
    let Some(text) = value else {
        return Err(Error::config(
            key,
            format!(
                "{what} needs this endpoint: set `{key}` (flag --{}), or `issuer` for a server whose metadata names it",
                key.replace('_', "-")
            ),
        ));
    };
    parse_url(key, text, config.insecure_http())
}

/// The provider `grant = "authorization_code"` or `"device_code"` builds from configuration, for
/// custom and generic-django ([`static_flow_config`] then [`refresh_provider`]).
///
/// # Errors
///
/// As [`static_flow_config`] and [`refresh_provider`].
pub fn build_authorized(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    let flow = static_flow_config(config)?;
    Ok(tokensmith_core::SharedTokenProvider::new(refresh_provider(&flow)?.0))
}

/// The cached provider over a [`RefreshTokenSource`] that `config` (from [`flow_config`]) describes,
/// with its store: `authorize` saves the tokens under its key ([`CachedProvider::key`]) and `token`
/// serves and refreshes them from there.
///
/// # Errors
///
/// [`Error::Config`]: a store that does not outlive the process (the tokens are for later runs),
/// and every error of the custom provider's keys.
pub fn refresh_provider(config: &Config) -> Result<(CachedProvider<RefreshTokenSource>, Arc<dyn TokenStore>)> {
    require_lasting_store(
        config,
        "the authorization code and device flows keep their tokens for later runs of `tokensmith token`",
    )?;
    let mut custom = config.clone();
    custom.grant = None;
    custom.authorize_url = None;
    custom.device_authorization_url = None;
    custom.revocation_url = None;
    let (client, scopes) = crate::custom::client(&custom)?;
    let store = build_store(config)?;
    let provider = CachedProvider::builder(RefreshTokenSource::new(client, scopes)).store(Arc::clone(&store)).build();
    Ok((provider, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text).unwrap()
    }

    #[tokio::test]
    async fn generic_django_gets_dots_paths() {
        let c = config("provider = \"generic-django\"\nbase_url = \"https://auth.example.com/\"\nclient_id = \"a\"");
        let out = flow_config(&c).await.unwrap();
        assert_eq!(out.token_url.as_deref(), Some("https://auth.example.com/o/token/"));
        assert_eq!(out.authorize_url.as_deref(), Some("https://auth.example.com/o/authorize/"));
        assert_eq!(out.device_authorization_url.as_deref(), Some("https://auth.example.com/o/device-authorization/"));
        assert_eq!(out.revocation_url.as_deref(), Some("https://auth.example.com/o/revoke_token/"));
        assert_eq!(out.name.as_deref(), Some("generic-django"));
        assert_eq!(out.provider.as_deref(), Some("custom"));
    }

    #[tokio::test]
    async fn keys_are_checked_and_named() {
        let c = config("provider = \"custom\"\ntoken_url = \"https://a/t\"\nclient_id = \"a\"\ngrant = \"implicit\"");
        let Err(Error::Config { key, .. }) = flow_config(&c).await else { panic!("grant accepted") };
        assert_eq!(key, "grant");
        let c =
            config("provider = \"custom\"\ntoken_url = \"https://a/t\"\nclient_id = \"a\"\nrevocation_url = \"nope\"");
        let Err(Error::Config { key, .. }) = flow_config(&c).await else { panic!("bad URL accepted") };
        assert_eq!(key, "revocation_url");
        let c = config("provider = \"probit\"\nclient_id = \"a\"");
        let Err(Error::Config { key, .. }) = flow_config(&c).await else { panic!("probit accepted") };
        assert_eq!(key, "provider");
        let c = config("provider = \"custom\"\ntoken_url = \"https://a/t\"\nclient_id = \"a\"");
        let out = flow_config(&c).await.unwrap();
        let Err(Error::Config { key, .. }) = endpoint_url(&out, "device_authorization_url", "x") else {
            panic!("missing endpoint accepted")
        };
        assert_eq!(key, "device_authorization_url");
    }

    #[test]
    fn from_config_builds_the_authorized_grants_and_ignores_flow_keys_for_client_credentials() {
        let dir = std::env::temp_dir().join(format!("tokensmith-interactive-{}", std::process::id()));
        let store = dir.join("tokens.json");
        let base = "provider = \"generic-django\"\nbase_url = \"https://auth.example.com\"\nclient_id = \"a\"\nclient_secret = \"s\"";
        let text = format!(
            "{base}\ngrant = \"device_code\"\n[store]\nkind = \"file\"\npath = {:?}",
            store.display().to_string()
        );
        assert!(crate::from_config(&config(&text)).is_ok());
        let text = format!("{base}\nauthorize_url = \"https://auth.example.com/x\"\ngrant = \"client_credentials\"");
        assert!(crate::from_config(&config(&text)).is_ok(), "the flow keys do not stop the client-credentials grant");
        let text = format!(
            "{base}\ngrant = \"authorization_code\"\nissuer = \"https://auth.example.com\"\n[store]\nkind = \"file\"\npath = \"/tmp/x.json\""
        );
        let Err(Error::Config { key, .. }) = crate::from_config(&config(&text)) else {
            panic!("issuer resolved synchronously")
        };
        assert_eq!(key, "issuer");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refresh_provider_needs_a_lasting_store() {
        let c = config("provider = \"custom\"\ntoken_url = \"https://a/t\"\nclient_id = \"a\"\nclient_secret = \"s\"");
        let Err(Error::Config { key, .. }) = refresh_provider(&c) else { panic!("memory store accepted") };
        assert_eq!(key, "store");
    }
}
