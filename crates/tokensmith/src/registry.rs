//! [`Registry`]: provider names to builders, with the built-ins and your own.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokensmith_core::{Error, Result, SharedTokenProvider};

use crate::config::Config;

/// Builds a provider from a [`Config`].
pub type BuildFn = Arc<dyn Fn(&Config) -> Result<SharedTokenProvider> + Send + Sync>;

/// Provider names to builders.
///
/// [`Registry::default`] knows the built-in providers compiled in (one cargo feature each) and
/// `custom`, the declarative provider. [`register`](Registry::register) adds your own (a provider
/// written in Rust) so that configuration can name it; a registered name shadows a built-in one.
///
/// ```
/// use tokensmith::{AccessToken, Registry, SharedTokenProvider, provide_token_fn};
/// use tokensmith::config::Config;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith::Result<()> {
/// let mut registry = Registry::default();
/// registry.register("static", |config: &Config| {
///     let id = config.require_client_id()?.to_owned();
///     Ok(SharedTokenProvider::new(provide_token_fn(move || {
///         let id = id.clone();
///         async move { Ok(AccessToken::builder(format!("token-for-{id}")).build()) }
///     })))
/// });
/// let config = Config::from_toml_str("provider = \"static\"\nclient_id = \"me\"")?;
/// let provider = registry.build(&config)?;
/// assert!(provider.token().await.is_ok());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    registered: BTreeMap<String, BuildFn>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("names", &self.names()).finish()
    }
}

impl Registry {
    /// A registry with the built-in providers (same as [`Registry::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `builder` under `name`, replacing any earlier one (a built-in of that name included).
    pub fn register<F>(&mut self, name: impl Into<String>, builder: F) -> &mut Self
    where
        F: Fn(&Config) -> Result<SharedTokenProvider> + Send + Sync + 'static,
    {
        self.registered.insert(name.into(), Arc::new(builder));
        self
    }

    /// Every name this registry can build: built-ins compiled in, `custom`, and registered names.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = crate::BUILT_IN
            .iter()
            .filter(|(name, _)| crate::compiled_in(name))
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if cfg!(feature = "custom") {
            names.push("custom".to_owned());
        }
        for name in self.registered.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Builds the provider `config.provider` names.
    ///
    /// An unknown name, or a built-in compiled out, gives [`Error::Config`] for `provider`; the latter
    /// names the cargo feature to enable.
    pub fn build(&self, config: &Config) -> Result<SharedTokenProvider> {
        let name = config.provider_name()?.trim();
        if let Some(builder) = self.registered.get(name) {
            return builder(config);
        }
        if matches!(name, "custom" | "generic-django") && crate::config::is_authorized_grant(config) {
            // What `tokensmith authorize` saved, served and refreshed from the store.
            #[cfg(feature = "interactive")]
            return crate::interactive::build_authorized(config);
            #[cfg(not(feature = "interactive"))]
            return Err(feature_needed("grant", "interactive", "serving what `tokensmith authorize` saved"));
        }
        let plain_grant = config.grant.as_deref().map(str::trim) == Some("client_credentials");
        if name == "generic-django" && (crate::config::uses_flow_keys(config) || plain_grant) {
            // The endpoints of the user-facing flows are not the client-credentials grant's business.
            let mut plain = config.clone();
            plain.authorize_url = None;
            plain.device_authorization_url = None;
            plain.revocation_url = None;
            plain.issuer = None;
            if plain_grant {
                plain.grant = None;
            }
            return crate::build_builtin(name, &plain)
                .unwrap_or_else(|| Err(Error::config("provider", "not built in")));
        }
        if name == "custom" {
            #[cfg(feature = "custom")]
            return crate::custom::build(config);
            #[cfg(not(feature = "custom"))]
            return Err(feature_needed("provider", "custom", "the declarative provider"));
        }
        match crate::build_builtin(name, config) {
            Some(result) => result,
            None => Err(Error::config(
                "provider",
                format!("unknown provider `{name}`; known providers are {}", self.names().join(", ")),
            )),
        }
    }
}

/// The error for a built-in provider whose feature is off (unused when every built-in is on).
#[allow(dead_code)]
pub(crate) fn compiled_out(feature: &str) -> Error {
    feature_needed("provider", feature, &format!("the `{feature}` provider"))
}

/// The error for a configuration that needs a feature of this crate that is off: `what` (e.g. "the
/// declarative provider") is compiled out; `key` is the setting that asked for it.
pub(crate) fn feature_needed(key: &str, feature: &str, what: &str) -> Error {
    Error::config(
        key,
        format!(
            "{what} is not compiled in; enable the `{feature}` feature of tokensmith \
             (tokensmith = {{ version = \"0.1\", features = [\"{feature}\"] }})"
        ),
    )
}

