//! TOML configuration files (feature `toml`, on by default): [`Config::from_file`],
//! [`Config::from_toml_str`], [`Config::from_toml_section`], [`Config::load_section`], and the file
//! that `TOKENSMITH_CONFIG` names in [`Config::load`]. Without the feature a service is configured by
//! `TOKENSMITH_*` variables, by code, or by deserializing [`Config`] from its own settings with serde,
//! and no TOML parser is compiled.

use std::path::Path;

use serde::Deserialize as _;
use tokensmith_core::support::{parse_seconds_setting, seconds_setting};
use tokensmith_core::{Error, Result};

use super::{
    Config, KEYS, SECONDS_KEYS, Secret, check_response_key, keys, suggest_key, unknown_key_message,
    warn_unknown_env_vars,
};

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config("config", format!("cannot read the configuration file `{}` ({e})", path.display()))
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config { key, message } => Error::config(key, format!("{message} (in `{}`)", path.display())),
            other => other,
        })
    }

    /// Parses TOML text. An unknown key, or a value of the wrong type, gives [`Error::Config`] naming
    /// the key.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_table(parse_toml(text)?)
    }

    /// Reads the configuration from the table `section` of a larger TOML document: a service's own
    /// configuration file with a `[tokensmith]` table. The keys, their checks and their errors are those
    /// of [`Config::from_toml_str`]; apply the `TOKENSMITH_*` overrides with [`Config::merge_env`] (or
    /// use [`Config::load_section`]).
    ///
    /// ```
    /// use tokensmith::config::Config;
    ///
    /// let service_toml = r#"
    /// listen = "127.0.0.1:8080"
    ///
    /// [tokensmith]
    /// provider = "probit"
    /// client_id = "my-client"
    /// client_secret = { env = "PROBIT_SECRET" }
    /// "#;
    /// let config = Config::from_toml_section(service_toml, "tokensmith").unwrap();
    /// assert_eq!(config.provider.as_deref(), Some("probit"));
    /// let err = Config::from_toml_section(service_toml, "oauth").unwrap_err();
    /// assert!(err.to_string().contains("[oauth]"), "{err}");
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`]: the document is not TOML (with line and column), `section` is missing or not
    /// a table (naming it), or a key in it is wrong (naming the key).
    pub fn from_toml_section(text: &str, section: &str) -> Result<Self> {
        let mut document = parse_toml(text)?;
        match document.remove(section) {
            Some(toml::Value::Table(table)) => Self::from_table(table),
            Some(_) => Err(Error::config(
                section,
                format!("`{section}` must be a table: `[{section}]` followed by tokensmith's keys"),
            )),
            None => Err(Error::config(
                section,
                format!("the file has no `[{section}]` table; put tokensmith's keys under `[{section}]`"),
            )),
        }
    }

    /// [`Config::from_toml_section`] on the file at `path`, then the `TOKENSMITH_*` environment variables
    /// on top (they override the file, as with [`Config::load`]), with secrets given as `{ env = .. }`
    /// resolved: what a service that embeds tokensmith's configuration in its own file calls at start-up.
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml_section`] and [`Config::load`], naming the key or variable at fault.
    pub fn load_section(path: impl AsRef<Path>, section: &str) -> Result<Self> {
        warn_unknown_env_vars();
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config("config", format!("cannot read the configuration file `{}` ({e})", path.display()))
        })?;
        let mut config = Self::from_toml_section(&text, section)?;
        let env = |name: &str| std::env::var(name).ok();
        config.merge_env(env)?;
        config.resolve_secrets_with(&env)?;
        Ok(config)
    }

    /// The configuration in `table`, checked key by key.
    fn from_table(mut table: toml::Table) -> Result<Self> {
        // `[store] encryption_key` goes to `store_encryption_key`, not into `StoreConfig`.
        let mut encryption_key = None;
        if let Some(toml::Value::Table(store)) = table.get_mut("store") {
            check_store_table(store)?;
            if let Some(value) = store.remove("encryption_key") {
                let secret = Secret::deserialize(value)
                    .map_err(|e| Error::config("store.encryption_key", one_line(&e.to_string())))?;
                encryption_key = Some(secret);
            }
        }
        // Check key by key so that an error names the key at fault.
        for (key, value) in &table {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::config(
                    key.as_str(),
                    unknown_key_message(suggest_key(key), &format!("the known keys are {}", KEYS.join(", "))),
                ));
            }
            match (key.as_str(), value) {
                ("response", toml::Value::Table(response)) => check_response_table(response)?,
                ("response", _) => {
                    return Err(Error::config(
                        "response",
                        "`response` is a table: `[response]` with JSON pointers, e.g. `access_token = \"/issued/bearer\"`",
                    ));
                }
                ("extra_params", toml::Value::Table(params)) => check_extra_params_table(params)?,
                ("store", toml::Value::Table(store)) => check_store_table(store)?,
                ("store", _) => {
                    return Err(Error::config(
                        "store",
                        "`store` is a table: `[store]` with `kind = \"memory\"`, `kind = \"file\"` and `path = \"...\"`, or `kind = \"redis\"` and `url = \"redis://...\"`",
                    ));
                }
                _ => {}
            }
            if let Some((_, _, range)) = SECONDS_KEYS.iter().find(|(k, _, _)| k == key) {
                match value {
                    toml::Value::Integer(n) => match u64::try_from(*n) {
                        Ok(secs) => seconds_setting(key, secs, range.clone()).map(drop)?,
                        Err(_) => parse_seconds_setting(key, &n.to_string(), range.clone()).map(drop)?,
                    },
                    other => parse_seconds_setting(key, &other.to_string(), range.clone()).map(drop)?,
                }
            }
            let mut single = toml::Table::new();
            single.insert(key.clone(), value.clone());
            if let Err(e) = Config::deserialize(toml::Value::Table(single)) {
                let key = match (key.as_str(), value) {
                    ("store", toml::Value::Table(t)) => store_key(t),
                    (key, _) => key.to_owned(),
                };
                return Err(Error::config(key, one_line(&e.to_string())));
            }
        }
        let mut config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| Error::config("config", one_line(&e.to_string())))?;
        config.store_encryption_key = encryption_key;
        Ok(config)
    }
}

