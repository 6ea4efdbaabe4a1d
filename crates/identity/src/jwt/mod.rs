//! Compact JWS (RFC 7515) parsing and signature verification against JWKs (RFC 7517, 7518,
//! 8037), through aws-lc-rs.
//!
//! - [`compact`]: splits and decodes `header.payload.signature`, bounded in size.
//! - [`alg`]: the [`Algorithm`]s accepted (RSA PKCS#1 v1.5 and PSS, ECDSA P-256/P-384,
//!   Ed25519); `none` and every `HS*` are refused as forbidden, always.
//! - [`jwk`]: [`Jwk`]/[`JwkSet`] as served by an IdP, and [`VerifyingKey`], a key compiled
//!   once with the algorithms it may verify pinned (from the JWK's `alg`, else its type).
//! - [`error`]: [`JwtError`] and [`JwkError`].

pub mod alg;
pub mod compact;
pub mod error;
pub mod jwk;

pub use alg::Algorithm;
pub use compact::{Header, Jws, MAX_TOKEN_LEN};
pub use error::{JwkError, JwtError};
pub use jwk::{Jwk, JwkSet, VerifyingKey};

#[cfg(test)]
mod tests;