/// Declares the built-in providers once: for each, its name (also its cargo feature), its crate and
/// the short name the crate is re-exported as, and the function that builds it from a [`Config`].
/// From the table come [`BUILT_IN`](crate::BUILT_IN), the re-exports, and the registry's dispatch,
/// with the error that names the feature when a provider is compiled out. Adding a built-in provider
/// adds one entry here (see docs/writing-a-provider.md).
macro_rules! built_in_providers {
    ($( $(#[$doc:meta])* $name:literal => $krate:ident as $short:ident, $build:expr; )*) => {
        /// The built-in provider names, each with the cargo feature that compiles it in.
        pub const BUILT_IN: &[(&str, &str)] = &[$(($name, $name)),*];

        $(
            $(#[$doc])*
            #[cfg(feature = $name)]
            #[cfg_attr(docsrs, doc(cfg(feature = $name)))]
            pub use $krate as $short;
        )*

        /// Whether the built-in provider `name` is compiled in.
        pub(crate) fn compiled_in(name: &str) -> bool {
            $( if name == $name { return cfg!(feature = $name); } )*
            false
        }

        /// Builds the built-in provider `name`, or says which feature it needs; `None` for a name
        /// that is not built in.
        pub(crate) fn build_builtin(name: &str, config: &$crate::Config) -> Option<$crate::Result<$crate::SharedTokenProvider>> {
            $(
                if name == $name {
                    #[cfg(feature = $name)]
                    return Some($build(config));
                    #[cfg(not(feature = $name))]
                    return Some(Err($crate::registry::compiled_out($name)));
                }
            )*
            let _ = config; // unused when no built-in is compiled in
            None
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(provider: &str) -> Config {
        Config {
            provider: Some(provider.to_owned()),
            client_id: Some("id".to_owned()),
            client_secret: Some(crate::Secret::value("secret")),
            ..Config::default()
        }
    }

    /// The configuration error `config` gives: its key and message.
    fn config_error(config: &Config) -> (String, String) {
        match Registry::default().build(config) {
            Err(Error::Config { key, message }) => (key, message),
            other => panic!("not a configuration error: {other:?}"),
        }
    }

    #[test]
    fn unknown_provider_lists_the_known_ones() {
        let (key, message) = config_error(&config("okta"));
        assert_eq!(key, "provider");
        assert!(message.contains("okta"), "{message}");
        assert_eq!(message.contains("custom"), cfg!(feature = "custom"), "{message}");
    }

    // The errors of a build without the facade's default features (CI runs these with
    // `--no-default-features --features generic-django`): each names the key and the feature.

    #[cfg(not(feature = "custom"))]
    #[test]
    fn the_custom_provider_compiled_out_names_its_feature() {
        let (key, message) = config_error(&config("custom"));
        assert_eq!(key, "provider");
        assert!(message.contains("enable the `custom` feature of tokensmith"), "{message}");
    }

    #[cfg(all(feature = "generic-django", not(feature = "interactive")))]
    #[test]
    fn an_authorized_grant_compiled_out_names_the_interactive_feature() {
        let mut config = config("generic-django");
        config.base_url = Some("https://auth.example.com".to_owned());
        config.grant = Some("authorization_code".to_owned());
        let (key, message) = config_error(&config);
        assert_eq!(key, "grant");
        assert!(message.contains("enable the `interactive` feature of tokensmith"), "{message}");
        // Without a grant, the flows' keys do not stop the client-credentials provider.
        config.grant = None;
        config.revocation_url = Some("https://auth.example.com/o/revoke_token/".to_owned());
        assert!(Registry::default().build(&config).is_ok());
    }

    #[cfg(not(feature = "toml"))]
    #[test]
    fn a_config_file_compiled_out_names_the_toml_feature() {
        let env = |name: &str| match name {
            "TOKENSMITH_CONFIG" => Some("/etc/myapp/tokensmith.toml".to_owned()),
            "TOKENSMITH_PROVIDER" => Some("generic-django".to_owned()),
            _ => None,
        };
        let Err(Error::Config { key, message }) = Config::load_with(env) else { panic!("the file was not refused") };
        assert_eq!(key, "config");
        assert!(message.contains("enable the `toml` feature") && message.contains("TOKENSMITH_CONFIG"), "{message}");
        // The variables alone still configure a provider.
        assert!(Config::from_env_with(env).is_ok());
    }

    #[test]
    fn compiled_out_names_the_feature() {
        let Error::Config { key, message } = compiled_out("whitebit") else { panic!() };
        assert_eq!(key, "provider");
        assert!(message.contains("enable the `whitebit` feature of tokensmith"), "{message}");
    }
}
