//! Unit tests of `authorization_code.rs` (the WhiteBIT crate's, moved with the code, and the
//! generic request's).

use super::*;

const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn login() -> Url {
    Url::parse("https://whitebit.com/auth/login").unwrap()
}

/// WhiteBIT's dialect: no `response_type`, `clientId`, no PKCE unless asked.
fn whitebit(redirect_uri: Option<&str>, pkce: bool) -> AuthorizationRequest {
    let request =
        AuthorizationRequest::new(login(), "cid").send_response_type(false).client_id_param("clientId").pkce(pkce);
    match redirect_uri {
        Some(uri) => request.redirect_uri(uri),
        None => request,
    }
}

fn with_values(redirect_uri: Option<&str>, state: String, verifier: Option<String>) -> PendingAuthorization {
    whitebit(redirect_uri, verifier.is_some()).start_with(state, verifier)
}

fn pending() -> PendingAuthorization {
    with_values(None, "the-state".into(), None)
}

fn callback_error(result: Result<AuthorizationCode>) -> CallbackError {
    match result {
        Err(Error::Callback(e)) => e,
        other => panic!("expected a callback error, got {other:?}"),
    }
}

#[test]
fn rfc7636_appendix_b_s256() {
    assert_eq!(pkce_challenge(RFC7636_VERIFIER), RFC7636_CHALLENGE);
    let p = with_values(Some("http://127.0.0.1:9/callback"), "s".into(), Some(RFC7636_VERIFIER.into()));
    let query: Vec<(String, String)> = p.url().query_pairs().into_owned().collect();
    assert!(query.contains(&("code_challenge".into(), RFC7636_CHALLENGE.into())), "{query:?}");
    assert!(query.contains(&("code_challenge_method".into(), "S256".into())));
    assert_eq!(p.code_challenge().as_deref(), Some(RFC7636_CHALLENGE));
}

#[test]
fn state_and_verifier_are_random_and_well_formed() {
    let a = whitebit(None, true).start();
    let b = whitebit(None, true).start();
    assert_ne!(a.state(), b.state());
    assert!(a.state().len() >= 22, "at least 128 bits of base64url");
    let (va, vb) = (a.code_verifier().unwrap().expose_secret(), b.code_verifier().unwrap().expose_secret());
    assert_ne!(va, vb);
    assert!(is_valid_verifier(va), "{}", va.len());
    assert_eq!(va.len(), 64);
    // Standard flow: no PKCE parameters.
    let plain = whitebit(None, false).start();
    assert!(!plain.is_pkce());
    assert!(!plain.url().as_str().contains("code_challenge"));
}

#[test]
fn debug_redacts_the_verifier() {
    let p = with_values(None, "st".into(), Some(RFC7636_VERIFIER.into()));
    let text = format!("{p:?}");
    assert!(!text.contains(RFC7636_VERIFIER), "{text}");
    assert!(text.contains(REDACTED));
    assert!(format!("{:?}", AuthorizationCode::new("abc-code")).contains(REDACTED));
    assert!(!format!("{:?}", AuthorizationCode::new("abc-code")).contains("abc-code"));
}

#[test]
fn accepts_a_url_or_a_query_string() {
    for callback in [
        "http://127.0.0.1:8765/callback?code=c0de&state=the-state",
        "?code=c0de&state=the-state",
        "code=c0de&state=the-state",
        "  code=c0de&state=the-state#frag ",
        // A `?` in the fragment does not start a query.
        "code=c0de&state=the-state#?code=evil",
        "http://127.0.0.1:8765/callback?code=c0de&state=the-state#x?state=no",
    ] {
        let code = pending().verify_callback(callback).unwrap();
        assert_eq!(code.secret().expose_secret(), "c0de", "{callback}");
    }
}

#[test]
fn state_mismatch_does_not_use_up_the_authorization() {
    let p = pending();
    for bad in ["code=c&state=other", "code=c", "code=c&state=", "code=c&state=the-stat"] {
        assert_eq!(callback_error(p.verify_callback(bad)), CallbackError::StateMismatch, "{bad}");
    }
    assert!(!p.is_used());
    assert!(p.verify_callback("code=c&state=the-state").is_ok());
}

#[test]
fn second_callback_is_rejected() {
    let p = pending();
    assert!(p.verify_callback("code=c&state=the-state").is_ok());
    assert!(p.is_used());
    assert_eq!(callback_error(p.verify_callback("code=c&state=the-state")), CallbackError::AlreadyUsed);
    assert_eq!(callback_error(p.verify_callback("code=other&state=the-state")), CallbackError::AlreadyUsed);
}

#[test]
fn error_callbacks_are_typed() {
    let p = pending();
    let e = callback_error(p.verify_callback("error=access_denied&error_description=User+said+no&state=the-state"));
    assert_eq!(
        e,
        CallbackError::Denied { code: OAuthErrorCode::AccessDenied, description: Some("User said no".into()) }
    );
    assert!(e.to_string().contains("access_denied"), "{e}");
    assert!(p.is_used());
}

/// Anyone (any web page the user visits) can send an `error=` callback: without the right
/// `state` it is a mismatch and leaves the authorization usable for the genuine callback.
#[test]
fn error_callback_without_the_right_state_does_not_use_up_the_authorization() {
    let p = pending();
    for forged in ["error=access_denied", "error=access_denied&state=x", "error=server_error&state="] {
        assert_eq!(callback_error(p.verify_callback(forged)), CallbackError::StateMismatch, "{forged}");
        assert!(!p.is_used(), "{forged}");
    }
    assert!(p.verify_callback("code=c&state=the-state").is_ok());
}

