//! What the barrier costs on top of redb: a raw `get` against a barrier `get` (unwrap the data
//! key, decrypt the value), a versioned-store `get_version` of the latest version (two barrier
//! reads), and a durable barrier `put` (fsync-bound).
//!
//! `cargo bench -p rampart-vault --bench barrier -- --warm-up-time 1 --measurement-time 5`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_storage::{Backend, RedbBackend};
use rampart_vault::{Attributes, Barrier, InitMethod, ObjectKind, VersionedStore};

const KEYS: usize = 1000;
const VALUE_LEN: usize = 256;

fn barrier(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(
        rt.block_on(RedbBackend::open(dir.path().join("kv.redb")))
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(backend.clone()));
    let store = VersionedStore::new(barrier.clone());
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench/{i:06}")).collect();
    let names: Vec<String> = (0..KEYS).map(|i| format!("secret-{i:06}")).collect();
    let value = vec![0x5A; VALUE_LEN];
    rt.block_on(async {
        barrier
            .init(InitMethod::KeyFile(dir.path().join("vault.key")))
            .await
            .unwrap();
        for (key, name) in keys.iter().zip(&names) {
            barrier.put(key, &value).await.unwrap();
            store
                .create_version(
                    "bench",
                    ObjectKind::Secret,
                    name,
                    &value,
                    Attributes::default(),
                )
                .await
                .unwrap();
        }
    });
    let raw_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| format!("vault/data/{k}").into_bytes())
        .collect();

    let mut group = c.benchmark_group("barrier-redb");
    group.throughput(Throughput::Elements(1));
    let mut n = 0;
    group.bench_function("raw-get", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 7) % KEYS;
            let (backend, key) = (&backend, &raw_keys[n]);
            async move { assert!(backend.get(key).await.unwrap().is_some()) }
        });
    });
    let mut n = 0;
    group.bench_function("get", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 7) % KEYS;
            let (barrier, key) = (&barrier, &keys[n]);
            async move { assert!(barrier.get(key).await.unwrap().is_some()) }
        });
    });
    let mut n = 0;
    group.bench_function("store-get-latest", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 7) % KEYS;
            let (store, name) = (&store, &names[n]);
            async move {
                let v = store
                    .get_version("bench", ObjectKind::Secret, name, None)
                    .await
                    .unwrap();
                assert_eq!(v.value.len(), VALUE_LEN);
            }
        });
    });
    let mut n = 0;
    group.bench_function("put", |b| {
        b.to_async(&rt).iter(|| {
            n = (n + 1) % KEYS;
            let (barrier, key, value) = (&barrier, &keys[n], &value);
            async move { barrier.put(key, value).await.unwrap() }
        });
    });
    group.finish();
}

criterion_group!(benches, barrier);
criterion_main!(benches);
