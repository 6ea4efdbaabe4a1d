//! The writing side: durability, group commit, routine policy, redaction, reopen, rotation,
//! fail closed, locking and rollback refusal.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use common::{opts, rec};
use rampart_audit::reader::{self, scan};
use rampart_audit::{
    AuditLog, AuditOptions, Decision, ErrorKind, Record, RoutinePolicy, VerifyOptions, segment,
    verify,
};

#[tokio::test]
async fn records_are_durable_readable_and_verify() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    for i in 0..10 {
        let r = a.record(rec(i)).await.unwrap();
        assert_eq!(r.seq, i);
    }
    let note = log.shutdown().await.unwrap().unwrap();
    assert!(note.contains("\n10\n"), "{note}");
    let (e, loc) = reader::get(d.path(), 3).unwrap();
    assert_eq!(e.seq, 3);
    assert_eq!(e.record, rec(3));
    assert_eq!(loc.segment, 0);
    let report = verify(d.path(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.records, 10);
    assert_eq!(report.newest_checkpoint, Some(10));
    assert!(matches!(
        reader::get(d.path(), 10).unwrap_err().kind(),
        ErrorKind::NotFound { id: 10, size: 10 }
    ));
}

#[tokio::test]
async fn a_burst_costs_few_fsyncs() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    let mut tasks = Vec::new();
    for t in 0..200u64 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                a.record(rec(t * 100 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = a.stats();
    assert_eq!(stats.records, 5000);
    assert!(
        stats.batches < 1000,
        "{} fsyncs for 5000 records",
        stats.batches
    );
    log.shutdown().await.unwrap();
    let report = verify(d.path(), &VerifyOptions::default()).unwrap();
    assert!(
        report.is_ok() && report.records == 5000,
        "{:?}",
        report.findings
    );
}

#[tokio::test]
async fn routine_records_are_sampled_but_denies_never() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(
        d.path(),
        AuditOptions {
            routine: RoutinePolicy::Sample(0.1),
            ..opts()
        },
    )
    .unwrap();
    let a = log.auditor();
    for i in 0..1000 {
        a.record_routine(
            Record::new("gateway", "request", Decision::Allow).detail("i", i.to_string()),
        );
        a.record_routine(
            Record::new("gateway", "request", Decision::Deny).detail("i", i.to_string()),
        );
    }
    let size = a.flush().await.unwrap();
    let mut allow = 0;
    let mut deny = 0;
    scan(d.path(), 0, |e| {
        match e.decode()?.record.decision {
            Decision::Allow => allow += 1,
            _ => deny += 1,
        }
        Ok(true)
    })
    .unwrap();
    assert_eq!(deny, 1000);
    assert!((50..200).contains(&allow), "{allow} of 1000 sampled at 10%");
    assert_eq!(size, allow + deny);
    assert_eq!(a.stats().sampled_out, 1000 - allow);
    log.shutdown().await.unwrap();

    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(
        d.path(),
        AuditOptions {
            routine: RoutinePolicy::None,
            ..opts()
        },
    )
    .unwrap();
    let a = log.auditor();
    a.record_routine(Record::new("gateway", "request", Decision::Allow));
    a.record_routine(Record::new("gateway", "request", Decision::Error));
    assert_eq!(a.flush().await.unwrap(), 1);
    log.shutdown().await.unwrap();
}

/// Records on disk (the writer's view is not asked: no flush, no awaited record).
fn records_on_disk(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    scan(dir, 0, |_| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    n
}

#[tokio::test]
async fn routine_records_reach_disk_without_waking_anyone() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    // An idle writer is woken by a routine record; a busy one picks the stream up on its
    // own. Nobody flushes or awaits a record here: each round must still reach the disk.
    let mut written = 0;
    for round in 0..3u64 {
        for i in 0..500 {
            a.record_routine(rec(round * 1000 + i));
        }
        written += 500;
        let mut polls = 0;
        while records_on_disk(d.path()) < written {
            polls += 1;
            assert!(polls < 6000, "routine records never written: round {round}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(records_on_disk(d.path()), written);
    }
    // And whatever is still queued at shutdown is written before the final checkpoint.
    for i in 0..2000 {
        a.record_routine(rec(10_000 + i));
    }
    let note = log.shutdown().await.unwrap().unwrap();
    assert!(note.contains("\n3500\n"), "{note}");
    assert_eq!(records_on_disk(d.path()), 3500);
    assert_eq!(a.stats().dropped_routine, 0);
}

#[tokio::test]
async fn sensitive_values_are_redacted() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    let r = Record::new("identity", "token.issue", Decision::Allow)
        .actor("svc", "client-credentials")
        .sensitive_detail("token", "eyJhbGciOi.SECRET-TOKEN.sig")
        .sensitive_detail("password", "hunter2");
    a.record(r).await.unwrap();
    log.shutdown().await.unwrap();
    let raw: Vec<u8> = fs::read(d.path().join(segment::file_name(0))).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("SECRET-TOKEN") && !text.contains("hunter2"));
    let (e, _) = reader::get(d.path(), 0).unwrap();
    let red = rampart_audit::redactor(d.path()).unwrap();
    assert!(red.matches(&e.record.details["token"], "eyJhbGciOi.SECRET-TOKEN.sig"));
    assert!(red.matches(&e.record.details["password"], "hunter2"));
    assert!(!red.matches(&e.record.details["password"], "hunter3"));
}

