//! [`CredentialStyle`]: how client credentials are placed on a token request.
//!
//! Providers disagree here, so the choice is a value, not code in each provider:
//!
//! | style | wire | who expects it |
//! | --- | --- | --- |
//! | [`BasicAuth`] | `Authorization: Basic base64(urlenc(id):urlenc(secret))` | RFC 6749 §2.3.1, Django OAuth Toolkit |
//! | [`BasicAuthRaw`] | `Authorization: Basic base64(id:secret)` | ProBit, Doorkeeper, Cognito |
//! | [`RequestBody`] | `client_id` and `client_secret` in the body (form or JSON) | Doorkeeper JSON, WhiteBIT, DOT |
//! | [`BodyCredentials`] | the id and secret in the body under names of the provider's choosing | servers that rename every field |
//! | [`PublicClient`] | only `client_id` in the body | public clients (PKCE) |
//! | `PrivateKeyJwt` (feature `jwt`) | `client_id`, `client_assertion_type` and `client_assertion`: a JWT signed with the client's RS256/ES256 private key | RFC 7523 §2.2, OpenID Connect `private_key_jwt` |
//! | `ClientSecretJwt` (feature `jwt`) | the same, the JWT signed with HS256 keyed by the client secret | OpenID Connect `client_secret_jwt` |
//!
//! Credentials are never sent two ways at once and never in the URL: [`CredentialStyle::shape`]
//! checks both after the style ran.
//!
//! # Implementing your own
//!
//! ```
//! use secrecy::ExposeSecret;
//! use tokensmith_core::{ClientCredentials, Result, style::CredentialStyle, request::{TokenRequest, Value}};
//!
//! /// Sends the credentials in custom headers.
//! #[derive(Debug)]
//! struct HeaderPair;
//!
//! impl CredentialStyle for HeaderPair {
//!     fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
//!         request.set_header("x-client-id", credentials.client_id());
//!         if let Some(secret) = credentials.client_secret() {
//!             request.set_header("x-client-secret", Value::Secret(secret.clone()));
//!         }
//!         Ok(())
//!     }
//!     fn name(&self) -> &'static str {
//!         "header-pair"
//!     }
//!     // The same headers every time: a client may build its request once and resend it. A style
//!     // that signs a fresh client assertion per request keeps the default, `false`.
//!     fn reusable(&self) -> bool {
//!         true
//!     }
//! }
//! ```

use std::fmt::Debug;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::request::{TokenRequest, Value};
use crate::token::ClientCredentials;

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use crate::jwt::{
    CLIENT_ASSERTION_TYPE, ClientSecretJwt, DEFAULT_ASSERTION_LIFETIME, MAX_ASSERTION_LIFETIME, PrivateKeyJwt,
    PrivateKeyJwtBuilder, SigningAlgorithm,
};

/// Places [`ClientCredentials`] on a [`TokenRequest`].
///
/// # Contract
/// - `apply` adds the credentials in one place only (a header or body parameters), never in the URL.
/// - It performs no I/O and does not log the secret.
/// - It returns [`Error::Config`] when the credentials cannot be expressed in this style (for example a
///   `:` in a client id sent raw in HTTP Basic).
pub trait CredentialStyle: Send + Sync + Debug + 'static {
    /// Adds `credentials` to `request`.
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()>;

    /// `request` with the credentials placed by [`apply`](Self::apply), checked by the rules every
    /// token request obeys ([`TokenRequest::validate`]): credentials sent one way only, never in the
    /// URL. This is how requests get their credentials; implementations keep this provided method.
    fn shape(&self, credentials: &ClientCredentials, mut request: TokenRequest) -> Result<TokenRequest> {
        self.apply(credentials, &mut request)?;
        request.validate()?;
        Ok(request)
    }

    /// A short name for configuration and tracing (`basic`, `basic-raw`, `body`, `none`).
    fn name(&self) -> &'static str;

    /// Whether a request this style has shaped may be sent again as it is: true when
    /// [`apply`](Self::apply) gives the same result every time for the same credentials, as the
    /// built-in styles do. A [`TokenClient`](crate::TokenClient) then builds its client-credentials
    /// request once and sends it for every token.
    ///
    /// The default is `false`: a style that puts something fresh on every request (a signed client
    /// assertion with an expiry, a nonce, a timestamp) gets `apply` called for every request. Return
    /// `true` only when the result never changes.
    fn reusable(&self) -> bool {
        false
    }
}