#[test]
fn malformed_callbacks() {
    for bad in [
        "",
        "http://127.0.0.1:1/callback",
        "/callback",
        "state=the-state",
        "code=&state=the-state",
        "code=a&code=b&state=the-state",
    ] {
        let p = pending();
        let e = p.verify_callback(bad);
        assert!(matches!(callback_error(e), CallbackError::Malformed(_)), "{bad}");
        assert!(!p.is_used(), "a malformed callback does not use up the authorization: {bad}");
    }
    let repeated_state = pending().verify_callback("code=a&state=the-state&state=the-state");
    assert!(matches!(callback_error(repeated_state), CallbackError::Malformed(_)));
    let long = format!("code={}&state=the-state", "a".repeat(MAX_CALLBACK_LEN));
    assert!(matches!(callback_error(pending().verify_callback(&long)), CallbackError::Malformed(_)));
}

#[test]
fn serde_round_trip_keeps_everything() {
    let p = with_values(Some("http://127.0.0.1:9/callback"), "st".into(), Some(RFC7636_VERIFIER.into()));
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(RFC7636_VERIFIER), "the verifier is kept, as documented");
    let back: PendingAuthorization = serde_json::from_str(&json).unwrap();
    assert_eq!(back.url(), p.url());
    assert_eq!(back.state(), "st");
    assert_eq!(back.redirect_uri(), Some("http://127.0.0.1:9/callback"));
    assert_eq!(back.code_challenge().as_deref(), Some(RFC7636_CHALLENGE));
    assert!(!back.is_used());
    back.verify_callback("code=c&state=st").unwrap();
    let used: PendingAuthorization = serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
    assert_eq!(callback_error(used.verify_callback("code=c&state=st")), CallbackError::AlreadyUsed);
    let bad = json.replace(RFC7636_VERIFIER, "short");
    assert!(serde_json::from_str::<PendingAuthorization>(&bad).is_err());
}

#[test]
fn the_url_is_built_from_data() {
    let request = AuthorizationRequest::new(Url::parse("https://as.example/o/authorize/?tenant=t1").unwrap(), "my app")
        .redirect_uri("http://127.0.0.1:9/callback")
        .scopes(Scopes::parse("read write"))
        .extra_param("prompt", "consent")
        .extra_param("state", "attacker")
        .extra_param("client_id", "other");
    let p = request.start_with("st".into(), Some(RFC7636_VERIFIER.into()));
    assert_eq!(
        p.url().as_str(),
        format!(
            "https://as.example/o/authorize/?tenant=t1&response_type=code&client_id=my+app&state=st&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&scope=read+write&code_challenge={RFC7636_CHALLENGE}&code_challenge_method=S256&prompt=consent"
        )
    );
    assert_eq!(p.redirect_uri(), Some("http://127.0.0.1:9/callback"));
    // The client id name set after an extra parameter of that name: the client id still wins.
    let late = AuthorizationRequest::new(login(), "cid").extra_param("clientId", "evil").client_id_param("clientId");
    assert_eq!(late.start_with("st".into(), None).url().query_pairs().filter(|(n, _)| n == "clientId").count(), 1);
    // A scope separator of the dialect's; no PKCE when turned off.
    let plain = AuthorizationRequest::new(login(), "c").scopes(Scopes::parse("a b")).scope_separator(",").pkce(false);
    let p = plain.start_with("st".into(), None);
    assert_eq!(p.url().as_str(), "https://whitebit.com/auth/login?response_type=code&client_id=c&state=st&scope=a%2Cb");
    assert!(!p.is_pkce());
}

/// WhiteBIT's URL, exactly as its crate built it before the flow moved to core.
#[test]
fn whitebit_dialect_url_is_unchanged() {
    let p = with_values(None, "st".into(), None);
    assert_eq!(p.url().as_str(), "https://whitebit.com/auth/login?clientId=cid&state=st");
    let p = with_values(Some("http://127.0.0.1:9/callback"), "st".into(), Some(RFC7636_VERIFIER.into()));
    assert_eq!(
        p.url().as_str(),
        format!(
            "https://whitebit.com/auth/login?clientId=cid&state=st&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_challenge={RFC7636_CHALLENGE}&code_challenge_method=S256"
        )
    );
}

/// The serialized form is the one the WhiteBIT crate wrote, so a session holding an old one still
/// works.
#[test]
fn serde_form_is_unchanged() {
    let p = with_values(Some("http://127.0.0.1:9/callback"), "st".into(), Some(RFC7636_VERIFIER.into()));
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "url": p.url().as_str(),
            "state": "st",
            "redirect_uri": "http://127.0.0.1:9/callback",
            "code_verifier": RFC7636_VERIFIER,
            "used": false,
        })
    );
    let old = r#"{"url":"https://whitebit.com/auth/login?clientId=cid&state=st","state":"st"}"#;
    let back: PendingAuthorization = serde_json::from_str(old).unwrap();
    assert!(!back.is_pkce() && !back.is_used() && back.redirect_uri().is_none());
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        r#"{"url":"https://whitebit.com/auth/login?clientId=cid&state=st","state":"st","used":false}"#
    );
}
