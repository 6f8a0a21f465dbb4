//! Each fault does what it says; counters, the log and the server's lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{FORM, JSON, basic_raw, form, get, post};
use serde_json::{Value, json};
use tokensmith_sandbox::{Dialect, ExpiresInFault, Fault, Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A correct token request for each client-credentials dialect, and WhiteBIT's
/// refresh (which needs a refresh token first, so it is handled apart).
async fn token_request(sb: &Sandbox, d: Dialect) -> common::Resp {
    let c = sb.credentials(d);
    match d {
        Dialect::Probit => {
            post(
                &sb.token_url(d),
                &[("authorization", &basic_raw(&c.client_id, &c.client_secret)), JSON],
                r#"{"grant_type":"client_credentials"}"#,
            )
            .await
        }
        Dialect::GenericDjango => {
            post(
                &sb.token_url(d),
                &[FORM],
                form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &c.client_id),
                    ("client_secret", &c.client_secret),
                ]),
            )
            .await
        }
        Dialect::RubyStyle => {
            post(
                &sb.token_url(d),
                &[JSON],
                json!({"client_id": c.client_id, "client_secret": c.client_secret, "grant_type": "client_credentials"})
                    .to_string(),
            )
            .await
        }
        Dialect::Whitebit => {
            let r = get(&format!("{}?clientId={}&state=s", sb.authorize_url(), c.client_id), None).await;
            let location = r.header("location").expect("auto approve").to_owned();
            let code =
                url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
            post(
                &sb.token_url(d),
                &[FORM],
                form(&[("client_id", &c.client_id), ("client_secret", &c.client_secret), ("code", &code)]),
            )
            .await
        }
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::start_with(SandboxConfig::default().whitebit_auto_approve(true)).await.unwrap()
}

/// The token object, inside WhiteBIT's envelope or not.
fn token_object(d: Dialect, v: &Value) -> Value {
    if d == Dialect::Whitebit { v["data"].clone() } else { v.clone() }
}

#[tokio::test]
async fn status_faults_use_the_providers_shapes_and_run_out() {
    let sb = sandbox().await;
    sb.inject(Dialect::Probit, "/token", Fault::Status(500), 2);
    for _ in 0..2 {
        let r = token_request(&sb, Dialect::Probit).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["errorCode"], "INTERNAL_SERVER_ERROR");
    }
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 200);
    assert_eq!(sb.request_count(Dialect::Probit, "/token"), 3);

    for d in Dialect::ALL {
        sb.inject(d, d.token_path(), Fault::Status(503), 1);
        let r = token_request(&sb, d).await;
        assert_eq!(r.status, 503, "{d}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text.contains("503 Service Unavailable"));
    }
    sb.inject(Dialect::GenericDjango, "/o/token/", Fault::Status(500), 1);
    let r = token_request(&sb, Dialect::GenericDjango).await;
    assert!(r.text.contains("Server Error (500)"));
    sb.inject(Dialect::RubyStyle, "/oauth/token", Fault::Status(500), 1);
    let r = token_request(&sb, Dialect::RubyStyle).await;
    assert_eq!(r.json(), json!({"status": 500, "error": "Internal Server Error"}));
    sb.inject(Dialect::Whitebit, "/oauth2/token", Fault::Status(500), 1);
    let r = token_request(&sb, Dialect::Whitebit).await;
    assert_eq!(r.json(), json!({"message": "Server Error"}));
}

#[tokio::test]
async fn faults_stay_on_their_route_and_can_be_cleared() {
    let sb = sandbox().await;
    sb.inject(Dialect::Probit, "/token", Fault::Status(502), 5);
    assert_eq!(token_request(&sb, Dialect::RubyStyle).await.status, 200);
    assert_eq!(get(&sb.protected_url(Dialect::Probit), None).await.status, 401);
    sb.clear_faults();
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 200);
    // Faults queue in order.
    sb.inject(Dialect::Probit, "/token", Fault::Status(500), 1);
    sb.inject(Dialect::Probit, "/token", Fault::HtmlErrorPage(403), 1);
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 500);
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 403);
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 200);
}

