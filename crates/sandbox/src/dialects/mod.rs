//! The four built-in dialects' routes, the registered ones', and what they share.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method};

use std::sync::Arc;

use crate::config::Dialect;
use crate::reply::Reply;
use crate::spec::{CustomDialect, DialectId, DialectSpec};
use crate::state::Shared;

pub(crate) mod custom;
mod django;
mod probit;
mod ruby;
mod whitebit;

/// A request as the dialect handlers see it: already fully read.
#[derive(Debug)]
pub(crate) struct Req<'a> {
    pub(crate) method: &'a Method,
    /// The path relative to the dialect's base.
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// The dialect a request reached, with a registered dialect's description at hand.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    Builtin(Dialect),
    Custom(CustomDialect, Arc<DialectSpec>),
}

impl Route {
    pub(crate) fn id(&self) -> DialectId {
        match self {
            Route::Builtin(d) => DialectId::Builtin(*d),
            Route::Custom(c, _) => DialectId::Custom(*c),
        }
    }

    /// Splits a request path into the dialect it belongs to and the path relative to the
    /// dialect's base (`/` when the path is the base itself).
    pub(crate) fn split<'p>(shared: &Shared, path: &'p str) -> Option<(Route, &'p str)> {
        if let Some((d, rest)) = Dialect::split_path(path) {
            return Some((Route::Builtin(d), rest));
        }
        let inner = shared.lock();
        inner.customs.iter().enumerate().find_map(|(index, c)| {
            let rest = below(path, &c.spec.prefix)?;
            Some((Route::Custom(CustomDialect { index }, Arc::clone(&c.spec)), rest))
        })
    }
}

/// The path relative to `prefix` when `path` lies below it (whole segments).
pub(crate) fn below<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// Answers a request on one of the dialect's routes.
pub(crate) fn handle(shared: &Shared, route: &Route, req: &Req<'_>) -> Reply {
    match route {
        Route::Builtin(Dialect::Probit) => probit::handle(shared, req),
        Route::Builtin(Dialect::GenericDjango) => django::handle(shared, req),
        Route::Builtin(Dialect::RubyStyle) => ruby::handle(shared, req),
        Route::Builtin(Dialect::Whitebit) => whitebit::handle(shared, req),
        Route::Custom(id, spec) => custom::handle(shared, *id, spec, req),
    }
}

impl Req<'_> {
    /// The media type of the body, lowercase, without parameters.
    pub(crate) fn media_type(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or_default().trim();
        Some(essence.to_ascii_lowercase())
    }

    pub(crate) fn is_json(&self) -> bool {
        self.media_type().as_deref() == Some("application/json")
    }

    pub(crate) fn is_form(&self) -> bool {
        self.media_type().as_deref() == Some("application/x-www-form-urlencoded")
    }

    /// The `Authorization` header: `Ok(None)` when absent, `Err(())` when sent
    /// more than once or not visible ASCII.
    fn authorization(&self) -> Result<Option<&str>, ()> {
        let mut values = self.headers.get_all(AUTHORIZATION).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(());
        }
        first.to_str().map(Some).map_err(|_| ())
    }

    /// The `Authorization: Basic` credentials, base64-decoded (but not split).
    pub(crate) fn basic(&self) -> Auth {
        let value = match self.authorization() {
            Ok(None) => return Auth::Absent,
            Ok(Some(v)) => v,
            Err(()) => return Auth::Malformed,
        };
        let Some((scheme, rest)) = value.split_once(' ') else {
            return Auth::Malformed;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Auth::OtherScheme;
        }
        match STANDARD.decode(rest.trim()) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => Auth::Present(s),
                Err(_) => Auth::Malformed,
            },
            Err(_) => Auth::Malformed,
        }
    }

    /// The `Authorization: Bearer` token (scheme compared case-insensitively).
    pub(crate) fn bearer(&self) -> Option<&str> {
        let value = self.authorization().ok()??;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ')).then_some(token)
    }

    /// The body's form parameters, in order, decoded.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

/// What an `Authorization: Basic` header held.
#[derive(Debug)]
pub(crate) enum Auth {
    Absent,
    /// Another scheme, e.g. Bearer.
    OtherScheme,
    /// Not decodable.
    Malformed,
    /// The decoded `id:secret` text.
    Present(String),
}

/// The single value of a parameter: `Ok(None)` when absent, `Err(())` when repeated.
pub(crate) fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let first = found.next();
    if found.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// The first value of a parameter.
pub(crate) fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Whole seconds of a lifetime, as `expires_in` carries them.
pub(crate) fn secs(d: std::time::Duration) -> u64 {
    d.as_secs()
}
