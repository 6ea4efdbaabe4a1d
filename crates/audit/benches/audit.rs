//! Audit log benchmarks: durable appends per second (group commit, many concurrent
//! appenders) and verification speed over a 1,000,000-record log (built once, kept in
//! `CARGO_TARGET_TMPDIR`, on the same disk as the target directory, not a tmpfs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rampart_audit::{AuditLog, AuditOptions, Decision, Record, VerifyOptions, verify};

const VERIFY_RECORDS: u64 = 1_000_000;

fn record(i: u64) -> Record {
    Record::new(
        "gateway",
        "request",
        if i.is_multiple_of(10) {
            Decision::Deny
        } else {
            Decision::Allow
        },
    )
    .actor(format!("user-{}", i % 1000), "jwt")
    .resource(format!("/api/v1/items/{i}"))
    .reason(if i.is_multiple_of(10) {
        "rate limit"
    } else {
        ""
    })
    .request_id(format!("01J{i:023}"))
    .source("203.0.113.9:51234")
    .detail("method", "GET")
    .detail("status", "200")
}

fn opts() -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_secs(1),
        ..AuditOptions::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("append_durable");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for &appenders in &[64u64, 1024] {
        let per = 20_000 / appenders;
        let total = per * appenders;
        g.throughput(Throughput::Elements(total));
        g.bench_with_input(
            BenchmarkId::new("concurrent_appenders", appenders),
            &appenders,
            |b, &appenders| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tmp("bench-append");
                        let _ = std::fs::remove_dir_all(&dir);
                        spent += rt.block_on(async {
                            let log = AuditLog::open(&dir, opts()).unwrap();
                            let start = Instant::now();
                            let tasks: Vec<_> = (0..appenders)
                                .map(|t| {
                                    let a = log.auditor();
                                    tokio::spawn(async move {
                                        for i in 0..per {
                                            a.record(record(t * per + i)).await.unwrap();
                                        }
                                    })
                                })
                                .collect();
                            for t in tasks {
                                t.await.unwrap();
                            }
                            let took = start.elapsed();
                            log.shutdown().await.unwrap();
                            took
                        });
                    }
                    spent
                });
            },
        );
    }
    // Routine records: queued without waiting, made durable by one flush at the end.
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("routine_then_flush", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let dir = tmp("bench-routine");
                let _ = std::fs::remove_dir_all(&dir);
                spent += rt.block_on(async {
                    let log = AuditLog::open(&dir, opts()).unwrap();
                    let a = log.auditor();
                    let start = Instant::now();
                    for i in 0..100_000 {
                        a.record_routine(record(i));
                    }
                    a.flush().await.unwrap();
                    let took = start.elapsed();
                    log.shutdown().await.unwrap();
                    took
                });
            }
            spent
        });
    });
    g.finish();
}

/// Builds (once) a log of `VERIFY_RECORDS` records.
fn big_log() -> PathBuf {
    let dir = tmp("bench-verify-1m");
    let marker = dir.join("complete");
    if marker.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(&dir, opts()).unwrap();
        let a = log.auditor();
        let start = Instant::now();
        for i in 0..VERIFY_RECORDS {
            a.record_routine(record(i));
            if i % 100_000 == 99_999 {
                a.flush().await.unwrap();
            }
        }
        assert_eq!(a.flush().await.unwrap(), VERIFY_RECORDS);
        eprintln!(
            "built a {VERIFY_RECORDS}-record log in {:?}",
            start.elapsed()
        );
        log.shutdown().await.unwrap();
    });
    std::fs::write(&marker, b"").unwrap();
    dir
}

fn size_of(dir: &Path) -> u64 {
    rampart_audit::segment::list(dir)
        .unwrap()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum()
}

fn verification(c: &mut Criterion) {
    let dir = big_log();
    eprintln!("verify: {} MiB of segments", size_of(&dir) >> 20);
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(VERIFY_RECORDS));
    g.bench_function("records_1m", |b| {
        b.iter(|| {
            let r = verify(&dir, &VerifyOptions::default()).unwrap();
            assert!(r.is_ok() && r.records == VERIFY_RECORDS, "{:?}", r.findings);
        });
    });
    g.finish();
}

criterion_group!(benches, append, verification);
criterion_main!(benches);
