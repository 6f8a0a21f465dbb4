//! The built-in providers, each behind its cargo feature. The facade only picks: each provider crate
//! declares the configuration keys it takes and parses them itself (`with_config`); this module hands
//! it the keys that are set and adds what every provider gets the same way (secret, store, timeout).

// With no built-in compiled in (`default-features = false`), nothing here is used.
#![allow(dead_code)]

use tokensmith_core::{Error, Result};

use crate::config::{Config, KEY_TABLE, KEYS};

/// Keys the facade itself handles for every provider: the rest belong to the provider.
const FACADE_KEYS: &[&str] = &["provider", "client_secret", "store", "timeout"];

/// The text of a provider-level key that is set in `config`, as a configuration file gives it.
fn text(config: &Config, key: &str) -> Option<String> {
    match key {
        "client_id" => config.client_id.clone(),
        "base_url" => config.base_url.clone(),
        "token_url" => config.token_url.clone(),
        "token_path" => config.token_path.clone(),
        "scope" => config.scope.clone().filter(|s| !s.trim().is_empty()),
        "credential_style" => config.credential_style.clone(),
        "redirect_uri" => config.redirect_uri.clone(),
        "allow_insecure_http" => config.allow_insecure_http.map(|b| b.to_string()),
        _ => None,
    }
}

/// A configuration error from a provider names the key; add the variables that set it, since the user
/// may have set `TOKENSMITH_BASE_URL` rather than `base_url`.
fn with_variables(error: Error) -> Error {
    match &error {
        Error::Config { key, message } => match KEY_TABLE.iter().find(|spec| spec.key == key) {
            Some(spec) if !spec.env.is_empty() => {
                Error::config(key.clone(), format!("{message} (set by {})", spec.hint()))
            }
            _ => error,
        },
        _ => error,
    }
}

/// Hands every key set in `config` to `set` if the provider takes it (`takes`), and refuses any other
/// key that is set, naming it.
fn apply<B>(
    config: &Config,
    provider: &str,
    takes: &[&str],
    mut builder: B,
    mut set: impl FnMut(B, &str, &str) -> Result<B>,
) -> Result<B> {
    for key in KEYS.iter().copied().filter(|k| config.is_set(k) && !FACADE_KEYS.contains(k)) {
        if !takes.contains(&key) {
            return Err(Error::config(
                key,
                format!(
                    "the `{provider}` provider does not take this key (it takes {}); remove it, or use provider = \"custom\"",
                    takes.join(", ")
                ),
            ));
        }
        if let Some(value) = text(config, key) {
            builder = set(builder, key, &value).map_err(with_variables)?;
        }
    }
    Ok(builder)
}

/// A provider declared with [`tokensmith_core::dialect`]: the keys it takes go to its builder's
/// `with_config`, which names the key at fault.
pub(crate) fn declared<D: tokensmith_core::dialect::Declared>(
    config: &Config,
) -> Result<tokensmith_core::SharedTokenProvider> {
    use tokensmith_core::dialect::Builder;
    let dialect = D::DIALECT;
    let builder = apply(config, dialect.name(), &dialect.keys(), Builder::<D>::new(), |b, key, value| {
        Ok(b.with_config(key, value))
    })?;
    let builder = builder
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .retry(config.retry_policy()?)
        .store(crate::store_build::build_store(config)?);
    Ok(builder.build().map_err(with_variables)?.shared())
}

#[cfg(feature = "whitebit")]
pub(crate) fn whitebit(config: &Config) -> Result<tokensmith_core::SharedTokenProvider> {
    Ok(whitebit_builder(config)?.build().map_err(with_variables)?.shared())
}

/// The WhiteBIT builder `config` describes, for running the authorization flow yourself
/// (`authorize`, `complete`) before serving tokens with [`from_config`](crate::from_config).
#[cfg(feature = "whitebit")]
pub fn whitebit_builder(config: &Config) -> Result<tokensmith_whitebit::WhitebitBuilder> {
    use tokensmith_whitebit::WhitebitBuilder;
    let builder =
        apply(config, "whitebit", WhitebitBuilder::KEYS, WhitebitBuilder::new(), WhitebitBuilder::with_config)?;
    Ok(builder
        .client_id(config.require_client_id()?)
        .client_secret(config.require_client_secret()?)
        .retry(config.retry_policy()?)
        .store(crate::store_build::build_store(config)?))
}
