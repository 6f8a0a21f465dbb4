//! Helpers shared by the sandbox's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use serde_json::Value;

thread_local! {
    // One client per test thread (each test has its own thread and runtime),
    // as building a client loads the TLS roots.
    static CLIENT: reqwest::Client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
}

/// An HTTP client that never follows redirects.
pub fn http() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

/// A finished response: status, headers, body text.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub async fn finish(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Resp { status, headers, text }
}

/// POSTs `body` with the given headers.
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<String>) -> Resp {
    let mut req = http().post(url).body(body.into());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.send().await.unwrap()).await
}

/// GETs `url`, with a bearer token when given.
pub async fn get(url: &str, bearer: Option<&str>) -> Resp {
    let mut req = http().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    finish(req.send().await.unwrap()).await
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `Basic base64(id:secret)`, without any encoding of id and secret.
pub fn basic_raw(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 asks.
pub fn basic_encoded(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    basic_raw(&enc(id), &enc(secret))
}

pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("content-type", "application/json");