#[tokio::test]
async fn too_many_requests_with_and_without_retry_after() {
    let sb = sandbox().await;
    let d = Dialect::GenericDjango;
    sb.inject(d, "/o/token/", Fault::TooManyRequests { retry_after: Some("7".into()) }, 1);
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    sb.inject(d, "/o/token/", Fault::TooManyRequests { retry_after: Some(date.into()) }, 1);
    sb.inject(d, "/o/token/", Fault::TooManyRequests { retry_after: None }, 1);
    let r = token_request(&sb, d).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    assert_eq!(r.json()["detail"], "Request was throttled.");
    let r = token_request(&sb, d).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some(date)));
    let r = token_request(&sb, d).await;
    assert_eq!((r.status, r.header("retry-after")), (429, None));
}

#[tokio::test]
async fn latency_delays_a_normal_answer() {
    let sb = sandbox().await;
    sb.inject(Dialect::RubyStyle, "/oauth/token", Fault::Latency(Duration::from_millis(200)), 1);
    let started = Instant::now();
    let r = token_request(&sb, Dialect::RubyStyle).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(r.status, 200);
}

/// Sends a raw HTTP/1.1 request and reads until the server closes.
async fn raw_exchange(sb: &Sandbox, path: &str) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut stream = TcpStream::connect(sb.addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        sb.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server must close the connection")
        {
            Ok(0) => return (received, None),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => return (received, Some(e.kind())),
        }
    }
}

#[tokio::test]
async fn reset_connection_sends_no_response() {
    let sb = sandbox().await;
    sb.inject(Dialect::Probit, "/token", Fault::ResetConnection, 2);
    let (received, error) = raw_exchange(&sb, "/probit/token").await;
    #[cfg(target_os = "linux")]
    assert_eq!(error, Some(std::io::ErrorKind::ConnectionReset));
    let _ = error;
    assert!(received.is_empty(), "{:?}", String::from_utf8_lossy(&received));
    let err = common::http().post(sb.token_url(Dialect::Probit)).send().await.unwrap_err();
    assert!(!err.is_status() && !err.is_redirect(), "{err:?}");
    // The server is fine afterwards.
    assert_eq!(token_request(&sb, Dialect::Probit).await.status, 200);
}

#[tokio::test]
async fn truncated_body_promises_more_than_it_sends() {
    let sb = sandbox().await;
    sb.inject(Dialect::Whitebit, "/oauth2/token", Fault::TruncatedBody, 2);
    let (received, _) = raw_exchange(&sb, "/whitebit/oauth2/token").await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"));
    let promised: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!body.is_empty() && body.len() < promised, "{text}");

    let resp = common::http().post(sb.token_url(Dialect::Whitebit)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err());
}

#[tokio::test]
async fn body_faults() {
    let sb = sandbox().await;
    let d = Dialect::RubyStyle;
    let path = "/oauth/token";

    sb.inject(d, path, Fault::MalformedJson, 1);
    let r = token_request(&sb, d).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_str::<Value>(&r.text).is_err());

    sb.inject(d, path, Fault::HtmlErrorPage(403), 1);
    let r = token_request(&sb, d).await;
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text.contains("403 Forbidden"));

    sb.inject(d, path, Fault::ErrorIn200, 1);
    let r = token_request(&sb, d).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(r.json()["error_description"].is_string());

    sb.inject(d, path, Fault::OversizedBody(1 << 20), 1);
    let r = token_request(&sb, d).await;
    assert_eq!(r.status, 200);
    assert!(r.text.len() >= 1 << 20);
    assert!(r.json().is_object());

    sb.inject(d, path, Fault::RedirectCrossHost, 1);
    let r = token_request(&sb, d).await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location").unwrap(), format!("http://127.0.0.2:{}/elsewhere", sb.addr().port()));
}