/// HTTP Basic with RFC 6749 §2.3.1 encoding: the client id and secret are each
/// `application/x-www-form-urlencoded` before they are joined with `:` and base64-encoded.
///
/// This is what the RFC specifies and what Django OAuth Toolkit decodes: a raw `+` in a secret would
/// arrive as a space, so it must be sent as `%2B`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicAuth;

/// HTTP Basic with the raw id and secret: `base64(id:secret)`, as ProBit, Doorkeeper and Cognito expect.
///
/// A client id containing `:` cannot be sent this way and gives [`Error::Config`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicAuthRaw;

/// `client_id` and `client_secret` as body parameters, in the request's body format (form or JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestBody;

/// The client id and secret as body parameters under the names a provider chose (say `consumerKey` and
/// `consumerSecret`), in the request's body format. The `body` style with other field names:
/// [`BodyCredentials::default`] sends `client_id` and `client_secret`, exactly as [`RequestBody`].
///
/// ```
/// use tokensmith_core::{ClientCredentials, style::{BodyCredentials, CredentialStyle as _}, request::{BodyFormat, Grant, TokenRequest}};
///
/// let style = BodyCredentials::named("consumerKey", "consumerSecret");
/// let url = "https://auth.example.test/token".parse().unwrap();
/// let request = TokenRequest::for_grant(url, BodyFormat::Json, &Grant::ClientCredentials);
/// let request = style.shape(&ClientCredentials::new("id", "s3cret"), request).unwrap();
/// assert_eq!(
///     request.wire_body(),
///     br#"{"grant_type":"client_credentials","consumerKey":"id","consumerSecret":"s3cret"}"#
/// );
/// assert_eq!(request.param_redacted("consumerSecret").as_deref(), Some("[redacted]"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCredentials {
    client_id_param: std::borrow::Cow<'static, str>,
    client_secret_param: std::borrow::Cow<'static, str>,
}

impl Default for BodyCredentials {
    /// `client_id` and `client_secret`, the RFC 6749 §2.3.1 names.
    fn default() -> Self {
        BodyCredentials::named("client_id", "client_secret")
    }
}

impl BodyCredentials {
    /// Sends the client id as `client_id_param` and the secret as `client_secret_param`.
    pub fn named(
        client_id_param: impl Into<std::borrow::Cow<'static, str>>,
        client_secret_param: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        BodyCredentials { client_id_param: client_id_param.into(), client_secret_param: client_secret_param.into() }
    }

    /// The name the client id is sent under.
    pub fn client_id_param(&self) -> &str {
        &self.client_id_param
    }

    /// The name the client secret is sent under.
    pub fn client_secret_param(&self) -> &str {
        &self.client_secret_param
    }
}

/// A public client: only `client_id` in the body, no secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicClient;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn require_secret<'a>(credentials: &'a ClientCredentials, style: &str) -> Result<&'a SecretString> {
    credentials.client_secret().ok_or_else(|| {
        Error::config(
            "client_secret",
            format!("the `{style}` credential style needs a client secret; set one, or use the `none` style for a public client"),
        )
    })
}

impl CredentialStyle for BasicAuth {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let secret = require_secret(credentials, self.name())?;
        let password = SecretString::from(form_encode(secret.expose_secret()));
        request.set_header("authorization", Value::Basic { user: form_encode(credentials.client_id()), password });
        Ok(())
    }

    fn name(&self) -> &'static str {
        "basic"
    }

    fn reusable(&self) -> bool {
        true
    }
}

