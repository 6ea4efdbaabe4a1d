//! The built-in roles: Azure Key Vault's data-plane roles with Azure's ids and exactly Azure's
//! data actions, plus Rampart's own roles.
//!
//! Key Vault data actions are copied from the Azure built-in role definitions ("Azure built-in
//! roles for Security", learn.microsoft.com/azure/role-based-access-control/built-in-roles/security,
//! revision of 2025-01-25; the role JSON as published by ARM under
//! `/providers/Microsoft.Authorization/roleDefinitions/{id}`, cross-checked against
//! azure-rbac-catalog.org and azadvertizer.net). Every Key Vault role of that page with data
//! actions is here; Key Vault Contributor and Key Vault Data Access Administrator have none
//! (they are control-plane roles). Only the data actions are kept: the control-plane `actions` of those roles (`Microsoft.Authorization/*/read`,
//! `Microsoft.Resources/deployments/*`, ...) concern Azure Resource Manager, which Rampart does
//! not serve. The Rampart roles use the `Rampart.Access/...` and `Rampart.Gateway/...`
//! namespaces documented in [`crate::rbac`].

use super::pattern::ActionPattern;
use super::role::{DEFAULT_MAX_ACTIVATION, RoleDefinition};
use super::scope::Scope;

/// Name of the Rampart role that manages access (assignments, eligibility, approvals).
pub const ACCESS_ADMINISTRATOR: &str = "Rampart Access Administrator";
/// Id of [`ACCESS_ADMINISTRATOR`].
pub const ACCESS_ADMINISTRATOR_ID: &str = "7a3f5e0c-1b2d-4c8e-9f10-a11ce55ad001";

/// `(id, name, description, actions, data actions)` of each built-in role.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const SPECS: &[Spec] = &[
    (
        "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        "Key Vault Administrator",
        "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage role assignments.",
        &[],
        &["Microsoft.KeyVault/vaults/*"],
    ),
    (
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions.",
        &[],
        &["Microsoft.KeyVault/vaults/secrets/*"],
    ),
    (
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        "Read secret contents.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    (
        "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        "Key Vault Crypto Officer",
        "Perform any action on the keys of a key vault, except manage permissions.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/keys/*",
            "Microsoft.KeyVault/vaults/keyrotationpolicies/*",
        ],
    ),
    (
        "12338af0-0e69-4776-bea7-57ae8d297424",
        "Key Vault Crypto User",
        "Perform cryptographic operations using keys.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/update/action",
            "Microsoft.KeyVault/vaults/keys/backup/action",
            "Microsoft.KeyVault/vaults/keys/encrypt/action",
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "Microsoft.KeyVault/vaults/keys/sign/action",
            "Microsoft.KeyVault/vaults/keys/verify/action",
        ],
    ),
    (
        "e147488a-f6f5-4113-8e2d-b22465e65bf6",
        "Key Vault Crypto Service Encryption User",
        "Read metadata of keys and perform wrap/unwrap operations.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
        ],
    ),
    (
        "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
        "Key Vault Crypto Service Release User",
        "Release keys.",
        &[],
        &["Microsoft.KeyVault/vaults/keys/release/action"],
    ),
    (
        "a4417e6f-fecd-4de8-b567-7b0420556985",
        "Key Vault Certificates Officer",
        "Perform any action on the certificates of a key vault, except manage permissions.",
        &[],
        // Checked against the role JSON on the built-in roles page (2025-01-25 revision).
        &[
            "Microsoft.KeyVault/vaults/certificatecas/*",
            "Microsoft.KeyVault/vaults/certificates/*",
            "Microsoft.KeyVault/vaults/certificatecontacts/write",
        ],
    ),
    (
        "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
        "Key Vault Certificate User",
        "Read entire certificate contents including secret and key portion.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/certificates/read",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "Microsoft.KeyVault/vaults/keys/read",
        ],
    ),
    (
        "21090545-7ca7-4776-b22c-e363652d74d2",
        "Key Vault Reader",
        "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    (
        ACCESS_ADMINISTRATOR_ID,
        ACCESS_ADMINISTRATOR,
        "Manage Rampart access: role definitions, role assignments, eligible assignments, and approving or denying elevation requests of others.",
        &["Rampart.Access/*"],
        &[],
    ),
    (
        "7a3f5e0c-1b2d-4c8e-9f10-a11ce55ad002",
        "Rampart Gateway Operator",
        "Read, change, drain and delete gateway routes.",
        &["Rampart.Gateway/routes/*"],
        &[],
    ),
    (
        "7a3f5e0c-1b2d-4c8e-9f10-a11ce55ad003",
        "Rampart Gateway Route User",
        "Call the upstream behind a gateway route.",
        &[],
        &["Rampart.Gateway/routes/invoke/action"],
    ),
];

/// Every built-in role, assignable at `/`, with the default maximum activation.
#[must_use]
pub fn builtin_roles() -> Vec<RoleDefinition> {
    let patterns = |v: &[&str]| -> Vec<ActionPattern> {
        v.iter()
            .filter_map(|p| ActionPattern::parse(p).ok())
            .collect()
    };
    SPECS
        .iter()
        .map(
            |(id, name, description, actions, data_actions)| RoleDefinition {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                built_in: true,
                actions: patterns(actions),
                not_actions: Vec::new(),
                data_actions: patterns(data_actions),
                not_data_actions: Vec::new(),
                assignable_scopes: vec![Scope::root()],
                max_activation_secs: DEFAULT_MAX_ACTIVATION.as_secs(),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_well_formed_and_unique() {
        let roles = builtin_roles();
        assert_eq!(roles.len(), SPECS.len());
        for (role, spec) in roles.iter().zip(SPECS) {
            // no pattern was dropped by validation
            assert_eq!(
                role.actions.len() + role.data_actions.len(),
                spec.3.len() + spec.4.len()
            );
        }
        let mut names: Vec<String> = roles.iter().map(|r| r.name.to_lowercase()).collect();
        let mut ids: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
        names.sort();
        names.dedup();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(names.len(), roles.len());
        assert_eq!(ids.len(), roles.len());
    }
}
