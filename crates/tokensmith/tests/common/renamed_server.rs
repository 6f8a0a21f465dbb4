//! A token server for issue 16's dialect that accepts ONLY the exact renamed shape: a JSON body of
//! exactly `grantKind`, `consumerKey`, `consumerSecret`, `permissions`, `tenant` and `api_key`, no
//! `Authorization` header. Any near miss is `400 {"problem":{"type":"invalid_request","detail":..}}`,
//! and the detail echoes the request body, as a careless server would: the client must scrub it.
//!
//! Shared by the facade's tests and the CLI's (`#[path]`-included there).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CLIENT_ID: &str = "my-client";
pub const CLIENT_SECRET: &str = "s3cr3t-5e1b77-QxZ";
pub const API_KEY: &str = "k3y-c40d29-WvY";
pub const TOKEN: &str = "renamed-access-token-8a2f";
pub const RENEWAL: &str = "renamed-renewal-31cc";
pub const SCOPE: &str = "read write";

/// How the server states the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `"lifetime":"900"` (a numeric string).
    Lifetime,
    /// `"until":"2030-01-01T00:15:00Z"`, now + 900 s.
    UntilRfc3339,
    /// `"until":1893456900`, now + 900 s.
    UntilEpoch,
}

/// A running server.
#[derive(Debug)]
pub struct RenamedServer {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<String>>>,
}

impl RenamedServer {
    pub async fn start(expiry: Expiry) -> RenamedServer {
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = bodies.clone();
        let app = axum::Router::new().route(
            "/v3/token",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(body.clone());
                    answer(&headers, &body, expiry)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RenamedServer { url: format!("http://{addr}/v3/token"), bodies }
    }

    /// The dialect's configuration file for this server, with the two secrets given as
    /// `secret_source` (e.g. `{ env = "VAR" }` or `{ file = "/path" }`) and `expires` the `[response]`
    /// line for the expiry.
    pub fn config(&self, client_secret: &str, api_key: &str, expiry: Expiry) -> String {
        let expires = match expiry {
            Expiry::Lifetime => "expires_in = \"/issued/lifetime\"",
            Expiry::UntilRfc3339 | Expiry::UntilEpoch => "expires_at = \"/issued/until\"",
        };
        format!(
            r#"provider = "custom"
token_url = "{url}"
client_id = "{CLIENT_ID}"
client_secret = {client_secret}
body_format = "json"
credential_style = "body"
client_id_param = "consumerKey"
client_secret_param = "consumerSecret"
grant_type_param = "grantKind"
grant_type_value = "client_credentials"
scope_param = "permissions"
scope = "{SCOPE}"
[response]
access_token = "/issued/bearer"
{expires}
token_type = "/issued/type"
refresh_token = "/issued/renewal"
scope = "/issued/permissions"
error = "/problem/type"
error_description = "/problem/detail"
[extra_params]
tenant = "eu-1"
api_key = {api_key}
"#,
            url = self.url
        )
    }
}

fn problem(detail: String) -> Response {
    let body = serde_json::json!({"problem": {"type": "invalid_request", "detail": detail}});
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn answer(headers: &HeaderMap, body: &str, expiry: Expiry) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return problem("credentials go in the body, not in an Authorization header".to_owned());
    }
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return problem("the body must be application/json".to_owned());
    }
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(body) else {
        return problem(format!("not a JSON object: {body}"));
    };
    let expected = [
        ("grantKind", "client_credentials"),
        ("consumerKey", CLIENT_ID),
        ("consumerSecret", CLIENT_SECRET),
        ("permissions", SCOPE),
        ("tenant", "eu-1"),
        ("api_key", API_KEY),
    ];
    let exact = fields.len() == expected.len()
        && expected.iter().all(|(name, value)| fields.get(*name).and_then(|v| v.as_str()) == Some(*value));
    if !exact {
        // A careless server: it echoes what it was sent.
        return problem(format!("unexpected request {body}"));
    }
    let until = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap() + Duration::from_secs(900);
    let mut issued = serde_json::json!({"bearer": TOKEN, "type": "Bearer", "renewal": RENEWAL, "permissions": SCOPE});
    match expiry {
        Expiry::Lifetime => issued["lifetime"] = "900".into(),
        Expiry::UntilRfc3339 => issued["until"] = rfc3339(until.as_secs()).into(),
        Expiry::UntilEpoch => issued["until"] = until.as_secs().into(),
    }
    let body = serde_json::json!({"issued": issued});
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