impl CredentialStyle for BasicAuthRaw {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let secret = require_secret(credentials, self.name())?;
        if credentials.client_id().contains(':') {
            return Err(Error::config(
                "client_id",
                "the client id contains `:`, which raw HTTP Basic cannot carry; use the `basic` or `body` credential style",
            ));
        }
        request.set_header(
            "authorization",
            Value::Basic { user: credentials.client_id().to_owned(), password: secret.clone() },
        );
        Ok(())
    }

    fn name(&self) -> &'static str {
        "basic-raw"
    }

    fn reusable(&self) -> bool {
        true
    }
}

impl CredentialStyle for RequestBody {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let secret = require_secret(credentials, self.name())?;
        request.set_param("client_id", credentials.client_id());
        request.set_param("client_secret", secret.clone());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "body"
    }

    fn reusable(&self) -> bool {
        true
    }
}

impl CredentialStyle for BodyCredentials {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        let secret = require_secret(credentials, self.name())?;
        for (key, name) in
            [("client_id_param", &self.client_id_param), ("client_secret_param", &self.client_secret_param)]
        {
            if name.trim().is_empty() {
                return Err(Error::config(key, "the parameter name is empty; give the field name the server expects"));
            }
        }
        if self.client_id_param == self.client_secret_param {
            return Err(Error::config(
                "client_secret_param",
                format!(
                    "the client id and the secret would both be sent as `{}`; give them different names",
                    self.client_id_param
                ),
            ));
        }
        request.set_param(self.client_id_param.as_ref(), credentials.client_id());
        request.set_param(self.client_secret_param.as_ref(), secret.clone());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "body"
    }

    fn reusable(&self) -> bool {
        true
    }
}

impl CredentialStyle for PublicClient {
    fn apply(&self, credentials: &ClientCredentials, request: &mut TokenRequest) -> Result<()> {
        request.set_param("client_id", credentials.client_id());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "none"
    }

    fn reusable(&self) -> bool {
        true
    }
}

