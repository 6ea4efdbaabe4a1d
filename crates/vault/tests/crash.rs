//! Crash tests: writes through the barrier and the versioned store that were acknowledged
//! survive the writer being killed with SIGKILL, and the store still unseals.
//!
//! The parent initializes a vault (key file), then re-runs this test binary as a child
//! (`crash_child`, selected by `RAMPART_VAULT_CRASH_TARGET`) that unseals and, in a loop, puts
//! a barrier record and creates a version of one object, printing `crash-ack <i> <version>`
//! only after both returned `Ok`. The parent SIGKILLs it after some acks, reads the acks still
//! in the pipe, reopens the store, unseals, and checks every acknowledged write, and that the
//! object's latest pointer names a version that exists.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_vault::{Attributes, Barrier, InitMethod, ObjectKind, VersionedStore};

const TARGET_ENV: &str = "RAMPART_VAULT_CRASH_TARGET";
const KEY_ENV: &str = "RAMPART_VAULT_CRASH_KEY";
const ROUND_ENV: &str = "RAMPART_VAULT_CRASH_ROUND";
const ACK: &str = "crash-ack";
const MAX_CHILD_WRITES: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn parse_target(text: &str) -> common::Target {
    match text.split_once(':') {
        Some(("redb", path)) => common::Target::Redb(path.into()),
        Some(("postgres", table)) => common::Target::Postgres(table.into()),
        _ => panic!("bad target {text:?}"),
    }
}

fn record_key(round: usize, i: usize) -> String {
    format!("crash/{round:02}/{i:06}")
}

fn value(round: usize, i: usize) -> Vec<u8> {
    format!("secret {round} {i};")
        .repeat(1 + (i % 5) * 40)
        .into_bytes()
}

fn object(round: usize) -> String {
    format!("hot-{round}")
}

#[test]
#[ignore = "the writer half of the crash tests, run by them as a child process"]
fn crash_child() {
    let Ok(target) = std::env::var(TARGET_ENV) else {
        return;
    };
    let target = parse_target(&target);
    let key = std::env::var(KEY_ENV).unwrap();
    let round: usize = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    runtime().block_on(async {
        let barrier = Arc::new(Barrier::new(target.open().await));
        barrier.unseal_with_key_file(&key).await.unwrap();
        let store = VersionedStore::new(barrier.clone());
        let mut out = std::io::stdout().lock();
        for i in 0..MAX_CHILD_WRITES {
            barrier
                .put(&record_key(round, i), &value(round, i))
                .await
                .unwrap();
            let v = store
                .create_version(
                    "crash",
                    ObjectKind::Secret,
                    &object(round),
                    &value(round, i),
                    Attributes::default(),
                )
                .await
                .unwrap();
            if writeln!(out, "{ACK} {i} {}", v.version)
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
        }
    });
}

/// Runs a child, SIGKILLs it after `acks` acknowledgements, returns the acknowledged versions.
fn write_until_killed(target: &str, key: &Path, round: usize, acks: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TARGET_ENV, target)
        .env(KEY_ENV, key)
        .env(ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut versions = Vec::new();
    let mut killed = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let Some((_, rest)) = line.split_once(ACK) else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let n: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(n, versions.len(), "acks out of order");
        versions.push(parts.next().unwrap().to_owned());
        if versions.len() == acks && !killed {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        killed,
        "the child exited before being killed ({status}):\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die of SIGKILL: {status}\n{stderr}"
    );
    versions
}

async fn verify(target: &common::Target, key: &Path, acknowledged: &[Vec<String>]) {
    let barrier = Arc::new(Barrier::new(target.open().await));
    barrier.unseal_with_key_file(key).await.unwrap();
    let store = VersionedStore::new(barrier.clone());
    for (round, versions) in acknowledged.iter().enumerate() {
        for (i, version) in versions.iter().enumerate() {
            let got = barrier.get(&record_key(round, i)).await.unwrap();
            assert!(
                got.as_deref().map(Vec::as_slice) == Some(value(round, i).as_slice()),
                "round {round}: acknowledged record {i} lost or damaged after SIGKILL"
            );
            let v = store
                .get_version("crash", ObjectKind::Secret, &object(round), Some(version))
                .await
                .unwrap();
            assert_eq!(
                v.value.as_slice(),
                value(round, i),
                "round {round}: version {i}"
            );
        }
        let meta = store
            .meta("crash", ObjectKind::Secret, &object(round))
            .await
            .unwrap();
        let acks = versions.len() as u64;
        assert!(
            meta.version_count == acks || meta.version_count == acks + 1,
            "round {round}: {} versions counted for {acks} acknowledged",
            meta.version_count
        );
        // The latest pointer names a readable version: the last acknowledged one or the one
        // in flight at the kill.
        let latest = store
            .get_version("crash", ObjectKind::Secret, &object(round), None)
            .await
            .unwrap();
        if meta.version_count == acks {
            assert_eq!(&latest.version, versions.last().unwrap());
        }
    }
    // Still writable.
    barrier.put("after/crash", b"ok").await.unwrap();
}

fn crash_rounds(target_text: &str, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("vault.key");
    let target = parse_target(target_text);
    let rt = runtime();
    rt.block_on(async {
        let barrier = Barrier::new(target.open().await);
        barrier
            .init(InitMethod::KeyFile(key.clone()))
            .await
            .unwrap();
    });
    let mut acknowledged = Vec::new();
    for round in 0..rounds {
        acknowledged.push(write_until_killed(
            target_text,
            &key,
            round,
            60 + round * 23,
        ));
        rt.block_on(verify(&target, &key, &acknowledged));
    }
}

#[test]
fn redb_vault_keeps_acknowledged_writes_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    crash_rounds(&format!("redb:{}", dir.path().join("kv.redb").display()), 3);
}

#[test]
fn postgres_vault_keeps_acknowledged_writes_across_sigkill() {
    let table = unique_table("vaultcrash");
    let rt = runtime();
    rt.block_on(drop_table(&postgres_url(), &table))
        .unwrap_or_else(|e| panic!("PostgreSQL is required: {e}"));
    let result = std::panic::catch_unwind(|| crash_rounds(&format!("postgres:{table}"), 2));
    rt.block_on(drop_table(&postgres_url(), &table)).unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
