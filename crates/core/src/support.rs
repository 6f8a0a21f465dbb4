//! Helpers shared by tokensmith's own crates (the providers, the facade, the CLI, the sandbox).
//!
//! **Not a stable API.** This module is hidden from the documentation and may change in any release,
//! patch releases included; use it from outside tokensmith at your own risk. What a provider or an
//! application needs is at the crate root and in the documented modules.

use std::net::IpAddr;

use url::Url;

use crate::error::{Error, Result, TransportError, TransportErrorKind};

pub use crate::options::{
    check_env_var_name, is_env_var_name, parse_bool_setting, parse_seconds_setting, seconds_setting,
};

/// What stands for a secret wherever one is shown (`Debug`, redacted request renderings, scrubbed
/// errors, URLs with a password): one marker across tokensmith, so a search for it finds them all.
pub const REDACTED: &str = "[redacted]";

/// Shortens text from the network for use in an error message: tags stripped, white space folded,
/// control characters dropped, at most `max` characters, and every run of 20 or more token-like
/// characters (letters, digits, `-._~+/=`) replaced by `[masked]` so that a token or secret echoed by
/// a server never reaches a message.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut plain = String::with_capacity(text.len().min(max.saturating_mul(2)));
    let mut in_tag = false;
    let mut last_space = true;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !last_space {
                    plain.push(' ');
                    last_space = true;
                }
            }
            _ if in_tag => {}
            c if c.is_whitespace() || c.is_control() => {
                if !last_space {
                    plain.push(' ');
                    last_space = true;
                }
            }
            c => {
                plain.push(c);
                last_space = false;
            }
        }
        if plain.len() > max.saturating_mul(4) {
            break;
        }
    }
    let masked = mask_token_runs(plain.trim());
    let mut out: String = masked.chars().take(max).collect();
    if masked.chars().count() > max {
        out.push('…');
    }
    out
}

fn mask_token_runs(text: &str) -> String {
    const MIN_RUN: usize = 20;
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= MIN_RUN {
            out.push_str("[masked]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Checks that `url` may carry credentials: `https://`, or `http://` to a loopback host (the name
/// `localhost` itself, or a literal `127.0.0.0/8` or `[::1]` address: see [`is_loopback_host`]; not
/// `*.localhost`, which may be resolved by DNS), or `http://` anywhere when `allow_insecure_http` is
/// set. URLs with credentials in them or without a host are refused.
pub(crate) fn check_url(url: &Url, allow_insecure_http: bool) -> Result<(), TransportError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TransportError::new(TransportErrorKind::InvalidUrl, "the URL has credentials in it"));
    }
    let Some(host) = url.host() else {
        return Err(TransportError::new(
            TransportErrorKind::InvalidUrl,
            format!("the URL `{}` has no host", redact_url_password(url.as_str())),
        ));
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || is_loopback_host(&host) => Ok(()),
        "http" => Err(TransportError::new(
            TransportErrorKind::InsecureUrl,
            format!("plain http:// to `{host}` would expose credentials on the network"),
        )),
        other => Err(TransportError::new(TransportErrorKind::InvalidUrl, format!("unsupported URL scheme `{other}`"))),
    }
}

/// Parses and checks a URL from configuration, naming `key` in the error.
pub fn parse_url(key: &str, text: &str, allow_insecure_http: bool) -> Result<Url> {
    let url = Url::parse(text.trim()).map_err(|e| {
        Error::config(key, format!("`{}` is not a valid URL ({e}); give an absolute https:// URL", excerpt_url(text)))
    })?;
    check_url(&url, allow_insecure_http).map_err(|e| Error::config(key, e.to_string()))?;
    Ok(url)
}

