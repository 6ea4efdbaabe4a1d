//! Just-in-time (JIT) privileged elevation.
//!
//! A principal holding an **eligible** assignment (see
//! [`AssignmentKind::Eligible`](crate::rbac::AssignmentKind)) of a role at a scope cannot use
//! it directly. It asks for it with [`AccessControl::request_elevation`] (role, scope at or
//! below the eligible one, duration up to the role's maximum activation, justification).
//! Another principal allowed `Rampart.Access/elevationRequests/approve/action` at the
//! request's scope by an active assignment (break-glass does not count) approves it
//! ([`AccessControl::approve`]), which creates an assignment active until approval time plus
//! the duration, or denies it ([`AccessControl::deny`]). Nobody decides their own request.
//! [`AccessControl::revoke`] ends a request or an elevation at once (the requester may
//! withdraw or drop their own). Expiry is enforced at every decision against the clock;
//! [`AccessControl::sweep_expired`] removes expired elevations from the store.
//!
//! Every step is an audit record (`access.request`, `access.approve`, `access.deny`,
//! `access.revoke`, `access.expire`), refusals included (decision `deny`).

use std::time::Duration;

use rampart_audit::Decision as AuditDecision;
use serde::{Deserialize, Serialize};

use crate::principal::Principal;
use crate::rbac::engine::{Change, Plan, Snapshot, record};
use crate::rbac::error::{AccessError, Result};
use crate::rbac::{AccessControl, Assignment, Condition, Scope, actions};

/// Longest justification or denial reason, in characters.
pub const MAX_REASON_LEN: usize = 1024;

/// Where an elevation request stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase", deny_unknown_fields)]
pub enum RequestStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: an active assignment exists until `expires_at`.
    #[serde(rename_all = "camelCase")]
    Approved {
        /// The approver's id.
        by: String,
        /// When, Unix seconds.
        at: u64,
        /// The active assignment created.
        assignment_id: String,
        /// When the elevation ends, Unix seconds.
        expires_at: u64,
    },
    /// Denied.
    #[serde(rename_all = "camelCase")]
    Denied {
        /// The approver's id.
        by: String,
        /// When, Unix seconds.
        at: u64,
        /// Why.
        reason: String,
    },
    /// Withdrawn before a decision, or the elevation was ended early.
    #[serde(rename_all = "camelCase")]
    Revoked {
        /// Who revoked.
        by: String,
        /// When, Unix seconds.
        at: u64,
    },
    /// The elevation ran its course (set by [`AccessControl::sweep_expired`]).
    #[serde(rename_all = "camelCase")]
    Expired {
        /// When it expired, Unix seconds.
        at: u64,
    },
}

impl RequestStatus {
    /// `pending`, `approved`, `denied`, `revoked` or `expired`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved { .. } => "approved",
            Self::Denied { .. } => "denied",
            Self::Revoked { .. } => "revoked",
            Self::Expired { .. } => "expired",
        }
    }
}

/// A request to activate an eligible role assignment for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ElevationRequest {
    /// Unique id (UUID).
    pub id: String,
    /// The requester's principal id.
    pub requester: String,
    /// The role's id.
    pub role_id: String,
    /// The role's name when requested.
    pub role_name: String,
    /// Where the elevation applies.
    pub scope: Scope,
    /// How long the elevation lasts once approved, in seconds.
    pub duration_secs: u64,
    /// The requester's justification.
    pub reason: String,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// The eligible assignment it activates.
    pub eligible_assignment_id: String,
    /// Where it stands.
    pub status: RequestStatus,
}

/// An approval: the updated request and the active assignment it created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The request, now approved.
    pub request: ElevationRequest,
    /// The assignment active until the request's expiry.
    pub assignment: Assignment,
}

/// What [`AccessControl::revoke`] ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// The request revoked (or whose elevation was ended), if any.
    pub request: Option<ElevationRequest>,
    /// The assignment removed, if any.
    pub assignment: Option<Assignment>,
}

