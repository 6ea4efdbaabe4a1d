//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use rampart_audit::{AuditLog, AuditOptions, Decision, Record, Timestamp};

pub fn opts() -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_secs(3600),
        ..AuditOptions::default()
    }
}

pub fn rec(i: u64) -> Record {
    let decision = match i % 5 {
        0 => Decision::Deny,
        4 => Decision::Error,
        _ => Decision::Allow,
    };
    Record::new(
        if i.is_multiple_of(2) {
            "vault"
        } else {
            "gateway"
        },
        format!("op.{}", i % 7),
        decision,
    )
    .at(Timestamp::from_unix_nanos(1_767_225_600_000_000_000 + i))
    .actor(format!("user-{}", i % 3), "jwt")
    .resource(format!("secrets/s{i}"))
    .reason(if decision == Decision::Allow {
        ""
    } else {
        "policy p1"
    })
    .request_id(format!("req-{i}"))
    .source("192.0.2.7:4000")
    .detail("n", i.to_string())
}

/// Writes `n` records in batches of `per_checkpoint`, with a checkpoint after each batch,
/// then shuts the log down (final checkpoint).
pub async fn build(dir: &Path, n: u64, per_checkpoint: u64) -> Vec<String> {
    let log = AuditLog::open(dir, opts()).unwrap();
    let a = log.auditor();
    let mut notes = Vec::new();
    for i in 0..n {
        a.record(rec(i)).await.unwrap();
        if (i + 1) % per_checkpoint == 0 {
            notes.push(a.checkpoint().await.unwrap().unwrap());
        }
    }
    if let Some(n) = log.shutdown().await.unwrap()
        && notes.last() != Some(&n)
    {
        notes.push(n);
    }
    notes
}
