//! The access model (RBAC and JIT elevation) end to end, against a real redb file and a real
//! PostgreSQL table, with a real audit log read back after each scenario.
//!
//! Every scenario runs twice: `redb::<name>` and `postgres::<name>`. PostgreSQL is
//! `$RAMPART_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); when it is
//! unreachable the PostgreSQL cases fail if `RAMPART_TEST_POSTGRES_URL` or `CI` is set, and are
//! skipped with a message otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{AuditLog, AuditOptions, Decision as AuditDecision, Entry, reader};
use rampart_identity::Principal;
use rampart_identity::jit::{RequestFilter, RequestStatus};
use rampart_identity::rbac::{
    AccessControl, AccessError, AccessOptions, AssignmentFilter, AssignmentKind, Condition,
    ManualClock, NewRole, Operation, Reason, Scope, actions,
};
use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};

const T0: u64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Harness

#[derive(Clone, Debug)]
enum Store {
    Redb(PathBuf),
    Postgres(String),
}

impl Store {
    async fn open(&self) -> Arc<dyn Backend> {
        match self {
            Self::Redb(path) => Arc::new(RedbBackend::open(path).await.unwrap()),
            Self::Postgres(table) => Arc::new(
                PostgresBackend::connect(
                    &postgres_url(),
                    PostgresOptions {
                        table: table.clone(),
                        pool_size: 4,
                    },
                )
                .await
                .unwrap(),
            ),
        }
    }
}

/// One scenario's world: a store, an audit log, a manual clock and the access model.
struct Env {
    store: Store,
    backend: Arc<dyn Backend>,
    log: Option<AuditLog>,
    audit_dir: PathBuf,
    clock: Arc<ManualClock>,
    access: AccessControl,
    options: AccessOptions,
    _dir: Arc<tempfile::TempDir>,
}

impl Env {
    async fn new(store: Store, dir: Arc<tempfile::TempDir>, options: AccessOptions) -> Self {
        let audit_dir = dir.path().join("audit");
        let log = AuditLog::open(&audit_dir, AuditOptions::default()).unwrap();
        let backend = store.open().await;
        let clock = Arc::new(ManualClock::new(T0));
        let access = AccessControl::open(
            backend.clone(),
            log.auditor(),
            clock.clone(),
            options.clone(),
        )
        .await
        .unwrap();
        Self {
            store,
            backend,
            log: Some(log),
            audit_dir,
            clock,
            access,
            options,
            _dir: dir,
        }
    }

    /// Another access model on the same store (as another process would have), with its own
    /// cache.
    async fn second_instance(&self, options: AccessOptions) -> AccessControl {
        AccessControl::open(
            self.backend.clone(),
            self.log.as_ref().unwrap().auditor(),
            self.clock.clone(),
            options,
        )
        .await
        .unwrap()
    }

    /// Drops the access model and the store, then opens both again.
    async fn restart(self) -> Self {
        let Self {
            store,
            backend,
            log,
            audit_dir,
            clock,
            access,
            options,
            _dir,
        } = self;
        drop(access);
        drop(backend);
        let backend = store.open().await;
        let access = AccessControl::open(
            backend.clone(),
            log.as_ref().unwrap().auditor(),
            clock.clone(),
            options.clone(),
        )
        .await
        .unwrap();
        Self {
            store,
            backend,
            log,
            audit_dir,
            clock,
            access,
            options,
            _dir,
        }
    }

    /// Every audit record so far.
    fn audit(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        reader::scan(&self.audit_dir, 0, |raw| {
            out.push(raw.decode()?);
            Ok(true)
        })
        .unwrap();
        out
    }

    /// Audit records of `action` with `decision`.
    fn audited(&self, action: &str, decision: AuditDecision) -> Vec<Entry> {
        self.audit()
            .into_iter()
            .filter(|e| e.record.action == action && e.record.decision == decision)
            .collect()
    }
}

async fn run_redb<F, Fut>(options: AccessOptions, body: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Store::Redb(dir.path().join("kv.redb"));
    body(Env::new(store, dir, options).await).await;
}

async fn run_postgres<F, Fut>(options: AccessOptions, body: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = postgres_url();
    let table = unique_table("identity");
    if let Err(e) = drop_table(&url, &table).await {
        let required = std::env::var_os("RAMPART_TEST_POSTGRES_URL").is_some()
            || std::env::var_os("CI").is_some();
        if required {
            panic!("PostgreSQL at RAMPART_TEST_POSTGRES_URL is required here: {e}");
        }
        eprintln!(
            "SKIPPED: PostgreSQL unreachable at the default URL ({e}); set RAMPART_TEST_POSTGRES_URL"
        );
        return;
    }
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Store::Postgres(table.clone());
    let outcome = tokio::spawn(async move {
        body(Env::new(store, dir, options).await).await;
    })
    .await;
    drop_table(&url, &table).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Defines `redb::<case>` and `postgres::<case>` for each scenario `case(Env)`, opened with
/// `options()` unless given.
macro_rules! scenarios {
    ($($case:ident $(with $opts:expr)?),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_redb(scenarios!(@opts $($opts)?), super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_postgres(scenarios!(@opts $($opts)?), super::$case).await;
                }
            )*
        }
    };
    (@opts) => { super::options() };
    (@opts $opts:expr) => { $opts };
}

