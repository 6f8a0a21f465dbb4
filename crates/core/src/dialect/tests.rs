//! Unit tests of `dialect`.

use super::*;
use crate::endpoint::TokenEndpoint;
use crate::error::Error;
use crate::request::BodyFormat;
use crate::token::Scopes;

enum Plain {}
impl Declared for Plain {
    const DIALECT: Dialect = Dialect::new("plain", TokenEndpoint::new).issuer("Plain").env_prefix("PLAIN");
}

enum Rich {}
impl Declared for Rich {
    const DIALECT: Dialect = Dialect::new("rich", |url| TokenEndpoint::new(url).body_format(BodyFormat::Json))
        .default_base_url("https://rich.example/api/")
        .token_path("/o/token/")
        .configurable_token_path()
        .scopes()
        .credential_styles(&["basic", "body"])
        .env_prefix("RICH");
}

fn key<D: Declared>(builder: Builder<D>) -> String {
    match builder.build() {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn ok<D: Declared>() -> Builder<D> {
    Builder::new().client_id("id").client_secret("secret")
}

#[test]
fn urls_from_base_path_and_override() {
    assert_eq!(ok::<Rich>().build().unwrap().token_url().as_str(), "https://rich.example/api/o/token/");
    let custom_path = ok::<Rich>().base_url("https://h.example/x").token_path("token").build().unwrap();
    assert_eq!(custom_path.token_url().as_str(), "https://h.example/x/token");
    let full = ok::<Plain>().token_url("https://gw.example/v9/t").base_url("https://ignored.example");
    assert_eq!(full.build().unwrap().token_url().as_str(), "https://gw.example/v9/t");
    assert_eq!(key(ok::<Plain>()), "base_url");
    assert_eq!(key(ok::<Plain>().base_url("http://plain.example")), "base_url");
    assert!(ok::<Plain>().base_url("http://plain.example").allow_insecure_http(true).build().is_ok());
    assert_eq!(key(ok::<Plain>().base_url("https://h.example/?q=1")), "base_url");
    assert_eq!(key(ok::<Rich>().token_path("/t?x")), "token_path");
    assert_eq!(key(ok::<Rich>().token_url("https://h.example/t").token_path("/t")), "token_path");
    assert_eq!(key(ok::<Rich>().token_url("https://h.example/t#f")), "token_url");
    assert_eq!(key(ok::<Rich>().token_url("not a url")), "token_url");
}

#[test]
fn settings_the_dialect_does_not_take_are_refused_by_name() {
    assert_eq!(key(ok::<Plain>().base_url("https://h.example").scopes(Scopes::parse("a"))), "scope");
    assert_eq!(key(ok::<Plain>().base_url("https://h.example").token_path("/t")), "token_path");
    assert_eq!(key(ok::<Plain>().base_url("https://h.example").credential_style("body")), "credential_style");
    assert_eq!(key(ok::<Rich>().credential_style("basic-raw")), "credential_style");
    assert_eq!(key(ok::<Rich>().with_config("redirect_uri", "x")), "redirect_uri");
    assert_eq!(key(ok::<Rich>().with_config("allow_insecure_http", "maybe")), "allow_insecure_http");
    assert_eq!(key(Builder::<Rich>::new().client_secret("s")), "client_id");
    assert_eq!(key(Builder::<Rich>::new().client_id("i").client_secret("")), "client_secret");
    // An empty scope list is not "scopes given".
    assert!(ok::<Plain>().base_url("https://h.example").scopes(Scopes::empty()).build().is_ok());
}

#[test]
fn with_config_and_env_set_the_same_things() {
    let by_key = Builder::<Rich>::new()
        .with_config("client_id", "id")
        .with_config("client_secret", "s")
        .with_config("scope", "read,write")
        .with_config("credential_style", "Body")
        .with_config("base_url", "http://10.0.0.1")
        .with_config("allow_insecure_http", "yes")
        .build()
        .unwrap();
    let vars = [
        ("RICH_CLIENT_ID", "id"),
        ("RICH_CLIENT_SECRET", "s"),
        ("RICH_SCOPE", "read,write"),
        ("RICH_CREDENTIAL_STYLE", "Body"),
        ("RICH_BASE_URL", "http://10.0.0.1"),
        ("RICH_ALLOW_INSECURE_HTTP", "yes"),
        ("RICH_TOKEN_PATH", " "),
    ];
    let by_env = Builder::<Rich>::from_env_with(|n| vars.iter().find(|(v, _)| *v == n).map(|(_, x)| (*x).to_owned()))
        .build()
        .unwrap();
    for provider in [&by_key, &by_env] {
        assert_eq!(provider.token_url().as_str(), "http://10.0.0.1/o/token/");
        assert_eq!(provider.scopes().to_string(), "read write");
        let request = provider.token_request().unwrap();
        assert!(!request.has_header("authorization") && request.has_param("client_secret"), "body style");
    }
    let bad = Builder::<Rich>::from_env_with(|n| (n == "RICH_BASE_URL").then(|| "ftp://x".to_owned()));
    assert_eq!(key(bad.client_id("i").client_secret("s")), "RICH_BASE_URL");
    let missing = key(Builder::<Plain>::from_env_with(|_| None).base_url("https://h.example"));
    assert_eq!(missing, "client_id");
    // A value set in code after one read from a variable: an error about it names the key, since
    // the variable's value is no longer the one in use.
    let replaced = Builder::<Rich>::from_env_with(|n| (n == "RICH_BASE_URL").then(|| "https://ok.example".to_owned()));
    assert_eq!(key(replaced.client_id("i").client_secret("s").base_url("ftp://x")), "base_url");
    let replaced = Builder::<Rich>::from_env_with(|n| (n == "RICH_TOKEN_PATH").then(|| "/t".to_owned()));
    assert_eq!(key(replaced.client_id("i").client_secret("s").token_path("/t?x")), "token_path");
}

#[test]
fn debug_redacts_the_secret() {
    let builder = ok::<Rich>().client_secret("very-secret-value");
    let text = format!("{builder:?}");
    assert!(!text.contains("very-secret-value") && text.contains("rich"), "{text}");
    let provider = builder.build().unwrap();
    assert!(!format!("{provider:?}").contains("very-secret-value"));
}
