//! The demo clients every dialect accepts.

use std::fmt;

use crate::config::Dialect;

/// The secret of every dialect's "special" client: it holds `:`, `%`, `+`, `/`,
/// `&`, `=` and spaces, so a client that forgets to encode it is caught.
pub const SPECIAL_SECRET: &str = "s3cr3t: %+/&= with space";

/// A client id and secret the sandbox accepts.
///
/// `Debug` prints the id and redacts the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DemoClient {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl fmt::Debug for DemoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::REDACTED)
            .finish()
    }
}

/// The `(plain, special)` clients of a dialect as static strings.
pub(crate) fn client_pairs(dialect: Dialect) -> [(&'static str, &'static str); 2] {
    match dialect {
        Dialect::Probit => [("probit-demo-client", "probit-demo-secret"), ("probit-special-client", SPECIAL_SECRET)],
        Dialect::GenericDjango => {
            [("django-demo-client", "django-demo-secret"), ("django-special-client", SPECIAL_SECRET)]
        }
        Dialect::RubyStyle => [("ruby-demo-client", "ruby-demo-secret"), ("ruby-special-client", SPECIAL_SECRET)],
        Dialect::Whitebit => {
            [("whitebit-demo-client", "whitebit-demo-secret"), ("whitebit-special-client", SPECIAL_SECRET)]
        }
    }
}

pub(crate) fn plain(dialect: Dialect) -> DemoClient {
    let [(id, secret), _] = client_pairs(dialect);
    DemoClient { client_id: id.to_owned(), client_secret: secret.to_owned() }
}

pub(crate) fn special(dialect: Dialect) -> DemoClient {
    let [_, (id, secret)] = client_pairs(dialect);
    DemoClient { client_id: id.to_owned(), client_secret: secret.to_owned() }
}

/// Whether `client_id` names a client of the dialect.
pub(crate) fn known(dialect: Dialect, client_id: &str) -> bool {
    client_pairs(dialect).iter().any(|(id, _)| *id == client_id)
}

/// Whether the pair authenticates a client of the dialect.
pub(crate) fn authenticate(dialect: Dialect, client_id: &str, client_secret: &str) -> bool {
    client_pairs(dialect).iter().any(|(id, secret)| *id == client_id && *secret == client_secret)
}

/// Every secret the sandbox knows, to scrub them from recorded text.
pub(crate) fn all_secrets() -> impl Iterator<Item = &'static str> {
    Dialect::ALL.into_iter().flat_map(|d| client_pairs(d).into_iter().map(|(_, s)| s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret() {
        let c = special(Dialect::Probit);
        let s = format!("{c:?}");
        assert!(s.contains("probit-special-client"));
        assert!(!s.contains("s3cr3t"));
    }

    #[test]
    fn authenticate_checks_both() {
        assert!(authenticate(Dialect::RubyStyle, "ruby-demo-client", "ruby-demo-secret"));
        assert!(!authenticate(Dialect::RubyStyle, "ruby-demo-client", SPECIAL_SECRET));
        assert!(!authenticate(Dialect::Probit, "ruby-demo-client", "ruby-demo-secret"));
    }
}
