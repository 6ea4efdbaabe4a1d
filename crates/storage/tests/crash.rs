//! Crash tests: a write acknowledged with `Ok` survives the writer being killed with SIGKILL.
//!
//! Each test re-runs this test binary as a child (`crash_child`, selected by
//! `RAMPART_STORAGE_CRASH_CHILD`) that writes keys in a loop and prints `crash-ack <n>` only after
//! `put` returned `Ok`. The parent SIGKILLs it after a few hundred acks, reads the acks still in
//! the pipe, reopens the store and checks that every acknowledged key holds its value and that
//! at most the one in-flight write beyond them landed.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};

/// Selects child mode: `redb:<path>` or `postgres:<table>`.
const CHILD_ENV: &str = "RAMPART_STORAGE_CRASH_CHILD";
/// The round number, which prefixes the child's keys.
const ROUND_ENV: &str = "RAMPART_STORAGE_CRASH_ROUND";
/// What the child prints before the number of each acknowledged write.
const ACK: &str = "crash-ack";
/// A child stops by itself after this many writes (if its parent never kills it).
const MAX_CHILD_WRITES: usize = 100_000;

fn key(round: usize, i: usize) -> Vec<u8> {
    format!("crash/{round:02}/{i:06}").into_bytes()
}

/// Values of varying size (up to ~6 KB) so commits span several pages.
fn value(round: usize, i: usize) -> Vec<u8> {
    format!("value {round} {i};")
        .repeat(1 + (i % 7) * 60)
        .into_bytes()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(target: &str) -> Box<dyn Backend> {
    if let Some(path) = target.strip_prefix("redb:") {
        Box::new(RedbBackend::open(path).await.unwrap())
    } else if let Some(table) = target.strip_prefix("postgres:") {
        let options = PostgresOptions {
            table: table.to_owned(),
            pool_size: 2,
        };
        Box::new(
            PostgresBackend::connect(&postgres_url(), options)
                .await
                .unwrap(),
        )
    } else {
        panic!("bad {CHILD_ENV} {target:?}")
    }
}

/// The child: writes until killed, acknowledging each write on stdout after it returned `Ok`.
#[test]
#[ignore = "the writer half of the crash tests, run by them as a child process"]
fn crash_child() {
    let Ok(target) = std::env::var(CHILD_ENV) else {
        return; // run by hand with --ignored: nothing to do
    };
    let round: usize = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    runtime().block_on(async {
        let backend = open(&target).await;
        let mut out = std::io::stdout().lock();
        for i in 0..MAX_CHILD_WRITES {
            backend.put(&key(round, i), &value(round, i)).await.unwrap();
            if writeln!(out, "{ACK} {i}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return; // the parent is gone
            }
        }
    });
}

/// Runs a child writing round `round` to `target`, SIGKILLs it after `acks` acknowledgements,
/// and returns how many writes it acknowledged in total.
fn write_until_killed(target: &str, round: usize, acks: usize) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, target)
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

    let mut acknowledged = 0;
    let mut killed = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The harness prints "test crash_child ... " without a newline before the first ack.
        let Some((_, n)) = line.split_once(ACK) else {
            continue; // the test harness's own output
        };
        assert_eq!(
            n.trim().parse::<usize>().unwrap(),
            acknowledged,
            "acks out of order"
        );
        acknowledged += 1;
        if acknowledged == acks && !killed {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
        // Keep reading: acks written before the kill are still in the pipe and count too.
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        killed,
        "the child exited after {acknowledged} acks, before being killed ({status}):\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die of SIGKILL: {status}\n{stderr}"
    );
    acknowledged
}

/// Checks that every acknowledged key of every round holds its value and that nothing but the
/// one write in flight at the kill landed beyond them.
async fn verify(backend: &dyn Backend, acknowledged: &[usize]) {
    for (round, &acks) in acknowledged.iter().enumerate() {
        for i in 0..acks {
            let got = backend.get(&key(round, i)).await.unwrap();
            assert!(
                got.as_deref() == Some(value(round, i).as_slice()),
                "round {round}: acknowledged write {i} was lost or damaged after SIGKILL"
            );
        }
        let prefix = format!("crash/{round:02}/").into_bytes();
        let mut stored = 0;
        let mut start_after: Option<Vec<u8>> = None;
        loop {
            let page = backend
                .list(&prefix, start_after.as_deref(), 1000)
                .await
                .unwrap();
            for entry in &page.entries {
                assert!(
                    entry.key == key(round, stored),
                    "round {round}: unexpected key {:?}",
                    entry.key.escape_ascii().to_string()
                );
                stored += 1;
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => break,
            }
        }
        assert!(
            stored == acks || stored == acks + 1,
            "round {round}: {stored} keys stored for {acks} acknowledged writes"
        );
    }
}

#[test]
fn redb_keeps_acknowledged_writes_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let target = format!("redb:{}", path.display());
    let rt = runtime();
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        acknowledged.push(write_until_killed(&target, round, 200 + round * 71));
        rt.block_on(async {
            let backend = RedbBackend::open(&path).await.unwrap();
            assert!(
                backend.repaired_on_open(),
                "round {round}: a file left open by a killed process must go through repair"
            );
            verify(&backend, &acknowledged).await;
            // Still writable after the repair.
            backend.put(b"after/repair", b"ok").await.unwrap();
        });
        assert_file_reopens_cleanly(&rt, &path);
    }
}

fn assert_file_reopens_cleanly(rt: &tokio::runtime::Runtime, path: &Path) {
    rt.block_on(async {
        let backend = RedbBackend::open(path).await.unwrap();
        assert!(
            !backend.repaired_on_open(),
            "a cleanly closed file needs no repair"
        );
        assert_eq!(
            backend.get(b"after/repair").await.unwrap().as_deref(),
            Some(&b"ok"[..])
        );
    });
}

/// Drops the test table when the test ends, whether it passed or not.
struct TableGuard(String);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let result = runtime().block_on(drop_table(&postgres_url(), &self.0));
        if let Err(e) = result {
            eprintln!("cannot drop test table {}: {e}", self.0);
        }
    }
}

#[test]
fn postgres_keeps_acknowledged_writes_across_sigkill() {
    let table = TableGuard(unique_table("crash"));
    let rt = runtime();
    rt.block_on(drop_table(&postgres_url(), &table.0)).unwrap();
    let target = format!("postgres:{}", table.0);
    let mut acknowledged = Vec::new();
    for round in 0..2 {
        acknowledged.push(write_until_killed(&target, round, 300 + round * 53));
        rt.block_on(async {
            let backend = open(&target).await;
            verify(&*backend, &acknowledged).await;
        });
    }
}
