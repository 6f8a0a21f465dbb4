//! The table of keys (`tokensmith::config::KEY_TABLE`) against what is derived from it and against
//! `docs/configuration.md`'s table of keys and variables, which must name the same keys and the same
//! variables, row by row and in the same order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use tokensmith::Error;
use tokensmith::config::{
    CONFIG_FILE_VAR, Config, ENV_VARS, KEY_TABLE, KEYS, KeyKind, KeySpec, SECONDS_KEYS, Secret, StoreConfig,
    StoreSpecError, suggest_env_var, suggest_key,
};

/// The configuration guide, read at compile time from this repository.
const GUIDE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"));

/// One row of the guide's table: its keys (`[store] encryption_key` as `store.encryption_key`,
/// none for `—`), its variables, its "used by" text.
#[derive(Debug)]
struct Row {
    line: usize,
    keys: Vec<String>,
    vars: Vec<String>,
    used_by: String,
}

/// The text between backticks in `cell`, in order.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// `[store]` → `store`, `[store] encryption_key` → `store.encryption_key`, `scope` → `scope`.
fn key_name(span: &str) -> String {
    match span.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((table, "")) => table.to_owned(),
        Some((table, key)) => format!("{table}.{}", key.trim()),
        None => span.to_owned(),
    }
}

fn doc_rows() -> Vec<Row> {
    const HEADING: &str = "\n## Keys and variables\n";
    let start = GUIDE.find(HEADING).expect("a `## Keys and variables` section");
    // `line` is the line's number in the file: the heading's, plus one per line after it.
    let first_line = GUIDE[..start].lines().count() + 1;
    let section = GUIDE[start + 1..].split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    let mut in_table = false;
    for (index, text) in section.lines().enumerate() {
        let line = first_line + index;
        if !text.starts_with('|') {
            if in_table {
                break; // The first table of the section only.
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = text.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "line {line} of the table has {} cells, not 4: {text}", cells.len());
        if cells[0] == "key" || cells[0].starts_with("---") {
            continue;
        }
        let keys =
            if cells[0] == "—" { Vec::new() } else { code_spans(cells[0]).iter().map(|s| key_name(s)).collect() };
        assert!(cells[0] == "—" || !keys.is_empty(), "line {line}: no key in `{}`", cells[0]);
        rows.push(Row { line, keys, vars: code_spans(cells[1]), used_by: cells[2].to_owned() });
    }
    assert!(rows.len() > 20, "the table was not found: {rows:?}");
    rows
}

fn spec(key: &str) -> &'static KeySpec {
    KEY_TABLE.iter().find(|spec| spec.key == key).unwrap_or_else(|| panic!("`{key}` is not in KEY_TABLE"))
}

#[test]
fn the_guide_documents_every_key_and_variable_and_nothing_else() {
    let rows = doc_rows();
    let mut documented = Vec::new();
    for row in &rows {
        if row.keys.is_empty() {
            assert_eq!(row.vars, [CONFIG_FILE_VAR], "line {}: a row without a key is for {CONFIG_FILE_VAR}", row.line);
            continue;
        }
        let mut expected = Vec::new();
        for key in &row.keys {
            assert!(
                KEY_TABLE.iter().any(|spec| spec.key == key),
                "line {}: the guide documents `{key}`, which is not a key (KEY_TABLE)",
                row.line
            );
            let spec = spec(key);
            assert_eq!(row.used_by, spec.used_by, "line {}: the \"used by\" of `{key}`", row.line);
            expected.extend(spec.env.iter().map(|var| var.name.to_owned()));
            documented.push(key.clone());
        }
        for var in &row.vars {
            assert!(var.starts_with("TOKENSMITH_"), "line {}: `{var}` is not a full variable name", row.line);
        }
        assert_eq!(
            row.vars, expected,
            "line {}: the variables of {:?} (the guide, then KEY_TABLE, in order)",
            row.line, row.keys
        );
    }
    let table: Vec<&str> = KEY_TABLE.iter().map(|spec| spec.key).collect();
    assert_eq!(documented, table, "the guide's keys, in order, against KEY_TABLE's");
    let vars: BTreeSet<&str> = rows.iter().flat_map(|row| row.vars.iter().map(String::as_str)).collect();
    let known: BTreeSet<&str> = ENV_VARS.iter().map(|(var, _)| *var).chain([CONFIG_FILE_VAR]).collect();
    assert_eq!(vars, known, "the guide's variables against ENV_VARS and CONFIG_FILE_VAR");
}