#[tokio::test]
async fn token_rewriting_faults_in_every_dialect() {
    let sb = sandbox().await;
    for d in Dialect::ALL {
        let path = d.token_path();
        let lifetime = d.default_lifetime().as_secs();
        let cases = [
            (Fault::ExpiresIn(ExpiresInFault::Missing), None),
            (Fault::ExpiresIn(ExpiresInFault::Zero), Some(json!(0))),
            (Fault::ExpiresIn(ExpiresInFault::Negative), Some(json!(-1))),
            (Fault::ExpiresIn(ExpiresInFault::Huge), Some(json!(i64::MAX))),
            (Fault::ExpiresIn(ExpiresInFault::String), Some(json!(lifetime.to_string()))),
        ];
        for (fault, expected) in cases {
            sb.inject(d, path, fault.clone(), 1);
            let r = token_request(&sb, d).await;
            assert_eq!(r.status, 200, "{d} {fault:?}");
            let t = token_object(d, &r.json());
            assert_eq!(t.get("expires_in").cloned(), expected, "{d} {fault:?}");
            assert!(t["access_token"].is_string());
        }
        sb.inject(d, path, Fault::MissingAccessToken, 1);
        let t = token_object(d, &token_request(&sb, d).await.json());
        assert!(t.get("access_token").is_none(), "{d}");
        assert_eq!(t["token_type"], "Bearer");
        sb.inject(d, path, Fault::LowercaseTokenType, 1);
        let t = token_object(d, &token_request(&sb, d).await.json());
        assert_eq!(t["token_type"], "bearer", "{d}");
        // Back to normal.
        let t = token_object(d, &token_request(&sb, d).await.json());
        assert_eq!(t["token_type"], "Bearer", "{d}");
        assert_eq!(t["expires_in"], lifetime, "{d}");
    }
}

