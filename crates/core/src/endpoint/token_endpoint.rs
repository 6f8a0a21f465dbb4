//! [`TokenEndpoint`](crate::TokenEndpoint): where a token request goes and in which dialect.

use std::borrow::Cow;
use std::sync::Arc;

use url::Url;

use crate::error::{Error, Result};
use crate::parse::ResponseFormat;
use crate::request::{BodyFormat, Grant, TokenRequest, Value};
use crate::style::{BasicAuth, CredentialStyle};
use crate::support::REDACTED;
use crate::token::{ClientCredentials, Scopes};

/// What a provider's token endpoint expects: the dialect.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    token_url: Url,
    pub(super) refresh_url: Option<Url>,
    body_format: BodyFormat,
    pub(super) credential_style: Arc<dyn CredentialStyle>,
    send_grant_type: bool,
    grant_type_param: Cow<'static, str>,
    /// Wire values replacing RFC 6749 `grant_type` values: (RFC value, value sent).
    grant_type_values: Vec<(Cow<'static, str>, String)>,
    scope_param: Cow<'static, str>,
    refresh_token_param: Cow<'static, str>,
    /// Sent with every request, in order; secret values are redacted wherever a request is shown.
    extra_params: Vec<(String, Value)>,
    /// What the store key digests of the extra parameters: plain ones as they are, secret ones by
    /// name only (a digest of a secret in a key another process can read would invite guessing).
    key_params: Vec<(String, String)>,
    scope_separator: Cow<'static, str>,
    pub(super) response: ResponseFormat,
}

impl TokenEndpoint {
    /// An RFC 6749 endpoint at `token_url`: form body, HTTP Basic with §2.3.1 encoding, `grant_type`
    /// sent, refresh token as `refresh_token`, scopes separated by spaces, no envelope.
    pub fn new(token_url: Url) -> Self {
        TokenEndpoint {
            token_url,
            refresh_url: None,
            body_format: BodyFormat::Form,
            credential_style: Arc::new(BasicAuth),
            send_grant_type: true,
            grant_type_param: Cow::Borrowed("grant_type"),
            grant_type_values: Vec::new(),
            scope_param: Cow::Borrowed("scope"),
            refresh_token_param: Cow::Borrowed("refresh_token"),
            extra_params: Vec::new(),
            key_params: Vec::new(),
            scope_separator: Cow::Borrowed(" "),
            response: ResponseFormat::default(),
        }
    }

    /// A separate URL for refresh requests (WhiteBIT's `/oauth2/refresh_token`).
    pub fn refresh_url(mut self, url: Url) -> Self {
        self.refresh_url = Some(url);
        self
    }

    /// The body format.
    pub fn body_format(mut self, format: BodyFormat) -> Self {
        self.body_format = format;
        self
    }

    /// How client credentials are sent.
    pub fn credential_style(mut self, style: Arc<dyn CredentialStyle>) -> Self {
        self.credential_style = style;
        self
    }

    /// Whether `grant_type` is sent (WhiteBIT sends none). When false, neither a renamed
    /// [`grant_type_param`](Self::grant_type_param) nor a [`grant_type_value`](Self::grant_type_value)
    /// is sent either.
    pub fn send_grant_type(mut self, send: bool) -> Self {
        self.send_grant_type = send;
        self
    }

