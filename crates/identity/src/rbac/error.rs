//! [`AccessError`]: everything the access model (RBAC and JIT elevation) can refuse or fail with.

use rampart_audit::AuditError;
use rampart_storage::StorageError;

/// Why an access-model call was refused or failed.
///
/// Refusals (bad input, missing rights, self-approval, ...) carry the offending value; the
/// infrastructure variants ([`AccessError::Storage`], [`AccessError::Audit`],
/// [`AccessError::Corrupt`]) mean the outcome is unknown or the store is damaged, and a caller
/// deciding access must deny.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A scope string is not one of the scope forms.
    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope {
        /// The scope as given.
        scope: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An action pattern (in a role) or an action (in a check) is malformed.
    #[error("invalid action {action:?}: {reason}")]
    InvalidAction {
        /// The action or pattern as given.
        action: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A role definition is malformed.
    #[error("invalid role definition {name:?}: {reason}")]
    InvalidRole {
        /// The role name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An assignment names a principal in a form that is not accepted.
    #[error("invalid principal name {name:?}: {reason}")]
    InvalidPrincipal {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A free-text field (justification, denial reason) is empty, too long or has control
    /// characters.
    #[error("invalid {field}: {reason}")]
    InvalidText {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No role has this name or id.
    #[error("no role named {role:?}")]
    UnknownRole {
        /// The name or id as given.
        role: String,
    },
    /// A role with this name already exists (names are case-insensitive).
    #[error("a role named {name:?} already exists")]
    RoleExists {
        /// The name.
        name: String,
    },
    /// Built-in roles cannot be deleted or redefined.
    #[error("{name:?} is a built-in role and cannot be changed")]
    BuiltInRole {
        /// The role name.
        name: String,
    },
    /// A custom role still has assignments.
    #[error("role {name:?} still has {count} assignment(s): remove them first")]
    RoleInUse {
        /// The role name.
        name: String,
        /// How many assignments use it.
        count: usize,
    },
    /// The role cannot be assigned at this scope (outside its assignable scopes).
    #[error("role {role:?} is not assignable at {scope}")]
    ScopeNotAssignable {
        /// The role name.
        role: String,
        /// The requested scope.
        scope: String,
    },
    /// The same principal already holds this role at this scope with this kind.
    #[error("{principal} already has {role:?} at {scope} (assignment {id})")]
    AssignmentExists {
        /// The existing assignment.
        id: String,
        /// The principal name.
        principal: String,
        /// The role name.
        role: String,
        /// The scope.
        scope: String,
    },
    /// No assignment has this id.
    #[error("no assignment with id {id:?}")]
    UnknownAssignment {
        /// The id as given.
        id: String,
    },
    /// No elevation request has this id.
    #[error("no elevation request with id {id:?}")]
    UnknownRequest {
        /// The id as given.
        id: String,
    },
    /// Neither an assignment nor a request has this id.
    #[error("no assignment or elevation request with id {id:?}")]
    UnknownId {
        /// The id as given.
        id: String,
    },
    /// The acting principal is not allowed to do this.
    #[error("{actor} may not {action} at {scope}: {why}")]
    Forbidden {
        /// The acting principal's id.
        actor: String,
        /// The action it needed.
        action: String,
        /// Where.
        scope: String,
        /// The decision's explanation.
        why: String,
    },
    /// An approver tried to approve (or deny) their own elevation request.
    #[error("{approver} cannot decide their own elevation request {id}")]
    SelfApproval {
        /// The request.
        id: String,
        /// The principal that tried.
        approver: String,
    },
    /// The requester holds no eligible assignment for this role at or above this scope.
    #[error("{principal} is not eligible for {role:?} at {scope}")]
    NotEligible {
        /// The requester's id.
        principal: String,
        /// The role name.
        role: String,
        /// The requested scope.
        scope: String,
    },
    /// The requested elevation is longer than the role allows.
    #[error("requested duration {requested_secs}s exceeds the maximum of {max_secs}s for {role:?}")]
    DurationTooLong {
        /// The role name.
        role: String,
        /// What was asked for, in seconds.
        requested_secs: u64,
        /// The role's maximum activation, in seconds.
        max_secs: u64,
    },
    /// A zero duration was requested.
    #[error("the elevation duration must be at least one second")]
    ZeroDuration,
    /// The request was already decided (or withdrawn).
    #[error("elevation request {id} is {status}, not pending")]
    RequestNotPending {
        /// The request.
        id: String,
        /// Its status.
        status: String,
    },
    /// The request waited for a decision longer than the pending lifetime.
    #[error("elevation request {id} is stale (pending since {created_at}, older than {ttl_secs}s)")]
    RequestStale {
        /// The request.
        id: String,
        /// When it was made, Unix seconds.
        created_at: u64,
        /// The pending lifetime.
        ttl_secs: u64,
    },
    /// Bootstrap was asked for, but an access administrator already exists.
    #[error("access is already bootstrapped: an access administrator assignment exists")]
    AlreadyBootstrapped,
    /// Other writers kept changing the access state; nothing was written.
    #[error("the access state changed concurrently {attempts} times: nothing was written, retry")]
    Contention {
        /// How many commits were attempted.
        attempts: usize,
    },
    /// A stored record could not be decoded.
    #[error("corrupt access record at {key}: {reason}")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The storage backend failed.
    #[error("access storage failed: {0}")]
    Storage(#[from] StorageError),
    /// The audit log refused the record: the operation was not carried out (fail closed).
    #[error("audit failed, operation refused: {0}")]
    Audit(#[from] AuditError),
}

impl AccessError {
    /// Whether this is a refusal of the request itself (audited as a denial) rather than an
    /// infrastructure failure.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Self::Storage(_) | Self::Audit(_) | Self::Corrupt { .. } | Self::Contention { .. }
        )
    }
}

/// Result alias of the access model.
pub type Result<T, E = AccessError> = std::result::Result<T, E>;