/// Checks `[response]`: known field names only (the error lists them), each a string.
fn check_response_table(table: &toml::Table) -> Result<()> {
    for (key, value) in table {
        check_response_key(key)?;
        if !value.is_str() {
            return Err(Error::config(
                format!("response.{key}"),
                "expected a JSON pointer as a string, e.g. \"/issued/bearer\"",
            ));
        }
    }
    Ok(())
}

/// Checks `[extra_params]`: each value a string, or a secret given as a table.
fn check_extra_params_table(table: &toml::Table) -> Result<()> {
    for (name, value) in table {
        let key = format!("extra_params.{name}");
        match value {
            toml::Value::String(_) => {}
            toml::Value::Table(_) => {
                Secret::deserialize(value.clone())
                    .map_err(|e| Error::config(key.as_str(), one_line(&e.to_string())))?;
            }
            _ => {
                return Err(Error::config(
                    key,
                    "expected a string, or a secret as `{ env = \"VAR\" }`, `{ file = \"/path\" }` or `{ value = \"...\" }`",
                ));
            }
        }
    }
    Ok(())
}

/// What serde's internally tagged enums do not check: unknown keys in `[store]`, and a `path` on a
/// memory store.
fn check_store_table(table: &toml::Table) -> Result<()> {
    const STORE_KEYS: [&str; 5] = ["kind", "path", "url", "prefix", "encryption_key"];
    if let Some(key) = table.keys().find(|k| !STORE_KEYS.contains(&k.as_str())) {
        return Err(Error::config(
            format!("store.{key}"),
            unknown_key_message(
                keys::nearest(key, STORE_KEYS),
                "`[store]` takes `kind`, `path` (file), `url`, `prefix` (redis) and `encryption_key` (file or redis)",
            ),
        ));
    }
    let kind = table.get("kind").and_then(toml::Value::as_str);
    if kind == Some("memory") && table.contains_key("encryption_key") {
        return Err(Error::config(
            "store.encryption_key",
            "a memory store keeps nothing to encrypt; use kind = \"file\" or \"redis\", or remove the key",
        ));
    }
    if kind == Some("memory") && table.contains_key("path") {
        return Err(Error::config(
            "store.path",
            "a memory store has no path; use kind = \"file\" to keep tokens in a file",
        ));
    }
    for key in ["url", "prefix"] {
        if matches!(kind, Some("memory" | "file")) && table.contains_key(key) {
            return Err(Error::config(
                format!("store.{key}"),
                "only a Redis store takes this key; use kind = \"redis\" with `url`",
            ));
        }
    }
    if kind == Some("redis") && table.contains_key("path") {
        return Err(Error::config("store.path", "a Redis store has no path; give `url = \"redis://...\"`"));
    }
    Ok(())
}

fn store_key(table: &toml::Table) -> String {
    let allowed: &[&str] = match table.get("kind").and_then(toml::Value::as_str) {
        Some("file") if !table.contains_key("path") => return "store.path".to_owned(),
        Some("redis") if !table.contains_key("url") => return "store.url".to_owned(),
        Some("memory") => &["kind", "path"],
        Some("file") => &["kind", "path", "encryption_key"],
        Some("redis") => &["kind", "url", "prefix", "encryption_key"],
        _ => return "store.kind".to_owned(),
    };
    table
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("store.{k}"))
        .or_else(|| {
            // A value of the wrong type: name the first non-kind key present.
            table.keys().find(|k| k.as_str() != "kind").map(|k| format!("store.{k}"))
        })
        .unwrap_or_else(|| "store".to_owned())
}

/// Parses a TOML document; an error gives the line and column of the fault.
fn parse_toml(text: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count().saturating_add(1);
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()).saturating_add(1);
            format!(" (line {line}, column {column})")
        });
        Error::config(
            "config",
            format!("the file is not valid TOML{}: {}", at.unwrap_or_default(), one_line(e.message())),
        )
    })
}

/// `text` on one line: serde's and toml's messages may span several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_inline_secrets() {
        let config = Config::from_toml_str(
            r#"provider = "probit"
client_secret = "hunter2-inline"
refresh_token = { value = "rt-inline" }"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2-inline"), "{debug}");
        assert!(!debug.contains("rt-inline"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn store_keys_are_named() {
        let err = Config::from_toml_str("[store]\nkind = \"file\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.path"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"redis\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.url"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"s3\"").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.kind"), "{err}");
        let err = Config::from_toml_str("[store]\nkind = \"memory\"\ncolour = 1").unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "store.colour"), "{err}");
    }
}