scenarios!(
    decision_table,
    jit_lifecycle_with_audit_trail,
    restart_keeps_roles_assignments_and_requests,
    revocation_is_immediate_for_other_instances,
    break_glass_is_allowed_flagged_and_audited with super::break_glass_options(),
    custom_roles,
    audit_failure_refuses_changes with super::break_glass_options(),
    concurrent_writers_serialize,
);

fn options() -> AccessOptions {
    AccessOptions::default()
}

fn break_glass_options() -> AccessOptions {
    AccessOptions {
        break_glass: vec!["glass".into()],
        ..AccessOptions::default()
    }
}

fn user(id: &str, groups: &[&str]) -> Principal {
    let mut p = Principal::local(id);
    p.issuer = "https://idp.test".into();
    p.groups = groups.iter().map(|g| (*g).to_owned()).collect();
    p
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

const KV: &str = "Microsoft.KeyVault/vaults";

/// The local operator that bootstraps access.
fn root() -> Principal {
    Principal::local("root")
}

async fn bootstrap(env: &Env) {
    env.access.bootstrap(&root(), "root").await.unwrap();
}

async fn assign(env: &Env, principal: &str, role: &str, at: &str, kind: AssignmentKind) -> String {
    env.access
        .assign(&root(), principal, role, &scope(at), kind)
        .await
        .unwrap_or_else(|e| panic!("assign {role} to {principal} at {at}: {e}"))
        .id
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// What a row of the decision table expects.
#[derive(Debug)]
enum Want {
    /// Allowed by this role, directly.
    Allow(&'static str),
    /// Allowed by this role through this group.
    AllowVia(&'static str, &'static str),
    /// No assignment at or above the scope.
    NoAssignment,
    /// Roles held, none has the action.
    NotInRoles,
    /// Excluded by a not-action.
    Excluded,
    /// Only an eligible assignment would allow it.
    Eligible,
}

async fn decision_table(env: Env) {
    use AssignmentKind::Permanent;
    use Want::*;
    bootstrap(&env).await;
    env.access
        .create_role(
            &root(),
            NewRole {
                name: "Secrets Writer No Purge".into(),
                data_actions: vec![format!("{KV}/secrets/*")],
                not_data_actions: vec!["*/purge/action".into(), format!("{KV}/SECRETS/delete")],
                ..NewRole::default()
            },
        )
        .await
        .unwrap();
    for (principal, role, at, kind) in [
        ("alice", "Key Vault Secrets User", "/vaults/prod", Permanent),
        (
            "bob",
            "Key Vault Secrets Officer",
            "/vaults/prod/secrets/db",
            Permanent,
        ),
        ("group:auditors", "Key Vault Reader", "/", Permanent),
        (
            "carol",
            "secrets writer no purge",
            "/vaults/prod",
            Permanent,
        ),
        (
            "dave",
            "Key Vault Crypto Service Encryption User",
            "/vaults/prod/keys/kek",
            Permanent,
        ),
        (
            "erin",
            "Key Vault Crypto Officer",
            "/vaults/prod",
            Permanent,
        ),
        ("henry", "Key Vault Crypto User", "/vaults/prod", Permanent),
        (
            "frank",
            "Key Vault Certificates Officer",
            "/vaults/prod",
            Permanent,
        ),
        (
            "ivan",
            "Key Vault Certificate User",
            "/vaults/prod",
            Permanent,
        ),
        ("gina", "Key Vault Administrator", "/vaults/prod", Permanent),
        (
            "group:netops",
            "Rampart Gateway Operator",
            "/gateway/routes/api",
            Permanent,
        ),
        (
            "judy",
            "Key Vault Secrets Officer",
            "/vaults/prod",
            AssignmentKind::Eligible,
        ),
    ] {
        assign(&env, principal, role, at, kind).await;
    }

    let get = format!("{KV}/secrets/getSecret/action");
    let set = format!("{KV}/secrets/setSecret/action");
    let meta = format!("{KV}/secrets/readMetadata/action");
    let purge = format!("{KV}/secrets/purge/action");
    let sdelete = format!("{KV}/secrets/delete");
    let kread = format!("{KV}/keys/read");
    let wrap = format!("{KV}/keys/wrap/action");
    let unwrap = format!("{KV}/keys/unwrap/action");
    let encrypt = format!("{KV}/keys/encrypt/action");
    let sign = format!("{KV}/keys/sign/action");
    let kcreate = format!("{KV}/keys/create/action");
    let kdelete = format!("{KV}/keys/delete");
    let rotation = format!("{KV}/keyrotationpolicies/write");
    let cread = format!("{KV}/certificates/read");
    let ccreate = format!("{KV}/certificates/create/action");
    let cas = format!("{KV}/certificatecas/write");
    let d = |s: &str| Operation::DataAction(Box::leak(s.to_owned().into_boxed_str()));
    let a = |s: &'static str| Operation::Action(s);

    let db = "/vaults/prod/secrets/db";
    let kek = "/vaults/prod/keys/kek";
    let cert = "/vaults/prod/certificates/tls";
    #[rustfmt::skip]
    let table: Vec<(&str, &[&str], Operation<'static>, &str, Want)> = vec![
        // Secrets User: read values and metadata, nothing else; inheritance from the vault
        ("alice", &[], d(&get), db, Allow("Key Vault Secrets User")),
        ("alice", &[], d(&get), "/vaults/prod", Allow("Key Vault Secrets User")),
        ("alice", &[], d(&meta), db, Allow("Key Vault Secrets User")),
        ("alice", &[], d("microsoft.keyvault/VAULTS/secrets/getsecret/ACTION"), db, Allow("Key Vault Secrets User")),
        ("alice", &[], d(&set), db, NotInRoles),
        ("alice", &[], d(&kread), kek, NotInRoles),
        // the same string as a management action is not a data action
        ("alice", &[], Operation::Action(Box::leak(get.clone().into_boxed_str())), db, NotInRoles),
        // whole segments only, and nothing elsewhere
        ("alice", &[], d(&get), "/vaults/prodx/secrets/db", NoAssignment),
        ("alice", &[], d(&get), "/vaults/staging/secrets/db", NoAssignment),
        ("alice", &[], d(&get), "/", NoAssignment),
        // Secrets Officer at one secret: everything on it, nothing beside or above it
        ("bob", &[], d(&set), db, Allow("Key Vault Secrets Officer")),
        ("bob", &[], d(&purge), db, Allow("Key Vault Secrets Officer")),
        ("bob", &[], d(&set), "/vaults/prod/secrets/other", NoAssignment),
        ("bob", &[], d(&get), "/vaults/prod", NoAssignment),
        ("bob", &[], d(&kread), db, NotInRoles),
        // Reader through a group at /: metadata everywhere, never values
        ("rita", &["auditors"], d(&meta), db, AllowVia("Key Vault Reader", "auditors")),
        ("rita", &["auditors"], d(&kread), kek, AllowVia("Key Vault Reader", "auditors")),
        ("rita", &["auditors"], d(&cread), cert, AllowVia("Key Vault Reader", "auditors")),
        ("rita", &["auditors"], d(&get), db, NotInRoles),
        ("rita", &["auditors"], d(&unwrap), kek, NotInRoles),
        ("rita", &[], d(&meta), db, NoAssignment),
        // custom role with wildcard and not-actions
        ("carol", &[], d(&set), db, Allow("Secrets Writer No Purge")),
        ("carol", &[], d(&get), db, Allow("Secrets Writer No Purge")),
        ("carol", &[], d(&purge), db, Excluded),
        ("carol", &[], d(&sdelete), db, Excluded),
        ("carol", &[], d(&kread), kek, NotInRoles),
        // another role allowing what one excludes wins (union of grants)
        ("carol", &["auditors"], d(&meta), db, Allow("Secrets Writer No Purge")),
        // Crypto Service Encryption User: wrap, unwrap, read; at its key only
        ("dave", &[], d(&wrap), kek, Allow("Key Vault Crypto Service Encryption User")),
        ("dave", &[], d(&unwrap), kek, Allow("Key Vault Crypto Service Encryption User")),
        ("dave", &[], d(&kread), kek, Allow("Key Vault Crypto Service Encryption User")),
        ("dave", &[], d(&encrypt), kek, NotInRoles),
        ("dave", &[], d(&sign), kek, NotInRoles),
        ("dave", &[], d(&kcreate), kek, NotInRoles),
        ("dave", &[], d(&get), kek, NotInRoles),
        ("dave", &[], d(&wrap), "/vaults/prod/keys/other", NoAssignment),
        // Crypto Officer: everything on keys and rotation policies, no secrets
        ("erin", &[], d(&kcreate), kek, Allow("Key Vault Crypto Officer")),
        ("erin", &[], d(&kdelete), kek, Allow("Key Vault Crypto Officer")),
        ("erin", &[], d(&rotation), kek, Allow("Key Vault Crypto Officer")),
        ("erin", &[], d(&get), db, NotInRoles),
        // Crypto User: crypto operations, no key management
        ("henry", &[], d(&encrypt), kek, Allow("Key Vault Crypto User")),
        ("henry", &[], d(&sign), kek, Allow("Key Vault Crypto User")),
        ("henry", &[], d(&kcreate), kek, NotInRoles),
        ("henry", &[], d(&kdelete), kek, NotInRoles),
        // Certificates Officer and Certificate User
        ("frank", &[], d(&ccreate), cert, Allow("Key Vault Certificates Officer")),
        ("frank", &[], d(&cas), "/vaults/prod", Allow("Key Vault Certificates Officer")),
        ("frank", &[], d(&get), db, NotInRoles),
        ("ivan", &[], d(&cread), cert, Allow("Key Vault Certificate User")),
        ("ivan", &[], d(&get), db, Allow("Key Vault Certificate User")),
        ("ivan", &[], d(&ccreate), cert, NotInRoles),
        // Key Vault Administrator: every data action in its vault, no access management
        ("gina", &[], d(&purge), db, Allow("Key Vault Administrator")),
        ("gina", &[], d(&kcreate), kek, Allow("Key Vault Administrator")),
        ("gina", &[], d(&get), "/vaults/other/secrets/db", NoAssignment),
        ("gina", &[], a(actions::ROLE_ASSIGNMENTS_WRITE), "/vaults/prod", NotInRoles),
        // Access Administrator: manages access, reads no secret
        ("root", &[], a(actions::ROLE_ASSIGNMENTS_WRITE), "/vaults/prod", Allow("Rampart Access Administrator")),
        ("root", &[], a(actions::ELEVATION_REQUESTS_APPROVE), db, Allow("Rampart Access Administrator")),
        ("root", &[], d(&get), db, NotInRoles),
        // Gateway Operator through a group, at one route
        ("nick", &["netops"], a("Rampart.Gateway/routes/write"), "/gateway/routes/api", AllowVia("Rampart Gateway Operator", "netops")),
        ("nick", &["netops"], a("Rampart.Gateway/routes/write"), "/gateway/routes/other", NoAssignment),
        ("nick", &["netops"], d("Rampart.Gateway/routes/invoke/action"), "/gateway/routes/api", NotInRoles),
        // eligible only: says so, for what the role would allow
        ("judy", &[], d(&set), db, Eligible),
        ("judy", &[], d(&kread), kek, NoAssignment),
        // nobody
        ("zed", &[], d(&get), db, NoAssignment),
        ("zed", &["unknown"], a(actions::ROLE_ASSIGNMENTS_WRITE), "/", NoAssignment),
    ];

    let mut failures = Vec::new();
    for (who, groups, op, at, want) in &table {
        let principal = user(who, groups);
        let decision = env.access.check(&principal, *op, &scope(at)).await.unwrap();
        let ok = match (want, &decision.reason) {
            (
                Allow(role),
                Reason::Granted {
                    role: r,
                    via_group: None,
                    ..
                },
            ) => r == role,
            (
                AllowVia(role, group),
                Reason::Granted {
                    role: r,
                    via_group: Some(g),
                    ..
                },
            ) => r == role && g == group,
            (NoAssignment, Reason::NoAssignment)
            | (NotInRoles, Reason::NotInRoles { .. })
            | (Excluded, Reason::ExcludedByNotAction { .. })
            | (Eligible, Reason::Eligible { .. }) => true,
            _ => false,
        } && decision.allowed == matches!(want, Allow(_) | AllowVia(..))
            && !decision.break_glass;
        if !ok {
            failures.push(format!(
                "{who} {groups:?} {} at {at}: want {want:?}, got {decision}",
                op.name()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The explanations say what to do.
    let judy = env
        .access
        .check(&user("judy", &[]), d(&set), &scope(db))
        .await
        .unwrap();
    assert!(
        judy.to_string().contains("eligible: request elevation"),
        "{judy}"
    );
    let carol = env
        .access
        .check(&user("carol", &[]), d(&purge), &scope(db))
        .await
        .unwrap();
    assert!(carol.to_string().contains("*/purge/action"), "{carol}");

    // Bad input is a typed error, not a decision.
    assert!(matches!(
        env.access
            .check(&user("alice", &[]), d("Microsoft.KeyVault/*"), &scope(db))
            .await,
        Err(AccessError::InvalidAction { .. })
    ));
}

async fn jit_lifecycle_with_audit_trail(env: Env) {
    use AssignmentKind::{Eligible, Permanent};
    bootstrap(&env).await;
    let db = scope("/vaults/prod/secrets/db");
    let set = Operation::DataAction("Microsoft.KeyVault/vaults/secrets/setSecret/action");
    assign(
        &env,
        "approver",
        "Rampart Access Administrator",
        "/vaults/prod",
        Permanent,
    )
    .await;
    assign(
        &env,
        "mallory",
        "Key Vault Secrets Officer",
        "/vaults/prod",
        Permanent,
    )
    .await;
    let eligible = assign(
        &env,
        "req",
        "Key Vault Secrets Officer",
        "/vaults/prod",
        Eligible,
    )
    .await;
    // The requester is an access administrator too: still cannot approve their own request.
    assign(&env, "req", "Rampart Access Administrator", "/", Permanent).await;
    let requester = user("req", &[]);
    let approver = user("approver", &[]);
    let mallory = user("mallory", &[]);

    let before = env.access.check(&requester, set, &db).await.unwrap();
    assert!(!before.allowed);
    assert!(
        matches!(before.reason, Reason::Eligible { ref assignment_id, .. } if *assignment_id == eligible)
    );

    // Over the role's maximum (8 h by default): refused.
    let err = env
        .access
        .request_elevation(
            &requester,
            "Key Vault Secrets Officer",
            &db,
            9 * HOUR,
            "rotate db password",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccessError::DurationTooLong {
                requested_secs: 32400,
                max_secs: 28800,
                ..
            }
        ),
        "{err}"
    );
    // Not eligible: refused.
    let err = env
        .access
        .request_elevation(&mallory, "Key Vault Administrator", &db, HOUR, "because")
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotEligible { .. }), "{err}");
    // Eligible at /vaults/prod covers a request at one of its secrets.
    let req = env
        .access
        .request_elevation(
            &requester,
            "key vault secrets officer",
            &db,
            HOUR,
            "rotate db password",
        )
        .await
        .unwrap();
    assert_eq!(req.status, RequestStatus::Pending);
    assert_eq!(req.eligible_assignment_id, eligible);

    // Self-approval: refused, even for an administrator.
    let err = env.access.approve(&requester, &req.id).await.unwrap_err();
    assert!(matches!(err, AccessError::SelfApproval { .. }), "{err}");
    let err = env
        .access
        .deny(&requester, &req.id, "no")
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::SelfApproval { .. }), "{err}");
    // An approver without the approve action: refused.
    let err = env.access.approve(&mallory, &req.id).await.unwrap_err();
    assert!(
        matches!(err, AccessError::Forbidden { ref action, .. } if action == actions::ELEVATION_REQUESTS_APPROVE),
        "{err}"
    );
    assert!(
        !env.access
            .check(&requester, set, &db)
            .await
            .unwrap()
            .allowed
    );

    env.clock.advance(Duration::from_secs(60));
    let approval = env.access.approve(&approver, &req.id).await.unwrap();
    let expires_at = T0 + 60 + 3600;
    assert_eq!(
        approval.assignment.condition,
        Condition::ActiveUntil {
            expires_at,
            request_id: req.id.clone()
        }
    );
    assert!(
        matches!(approval.request.status, RequestStatus::Approved { ref by, .. } if by == "approver")
    );
    let err = env.access.approve(&approver, &req.id).await.unwrap_err();
    assert!(
        matches!(err, AccessError::RequestNotPending { .. }),
        "{err}"
    );

    let during = env.access.check(&requester, set, &db).await.unwrap();
    assert!(during.allowed, "{during}");
    assert!(
        matches!(during.reason, Reason::Granted { active_until: Some(t), .. } if t == expires_at)
    );
    // The elevation is at the requested scope only.
    let beside = env
        .access
        .check(&requester, set, &scope("/vaults/prod/secrets/other"))
        .await
        .unwrap();
    assert!(
        !beside.allowed && matches!(beside.reason, Reason::Eligible { .. }),
        "{beside}"
    );

    // Expiry without restart: move the clock past it.
    env.clock.advance(Duration::from_secs(3599));
    assert!(
        env.access
            .check(&requester, set, &db)
            .await
            .unwrap()
            .allowed
    );
    env.clock.advance(Duration::from_secs(1));
    let after = env.access.check(&requester, set, &db).await.unwrap();
    assert!(!after.allowed);
    assert!(
        matches!(after.reason, Reason::ElevationExpired { expired_at, .. } if expired_at == expires_at),
        "{after}"
    );
    let expired = env.audited("access.expire", AuditDecision::Allow);
    assert_eq!(expired.len(), 1, "expiry audited once");
    assert_eq!(
        expired[0].record.details["assignment_id"],
        approval.assignment.id
    );
    // The sweep removes it and marks the request.
    let swept = env.access.sweep_expired().await.unwrap();
    assert_eq!(swept.len(), 1);
    assert!(env.access.sweep_expired().await.unwrap().is_empty());
    assert!(matches!(
        env.access.elevation_request(&req.id).await.unwrap().status,
        RequestStatus::Expired { at } if at == expires_at
    ));

    // Deny.
    let second = env
        .access
        .request_elevation(&requester, "Key Vault Secrets Officer", &db, HOUR, "again")
        .await
        .unwrap();
    let denied = env
        .access
        .deny(&approver, &second.id, "not during the freeze")
        .await
        .unwrap();
    assert!(
        matches!(denied.status, RequestStatus::Denied { ref reason, .. } if reason == "not during the freeze")
    );
    assert!(matches!(
        env.access.approve(&approver, &second.id).await,
        Err(AccessError::RequestNotPending { .. })
    ));

    // Revoke an active elevation by request id: immediate.
    let third = env
        .access
        .request_elevation(
            &requester,
            "Key Vault Secrets Officer",
            &db,
            2 * HOUR,
            "incident 42",
        )
        .await
        .unwrap();
    env.access.approve(&approver, &third.id).await.unwrap();
    assert!(
        env.access
            .check(&requester, set, &db)
            .await
            .unwrap()
            .allowed
    );
    // Someone without the delete action cannot revoke it.
    assert!(matches!(
        env.access.revoke(&mallory, &third.id).await,
        Err(AccessError::Forbidden { .. })
    ));
    let revoked = env.access.revoke(&approver, &third.id).await.unwrap();
    assert!(revoked.assignment.is_some());
    assert!(
        !env.access
            .check(&requester, set, &db)
            .await
            .unwrap()
            .allowed
    );

    // The requester may withdraw their own pending request.
    let fourth = env
        .access
        .request_elevation(
            &requester,
            "Key Vault Secrets Officer",
            &db,
            HOUR,
            "changed my mind",
        )
        .await
        .unwrap();
    env.access.revoke(&requester, &fourth.id).await.unwrap();
    let pending = env
        .access
        .elevation_requests(&RequestFilter {
            pending_only: true,
            ..RequestFilter::default()
        })
        .await
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");

    // A request left pending longer than the pending lifetime (24 h) can no longer be
    // approved.
    let stale = env
        .access
        .request_elevation(
            &requester,
            "Key Vault Secrets Officer",
            &db,
            HOUR,
            "weekend",
        )
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let err = env.access.approve(&approver, &stale.id).await.unwrap_err();
    assert!(matches!(err, AccessError::RequestStale { .. }), "{err}");

    // Every step is in the audit log, refusals as denials.
    let count = |action: &str, decision| env.audited(action, decision).len();
    assert_eq!(count("access.bootstrap", AuditDecision::Allow), 1);
    assert_eq!(count("access.assign", AuditDecision::Allow), 3);
    assert_eq!(count("access.assign_eligible", AuditDecision::Allow), 1);
    assert_eq!(count("access.request", AuditDecision::Allow), 5);
    assert_eq!(count("access.request", AuditDecision::Deny), 2);
    assert_eq!(count("access.approve", AuditDecision::Allow), 2);
    assert_eq!(count("access.approve", AuditDecision::Deny), 5);
    assert_eq!(count("access.deny", AuditDecision::Allow), 1);
    assert_eq!(count("access.deny", AuditDecision::Deny), 1);
    assert_eq!(count("access.revoke", AuditDecision::Allow), 2);
    assert_eq!(count("access.revoke", AuditDecision::Deny), 1);
    assert_eq!(count("access.expire", AuditDecision::Allow), 2);
    let approve = env.audited("access.approve", AuditDecision::Allow);
    let first = &approve[0].record;
    assert_eq!(first.actor.id, "approver");
    assert_eq!(first.resource, "/vaults/prod/secrets/db");
    assert_eq!(first.details["request_id"], req.id);
    assert_eq!(first.details["requester"], "req");
    assert_eq!(first.details["expires_at"], expires_at.to_string());
    let self_approval = env.audited("access.approve", AuditDecision::Deny);
    assert!(
        self_approval[0]
            .record
            .reason
            .contains("cannot decide their own"),
        "{:?}",
        self_approval[0].record
    );
    assert_eq!(self_approval[0].record.actor.id, "req");
}

async fn restart_keeps_roles_assignments_and_requests(env: Env) {
    use AssignmentKind::{Eligible, Permanent};
    bootstrap(&env).await;
    let db = scope("/vaults/prod/secrets/db");
    let get = Operation::DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action");
    let custom = env
        .access
        .create_role(
            &root(),
            NewRole {
                name: "Secret Reader".into(),
                data_actions: vec!["Microsoft.KeyVault/vaults/secrets/getSecret/action".into()],
                max_activation_secs: Some(1800),
                ..NewRole::default()
            },
        )
        .await
        .unwrap();
    assign(
        &env,
        "approver",
        "Rampart Access Administrator",
        "/",
        Permanent,
    )
    .await;
    let eligible = assign(
        &env,
        "group:oncall",
        "Secret Reader",
        "/vaults/prod",
        Eligible,
    )
    .await;
    let requester = user("sam", &["oncall"]);
    let active_req = env
        .access
        .request_elevation(
            &requester,
            "Secret Reader",
            &db,
            Duration::from_secs(1800),
            "page 1",
        )
        .await
        .unwrap();
    let approval = env
        .access
        .approve(&user("approver", &[]), &active_req.id)
        .await
        .unwrap();
    let pending = env
        .access
        .request_elevation(
            &requester,
            "Secret Reader",
            &scope("/vaults/prod"),
            Duration::from_secs(600),
            "page 2",
        )
        .await
        .unwrap();
    // The role's own maximum applies.
    assert!(matches!(
        env.access
            .request_elevation(
                &requester,
                "Secret Reader",
                &db,
                Duration::from_secs(1801),
                "x"
            )
            .await,
        Err(AccessError::DurationTooLong { max_secs: 1800, .. })
    ));

    let env = env.restart().await;

    let role = env.access.role("secret reader").await.unwrap();
    assert_eq!(role, custom);
    let all = env
        .access
        .assignments(&AssignmentFilter::default())
        .await
        .unwrap();
    assert!(
        all.iter()
            .any(|a| a.id == eligible && a.condition == Condition::Eligible)
    );
    assert!(all.iter().any(|a| a.id == approval.assignment.id && a.condition == approval.assignment.condition));
    let requests = env
        .access
        .elevation_requests(&RequestFilter::default())
        .await
        .unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        env.access.elevation_request(&active_req.id).await.unwrap(),
        approval.request
    );
    assert_eq!(
        env.access
            .elevation_request(&pending.id)
            .await
            .unwrap()
            .status,
        RequestStatus::Pending
    );
    // Decisions after restart: the elevation still holds, the pending one can be approved.
    let d = env.access.check(&requester, get, &db).await.unwrap();
    assert!(d.allowed, "{d}");
    env.access
        .approve(&user("approver", &[]), &pending.id)
        .await
        .unwrap();
    assert!(
        env.access
            .check(&requester, get, &scope("/vaults/prod/secrets/other"))
            .await
            .unwrap()
            .allowed
    );
    // And the elevation still ends on time.
    env.clock.advance(Duration::from_secs(1800));
    assert!(
        !env.access
            .check(&requester, get, &db)
            .await
            .unwrap()
            .allowed
    );
}

async fn revocation_is_immediate_for_other_instances(env: Env) {
    bootstrap(&env).await;
    let db = scope("/vaults/prod/secrets/db");
    let get = Operation::DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action");
    let other = env
        .second_instance(AccessOptions {
            refresh_interval: Duration::ZERO,
            ..AccessOptions::default()
        })
        .await;
    let alice = user("alice", &[]);
    assert!(!other.check(&alice, get, &db).await.unwrap().allowed);
    let id = assign(
        &env,
        "alice",
        "Key Vault Secrets User",
        "/vaults/prod",
        AssignmentKind::Permanent,
    )
    .await;
    // The writer sees it at once; the other instance on its next check.
    assert!(env.access.check(&alice, get, &db).await.unwrap().allowed);
    assert!(other.check(&alice, get, &db).await.unwrap().allowed);
    // Revoked through the other instance: both deny on the next check.
    other.unassign(&root(), &id).await.unwrap();
    assert!(!other.check(&alice, get, &db).await.unwrap().allowed);
    env.access.refresh().await.unwrap();
    assert!(!env.access.check(&alice, get, &db).await.unwrap().allowed);
    assert!(matches!(
        env.access.unassign(&root(), &id).await,
        Err(AccessError::UnknownAssignment { .. })
    ));
    assert_eq!(
        env.audited("access.unassign", AuditDecision::Allow).len(),
        1
    );
}

async fn break_glass_is_allowed_flagged_and_audited(env: Env) {
    bootstrap(&env).await;
    let glass = user("glass", &[]);
    let db = scope("/vaults/prod/secrets/db");
    let d = env
        .access
        .check(
            &glass,
            Operation::DataAction("Microsoft.KeyVault/vaults/secrets/purge/action"),
            &db,
        )
        .await
        .unwrap();
    assert!(
        d.allowed && d.break_glass && d.reason == Reason::BreakGlass,
        "{d}"
    );
    let records = env.audited("access.break_glass", AuditDecision::Allow);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.actor.id, "glass");
    assert_eq!(records[0].record.resource, "/vaults/prod/secrets/db");
    assert_eq!(
        records[0].record.details["operation"],
        "Microsoft.KeyVault/vaults/secrets/purge/action"
    );

    // Break-glass may change access (loudly) ...
    let a = env
        .access
        .assign(
            &glass,
            "alice",
            "Key Vault Reader",
            &scope("/"),
            AssignmentKind::Eligible,
        )
        .await
        .unwrap();
    assert_eq!(a.created_by, "glass");
    assert_eq!(
        env.audited("access.break_glass", AuditDecision::Allow)
            .len(),
        2
    );
    // ... but approving needs a real active assignment.
    let req = env
        .access
        .request_elevation(
            &user("alice", &[]),
            "Key Vault Reader",
            &scope("/"),
            HOUR,
            "audit prep",
        )
        .await
        .unwrap();
    assert!(matches!(
        env.access.approve(&glass, &req.id).await,
        Err(AccessError::Forbidden { .. })
    ));
    // A non-break-glass principal is not flagged.
    let d = env
        .access
        .check(
            &user("nobody", &[]),
            Operation::Action(actions::ROLE_ASSIGNMENTS_WRITE),
            &db,
        )
        .await
        .unwrap();
    assert!(!d.allowed && !d.break_glass);
}

