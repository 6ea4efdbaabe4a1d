//! SIGKILL while appending: after restart the log opens (the torn tail is cut), verifies,
//! and every record whose durability was acknowledged is present with its content.
//!
//! The child is this test binary re-executed with `RAMPART_AUDIT_CRASH_DIR` set: it runs
//! `crash_child`, which appends from several threads and prints `acked <seq> <tag>` for every
//! acknowledged record. The parent SIGKILLs it mid-stream, three times over the same log.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_audit::{AuditLog, AuditOptions, Decision, Record, VerifyOptions, reader, verify};

const ENV_DIR: &str = "RAMPART_AUDIT_CRASH_DIR";
const ENV_ROUND: &str = "RAMPART_AUDIT_CRASH_ROUND";

fn options() -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_millis(20),
        segment_max_bytes: 64 * 1024,
        ..AuditOptions::default()
    }
}

/// Runs only as the child process.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let round = std::env::var(ENV_ROUND).unwrap();
    let log = AuditLog::open(&dir, options()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let a = log.auditor();
            let round = round.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let tag = format!("{round}-{t}-{i}");
                    let r =
                        Record::new("crash", "append", Decision::Allow).detail("tag", tag.clone());
                    // Routine records in between, never acknowledged.
                    a.record_routine(Record::new("crash", "routine", Decision::Allow));
                    let receipt = a.record_blocking(r).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {} {tag}", receipt.seq).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn run_child(dir: &Path, round: u32, acked: &mut HashMap<u64, String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let target = 1500 + 700 * round as usize;
    let mut n = 0;
    while n < target && started.elapsed() < Duration::from_secs(60) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("acked ") {
            let (seq, tag) = rest.split_once(' ').unwrap();
            acked.insert(seq.parse().unwrap(), tag.to_owned());
            n += 1;
        }
    }
    // SIGKILL (Child::kill sends SIGKILL on Unix) while the child keeps appending.
    child.kill().unwrap();
    // Acks printed before the kill landed are acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("acked ") {
            let (seq, tag) = rest.split_once(' ').unwrap();
            acked.insert(seq.parse().unwrap(), tag.to_owned());
        }
    }
    child.wait().unwrap();
    assert!(n >= target, "child acknowledged only {n} records");
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_record() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("audit");
    let mut acked = HashMap::new();
    for round in 0..3 {
        run_child(&dir, round, &mut acked);
        // Reopen: must succeed (torn tail cut, if any) and the log must verify.
        let log = AuditLog::open(&dir, options()).unwrap();
        log.shutdown().await.unwrap();
        let report = verify(&dir, &VerifyOptions::default()).unwrap();
        assert!(
            report.findings.is_empty(),
            "round {round}: {:?}",
            report.findings
        );
        for (seq, tag) in &acked {
            let (e, _) = reader::get(&dir, *seq).unwrap();
            assert_eq!(e.record.details.get("tag"), Some(tag), "record {seq}");
        }
    }
    assert!(acked.len() >= 1500 + 2200 + 2900);
}
