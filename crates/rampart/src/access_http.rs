//! The access API on the admin listener (`/access/...`): role assignments, access checks that
//! explain themselves, and just-in-time elevation (request, approve, deny, revoke).
//!
//! Callers authenticate with the admin token (they act as the local `admin` principal, the
//! first Access Administrator) or with an access token from a trusted issuer (they act as the
//! token's principal: that is how a requester and a different approver are told apart). What
//! each may do is decided by the access model itself; every step is in the audit trail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use rampart_identity::Principal;
use rampart_identity::jit::RequestFilter;
use rampart_identity::rbac::{
    AccessControl, AccessError, AssignmentFilter, AssignmentKind, Operation, Scope, actions,
};
use serde::Deserialize;

use crate::admin::AdminState;
use crate::admin_reply::{Refusal, Reply, error, json_body, unauthorized};
use crate::identity_gate::{LOCAL_ADMIN, PlaneVerifier};

/// The access model and the verifier of callers' tokens, when the plane runs them.
#[derive(Debug, Clone)]
pub struct AccessAdmin {
    /// The access model.
    pub access: Arc<AccessControl>,
    /// Verifies callers that present an access token instead of the admin token (the plane's
    /// one verifier; own-issuer tokens meant only for the vault are refused).
    pub verifier: Option<PlaneVerifier>,
}

/// The `/access/...` routes.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/access/roles", get(roles))
        .route("/access/assignments", get(assignments).post(assign))
        .route("/access/assignments/{id}", axum::routing::delete(unassign))
        .route("/access/check", post(check))
        .route("/access/requests", get(requests).post(request))
        .route("/access/requests/{id}/approve", post(approve))
        .route("/access/requests/{id}/deny", post(deny))
        .route("/access/revoke/{id}", post(revoke))
}

fn refused(err: AccessError) -> Refusal {
    let status = match &err {
        AccessError::Forbidden { .. }
        | AccessError::SelfApproval { .. }
        | AccessError::NotEligible { .. } => StatusCode::FORBIDDEN,
        AccessError::UnknownRole { .. }
        | AccessError::UnknownAssignment { .. }
        | AccessError::UnknownRequest { .. }
        | AccessError::UnknownId { .. } => StatusCode::NOT_FOUND,
        AccessError::RoleExists { .. }
        | AccessError::RoleInUse { .. }
        | AccessError::AssignmentExists { .. }
        | AccessError::RequestNotPending { .. }
        | AccessError::RequestStale { .. }
        | AccessError::AlreadyBootstrapped => StatusCode::CONFLICT,
        other if other.is_refusal() => StatusCode::BAD_REQUEST,
        _ => {
            tracing::error!(error = %err, "access operation failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, err)
}

/// Who is calling: the admin token's holder, or a verified token's principal.
async fn caller(
    state: &AdminState,
    client: SocketAddr,
    headers: &HeaderMap,
    path: &str,
) -> Result<(AccessAdmin, Principal), Refusal> {
    let Some(admin) = state.access.clone() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "this plane does not run the access model",
        ));
    };
    if crate::admin::bearer_matches(headers, &state.admin_token) {
        return Ok((admin, Principal::local(LOCAL_ADMIN)));
    }
    if let (Some(verifier), Some(token)) = (&admin.verifier, rampart_gateway::bearer_token(headers))
    {
        match verifier.verifier().verify(token).await {
            Ok(principal) if verifier.meant_for_gateway(&principal) => {
                return Ok((admin, (*principal).clone()));
            }
            Ok(principal) => {
                tracing::warn!(%client, principal = %principal.id, "access API token refused: issued for the vault only")
            }
            Err(err) => tracing::warn!(%client, error = %err, "access API token refused"),
        }
    }
    Err(unauthorized(
        state,
        client,
        path,
        "the admin token or a valid access token is required",
    ))
}

fn scope(text: Option<&str>) -> Result<Scope, Refusal> {
    Scope::parse(text.unwrap_or("/")).map_err(refused)
}

fn ok(value: impl serde::Serialize) -> Reply {
    Ok(axum::Json(value).into_response())
}

