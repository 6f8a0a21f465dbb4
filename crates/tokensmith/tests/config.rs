//! Configuration: TOML files, environment variables, overrides, and an error naming the key for each
//! bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;

use tokensmith::config::{Config, Secret, StoreConfig};
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{Error, Registry};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

/// A fresh directory under the system temp dir, unique per test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokensmith-config-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn assert_key(result: Result<impl std::fmt::Debug, Error>, expected: &str) -> String {
    match result {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, expected, "wrong key; message: {message}");
            message
        }
        other => panic!("expected a config error for `{expected}`, got {other:?}"),
    }
}

const FULL: &str = r#"
provider = "custom"
client_id = "my-client"
client_secret = { env = "MY_SECRET" }
token_url = "https://auth.example.com/oauth/token"
scope = "read write"
credential_style = "body"
body_format = "json"
envelope = "/data"
scope_separator = ","
fallback_lifetime = 600
extra_params = { audience = "api" }
name = "example"
timeout = 5
allow_insecure_http = false

[store]
kind = "file"
path = "/tmp/tokens.json"
"#;

#[test]
fn a_full_file_parses() {
    let config = Config::from_toml_str(FULL).unwrap();
    assert_eq!(config.provider.as_deref(), Some("custom"));
    assert_eq!(config.client_id.as_deref(), Some("my-client"));
    assert!(matches!(config.client_secret, Some(Secret::Env(ref v)) if v == "MY_SECRET"));
    assert_eq!(config.scope.as_deref(), Some("read write"));
    assert_eq!(config.body_format.as_deref(), Some("json"));
    assert_eq!(config.envelope.as_deref(), Some("/data"));
    assert_eq!(config.scope_separator.as_deref(), Some(","));
    assert_eq!(config.fallback_lifetime, Some(600));
    assert_eq!(config.extra_params.as_ref().unwrap()["audience"], "api");
    assert_eq!(config.store, Some(StoreConfig::File { path: "/tmp/tokens.json".into() }));
    assert_eq!(config.timeout, Some(5));
    assert_eq!(config.allow_insecure_http, Some(false));
}

