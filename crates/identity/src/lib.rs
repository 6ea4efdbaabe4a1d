//! Rampart identity: who is calling, and what may they do.
//!
//! - [`principal`]: the verified caller ([`Principal`]) every other part reasons about.
//! - [`jwt`]: compact JWS parsing, JWKs, signature verification (aws-lc-rs).
//! - [`verifier`]: the access-token [`Verifier`] the gateway and the vault call, with JWKS
//!   caching, stale-if-error continuity through IdP outages and a verified-token cache.
//! - [`rbac`]: roles, scopes, assignments and access decisions ([`rbac::AccessControl`]).
//! - [`jit`]: just-in-time elevation of eligible assignments, with approval.
//! - [`issuer`]: the token issuer (OIDC discovery, JWKS, client credentials) and the
//!   managed-identity endpoint that gives workloads tokens with no secret in their code.
//!
//! The crate knows nothing of HTTP server details: the binary mounts the issuer's routes and
//! hands the verifier and the access model to the gateway and the vault.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod issuer;
pub mod jit;
pub mod jwt;
pub mod principal;
pub mod rbac;
pub mod verifier;

pub use principal::Principal;
pub use verifier::{Verifier, VerifierConfig, VerifyError};