#[tokio::test]
async fn reopen_continues_the_log_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let small = AuditOptions {
        segment_max_bytes: 4096,
        ..opts()
    };
    for round in 0..3u64 {
        let log = AuditLog::open(d.path(), small.clone()).unwrap();
        let a = log.auditor();
        for i in 0..40 {
            let r = a.record(rec(round * 40 + i)).await.unwrap();
            assert_eq!(r.seq, round * 40 + i);
        }
        log.shutdown().await.unwrap();
    }
    let segs = segment::list(d.path()).unwrap();
    assert!(segs.len() > 5, "{} segments", segs.len());
    let report = verify(d.path(), &VerifyOptions::default()).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.records, 120);
    assert_eq!(report.checkpoints, 3);
    let mut n = 0;
    scan(d.path(), 0, |e| {
        assert_eq!(e.decode()?.record, rec(e.index));
        n += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(n, 120);
}

#[tokio::test]
async fn fails_closed_when_a_write_fails() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(
        d.path(),
        AuditOptions {
            segment_max_bytes: 4096,
            ..opts()
        },
    )
    .unwrap();
    let a = log.auditor();
    let mut n = 0;
    // Fill the first segment to just below rotation.
    loop {
        let len = fs::metadata(d.path().join(segment::file_name(0)))
            .unwrap()
            .len();
        if len > 3300 {
            break;
        }
        a.record(rec(n)).await.unwrap();
        n += 1;
    }
    // Block the next segment: a directory where the writer must create a file. This is a
    // real failure mode (root ignores permissions, not this).
    for i in n..n + 10 {
        fs::create_dir(d.path().join(segment::file_name(i))).unwrap();
    }
    let mut refused = None;
    for i in 0..10 {
        match a.record(rec(n + i)).await {
            Ok(_) => continue,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a record was accepted although its segment cannot be created");
    assert!(matches!(e.kind(), ErrorKind::Failed { .. }), "{e}");
    // Everything after is refused too, durable or routine.
    let e = a.record(rec(999)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Failed { .. }), "{e}");
    assert!(a.stats().failed);
    assert!(a.flush().await.is_err());
    assert!(log.shutdown().await.is_err());
    // Closed handles refuse.
    assert!(matches!(
        a.record(rec(1)).await.unwrap_err().kind(),
        ErrorKind::Closed | ErrorKind::Failed { .. }
    ));
}

#[tokio::test]
async fn open_fails_when_the_directory_is_a_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("audit");
    fs::write(&p, b"x").unwrap();
    assert!(AuditLog::open(&p, opts()).is_err());
}

#[tokio::test]
async fn closed_log_refuses_records() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    log.shutdown().await.unwrap();
    assert!(matches!(
        a.record(rec(0)).await.unwrap_err().kind(),
        ErrorKind::Closed
    ));
}

#[tokio::test]
async fn a_second_writer_is_locked_out() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let e = AuditLog::open(d.path(), opts()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Locked { .. }), "{e}");
    log.shutdown().await.unwrap();
    AuditLog::open(d.path(), opts())
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}

#[tokio::test]
async fn periodic_checkpoints_and_witness() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("audit");
    let witness = d.path().join("witness").join("audit.ckpt");
    let o = AuditOptions {
        checkpoint_interval: Duration::from_millis(50),
        witness: Some(witness.clone()),
        ..opts()
    };
    let log = AuditLog::open(&dir, o.clone()).unwrap();
    let a = Arc::new(log.auditor());
    a.record(rec(0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = fs::read_to_string(&witness).unwrap();
    assert!(w.contains("\n1\n"), "{w}");
    a.record(rec(1)).await.unwrap();
    log.shutdown().await.unwrap();
    assert!(fs::read_to_string(&witness).unwrap().contains("\n2\n"));

    // Roll the log back to one record (truncate, delete the newer checkpoint): open refuses.
    let seg = dir.join(segment::file_name(0));
    let data = fs::read(&seg).unwrap();
    let mut first_end = 0;
    for f in segment::Frames::new(&data) {
        if let segment::Frame::Record {
            offset, payload, ..
        } = f
        {
            first_end = offset as usize + 8 + payload.len();
            break;
        }
    }
    fs::write(&seg, &data[..first_end]).unwrap();
    fs::remove_file(
        dir.join("checkpoints")
            .join(rampart_audit::checkpoint::file_name(2)),
    )
    .unwrap();
    let e = AuditLog::open(&dir, o.clone()).unwrap_err();
    assert!(e.to_string().contains("witness"), "{e}");
    let report = verify(
        &dir,
        &VerifyOptions {
            witness: Some(witness),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == rampart_audit::FindingKind::RolledBack),
        "{:?}",
        report.findings
    );
}

#[tokio::test]
async fn oversized_records_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), opts()).unwrap();
    let a = log.auditor();
    let big = Record::new("x", "y", Decision::Allow).detail("big", "a".repeat(2 << 20));
    assert!(matches!(
        a.record(big).await.unwrap_err().kind(),
        ErrorKind::RecordTooLarge { .. }
    ));
    a.record(rec(0)).await.unwrap();
    log.shutdown().await.unwrap();
}
