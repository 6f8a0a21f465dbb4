//! The sandbox seen from outside its process: request counts, the (redacted) request log and fault
//! injection over HTTP under `/_sandbox/`, so that a service written in any language can be tested
//! against `tokensmith sandbox` without a proxy.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /_sandbox/counts` | `{"counts":[{"dialect":"probit","path":"/token","count":3},...]}` |
//! | `GET /_sandbox/requests[?dialect=NAME]` | `{"requests":[{"dialect","method","path","query","headers","body","fingerprints"},...]}`, secrets redacted |
//! | `POST /_sandbox/faults` with `{"dialect":"probit","path":"/token","fault":"status:503","times":2}` | `204`; `400` with a message when something is wrong |
//! | `DELETE /_sandbox/faults` | `204`: every pending fault removed |
//!
//! Control requests are neither counted nor logged. Fault names are those of [`Fault`]'s `FromStr`.

use std::str::FromStr;

use http::Method;
use serde_json::{Value, json};

use crate::config::Dialect;
use crate::fault::Fault;
use crate::reply::Reply;
use crate::spec::{CustomDialect, DialectId};
use crate::state::Shared;

/// The path prefix of the control endpoints.
pub(crate) const PREFIX: &str = "/_sandbox/";

/// The most times one injected fault may apply (a bound on what an outside caller can ask for).
const MAX_TIMES: u64 = 1_000_000;

/// Answers a control request; `path` starts with [`PREFIX`].
pub(crate) fn handle(shared: &Shared, method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Reply {
    let route = path.strip_prefix(PREFIX).unwrap_or_default().trim_end_matches('/');
    match (method.as_str(), route) {
        ("GET", "counts") => Reply::json(200, counts(shared)),
        ("GET", "requests") => match query_param(query, "dialect").map(|name| find_dialect(shared, &name)) {
            Some(None) => error(404, "no dialect of that name is served here"),
            Some(Some(dialect)) => Reply::json(200, requests(shared, Some(dialect))),
            None => Reply::json(200, requests(shared, None)),
        },
        ("POST", "faults") => match inject(shared, body) {
            Ok(()) => Reply::empty(204),
            Err(message) => error(400, &message),
        },
        ("DELETE", "faults") => {
            shared.lock().faults.clear();
            Reply::empty(204)
        }
        (_, "counts" | "requests" | "faults") => error(405, "method not allowed here"),
        _ => error(404, "unknown control endpoint; use /_sandbox/counts, /_sandbox/requests or /_sandbox/faults"),
    }
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({ "error": message }))
}

/// The name a dialect is known by outside: a built-in's name, or a registered dialect's.
fn dialect_name(shared: &Shared, dialect: DialectId) -> String {
    match dialect {
        DialectId::Builtin(d) => d.name().to_owned(),
        DialectId::Custom(c) => {
            shared.lock().customs.get(c.index).map_or_else(|| "unknown".to_owned(), |custom| custom.spec.name.clone())
        }
    }
}

fn find_dialect(shared: &Shared, name: &str) -> Option<DialectId> {
    if let Some(d) = Dialect::ALL.into_iter().find(|d| d.name() == name) {
        return Some(DialectId::Builtin(d));
    }
    let inner = shared.lock();
    let index = inner.customs.iter().position(|custom| custom.spec.name == name)?;
    Some(DialectId::Custom(CustomDialect { index }))
}

fn counts(shared: &Shared) -> Value {
    let mut rows: Vec<(DialectId, String, usize)> =
        shared.lock().counts.iter().map(|((dialect, path), count)| (*dialect, path.clone(), *count)).collect();
    rows.sort();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(dialect, path, count)| json!({ "dialect": dialect_name(shared, dialect), "path": path, "count": count }))
        .collect();
    json!({ "counts": rows })
}

fn requests(shared: &Shared, only: Option<DialectId>) -> Value {
    let log: Vec<_> = shared.lock().log.iter().filter(|r| only.is_none_or(|d| r.dialect == d)).cloned().collect();
    let rows: Vec<Value> = log
        .into_iter()
        .map(|r| {
            json!({
                "dialect": dialect_name(shared, r.dialect),
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "headers": r.headers,
                "body": r.body,
                "fingerprints": r.fingerprints,
            })
        })
        .collect();
    json!({ "requests": rows })
}

fn inject(shared: &Shared, body: &[u8]) -> Result<(), String> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| "the body must be JSON: {\"dialect\":..,\"path\":..,\"fault\":..,\"times\":..}".to_owned())?;
    let text = |field: &str| {
        request.get(field).and_then(Value::as_str).ok_or_else(|| format!("`{field}` is missing or not a string"))
    };
    let name = text("dialect")?;
    let dialect = find_dialect(shared, name).ok_or_else(|| format!("no dialect named `{name}` is served here"))?;
    let path = text("path")?;
    if !path.starts_with('/') {
        return Err("`path` is relative to the dialect's base and starts with `/`, e.g. `/token`".to_owned());
    }
    let fault = Fault::from_str(text("fault")?)?;
    let times = match request.get("times") {
        None => 1,
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=MAX_TIMES).contains(n))
            .ok_or_else(|| format!("`times` is a whole number from 1 to {MAX_TIMES}"))?,
    };
    let times = usize::try_from(times).map_err(|_| "`times` is too large".to_owned())?;
    shared.lock().faults.entry((dialect, path.to_owned())).or_default().push_back((fault, times));
    Ok(())
}

/// The value of `name` in a query string, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
