//! Token issuance per second: a whole `client_secret_basic` token request (Argon2id
//! verification dominates), the managed-identity request (SHA-256 lookup + signing), and the
//! signing alone, ES256 and RS256. Real redb store and audit log in a temporary directory.
//! Figures go to bench/identity/README.md.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_audit::{AuditLog, AuditOptions};
use rampart_identity::issuer::{
    Claims, ClientSpec, Issuer, IssuerConfig, Kek, ManagedIdentityRequest, SigningAlg, SystemClock,
    TokenRequest,
};
use rampart_storage::{Backend, RedbBackend};

struct Fixture {
    _dir: tempfile::TempDir,
    _log: AuditLog,
    issuer: Issuer,
    basic: String,
    header: String,
}

async fn fixture(alg: SigningAlg) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Backend> = Arc::new(
        RedbBackend::open(&dir.path().join("kv.redb"))
            .await
            .unwrap(),
    );
    let log = AuditLog::open(dir.path().join("audit"), AuditOptions::default()).unwrap();
    let mut config = IssuerConfig::new("https://id.rampart.test");
    config.algorithm = alg;
    let issuer = Issuer::open(
        store,
        Kek::generate().unwrap(),
        config,
        Arc::new(SystemClock),
        log.auditor(),
    )
    .await
    .unwrap();
    let (_, secret) = issuer
        .add_client(
            ClientSpec {
                id: "bench".into(),
                scopes: vec!["https://vault.rampart.test/.default".into()],
                ..ClientSpec::default()
            },
            "bench",
        )
        .await
        .unwrap();
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("bench:{}", secret.unwrap().expose()))
    );
    let (_, header) = issuer.add_workload("app", vec![], "bench").await.unwrap();
    Fixture {
        _dir: dir,
        _log: log,
        issuer,
        basic,
        header: header.expose().to_owned(),
    }
}

fn issuance(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("issue");
    group.throughput(Throughput::Elements(1));
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let f = runtime.block_on(fixture(alg));
        let name = alg.as_str();
        group.bench_function(format!("client_secret_basic_full_request/{name}"), |b| {
            b.to_async(&runtime).iter(|| async {
                let request = TokenRequest::parse(
                    b"grant_type=client_credentials&scope=https%3A%2F%2Fvault.rampart.test%2F.default",
                    Some(&f.basic),
                    None,
                )
                .unwrap();
                f.issuer.token(&request).await.unwrap()
            });
        });
        group.bench_function(format!("managed_identity_full_request/{name}"), |b| {
            b.to_async(&runtime).iter(|| async {
                let request = ManagedIdentityRequest {
                    peer: "127.0.0.1".parse().unwrap(),
                    query: "api-version=2019-08-01&resource=https%3A%2F%2Fvault.rampart.test"
                        .into(),
                    identity_header: Some(f.header.clone()),
                };
                f.issuer.managed_identity_token(&request).await.unwrap()
            });
        });
        group.bench_function(format!("sign_only/{name}"), |b| {
            let claims = Claims {
                subject: "bench",
                audience: "https://vault.rampart.test",
                client_id: "bench",
                oid: "00000000-0000-0000-0000-000000000000",
                scope: None,
            };
            b.to_async(&runtime)
                .iter(|| async { f.issuer.mint_token(&claims).await.unwrap() });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = issuance
}
criterion_main!(benches);
