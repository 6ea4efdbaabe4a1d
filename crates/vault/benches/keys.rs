//! The keys service's sign path, as the API runs it: `Keys::sign` over a redb-backed barrier
//! (one barrier read of the version record, the parsed key from the cache, the signature),
//! next to the bare signature (`KeyMaterial::sign_digest`) for RSA-2048 PS256/RS256 and
//! EC P-256 ES256. Throughput is signatures per second on one core.
//!
//! `cargo bench -p rampart-vault --bench keys -- --warm-up-time 1 --measurement-time 5`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_storage::{Backend, RedbBackend};
use rampart_vault::keys::{Curve, KeyMaterial, KeySpec, KeyType, Keys, NewKey, SignatureAlgorithm};
use rampart_vault::{Barrier, InitMethod, VersionedStore};

fn sign(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(
        rt.block_on(RedbBackend::open(dir.path().join("kv.redb")))
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(backend));
    let keys = Keys::new(VersionedStore::new(barrier.clone()));
    rt.block_on(async {
        barrier
            .init(InitMethod::KeyFile(dir.path().join("vault.key")))
            .await
            .unwrap();
        keys.create(
            "bench",
            "rsa-2048",
            NewKey {
                key_size: Some(2048),
                ..NewKey::new(KeyType::Rsa)
            },
        )
        .await
        .unwrap();
        keys.create(
            "bench",
            "ec-p256",
            NewKey {
                curve: Some(Curve::P256),
                ..NewKey::new(KeyType::Ec)
            },
        )
        .await
        .unwrap();
    });
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"bench");
    let mut group = c.benchmark_group("keys");
    group.throughput(Throughput::Elements(1));
    for (name, alg) in [
        ("rsa-2048", SignatureAlgorithm::Rs256),
        ("rsa-2048", SignatureAlgorithm::Ps256),
        ("ec-p256", SignatureAlgorithm::Es256),
    ] {
        group.bench_function(format!("Keys::sign {name} {}", alg.as_str()), |b| {
            b.iter(|| {
                rt.block_on(keys.sign("bench", name, None, alg, digest.as_ref()))
                    .unwrap()
            })
        });
    }
    for (spec, alg) in [
        (KeySpec::Rsa { bits: 2048 }, SignatureAlgorithm::Rs256),
        (KeySpec::Ec(Curve::P256), SignatureAlgorithm::Es256),
    ] {
        let (material, _) = KeyMaterial::generate(spec).unwrap();
        group.bench_function(format!("sign_digest {spec:?} {}", alg.as_str()), |b| {
            b.iter(|| material.sign_digest(alg, digest.as_ref()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