/// Listing needs the read action at the scope asked about (the root by default).
async fn may_read(
    admin: &AccessAdmin,
    caller: &Principal,
    action: &str,
    at: &Scope,
) -> Result<(), Refusal> {
    let decision = admin
        .access
        .check(caller, Operation::Action(action), at)
        .await
        .map_err(refused)?;
    if decision.allowed {
        Ok(())
    } else {
        Err(error(StatusCode::FORBIDDEN, decision.reason))
    }
}

async fn roles(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/roles").await?;
    may_read(&admin, &who, actions::ROLE_DEFINITIONS_READ, &Scope::root()).await?;
    ok(admin.access.roles().await.map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct AssignmentQuery {
    principal: Option<String>,
    scope: Option<String>,
}

async fn assignments(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<AssignmentQuery>,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/assignments").await?;
    let at = scope(query.scope.as_deref())?;
    may_read(&admin, &who, actions::ROLE_ASSIGNMENTS_READ, &at).await?;
    let filter = AssignmentFilter {
        principal: query.principal,
        scope: query.scope.map(|_| at),
        include_expired: false,
    };
    ok(admin.access.assignments(&filter).await.map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct AssignBody {
    principal: String,
    role: String,
    scope: String,
    #[serde(default)]
    eligible: bool,
}

async fn assign(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/assignments").await?;
    let body: AssignBody = json_body(&body)?;
    let kind = if body.eligible {
        AssignmentKind::Eligible
    } else {
        AssignmentKind::Permanent
    };
    let assignment = admin
        .access
        .assign(
            &who,
            &body.principal,
            &body.role,
            &scope(Some(&body.scope))?,
            kind,
        )
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(assignment)).into_response())
}

async fn unassign(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/assignments").await?;
    ok(admin.access.unassign(&who, &id).await.map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct CheckBody {
    principal: String,
    #[serde(default)]
    groups: Vec<String>,
    operation: String,
    scope: String,
    /// A management action rather than a data action.
    #[serde(default)]
    management: bool,
}

async fn check(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/check").await?;
    let body: CheckBody = json_body(&body)?;
    let at = scope(Some(&body.scope))?;
    if who.id != body.principal {
        may_read(&admin, &who, actions::ROLE_ASSIGNMENTS_READ, &at).await?;
    }
    let mut subject = Principal::local(body.principal);
    subject.groups = body.groups;
    let operation = if body.management {
        Operation::Action(&body.operation)
    } else {
        Operation::DataAction(&body.operation)
    };
    ok(admin
        .access
        .check(&subject, operation, &at)
        .await
        .map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct RequestsQuery {
    #[serde(default)]
    pending: bool,
    #[serde(default)]
    all: bool,
}

async fn requests(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<RequestsQuery>,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/requests").await?;
    let requester = if query.all {
        may_read(
            &admin,
            &who,
            actions::ELEVATION_REQUESTS_READ,
            &Scope::root(),
        )
        .await?;
        None
    } else {
        Some(who.id.clone())
    };
    let filter = RequestFilter {
        requester,
        pending_only: query.pending,
    };
    ok(admin
        .access
        .elevation_requests(&filter)
        .await
        .map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct RequestBody {
    role: String,
    scope: String,
    /// Seconds.
    duration: u64,
    reason: String,
}

async fn request(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/requests").await?;
    let body: RequestBody = json_body(&body)?;
    let created = admin
        .access
        .request_elevation(
            &who,
            &body.role,
            &scope(Some(&body.scope))?,
            Duration::from_secs(body.duration),
            &body.reason,
        )
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn approve(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/requests").await?;
    ok(admin.access.approve(&who, &id).await.map_err(refused)?)
}

#[derive(Debug, Deserialize)]
struct DenyBody {
    reason: String,
}

async fn deny(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/requests").await?;
    let body: DenyBody = json_body(&body)?;
    ok(admin
        .access
        .deny(&who, &id, &body.reason)
        .await
        .map_err(refused)?)
}

async fn revoke(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (admin, who) = caller(&state, client, &headers, "/access/revoke").await?;
    ok(admin.access.revoke(&who, &id).await.map_err(refused)?)
}
