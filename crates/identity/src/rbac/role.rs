//! Role definitions: what a role allows ([`RoleDefinition::evaluate`]), where it may be
//! assigned, and how long a just-in-time activation of it may last.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{AccessError, Result};
use super::pattern::ActionPattern;
use super::scope::Scope;

/// Default longest activation of an eligible assignment: 8 hours.
pub const DEFAULT_MAX_ACTIVATION: Duration = Duration::from_secs(8 * 3600);
/// Shortest maximum activation a role may declare: 1 minute.
pub const MIN_MAX_ACTIVATION: Duration = Duration::from_secs(60);
/// Longest maximum activation a role may declare: 7 days.
pub const MAX_MAX_ACTIVATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The kind of operation being decided: Azure keeps control-plane `actions` and data-plane
/// `dataActions` apart, and so do we (a role's `*` in `actions` grants no data action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation<'a> {
    /// A management action (`Rampart.Access/roleAssignments/write`, ...).
    Action(&'a str),
    /// A data action (`Microsoft.KeyVault/vaults/secrets/getSecret/action`, ...).
    DataAction(&'a str),
}

impl Operation<'_> {
    /// The action string.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Action(a) | Self::DataAction(a) => a,
        }
    }

    /// `action` or `dataAction`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Action(_) => "action",
            Self::DataAction(_) => "dataAction",
        }
    }
}

/// A role: named sets of allowed and excluded actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDefinition {
    /// Stable id (Azure's GUID for the Key Vault built-ins).
    pub id: String,
    /// Display name, unique (case-insensitive).
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// Built-in roles cannot be deleted or redefined.
    pub built_in: bool,
    /// Allowed management actions.
    pub actions: Vec<ActionPattern>,
    /// Management actions removed from `actions`.
    pub not_actions: Vec<ActionPattern>,
    /// Allowed data actions.
    pub data_actions: Vec<ActionPattern>,
    /// Data actions removed from `data_actions`.
    pub not_data_actions: Vec<ActionPattern>,
    /// Where the role may be assigned (an assignment's scope must be covered by one).
    pub assignable_scopes: Vec<Scope>,
    /// Longest just-in-time activation, in seconds.
    pub max_activation_secs: u64,
}

/// What one role says about one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleVerdict {
    /// Allowed by this pattern.
    Allowed(ActionPattern),
    /// Matched an allowing pattern but excluded by this not-pattern.
    Excluded(ActionPattern),
    /// Not in the role.
    NotListed,
}

impl RoleDefinition {
    /// Azure semantics: allowed when some action pattern of the operation's kind matches and
    /// no not-action pattern of that kind does.
    #[must_use]
    pub fn evaluate(&self, op: Operation<'_>) -> RoleVerdict {
        let (allow, deny) = match op {
            Operation::Action(_) => (&self.actions, &self.not_actions),
            Operation::DataAction(_) => (&self.data_actions, &self.not_data_actions),
        };
        let name = op.name();
        let Some(hit) = allow.iter().find(|p| p.matches(name)) else {
            return RoleVerdict::NotListed;
        };
        match deny.iter().find(|p| p.matches(name)) {
            Some(excluded) => RoleVerdict::Excluded(excluded.clone()),
            None => RoleVerdict::Allowed(hit.clone()),
        }
    }

    /// Whether the role may be assigned at `scope`.
    #[must_use]
    pub fn assignable_at(&self, scope: &Scope) -> bool {
        self.assignable_scopes.iter().any(|s| s.covers(scope))
    }

    /// The longest activation.
    #[must_use]
    pub fn max_activation(&self) -> Duration {
        Duration::from_secs(self.max_activation_secs)
    }
}

/// A custom role to create (strings are validated by
/// [`AccessControl::create_role`](crate::rbac::AccessControl::create_role)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NewRole {
    /// Display name (1..=128 characters, unique).
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// Allowed management action patterns.
    pub actions: Vec<String>,
    /// Excluded management action patterns.
    pub not_actions: Vec<String>,
    /// Allowed data action patterns.
    pub data_actions: Vec<String>,
    /// Excluded data action patterns.
    pub not_data_actions: Vec<String>,
    /// Assignable scopes (default `/`).
    pub assignable_scopes: Vec<String>,
    /// Longest activation in seconds (default 8 h).
    pub max_activation_secs: Option<u64>,
}

impl NewRole {
    /// Validates into a definition with the given id.
    pub(crate) fn into_definition(self, id: String) -> Result<RoleDefinition> {
        let bad = |reason: String| AccessError::InvalidRole {
            name: self.name.chars().take(128).collect(),
            reason,
        };
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(bad(
                "the name must be 1 to 128 characters, no control characters".into(),
            ));
        }
        if self.description.chars().count() > 1024 || self.description.chars().any(char::is_control)
        {
            return Err(bad(
                "the description must be at most 1024 characters, no control characters".into(),
            ));
        }
        let list = |v: &[String]| -> Result<Vec<ActionPattern>> {
            v.iter().map(|p| ActionPattern::parse(p)).collect()
        };
        let actions = list(&self.actions)?;
        let data_actions = list(&self.data_actions)?;
        if actions.is_empty() && data_actions.is_empty() {
            return Err(bad("a role needs at least one action or data action".into()));
        }
        let assignable_scopes = if self.assignable_scopes.is_empty() {
            vec![Scope::root()]
        } else {
            self.assignable_scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<_>>()?
        };
        let max = self
            .max_activation_secs
            .unwrap_or(DEFAULT_MAX_ACTIVATION.as_secs());
        check_max_activation(max).map_err(bad)?;
        Ok(RoleDefinition {
            id,
            name: name.to_owned(),
            description: self.description.clone(),
            built_in: false,
            actions,
            not_actions: list(&self.not_actions)?,
            data_actions,
            not_data_actions: list(&self.not_data_actions)?,
            assignable_scopes,
            max_activation_secs: max,
        })
    }
}

/// Checks a maximum activation against [`MIN_MAX_ACTIVATION`]..=[`MAX_MAX_ACTIVATION`].
pub(crate) fn check_max_activation(secs: u64) -> std::result::Result<(), String> {
    if secs < MIN_MAX_ACTIVATION.as_secs() || secs > MAX_MAX_ACTIVATION.as_secs() {
        return Err(format!(
            "the maximum activation must be between {}s and {}s, not {secs}s",
            MIN_MAX_ACTIVATION.as_secs(),
            MAX_MAX_ACTIVATION.as_secs()
        ));
    }
    Ok(())
}