#[test]
fn secrets_by_value_env_or_file() {
    let dir = temp_dir("secrets");
    let file = dir.join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    let env = env_of(&[("SECRET_VAR", "from-env")]);

    let plain = Config::from_toml_str(r#"client_secret = "inline""#).unwrap();
    let table = Config::from_toml_str(r#"client_secret = { value = "inline" }"#).unwrap();
    let by_env = Config::from_toml_str(r#"client_secret = { env = "SECRET_VAR" }"#).unwrap();
    let by_file =
        Config::from_toml_str(&format!("client_secret = {{ file = {:?} }}", file.display().to_string())).unwrap();
    let resolve = |c: &Config| c.client_secret.as_ref().unwrap().resolve_with("client_secret", &env).unwrap();
    assert_eq!(resolve(&plain).expose_secret(), "inline");
    assert_eq!(resolve(&table).expose_secret(), "inline");
    assert_eq!(resolve(&by_env).expose_secret(), "from-env");
    assert_eq!(resolve(&by_file).expose_secret(), "from-file", "the trailing newline is trimmed");

    // Unresolvable secrets name the key and say why, without a value.
    let missing_var = Secret::Env("NOT_SET_ANYWHERE".into()).resolve_with("client_secret", &env);
    let message = assert_key(missing_var, "client_secret");
    assert!(message.contains("NOT_SET_ANYWHERE"), "{message}");
    assert_key(Secret::File(dir.join("absent")).resolve_with("client_secret", &env), "client_secret");
    assert_key(Secret::value("").resolve_with("refresh_token", &env), "refresh_token");
}

#[test]
fn debug_never_shows_an_inline_secret() {
    let config = Config::from_toml_str(r#"client_secret = "sup3r-s3cret-value""#).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("sup3r-s3cret-value"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    let from_env = Config::from_env_with(env_of(&[("TOKENSMITH_CLIENT_SECRET", "sup3r-s3cret-value")])).unwrap();
    assert!(!format!("{from_env:?}").contains("sup3r-s3cret-value"));
}

#[test]
fn every_environment_variable_is_read() {
    let env = env_of(&[
        ("TOKENSMITH_PROVIDER", "custom"),
        ("TOKENSMITH_CLIENT_ID", "id"),
        ("TOKENSMITH_CLIENT_SECRET_FILE", "/run/secrets/x"),
        ("TOKENSMITH_BASE_URL", "https://base.example.com"),
        ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/token"),
        ("TOKENSMITH_TOKEN_PATH", "/o/token/"),
        ("TOKENSMITH_SCOPE", "a,b"),
        ("TOKENSMITH_CREDENTIAL_STYLE", "basic-raw"),
        ("TOKENSMITH_BODY_FORMAT", "json"),
        ("TOKENSMITH_ENVELOPE", "/data"),
        ("TOKENSMITH_SCOPE_SEPARATOR", ","),
        ("TOKENSMITH_FALLBACK_LIFETIME", "120"),
        ("TOKENSMITH_EXTRA_PARAMS", "audience=api&resource=r%26d"),
        ("TOKENSMITH_GRANT", "refresh_token"),
        ("TOKENSMITH_REFRESH_TOKEN_ENV", "RT"),
        ("TOKENSMITH_REFRESH_URL", "https://auth.example.com/refresh"),
        ("TOKENSMITH_REFRESH_TOKEN_PARAM", "token"),
        ("TOKENSMITH_SEND_GRANT_TYPE", "false"),
        ("TOKENSMITH_NAME", "acme"),
        ("TOKENSMITH_REDIRECT_URI", "http://127.0.0.1:8765/callback"),
        ("TOKENSMITH_STORE", "/var/lib/tokens.json"),
        ("TOKENSMITH_TIMEOUT", "7"),
        ("TOKENSMITH_ALLOW_INSECURE_HTTP", "1"),
    ]);
    let c = Config::from_env_with(env).unwrap();
    assert_eq!(c.provider.as_deref(), Some("custom"));
    assert_eq!(c.client_id.as_deref(), Some("id"));
    assert!(matches!(c.client_secret, Some(Secret::File(ref p)) if p == &PathBuf::from("/run/secrets/x")));
    assert_eq!(c.base_url.as_deref(), Some("https://base.example.com"));
    assert_eq!(c.token_url.as_deref(), Some("https://auth.example.com/token"));
    assert_eq!(c.token_path.as_deref(), Some("/o/token/"));
    assert_eq!(c.scope.as_deref(), Some("a,b"));
    assert_eq!(c.credential_style.as_deref(), Some("basic-raw"));
    assert_eq!(c.body_format.as_deref(), Some("json"));
    assert_eq!(c.envelope.as_deref(), Some("/data"));
    assert_eq!(c.scope_separator.as_deref(), Some(","));
    assert_eq!(c.fallback_lifetime, Some(120));
    let params = c.extra_params.as_ref().unwrap();
    assert_eq!((params["audience"].as_plain(), params["resource"].as_plain()), (Some("api"), Some("r&d")));
    assert_eq!(c.grant.as_deref(), Some("refresh_token"));
    assert!(matches!(c.refresh_token, Some(Secret::Env(ref v)) if v == "RT"));
    assert_eq!(c.refresh_url.as_deref(), Some("https://auth.example.com/refresh"));
    assert_eq!(c.refresh_token_param.as_deref(), Some("token"));
    assert_eq!(c.send_grant_type, Some(false));
    assert_eq!(c.name.as_deref(), Some("acme"));
    assert_eq!(c.redirect_uri.as_deref(), Some("http://127.0.0.1:8765/callback"));
    assert_eq!(c.store, Some(StoreConfig::File { path: "/var/lib/tokens.json".into() }));
    assert_eq!(c.timeout, Some(7));
    assert_eq!(c.allow_insecure_http, Some(true));
    // TOKENSMITH_STORE=memory is the in-memory store.
    let memory = Config::from_env_with(env_of(&[("TOKENSMITH_STORE", "memory")])).unwrap();
    assert_eq!(memory.store, Some(StoreConfig::Memory));
}

#[test]
fn the_environment_overrides_the_file() {
    let dir = temp_dir("overrides");
    let path = dir.join("tokensmith.toml");
    std::fs::write(&path, FULL).unwrap();
    let path_text = path.display().to_string();
    let env = env_of(&[
        ("TOKENSMITH_CONFIG", &path_text),
        ("TOKENSMITH_CLIENT_ID", "from-env"),
        ("TOKENSMITH_CLIENT_SECRET", "env-secret"),
        ("TOKENSMITH_STORE", "memory"),
    ]);
    let config = Config::load_with(env).unwrap();
    assert_eq!(config.client_id.as_deref(), Some("from-env"), "env wins");
    assert!(matches!(config.client_secret, Some(Secret::Value(_))), "env wins for the secret too");
    assert_eq!(config.store, Some(StoreConfig::Memory));
    assert_eq!(config.envelope.as_deref(), Some("/data"), "file values not overridden stay");
    // An empty variable does not override.
    let config = Config::load_with(env_of(&[("TOKENSMITH_CONFIG", &path_text), ("TOKENSMITH_CLIENT_ID", "")])).unwrap();
    assert_eq!(config.client_id.as_deref(), Some("my-client"));
}

#[test]
fn each_bad_file_input_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("colour = \"blue\"", "colour"),
        ("provider = 3", "provider"),
        ("allow_insecure_http = \"yes\"", "allow_insecure_http"),
        ("fallback_lifetime = -5", "fallback_lifetime"),
        ("fallback_lifetime = \"ten\"", "fallback_lifetime"),
        ("timeout = -1", "timeout"),
        ("timeout = \"10s\"", "timeout"),
        ("extra_params = \"audience=api\"", "extra_params"),
        ("client_secret = { env = \"A\", file = \"/b\" }", "client_secret"),
        ("client_secret = { vault = \"kv/x\" }", "client_secret"),
        ("client_secret = 42", "client_secret"),
        ("refresh_token = []", "refresh_token"),
        ("send_grant_type = \"no\"", "send_grant_type"),
        ("store = \"file\"", "store"),
        ("[store]\nkind = \"redis\"", "store.url"),
        ("[store]\nkind = \"sqlite\"", "store.kind"),
        ("[store]\nkind = \"redis\"\nurl = \"redis://h\"\npath = \"/x\"", "store.path"),
        ("[store]\nkind = \"file\"\npath = \"/x\"\nurl = \"redis://h\"", "store.url"),
        ("[store]\nkind = \"redis\"\nurl = 5", "store.url"),
        ("[store]\nkind = \"file\"", "store.path"),
        ("[store]\nkind = \"file\"\npath = \"/x\"\nmode = 600", "store.mode"),
        ("provider = ", "config"),
    ];
    for (text, key) in cases {
        let result = Config::from_toml_str(text);
        match result {
            Err(Error::Config { key: got, message }) => {
                assert_eq!(&got, key, "input {text:?}: message {message}");
                assert!(!message.is_empty());
            }
            other => panic!("input {text:?}: expected an error for `{key}`, got {other:?}"),
        }
    }
}

#[test]
fn a_missing_file_is_a_config_error() {
    let message = assert_key(Config::from_file("/nonexistent/tokensmith.toml"), "config");
    assert!(message.contains("/nonexistent/tokensmith.toml"), "{message}");
}

#[test]
fn errors_from_a_file_name_the_file() {
    let dir = temp_dir("file-errors");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "body_fromat = \"json\"\n").unwrap();
    let message = assert_key(Config::from_file(&path), "body_fromat");
    assert!(message.contains("bad.toml"), "{message}");
}

#[test]
fn each_bad_environment_value_names_its_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("TOKENSMITH_ALLOW_INSECURE_HTTP", "maybe")], "TOKENSMITH_ALLOW_INSECURE_HTTP"),
        (&[("TOKENSMITH_SEND_GRANT_TYPE", "2")], "TOKENSMITH_SEND_GRANT_TYPE"),
        (&[("TOKENSMITH_FALLBACK_LIFETIME", "1h")], "TOKENSMITH_FALLBACK_LIFETIME"),
        (&[("TOKENSMITH_TIMEOUT", "10s")], "TOKENSMITH_TIMEOUT"),
        (&[("TOKENSMITH_EXTRA_PARAMS", "=x")], "TOKENSMITH_EXTRA_PARAMS"),
        (&[("TOKENSMITH_CLIENT_SECRET", "a"), ("TOKENSMITH_CLIENT_SECRET_ENV", "B")], "TOKENSMITH_CLIENT_SECRET"),
        (&[("TOKENSMITH_REFRESH_TOKEN_ENV", "A"), ("TOKENSMITH_REFRESH_TOKEN_FILE", "/b")], "TOKENSMITH_REFRESH_TOKEN"),
        (&[("TOKENSMITH_CONFIG", "/nonexistent/tokensmith.toml")], "config"),
    ];
    for (pairs, key) in cases {
        let result = Config::load_with(env_of(pairs));
        match result {
            Err(Error::Config { key: got, .. }) => assert_eq!(&got, key, "env {pairs:?}"),
            other => panic!("env {pairs:?}: expected an error for `{key}`, got {other:?}"),
        }
    }
}

