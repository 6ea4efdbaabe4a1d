//! Rampart identity: who is calling, and what may they do.
//!
//! - [`principal`]: the verified caller ([`Principal`]) every other part reasons about.
//! - [`issuer`]: the token issuer (OIDC discovery, JWKS, client credentials) and the
//!   managed-identity endpoint that gives workloads tokens with no secret in their code.
//!
//! The crate knows nothing of HTTP server details: the binary mounts the issuer's routes and
//! hands the verifier and the access model to the gateway and the vault.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod issuer;
pub mod principal;

pub use principal::Principal;
