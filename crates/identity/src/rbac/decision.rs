//! [`Decision`]: the answer to "may this principal do this here", with its explanation.

use std::fmt;

use serde::Serialize;

use super::scope::Scope;

/// The outcome of [`AccessControl::check`](crate::rbac::AccessControl::check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the operation is allowed.
    pub allowed: bool,
    /// Allowed only because the principal is a break-glass account (always audited).
    pub break_glass: bool,
    /// The principal decided for.
    pub principal: String,
    /// The operation (`action` or `dataAction` name).
    pub operation: String,
    /// Where.
    pub scope: Scope,
    /// Why.
    pub reason: Reason,
}

/// What allowed, or why nothing allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reason {
    /// Allowed by an assignment.
    #[serde(rename_all = "camelCase")]
    Granted {
        /// The assignment that allowed.
        assignment_id: String,
        /// Its role.
        role: String,
        /// Its scope (the checked scope or an ancestor).
        assignment_scope: Scope,
        /// The group it reached the principal through, if not assigned directly.
        via_group: Option<String>,
        /// For an elevation: when it ends (Unix seconds).
        active_until: Option<u64>,
        /// The role pattern that matched.
        pattern: String,
    },
    /// Allowed because the principal is a break-glass account.
    BreakGlass,
    /// No active assignment at or above the scope.
    NoAssignment,
    /// Active assignments exist at or above the scope but none of their roles has the action.
    #[serde(rename_all = "camelCase")]
    NotInRoles {
        /// The roles held there.
        roles: Vec<String>,
    },
    /// A role has the action but excludes it with a not-action (and no other role allows it).
    #[serde(rename_all = "camelCase")]
    ExcludedByNotAction {
        /// The role.
        role: String,
        /// The excluding pattern.
        pattern: String,
    },
    /// An elevation that would allow it expired.
    #[serde(rename_all = "camelCase")]
    ElevationExpired {
        /// The role.
        role: String,
        /// The expired assignment.
        assignment_id: String,
        /// When it expired (Unix seconds).
        expired_at: u64,
    },
    /// Only an eligible assignment would allow it: request elevation.
    #[serde(rename_all = "camelCase")]
    Eligible {
        /// The role to request.
        role: String,
        /// The eligible assignment's scope.
        assignment_scope: Scope,
        /// The eligible assignment.
        assignment_id: String,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "allowed" } else { "denied" };
        write!(
            f,
            "{verdict}: {} {} at {}: {}",
            self.principal, self.operation, self.scope, self.reason
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Granted {
                assignment_id,
                role,
                assignment_scope,
                via_group,
                active_until,
                pattern,
            } => {
                write!(
                    f,
                    "role {role:?} at {assignment_scope} (assignment {assignment_id}"
                )?;
                if let Some(g) = via_group {
                    write!(f, ", via group {g}")?;
                }
                if let Some(t) = active_until {
                    write!(f, ", elevated until {t}")?;
                }
                write!(f, ") matches {pattern}")
            }
            Self::BreakGlass => f.write_str("break-glass principal (audited)"),
            Self::NoAssignment => f.write_str("no assignment at or above this scope"),
            Self::NotInRoles { roles } => {
                write!(f, "not in the roles held here ({})", roles.join(", "))
            }
            Self::ExcludedByNotAction { role, pattern } => {
                write!(f, "excluded by not-action {pattern} of role {role:?}")
            }
            Self::ElevationExpired {
                role,
                assignment_id,
                expired_at,
            } => write!(
                f,
                "elevation to {role:?} (assignment {assignment_id}) expired at {expired_at}"
            ),
            Self::Eligible {
                role,
                assignment_scope,
                ..
            } => write!(
                f,
                "eligible: request elevation to {role:?} (eligible at {assignment_scope})"
            ),
        }
    }
}
