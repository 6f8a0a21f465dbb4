//! The device authorization grant (RFC 8628).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value as Json;
use tracing::Instrument as _;
use url::Url;

use super::{FlowClient, instant_after};
use crate::error::{Error, OAuthError, OAuthErrorCode, Result};
use crate::http::HttpResponse;
use crate::parse::{parse_error_with, parse_response};
use crate::request::Value;
use crate::support::{REDACTED, excerpt};
use crate::token::{AccessToken, Scopes};

/// The `grant_type` of the device access token request (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server names none (RFC 8628 §3.2).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest interval polled at, whatever the server says.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval polled at (a server's `interval`, `slow_down` and back-off stop here).
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(300);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest `expires_in` of a device code taken as sent; longer ones are cut to this.
pub(crate) const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
/// The longest user code or device code accepted.
const MAX_CODE_LEN: usize = 1024;

/// The answer of the device authorization endpoint (RFC 8628 §3.2): what to show the user, and the
/// device code to poll with (a secret: never shown, never in `Debug`).
#[derive(Clone)]
pub struct DeviceAuthorization {
    device_code: SecretString,
    user_code: String,
    verification_uri: Url,
    verification_uri_complete: Option<Url>,
    expires_in: Duration,
    interval: Duration,
    scopes: Scopes,
    /// When polling must stop: `expires_in` after the answer arrived (Tokio's clock).
    deadline: tokio::time::Instant,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &REDACTED)
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri.as_str())
            .field("verification_uri_complete", &self.verification_uri_complete.as_ref().map(Url::as_str))
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

impl DeviceAuthorization {
    /// The code the user enters at [`verification_uri`](Self::verification_uri).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user goes to enter the code.
    pub fn verification_uri(&self) -> &Url {
        &self.verification_uri
    }

    /// The verification URI with the user code in it, when the server sent one (for a QR code or a
    /// link the user only has to open).
    pub fn verification_uri_complete(&self) -> Option<&Url> {
        self.verification_uri_complete.as_ref()
    }

    /// How long the codes are valid, from when the answer arrived (at most 24 h).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// The time to wait between polls (the server's, 5 s when it named none; between 1 s and 5 min).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The device code. A secret: only the token request sends it.
    pub fn device_code(&self) -> &SecretString {
        &self.device_code
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }
}

impl FlowClient {
    /// Asks the device authorization endpoint at `url` for a device code and a user code (RFC 8628
    /// §3.1), with the client's credentials. Show the user
    /// [`verification_uri`](DeviceAuthorization::verification_uri) and
    /// [`user_code`](DeviceAuthorization::user_code), then call
    /// [`poll_device_token`](Self::poll_device_token).
    pub async fn request_device_authorization(&self, url: &Url, scopes: &Scopes) -> Result<DeviceAuthorization> {
        let mut params = Vec::new();
        if !scopes.is_empty() {
            params.push(("scope", Value::from(scopes.join(" "))));
        }
        let request = self.authenticated_post(url, "device_authorization_url", params)?;
        let span = tracing::info_span!("tokensmith.device_authorization", host = url.host_str().unwrap_or(""));
        let response = self.send(&request, None).instrument(span.clone()).await.map_err(|e| self.scrub(e, &[]))?;
        let _entered = span.enter();
        let now = self.clock.system_time();
        if !(200..300).contains(&response.status) {
            return Err(self.scrub(parse_error_with(&response, self.endpoint.get_response_format(), now), &[]));
        }
        let authorization = parse_device_authorization(&response, scopes.clone())?;
        tracing::info!(
            expires_in_s = authorization.expires_in.as_secs(),
            interval_s = authorization.interval.as_secs(),
            "device authorization started"
        );
        Ok(authorization)
    }

    /// Polls the token endpoint with the device code (RFC 8628 §3.4) until the user approved or
    /// denied, or the code expired, and returns the token.
    ///
    /// Waits [`interval`](DeviceAuthorization::interval) before each request; `authorization_pending`
    /// goes on polling, `slow_down` adds 5 s to the interval, a timeout, a broken connection or an
    /// HTTP 5xx or 429 doubles it (RFC 8628 §3.5), up to 5 min. `access_denied` ends with
    /// [`Error::OAuth`] of code [`OAuthErrorCode::AccessDenied`], `expired_token` with
    /// [`OAuthErrorCode::ExpiredToken`], and so does reaching `expires_in` without an answer: no
    /// request is sent after it. Any other error ends the polling as it came.
    ///
    /// The token's scopes are the ones asked for when the response names none. Save it with
    /// [`CachedProvider::insert`](crate::CachedProvider::insert) (through a store) or a
    /// [`TokenStore`](crate::TokenStore) of your own.
    pub async fn poll_device_token(&self, authorization: &DeviceAuthorization) -> Result<AccessToken> {
        let device_code = authorization.device_code.expose_secret();
        let request = self.authenticated_post(
            self.endpoint.token_url(),
            "token_url",
            vec![
                ("grant_type", Value::from(DEVICE_CODE_GRANT)),
                ("device_code", Value::Secret(authorization.device_code.clone())),
            ],
        )?;
        let span =
            tracing::info_span!("tokensmith.device_poll", host = self.endpoint.token_url().host_str().unwrap_or(""),);
        self.poll(&request, authorization, device_code).instrument(span).await
    }

