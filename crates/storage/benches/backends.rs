//! Single-key durable `put` and `get` on redb and PostgreSQL.
//!
//! Each `put` commits (and fsyncs) on its own; each `get` reads one of 1,000 stored keys. The
//! PostgreSQL server is `$RAMPART_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); its bench table is dropped afterwards.
//!
//! `cargo bench -p rampart-storage --bench backends -- --warm-up-time 1 --measurement-time 5`

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};

const KEYS: usize = 1000;
const VALUE_LEN: usize = 256;

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("bench/key/{i:06}").into_bytes())
        .collect()
}

fn bench_backend(
    c: &mut Criterion,
    name: &str,
    rt: &tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
) {
    let keys = keys();
    let value = vec![0x5A; VALUE_LEN];
    rt.block_on(async {
        for key in &keys {
            backend.put(key, &value).await.unwrap();
        }
    });

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let mut n = 0;
    group.bench_function("put", |b| {
        b.to_async(rt).iter(|| {
            n = (n + 1) % KEYS;
            let (backend, key, value) = (&backend, &keys[n], &value);
            async move { backend.put(key, value).await.unwrap() }
        });
    });
    let mut n = 0;
    group.bench_function("get", |b| {
        b.to_async(rt).iter(|| {
            n = (n + 7) % KEYS;
            let (backend, key) = (&backend, &keys[n]);
            async move { assert!(backend.get(key).await.unwrap().is_some()) }
        });
    });
    group.finish();
}

fn backends(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let redb = rt
        .block_on(RedbBackend::open(dir.path().join("bench.redb")))
        .unwrap();
    bench_backend(c, "redb", &rt, Arc::new(redb));

    let table = unique_table("bench");
    let postgres = rt
        .block_on(PostgresBackend::connect(
            &postgres_url(),
            PostgresOptions {
                table: table.clone(),
                pool_size: 4,
            },
        ))
        .unwrap();
    bench_backend(c, "postgres", &rt, Arc::new(postgres));
    rt.block_on(drop_table(&postgres_url(), &table)).unwrap();
}

criterion_group!(benches, backends);
criterion_main!(benches);