fn build(toml: &str) -> Result<tokensmith::SharedTokenProvider, Error> {
    let config = Config::from_toml_str(toml)?;
    Registry::default().build(&config)
}

const CUSTOM: &str = "provider = \"custom\"\nclient_id = \"id\"\nclient_secret = \"s3cr3t-in-file\"\n";

#[test]
fn each_bad_provider_setting_names_its_key() {
    let url = "token_url = \"https://auth.example.com/token\"\n";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "provider"),
        ("provider = \"okta\"".into(), "provider"),
        ("provider = \"custom\"\nclient_id = \"id\"\nclient_secret = \"x\"".into(), "token_url"),
        (format!("{CUSTOM}token_url = \"not a url\""), "token_url"),
        (format!("{CUSTOM}token_url = \"http://auth.example.com/token\""), "token_url"),
        (format!("{CUSTOM}token_url = \"ftp://auth.example.com/token\""), "token_url"),
        (format!("{CUSTOM}{url}credential_style = \"digest\""), "credential_style"),
        (format!("{CUSTOM}{url}body_format = \"xml\""), "body_format"),
        (format!("{CUSTOM}{url}envelope = \"data\""), "envelope"),
        (format!("{CUSTOM}{url}fallback_lifetime = 0"), "fallback_lifetime"),
        (format!("{CUSTOM}{url}scope_separator = \"\""), "scope_separator"),
        (format!("{CUSTOM}{url}grant = \"password\""), "grant"),
        (format!("{CUSTOM}{url}refresh_url = \"nope\""), "refresh_url"),
        (format!("{CUSTOM}{url}extra_params = {{ client_secret = \"x\" }}"), "extra_params"),
        (format!("{CUSTOM}{url}extra_params = {{ tenant = 1 }}"), "extra_params.tenant"),
        (format!("{CUSTOM}{url}extra_params = {{ api_key = {{ env = \"not a name\" }} }}"), "extra_params.api_key"),
        (
            format!("{CUSTOM}{url}extra_params = {{ api_key = {{ env = \"TOKENSMITH_TEST_UNSET_VAR\" }} }}"),
            "extra_params.api_key",
        ),
        (format!("{CUSTOM}{url}response = \"/issued\""), "response"),
        (format!("{CUSTOM}{url}[response]\nbearer = \"/issued/bearer\""), "response.bearer"),
        (format!("{CUSTOM}{url}[response]\naccess_token = 1"), "response.access_token"),
        (format!("{CUSTOM}{url}[response]\naccess_token = \"issued/bearer\""), "response.access_token"),
        (format!("{CUSTOM}{url}[response]\nexpires_in = \"/a\"\nexpires_at = \"/b\""), "response.expires_at"),
        (format!("{CUSTOM}{url}client_id_param = \"consumerKey\""), "client_id_param"),
        (
            format!("{CUSTOM}{url}credential_style = \"body\"\nclient_id_param = \"k\"\nclient_secret_param = \"k\""),
            "client_secret_param",
        ),
        (format!("{CUSTOM}{url}scope_param = \"grant_type\""), "scope_param"),
        (
            format!("{CUSTOM}{url}extra_params = {{ permissions = \"x\" }}\nscope_param = \"permissions\""),
            "extra_params",
        ),
        (format!("{CUSTOM}{url}grant_type_value = \" \""), "grant_type_value"),
        (format!("{CUSTOM}{url}base_url = \"https://x.example.com\""), "base_url"),
        (format!("{CUSTOM}{url}refresh_token = \"rt\""), "refresh_token"),
        (format!("{CUSTOM}{url}[store]\nkind = \"file\"\npath = \"\""), "store.path"),
        (format!("provider = \"custom\"\nclient_secret = \"x\"\n{url}"), "client_id"),
        (format!("provider = \"custom\"\nclient_id = \"id\"\n{url}"), "client_secret"),
        (
            format!(
                "provider = \"custom\"\nclient_id = \"id\"\nclient_secret = {{ env = \"TOKENSMITH_TEST_UNSET_VAR\" }}\n{url}"
            ),
            "client_secret",
        ),
        (
            format!(
                "provider = \"custom\"\nclient_id = \"a:b\"\nclient_secret = \"x\"\ncredential_style = \"basic-raw\"\n{url}"
            ),
            "client_id",
        ),
    ];
    for (toml, key) in &cases {
        let message = match build(toml) {
            Err(Error::Config { key: got, message }) => {
                assert_eq!(&got, key, "config {toml:?}: {message}");
                message
            }
            other => panic!("config {toml:?}: expected an error for `{key}`, got {other:?}"),
        };
        assert!(!message.contains("s3cr3t-in-file"), "{message}");
    }
}