/// `url` with every password in it replaced by [`REDACTED`], for messages, `Debug` output and logs: the
/// one function that shows a URL which may carry a password (a Redis store URL, say).
///
/// It hides the userinfo password (`redis://user:password@host`) and the value of every `pass` or
/// `password` query parameter, any case (`redis+unix:///run/redis.sock?pass=...`, which the `redis`
/// crate reads). Text with `://` that does not parse is redacted the same way by pattern (everything
/// between the first `:` of the userinfo and its last `@`, and those query values) and cut to 200
/// characters; other text gives `(unparseable URL)`, since it could be anything, a secret included.
///
/// ```
/// use tokensmith_core::support::redact_url_password;
///
/// assert_eq!(redact_url_password("redis://:hunter2@10.0.0.5:6379/0"), "redis://:[redacted]@10.0.0.5:6379/0");
/// assert_eq!(redact_url_password("redis://10.0.0.5/0"), "redis://10.0.0.5/0");
/// assert_eq!(
///     redact_url_password("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
///     "redis+unix:///run/redis.sock?db=1&pass=[redacted]"
/// );
/// assert_eq!(redact_url_password("redis://:hunter2@host:99999/0"), "redis://:[redacted]@host:99999/0");
/// assert_eq!(redact_url_password("hunter2"), "(unparseable URL)");
/// ```
pub fn redact_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some(URL_PASSWORD_PLACEHOLDER));
            }
            if let Some(query) = parsed.query() {
                let redacted = redact_query(query);
                if redacted != query {
                    parsed.set_query(Some(&redacted));
                }
            }
            parsed.to_string().replacen(&format!(":{URL_PASSWORD_PLACEHOLDER}@"), &format!(":{REDACTED}@"), 1)
        }
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) => {
                let rest = match rest.rfind('@') {
                    Some(at) => match rest[..at].split_once(':') {
                        Some((user, _)) => format!("{user}:{REDACTED}{}", &rest[at..]),
                        None => rest.to_owned(),
                    },
                    None => rest.to_owned(),
                };
                let rest = match rest.split_once('?') {
                    Some((before, query)) => {
                        let (query, fragment) = match query.split_once('#') {
                            Some((q, f)) => (q, Some(f)),
                            None => (query, None),
                        };
                        let mut out = format!("{before}?{}", redact_query(query));
                        if let Some(fragment) = fragment {
                            out.push('#');
                            out.push_str(fragment);
                        }
                        out
                    }
                    None => rest,
                };
                let shown = format!("{scheme}://{rest}");
                if shown.chars().count() > 200 {
                    format!("{}...", shown.chars().take(200).collect::<String>())
                } else {
                    shown
                }
            }
            None => "(unparseable URL)".to_owned(),
        },
    }
}

