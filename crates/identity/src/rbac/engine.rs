//! [`AccessControl`]: the persisted access state (custom roles, assignments, elevation
//! requests), the decision function, and the mutation protocol every change goes through.
//!
//! # Storage layout
//!
//! ```text
//! identity/rbac/generation          decimal counter, +1 on every change
//! identity/rbac/roles/<id>          custom role (JSON); for a built-in id: only its
//!                                   maxActivationSecs override is used
//! identity/rbac/assignments/<id>    assignment (JSON)
//! identity/rbac/requests/<id>       elevation request (JSON)
//! ```
//!
//! # Mutations: validate, audit, commit
//!
//! Every change runs one protocol (`AccessControl::mutate`): read the generation and (if it
//! moved) reload the state, validate and authorize the change against that state, write the audit record
//! and wait until it is durable (refuse on failure: fail closed, nothing written), then
//! commit one storage transaction that requires the generation to be unchanged and bumps it.
//! Two processes sharing a store therefore serialize: the loser of a race reloads,
//! re-validates and retries (the audit record, already written, describes the same change
//! with the same ids). If re-validation then refuses, or the commit fails, a follow-up
//! `error` record with the same action says the change was not applied (or that its outcome
//! is unknown, for a storage error). A refused attempt is audited as a `deny` record.
//!
//! Audit before commit means a grant is never in force without a durable record of it; the
//! price is an occasional intent record followed by its `error` record.
//!
//! # Caching and other processes
//!
//! Checks use an in-memory snapshot. Changes made through this instance replace it at once
//! (a revocation is effective for the next check). Changes made by another process are seen
//! by reading the generation key at most every [`AccessOptions::refresh_interval`] (default
//! 1 s; zero reads it on every check) and reloading when it moved; mutations and listings
//! always read through. Expiry needs no reload: it is compared with the [`Clock`] at every
//! decision.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rampart_audit::{Auditor, Decision as AuditDecision, Record};
use rampart_storage::{Backend, Transaction, TxnOutcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::assignment::{Assignment, Condition, validate_principal};
use super::builtin::{ACCESS_ADMINISTRATOR_ID, builtin_roles};
use super::clock::Clock;
use super::decision::{Decision, Reason};
use super::error::{AccessError, Result};
use super::pattern::validate_action;
use super::role::{NewRole, Operation, RoleDefinition, RoleVerdict, check_max_activation};
use super::scope::Scope;
use super::{COMPONENT, actions};
use crate::jit::{ElevationRequest, RequestStatus};
use crate::principal::Principal;

const GENERATION_KEY: &[u8] = b"identity/rbac/generation";
const ROLES_PREFIX: &str = "identity/rbac/roles/";
const ASSIGNMENTS_PREFIX: &str = "identity/rbac/assignments/";
const REQUESTS_PREFIX: &str = "identity/rbac/requests/";
/// Commits attempted before giving up with [`AccessError::Contention`].
const MAX_ATTEMPTS: usize = 8;
/// Expired elevations removed per sweep transaction (two operations each).
const SWEEP_BATCH: usize = 40;
/// The actor id of changes the model makes itself (expiry sweeps).
pub const SYSTEM_ACTOR: &str = "rampart";

/// Options of [`AccessControl::open`].
#[derive(Clone, Debug)]
pub struct AccessOptions {
    /// Break-glass principal ids: every check they make is allowed, flagged and audited.
    pub break_glass: Vec<String>,
    /// How stale the check snapshot may get before the generation key is read again.
    pub refresh_interval: Duration,
    /// How long an elevation request may wait for a decision (default 24 h).
    pub pending_request_ttl: Duration,
}

impl Default for AccessOptions {
    fn default() -> Self {
        Self {
            break_glass: Vec::new(),
            refresh_interval: Duration::from_secs(1),
            pending_request_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Which kind of assignment [`AccessControl::assign`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignmentKind {
    /// In force until removed.
    Permanent,
    /// Usable only through an approved elevation request.
    Eligible,
}

/// Which assignments [`AccessControl::assignments`] lists.
#[derive(Clone, Debug, Default)]
pub struct AssignmentFilter {
    /// Only this principal name (a principal id or `group:<name>`).
    pub principal: Option<String>,
    /// Only assignments at this scope, above it or below it.
    pub scope: Option<Scope>,
    /// Include elevations whose expiry has passed (not yet swept).
    pub include_expired: bool,
}

/// One change to the access state.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    PutRole(RoleDefinition),
    DeleteRole(String),
    PutAssignment(Assignment),
    DeleteAssignment(String),
    PutRequest(ElevationRequest),
}

/// A validated change, its audit record and its result.
pub(crate) struct Plan<T> {
    pub changes: Vec<Change>,
    pub record: Record,
    pub break_glass: bool,
    pub out: T,
}

/// The access state at one generation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub generation: u64,
    generation_raw: Option<Vec<u8>>,
    /// Built-in and custom roles by id.
    pub roles: BTreeMap<String, RoleDefinition>,
    pub assignments: BTreeMap<String, Assignment>,
    pub requests: BTreeMap<String, ElevationRequest>,
    /// Assignment ids by principal name.
    by_principal: HashMap<String, Vec<String>>,
    /// Read from storage (the default snapshot is not).
    loaded: bool,
}

impl Snapshot {
    fn index(&mut self) {
        self.by_principal.clear();
        for a in self.assignments.values() {
            self.by_principal
                .entry(a.principal.clone())
                .or_default()
                .push(a.id.clone());
        }
    }

    fn apply(&self, changes: &[Change]) -> Self {
        let mut next = self.clone();
        for c in changes {
            match c {
                Change::PutRole(r) => {
                    next.roles.insert(r.id.clone(), r.clone());
                }
                Change::DeleteRole(id) => {
                    next.roles.remove(id);
                }
                Change::PutAssignment(a) => {
                    next.assignments.insert(a.id.clone(), a.clone());
                }
                Change::DeleteAssignment(id) => {
                    next.assignments.remove(id);
                }
                Change::PutRequest(r) => {
                    next.requests.insert(r.id.clone(), r.clone());
                }
            }
        }
        next.generation += 1;
        next.generation_raw = Some(next.generation.to_string().into_bytes());
        next.index();
        next
    }

    /// A role by id, or by name (case-insensitive).
    pub(crate) fn find_role(&self, name_or_id: &str) -> Result<&RoleDefinition> {
        self.roles
            .get(name_or_id)
            .or_else(|| {
                self.roles
                    .values()
                    .find(|r| r.name.eq_ignore_ascii_case(name_or_id.trim()))
            })
            .ok_or_else(|| AccessError::UnknownRole {
                role: name_or_id.chars().take(128).collect(),
            })
    }

    pub(crate) fn role_name(&self, id: &str) -> String {
        self.roles
            .get(id)
            .map_or_else(|| id.to_owned(), |r| r.name.clone())
    }

    /// The assignments that can reach `principal` (direct and through its groups), with the
    /// group they came through.
    pub(crate) fn assignments_of<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> impl Iterator<Item = (&'a Assignment, Option<String>)> + 'a {
        principal.assignment_names().flat_map(move |name| {
            let via = name.strip_prefix("group:").map(str::to_owned);
            self.by_principal
                .get(&name)
                .into_iter()
                .flatten()
                .filter_map(|id| self.assignments.get(id))
                .map(move |a| (a, via.clone()))
                .collect::<Vec<_>>()
        })
    }
}

/// The decision function: what `principal`'s assignments in `snap` say about `op` at `scope`
/// at time `now` (break-glass is handled by the caller). Also returns the expired elevations
/// it met, so their expiry can be audited.
pub(crate) fn evaluate(
    snap: &Snapshot,
    principal: &Principal,
    op: Operation<'_>,
    scope: &Scope,
    now: u64,
) -> (Decision, Vec<Assignment>) {
    let mut held: Vec<String> = Vec::new();
    let mut excluded: Option<Reason> = None;
    let mut expired_hit: Option<Reason> = None;
    let mut eligible: Option<Reason> = None;
    let mut expired = Vec::new();
    let mut granted: Option<Reason> = None;
    for (a, via_group) in snap.assignments_of(principal) {
        if !a.scope.covers(scope) {
            continue;
        }
        let Some(role) = snap.roles.get(&a.role_id) else {
            continue;
        };
        let verdict = role.evaluate(op);
        if a.is_expired(now) {
            expired.push(a.clone());
            if let (RoleVerdict::Allowed(_), Condition::ActiveUntil { expires_at, .. }) =
                (&verdict, &a.condition)
            {
                expired_hit.get_or_insert(Reason::ElevationExpired {
                    role: role.name.clone(),
                    assignment_id: a.id.clone(),
                    expired_at: *expires_at,
                });
            }
        } else if a.is_active(now) {
            match verdict {
                RoleVerdict::Allowed(pattern) => {
                    if granted.is_none() {
                        granted = Some(Reason::Granted {
                            assignment_id: a.id.clone(),
                            role: role.name.clone(),
                            assignment_scope: a.scope.clone(),
                            via_group,
                            active_until: match a.condition {
                                Condition::ActiveUntil { expires_at, .. } => Some(expires_at),
                                _ => None,
                            },
                            pattern: pattern.to_string(),
                        });
                    }
                }
                RoleVerdict::Excluded(pattern) => {
                    excluded.get_or_insert(Reason::ExcludedByNotAction {
                        role: role.name.clone(),
                        pattern: pattern.to_string(),
                    });
                }
                RoleVerdict::NotListed => {
                    if !held.contains(&role.name) {
                        held.push(role.name.clone());
                    }
                }
            }
        } else if let (Condition::Eligible, RoleVerdict::Allowed(_)) = (&a.condition, verdict) {
            eligible.get_or_insert(Reason::Eligible {
                role: role.name.clone(),
                assignment_scope: a.scope.clone(),
                assignment_id: a.id.clone(),
            });
        }
    }
    let allowed = granted.is_some();
    let reason = granted
        .or(expired_hit)
        .or(eligible)
        .or(excluded)
        .unwrap_or(if held.is_empty() {
            Reason::NoAssignment
        } else {
            Reason::NotInRoles { roles: held }
        });
    (
        Decision {
            allowed,
            break_glass: false,
            principal: principal.id.clone(),
            operation: op.name().to_owned(),
            scope: scope.clone(),
            reason,
        },
        expired,
    )
}

/// The access model: RBAC decisions and every change to roles, assignments and elevation
/// requests. Cheap to share behind an `Arc`.
pub struct AccessControl {
    backend: Arc<dyn Backend>,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    options: AccessOptions,
    state: RwLock<Arc<Snapshot>>,
    last_sync: Mutex<Instant>,
    noted_expired: Mutex<HashSet<String>>,
}

impl fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessControl")
            .field("backend", &self.backend)
            .field("options", &self.options)
            .field("generation", &self.snapshot().generation)
            .finish_non_exhaustive()
    }
}

fn auth_method(p: &Principal) -> &'static str {
    if p.issuer == "rampart" {
        "local"
    } else {
        "jwt"
    }
}

/// An audit record of `action` by `actor` on `resource`.
pub(crate) fn record(
    actor: &Principal,
    action: &str,
    decision: AuditDecision,
    resource: &str,
) -> Record {
    Record::new(COMPONENT, action, decision)
        .actor(actor.id.clone(), auth_method(actor))
        .resource(resource)
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| AccessError::Corrupt {
        key: key.to_owned(),
        reason: format!("encode: {e}"),
    })
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| AccessError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

impl AccessControl {
    /// Opens the access model on `backend`, loading its state.
    ///
    /// # Errors
    /// Storage errors, or [`AccessError::Corrupt`] for an undecodable record.
    pub async fn open(
        backend: Arc<dyn Backend>,
        auditor: Auditor,
        clock: Arc<dyn Clock>,
        options: AccessOptions,
    ) -> Result<Self> {
        let this = Self {
            backend,
            auditor,
            clock,
            options,
            state: RwLock::new(Arc::new(Snapshot::default())),
            last_sync: Mutex::new(Instant::now()),
            noted_expired: Mutex::new(HashSet::new()),
        };
        this.refresh().await?;
        Ok(this)
    }

    /// The options it was opened with.
    #[must_use]
    pub fn options(&self) -> &AccessOptions {
        &self.options
    }

    /// The current time of its clock (Unix seconds).
    #[must_use]
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether `principal` is a configured break-glass account.
    #[must_use]
    pub fn is_break_glass(&self, principal: &Principal) -> bool {
        self.options.break_glass.contains(&principal.id)
    }

    // --- state -------------------------------------------------------------------------

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn install(&self, snap: Arc<Snapshot>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if snap.generation >= state.generation {
            *state = snap;
        }
        *self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    async fn read_generation(&self) -> Result<(u64, Option<Vec<u8>>)> {
        let raw = self.backend.get(GENERATION_KEY).await?;
        let generation = match &raw {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| AccessError::Corrupt {
                    key: String::from_utf8_lossy(GENERATION_KEY).into_owned(),
                    reason: "not a decimal counter".into(),
                })?,
        };
        Ok((generation, raw))
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .backend
                .list(
                    prefix.as_bytes(),
                    after.as_deref(),
                    rampart_storage::MAX_LIST_LIMIT,
                )
                .await?;
            out.extend(page.entries.into_iter().map(|e| (e.key, e.value)));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Reads the whole state, consistently: the generation is read before and after and the
    /// read is retried if it moved in between.
    async fn load(&self) -> Result<Snapshot> {
        for _ in 0..MAX_ATTEMPTS {
            let (generation, raw) = self.read_generation().await?;
            let roles = self.list_all(ROLES_PREFIX).await?;
            let assignments = self.list_all(ASSIGNMENTS_PREFIX).await?;
            let requests = self.list_all(REQUESTS_PREFIX).await?;
            if self.read_generation().await?.0 != generation {
                continue;
            }
            let mut snap = Snapshot {
                generation,
                generation_raw: raw,
                loaded: true,
                ..Snapshot::default()
            };
            for r in builtin_roles() {
                snap.roles.insert(r.id.clone(), r);
            }
            for (k, v) in roles {
                let stored: RoleDefinition = decode(&k, &v)?;
                match snap.roles.get_mut(&stored.id) {
                    Some(builtin) if builtin.built_in => {
                        builtin.max_activation_secs = stored.max_activation_secs;
                    }
                    _ => {
                        snap.roles.insert(stored.id.clone(), stored);
                    }
                }
            }
            for (k, v) in assignments {
                let a: Assignment = decode(&k, &v)?;
                snap.assignments.insert(a.id.clone(), a);
            }
            for (k, v) in requests {
                let r: ElevationRequest = decode(&k, &v)?;
                snap.requests.insert(r.id.clone(), r);
            }
            snap.index();
            return Ok(snap);
        }
        Err(AccessError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Reads the generation and reloads if another process changed the state; returns the
    /// up-to-date snapshot. Mutations and listings call this (read-through).
    ///
    /// # Errors
    /// Storage errors, [`AccessError::Corrupt`].
    pub async fn refresh(&self) -> Result<()> {
        self.fresh().await.map(|_| ())
    }

    pub(crate) async fn fresh(&self) -> Result<Arc<Snapshot>> {
        let current = self.snapshot();
        let (generation, _) = self.read_generation().await?;
        if current.loaded && generation == current.generation {
            *self
                .last_sync
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
            return Ok(current);
        }
        let snap = Arc::new(self.load().await?);
        self.install(snap.clone());
        Ok(snap)
    }

    async fn snapshot_for_check(&self) -> Result<Arc<Snapshot>> {
        let stale = self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
            >= self.options.refresh_interval;
        if stale {
            self.fresh().await
        } else {
            Ok(self.snapshot())
        }
    }

    // --- decisions ---------------------------------------------------------------------

    /// Decides whether `principal` may perform `op` at `scope`.
    ///
    /// Deny by default. A break-glass principal is always allowed, with
    /// [`Decision::break_glass`] set, a `tracing` warning and an `access.break_glass` audit
    /// record. An elevation found expired is audited once per process (`access.expire`).
    ///
    /// # Errors
    /// [`AccessError::InvalidAction`]; storage or audit failures (the caller must deny).
    pub async fn check(
        &self,
        principal: &Principal,
        op: Operation<'_>,
        scope: &Scope,
    ) -> Result<Decision> {
        validate_action(op.name())?;
        if self.is_break_glass(principal) {
            tracing::warn!(
                principal = %principal.id,
                operation = op.name(),
                scope = %scope,
                "break-glass access used"
            );
            self.auditor
                .record(
                    record(
                        principal,
                        "access.break_glass",
                        AuditDecision::Allow,
                        &scope.to_string(),
                    )
                    .reason("break-glass principal: allowed without assignment")
                    .detail("operation", op.name())
                    .detail("kind", op.kind()),
                )
                .await?;
            return Ok(Decision {
                allowed: true,
                break_glass: true,
                principal: principal.id.clone(),
                operation: op.name().to_owned(),
                scope: scope.clone(),
                reason: Reason::BreakGlass,
            });
        }
        let snap = self.snapshot_for_check().await?;
        let (decision, expired) = evaluate(&snap, principal, op, scope, self.clock.now());
        for a in &expired {
            self.note_expired(&snap, a).await?;
        }
        Ok(decision)
    }

    /// [`AccessControl::check`] of a management action.
    ///
    /// # Errors
    /// As [`AccessControl::check`].
    pub async fn check_action(
        &self,
        principal: &Principal,
        action: &str,
        scope: &Scope,
    ) -> Result<Decision> {
        self.check(principal, Operation::Action(action), scope)
            .await
    }

    /// [`AccessControl::check`] of a data action.
    ///
    /// # Errors
    /// As [`AccessControl::check`].
    pub async fn check_data_action(
        &self,
        principal: &Principal,
        data_action: &str,
        scope: &Scope,
    ) -> Result<Decision> {
        self.check(principal, Operation::DataAction(data_action), scope)
            .await
    }

    /// Audits the first sighting (in this process) of an expired elevation.
    async fn note_expired(&self, snap: &Snapshot, a: &Assignment) -> Result<()> {
        let first = self
            .noted_expired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(a.id.clone());
        if !first {
            return Ok(());
        }
        let Condition::ActiveUntil {
            expires_at,
            request_id,
        } = &a.condition
        else {
            return Ok(());
        };
        let rec = record(
            &Principal::local(SYSTEM_ACTOR),
            "access.expire",
            AuditDecision::Allow,
            &a.scope.to_string(),
        )
        .reason("elevation expired")
        .detail("assignment_id", a.id.clone())
        .detail("request_id", request_id.clone())
        .detail("principal", a.principal.clone())
        .detail("role", snap.role_name(&a.role_id))
        .detail("expired_at", expires_at.to_string());
        if let Err(e) = self.auditor.record(rec).await {
            self.noted_expired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&a.id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Authorizes `actor` for management `action` at `scope` against `snap`; returns whether
    /// only break-glass allowed it.
    pub(crate) fn authorize(
        &self,
        snap: &Snapshot,
        actor: &Principal,
        action: &str,
        scope: &Scope,
        allow_break_glass: bool,
    ) -> Result<bool> {
        if allow_break_glass && self.is_break_glass(actor) {
            return Ok(true);
        }
        let (d, _) = evaluate(
            snap,
            actor,
            Operation::Action(action),
            scope,
            self.clock.now(),
        );
        if d.allowed {
            Ok(false)
        } else {
            Err(AccessError::Forbidden {
                actor: actor.id.clone(),
                action: action.to_owned(),
                scope: scope.to_string(),
                why: d.reason.to_string(),
            })
        }
    }

    // --- mutation protocol -------------------------------------------------------------

    async fn audit_best_effort(&self, rec: Record) {
        if let Err(e) = self.auditor.record(rec).await {
            tracing::error!(error = %e, "could not audit the outcome of an access change");
        }
    }

    /// Runs one change: validate against fresh state, audit (fail closed), commit under the
    /// generation precondition, retry on conflict. See the module docs.
    pub(crate) async fn mutate<T>(
        &self,
        actor: &Principal,
        action: &'static str,
        subject: &str,
        mut plan: impl FnMut(&Snapshot) -> Result<Plan<T>>,
    ) -> Result<T> {
        let mut snap = self.fresh().await?;
        let mut recorded = false;
        for _ in 0..MAX_ATTEMPTS {
            let p = match plan(&snap) {
                Ok(p) => p,
                Err(e) => {
                    if recorded {
                        self.audit_best_effort(
                            record(actor, action, AuditDecision::Error, subject)
                                .reason(format!("not applied: {e}")),
                        )
                        .await;
                    } else if e.is_refusal() {
                        self.audit_best_effort(
                            record(actor, action, AuditDecision::Deny, subject)
                                .reason(e.to_string()),
                        )
                        .await;
                    }
                    return Err(e);
                }
            };
            if !recorded {
                if p.break_glass {
                    tracing::warn!(principal = %actor.id, action, subject, "break-glass access used");
                    self.auditor
                        .record(
                            record(actor, "access.break_glass", AuditDecision::Allow, subject)
                                .reason("break-glass principal: allowed without assignment")
                                .detail("operation", action),
                        )
                        .await?;
                }
                self.auditor.record(p.record.clone()).await?;
                recorded = true;
            }
            let txn = self.transaction(&snap, &p.changes)?;
            match self.backend.commit(txn).await {
                Ok(TxnOutcome::Committed) => {
                    self.install(Arc::new(snap.apply(&p.changes)));
                    return Ok(p.out);
                }
                Ok(TxnOutcome::Conflict { .. }) => match self.load().await {
                    Ok(s) => {
                        snap = Arc::new(s);
                        self.install(snap.clone());
                    }
                    Err(e) => {
                        self.audit_best_effort(
                            record(actor, action, AuditDecision::Error, subject)
                                .reason(format!("not applied: {e}")),
                        )
                        .await;
                        return Err(e);
                    }
                },
                Err(e) => {
                    self.audit_best_effort(
                        record(actor, action, AuditDecision::Error, subject)
                            .reason(format!("outcome unknown: {e}")),
                    )
                    .await;
                    return Err(e.into());
                }
            }
        }
        let e = AccessError::Contention {
            attempts: MAX_ATTEMPTS,
        };
        self.audit_best_effort(
            record(actor, action, AuditDecision::Error, subject)
                .reason(format!("not applied: {e}")),
        )
        .await;
        Err(e)
    }

    fn transaction(&self, snap: &Snapshot, changes: &[Change]) -> Result<Transaction> {
        let mut txn = Transaction::new()
            .require(GENERATION_KEY, snap.generation_raw.as_deref())
            .put(GENERATION_KEY, (snap.generation + 1).to_string());
        for c in changes {
            txn = match c {
                Change::PutRole(r) => {
                    let key = format!("{ROLES_PREFIX}{}", r.id);
                    let value = encode(&key, r)?;
                    txn.put(key, value)
                }
                Change::DeleteRole(id) => txn.delete(format!("{ROLES_PREFIX}{id}")),
                Change::PutAssignment(a) => {
                    let key = format!("{ASSIGNMENTS_PREFIX}{}", a.id);
                    let value = encode(&key, a)?;
                    txn.put(key, value)
                }
                Change::DeleteAssignment(id) => txn.delete(format!("{ASSIGNMENTS_PREFIX}{id}")),
                Change::PutRequest(r) => {
                    let key = format!("{REQUESTS_PREFIX}{}", r.id);
                    let value = encode(&key, r)?;
                    txn.put(key, value)
                }
            };
        }
        Ok(txn)
    }

    // --- roles -------------------------------------------------------------------------

    /// Every role, built-in first then custom, by name.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn roles(&self) -> Result<Vec<RoleDefinition>> {
        let snap = self.fresh().await?;
        let mut roles: Vec<RoleDefinition> = snap.roles.values().cloned().collect();
        roles.sort_by(|a, b| {
            b.built_in
                .cmp(&a.built_in)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(roles)
    }

    /// A role by name (case-insensitive) or id.
    ///
    /// # Errors
    /// [`AccessError::UnknownRole`], storage errors.
    pub async fn role(&self, name_or_id: &str) -> Result<RoleDefinition> {
        self.fresh().await?.find_role(name_or_id).cloned()
    }

    /// Creates a custom role. Needs `Rampart.Access/roleDefinitions/write` at each of its
    /// assignable scopes.
    ///
    /// # Errors
    /// [`AccessError::InvalidRole`], [`AccessError::InvalidAction`],
    /// [`AccessError::InvalidScope`], [`AccessError::RoleExists`], [`AccessError::Forbidden`],
    /// audit or storage errors.
    pub async fn create_role(&self, actor: &Principal, role: NewRole) -> Result<RoleDefinition> {
        let subject = role.name.clone();
        let def = role.into_definition(uuid::Uuid::new_v4().to_string())?;
        self.mutate(actor, "access.role.create", &subject, |snap| {
            if snap
                .roles
                .values()
                .any(|r| r.name.eq_ignore_ascii_case(&def.name))
            {
                return Err(AccessError::RoleExists {
                    name: def.name.clone(),
                });
            }
            let mut break_glass = false;
            for scope in &def.assignable_scopes {
                break_glass |=
                    self.authorize(snap, actor, actions::ROLE_DEFINITIONS_WRITE, scope, true)?;
            }
            let rec = record(actor, "access.role.create", AuditDecision::Allow, &def.name)
                .detail("role_id", def.id.clone())
                .detail(
                    "definition",
                    serde_json::to_string(&def).unwrap_or_default(),
                );
            Ok(Plan {
                changes: vec![Change::PutRole(def.clone())],
                record: rec,
                break_glass,
                out: def.clone(),
            })
        })
        .await
    }

    /// Deletes a custom role that no assignment uses. Needs
    /// `Rampart.Access/roleDefinitions/delete` at each of its assignable scopes.
    ///
    /// # Errors
    /// [`AccessError::UnknownRole`], [`AccessError::BuiltInRole`], [`AccessError::RoleInUse`],
    /// [`AccessError::Forbidden`], audit or storage errors.
    pub async fn delete_role(&self, actor: &Principal, name_or_id: &str) -> Result<RoleDefinition> {
        self.mutate(actor, "access.role.delete", name_or_id, |snap| {
            let role = snap.find_role(name_or_id)?.clone();
            if role.built_in {
                return Err(AccessError::BuiltInRole { name: role.name });
            }
            let mut break_glass = false;
            for scope in &role.assignable_scopes {
                break_glass |=
                    self.authorize(snap, actor, actions::ROLE_DEFINITIONS_DELETE, scope, true)?;
            }
            let count = snap
                .assignments
                .values()
                .filter(|a| a.role_id == role.id)
                .count();
            if count > 0 {
                return Err(AccessError::RoleInUse {
                    name: role.name,
                    count,
                });
            }
            Ok(Plan {
                changes: vec![Change::DeleteRole(role.id.clone())],
                record: record(
                    actor,
                    "access.role.delete",
                    AuditDecision::Allow,
                    &role.name,
                )
                .detail("role_id", role.id.clone()),
                break_glass,
                out: role,
            })
        })
        .await
    }

    /// Sets a role's maximum activation (built-in roles too). Needs
    /// `Rampart.Access/roleDefinitions/write` at `/`.
    ///
    /// # Errors
    /// [`AccessError::UnknownRole`], [`AccessError::InvalidRole`] for a duration outside
    /// 1 min..=7 days, [`AccessError::Forbidden`], audit or storage errors.
    pub async fn set_max_activation(
        &self,
        actor: &Principal,
        name_or_id: &str,
        max: Duration,
    ) -> Result<RoleDefinition> {
        self.mutate(actor, "access.role.update", name_or_id, |snap| {
            let mut role = snap.find_role(name_or_id)?.clone();
            check_max_activation(max.as_secs()).map_err(|reason| AccessError::InvalidRole {
                name: role.name.clone(),
                reason,
            })?;
            let break_glass = self.authorize(
                snap,
                actor,
                actions::ROLE_DEFINITIONS_WRITE,
                &Scope::root(),
                true,
            )?;
            let old = role.max_activation_secs;
            role.max_activation_secs = max.as_secs();
            Ok(Plan {
                changes: vec![Change::PutRole(role.clone())],
                record: record(
                    actor,
                    "access.role.update",
                    AuditDecision::Allow,
                    &role.name,
                )
                .detail("role_id", role.id.clone())
                .detail(
                    "max_activation_secs",
                    format!("{old} -> {}", role.max_activation_secs),
                ),
                break_glass,
                out: role,
            })
        })
        .await
    }

    // --- assignments -------------------------------------------------------------------

    /// Assigns `role` (name or id) to `principal` (a principal id or `group:<name>`) at
    /// `scope`, permanently or as eligible. Needs `Rampart.Access/roleAssignments/write` at
    /// `scope`.
    ///
    /// # Errors
    /// [`AccessError::InvalidPrincipal`], [`AccessError::UnknownRole`],
    /// [`AccessError::ScopeNotAssignable`], [`AccessError::AssignmentExists`],
    /// [`AccessError::Forbidden`], audit or storage errors.
    pub async fn assign(
        &self,
        actor: &Principal,
        principal: &str,
        role: &str,
        scope: &Scope,
        kind: AssignmentKind,
    ) -> Result<Assignment> {
        validate_principal(principal)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        let action = match kind {
            AssignmentKind::Permanent => "access.assign",
            AssignmentKind::Eligible => "access.assign_eligible",
        };
        self.mutate(actor, action, &scope.to_string(), |snap| {
            let role = snap.find_role(role)?;
            let break_glass =
                self.authorize(snap, actor, actions::ROLE_ASSIGNMENTS_WRITE, scope, true)?;
            self.new_assignment_plan(
                snap,
                actor,
                action,
                break_glass,
                NewAssignment {
                    id: id.clone(),
                    principal,
                    role,
                    scope,
                    now,
                    condition: match kind {
                        AssignmentKind::Permanent => Condition::Permanent,
                        AssignmentKind::Eligible => Condition::Eligible,
                    },
                },
            )
        })
        .await
    }

    fn new_assignment_plan(
        &self,
        snap: &Snapshot,
        actor: &Principal,
        action: &str,
        break_glass: bool,
        new: NewAssignment<'_>,
    ) -> Result<Plan<Assignment>> {
        if !new.role.assignable_at(new.scope) {
            return Err(AccessError::ScopeNotAssignable {
                role: new.role.name.clone(),
                scope: new.scope.to_string(),
            });
        }
        if let Some(existing) = snap.assignments.values().find(|a| {
            a.principal == new.principal
                && a.role_id == new.role.id
                && a.scope == *new.scope
                && a.condition.label() == new.condition.label()
        }) {
            return Err(AccessError::AssignmentExists {
                id: existing.id.clone(),
                principal: new.principal.to_owned(),
                role: new.role.name.clone(),
                scope: new.scope.to_string(),
            });
        }
        let a = Assignment {
            id: new.id,
            principal: new.principal.to_owned(),
            role_id: new.role.id.clone(),
            scope: new.scope.clone(),
            created_by: actor.id.clone(),
            created_at: new.now,
            condition: new.condition,
        };
        Ok(Plan {
            changes: vec![Change::PutAssignment(a.clone())],
            record: record(actor, action, AuditDecision::Allow, &a.scope.to_string())
                .detail("assignment_id", a.id.clone())
                .detail("principal", a.principal.clone())
                .detail("role", new.role.name.clone())
                .detail("condition", a.condition.label()),
            break_glass,
            out: a,
        })
    }

    /// Creates the first access administrator: assigns "Rampart Access Administrator" at `/`
    /// to `principal`, only while no assignment of that role exists. For `rampart up` and the
    /// CLI acting on the data directory.
    ///
    /// # Errors
    /// [`AccessError::AlreadyBootstrapped`], [`AccessError::InvalidPrincipal`], audit or
    /// storage errors.
    pub async fn bootstrap(&self, actor: &Principal, principal: &str) -> Result<Assignment> {
        validate_principal(principal)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        self.mutate(actor, "access.bootstrap", "/", |snap| {
            if snap
                .assignments
                .values()
                .any(|a| a.role_id == ACCESS_ADMINISTRATOR_ID)
            {
                return Err(AccessError::AlreadyBootstrapped);
            }
            let role = snap.find_role(ACCESS_ADMINISTRATOR_ID)?;
            self.new_assignment_plan(
                snap,
                actor,
                "access.bootstrap",
                false,
                NewAssignment {
                    id: id.clone(),
                    principal,
                    role,
                    scope: &Scope::root(),
                    now,
                    condition: Condition::Permanent,
                },
            )
        })
        .await
    }

    /// Removes an assignment (permanent, eligible or active); effective for the next check.
    /// Needs `Rampart.Access/roleAssignments/delete` at its scope. Removing an active
    /// elevation marks its request revoked.
    ///
    /// # Errors
    /// [`AccessError::UnknownAssignment`], [`AccessError::Forbidden`], audit or storage errors.
    pub async fn unassign(&self, actor: &Principal, assignment_id: &str) -> Result<Assignment> {
        let now = self.clock.now();
        self.mutate(actor, "access.unassign", assignment_id, |snap| {
            let a = snap.assignments.get(assignment_id).ok_or_else(|| {
                AccessError::UnknownAssignment {
                    id: assignment_id.chars().take(64).collect(),
                }
            })?;
            let break_glass = self.authorize(
                snap,
                actor,
                actions::ROLE_ASSIGNMENTS_DELETE,
                &a.scope,
                true,
            )?;
            Ok(self.removal_plan(snap, actor, "access.unassign", a, break_glass, now))
        })
        .await
    }

    /// The plan removing `a` (and revoking the request it came from).
    pub(crate) fn removal_plan(
        &self,
        snap: &Snapshot,
        actor: &Principal,
        action: &str,
        a: &Assignment,
        break_glass: bool,
        now: u64,
    ) -> Plan<Assignment> {
        let mut changes = vec![Change::DeleteAssignment(a.id.clone())];
        if let Condition::ActiveUntil { request_id, .. } = &a.condition
            && let Some(req) = snap.requests.get(request_id)
        {
            let mut req = req.clone();
            req.status = RequestStatus::Revoked {
                by: actor.id.clone(),
                at: now,
            };
            changes.push(Change::PutRequest(req));
        }
        Plan {
            changes,
            record: record(actor, action, AuditDecision::Allow, &a.scope.to_string())
                .detail("assignment_id", a.id.clone())
                .detail("principal", a.principal.clone())
                .detail("role", snap.role_name(&a.role_id))
                .detail("condition", a.condition.label()),
            break_glass,
            out: a.clone(),
        }
    }

    /// Assignments matching `filter`, by id.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn assignments(&self, filter: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let snap = self.fresh().await?;
        let now = self.clock.now();
        Ok(snap
            .assignments
            .values()
            .filter(|a| filter.principal.as_ref().is_none_or(|p| *p == a.principal))
            .filter(|a| {
                filter
                    .scope
                    .as_ref()
                    .is_none_or(|s| s.covers(&a.scope) || a.scope.covers(s))
            })
            .filter(|a| filter.include_expired || !a.is_expired(now))
            .cloned()
            .collect())
    }

    /// Removes elevations whose expiry has passed and marks their requests expired (one
    /// `access.expire` record per batch, actor `rampart`). Expiry is enforced at decision
    /// time regardless; this only tidies the store. Returns what was removed.
    ///
    /// # Errors
    /// Audit or storage errors.
    pub async fn sweep_expired(&self) -> Result<Vec<Assignment>> {
        let system = Principal::local(SYSTEM_ACTOR);
        let now = self.clock.now();
        let mut removed = Vec::new();
        loop {
            if !self
                .fresh()
                .await?
                .assignments
                .values()
                .any(|a| a.is_expired(now))
            {
                return Ok(removed);
            }
            let batch = self
                .mutate(&system, "access.expire", "/", |snap| {
                    let due: Vec<Assignment> = snap
                        .assignments
                        .values()
                        .filter(|a| a.is_expired(now))
                        .take(SWEEP_BATCH)
                        .cloned()
                        .collect();
                    let mut changes = Vec::new();
                    for a in &due {
                        changes.push(Change::DeleteAssignment(a.id.clone()));
                        if let Condition::ActiveUntil {
                            request_id,
                            expires_at,
                        } = &a.condition
                            && let Some(req) = snap.requests.get(request_id)
                        {
                            let mut req = req.clone();
                            req.status = RequestStatus::Expired { at: *expires_at };
                            changes.push(Change::PutRequest(req));
                        }
                    }
                    let ids: Vec<&str> = due.iter().map(|a| a.id.as_str()).collect();
                    Ok(Plan {
                        changes,
                        record: record(&system, "access.expire", AuditDecision::Allow, "/")
                            .reason("expired elevations removed")
                            .detail("assignment_ids", ids.join(",")),
                        break_glass: false,
                        out: due,
                    })
                })
                .await;
            let batch = batch?;
            {
                let mut noted = self
                    .noted_expired
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for a in &batch {
                    noted.remove(&a.id);
                }
            }
            let done = batch.len() < SWEEP_BATCH;
            removed.extend(batch);
            if done {
                return Ok(removed);
            }
        }
    }
}

/// What [`AccessControl::new_assignment_plan`] creates.
struct NewAssignment<'a> {
    id: String,
    principal: &'a str,
    role: &'a RoleDefinition,
    scope: &'a Scope,
    now: u64,
    condition: Condition,
}