    /// The name the grant type is sent under (`grant_type` per RFC 6749; say `grantKind`).
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap()).grant_type_param("grantKind");
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grantKind=client_credentials");
    /// ```
    pub fn grant_type_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.grant_type_param = name.into();
        self
    }

    /// Sends `value` in place of the RFC 6749 grant type `grant` (`client_credentials`,
    /// `authorization_code` or `refresh_token`), e.g. `("client_credentials", "clientCredentials")`.
    /// Other grants keep their RFC values; an unknown `grant` is refused when the client is built.
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap())
    ///     .grant_type_value("client_credentials", "server");
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grant_type=server");
    /// ```
    pub fn grant_type_value(mut self, grant: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        let grant = grant.into();
        let value = value.into();
        match self.grant_type_values.iter_mut().find(|(g, _)| *g == grant) {
            Some(slot) => slot.1 = value,
            None => self.grant_type_values.push((grant, value)),
        }
        self
    }

    /// The name requested scopes are sent under (`scope` per RFC 6749; say `permissions`).
    pub fn scope_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.scope_param = name.into();
        self
    }

    /// The name of the refresh token parameter (`refresh_token` per RFC 6749; WhiteBIT uses `token`).
    pub fn refresh_token_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.refresh_token_param = name.into();
        self
    }

    /// A parameter added to every request (e.g. `audience`). A second parameter of the same name
    /// replaces the first.
    pub fn extra_param(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.put_extra(name.into(), Value::Plain(value.into()))
    }

    /// A parameter added to every request whose value is a secret (an API key, say): sent on the wire
    /// like any other, shown as `[redacted]` in the request's `Debug` and `Serialize` renderings
    /// (snapshots), and removed from errors like the client secret, should a server echo it. A second
    /// parameter of the same name replaces the first.
    ///
    /// ```
    /// # use tokensmith_core::{ClientCredentials, Scopes, TokenEndpoint, request::Grant};
    /// use tokensmith_core::secrecy::SecretString;
    ///
    /// let endpoint = TokenEndpoint::new("https://auth.example.test/token".parse().unwrap())
    ///     .secret_param("api_key", SecretString::from("k-123"));
    /// let request = endpoint.build_request(&Grant::ClientCredentials, &ClientCredentials::new("id", "s"), &Scopes::empty()).unwrap();
    /// assert_eq!(request.wire_body(), b"grant_type=client_credentials&api_key=k-123");
    /// assert!(!format!("{request:?}").contains("k-123"));
    /// ```
    pub fn secret_param(self, name: impl Into<String>, value: secrecy::SecretString) -> Self {
        self.put_extra(name.into(), Value::Secret(value))
    }

    fn put_extra(mut self, name: String, value: Value) -> Self {
        let key_value = match &value {
            Value::Plain(v) => v.clone(),
            _ => REDACTED.to_owned(),
        };
        match self.extra_params.iter().position(|(n, _)| *n == name) {
            Some(at) => {
                if let Some(slot) = self.extra_params.get_mut(at) {
                    slot.1 = value;
                }
                if let Some(slot) = self.key_params.get_mut(at) {
                    slot.1 = key_value;
                }
            }
            None => {
                self.extra_params.push((name.clone(), value));
                self.key_params.push((name, key_value));
            }
        }
        self
    }

    /// How requested scopes are joined (a space per RFC 6749 §3.3).
    pub fn scope_separator(mut self, separator: impl Into<Cow<'static, str>>) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// How responses are shaped.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response = format;
        self
    }

    /// The extra parameters sent with every request (audience, resource, ...), in order, as the store
    /// key digests them: a secret one's value is [`REDACTED`].
    pub(crate) fn extra_params(&self) -> &[(String, String)] {
        &self.key_params
    }

    /// The values of the secret extra parameters, for scrubbing errors.
    pub(super) fn secret_values(&self) -> impl Iterator<Item = &secrecy::SecretString> {
        self.extra_params.iter().filter_map(|(_, v)| match v {
            Value::Secret(s) => Some(s),
            _ => None,
        })
    }

    /// Checks what can be checked before a request is sent: the credentials fit the credential style,
    /// grant-type overrides name known grants, names are not empty, nothing secret goes in the URL,
    /// and no request would carry one name twice (say an extra parameter named like the renamed scope
    /// parameter, which would silently replace it). [`TokenClientBuilder::build`](crate::TokenClientBuilder::build) runs it; it shapes
    /// one request with the credential style.
    pub fn validate(&self, credentials: &ClientCredentials) -> Result<()> {
        const GRANTS: [&str; 3] = ["client_credentials", "authorization_code", "refresh_token"];
        for (grant, value) in &self.grant_type_values {
            if !GRANTS.contains(&grant.as_ref()) {
                return Err(Error::config(
                    "grant_type_value",
                    format!(
                        "`{grant}` is not a grant type; override client_credentials, authorization_code or refresh_token"
                    ),
                ));
            }
            if value.trim().is_empty() {
                return Err(Error::config("grant_type_value", "the grant type value is empty"));
            }
        }
        let mut common: Vec<(&str, &str)> = Vec::new();
        if self.send_grant_type {
            common.push((&self.grant_type_param, "grant_type_param"));
        }
        common.push((&self.scope_param, "scope_param"));
        for (name, _) in &self.extra_params {
            common.push((name, "extra_params"));
        }
        for (name, key) in &common {
            if name.trim().is_empty() {
                return Err(Error::config(*key, "a parameter name is empty; give the field name the server expects"));
            }
        }
        // What the style adds, on a request of its own (so that a name it shares with another field
        // shows rather than replacing it), checked by the rules every request obeys.
        let shaped = self
            .get_credential_style()
            .shape(credentials, TokenRequest::new(self.token_url.clone(), self.body_format))?;
        self.unshaped_request(&Grant::ClientCredentials, &Scopes::empty()).validate()?;
        let style_names = shaped.param_names();
        common.extend(style_names.iter().map(|n| (n.as_str(), "credential_style")));
        let refresh = [(self.refresh_token_param.as_ref(), "refresh_token_param")];
        let code = [("code", "the authorization code"), ("redirect_uri", "redirect_uri"), ("code_verifier", "PKCE")];
        for per_grant in [&refresh[..], &code[..]] {
            let names: Vec<(&str, &str)> = common.iter().chain(per_grant).copied().collect();
            for (at, (name, key)) in names.iter().enumerate() {
                let earlier = names.get(..at).unwrap_or_default();
                if let Some((_, other)) = earlier.iter().find(|(n, _)| n == name) {
                    return Err(Error::config(
                        *key,
                        format!(
                            "`{name}` would be sent twice in one request (also for {other}); give each field its own name"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The token URL.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The URL refresh requests go to.
    pub fn refresh_target(&self) -> &Url {
        self.refresh_url.as_ref().unwrap_or(&self.token_url)
    }

    /// The credential style (set with [`credential_style`](Self::credential_style)).
    pub fn get_credential_style(&self) -> &dyn CredentialStyle {
        self.credential_style.as_ref()
    }

    /// The response format (set with [`response_format`](Self::response_format)).
    pub fn get_response_format(&self) -> &ResponseFormat {
        &self.response
    }

    /// The body format (set with [`body_format`](Self::body_format)).
    pub fn get_body_format(&self) -> BodyFormat {
        self.body_format
    }

    /// Builds the request for `grant` with `credentials`, asking for `scopes`. No I/O.
    pub fn build_request(
        &self,
        grant: &Grant,
        credentials: &ClientCredentials,
        scopes: &Scopes,
    ) -> Result<TokenRequest> {
        self.credential_style.shape(credentials, self.unshaped_request(grant, scopes))
    }

    /// The request for `grant` and `scopes` before the credential style shapes it.
    fn unshaped_request(&self, grant: &Grant, scopes: &Scopes) -> TokenRequest {
        let url = match grant {
            Grant::RefreshToken(_) => self.refresh_target().clone(),
            _ => self.token_url.clone(),
        };
        let mut request = TokenRequest::for_grant(url, self.body_format, grant).scopes(scopes, &self.scope_separator);
        if !self.send_grant_type {
            request = request.without_param("grant_type");
        } else {
            if let Some((_, value)) = self.grant_type_values.iter().find(|(g, _)| *g == grant.grant_type()) {
                request = request.param("grant_type", value.as_str());
            }
            if self.grant_type_param != "grant_type" {
                request = request.rename_param("grant_type", &self.grant_type_param);
            }
        }
        if self.scope_param != "scope" {
            request = request.rename_param("scope", &self.scope_param);
        }
        if self.refresh_token_param != "refresh_token" {
            request = request.rename_param("refresh_token", &self.refresh_token_param);
        }
        for (name, value) in &self.extra_params {
            request = request.param(name.clone(), value.clone());
        }
        request
    }
}
