//! Unit tests of `parse`.

use super::*;
use crate::error::{Error, OAuthErrorCode, Result};
use crate::http::HttpResponse;
use crate::token::{AccessToken, RefreshToken};
use serde_json::Value;
use std::time::{Duration, SystemTime};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn parse(status: u16, body: &str) -> Result<AccessToken> {
    parse_response(&HttpResponse::json(status, body.to_owned()), &ResponseFormat::default(), now(), None)
}

#[test]
fn member_names_with_escapes_and_repeated_members() {
    // `\u005f` is `_`: an escaped name is the same member.
    let t = parse(200, r#"{"access\u005ftoken":"abc","expires_in":60,"x\u0041":1}"#).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "abc");
    assert_eq!(t.extra().get("xA"), Some(&serde_json::json!(1)));
    // A repeated member: the last one counts, as in any JSON object reader here.
    let t = parse(200, r#"{"access_token":"first","access_token":"second","expires_in":60}"#).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "second");
}

#[test]
fn a_rails_status_page_is_an_http_error_not_an_oauth_error() {
    for (status, reason) in [(500, "Internal Server Error"), (429, "Too Many Requests"), (401, "Unauthorized")] {
        let body = format!(r#"{{"status":{status},"error":"{reason}"}}"#);
        match parse(status, &body) {
            Err(Error::Http(e)) => {
                assert_eq!(e.status, status);
                assert_eq!(e.message.as_deref(), Some(reason));
                assert_eq!(e.code, None);
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    // An OAuth error that also names the status stays an OAuth error, and so does an `error`
    // that is not the status's reason phrase.
    let oauth = |status: u16, body: &str| match parse(status, body) {
        Err(Error::OAuth(e)) => e.code,
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(oauth(401, r#"{"status":401,"error":"invalid_client"}"#), OAuthErrorCode::InvalidClient);
    assert_eq!(oauth(500, r#"{"status":500,"error":"Not Found"}"#), OAuthErrorCode::Other("Not Found".to_owned()));
    assert_eq!(
        oauth(500, r#"{"status":404,"error":"Internal Server Error"}"#),
        OAuthErrorCode::Other("Internal Server Error".to_owned())
    );
    // 5xx and 429 status pages stay retryable.
    assert!(parse(500, r#"{"status":500,"error":"Internal Server Error"}"#).unwrap_err().is_retryable());
}

#[test]
fn standard_response() {
    let t =
        parse(200, r#"{"access_token":"abc","token_type":"Bearer","expires_in":36000,"scope":"read write"}"#).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "abc");
    assert_eq!(t.lifetime(), Duration::from_secs(36000));
    assert_eq!(t.expires_at(), now() + Duration::from_secs(36000));
    assert_eq!(t.scopes().to_string(), "read write");
    assert!(t.refresh_token().is_none());
}

#[test]
fn expires_in_variants() {
    let lifetime = |v: &str| parse(200, &format!(r#"{{"access_token":"a","expires_in":{v}}}"#)).map(|t| t.lifetime());
    assert_eq!(lifetime(r#""900""#).unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime("900.7").unwrap(), Duration::from_secs(900));
    assert!(matches!(lifetime("0"), Err(Error::InvalidResponse { .. })));
    assert!(matches!(lifetime("-5"), Err(Error::InvalidResponse { .. })));
    // Below one second would truncate to an already expired token.
    for sub_second in ["0.5", r#""0.999""#, "1e-291"] {
        assert!(matches!(lifetime(sub_second), Err(Error::InvalidResponse { .. })), "{sub_second}");
    }
    assert_eq!(lifetime("1").unwrap(), Duration::from_secs(1));
    assert!(matches!(lifetime(r#""soon""#), Err(Error::InvalidResponse { .. })));
    assert_eq!(lifetime("1e300").unwrap(), Duration::from_secs(30 * 24 * 3600));
    assert_eq!(lifetime("18446744073709551615").unwrap(), Duration::from_secs(30 * 24 * 3600));
    assert_eq!(lifetime("null").unwrap(), Duration::from_secs(3600));
    let missing = parse(200, r#"{"access_token":"a"}"#).unwrap();
    assert_eq!(missing.lifetime(), Duration::from_secs(3600));
}

#[test]
fn token_type_rules() {
    assert!(parse(200, r#"{"access_token":"a","token_type":"bearer"}"#).is_ok());
    assert!(parse(200, r#"{"access_token":"a","token_type":"BEARER"}"#).is_ok());
    assert!(matches!(parse(200, r#"{"access_token":"a","token_type":"mac"}"#), Err(Error::InvalidResponse { .. })));
}

#[test]
fn missing_access_token_is_an_error() {
    let err = parse(200, r#"{"token_type":"Bearer"}"#).unwrap_err();
    assert!(err.to_string().contains("`access_token` is missing"), "{err}");
}

#[test]
fn error_in_200_is_an_error() {
    let err = parse(200, r#"{"error":"invalid_request","error_description":"nope"}"#).unwrap_err();
    match err {
        Error::OAuth(e) => {
            assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            assert_eq!(e.status, 200);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn envelope_and_comma_scopes() {
    let format = ResponseFormat::default().envelope("/data");
    let r = HttpResponse::json(
        200,
        r#"{"data":{"access_token":"a","expires_in":300,"refresh_token":"r","scope":"general,users.read","token_type":"Bearer"}}"#,
    );
    let t = parse_response(&r, &format, now(), None).unwrap();
    assert_eq!(t.scopes().iter().collect::<Vec<_>>(), ["general", "users.read"]);
    assert!(t.refresh_token().is_some());
    let missing = parse_response(&HttpResponse::json(200, r#"{"access_token":"a"}"#), &format, now(), None);
    assert!(matches!(missing, Err(Error::InvalidResponse { .. })));
}

fn renamed() -> ResponseFormat {
    ResponseFormat::default()
        .field(ResponseField::AccessToken, "/issued/bearer")
        .field(ResponseField::ExpiresIn, "/issued/lifetime")
        .field(ResponseField::TokenType, "/issued/type")
        .field(ResponseField::RefreshToken, "/issued/renewal")
        .field(ResponseField::Scope, "/issued/permissions")
        .field(ResponseField::Error, "/problem/type")
        .field(ResponseField::ErrorDescription, "/problem/detail")
}

#[test]
fn fields_at_pointers_of_their_own() {
    let body = r#"{"issued":{"bearer":"tok","lifetime":"900","type":"Bearer","renewal":"ren","permissions":"read write","region":"eu"},"meta":1}"#;
    let t = parse_response(&HttpResponse::json(200, body), &renamed(), now(), None).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "tok");
    assert_eq!(t.lifetime(), Duration::from_secs(900));
    assert_eq!(t.scopes().to_string(), "read write");
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.refresh_token().unwrap().secret()), "ren");
    // What is left of the object that held the token is kept; the fields read are not.
    assert_eq!(t.extra().get("region"), Some(&serde_json::json!("eu")));
    assert!(!t.extra().contains_key("bearer") && !t.extra().contains_key("lifetime"));
    // A field at its pointer is read there only: the RFC name at the root is not a fallback.
    let err = parse_response(&HttpResponse::json(200, r#"{"access_token":"t"}"#), &renamed(), now(), None).unwrap_err();
    assert!(err.to_string().contains("`access_token` (at `/issued/bearer`) is missing"), "{err}");
    let err = parse_response(
        &HttpResponse::json(200, r#"{"issued":{"bearer":"t","lifetime":"soon"}}"#),
        &renamed(),
        now(),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`expires_in` (at `/issued/lifetime`) is `soon`"), "{err}");
    // Fields without a pointer keep their name under the envelope.
    let format = ResponseFormat::default().envelope("/data").field(ResponseField::ExpiresIn, "/ttl");
    let t = parse_response(&HttpResponse::json(200, r#"{"data":{"access_token":"a"},"ttl":60}"#), &format, now(), None)
        .unwrap();
    assert_eq!(t.lifetime(), Duration::from_secs(60));
    // Escaped pointer segments (RFC 6901 `~1` is `/`, `~0` is `~`).
    let format = ResponseFormat::default().field(ResponseField::AccessToken, "/a~1b/c~0d");
    let t = parse_response(&HttpResponse::json(200, r#"{"a/b":{"c~d":"x"}}"#), &format, now(), None).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(t.secret()), "x");
}

#[test]
fn errors_at_pointers_of_their_own() {
    let problem = r#"{"problem":{"type":"invalid_request","detail":"grantKind is missing"}}"#;
    for status in [400, 200] {
        match parse_response(&HttpResponse::json(status, problem), &renamed(), now(), None) {
            Err(Error::OAuth(e)) => {
                assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
                assert_eq!(e.status, status);
                assert_eq!(e.description.as_deref(), Some("grantKind is missing"));
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    // Without a code at the pointer, the usual shapes are still recognised.
    match parse_response(&HttpResponse::json(401, r#"{"errorCode":"X","message":"m"}"#), &renamed(), now(), None) {
        Err(Error::Http(e)) => assert_eq!(e.code.as_deref(), Some("X")),
        other => panic!("{other:?}"),
    }
    // The description defaults to `error_description` beside the code.
    let format = ResponseFormat::default().field(ResponseField::Error, "/problem/code");
    let r = HttpResponse::json(400, r#"{"problem":{"code":"invalid_scope","error_description":"d"}}"#);
    match parse_error_with(&r, &format, SystemTime::now()) {
        Error::OAuth(e) => {
            assert_eq!(e.code, OAuthErrorCode::InvalidScope);
            assert_eq!(e.description.as_deref(), Some("d"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expires_at_as_epoch_seconds_or_rfc3339() {
    let format = ResponseFormat::default().field(ResponseField::ExpiresAt, "/until");
    let lifetime = |v: &str| {
        parse_response(&HttpResponse::json(200, format!(r#"{{"access_token":"a","until":{v}}}"#)), &format, now(), None)
            .map(|t| t.lifetime())
    };
    // now() is 1_700_000_000 = 2023-11-14T22:13:20Z.
    assert_eq!(lifetime("1700000900").unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime(r#""1700000900""#).unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime("1700000900.9").unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime(r#""2023-11-14T22:28:20Z""#).unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime(r#""2023-11-15T00:28:20+02:00""#).unwrap(), Duration::from_secs(900));
    assert_eq!(lifetime(r#""2023-11-14T22:28:20.5Z""#).unwrap(), Duration::from_secs(900));
    // Far but valid: capped like a long `expires_in`.
    assert_eq!(lifetime(r#""9999-12-31T23:59:59Z""#).unwrap(), Duration::from_secs(30 * 24 * 3600));
    assert_eq!(lifetime("253402300799").unwrap(), Duration::from_secs(30 * 24 * 3600));
    // Missing: the fallback lifetime.
    assert_eq!(lifetime("null").unwrap(), Duration::from_secs(3600));
    // Past, negative, absurd or unreadable: an invalid response, never a panic.
    for bad in [
        "1700000000",
        "1699999999",
        "0",
        "-5",
        r#""-5""#,
        "1e300",
        "-1e300",
        "253402300800",
        "18446744073709551616",
        r#""1e999""#,
        r#""NaN""#,
        r#""inf""#,
        r#""2023-11-14T22:13:20Z""#,
        r#""1969-12-31T23:59:59Z""#,
        r#""2023-13-01T00:00:00Z""#,
        r#""tomorrow""#,
        "true",
        "[1]",
    ] {
        assert!(matches!(lifetime(bad), Err(Error::InvalidResponse { .. })), "{bad}: {:?}", lifetime(bad));
    }
    let err = lifetime("1699999999").unwrap_err();
    assert!(err.to_string().contains("`expires_at` (at `/until`)") && err.to_string().contains("already expired"));
    // `expires_in` is not read when `expires_at` has a pointer.
    let t = parse_response(
        &HttpResponse::json(200, r#"{"access_token":"a","expires_in":5,"until":1700000900}"#),
        &format,
        now(),
        None,
    )
    .unwrap();
    assert_eq!(t.lifetime(), Duration::from_secs(900));
}

#[test]
fn field_pointers_are_validated() {
    let err = ResponseFormat::default().field(ResponseField::Scope, "issued/permissions").validate("envelope");
    assert!(matches!(err, Err(Error::Config { ref key, .. }) if key == "response.scope"), "{err:?}");
    let both = ResponseFormat::default()
        .field(ResponseField::ExpiresIn, "/a")
        .field(ResponseField::ExpiresAt, "/b")
        .validate("envelope");
    assert!(matches!(both, Err(Error::Config { ref key, .. }) if key == "response.expires_at"), "{both:?}");
    // An empty pointer takes a field's pointer back.
    let format = ResponseFormat::default().field(ResponseField::Scope, "/x").field(ResponseField::Scope, "");
    assert_eq!(format, ResponseFormat::default());
    for field in ResponseField::ALL {
        assert_eq!(ResponseField::from_name(field.name()), Some(field));
    }
}

#[test]
fn form_encoded_body() {
    let r =
        HttpResponse::new(200, "application/x-www-form-urlencoded", "access_token=abc&expires_in=60&token_type=bearer");
    let t = parse_response(&r, &ResponseFormat::default(), now(), None).unwrap();
    assert_eq!(t.lifetime(), Duration::from_secs(60));
}

#[test]
fn keeps_previous_refresh_token_and_extra_fields() {
    let previous = RefreshToken::new("old");
    let r = HttpResponse::json(200, r#"{"access_token":"a","expires_in":60,"created_at":1700000000}"#);
    let t = parse_response(&r, &ResponseFormat::default(), now(), Some(&previous)).unwrap();
    assert!(t.refresh_token().unwrap().same_as(&previous));
    assert_eq!(t.extra().get("created_at").and_then(Value::as_u64), Some(1_700_000_000));
    assert!(!t.extra().contains_key("access_token"));
}

#[test]
fn rfc_error_bodies() {
    let r = HttpResponse::json(401, r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#)
        .with_header("retry-after", "7");
    match parse_error(&r, SystemTime::now()) {
        Error::OAuth(e) => {
            assert_eq!(e.code, OAuthErrorCode::InvalidClient);
            assert_eq!(e.status, 401);
            assert_eq!(e.description.as_deref(), Some("Client authentication failed"));
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn provider_error_shapes() {
    let cases = [
        (
            401,
            r#"{"errorCode":"UNAUTHORIZED","message":"Invalid client","details":{}}"#,
            Some("UNAUTHORIZED"),
            Some("Invalid client"),
        ),
        (401, r#"{"data":{"message":["Invalid request"]}}"#, None, Some("Invalid request")),
        (
            422,
            r#"{"errors":{"code":["The code field is required."]},"notification":null}"#,
            Some("code"),
            Some("The code field is required."),
        ),
        (400, r#"{"data":{"token":["Invalid token."]}}"#, Some("token"), Some("Invalid token.")),
    ];
    for (status, body, code, message) in cases {
        match parse_error(&HttpResponse::json(status, body), SystemTime::now()) {
            Error::Http(e) => {
                assert_eq!(e.status, status);
                assert_eq!(e.code.as_deref(), code, "{body}");
                assert_eq!(e.message.as_deref(), message, "{body}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn html_error_page() {
    let r =
        HttpResponse::new(403, "text/html", "<html><title>403 Forbidden</title><body>Request blocked</body></html>");
    match parse_error(&r, SystemTime::now()) {
        Error::Http(e) => {
            assert_eq!(e.status, 403);
            assert_eq!(e.excerpt, "403 Forbidden Request blocked");
        }
        other => panic!("unexpected {other:?}"),
    }
    let ok_html = HttpResponse::new(200, "text/html", "<html>login</html>");
    let err = parse_response(&ok_html, &ResponseFormat::default(), now(), None).unwrap_err();
    assert!(err.to_string().contains("HTML"), "{err}");
}

#[test]
fn retry_after_http_date() {
    // Counted from the caller's `now` (its injected clock), not the system clock.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let at = now + Duration::from_secs(120);
    let r = HttpResponse::json(429, "{}").with_header("retry-after", &httpdate::fmt_http_date(at));
    assert_eq!(parse_error(&r, now).retry_after(), Some(Duration::from_secs(120)));
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(
                |f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            ),
            ".{0,12}".prop_map(serde_json::Value::from),
            prop_oneof![Just("access_token"), Just("expires_in"), Just("error"), Just("data")]
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("access_token".to_owned()),
                            Just("expires_in".to_owned()),
                            Just("token_type".to_owned()),
                            Just("scope".to_owned()),
                            Just("refresh_token".to_owned()),
                            Just("error".to_owned()),
                            Just("errorCode".to_owned()),
                            Just("errors".to_owned()),
                            Just("data".to_owned()),
                            ".{0,6}"
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(status in 100u16..600, ct in prop_oneof![Just("application/json"), Just("text/html"), Just("application/x-www-form-urlencoded"), Just("")], body in prop::collection::vec(any::<u8>(), 0..512)) {
            let r = HttpResponse::new(status, ct, body);
            let _ = parse_response(&r, &ResponseFormat::default().envelope("/data"), now(), None);
            let _ = parse_response(&r, &ResponseFormat::default(), now(), None);
            let _ = parse_error(&r, SystemTime::now());
        }

        #[test]
        fn arbitrary_json_never_panics(status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(503)], value in arb_json()) {
            let r = HttpResponse::json(status, value.to_string());
            let _ = parse_response(&r, &ResponseFormat::default().envelope("/data"), now(), None);
            let _ = parse_response(&r, &ResponseFormat::default(), now(), None);
            let _ = parse_error(&r, SystemTime::now());
            let pointers = ResponseFormat::default()
                .field(ResponseField::AccessToken, "/data/access_token")
                .field(ResponseField::ExpiresAt, "/data/expires_in")
                .field(ResponseField::Scope, "/data/0")
                .field(ResponseField::Error, "/errors/error")
                .field(ResponseField::ErrorDescription, "/error");
            let _ = parse_response(&r, &pointers, now(), None);
            let _ = parse_error_with(&r, &pointers, SystemTime::now());
        }

        /// The one-pass reader of a top-level object and the general path (the same object in
        /// an envelope) give the same token or the same error.
        #[test]
        fn one_pass_and_general_path_agree(value in arb_json()) {
            use secrecy::ExposeSecret as _;
            let direct = parse_response(&HttpResponse::json(200, value.to_string()), &ResponseFormat::default(), now(), None);
            let wrapped = serde_json::json!({ "data": value }).to_string();
            let enveloped = parse_response(&HttpResponse::json(200, wrapped), &ResponseFormat::default().envelope("/data"), now(), None);
            match (direct, enveloped) {
                (Ok(a), Ok(b)) => {
                    prop_assert!(a.same_token(&b));
                    prop_assert_eq!(a.lifetime(), b.lifetime());
                    prop_assert_eq!(a.scopes(), b.scopes());
                    prop_assert_eq!(a.extra(), b.extra());
                    prop_assert_eq!(
                        a.refresh_token().map(|r| r.secret().expose_secret().to_owned()),
                        b.refresh_token().map(|r| r.secret().expose_secret().to_owned())
                    );
                }
                (Err(a), Err(b)) => {
                    // The envelope path names the envelope when the value is not an object.
                    if value.is_object() {
                        prop_assert_eq!(a.to_string(), b.to_string());
                    }
                }
                (a, b) => prop_assert!(false, "one-pass {:?} but general {:?} for {}", a, b, value),
            }
        }
    }
}