/// Which requests [`AccessControl::elevation_requests`] lists.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Only this requester's.
    pub requester: Option<String>,
    /// Only pending ones.
    pub pending_only: bool,
}

fn check_text(field: &'static str, text: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(AccessError::InvalidText {
            field,
            reason: reason.to_owned(),
        })
    };
    if text.trim().is_empty() {
        return bad("must not be empty");
    }
    if text.chars().count() > MAX_REASON_LEN {
        return bad(&format!("must be at most {MAX_REASON_LEN} characters"));
    }
    if text.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    Ok(())
}

fn find_request<'a>(snap: &'a Snapshot, id: &str) -> Result<&'a ElevationRequest> {
    snap.requests
        .get(id)
        .ok_or_else(|| AccessError::UnknownRequest {
            id: id.chars().take(64).collect(),
        })
}

impl AccessControl {
    /// Asks to activate `role` at `scope` for `duration`. The requester must hold an eligible
    /// assignment of the role (directly or through a group) at or above `scope`, and
    /// `duration` must not exceed the role's maximum activation.
    ///
    /// # Errors
    /// [`AccessError::NotEligible`], [`AccessError::DurationTooLong`],
    /// [`AccessError::ZeroDuration`], [`AccessError::InvalidText`],
    /// [`AccessError::UnknownRole`], audit or storage errors.
    pub async fn request_elevation(
        &self,
        requester: &Principal,
        role: &str,
        scope: &Scope,
        duration: Duration,
        reason: &str,
    ) -> Result<ElevationRequest> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        self.mutate(requester, "access.request", &scope.to_string(), |snap| {
            check_text("justification", reason)?;
            let role = snap.find_role(role)?;
            let secs = duration.as_secs();
            if secs == 0 {
                return Err(AccessError::ZeroDuration);
            }
            if secs > role.max_activation_secs {
                return Err(AccessError::DurationTooLong {
                    role: role.name.clone(),
                    requested_secs: secs,
                    max_secs: role.max_activation_secs,
                });
            }
            let eligible = snap
                .assignments_of(requester)
                .find(|(a, _)| {
                    a.role_id == role.id
                        && a.condition == Condition::Eligible
                        && a.scope.covers(scope)
                })
                .map(|(a, _)| a.id.clone())
                .ok_or_else(|| AccessError::NotEligible {
                    principal: requester.id.clone(),
                    role: role.name.clone(),
                    scope: scope.to_string(),
                })?;
            let req = ElevationRequest {
                id: id.clone(),
                requester: requester.id.clone(),
                role_id: role.id.clone(),
                role_name: role.name.clone(),
                scope: scope.clone(),
                duration_secs: secs,
                reason: reason.to_owned(),
                created_at: now,
                eligible_assignment_id: eligible,
                status: RequestStatus::Pending,
            };
            Ok(Plan {
                changes: vec![Change::PutRequest(req.clone())],
                record: record(
                    requester,
                    "access.request",
                    AuditDecision::Allow,
                    &scope.to_string(),
                )
                .reason(reason)
                .detail("request_id", req.id.clone())
                .detail("role", req.role_name.clone())
                .detail("duration_secs", secs.to_string()),
                break_glass: false,
                out: req,
            })
        })
        .await
    }

    /// Checks that `approver` may decide request `req`: not their own, pending, not stale,
    /// and allowed the approve action at its scope by an active assignment.
    fn check_decider(
        &self,
        snap: &Snapshot,
        approver: &Principal,
        req: &ElevationRequest,
        now: u64,
    ) -> Result<()> {
        if approver.id == req.requester {
            return Err(AccessError::SelfApproval {
                id: req.id.clone(),
                approver: approver.id.clone(),
            });
        }
        if req.status != RequestStatus::Pending {
            return Err(AccessError::RequestNotPending {
                id: req.id.clone(),
                status: req.status.label().to_owned(),
            });
        }
        let ttl = self.options().pending_request_ttl.as_secs();
        if now.saturating_sub(req.created_at) > ttl {
            return Err(AccessError::RequestStale {
                id: req.id.clone(),
                created_at: req.created_at,
                ttl_secs: ttl,
            });
        }
        self.authorize(
            snap,
            approver,
            actions::ELEVATION_REQUESTS_APPROVE,
            &req.scope,
            false,
        )?;
        Ok(())
    }

    /// Approves request `id`: creates an assignment of the role to the requester at the
    /// request's scope, active until now plus the requested duration.
    ///
    /// # Errors
    /// [`AccessError::SelfApproval`], [`AccessError::Forbidden`],
    /// [`AccessError::RequestNotPending`], [`AccessError::RequestStale`],
    /// [`AccessError::NotEligible`] (eligibility removed meanwhile),
    /// [`AccessError::UnknownRequest`], audit or storage errors.
    pub async fn approve(&self, approver: &Principal, id: &str) -> Result<Approval> {
        let assignment_id = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        self.mutate(approver, "access.approve", id, |snap| {
            let req = find_request(snap, id)?;
            self.check_decider(snap, approver, req, now)?;
            let still_eligible = snap
                .assignments
                .get(&req.eligible_assignment_id)
                .is_some_and(|a| {
                    a.condition == Condition::Eligible
                        && a.role_id == req.role_id
                        && a.scope.covers(&req.scope)
                });
            if !still_eligible {
                return Err(AccessError::NotEligible {
                    principal: req.requester.clone(),
                    role: req.role_name.clone(),
                    scope: req.scope.to_string(),
                });
            }
            let expires_at = now.saturating_add(req.duration_secs);
            let assignment = Assignment {
                id: assignment_id.clone(),
                principal: req.requester.clone(),
                role_id: req.role_id.clone(),
                scope: req.scope.clone(),
                created_by: approver.id.clone(),
                created_at: now,
                condition: Condition::ActiveUntil {
                    expires_at,
                    request_id: req.id.clone(),
                },
            };
            let mut request = req.clone();
            request.status = RequestStatus::Approved {
                by: approver.id.clone(),
                at: now,
                assignment_id: assignment.id.clone(),
                expires_at,
            };
            Ok(Plan {
                changes: vec![
                    Change::PutAssignment(assignment.clone()),
                    Change::PutRequest(request.clone()),
                ],
                record: record(
                    approver,
                    "access.approve",
                    AuditDecision::Allow,
                    &req.scope.to_string(),
                )
                .detail("request_id", req.id.clone())
                .detail("requester", req.requester.clone())
                .detail("role", req.role_name.clone())
                .detail("assignment_id", assignment.id.clone())
                .detail("expires_at", expires_at.to_string()),
                break_glass: false,
                out: Approval {
                    request,
                    assignment,
                },
            })
        })
        .await
    }

    /// Denies request `id`, with a reason. Same rules as [`AccessControl::approve`].
    ///
    /// # Errors
    /// As [`AccessControl::approve`], plus [`AccessError::InvalidText`].
    pub async fn deny(
        &self,
        approver: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<ElevationRequest> {
        let now = self.now();
        self.mutate(approver, "access.deny", id, |snap| {
            check_text("denial reason", reason)?;
            let req = find_request(snap, id)?;
            self.check_decider(snap, approver, req, now)?;
            let mut request = req.clone();
            request.status = RequestStatus::Denied {
                by: approver.id.clone(),
                at: now,
                reason: reason.to_owned(),
            };
            Ok(Plan {
                changes: vec![Change::PutRequest(request.clone())],
                record: record(
                    approver,
                    "access.deny",
                    AuditDecision::Allow,
                    &req.scope.to_string(),
                )
                .reason(reason)
                .detail("request_id", req.id.clone())
                .detail("requester", req.requester.clone())
                .detail("role", req.role_name.clone()),
                break_glass: false,
                out: request,
            })
        })
        .await
    }

    /// Revokes at once: an assignment id (any kind; an elevation's request is marked
    /// revoked), or a request id (a pending request is withdrawn; an approved one has its
    /// elevation removed). Needs `Rampart.Access/roleAssignments/delete` at the scope, except
    /// for the requester revoking their own request or elevation.
    ///
    /// # Errors
    /// [`AccessError::UnknownId`], [`AccessError::Forbidden`], [`AccessError::RequestNotPending`]
    /// (a request already denied, revoked or expired), audit or storage errors.
    pub async fn revoke(&self, actor: &Principal, id: &str) -> Result<Revocation> {
        let now = self.now();
        self.mutate(actor, "access.revoke", id, |snap| {
            let authorize = |scope: &Scope, owner: Option<&str>| -> Result<bool> {
                if owner == Some(actor.id.as_str()) {
                    return Ok(false);
                }
                self.authorize(snap, actor, actions::ROLE_ASSIGNMENTS_DELETE, scope, true)
            };
            if let Some(a) = snap.assignments.get(id) {
                let owner = matches!(a.condition, Condition::ActiveUntil { .. })
                    .then_some(a.principal.as_str());
                let break_glass = authorize(&a.scope, owner)?;
                let plan = self.removal_plan(snap, actor, "access.revoke", a, break_glass, now);
                let request = plan.changes.iter().find_map(|c| match c {
                    Change::PutRequest(r) => Some(r.clone()),
                    _ => None,
                });
                return Ok(Plan {
                    changes: plan.changes,
                    record: plan.record,
                    break_glass,
                    out: Revocation {
                        request,
                        assignment: Some(plan.out),
                    },
                });
            }
            let Some(req) = snap.requests.get(id) else {
                return Err(AccessError::UnknownId {
                    id: id.chars().take(64).collect(),
                });
            };
            let break_glass = authorize(&req.scope, Some(req.requester.as_str()))?;
            let mut changes = Vec::new();
            let mut removed = None;
            match &req.status {
                RequestStatus::Pending => {}
                RequestStatus::Approved { assignment_id, .. } => {
                    if let Some(a) = snap.assignments.get(assignment_id) {
                        changes.push(Change::DeleteAssignment(a.id.clone()));
                        removed = Some(a.clone());
                    }
                }
                other => {
                    return Err(AccessError::RequestNotPending {
                        id: req.id.clone(),
                        status: other.label().to_owned(),
                    });
                }
            }
            let mut request = req.clone();
            request.status = RequestStatus::Revoked {
                by: actor.id.clone(),
                at: now,
            };
            changes.push(Change::PutRequest(request.clone()));
            let mut rec = record(
                actor,
                "access.revoke",
                AuditDecision::Allow,
                &req.scope.to_string(),
            )
            .detail("request_id", req.id.clone())
            .detail("requester", req.requester.clone())
            .detail("role", req.role_name.clone())
            .detail("was", req.status.label());
            if let Some(a) = &removed {
                rec = rec.detail("assignment_id", a.id.clone());
            }
            Ok(Plan {
                changes,
                record: rec,
                break_glass,
                out: Revocation {
                    request: Some(request),
                    assignment: removed,
                },
            })
        })
        .await
    }

    /// One elevation request.
    ///
    /// # Errors
    /// [`AccessError::UnknownRequest`], storage errors.
    pub async fn elevation_request(&self, id: &str) -> Result<ElevationRequest> {
        let snap = self.fresh().await?;
        find_request(&snap, id).cloned()
    }

    /// Elevation requests matching `filter`, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn elevation_requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<ElevationRequest>> {
        let snap = self.fresh().await?;
        let mut out: Vec<ElevationRequest> = snap
            .requests
            .values()
            .filter(|r| filter.requester.as_ref().is_none_or(|p| *p == r.requester))
            .filter(|r| !filter.pending_only || r.status == RequestStatus::Pending)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }
}
