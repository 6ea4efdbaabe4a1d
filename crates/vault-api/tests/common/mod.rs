//! Test harness for the vault API: a real barrier (redb file or a PostgreSQL table), a real
//! audit log in a temp dir, an [`Authorizer`] that reads the test's tokens, and a helper that
//! sends a request through the router with `tower::ServiceExt::oneshot`.
//!
//! Test tokens: `allow:<principal>` is allowed everything, `deny:<principal>` is forbidden,
//! anything else is unauthenticated. The authorizer remembers every (action, scope) it saw.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use rampart_audit::{AuditLog, AuditOptions};
use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};
use rampart_vault::{Barrier, InitMethod, VaultOptions, VersionedStore};
use rampart_vault_api::{ApiConfig, AuthDecision, AuthRequest, Authorizer, VaultApi};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Default)]
pub struct TestAuthorizer {
    pub seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Authorizer for TestAuthorizer {
    async fn authorize(&self, r: AuthRequest<'_>) -> AuthDecision {
        self.seen
            .lock()
            .unwrap()
            .push((r.data_action.to_owned(), r.scope.to_owned()));
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
        let barrier = Arc::new(Barrier::new(backend));
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