#[test]
fn the_lists_come_from_the_table() {
    let top: Vec<&str> = KEY_TABLE.iter().map(|spec| spec.key).filter(|key| !key.contains('.')).collect();
    assert_eq!(KEYS, top.as_slice());
    let vars: Vec<(&str, &str)> = KEY_TABLE.iter().flat_map(|spec| spec.env.iter().map(|v| (v.name, v.key))).collect();
    assert_eq!(ENV_VARS, vars.as_slice());
    let seconds: Vec<&str> = SECONDS_KEYS.iter().map(|(key, _, _)| *key).collect();
    assert_eq!(seconds, ["fallback_lifetime", "timeout"]);
    assert_eq!(SECONDS_KEYS[1], ("timeout", "TOKENSMITH_TIMEOUT", tokensmith::config::TIMEOUT_SECS));
    assert_eq!(spec("timeout").kind, KeyKind::Seconds(1..=3600));
    assert_eq!(spec("client_secret").kind, KeyKind::Secret);
    assert_eq!(spec("store.encryption_key").field, "store_encryption_key");
    // No variable is read for two keys, and every name is a variable name.
    let names: BTreeSet<&str> = ENV_VARS.iter().map(|(var, _)| *var).collect();
    assert_eq!(names.len(), ENV_VARS.len());
    assert!(!names.contains(CONFIG_FILE_VAR));
    // `[response]`'s variables are its fields, all of them.
    let fields: Vec<String> =
        tokensmith::parse::ResponseField::ALL.iter().map(|f| format!("response.{}", f.name())).collect();
    let response: Vec<String> = spec("response").env.iter().map(|var| var.key.to_owned()).collect();
    assert_eq!(response, fields);
    for var in spec("response").env {
        let field = var.key.strip_prefix("response.").unwrap();
        assert_eq!(var.name, format!("TOKENSMITH_RESPONSE_{}", field.to_ascii_uppercase()));
    }
    // A field's docs are its meaning.
    assert!(spec("timeout").meaning().starts_with("The seconds one token request attempt may take"));
    assert!(!spec("timeout").meaning().contains('\n'));
}

/// Every key set through its first variable is set, and `Debug` shows every field but no secret.
#[test]
fn each_variable_sets_its_key_and_debug_names_every_field() {
    for spec in KEY_TABLE {
        let Some(var) = spec.env.first() else { continue };
        let value = match (&spec.kind, spec.key) {
            (KeyKind::Bool, _) => "true",
            (KeyKind::Seconds(_), _) => "60",
            (_, "extra_params") => "audience=api",
            (_, "store") => "memory",
            (KeyKind::Secret, "store.encryption_key") => "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=",
            _ => "hunter2-value",
        };
        let config = Config::from_env_with(|name| (name == var.name).then(|| value.to_owned())).unwrap();
        assert!(config.is_set(spec.key), "{} does not set `{}`", var.name, spec.key);
        let others: Vec<&str> =
            KEY_TABLE.iter().map(|s| s.key).filter(|k| *k != spec.key && config.is_set(k)).collect();
        assert!(others.is_empty(), "{} set {others:?} too", var.name);
        let debug = format!("{config:?}");
        for s in KEY_TABLE {
            assert!(debug.contains(&format!("{}: ", s.field)), "Debug lacks `{}`: {debug}", s.field);
        }
        if spec.kind == KeyKind::Secret {
            assert!(!debug.contains(value), "{debug}");
        }
    }
    assert!(!Config::default().is_set("no_such_key"));
}

