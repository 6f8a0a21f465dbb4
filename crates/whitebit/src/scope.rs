//! WhiteBIT's OAuth scopes.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use tokensmith_core::Scopes;

/// A WhiteBIT OAuth scope: every scope WhiteBIT documents, plus [`Scope::Custom`] for one it adds later.
///
/// Scopes are chosen when the OAuth client is set up at WhiteBIT, not per authorization request, so
/// the authorization URL carries none; use this type to look at what a token was granted (the token
/// response's comma-separated `scope`).
///
/// ```
/// use tokensmith_whitebit::Scope;
///
/// let scope: Scope = "users.read".parse().unwrap();
/// assert_eq!(scope, Scope::UsersRead);
/// assert_eq!(Scope::OrdersHistoryRead.to_string(), "orders_history.read");
/// assert_eq!("future.scope".parse::<Scope>().unwrap(), Scope::Custom("future.scope".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// `general`: general API access.
    General,
    /// `show.userinfo`: basic user information.
    ShowUserinfo,
    /// `users.read`: read user data.
    UsersRead,
    /// `users.email.read`: read the user's email information.
    UsersEmailRead,
    /// `users.kyc.read`: whether the user passed KYC verification.
    UsersKycRead,
    /// `orders.read`: read trading orders.
    OrdersRead,
    /// `orders.create`: create trading orders.
    OrdersCreate,
    /// `orders.delete`: delete trading orders.
    OrdersDelete,
    /// `balances.read`: read account balances.
    BalancesRead,
    /// `markets.read`: read market information.
    MarketsRead,
    /// `deals.read`: read trading deals.
    DealsRead,
    /// `orders_history.read`: read the order history.
    OrdersHistoryRead,
    /// `users.transactions.read`: read the user's transactions.
    UsersTransactionsRead,
    /// `users.converts.read`: read the currency conversion history.
    UsersConvertsRead,
    /// `users.balances.read`: read the user's account balances.
    UsersBalancesRead,
    /// `users.orders.read`: read the user's orders.
    UsersOrdersRead,
    /// `users.deals.read`: read the user's deals.
    UsersDealsRead,
    /// `apikeys.create`: issue an OAuth-bound API key during the consent flow.
    ApikeysCreate,
    /// `apikeys.read`: read OAuth-issued API key state and retrieve its secret once.
    ApikeysRead,
    /// `apikeys.delete`: delete an OAuth-issued API key owned by the OAuth client.
    ApikeysDelete,
    /// A scope this version does not know, kept as written.
    Custom(String),
}

impl Scope {
    /// Every scope WhiteBIT documents, in the documentation's order.
    pub const KNOWN: [Scope; 20] = [
        Scope::General,
        Scope::ShowUserinfo,
        Scope::UsersRead,
        Scope::UsersEmailRead,
        Scope::UsersKycRead,
        Scope::OrdersRead,
        Scope::OrdersCreate,
        Scope::OrdersDelete,
        Scope::BalancesRead,
        Scope::MarketsRead,
        Scope::DealsRead,
        Scope::OrdersHistoryRead,
        Scope::UsersTransactionsRead,
        Scope::UsersConvertsRead,
        Scope::UsersBalancesRead,
        Scope::UsersOrdersRead,
        Scope::UsersDealsRead,
        Scope::ApikeysCreate,
        Scope::ApikeysRead,
        Scope::ApikeysDelete,
    ];

    /// The scope as WhiteBIT spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Scope::General => "general",
            Scope::ShowUserinfo => "show.userinfo",
            Scope::UsersRead => "users.read",
            Scope::UsersEmailRead => "users.email.read",
            Scope::UsersKycRead => "users.kyc.read",
            Scope::OrdersRead => "orders.read",
            Scope::OrdersCreate => "orders.create",
            Scope::OrdersDelete => "orders.delete",
            Scope::BalancesRead => "balances.read",
            Scope::MarketsRead => "markets.read",
            Scope::DealsRead => "deals.read",
            Scope::OrdersHistoryRead => "orders_history.read",
            Scope::UsersTransactionsRead => "users.transactions.read",
            Scope::UsersConvertsRead => "users.converts.read",
            Scope::UsersBalancesRead => "users.balances.read",
            Scope::UsersOrdersRead => "users.orders.read",
            Scope::UsersDealsRead => "users.deals.read",
            Scope::ApikeysCreate => "apikeys.create",
            Scope::ApikeysRead => "apikeys.read",
            Scope::ApikeysDelete => "apikeys.delete",
            Scope::Custom(s) => s,
        }
    }

    /// Whether this is a documented scope (not [`Scope::Custom`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, Scope::Custom(_))
    }

    /// The scopes of a token (e.g. `token.scopes()`), as [`Scope`]s.
    ///
    /// ```
    /// use tokensmith_core::Scopes;
    /// use tokensmith_whitebit::Scope;
    ///
    /// let granted = Scope::from_scopes(&Scopes::parse("general,users.read"));
    /// assert_eq!(granted, [Scope::General, Scope::UsersRead]);
    /// ```
    pub fn from_scopes(scopes: &Scopes) -> Vec<Scope> {
        scopes.iter().map(Scope::from).collect()
    }
}

impl From<&str> for Scope {
    fn from(s: &str) -> Self {
        Scope::KNOWN.into_iter().find(|k| k.as_str() == s).unwrap_or_else(|| Scope::Custom(s.to_owned()))
    }
}

impl FromStr for Scope {
    type Err = Infallible;

    /// Parses a scope; unknown names become [`Scope::Custom`], so this never fails.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Scope::from(s.trim()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_scope_round_trips_and_matches_the_seed() {
        let seed = [
            "general",
            "show.userinfo",
            "users.read",
            "users.email.read",
            "users.kyc.read",
            "orders.read",
            "orders.create",
            "orders.delete",
            "balances.read",
            "markets.read",
            "deals.read",
            "orders_history.read",
            "users.transactions.read",
            "users.converts.read",
            "users.balances.read",
            "users.orders.read",
            "users.deals.read",
            "apikeys.create",
            "apikeys.read",
            "apikeys.delete",
        ];
        let names: Vec<&str> = Scope::KNOWN.iter().map(Scope::as_str).collect();
        assert_eq!(names, seed);
        for scope in Scope::KNOWN {
            let parsed: Scope = scope.as_str().parse().unwrap();
            assert_eq!(parsed, scope);
            assert!(parsed.is_known());
            assert_eq!(scope.to_string(), scope.as_str());
        }
    }

    #[test]
    fn unknown_scopes_are_kept() {
        let s: Scope = " wallet.read ".parse().unwrap();
        assert_eq!(s, Scope::Custom("wallet.read".into()));
        assert!(!s.is_known());
        assert_eq!(s.as_str(), "wallet.read");
    }
}
