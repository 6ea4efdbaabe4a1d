//! Role-based access control: roles, scopes, assignments and decisions.
//!
//! # Model
//!
//! - A **role** ([`RoleDefinition`]) lists `actions`, `notActions`, `dataActions` and
//!   `notDataActions` patterns, Azure style: an operation is allowed by a role when it matches
//!   one of the role's patterns of its kind ([`Operation::Action`] or
//!   [`Operation::DataAction`]) and none of the matching not-patterns. Patterns are
//!   case-insensitive and `*` matches any run of characters ([`pattern`]). Built-in roles
//!   ([`builtin`]) mirror Azure Key Vault's data-plane roles with their Azure ids and data
//!   actions; custom roles can be created and deleted.
//! - A **scope** ([`Scope`]) is `/`, `/vaults/{v}`, `/vaults/{v}/secrets|keys|certificates/{n}`
//!   or `/gateway/routes/{r}`; an assignment applies at its scope and below, by whole
//!   segments.
//! - An **assignment** ([`Assignment`]) gives a principal id or `group:<name>` a role at a
//!   scope: permanently, until an expiry (an approved elevation, see [`crate::jit`]), or as
//!   eligible only.
//! - A **decision** ([`AccessControl::check`] → [`Decision`]) is deny by default; it names the
//!   assignment, role, scope and group that allowed, or why nothing did (no assignment at or
//!   above the scope; roles held but without the action; excluded by a not-action; an
//!   elevation that expired; "eligible: request elevation"). Break-glass principals are
//!   allowed everything, flagged and loudly audited.
//!
//! State lives in the storage backend under `identity/rbac/` and every change is audited
//! before it is committed; see [`engine`] for the protocol and how other
//! processes see changes.
//!
//! # Action namespace
//!
//! Key Vault data actions are Azure's (`Microsoft.KeyVault/vaults/secrets/getSecret/action`,
//! `Microsoft.KeyVault/vaults/keys/wrap/action`, ...). Rampart's own:
//!
//! | action | kind | needed for |
//! |---|---|---|
//! | `Rampart.Access/roleDefinitions/read` | action | listing roles (admin API) |
//! | `Rampart.Access/roleDefinitions/write` | action | creating a custom role, changing a role's maximum activation |
//! | `Rampart.Access/roleDefinitions/delete` | action | deleting a custom role |
//! | `Rampart.Access/roleAssignments/read` | action | listing assignments (admin API) |
//! | `Rampart.Access/roleAssignments/write` | action | assigning a role, permanent or eligible, at the scope |
//! | `Rampart.Access/roleAssignments/delete` | action | removing an assignment, revoking an elevation or request |
//! | `Rampart.Access/elevationRequests/read` | action | listing elevation requests (admin API) |
//! | `Rampart.Access/elevationRequests/approve/action` | action | approving or denying someone else's request at its scope |
//! | `Rampart.Gateway/routes/read`, `/write`, `/delete`, `/drain/action` | action | managing a gateway route |
//! | `Rampart.Gateway/routes/invoke/action` | dataAction | calling the upstream behind a route |
//!
//! The `read` actions are not checked by this library (its listings are unrestricted); the
//! admin API checks them before listing.

pub mod assignment;
pub mod builtin;
pub mod clock;
pub mod decision;
pub mod engine;
pub mod error;
pub mod pattern;
pub mod role;
pub mod scope;

pub use assignment::{Assignment, Condition};
pub use builtin::{ACCESS_ADMINISTRATOR, ACCESS_ADMINISTRATOR_ID, builtin_roles};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, Reason};
pub use engine::{AccessControl, AccessOptions, AssignmentFilter, AssignmentKind, SYSTEM_ACTOR};
pub use error::AccessError;
pub use pattern::ActionPattern;
pub use role::{DEFAULT_MAX_ACTIVATION, NewRole, Operation, RoleDefinition, RoleVerdict};
pub use scope::{Scope, ScopeKind};

/// The audit component name of every access record.
pub const COMPONENT: &str = "identity";

/// Rampart's management actions (see the module docs).
pub mod actions {
    /// List role definitions.
    pub const ROLE_DEFINITIONS_READ: &str = "Rampart.Access/roleDefinitions/read";
    /// Create a custom role or change a role's maximum activation.
    pub const ROLE_DEFINITIONS_WRITE: &str = "Rampart.Access/roleDefinitions/write";
    /// Delete a custom role.
    pub const ROLE_DEFINITIONS_DELETE: &str = "Rampart.Access/roleDefinitions/delete";
    /// List assignments.
    pub const ROLE_ASSIGNMENTS_READ: &str = "Rampart.Access/roleAssignments/read";
    /// Create an assignment (permanent or eligible).
    pub const ROLE_ASSIGNMENTS_WRITE: &str = "Rampart.Access/roleAssignments/write";
    /// Remove an assignment or revoke an elevation.
    pub const ROLE_ASSIGNMENTS_DELETE: &str = "Rampart.Access/roleAssignments/delete";
    /// List elevation requests.
    pub const ELEVATION_REQUESTS_READ: &str = "Rampart.Access/elevationRequests/read";
    /// Approve or deny another principal's elevation request.
    pub const ELEVATION_REQUESTS_APPROVE: &str = "Rampart.Access/elevationRequests/approve/action";
    /// Call the upstream behind a gateway route (a data action).
    pub const GATEWAY_ROUTE_INVOKE: &str = "Rampart.Gateway/routes/invoke/action";
}