async fn custom_roles(env: Env) {
    bootstrap(&env).await;
    let new = || NewRole {
        name: "Route Caller".into(),
        data_actions: vec!["Rampart.Gateway/routes/invoke/action".into()],
        assignable_scopes: vec!["/gateway/routes/api".into()],
        ..NewRole::default()
    };
    // Needs roleDefinitions/write.
    assert!(matches!(
        env.access.create_role(&user("eve", &[]), new()).await,
        Err(AccessError::Forbidden { .. })
    ));
    let role = env.access.create_role(&root(), new()).await.unwrap();
    assert!(!role.built_in);
    assert_eq!(role.max_activation_secs, 8 * 3600);
    assert!(matches!(
        env.access
            .create_role(
                &root(),
                NewRole {
                    name: "route CALLER".into(),
                    ..new()
                }
            )
            .await,
        Err(AccessError::RoleExists { .. })
    ));
    for bad in [
        NewRole {
            data_actions: vec!["Rampart Gateway".into()],
            ..new()
        },
        NewRole {
            data_actions: vec![],
            ..new()
        },
        NewRole {
            name: " ".into(),
            ..new()
        },
        NewRole {
            assignable_scopes: vec!["/nowhere".into()],
            ..new()
        },
        NewRole {
            max_activation_secs: Some(10),
            ..new()
        },
    ] {
        let err = env
            .access
            .create_role(&root(), bad.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AccessError::InvalidAction { .. }
                    | AccessError::InvalidRole { .. }
                    | AccessError::InvalidScope { .. }
            ),
            "{bad:?}: {err}"
        );
    }
    // Only assignable within its assignable scopes.
    assert!(matches!(
        env.access
            .assign(
                &root(),
                "svc",
                "Route Caller",
                &scope("/gateway/routes/admin"),
                AssignmentKind::Permanent
            )
            .await,
        Err(AccessError::ScopeNotAssignable { .. })
    ));
    let a = assign(
        &env,
        "svc",
        "Route Caller",
        "/gateway/routes/api",
        AssignmentKind::Permanent,
    )
    .await;
    assert!(matches!(
        env.access
            .assign(&root(), "svc", "Route Caller", &scope("/gateway/routes/api"), AssignmentKind::Permanent)
            .await,
        Err(AccessError::AssignmentExists { ref id, .. }) if *id == a
    ));
    assert!(matches!(
        env.access
            .assign(
                &root(),
                "bad name",
                "Route Caller",
                &scope("/gateway/routes/api"),
                AssignmentKind::Permanent
            )
            .await,
        Err(AccessError::InvalidPrincipal { .. })
    ));
    assert!(matches!(
        env.access
            .assign(
                &root(),
                "group:",
                "Route Caller",
                &scope("/gateway/routes/api"),
                AssignmentKind::Permanent
            )
            .await,
        Err(AccessError::InvalidPrincipal { .. })
    ));
    // Built-ins cannot be deleted; a role in use cannot be deleted.
    assert!(matches!(
        env.access.delete_role(&root(), "Key Vault Reader").await,
        Err(AccessError::BuiltInRole { .. })
    ));
    assert!(matches!(
        env.access.delete_role(&root(), "Route Caller").await,
        Err(AccessError::RoleInUse { count: 1, .. })
    ));
    env.access.unassign(&root(), &a).await.unwrap();
    let deleted = env.access.delete_role(&root(), &role.id).await.unwrap();
    assert_eq!(deleted.id, role.id);
    assert!(matches!(
        env.access.role("Route Caller").await,
        Err(AccessError::UnknownRole { .. })
    ));

    // A built-in's maximum activation is configurable and persisted.
    let updated = env
        .access
        .set_max_activation(
            &root(),
            "Key Vault Secrets Officer",
            Duration::from_secs(900),
        )
        .await
        .unwrap();
    assert_eq!(updated.max_activation_secs, 900);
    assert!(matches!(
        env.access
            .set_max_activation(&user("eve", &[]), "Key Vault Secrets Officer", HOUR)
            .await,
        Err(AccessError::Forbidden { .. })
    ));
    let env = env.restart().await;
    let officer = env.access.role("Key Vault Secrets Officer").await.unwrap();
    assert_eq!(officer.max_activation_secs, 900);
    assert!(officer.built_in);
    assert_eq!(officer.data_actions.len(), 1);
    assert_eq!(
        env.audited("access.role.create", AuditDecision::Allow)
            .len(),
        1
    );
    assert_eq!(
        env.audited("access.role.delete", AuditDecision::Allow)
            .len(),
        1
    );
    assert_eq!(
        env.audited("access.role.update", AuditDecision::Allow)
            .len(),
        1
    );
}

