//! Test harness for the vault API: a real barrier (redb file or a PostgreSQL table), a real
//! audit log in a temp dir, an [`Authorizer`] that reads the test's tokens, and a helper that
//! sends a request through the router with `tower::ServiceExt::oneshot`.
//!
//! Test tokens: `allow:<principal>` is allowed everything, `deny:<principal>` is forbidden,
//! `rbac:<principal>` is decided by the real access model (`rampart_identity::rbac`, built-in
//! roles assigned with [`Harness::assign_role`] after [`Harness::enable_rbac`]), anything else
//! is unauthenticated. The authorizer remembers every (action, scope) it saw.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use rampart_audit::{AuditLog, AuditOptions};
use rampart_identity::Principal;
use rampart_identity::rbac::{
    AccessControl, AccessOptions, AssignmentKind, Operation, RoleVerdict, SYSTEM_ACTOR, Scope,
    SystemClock, builtin_roles,
};
use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};
use rampart_vault::{Barrier, InitMethod, VaultOptions, VersionedStore};
use rampart_vault_api::{ApiConfig, AuthDecision, AuthRequest, Authorizer, VaultApi};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Default)]
pub struct TestAuthorizer {
    pub seen: Mutex<Vec<(String, String)>>,
    /// The access model deciding `rbac:` tokens.
    pub rbac: OnceLock<Arc<AccessControl>>,
}

#[async_trait]
impl Authorizer for TestAuthorizer {
    async fn authorize(&self, r: AuthRequest<'_>) -> AuthDecision {
        self.seen
            .lock()
            .unwrap()
            .push((r.data_action.to_owned(), r.scope.to_owned()));
        if let Some(p) = r.token.strip_prefix("rbac:") {
            let access = self.rbac.get().expect("Harness::enable_rbac first");
            let scope = Scope::parse(r.scope).unwrap();
            return match access
                .check_data_action(&Principal::local(p), r.data_action, &scope)
                .await
            {
                Ok(d) if d.allowed => AuthDecision::Allow {
                    principal: p.to_owned(),
                },
                Ok(d) => AuthDecision::Forbidden {
                    principal: p.to_owned(),
                    reason: d.reason.to_string(),
                },
                Err(e) => panic!("access check failed: {e}"),
            };
        }
        if let Some(p) = r.token.strip_prefix("allow:") {
            AuthDecision::Allow {
                principal: p.to_owned(),
            }
        } else if let Some(p) = r.token.strip_prefix("deny:") {
            AuthDecision::Forbidden {
                principal: p.to_owned(),
                reason: "no role assignment grants the action".into(),
            }
        } else {
            AuthDecision::Unauthenticated {
                reason: "token signature does not verify".into(),
            }
        }
    }
}

