//! Test helpers shared by Rampart's crates: in-process origins that tests put behind the
//! gateway, a private redis-server, the test OIDC provider, a bare HTTP/1.1 keep-alive client,
//! SoftHSM2 tokens, and helpers to find the shared test data.
#![forbid(unsafe_code)]

pub mod http1;
pub mod idp;
pub mod origin;
pub mod redis;
pub mod shared;
pub mod softhsm;
