//! `[store] encryption_key` and `TOKENSMITH_STORE_ENCRYPTION_KEY*`: the configuration path to an
//! encrypting file store, and errors that name the key at fault without showing it.

#![cfg(feature = "encryption")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;

use tokensmith::config::{Config, Secret, StoreConfig};
use tokensmith::secrecy::ExposeSecret as _;
use tokensmith::{AccessToken, Error, RefreshToken, build_store, build_store_encryption};

/// 32 bytes (0x00..0x1f) in standard base64.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ACCESS: &str = "access-Vb7nQ2xLk9Tp";
const REFRESH: &str = "refresh-Hg3mW8cZr4Yd";

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokensmith-enc-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn assert_key<T: std::fmt::Debug>(result: Result<T, Error>, expected: &str) -> String {
    match result {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, expected, "wrong key; message: {message}");
            message
        }
        other => panic!("expected a config error for `{expected}`, got {other:?}"),
    }
}

#[tokio::test]
async fn the_configuration_builds_an_encrypting_file_store() {
    let dir = temp_dir("builds");
    let key_file = dir.join("token.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let tokens = dir.join("tokens.json");
    let config = Config::from_toml_str(&format!(
        "[store]\nkind = \"file\"\npath = {:?}\nencryption_key = {{ file = {:?} }}\n",
        tokens.display().to_string(),
        key_file.display().to_string()
    ))
    .unwrap();
    assert!(matches!(config.store_encryption_key, Some(Secret::File(ref p)) if p == &key_file));
    assert_eq!(config.store, Some(StoreConfig::File { path: tokens.clone() }));

    let store = build_store(&config).unwrap();
    assert!(format!("{store:?}").contains("encrypted: true"), "{store:?}");
    let token = AccessToken::builder(ACCESS).refresh_token(Some(RefreshToken::new(REFRESH))).build();
    store.save("custom/id/read", &token).await.unwrap();
    let text = std::fs::read_to_string(&tokens).unwrap();
    for secret in [ACCESS, REFRESH] {
        for i in 0..=secret.len() - 6 {
            assert!(!text.contains(&secret[i..i + 6]), "{text}");
        }
    }
    assert!(text.contains("ts1:") && text.contains("custom/id/read"), "{text}");

    // The same key given by environment variable (resolved through an injected environment) reads it.
    let mut again = Config::from_env_with(env_of(&[
        ("TOKENSMITH_STORE", tokens.to_str().unwrap()),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", "MYAPP_TOKEN_KEY"),
    ]))
    .unwrap();
    again.resolve_secrets_with(&env_of(&[("MYAPP_TOKEN_KEY", KEY)])).unwrap();
    let loaded = build_store(&again).unwrap().load("custom/id/read").await.unwrap().unwrap();
    assert_eq!(loaded.secret().expose_secret(), ACCESS);

    // Without the key, the file is refused, not read as something else.
    let plain = Config::from_env_with(env_of(&[("TOKENSMITH_STORE", tokens.to_str().unwrap())])).unwrap();
    let err = build_store(&plain).unwrap().load("custom/id/read").await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }) && err.to_string().contains("encrypted"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_key_by_value_env_or_file_from_the_environment() {
    let c = Config::from_env_with(env_of(&[("TOKENSMITH_STORE_ENCRYPTION_KEY", KEY)])).unwrap();
    assert!(matches!(c.store_encryption_key, Some(Secret::Value(ref v)) if v.expose_secret() == KEY));
    assert!(!format!("{c:?}").contains(&KEY[..10]), "{c:?}");
    let c = Config::from_env_with(env_of(&[("TOKENSMITH_STORE_ENCRYPTION_KEY_FILE", "/run/secrets/k")])).unwrap();
    assert!(matches!(c.store_encryption_key, Some(Secret::File(ref p)) if p == &PathBuf::from("/run/secrets/k")));
    let err = Config::from_env_with(env_of(&[
        ("TOKENSMITH_STORE_ENCRYPTION_KEY", KEY),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", "X"),
    ]));
    assert_key(err, "TOKENSMITH_STORE_ENCRYPTION_KEY");
    for (var, _) in tokensmith::config::ENV_VARS.iter().filter(|(_, key)| *key == "store.encryption_key") {
        assert!(var.starts_with("TOKENSMITH_STORE_ENCRYPTION_KEY"), "{var}");
    }
}

#[test]
fn the_key_outlives_a_store_given_later() {
    // The key from the file stays when the environment (or a CLI flag) names another store file.
    let mut config = Config::from_toml_str(
        "[store]\nkind = \"file\"\npath = \"/tmp/a.json\"\nencryption_key = { env = \"MYAPP_TOKEN_KEY\" }",
    )
    .unwrap();
    config.merge_env(env_of(&[("TOKENSMITH_STORE", "/tmp/b.json")])).unwrap();
    assert_eq!(config.store, Some(StoreConfig::File { path: "/tmp/b.json".into() }));
    assert!(matches!(config.store_encryption_key, Some(Secret::Env(ref v)) if v == "MYAPP_TOKEN_KEY"));
}

#[test]
fn bad_keys_name_the_setting_and_never_show_the_key() {
    let short = "c2hvcnQtc2VjcmV0LWtleQ=="; // 16 bytes
    // By variable: named in the message, the value nowhere.
    let mut config = Config::from_env_with(env_of(&[
        ("TOKENSMITH_STORE", "/tmp/t.json"),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY_ENV", "MYAPP_TOKEN_KEY"),
    ]))
    .unwrap();
    let err = config.resolve_secrets_with(&env_of(&[("MYAPP_TOKEN_KEY", short)]));
    let message = assert_key(err, "store.encryption_key");
    assert!(message.contains("MYAPP_TOKEN_KEY") && message.contains("base64"), "{message}");
    assert!(!message.contains(short) && !message.contains("c2hvcnQt"), "{message}");
    let err = config.resolve_secrets_with(&env_of(&[]));
    assert!(assert_key(err, "store.encryption_key").contains("MYAPP_TOKEN_KEY"));

    // By value.
    let config = Config::from_env_with(env_of(&[
        ("TOKENSMITH_STORE", "/tmp/t.json"),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY", "not base64!"),
    ]))
    .unwrap();
    let message = assert_key(build_store(&config), "store.encryption_key");
    assert!(!message.contains("not base64!"), "{message}");
    assert!(build_store_encryption(&config).is_err());

    // By file: the file named, its content not.
    let dir = temp_dir("bad-file");
    let key_file = dir.join("token.key");
    std::fs::write(&key_file, "hunter2hunter2").unwrap();
    let mut config = Config::default();
    config.store = Some(StoreConfig::File { path: dir.join("t.json") });
    config.store_encryption_key = Some(Secret::File(key_file.clone()));
    let message = assert_key(build_store(&config), "store.encryption_key");
    assert!(message.contains(&key_file.display().to_string()) && !message.contains("hunter2"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_file_or_redis_store_takes_a_key_and_a_memory_store_does_not() {
    assert_key(Config::from_toml_str("[store]\nkind = \"memory\"\nencryption_key = \"x\""), "store.encryption_key");
    let redis = "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1/0\"\nencryption_key = { env = \"K\" }";
    assert!(Config::from_toml_str(redis).is_ok());
    assert_key(
        Config::from_toml_str("[store]\nkind = \"file\"\npath = \"/tmp/t.json\"\nencryption_key = 5"),
        "store.encryption_key",
    );
    assert_key(
        Config::from_toml_str(
            "[store]\nkind = \"file\"\npath = \"/tmp/t.json\"\nencryption_key = { env = \"A\", file = \"/b\" }",
        ),
        "store.encryption_key",
    );
    // A key from the environment with no file store is refused, not ignored.
    let config = Config::from_env_with(env_of(&[("TOKENSMITH_STORE_ENCRYPTION_KEY", KEY)])).unwrap();
    let message = assert_key(build_store(&config), "store.encryption_key");
    assert!(message.contains("in memory"), "{message}");
    // A Redis store seals its records with it (nothing connects until the first command).
    let config = Config::from_env_with(env_of(&[
        ("TOKENSMITH_STORE", "redis://127.0.0.1/0"),
        ("TOKENSMITH_STORE_ENCRYPTION_KEY", KEY),
    ]))
    .unwrap();
    let store = build_store(&config).unwrap();
    assert!(format!("{store:?}").contains("encrypted: true"), "{store:?}");
    // An unknown key in `[store]` lists `encryption_key` among the known ones.
    let message =
        assert_key(Config::from_toml_str("[store]\nkind = \"file\"\npath = \"/t\"\nkey = \"x\""), "store.key");
    assert!(message.contains("encryption_key"), "{message}");
}