/// A built-in style by its configuration name: `basic`, `basic-raw`, `body` or `none` (any case,
/// surrounding spaces ignored), and with the `jwt` feature `client-secret-jwt`. The one parser of
/// style names: configuration, dialects and provider builders all go through it. `private-key-jwt`
/// needs its key, so it is built with `PrivateKeyJwt::builder`, not by name.
pub fn by_name(name: &str) -> Option<std::sync::Arc<dyn CredentialStyle>> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "basic" => std::sync::Arc::new(BasicAuth),
        "basic-raw" => std::sync::Arc::new(BasicAuthRaw),
        "body" => std::sync::Arc::new(RequestBody),
        "none" => std::sync::Arc::new(PublicClient),
        #[cfg(feature = "jwt")]
        "client-secret-jwt" => std::sync::Arc::new(ClientSecretJwt::new()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::request::{BodyFormat, Grant};

    const ID: &str = "client id:é+/";
    const SECRET: &str = "s3cr3t: % + / & = space é";

    fn request(format: BodyFormat) -> TokenRequest {
        TokenRequest::for_grant("https://example.com/token".parse().unwrap(), format, &Grant::ClientCredentials)
    }

    fn basic_decoded(r: &TokenRequest) -> String {
        let headers = r.wire_headers().unwrap();
        let value = headers.get("authorization").unwrap().to_str().unwrap().to_owned();
        let b64 = value.strip_prefix("Basic ").unwrap();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
    }

    /// RFC 6749 §2.3.1 + Appendix B: each part form-urlencoded, space as `+`, then joined by `:`.
    #[test]
    fn basic_form_encodes_each_part_per_rfc6749() {
        let creds = ClientCredentials::new(ID, SECRET);
        let r = BasicAuth.shape(&creds, request(BodyFormat::Form)).unwrap();
        let decoded = basic_decoded(&r);
        assert_eq!(decoded, "client+id%3A%C3%A9%2B%2F:s3cr3t%3A+%25+%2B+%2F+%26+%3D+space+%C3%A9");
        // Decoding the way Django OAuth Toolkit does (split on the first ':', then unquote_plus) gives
        // back the original values.
        let (user, pass) = decoded.split_once(':').unwrap();
        let unquote = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().unwrap().1.into_owned();
        assert_eq!(unquote(user), ID);
        assert_eq!(unquote(pass), SECRET);
    }

    #[test]
    fn basic_raw_sends_values_as_is() {
        let creds = ClientCredentials::new("probit-id", SECRET);
        let r = BasicAuthRaw.shape(&creds, request(BodyFormat::Json)).unwrap();
        assert_eq!(basic_decoded(&r), format!("probit-id:{SECRET}"));
    }

    #[test]
    fn basic_raw_refuses_colon_in_id() {
        let creds = ClientCredentials::new("a:b", "x");
        let err = BasicAuthRaw.shape(&creds, request(BodyFormat::Json)).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "client_id"));
    }

    #[test]
    fn body_style_follows_body_format() {
        let creds = ClientCredentials::new("id", "p&ss");
        let form = RequestBody.shape(&creds, request(BodyFormat::Form)).unwrap();
        assert_eq!(form.wire_body(), b"grant_type=client_credentials&client_id=id&client_secret=p%26ss");
        assert!(!form.has_header("authorization"));
        let json = RequestBody.shape(&creds, request(BodyFormat::Json)).unwrap();
        assert_eq!(json.wire_body(), br#"{"grant_type":"client_credentials","client_id":"id","client_secret":"p&ss"}"#);
    }

    #[test]
    fn body_credentials_take_the_providers_names() {
        let creds = ClientCredentials::new("id", "p&ss");
        let style = BodyCredentials::named("consumerKey", "consumerSecret");
        let form = style.shape(&creds, request(BodyFormat::Form)).unwrap();
        assert_eq!(form.wire_body(), b"grant_type=client_credentials&consumerKey=id&consumerSecret=p%26ss");
        assert_eq!(form.param_redacted("consumerSecret").as_deref(), Some(crate::support::REDACTED));
        assert!(!format!("{form:?}").contains("p&ss") && !format!("{form:?}").contains("p%26ss"));
        // The default names are the `body` style's.
        let default = BodyCredentials::default().shape(&creds, request(BodyFormat::Json)).unwrap();
        let body = RequestBody.shape(&creds, request(BodyFormat::Json)).unwrap();
        assert_eq!(default.wire_body(), body.wire_body());
        // One name for both, or an empty one, is a configuration error naming the key.
        let err = BodyCredentials::named("k", "k").shape(&creds, request(BodyFormat::Form)).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret_param"), "{err}");
        let err = BodyCredentials::named(" ", "k").shape(&creds, request(BodyFormat::Form)).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "client_id_param"), "{err}");
        let err = style.shape(&ClientCredentials::public("id"), request(BodyFormat::Form)).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret"), "{err}");
    }

    #[test]
    fn public_client_sends_only_the_id() {
        let creds = ClientCredentials::new("id", "never-sent");
        let r = PublicClient.shape(&creds, request(BodyFormat::Form)).unwrap();
        assert_eq!(r.wire_body(), b"grant_type=client_credentials&client_id=id");
    }

    #[test]
    fn secret_styles_need_a_secret() {
        let creds = ClientCredentials::public("id");
        for style in [&BasicAuth as &dyn CredentialStyle, &BasicAuthRaw, &RequestBody] {
            let err = style.shape(&creds, request(BodyFormat::Form)).unwrap_err();
            assert!(matches!(err, Error::Config { ref key, .. } if key == "client_secret"));
        }
    }

    #[test]
    fn styles_by_name() {
        for name in ["basic", "basic-raw", "body", "none"] {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
        assert!(by_name("digest").is_none());
    }
}
