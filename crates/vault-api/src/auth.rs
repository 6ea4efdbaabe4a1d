//! Authorization seam: the [`Authorizer`] trait the API asks for every request that carries a
//! bearer token, with the Key Vault **data action** of the operation and the **RBAC scope** of
//! the object (`/vaults/{vault}/secrets/{name}`, or `/vaults/{vault}` for collection
//! operations). The binary plugs the identity crate's verifier and RBAC in behind it; tests
//! plug their own.
//!
//! Requests without a token never reach the authorizer: they get 401 and the Key Vault
//! challenge (the Azure SDK's first request carries no token, on purpose).
//!
//! Data action names are Azure's, so built-in role definitions (Key Vault Secrets User,
//! Secrets Officer, Reader, Administrator) apply unchanged; they are listed in [`actions`].

use std::fmt;

use async_trait::async_trait;

/// What the API asks the authorizer.
#[derive(Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The bearer token (never logged).
    pub token: &'a str,
    /// The data action, e.g. `Microsoft.KeyVault/vaults/secrets/getSecret/action`.
    pub data_action: &'a str,
    /// The RBAC scope, e.g. `/vaults/default/secrets/db-password` or `/vaults/default`.
    pub scope: &'a str,
    /// The vault name.
    pub vault: &'a str,
}

impl fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("token", &"<redacted>")
            .field("data_action", &self.data_action)
            .field("scope", &self.scope)
            .field("vault", &self.vault)
            .finish()
    }
}

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The token is valid and its principal holds the data action at the scope.
    Allow {
        /// The principal id (for audit and logs).
        principal: String,
    },
    /// The token is not acceptable (bad signature, expired, wrong audience or issuer): 401.
    Unauthenticated {
        /// Why (goes to the client and the audit trail; no token material).
        reason: String,
    },
    /// The principal is authenticated but lacks the data action at the scope: 403.
    Forbidden {
        /// The principal id.
        principal: String,
        /// Why.
        reason: String,
    },
}

/// Decides whether a bearer token may perform a data action at a scope.
#[async_trait]
pub trait Authorizer: Send + Sync + fmt::Debug + 'static {
    /// The decision for `request`.
    async fn authorize(&self, request: AuthRequest<'_>) -> AuthDecision;
}

/// Refuses every token: the authorizer of a plane that has no identity verifier wired (fail
/// closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

#[async_trait]
impl Authorizer for DenyAll {
    async fn authorize(&self, _request: AuthRequest<'_>) -> AuthDecision {
        AuthDecision::Unauthenticated {
            reason: "no token verifier is configured for this vault".into(),
        }
    }
}

/// Key Vault data actions (Azure's names).
pub mod actions {
    /// Read a secret's value.
    pub const SECRET_GET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
    /// Read secret metadata (list, versions, properties).
    pub const SECRET_READ_METADATA: &str = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";
    /// Set a secret (new version).
    pub const SECRET_SET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
    /// Update a secret's attributes.
    pub const SECRET_UPDATE: &str = "Microsoft.KeyVault/vaults/secrets/update/action";
    /// Delete a secret (soft delete).
    pub const SECRET_DELETE: &str = "Microsoft.KeyVault/vaults/secrets/delete";
    /// Back a secret up.
    pub const SECRET_BACKUP: &str = "Microsoft.KeyVault/vaults/secrets/backup/action";
    /// Restore a secret backup.
    pub const SECRET_RESTORE: &str = "Microsoft.KeyVault/vaults/secrets/restore/action";
    /// Get a deleted secret: Azure's GetDeletedSecret "requires the secrets/get permission",
    /// which is `getSecret/action` in RBAC (Azure's access-policy-to-RBAC mapping).
    pub const DELETED_SECRET_GET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
    /// List deleted secrets: GetDeletedSecrets "requires the secrets/list permission", which is
    /// `readMetadata/action` in RBAC.
    pub const DELETED_SECRET_LIST: &str = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";
    /// Recover a deleted secret.
    pub const DELETED_SECRET_RECOVER: &str = "Microsoft.KeyVault/vaults/secrets/recover/action";
    /// Purge a deleted secret.
    pub const DELETED_SECRET_PURGE: &str = "Microsoft.KeyVault/vaults/secrets/purge/action";
}