pub enum Store {
    Redb,
    Postgres,
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub api: VaultApi,
    pub barrier: Arc<Barrier>,
    pub backend: Arc<dyn Backend>,
    pub authz: Arc<TestAuthorizer>,
    pub log: Option<AuditLog>,
    table: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Harness {
    pub async fn new(store: Store, config: ApiConfig) -> Self {
        Self::with_geography(store, config, "eu").await
    }

    pub async fn with_geography(store: Store, config: ApiConfig, geography: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (backend, table): (Arc<dyn Backend>, _) = match store {
            Store::Redb => (
                Arc::new(RedbBackend::open(dir.path().join("kv.redb")).await.unwrap()),
                None,
            ),
            Store::Postgres => {
                let table = unique_table("vaultapi");
                drop_table(&postgres_url(), &table).await.unwrap();
                let backend = PostgresBackend::connect(
                    &postgres_url(),
                    PostgresOptions {
                        table: table.clone(),
                        pool_size: 4,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required: {e}"));
                (Arc::new(backend), Some(table))
            }
        };
        let barrier = Arc::new(Barrier::new(backend.clone()));
        barrier
            .init(InitMethod::KeyFile(dir.path().join("unseal.key")))
            .await
            .unwrap();
        let store = VersionedStore::new(barrier.clone());
        let log = AuditLog::open(dir.path().join("audit"), AuditOptions::default()).unwrap();
        let authz = Arc::new(TestAuthorizer::default());
        let default_vault = config.default_vault.clone();
        let api = VaultApi::new(config, store, authz.clone(), log.auditor());
        api.registry()
            .create(
                &default_vault,
                &VaultOptions {
                    geography: geography.into(),
                    ..VaultOptions::default()
                },
            )
            .await
            .unwrap();
        Self {
            dir,
            api,
            barrier,
            backend,
            authz,
            log: Some(log),
            table,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        host: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send_raw(method, host, uri, token, body.map(|b| b.to_string()))
            .await
    }

    pub async fn send_raw(
        &self,
        method: Method,
        host: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.api.router().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// As `allow:alice` on the default vault (host 127.0.0.1:8446).
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        self.send(method, "127.0.0.1:8446", uri, Some("allow:alice"), body)
            .await
    }

    /// Opens the real access model on the harness's storage (with a first access
    /// administrator, `access-admin`); `rbac:<principal>` tokens are then decided by it.
    pub async fn enable_rbac(&self) {
        let auditor = self.log.as_ref().unwrap().auditor();
        let access = AccessControl::open(
            self.backend.clone(),
            auditor,
            Arc::new(SystemClock),
            AccessOptions::default(),
        )
        .await
        .unwrap();
        access
            .bootstrap(&Principal::local(SYSTEM_ACTOR), "access-admin")
            .await
            .unwrap();
        assert!(
            self.authz.rbac.set(Arc::new(access)).is_ok(),
            "enabled twice"
        );
    }

    /// Assigns the built-in role `role` to `principal` at `scope` (e.g. `/vaults/default`).
    pub async fn assign_role(&self, principal: &str, role: &str, scope: &str) {
        let access = self.authz.rbac.get().expect("Harness::enable_rbac first");
        access
            .assign(
                &Principal::local("access-admin"),
                principal,
                role,
                &Scope::parse(scope).unwrap(),
                AssignmentKind::Permanent,
            )
            .await
            .unwrap();
    }

    /// Shuts the audit log down and returns every byte it wrote.
    pub async fn audit_bytes(&mut self) -> Vec<u8> {
        if let Some(log) = self.log.take() {
            log.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        for entry in walk(&self.dir.path().join("audit")) {
            out.extend(std::fs::read(entry).unwrap());
        }
        out
    }

    pub async fn cleanup(self) {
        if let Some(table) = &self.table {
            drop_table(&postgres_url(), table).await.unwrap();
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The data actions of `actions` that the built-in role `role` grants, by evaluating the
/// role definition alone (no assignment, no scope).
pub fn granted_by(role: &str, actions: &[&'static str]) -> Vec<&'static str> {
    let roles = builtin_roles();
    let def = roles
        .iter()
        .find(|r| r.name == role)
        .unwrap_or_else(|| panic!("built-in role {role:?}"));
    actions
        .iter()
        .copied()
        .filter(|a| {
            matches!(
                def.evaluate(Operation::DataAction(a)),
                RoleVerdict::Allowed(_)
            )
        })
        .collect()
}

/// base64url without padding, as Azure writes binary values.
pub fn b64(bytes: &[u8]) -> String {
    rampart_vault::keys::B64::new(bytes.to_vec()).encode()
}

/// The version at the end of an object id (`kid`, `id`).
pub fn version_of(id: &Value) -> String {
    id.as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

/// A fresh EC P-256 private key as a JWK with sign/verify, made with aws-lc-rs (for imports).
pub fn ec_p256_private_jwk() -> Value {
    use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
    use aws_lc_rs::signature::{self, KeyPair as _};
    let pair =
        signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let d: EcPrivateKeyBin = pair.private_key().as_be_bytes().unwrap();
    let point = pair.public_key().as_ref();
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        "d": b64(d.as_ref()), "key_ops": ["sign", "verify"],
    })
}

/// The default config with every throttle limit raised far above what a test sends (for
/// suites that make many objects quickly; throttling has its own tests).
pub fn unthrottled() -> ApiConfig {
    let mut config = ApiConfig::default();
    config.throttle.all = 1_000_000;
    for limit in config.throttle.classes.values_mut() {
        *limit = 1_000_000;
    }
    config
}