#[test]
fn errors_name_the_setting_and_suggest_the_nearest_key() {
    let message = |text: &str, key: &str| match Config::from_toml_str(text).unwrap_err() {
        Error::Config { key: k, message } => {
            assert_eq!(k, key, "{message}");
            message
        }
        other => panic!("{other:?}"),
    };
    let m = message("client_secrt = \"x\"", "client_secrt");
    assert!(m.contains("did you mean `client_secret`?") && m.contains("the known keys are"), "{m}");
    let m = message("TOKENSMITH_SCOPE = \"read\"", "TOKENSMITH_SCOPE");
    assert!(m.contains("did you mean `scope`?"), "{m}");
    let m = message("colour = \"blue\"", "colour");
    assert!(!m.contains("did you mean") && m.contains("the known keys are"), "{m}");
    let m = message("[store]\nkind = \"file\"\npth = \"/x\"", "store.pth");
    assert!(m.contains("did you mean `path`?"), "{m}");
    let m = message("[response]\naccess_tokn = \"/a\"", "response.access_tokn");
    assert!(m.contains("did you mean `access_token`?"), "{m}");

    assert_eq!(suggest_key("client_secret"), None);
    assert_eq!(suggest_key("scoep"), Some("scope"));
    assert_eq!(suggest_key("TOKENSMITH_RESPONSE_SCOPE"), Some("response"));
    assert_eq!(suggest_env_var("TOKENSMITH_CLIENT_SECRT"), Some("TOKENSMITH_CLIENT_SECRET"));
    assert_eq!(suggest_env_var("TOKENSMITH_STORE_ENCRYPTION_KEY_FIL"), Some("TOKENSMITH_STORE_ENCRYPTION_KEY_FILE"));
    assert_eq!(suggest_env_var("TOKENSMITH_CONFG"), Some(CONFIG_FILE_VAR));
    // Known variables, and other `TOKENSMITH_*` variables of this repository (provider crates, tests,
    // tools): no warning.
    for (var, _) in ENV_VARS {
        assert_eq!(suggest_env_var(var), None, "{var}");
    }
    for var in [
        CONFIG_FILE_VAR,
        "CLIENT_SECRT",
        "TOKENSMITH_PROBIT_CLIENT_ID",
        "TOKENSMITH_PROBIT_TOKEN_URL",
        "TOKENSMITH_RUBY_SCOPE",
        "TOKENSMITH_RUBY_BASE_URL",
        "TOKENSMITH_DJANGO_CREDENTIALS",
        "TOKENSMITH_DJANGO_TOKEN_PATH",
        "TOKENSMITH_WHITEBIT_STORE",
        "TOKENSMITH_WHITEBIT_REDIRECT_URI",
        "TOKENSMITH_WHITEBIT_ALLOW_INSECURE_HTTP",
        "TOKENSMITH_BIN",
        "TOKENSMITH_FUZZ_CASES",
        "TOKENSMITH_SKIP_DOT",
        "TOKENSMITH_SKIP_BROWSER",
        "TOKENSMITH_DOT_VENV",
        "TOKENSMITH_DOT_PYTHON",
        "TOKENSMITH_PROPS_SET",
        "TOKENSMITH_FLEET_WORKER",
        "TOKENSMITH_FLEET_SECS",
        "TOKENSMITH_FILE_FLEET_WORKER",
        "TOKENSMITH_TEST_UNSET_VAR",
    ] {
        assert_eq!(suggest_env_var(var), None, "{var}");
    }

    // Messages that tell where to set a key list its variables, from the table.
    let err = Config::default().require_client_secret().unwrap_err();
    assert!(err.to_string().contains("`client_secret` (or TOKENSMITH_CLIENT_SECRET, _ENV or _FILE)"), "{err}");
    let err = Config::default().provider_name().unwrap_err();
    assert!(err.to_string().contains("`provider` (or TOKENSMITH_PROVIDER)"), "{err}");
}

#[test]
fn store_specs_are_checked_without_being_shown() {
    assert_eq!(StoreConfig::try_parse("memory"), Ok(StoreConfig::Memory));
    assert_eq!(StoreConfig::try_parse(" /var/lib/t.json\n"), Ok(StoreConfig::File { path: "/var/lib/t.json".into() }));
    for url in ["redis://127.0.0.1:6379/0", "rediss://:pw@host/1", "redis+unix:///run/redis.sock?db=2&pass=pw"] {
        assert_eq!(StoreConfig::try_parse(url), Ok(StoreConfig::Redis { url: url.into(), prefix: None }), "{url}");
    }
    for (spec, error) in [
        ("", StoreSpecError::Empty),
        (" \n ", StoreSpecError::Empty),
        ("redis://:hunter2@a\nredis://b", StoreSpecError::ControlCharacter),
    ] {
        assert_eq!(StoreConfig::try_parse(spec), Err(error), "{spec:?}");
    }
    for spec in [
        "REDIS://:hunter2@host",
        "redis:/:hunter2@host",
        "redis+unix://",
        "redis://",
        "redis+unix://run/x?pass=hunter2",
        "rediss://?password=hunter2",
    ] {
        let error = StoreConfig::try_parse(spec).unwrap_err();
        assert!(matches!(error, StoreSpecError::BadRedisUrl(_)), "{spec}: {error:?}");
        let error = error.into_config_error("TOKENSMITH_STORE");
        assert!(matches!(error, Error::Config { ref key, .. } if key == "TOKENSMITH_STORE"), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
    // The environment goes through the same check, naming the variable.
    let env = |spec: &'static str| move |name: &str| (name == "TOKENSMITH_STORE").then(|| spec.to_owned());
    let err = Config::from_env_with(env("redis:/:hunter2@host")).unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "TOKENSMITH_STORE"), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let config = Config::from_env_with(env("redis+unix:///run/redis.sock")).unwrap();
    assert!(matches!(config.store, Some(StoreConfig::Redis { .. })), "{config:?}");
    // A secret in the table stays redacted.
    let config =
        Config::from_env_with(|name| (name == "TOKENSMITH_CLIENT_SECRET").then(|| "hunter2".to_owned())).unwrap();
    assert!(matches!(config.client_secret, Some(Secret::Value(_))));
    assert!(!format!("{config:?}").contains("hunter2"));
}
