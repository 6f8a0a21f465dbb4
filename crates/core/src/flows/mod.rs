//! The OAuth 2.0 flows that need more than one token request, for any server described by a
//! [`TokenEndpoint`](crate::TokenEndpoint) and the flow's own data.
//!
//! - Authorization code with PKCE (RFC 6749 §4.1, RFC 7636 S256): [`AuthorizationRequest`] →
//!   [`PendingAuthorization`] (the URL, a 256-bit `state`, the code verifier) → the callback,
//!   verified once with the `state` compared in constant time → [`CodeExchange`] (the code sent
//!   once, the tokens saved in the store) → a [`CachedProvider`](crate::CachedProvider) of a
//!   [`RefreshTokenSource`](crate::RefreshTokenSource) refreshing with rotation.
//!   [`LoopbackListener`] (feature `loopback`) receives the callback on 127.0.0.1 (RFC 8252).

mod authorization_code;
mod code_exchange;
#[cfg(feature = "loopback")]
mod loopback;

pub use authorization_code::{AuthorizationCode, AuthorizationRequest, PendingAuthorization, pkce_challenge};
pub use code_exchange::CodeExchange;
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use loopback::LoopbackListener;