async fn audit_failure_refuses_changes(mut env: Env) {
    bootstrap(&env).await;
    let eligible = assign(
        &env,
        "req",
        "Key Vault Secrets User",
        "/vaults/prod",
        AssignmentKind::Eligible,
    )
    .await;
    let db = scope("/vaults/prod/secrets/db");
    let before = env
        .access
        .assignments(&AssignmentFilter::default())
        .await
        .unwrap();
    // The audit log goes away: every change and every break-glass use is refused.
    env.log.take().unwrap().shutdown().await.unwrap();
    let err = env
        .access
        .assign(
            &root(),
            "alice",
            "Key Vault Secrets User",
            &db,
            AssignmentKind::Permanent,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::Audit(_)), "{err}");
    assert!(matches!(
        env.access
            .request_elevation(&user("req", &[]), "Key Vault Secrets User", &db, HOUR, "x")
            .await,
        Err(AccessError::Audit(_))
    ));
    assert!(matches!(
        env.access.unassign(&root(), &eligible).await,
        Err(AccessError::Audit(_))
    ));
    assert!(matches!(
        env.access
            .check(
                &user("glass", &[]),
                Operation::DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action"),
                &db
            )
            .await,
        Err(AccessError::Audit(_))
    ));
    // Nothing was written.
    let after = env
        .access
        .assignments(&AssignmentFilter::default())
        .await
        .unwrap();
    assert_eq!(before, after);
    assert!(
        env.access
            .elevation_requests(&RequestFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let d = env
        .access
        .check(
            &user("alice", &[]),
            Operation::DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action"),
            &db,
        )
        .await
        .unwrap();
    assert!(!d.allowed);
}

async fn concurrent_writers_serialize(env: Env) {
    bootstrap(&env).await;
    assign(
        &env,
        "approver-a",
        "Rampart Access Administrator",
        "/",
        AssignmentKind::Permanent,
    )
    .await;
    assign(
        &env,
        "approver-b",
        "Rampart Access Administrator",
        "/",
        AssignmentKind::Permanent,
    )
    .await;
    assign(
        &env,
        "req",
        "Key Vault Reader",
        "/",
        AssignmentKind::Eligible,
    )
    .await;
    let a = Arc::new(env.second_instance(AccessOptions::default()).await);
    let b = Arc::new(env.second_instance(AccessOptions::default()).await);

    // Two writers with stale caches assign concurrently: nothing is lost.
    let mut tasks = Vec::new();
    for (n, access) in [a.clone(), b.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..6 {
                access
                    .assign(
                        &root(),
                        &format!("user-{n}-{i}"),
                        "Key Vault Reader",
                        &Scope::root(),
                        AssignmentKind::Permanent,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = env
        .access
        .assignments(&AssignmentFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .filter(|x| x.principal.starts_with("user-"))
            .count(),
        12
    );

    // Two approvers race on one request: exactly one approval, one active assignment.
    let req = env
        .access
        .request_elevation(
            &user("req", &[]),
            "Key Vault Reader",
            &Scope::root(),
            HOUR,
            "race",
        )
        .await
        .unwrap();
    let (approver_a, approver_b) = (user("approver-a", &[]), user("approver-b", &[]));
    let (ra, rb) = tokio::join!(
        a.approve(&approver_a, &req.id),
        b.approve(&approver_b, &req.id)
    );
    let loser = match (ra, rb) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        other => panic!("exactly one approval must win: {other:?}"),
    };
    assert!(
        matches!(loser, AccessError::RequestNotPending { .. }),
        "{loser}"
    );
    let active = env
        .access
        .assignments(&AssignmentFilter {
            principal: Some("req".into()),
            ..AssignmentFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|x| matches!(x.condition, Condition::ActiveUntil { .. }))
        .count();
    assert_eq!(active, 1);
}
