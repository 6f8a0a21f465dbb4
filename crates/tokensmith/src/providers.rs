//! The built-in providers, each behind its cargo feature: configuration to the provider crate's builder.

#![cfg_attr(
    not(any(feature = "probit", feature = "generic-django", feature = "ruby-style", feature = "whitebit")),
    allow(dead_code, unused_imports)
)]

use tokensmith_core::{Error, Result};

use crate::config::Config;

/// Keys only the declarative provider takes.
const CUSTOM_ONLY: &[&str] = &[
    "body_format",
    "envelope",
    "scope_separator",
    "fallback_lifetime",
    "extra_params",
    "client_id_param",
    "client_secret_param",
    "grant_type_param",
    "grant_type_value",
    "scope_param",
    "response",
    "grant",
    "refresh_token",
    "refresh_url",
    "refresh_token_param",
    "send_grant_type",
    "name",
];

fn reject_custom_keys(config: &Config, provider: &str) -> Result<()> {
    for key in CUSTOM_ONLY {
        if config.is_set(key) {
            return Err(Error::config(
                *key,
                format!(
                    "the `{provider}` provider does not take this key (it is for `provider = \"custom\"`); remove it"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(any(feature = "ruby-style", feature = "whitebit"))]
/// The base URL for a provider whose token path is fixed: `base_url`, or `token_url` with the fixed
/// path stripped.
fn base_from(config: &Config, provider: &str, fixed_path: &str) -> Result<Option<String>> {
    match (&config.token_url, &config.base_url) {
        (Some(token_url), _) => {
            let trimmed = token_url.trim().trim_end_matches('/');
            match trimmed.strip_suffix(fixed_path.trim_end_matches('/')) {
                Some(base) if !base.is_empty() => Ok(Some(base.to_owned())),
                _ => Err(Error::config(
                    "token_url",
                    format!(
                        "the `{provider}` provider's token endpoint is `{{base_url}}{fixed_path}`; give a token_url \
                         ending in `{fixed_path}`, set base_url instead, or use provider = \"custom\" for another path"
                    ),
                )),
            }
        }
        (None, Some(base)) => Ok(Some(base.trim().trim_end_matches('/').to_owned())),
        (None, None) => Ok(None),
    }
}

#[cfg(feature = "probit")]
pub(crate) fn probit(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    use tokensmith_probit::ProbitBuilder;
    reject_custom_keys(config, "probit")?;
    config.reject_keys("probit", &["token_path", "scope", "credential_style", "redirect_uri"])?;
    let mut builder = ProbitBuilder::new()
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .allow_insecure_http(config.insecure_http())
        .retry(config.retry_policy()?)
        .store(crate::store::build_store(config)?);
    let token_url = match (&config.token_url, &config.base_url) {
        (Some(url), _) => Some(url.trim().to_owned()),
        (None, Some(base)) => Some(format!("{}/token", base.trim().trim_end_matches('/'))),
        (None, None) => None,
    };
    if let Some(url) = &token_url {
        builder = builder.token_url(url);
    }
    Ok(builder.build()?.shared())
}

#[cfg(feature = "generic-django")]
pub(crate) fn generic_django(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    use tokensmith_generic_django::{DjangoBuilder, DjangoCredentials};
    reject_custom_keys(config, "generic-django")?;
    config.reject_keys("generic-django", &["redirect_uri"])?;
    let mut builder = DjangoBuilder::new()
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .allow_insecure_http(config.insecure_http())
        .retry(config.retry_policy()?)
        .store(crate::store::build_store(config)?);
    match (&config.token_url, &config.base_url) {
        (Some(token_url), _) => {
            // The token URL overrides base_url + token_path: its origin is the base, its path the token path.
            if config.token_path.is_some() {
                return Err(Error::config("token_path", "give either token_url or token_path, not both"));
            }
            let url = tokensmith_core::http::parse_url("token_url", token_url, config.insecure_http())?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(Error::config("token_url", "the token URL must not have a query or fragment"));
            }
            let origin = url.origin().ascii_serialization();
            builder = builder.base_url(&origin).token_path(url.path());
        }
        (None, Some(base)) => {
            builder = builder.base_url(base.trim());
            if let Some(path) = &config.token_path {
                builder = builder.token_path(path);
            }
        }
        (None, None) => {
            return Err(Error::config(
                "base_url",
                "a Django OAuth Toolkit server has no default address; set base_url (or token_url)",
            ));
        }
    }
    if let Some(scope) = &config.scope {
        builder = builder.scopes(tokensmith_core::Scopes::parse(scope));
    }
    if let Some(style) = &config.credential_style {
        builder = builder.credential_style(match style.as_str() {
            "basic" => DjangoCredentials::Basic,
            "body" => DjangoCredentials::Body,
            other => {
                return Err(Error::config(
                    "credential_style",
                    format!("`{other}` is not a generic-django credential style; use basic or body"),
                ));
            }
        });
    }
    Ok(builder.build()?.shared())
}

#[cfg(feature = "ruby-style")]
pub(crate) fn ruby_style(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    use tokensmith_ruby_style::RubyStyleBuilder;
    reject_custom_keys(config, "ruby-style")?;
    config.reject_keys("ruby-style", &["token_path", "credential_style", "redirect_uri"])?;
    let mut builder = RubyStyleBuilder::new()
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .allow_insecure_http(config.insecure_http())
        .retry(config.retry_policy()?)
        .store(crate::store::build_store(config)?);
    match base_from(config, "ruby-style", "/oauth/token")? {
        Some(base) => builder = builder.base_url(&base),
        None => {
            return Err(Error::config(
                "base_url",
                "a Doorkeeper-style server has no default address; set base_url (or token_url)",
            ));
        }
    }
    if let Some(scope) = &config.scope {
        builder = builder.scopes(tokensmith_core::Scopes::parse(scope));
    }
    Ok(builder.build()?.shared())
}

#[cfg(feature = "whitebit")]
pub(crate) fn whitebit(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    Ok(whitebit_builder(config)?.build()?.shared())
}

/// The WhiteBIT builder `config` describes, for running the authorization flow yourself
/// (`authorize`, `complete`) before serving tokens with [`from_config`](crate::from_config).
#[cfg(feature = "whitebit")]
pub fn whitebit_builder(config: &Config) -> Result<tokensmith_whitebit::WhitebitBuilder> {
    use tokensmith_whitebit::WhitebitBuilder;
    reject_custom_keys(config, "whitebit")?;
    config.reject_keys("whitebit", &["token_path", "credential_style", "scope"])?;
    let mut builder = WhitebitBuilder::new()
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .allow_insecure_http(config.insecure_http())
        .retry(config.retry_policy()?)
        .store(crate::store::build_store(config)?);
    if let Some(base) = base_from(config, "whitebit", "/oauth2/token")? {
        builder = builder.base_url(&base);
    }
    if let Some(uri) = &config.redirect_uri {
        builder = builder.redirect_uri(uri);
    }
    Ok(builder)
}