#[test]
fn a_public_client_needs_no_secret() {
    let provider = build(
        "provider = \"custom\"\nclient_id = \"id\"\ncredential_style = \"none\"\ntoken_url = \"https://a.example.com/t\"",
    );
    assert!(provider.is_ok(), "{provider:?}");
}

#[test]
fn from_env_with_resolves_secrets_through_the_injected_environment() {
    let env = env_of(&[
        ("TOKENSMITH_PROVIDER", "custom"),
        ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/oauth/token"),
        ("TOKENSMITH_CLIENT_ID", "me"),
        ("TOKENSMITH_CLIENT_SECRET_ENV", "INJECTED_SECRET"),
        ("INJECTED_SECRET", "s3cr3t"),
    ]);
    assert!(tokensmith::from_env_with(env).is_ok());
    let missing = tokensmith::from_env_with(env_of(&[
        ("TOKENSMITH_PROVIDER", "custom"),
        ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/oauth/token"),
        ("TOKENSMITH_CLIENT_ID", "me"),
        ("TOKENSMITH_CLIENT_SECRET_ENV", "INJECTED_SECRET"),
    ]));
    let message = assert_key(missing, "client_secret");
    assert!(message.contains("INJECTED_SECRET"));
}

#[test]
fn built_in_providers_refuse_keys_meant_for_custom() {
    // Whatever features are compiled in, a built-in named with a custom-only key is refused naming the
    // key (or, if compiled out, naming the feature under `provider`).
    for provider in ["probit", "generic-django", "ruby-style", "whitebit"] {
        let toml = format!(
            "provider = \"{provider}\"\nclient_id = \"id\"\nclient_secret = \"x\"\nbase_url = \"https://a.example.com\"\nenvelope = \"/data\""
        );
        match build(&toml) {
            Err(Error::Config { key, message }) => {
                if key == "provider" {
                    assert!(message.contains(&format!("enable the `{provider}` feature")), "{message}");
                } else {
                    assert_eq!(key, "envelope", "{provider}: {message}");
                }
            }
            other => panic!("{provider}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn registry_lists_and_builds_registered_providers() {
    let mut registry = Registry::default();
    registry.register("mine", |config: &Config| {
        config.require_client_id()?;
        Ok(tokensmith::SharedTokenProvider::new(tokensmith::provide_token_fn(|| async {
            Ok(tokensmith::AccessToken::builder("t").build())
        })))
    });
    assert!(registry.names().contains(&"mine".to_owned()));
    assert!(registry.names().contains(&"custom".to_owned()));
    let config = Config::from_toml_str("provider = \"mine\"").unwrap();
    assert_key(registry.build(&config), "client_id");
    let config = Config::from_toml_str("provider = \"mine\"\nclient_id = \"x\"").unwrap();
    assert!(registry.build(&config).is_ok());
    // Not in the default registry.
    assert_key(Registry::default().build(&config), "provider");
}

#[cfg(not(feature = "whitebit"))]
#[test]
fn a_compiled_out_provider_names_its_feature() {
    let message = assert_key(build("provider = \"whitebit\"\nclient_id = \"id\"\nclient_secret = \"x\""), "provider");
    assert!(message.contains("enable the `whitebit` feature of tokensmith"), "{message}");
}

#[cfg(not(feature = "probit"))]
#[test]
fn a_compiled_out_probit_names_its_feature() {
    let message = assert_key(build("provider = \"probit\"\nclient_id = \"id\"\nclient_secret = \"x\""), "provider");
    assert!(message.contains("enable the `probit` feature of tokensmith"), "{message}");
}

#[test]
fn redis_store_from_toml_env_and_debug_hides_the_password() {
    let config = Config::from_toml_str(
        "store = { kind = \"redis\", url = \"redis://:pw-secret@127.0.0.1:6379/0\", prefix = \"app\" }",
    )
    .unwrap();
    assert_eq!(
        config.store,
        Some(StoreConfig::Redis { url: "redis://:pw-secret@127.0.0.1:6379/0".into(), prefix: Some("app".into()) })
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("pw-secret") && debug.contains("127.0.0.1:6379"), "{debug}");

    let env = Config::from_env_with(|name| (name == "TOKENSMITH_STORE").then(|| "redis://127.0.0.1:6390/2".to_owned()))
        .unwrap();
    assert_eq!(env.store, Some(StoreConfig::Redis { url: "redis://127.0.0.1:6390/2".into(), prefix: None }));
}

#[test]
fn the_timeout_becomes_the_retry_policy_of_every_provider() {
    let with = |timeout: Option<u64>| {
        let mut config = Config::default();
        config.timeout = timeout;
        config
    };
    assert_eq!(with(None).retry_policy().unwrap(), tokensmith::RetryPolicy::default());
    let short = with(Some(5)).retry_policy().unwrap();
    assert_eq!(short.get_attempt_timeout(), std::time::Duration::from_secs(5));
    assert_eq!(short.get_deadline(), std::time::Duration::from_secs(30));
    // A timeout longer than the default deadline lengthens the deadline: one attempt fits.
    let long = with(Some(45)).retry_policy().unwrap();
    assert_eq!(long.get_deadline(), std::time::Duration::from_secs(45));
    assert_key(with(Some(0)).retry_policy(), "timeout");

    for (provider, extra) in [
        ("probit", ""),
        ("generic-django", "base_url = \"https://django.example.com\"\n"),
        ("ruby-style", "base_url = \"https://ruby.example.com\"\n"),
        ("custom", "token_url = \"https://auth.example.com/token\"\n"),
        ("whitebit", ""),
    ] {
        let text =
            format!("provider = \"{provider}\"\nclient_id = \"id\"\nclient_secret = \"s\"\ntimeout = 42\n{extra}");
        let provider_debug = format!("{:?}", tokensmith::from_config(&Config::from_toml_str(&text).unwrap()).unwrap());
        assert!(provider_debug.contains("attempt_timeout: 42s"), "{provider}: {provider_debug}");
        let zero = text.replace("timeout = 42", "timeout = 0");
        assert_key(Config::from_toml_str(&zero), "timeout");
        let mut config = Config::from_toml_str(&text).unwrap();
        config.timeout = Some(0);
        assert_key(tokensmith::from_config(&config), "timeout");
    }
}

/// Issue 15 item 2: `TOKENSMITH_TIMEOUT=18446744073709551615` (and any other duration out of range,
/// wherever it is set) is a configuration error naming what was set and the allowed range, never a
/// panic on a clock overflow.
#[test]
fn every_duration_is_range_checked_in_the_file_the_environment_and_code() {
    const HUGE: &str = "18446744073709551615";
    for (var, value, range) in [
        ("TOKENSMITH_TIMEOUT", HUGE, "from 1 to 3600"),
        ("TOKENSMITH_TIMEOUT", "99999999999999999999999", "from 1 to 3600"),
        ("TOKENSMITH_TIMEOUT", "3601", "from 1 to 3600"),
        ("TOKENSMITH_TIMEOUT", "0", "from 1 to 3600"),
        ("TOKENSMITH_TIMEOUT", "-3", "from 1 to 3600"),
        ("TOKENSMITH_FALLBACK_LIFETIME", HUGE, "from 1 to 2592000"),
        ("TOKENSMITH_FALLBACK_LIFETIME", "0", "from 1 to 2592000"),
    ] {
        let message = assert_key(Config::from_env_with(env_of(&[(var, value)])), var);
        assert!(message.contains(range), "{var}={value}: {message}");
        let env = env_of(&[
            ("TOKENSMITH_PROVIDER", "custom"),
            ("TOKENSMITH_CLIENT_ID", "id"),
            ("TOKENSMITH_CLIENT_SECRET", "s"),
            ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/token"),
            (var, value),
        ]);
        assert_key(tokensmith::from_env_with(env), var);
    }
    for (text, key, range) in [
        ("timeout = 9223372036854775807", "timeout", "from 1 to 3600"),
        ("timeout = 3601", "timeout", "from 1 to 3600"),
        ("timeout = 1.5", "timeout", "from 1 to 3600"),
        ("fallback_lifetime = 9223372036854775807", "fallback_lifetime", "from 1 to 2592000"),
        ("fallback_lifetime = -5", "fallback_lifetime", "from 1 to 2592000"),
    ] {
        let message = assert_key(Config::from_toml_str(text), key);
        assert!(message.contains(range), "{text}: {message}");
    }
    // A `Config` built in code goes through the same check when the provider is built.
    let mut config =
        Config::from_toml_str(&format!("{CUSTOM}token_url = \"https://auth.example.com/token\"\n")).unwrap();
    config.timeout = Some(u64::MAX);
    assert!(assert_key(tokensmith::from_config(&config), "timeout").contains("from 1 to 3600"));
    config.timeout = None;
    config.fallback_lifetime = Some(u64::MAX);
    assert!(assert_key(tokensmith::from_config(&config), "fallback_lifetime").contains("from 1 to 2592000"));
    config.fallback_lifetime = Some(2_592_000);
    config.timeout = Some(3600);
    assert!(tokensmith::from_config(&config).is_ok());
}

/// Issue 15 item 6: a secret given where the *name* of a variable is expected is never echoed.
#[test]
fn a_value_given_where_a_variable_name_is_expected_is_never_echoed() {
    const SECRET: &str = "Sup3rS3cretValue!";
    const KEY: &str = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
    let url = "TOKENSMITH_TOKEN_URL";
    let base = [
        ("TOKENSMITH_PROVIDER", "custom"),
        ("TOKENSMITH_CLIENT_ID", "id"),
        (url, "https://auth.example.com/token"),
        ("TOKENSMITH_STORE", "/tmp/tokensmith-never-written.json"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        env_of(&pairs)
    };
    let never_shown = |err: &Error, value: &str| {
        let text = format!("{err} {err:?}");
        assert!(!text.contains(value.trim_end_matches(['!', '='])), "{text}");
        assert!(text.contains("not an environment variable name"), "{text}");
    };
    for (var, value) in [
        ("TOKENSMITH_CLIENT_SECRET_ENV", SECRET),
        ("TOKENSMITH_REFRESH_TOKEN_ENV", SECRET),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", KEY),
        ("TOKENSMITH_CLIENT_SECRET_ENV", "9f86d081884c7d659a2feaa0c55ad015"),
    ] {
        let err = tokensmith::from_env_with(with(&[(var, value)])).unwrap_err();
        assert!(matches!(&err, Error::Config { key, .. } if key == var), "{err:?}");
        never_shown(&err, value);
    }
    for (text, key, value) in [
        (format!("client_secret = {{ env = {SECRET:?} }}"), "client_secret", SECRET),
        (format!("refresh_token = {{ env = {SECRET:?} }}"), "refresh_token", SECRET),
        (
            format!("[store]\nkind = \"file\"\npath = \"/x\"\nencryption_key = {{ env = {KEY:?} }}"),
            "store.encryption_key",
            KEY,
        ),
    ] {
        let err = Config::from_toml_str(&text).unwrap_err();
        assert!(matches!(&err, Error::Config { key: got, .. } if got == key), "{err:?}");
        never_shown(&err, value);
    }
    // Built in code: resolving, `Debug` and `describe` never show it either.
    let mut config =
        Config::from_toml_str(&format!("{CUSTOM}token_url = \"https://auth.example.com/token\"\n")).unwrap();
    config.client_secret = Some(Secret::Env(SECRET.into()));
    let err = tokensmith::from_config(&config).unwrap_err();
    assert!(matches!(&err, Error::Config { key, .. } if key == "client_secret"), "{err:?}");
    never_shown(&err, SECRET);
    let err = config.resolve_secrets_with(&|_| None).unwrap_err();
    never_shown(&err, SECRET);
    assert!(!format!("{config:?}").contains("Sup3r"), "{config:?}");
    assert!(!Secret::Env(SECRET.into()).describe().contains("Sup3r"));
    config.store_encryption_key = Some(Secret::Env(KEY.into()));
    config.store = Some(StoreConfig::File { path: "/tmp/tokensmith-never-written.json".into() });
    config.client_secret = Some(Secret::value("s"));
    let err = tokensmith::build_store_encryption(&config).unwrap_err();
    never_shown(&err, KEY);
    // A real variable name that is unset is still named: it is a name, not a value.
    let err = tokensmith::from_env_with(with(&[("TOKENSMITH_CLIENT_SECRET_ENV", "MY_UNSET_SECRET_VAR")])).unwrap_err();
    assert!(err.to_string().contains("`MY_UNSET_SECRET_VAR`"), "{err}");
}

/// Issue 15 item 5: a Redis password given as a `pass` / `password` query parameter is hidden like
/// one in the userinfo, in `StoreConfig`'s `Display` and `Debug` and the `Config`'s `Debug`.
#[test]
fn store_display_and_debug_hide_query_passwords() {
    for url in [
        "redis+unix:///run/redis.sock?pass=hunter2-query",
        "redis+unix:///run/redis.sock?db=1&password=hunter2-query",
        "redis://:hunter2-query@10.0.0.5:6379/0",
        "redis://:hunter2-query@10.0.0.5:99999/0",
    ] {
        let config = Config::from_env_with(env_of(&[("TOKENSMITH_STORE", url)])).unwrap();
        let store = config.store.clone().unwrap();
        assert!(matches!(store, StoreConfig::Redis { .. }), "{store:?}");
        for shown in [store.to_string(), format!("{store:?}"), format!("{config:?}")] {
            assert!(!shown.contains("hunter2") && shown.contains("redacted"), "{shown}");
        }
    }
}

/// Issue 15 item 8: a refresh-token grant (which the server may rotate) with the in-memory store
/// would replay a spent refresh token on the next run: refused, naming `store`.
#[test]
fn a_refresh_token_grant_needs_a_file_or_redis_store() {
    let refresh = format!(
        "{CUSTOM}token_url = \"https://auth.example.com/token\"\ngrant = \"refresh_token\"\nrefresh_token = \"rt-secret\"\n"
    );
    for extra in ["", "[store]\nkind = \"memory\"\n"] {
        let message = assert_key(build(&format!("{refresh}{extra}")), "store");
        assert!(message.contains("file store") && message.contains("Redis store"), "{message}");
        assert!(!message.contains("rt-secret"), "{message}");
    }
    let dir = temp_dir("refresh-grant-store");
    let path = dir.join("tokens.json");
    assert!(build(&format!("{refresh}[store]\nkind = \"file\"\npath = {:?}\n", path.display().to_string())).is_ok());
    let env = env_of(&[
        ("TOKENSMITH_PROVIDER", "custom"),
        ("TOKENSMITH_CLIENT_ID", "id"),
        ("TOKENSMITH_CLIENT_SECRET", "s"),
        ("TOKENSMITH_TOKEN_URL", "https://auth.example.com/token"),
        ("TOKENSMITH_GRANT", "refresh_token"),
        ("TOKENSMITH_REFRESH_TOKEN", "rt"),
    ]);
    assert_key(tokensmith::from_env_with(env), "store");
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 16's dialect, every key of it, as one file.
const RENAMED: &str = r#"provider = "custom"
token_url = "https://auth.example.test/v3/token"
client_id = "my-client"
client_secret = { env = "MY_SECRET" }
body_format = "json"
credential_style = "body"
client_id_param = "consumerKey"
client_secret_param = "consumerSecret"
grant_type_param = "grantKind"
grant_type_value = "client_credentials"
scope_param = "permissions"
scope = "read write"
[response]
access_token = "/issued/bearer"
expires_in = "/issued/lifetime"
token_type = "/issued/type"
refresh_token = "/issued/renewal"
scope = "/issued/permissions"
error = "/problem/type"
error_description = "/problem/detail"
[extra_params]
tenant = "eu-1"
api_key = { env = "MY_API_KEY" }
"#;

#[test]
fn a_dialect_that_renames_every_field_is_configuration() {
    let mut config = Config::from_toml_str(RENAMED).unwrap();
    let env = env_of(&[("MY_SECRET", "client-secret-0f3a"), ("MY_API_KEY", "api-key-9c1d")]);
    config.resolve_secrets_with(&env).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("client-secret-0f3a") && !debug.contains("api-key-9c1d"), "{debug}");
    let (client, scopes) = tokensmith::custom::client(&config).unwrap();
    let request = client.build_request(&tokensmith::request::Grant::ClientCredentials, &scopes).unwrap();
    assert_eq!(
        String::from_utf8(request.wire_body()).unwrap(),
        r#"{"grantKind":"client_credentials","permissions":"read write","api_key":"api-key-9c1d","tenant":"eu-1","consumerKey":"my-client","consumerSecret":"client-secret-0f3a"}"#
    );
    assert!(!request.has_header("authorization"));
    for shown in [format!("{request:?}"), format!("{client:?}")] {
        assert!(!shown.contains("client-secret-0f3a") && !shown.contains("api-key-9c1d"), "{shown}");
    }
    let pointers = client.endpoint().get_response_format();
    use tokensmith::parse::ResponseField;
    assert_eq!(pointers.field_pointer(ResponseField::AccessToken), Some("/issued/bearer"));
    assert_eq!(pointers.field_pointer(ResponseField::ErrorDescription), Some("/problem/detail"));
    assert_eq!(pointers.field_pointer(ResponseField::ExpiresAt), None);
}

#[test]
fn unknown_response_keys_are_refused_with_the_known_ones() {
    let err = Config::from_toml_str("[response]\nbearer = \"/issued/bearer\"").unwrap_err();
    let Error::Config { key, message } = err else { panic!() };
    assert_eq!(key, "response.bearer");
    assert!(
        message.contains(
            "access_token, expires_in, expires_at, token_type, refresh_token, scope, error, error_description"
        ),
        "{message}"
    );
}

#[test]
fn the_renaming_keys_come_from_the_environment_too() {
    let config = Config::from_env_with(env_of(&[
        ("TOKENSMITH_CLIENT_ID_PARAM", "consumerKey"),
        ("TOKENSMITH_CLIENT_SECRET_PARAM", "consumerSecret"),
        ("TOKENSMITH_GRANT_TYPE_PARAM", "grantKind"),
        ("TOKENSMITH_GRANT_TYPE_VALUE", "cc"),
        ("TOKENSMITH_SCOPE_PARAM", "permissions"),
        ("TOKENSMITH_RESPONSE_ACCESS_TOKEN", "/issued/bearer"),
        ("TOKENSMITH_RESPONSE_EXPIRES_AT", "/issued/until"),
        ("TOKENSMITH_RESPONSE_ERROR_DESCRIPTION", "/problem/detail"),
    ]))
    .unwrap();
    assert_eq!(config.client_id_param.as_deref(), Some("consumerKey"));
    assert_eq!(config.client_secret_param.as_deref(), Some("consumerSecret"));
    assert_eq!(config.grant_type_param.as_deref(), Some("grantKind"));
    assert_eq!(config.grant_type_value.as_deref(), Some("cc"));
    assert_eq!(config.scope_param.as_deref(), Some("permissions"));
    let response = config.response.unwrap();
    assert_eq!(response["access_token"], "/issued/bearer");
    assert_eq!(response["expires_at"], "/issued/until");
    assert_eq!(response["error_description"], "/problem/detail");
    assert_eq!(response.len(), 3);
}

#[test]
fn built_in_providers_refuse_the_renaming_keys() {
    for key in ["scope_param = \"p\"", "[response]\naccess_token = \"/t\""] {
        let text = format!("provider = \"probit\"\nclient_id = \"id\"\nclient_secret = \"s\"\n{key}");
        let err = tokensmith::from_config(&Config::from_toml_str(&text).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{key}: {err}");
    }
}

/// The worked example of `docs/writing-a-provider.md` parses and builds the request it describes.
#[test]
fn the_documented_renamed_dialect_works() {
    let doc = include_str!("../../../docs/writing-a-provider.md");
    let section = doc.split("### A dialect that renames everything").nth(1).unwrap();
    let toml = section.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(toml.lines().count() <= 15, "the example stays short");
    let mut config = Config::from_toml_str(toml).unwrap();
    config.resolve_secrets_with(&env_of(&[("MY_SECRET", "s3cr3t-doc-1"), ("MY_API_KEY", "k3y-doc-2")])).unwrap();
    let (client, scopes) = tokensmith::custom::client(&config).unwrap();
    let request = client.build_request(&tokensmith::request::Grant::ClientCredentials, &scopes).unwrap();
    assert_eq!(
        request.redacted_body(),
        r#"{"grantKind":"client_credentials","permissions":"read write","api_key":"[redacted]","tenant":"eu-1","consumerKey":"my-client","consumerSecret":"[redacted]"}"#
    );
}

#[test]
fn secrets_named_by_variable_come_from_the_injected_environment() {
    let dir = temp_dir("injected-secrets");
    let path = dir.join("tokensmith.toml");
    std::fs::write(
        &path,
        "provider = \"custom\"\ntoken_url = \"https://auth.example.com/token\"\nclient_id = \"id\"\n\
         client_secret = { env = \"INJECTED_ONLY_SECRET\" }\n\
         [extra_params]\napi_key = { env = \"INJECTED_ONLY_KEY\" }\n",
    )
    .unwrap();
    let path_text = path.display().to_string();
    // The variables exist only in the injected environment, never in the process's.
    assert!(std::env::var("INJECTED_ONLY_SECRET").is_err());
    let env = env_of(&[
        ("TOKENSMITH_CONFIG", &path_text),
        ("INJECTED_ONLY_SECRET", "from-the-closure"),
        ("INJECTED_ONLY_KEY", "key-from-the-closure"),
    ]);
    let config = Config::load_with(env).unwrap();
    assert_eq!(config.require_client_secret().unwrap().expose_secret(), "from-the-closure");
    let params = config.extra_params.as_ref().unwrap();
    assert!(params["api_key"].as_plain().is_none(), "still a secret");
    assert!(Registry::default().build(&config).is_ok());
    // A variable the injected environment lacks is reported when the provider is built, naming the key.
    let config = Config::load_with(env_of(&[("TOKENSMITH_CONFIG", &path_text)])).unwrap();
    let err = config.require_client_secret().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret"), "{err}");
}

#[test]
fn a_service_file_embeds_the_configuration_in_a_section() {
    let dir = temp_dir("section");
    let path = dir.join("service.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:8080\"\n\n[tokensmith]\nprovider = \"probit\"\nclient_id = \"svc\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let config = Config::load_section(&path, "tokensmith").unwrap();
    assert_eq!(config.client_id.as_deref(), Some("svc"));
    assert!(Registry::default().build(&config).is_ok());
    // The section's keys are checked like a file's, naming the key.
    let err = Config::from_toml_section("[tokensmith]\nclient_secrt = \"x\"\n", "tokensmith").unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secrt"), "{err}");
    assert!(err.to_string().contains("client_secret"), "suggests the key: {err}");
    let err = Config::from_toml_section("tokensmith = 3\n", "tokensmith").unwrap_err();
    assert!(err.to_string().contains("must be a table"), "{err}");
}

#[test]
fn a_toml_error_gives_line_and_column() {
    let err = Config::from_toml_str("provider = \"probit\"\nclient_id = \"x\"\ntimeout = = 3\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3, column"), "{text}");
}

#[test]
fn nothing_configured_mentions_the_config_file_variable() {
    let err = Config::default().provider_name().unwrap_err().to_string();
    assert!(err.contains("TOKENSMITH_CONFIG") && err.contains("TOKENSMITH_PROVIDER"), "{err}");
}

#[test]
fn a_bad_value_from_a_variable_names_the_key_and_the_variable() {
    let env = env_of(&[
        ("TOKENSMITH_PROVIDER", "probit"),
        ("TOKENSMITH_CLIENT_ID", "id"),
        ("TOKENSMITH_CLIENT_SECRET", "s"),
        ("TOKENSMITH_BASE_URL", "ftp://x"),
    ]);
    let config = Config::from_env_with(env).unwrap();
    let err = Registry::default().build(&config).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "base_url"), "{err}");
    assert!(err.to_string().contains("TOKENSMITH_BASE_URL"), "{err}");
}