/// A query string with the value of each `pass` / `password` parameter (its name percent-decoded, any
/// case) replaced by [`REDACTED`]; every other parameter is kept as it was written.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let raw_name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let name = url::form_urlencoded::parse(raw_name.as_bytes()).next().map(|(name, _)| name);
            let secret = name.is_some_and(|n| n.eq_ignore_ascii_case("pass") || n.eq_ignore_ascii_case("password"));
            if secret { format!("{raw_name}={REDACTED}") } else { pair.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Stands for [`REDACTED`] while a URL is serialized: the `url` crate would percent-encode the
/// marker's brackets in the userinfo. Letters only, so it is written as it is.
const URL_PASSWORD_PLACEHOLDER: &str = "tokensmithREDACTEDpassword";

/// An excerpt of a URL from configuration for an error message, with any password redacted.
fn excerpt_url(text: &str) -> String {
    let shown = if text.contains("://") { redact_url_password(text) } else { text.to_owned() };
    excerpt(&shown, 120)
}

/// Whether `host` surely means this machine: a literal loopback address (`127.0.0.0/8`, `[::1]`) or
/// the name `localhost` itself (any case). This is the one loopback check of the workspace: plain
/// `http://` is allowed to these hosts without `allow_insecure_http`.
///
/// Other names are not loopback, `*.localhost` included: RFC 6761 §6.3 lets resolvers answer them
/// with the loopback address, but many send them to DNS like any other name (a search domain, a
/// corporate resolver, `/etc/hosts` entries), where they may name another machine. Neither are
/// IPv4-mapped addresses (`[::ffff:127.0.0.1]`) nor `localhost.` with a trailing dot.
///
/// ```
/// use tokensmith_core::support::is_loopback_host;
/// use url::Host;
///
/// assert!(is_loopback_host(&Host::parse("127.0.0.1").unwrap()));
/// assert!(is_loopback_host(&Host::parse("LocalHost").unwrap()));
/// assert!(!is_loopback_host(&Host::parse("evil.localhost").unwrap()));
/// ```
pub fn is_loopback_host<S: AsRef<str>>(host: &url::Host<S>) -> bool {
    match host {
        url::Host::Domain(d) => d.as_ref().eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_strips_tags_and_masks_token_runs() {
        let html = "<html><head><title>403 Forbidden</title></head>\n<body>token eyJhbGciOiJIUzI1NiJ9abcdef echoed</body></html>";
        assert_eq!(excerpt(html, 100), "403 Forbidden token [masked] echoed");
    }

    #[test]
    fn excerpt_truncates() {
        let long = "word ".repeat(100);
        let short = excerpt(&long, 20);
        assert_eq!(short.chars().count(), 21);
        assert!(short.ends_with('…'));
    }

    fn check(u: &str, allow: bool) -> Result<(), TransportErrorKind> {
        check_url(&Url::parse(u).unwrap(), allow).map_err(|e| e.kind())
    }

    #[test]
    fn url_security_rules() {
        assert_eq!(check("https://example.com/token", false), Ok(()));
        assert_eq!(check("http://127.0.0.1:8080/token", false), Ok(()));
        assert_eq!(check("http://127.1.2.3/token", false), Ok(()));
        assert_eq!(check("http://localhost/token", false), Ok(()));
        assert_eq!(check("http://[::1]:9/token", false), Ok(()));
        assert_eq!(check("http://example.com/token", false), Err(TransportErrorKind::InsecureUrl));
        assert_eq!(check("http://10.0.0.1/token", false), Err(TransportErrorKind::InsecureUrl));
        assert_eq!(check("http://LOCALHOST:8/token", false), Ok(()));
        assert_eq!(check("http://127.255.255.254/token", false), Ok(()));
        assert_eq!(check("http://example.com/token", true), Ok(()));
        assert_eq!(check("https://user:pw@example.com/token", false), Err(TransportErrorKind::InvalidUrl));
        assert_eq!(check("ftp://example.com/token", true), Err(TransportErrorKind::InvalidUrl));
    }

    /// `*.localhost` names go to DNS on many systems: only `localhost` itself and literal loopback
    /// addresses may take plain `http://`.
    #[test]
    fn only_literal_loopback_and_localhost_are_loopback() {
        for url in [
            "http://evil.localhost/token",
            "http://a.b.LOCALHOST:8080/token",
            "http://localhost./token",
            "http://localhost.example.com/token",
            "http://[::ffff:127.0.0.1]/token",
            "http://[::2]/token",
            "http://128.0.0.1/token",
            "http://0.0.0.0/token",
        ] {
            assert_eq!(check(url, false), Err(TransportErrorKind::InsecureUrl), "{url}");
            assert_eq!(check(url, true), Ok(()), "{url}");
        }
        assert!(parse_url("token_url", "http://evil.localhost:9/token", false).is_err());
        assert!(is_loopback_host(&url::Host::parse("localhost").unwrap()));
        assert!(!is_loopback_host(&url::Host::parse("x.localhost").unwrap()));
    }

    #[test]
    fn parse_url_names_the_key() {
        match parse_url("token_url", "not a url", false) {
            Err(Error::Config { key, message }) => {
                assert_eq!(key, "token_url");
                assert!(message.contains("not a valid URL"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse_url("base_url", "http://example.com", false) {
            Err(Error::Config { key, message }) => {
                assert_eq!(key, "base_url");
                assert!(message.contains("allow insecure HTTP"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn redact_url_password_hides_userinfo_and_query_passwords() {
        let cases = [
            ("redis://user:hunter2@h:6379/0", "redis://user:[redacted]@h:6379/0"),
            ("redis+unix:///run/redis.sock?pass=hunter2", "redis+unix:///run/redis.sock?pass=[redacted]"),
            (
                "redis+unix:///run/redis.sock?db=2&password=hunter2&user=u",
                "redis+unix:///run/redis.sock?db=2&password=[redacted]&user=u",
            ),
            ("rediss://h/0?PASS=hunter2#insecure", "rediss://h/0?PASS=[redacted]#insecure"),
            ("redis+unix:///s?p%61ss=hunter2", "redis+unix:///s?p%61ss=[redacted]"),
            ("redis://:hunter2@h/0?pass=hunter2", "redis://:[redacted]@h/0?pass=[redacted]"),
            // Unparseable (bad port, space in the host): redacted by pattern.
            ("redis://u:hunter2@h:99999/0?pass=hunter2#x", "redis://u:[redacted]@h:99999/0?pass=[redacted]#x"),
            ("redis+unix://bad host/s?password=hunter2", "redis+unix://bad host/s?password=[redacted]"),
            ("redis://:hun@ter2@bad host", "redis://:[redacted]@bad host"),
            ("hunter2", "(unparseable URL)"),
        ];
        for (url, want) in cases {
            let got = redact_url_password(url);
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("hunter2") && !got.contains("ter2"), "{got}");
        }
        let long = format!("redis://h:1:2/{}", "x".repeat(500));
        assert!(redact_url_password(&long).chars().count() <= 203);
        // parse_url's message redacts too.
        let err = parse_url("token_url", "https://u:hunter2@bad host/t", false).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
