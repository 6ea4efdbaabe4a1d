//! Each built-in Key Vault role against every certificate data action the routes use: the
//! Certificates Officer and the Administrator may do all of them, the Certificate User and
//! the Reader only read, the secrets and keys roles none. (Secrets and keys: `rbac.rs`, through
//! the router.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::granted_by;
use rampart_vault_api::certificates::actions;

fn allowed(role: &str) -> Vec<&'static str> {
    granted_by(role, &actions::ALL)
}

#[test]
fn certificate_roles_grant_exactly_their_actions() {
    assert_eq!(
        allowed("Key Vault Certificates Officer"),
        actions::ALL.to_vec()
    );
    assert_eq!(allowed("Key Vault Administrator"), actions::ALL.to_vec());
    assert_eq!(allowed("Key Vault Certificate User"), vec![actions::READ]);
    assert_eq!(allowed("Key Vault Reader"), vec![actions::READ]);
    for role in [
        "Key Vault Secrets Officer",
        "Key Vault Secrets User",
        "Key Vault Crypto Officer",
        "Key Vault Crypto User",
        "Key Vault Crypto Service Encryption User",
        "Key Vault Crypto Service Release User",
    ] {
        assert!(allowed(role).is_empty(), "{role}");
    }
}