#[tokio::test]
async fn a_faulted_refresh_does_not_consume_the_refresh_token() {
    let sb = sandbox().await;
    let r = token_request(&sb, Dialect::Whitebit).await;
    let refresh_token = r.json()["data"]["refresh_token"].as_str().unwrap().to_owned();
    sb.inject(Dialect::Whitebit, "/oauth2/refresh_token", Fault::Status(503), 1);
    let body = form(&[
        ("client_id", "whitebit-demo-client"),
        ("client_secret", "whitebit-demo-secret"),
        ("token", &refresh_token),
    ]);
    let r = post(&sb.refresh_url(), &[FORM], body.clone()).await;
    assert_eq!(r.status, 503);
    let r = post(&sb.refresh_url(), &[FORM], body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let log = sb.requests(Dialect::Whitebit);
    let refreshes: Vec<_> = log.iter().filter(|r| r.path == "/oauth2/refresh_token").collect();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(refreshes[0].fingerprint_of("token"), refreshes[1].fingerprint_of("token"));
}

#[tokio::test]
async fn the_log_is_redacted() {
    let sb = sandbox().await;
    for d in Dialect::ALL {
        assert_eq!(token_request(&sb, d).await.status, 200);
    }
    let probit = sb.requests(Dialect::Probit);
    assert_eq!(probit.len(), 1);
    let r = &probit[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/token"));
    assert_eq!(r.header("authorization"), Some("Basic [redacted]"));
    assert_eq!(r.body, r#"{"grant_type":"client_credentials"}"#);

    let django = &sb.requests(Dialect::GenericDjango)[0];
    assert_eq!(django.body, "grant_type=client_credentials&client_id=django-demo-client&client_secret=[redacted]");
    let ruby = &sb.requests(Dialect::RubyStyle)[0];
    assert!(ruby.body.contains(r#""client_secret":"[redacted]""#));
    let whitebit = sb.requests(Dialect::Whitebit);
    assert_eq!(whitebit[0].path, "/auth/login");
    assert_eq!(whitebit[0].query.as_deref(), Some("clientId=whitebit-demo-client&state=s"));
    assert!(whitebit[1].body.contains("code=[redacted]"));
    assert!(whitebit[1].fingerprint_of("code").is_some());
    for d in Dialect::ALL {
        for r in sb.requests(d) {
            let text = format!("{r:?}");
            assert!(!text.contains("demo-secret"), "{text}");
        }
    }
    assert_eq!(sb.request_count(Dialect::Whitebit, "/auth/login"), 1);
    assert_eq!(sb.request_count(Dialect::Whitebit, "/nothing"), 0);
}

#[tokio::test]
async fn garbage_never_breaks_the_server() {
    let sb = sandbox().await;
    let http = common::http();
    let bodies: [&[u8]; 5] = [b"", b"\xff\xfe\x00", b"{", b"a=%zz&&=&", b"[1,2,3]"];
    for d in Dialect::ALL {
        for path in
            [d.token_path(), d.protected_path(), "/auth/login", "/auth/consent", "/oauth2/refresh_token", "/", "/%00"]
        {
            for body in bodies {
                for ct in ["application/json", "application/x-www-form-urlencoded", "text/plain"] {
                    let r = http
                        .post(format!("{}{path}", sb.base_url(d)))
                        .header("content-type", ct)
                        .header("authorization", "Basic ###")
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().as_u16() >= 300, "{d} {path}");
                }
            }
        }
    }
    let too_big = vec![b'a'; 2 * 1024 * 1024];
    let r = http.post(sb.token_url(Dialect::Probit)).body(too_big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    for d in Dialect::ALL {
        assert_eq!(token_request(&sb, d).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_distinct_tokens() {
    let sb = sandbox().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let sb = sb.clone();
        tasks.spawn(async move {
            let r = token_request(&sb, Dialect::GenericDjango).await;
            r.json()["access_token"].as_str().unwrap().to_owned()
        });
    }
    let mut tokens = std::collections::HashSet::new();
    while let Some(t) = tasks.join_next().await {
        assert!(tokens.insert(t.unwrap()));
    }
    assert_eq!(tokens.len(), 40);
    assert_eq!(sb.request_count(Dialect::GenericDjango, "/o/token/"), 40);
}

#[tokio::test]
async fn urls_and_credentials() {
    fn send_sync_debug<T: Send + Sync + std::fmt::Debug + Clone>() {}
    send_sync_debug::<Sandbox>();
    let sb = Sandbox::start().await.unwrap();
    let port = sb.addr().port();
    assert_eq!(sb.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(sb.base_url(Dialect::Probit), format!("http://127.0.0.1:{port}/probit"));
    let urls: Vec<_> = Dialect::ALL.iter().map(|d| sb.token_url(*d)).collect();
    assert_eq!(
        urls,
        [
            format!("http://127.0.0.1:{port}/probit/token"),
            format!("http://127.0.0.1:{port}/django/o/token/"),
            format!("http://127.0.0.1:{port}/ruby/oauth/token"),
            format!("http://127.0.0.1:{port}/whitebit/oauth2/token"),
        ]
    );
    assert_eq!(
        sb.protected_url(Dialect::Whitebit),
        format!("http://127.0.0.1:{port}/whitebit/api/v4/main-account/balance")
    );
    for d in Dialect::ALL {
        let special = sb.special_credentials(d);
        for c in [':', '%', '+', '/', '&', '=', ' '] {
            assert!(special.client_secret.contains(c));
        }
        assert_ne!(special.client_id, sb.credentials(d).client_id);
        assert!(!format!("{special:?}").contains(&special.client_secret));
    }
}

#[tokio::test]
async fn shutdown_and_drop_free_the_port() {
    let sb = Sandbox::start().await.unwrap();
    let addr = sb.addr();
    let other = sb.clone();
    sb.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    drop(other);

    // A fixed port, released by dropping the last handle.
    let sb = Sandbox::start_with(SandboxConfig::default().port(addr.port())).await.unwrap();
    assert_eq!(sb.addr(), addr);
    assert_eq!(token_request(&sb, Dialect::RubyStyle).await.status, 200);
    drop(sb);
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the port is still served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
