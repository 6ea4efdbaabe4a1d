//! Access decision benchmarks: `AccessControl::check` on a warm snapshot (redb store, 1,000
//! principals with two assignments each plus group assignments), allowed and denied, and one
//! audited change (assign + unassign: two durable audit records and two storage commits).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_audit::{AuditLog, AuditOptions};
use rampart_identity::Principal;
use rampart_identity::rbac::{
    AccessControl, AccessOptions, AssignmentKind, Operation, Scope, SystemClock,
};
use rampart_storage::RedbBackend;

const PRINCIPALS: usize = 1000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path().join("audit"), AuditOptions::default()).unwrap();
    let access = rt.block_on(async {
        let backend = Arc::new(RedbBackend::open(dir.path().join("kv.redb")).await.unwrap());
        let access = AccessControl::open(
            backend,
            log.auditor(),
            Arc::new(SystemClock),
            AccessOptions {
                refresh_interval: Duration::from_secs(1),
                ..AccessOptions::default()
            },
        )
        .await
        .unwrap();
        let root = Principal::local("root");
        access.bootstrap(&root, "root").await.unwrap();
        for i in 0..PRINCIPALS {
            let vault = Scope::vault(&format!("v{}", i % 50)).unwrap();
            access
                .assign(
                    &root,
                    &format!("user-{i}"),
                    "Key Vault Secrets User",
                    &vault,
                    AssignmentKind::Permanent,
                )
                .await
                .unwrap();
            access
                .assign(
                    &root,
                    &format!("user-{i}"),
                    "Key Vault Crypto User",
                    &vault,
                    AssignmentKind::Eligible,
                )
                .await
                .unwrap();
        }
        for g in 0..20 {
            access
                .assign(
                    &root,
                    &format!("group:team-{g}"),
                    "Key Vault Reader",
                    &Scope::root(),
                    AssignmentKind::Permanent,
                )
                .await
                .unwrap();
        }
        access
    });
    let mut user = Principal::local("user-517");
    user.groups = (0..5).map(|g| format!("team-{g}")).collect();
    let secret = Scope::secret("v17", "db-password").unwrap();
    let get = Operation::DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action");
    let purge = Operation::DataAction("Microsoft.KeyVault/vaults/secrets/purge/action");

    let mut g = c.benchmark_group("access");
    g.bench_function("check_allowed", |b| {
        b.iter(|| {
            let d = rt.block_on(access.check(&user, get, &secret)).unwrap();
            assert!(d.allowed);
        });
    });
    g.bench_function("check_denied", |b| {
        b.iter(|| {
            let d = rt.block_on(access.check(&user, purge, &secret)).unwrap();
            assert!(!d.allowed);
        });
    });
    g.sample_size(20);
    let root = Principal::local("root");
    g.bench_function("assign_and_unassign", |b| {
        b.iter(|| {
            rt.block_on(async {
                let a = access
                    .assign(
                        &root,
                        "bench",
                        "Key Vault Reader",
                        &secret,
                        AssignmentKind::Permanent,
                    )
                    .await
                    .unwrap();
                access.unassign(&root, &a.id).await.unwrap();
            });
        });
    });
    g.finish();
    drop(access);
    rt.block_on(log.shutdown()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