    async fn poll(
        &self,
        request: &crate::request::TokenRequest,
        authorization: &DeviceAuthorization,
        device_code: &str,
    ) -> Result<AccessToken> {
        let mut interval = authorization.interval;
        let mut polls: u32 = 0;
        loop {
            let next = instant_after(tokio::time::Instant::now(), interval);
            if next >= authorization.deadline {
                return Err(expired(format!(
                    "the device code expired after {:?} without the user's answer ({polls} polls)",
                    authorization.expires_in
                )));
            }
            tokio::time::sleep_until(next).await;
            polls = polls.saturating_add(1);
            let outcome = match self.send(request, Some(authorization.deadline)).await {
                Ok(response) => self.read_poll(&response, authorization),
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok(token) => {
                    tracing::info!(polls, lifetime_s = token.lifetime().as_secs(), "device authorized, token obtained");
                    return Ok(token);
                }
                Err(e) => self.scrub(e, &[device_code]),
            };
            match error.oauth_code() {
                Some(OAuthErrorCode::AuthorizationPending) => tracing::debug!(polls, "authorization pending"),
                Some(OAuthErrorCode::SlowDown) => {
                    interval = interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    tracing::debug!(polls, interval_s = interval.as_secs(), "slow_down: polling less often");
                }
                _ if error.is_retryable() => {
                    interval = interval.saturating_mul(2).min(MAX_INTERVAL);
                    tracing::warn!(polls, interval_s = interval.as_secs(), error = %error, "device poll failed; backing off");
                }
                _ => {
                    tracing::info!(polls, error = %error, "device authorization ended");
                    return Err(error);
                }
            }
        }
    }

    fn read_poll(&self, response: &HttpResponse, authorization: &DeviceAuthorization) -> Result<AccessToken> {
        let token = parse_response(response, self.endpoint.get_response_format(), self.clock.system_time(), None)?;
        Ok(if token.scopes().is_empty() && !authorization.scopes.is_empty() {
            token.to_builder().scopes(authorization.scopes.clone()).build()
        } else {
            token
        })
    }
}

/// The error for a device code that expired: `expired_token`, as the server would say it.
fn expired(description: String) -> Error {
    Error::OAuth(OAuthError::new(OAuthErrorCode::ExpiredToken, 400).with_description(description))
}

/// A whole number of seconds from a JSON number or numeric string; `None` for anything else.
fn seconds(value: &Json) -> Option<u64> {
    match value {
        Json::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)),
        Json::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// Reads a device authorization response (RFC 8628 §3.2), bounding every number in it.
pub(crate) fn parse_device_authorization(response: &HttpResponse, scopes: Scopes) -> Result<DeviceAuthorization> {
    let invalid = |what: String| Error::invalid_response(format!("the device authorization response {what}"));
    let body: Json = serde_json::from_slice(&response.body).map_err(|_| invalid("is not JSON".to_owned()))?;
    let object = body.as_object().ok_or_else(|| invalid("is not a JSON object".to_owned()))?;
    let text = |name: &str| -> Result<Option<String>> {
        match object.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if s.is_empty() => Err(invalid(format!("has an empty `{name}`"))),
            Some(Json::String(s)) if s.len() > MAX_CODE_LEN => {
                Err(invalid(format!("has a `{name}` of {} bytes, more than {MAX_CODE_LEN}", s.len())))
            }
            // Shown on a terminal: no control characters (escape sequences).
            Some(Json::String(s)) if s.chars().any(char::is_control) => {
                Err(invalid(format!("has control characters in `{name}`")))
            }
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("has a `{name}` that is not a string"))),
        }
    };
    let required = |name: &str| text(name)?.ok_or_else(|| invalid(format!("has no `{name}`")));
    let uri = |name: &str, value: String| -> Result<Url> {
        let url = Url::parse(&value)
            .map_err(|_| invalid(format!("has a `{name}` that is not a URL: `{}`", excerpt(&value, 120))))?;
        match url.scheme() {
            "https" | "http" => Ok(url),
            other => Err(invalid(format!("has a `{name}` with the scheme `{other}`; only http(s) is shown to users"))),
        }
    };
    let device_code = SecretString::from(required("device_code")?);
    let user_code = required("user_code")?;
    // `verification_url`: the name of drafts of RFC 8628, still sent by some servers (Google).
    let verification = match text("verification_uri")? {
        Some(v) => v,
        None => text("verification_url")?.ok_or_else(|| invalid("has no `verification_uri`".to_owned()))?,
    };
    let verification_uri = uri("verification_uri", verification)?;
    let verification_uri_complete =
        text("verification_uri_complete")?.map(|v| uri("verification_uri_complete", v)).transpose()?;
    let expires_in = match object.get("expires_in") {
        Some(value) => {
            seconds(value).ok_or_else(|| invalid("has an `expires_in` that is not a number of seconds".to_owned()))?
        }
        None => return Err(invalid("has no `expires_in`".to_owned())),
    };
    if expires_in == 0 {
        return Err(invalid("has `expires_in` 0: the codes are already expired".to_owned()));
    }
    let expires_in = Duration::from_secs(expires_in).min(MAX_EXPIRES_IN);
    let interval = match object.get("interval") {
        None | Some(Json::Null) => DEFAULT_INTERVAL,
        Some(value) => Duration::from_secs(
            seconds(value).ok_or_else(|| invalid("has an `interval` that is not a number of seconds".to_owned()))?,
        )
        .clamp(MIN_INTERVAL, MAX_INTERVAL),
    };
    Ok(DeviceAuthorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in,
        interval,
        scopes,
        deadline: instant_after(tokio::time::Instant::now(), expires_in),
    })
}
