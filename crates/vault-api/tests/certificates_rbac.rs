//! Each built-in Key Vault role against every certificate data action the routes use: the
//! Certificates Officer and the Administrator may do all of them, the Certificate User and
//! the Reader only read, the secrets and keys roles none.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_identity::rbac::{Operation, RoleVerdict, builtin_roles};
use rampart_vault_api::certificates::actions;

fn allowed(role: &str) -> Vec<&'static str> {
    let roles = builtin_roles();
    let def = roles
        .iter()
        .find(|r| r.name == role)
        .unwrap_or_else(|| panic!("built-in role {role:?}"));
    actions::ALL
        .iter()
        .copied()
        .filter(|a| {
            matches!(
                def.evaluate(Operation::DataAction(a)),
                RoleVerdict::Allowed(_)
            )
        })
        .collect()
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
    assert!(allowed("Key Vault Secrets Officer").is_empty());
    assert!(allowed("Key Vault Crypto Officer").is_empty());
}
