//! `rampart audit` end to end through the binary: the six kinds of tampering each make
//! `verify` exit with 3 and say where; an untouched log verifies (exit 0); show, prove, tail,
//! export (jsonl file, syslog to a TCP listener, --follow), pubkey, checkpoint, hmac, and the
//! usage (2) and operational (1) exit codes.
//!
//! Logs are written with the library exactly as `rampart up` does (log in
//! `<data-dir>/audit`, witness in `<data-dir>/audit-witness.ckpt`), then read by the binary.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rampart_audit::{AuditLog, AuditOptions, Decision, Record, Timestamp, checkpoint, segment};

fn rampart(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .env_remove("RAMPART_CONFIG")
        .env_remove("RAMPART_DATA_DIR")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("audit")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn rec(i: u64) -> Record {
    Record::new(
        if i.is_multiple_of(2) {
            "vault"
        } else {
            "gateway"
        },
        if i.is_multiple_of(3) {
            "secret.delete"
        } else {
            "request"
        },
        if i.is_multiple_of(4) {
            Decision::Deny
        } else {
            Decision::Allow
        },
    )
    .at(Timestamp::from_unix_nanos(
        1_767_225_600_000_000_000 + i * 1_000_000,
    ))
    .actor(format!("user-{}", i % 3), "jwt")
    .resource(format!("secrets/s{i}"))
    .reason(if i.is_multiple_of(4) { "policy p1" } else { "" })
    .request_id(format!("req-{i}"))
    .source("192.0.2.7:4000")
    .detail("n", i.to_string())
    .sensitive_detail("token", format!("tok-{i}"))
}

fn options(data_dir: &Path) -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_secs(3600),
        witness: Some(rampart_audit::witness_path(data_dir)),
        ..AuditOptions::default()
    }
}

/// A data dir with a log of `n` records and a checkpoint every `per` records.
fn make_log(n: u64, per: u64) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(rampart_audit::log_dir(&data), options(&data)).unwrap();
        let a = log.auditor();
        for i in 0..n {
            a.record(rec(i)).await.unwrap();
            if (i + 1) % per == 0 {
                a.checkpoint().await.unwrap();
            }
        }
        log.shutdown().await.unwrap();
    });
    let dir = rampart_audit::log_dir(&data);
    (d, dir)
}

struct FrameAt {
    seg: PathBuf,
    offset: usize,
    len: usize,
}

fn frames(dir: &Path) -> Vec<FrameAt> {
    let mut out = Vec::new();
    for s in segment::list(dir).unwrap() {
        let data = fs::read(&s.path).unwrap();
        for f in segment::Frames::new(&data) {
            if let segment::Frame::Record {
                offset, payload, ..
            } = f
            {
                out.push(FrameAt {
                    seg: s.path.clone(),
                    offset: offset as usize,
                    len: 8 + payload.len(),
                });
            }
        }
    }
    out
}

fn splice(f: &FrameAt, len: usize, replacement: &[u8]) {
    let mut data = fs::read(&f.seg).unwrap();
    data.splice(f.offset..f.offset + len, replacement.iter().copied());
    fs::write(&f.seg, data).unwrap();
}

fn payload(f: &FrameAt) -> Vec<u8> {
    fs::read(&f.seg).unwrap()[f.offset + 8..f.offset + f.len].to_vec()
}

fn verify(data: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    let o = rampart(data, &args);
    (code(&o), stdout(&o) + &String::from_utf8_lossy(&o.stderr))
}

#[test]
fn untouched_log_verifies() {
    let (d, _) = make_log(60, 20);
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.starts_with("ok: 60 records in 1 segments, 4 signed checkpoints (newest signs 60)"),
        "{out}"
    );
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
    // With the pinned key printed by `pubkey`.
    let key = stdout(&rampart(d.path(), &["pubkey"]));
    assert!(key.starts_with("rampart.local/audit/"), "{key}");
    let (c, out) = verify(d.path(), &["--pubkey", key.trim()]);
    assert_eq!(c, 0, "{out}");
}

#[test]
fn edited_record_exits_3_and_names_it() {
    let (d, dir) = make_log(60, 20);
    let f = &frames(&dir)[33];
    let p = String::from_utf8(payload(f))
        .unwrap()
        .replace("secrets/s33\"", "secrets/X33\"");
    let mut frame = Vec::new();
    segment::encode_frame(&mut frame, p.as_bytes()); // a careful attacker fixes the CRC
    splice(f, f.len, &frame);
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with(
            "error: record-modified: record 33 (segment 00000000000000000000.seg offset "
        ),
        "{out}"
    );
    assert!(
        out.contains(" stored in record 34 (segment 00000000000000000000.seg offset "),
        "{out}"
    );
    assert!(
        out.contains("error: checkpoint-mismatch: checkpoints/00000000000000000040.ckpt"),
        "{out}"
    );
    assert!(out.contains("records in 20..39 were altered"), "{out}");
    assert!(out.contains("\nFAILED: "), "{out}");
}

#[test]
fn deleted_record_exits_3_and_names_it() {
    let (d, dir) = make_log(60, 20);
    let f = &frames(&dir)[12];
    splice(f, f.len, &[]);
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with(
            "error: record-missing: record 12 is missing: segment 00000000000000000000.seg offset "
        ),
        "{out}"
    );
}

#[test]
fn reordered_pair_exits_3_and_names_it() {
    let (d, dir) = make_log(60, 20);
    let fr = frames(&dir);
    let (a, b) = (&fr[44], &fr[45]);
    let mut swapped = Vec::new();
    segment::encode_frame(&mut swapped, &payload(b));
    segment::encode_frame(&mut swapped, &payload(a));
    splice(a, a.len + b.len, &swapped);
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with("error: records-reordered: records 44 and 45 are swapped"),
        "{out}"
    );
}

#[test]
fn truncated_tail_exits_3_and_names_it() {
    let (d, dir) = make_log(60, 20);
    let f = &frames(&dir)[55];
    let data = fs::read(&f.seg).unwrap();
    fs::write(&f.seg, &data[..f.offset]).unwrap();
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with("error: truncated: the log has 55 records but checkpoints/00000000000000000060.ckpt signs 60: records 55..59 were removed (truncated tail; segment 00000000000000000000.seg ends at offset "),
        "{out}"
    );
}

#[test]
fn forged_checkpoint_exits_3_and_names_it() {
    let (d, dir) = make_log(60, 20);
    let p = dir.join("checkpoints").join(checkpoint::file_name(40));
    let text = fs::read_to_string(&p).unwrap();
    fs::write(&p, text.replacen("\n40\n", "\n41\n", 1)).unwrap();
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with("error: checkpoint-forged: checkpoints/00000000000000000040.ckpt: signature does not verify"),
        "{out}"
    );
}

#[test]
fn rolled_back_log_exits_3_with_saved_checkpoint_and_with_witness() {
    let (d, dir) = make_log(60, 20);
    // The operator saves the newest checkpoint outside the data dir.
    let o = rampart(d.path(), &["checkpoint"]);
    assert_eq!(code(&o), 0);
    let saved_dir = tempfile::tempdir().unwrap();
    let saved = saved_dir.path().join("saved.ckpt");
    fs::write(&saved, &o.stdout).unwrap();
    // The attacker rolls the log back to 40 records, deletes newer checkpoints, and also
    // replaces the witness with the older checkpoint.
    let f = &frames(&dir)[40];
    let data = fs::read(&f.seg).unwrap();
    fs::write(&f.seg, &data[..f.offset]).unwrap();
    fs::remove_file(dir.join("checkpoints").join(checkpoint::file_name(60))).unwrap();
    let witness = rampart_audit::witness_path(d.path());
    let honest_witness = fs::read(&witness).unwrap();
    fs::copy(
        dir.join("checkpoints").join(checkpoint::file_name(40)),
        &witness,
    )
    .unwrap();
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(
        c, 0,
        "a consistent rollback cannot be seen from the log alone: {out}"
    );
    let (c, out) = verify(d.path(), &["--from-checkpoint", saved.to_str().unwrap()]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with(&format!(
            "error: rolled-back: the log was rolled back: trusted checkpoint {} signs 60 records, but the log has 40 and its newest checkpoint signs 40",
            saved.display()
        )),
        "{out}"
    );
    // If the attacker did not find the witness, it alone shows the rollback.
    fs::write(&witness, honest_witness).unwrap();
    let (c, out) = verify(d.path(), &[]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with("error: rolled-back: the log was rolled back: witness "),
        "{out}"
    );
}

#[test]
fn show_prove_tail_and_hmac() {
    let (d, _) = make_log(30, 10);
    let o = rampart(d.path(), &["show", "7"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["record"]["seq"], 7);
    assert_eq!(v["record"]["resource"], "secrets/s7");
    assert_eq!(v["segment"], "00000000000000000000.seg");
    let token = v["record"]["details"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hmac-sha256:"));

    // hmac: the operator checks "was it tok-7?" without the log revealing it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["--data-dir", d.path().to_str().unwrap(), "audit", "hmac"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"tok-7\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o).trim(), token);

    let o = rampart(d.path(), &["prove", "7"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["index"], 7);
    assert_eq!(p["tree_size"], 30);
    assert_eq!(p["leaf_hash"], v["leaf_hash"]);
    let o = rampart(d.path(), &["prove", "--consistency", "10"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (p["old_size"].as_u64(), p["new_size"].as_u64()),
        (Some(10), Some(30))
    );
    assert_eq!(code(&rampart(d.path(), &["prove", "30"])), 1);

    let o = rampart(d.path(), &["tail", "-n", "5"]);
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines[4].contains(" #29 gateway ALLOW user-2(jwt) request secrets/s29"),
        "{lines:?}"
    );
    assert!(!stdout(&o).contains("tok-"));
    let o = rampart(
        d.path(),
        &[
            "tail",
            "-n",
            "100",
            "--filter",
            "decision=deny",
            "--filter",
            "component=vault",
        ],
    );
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8, "{lines:?}"); // 0, 4, ..., 28
    assert!(lines.iter().all(|l| l.contains(" vault DENY ")));
    let o = rampart(
        d.path(),
        &["tail", "--filter", "action=secret.*", "-n", "3"],
    );
    assert!(
        stdout(&o).lines().all(|l| l.contains("secret.delete")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn export_jsonl_round_trips_and_syslog_reaches_a_tcp_listener() {
    let (d, dir) = make_log(25, 10);
    let out = d.path().join("export.jsonl");
    let o = rampart(
        d.path(),
        &["export", "--format", "jsonl", "-o", out.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let text = fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 25);
    for (i, line) in text.lines().enumerate() {
        let e = rampart_audit::export::jsonl::parse_line(line).unwrap();
        let (stored, loc) = rampart_audit::reader::get(&dir, i as u64).unwrap();
        assert_eq!(e, stored);
        assert_eq!(
            rampart_audit::merkle::leaf_hash(line.as_bytes()),
            loc.leaf_hash
        );
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let o = rampart(
        d.path(),
        &[
            "export",
            "--format",
            "syslog",
            "--to",
            &format!("tcp://{addr}"),
        ],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let all = server.join().unwrap();
    let mut rest = &all[..];
    let mut n = 0;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
        let msg = std::str::from_utf8(&rest[sp + 1..sp + 1 + len]).unwrap();
        let pri = if n % 4 == 0 { "<84>1 " } else { "<86>1 " };
        assert!(msg.starts_with(pri), "{msg}");
        assert!(msg.contains(&format!("[audit@32473 seq=\"{n}\"")), "{msg}");
        rest = &rest[sp + 1 + len..];
        n += 1;
    }
    assert_eq!(n, 25);

    let o = rampart(d.path(), &["export", "--format", "ocsf"]);
    assert_eq!(code(&o), 0);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["class_uid"], 6003);
}

#[test]
fn export_follow_sends_new_records() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = rt.block_on(async {
        let log = AuditLog::open(rampart_audit::log_dir(&data), options(&data)).unwrap();
        log.auditor().record(rec(0)).await.unwrap();
        log
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "audit",
            "export",
            "--format",
            "jsonl",
            "--follow",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    rt.block_on(async {
        for i in 1..20 {
            log.auditor().record(rec(i)).await.unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    while got < 20 && Instant::now() < deadline {
        let line = lines.next().unwrap().unwrap();
        assert_eq!(
            rampart_audit::export::jsonl::parse_line(&line).unwrap().seq,
            got
        );
        got += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    rt.block_on(log.shutdown()).unwrap();
    assert_eq!(got, 20);
}

#[test]
fn usage_and_operational_errors() {
    let (d, _) = make_log(3, 3);
    assert_eq!(
        code(&rampart(d.path(), &["tail", "--filter", "colour=red"])),
        2
    );
    assert_eq!(
        code(&rampart(d.path(), &["tail", "--filter", "decision=maybe"])),
        2
    );
    assert_eq!(
        code(&rampart(
            d.path(),
            &["export", "--format", "jsonl", "--to", "tcp://127.0.0.1:9"]
        )),
        2
    );
    assert_eq!(
        code(&rampart(
            d.path(),
            &["export", "--format", "syslog", "--to", "ftp://x:1"]
        )),
        2
    );
    assert_eq!(
        code(&rampart(d.path(), &["verify", "--pubkey", "not-a-key"])),
        2
    );
    assert_eq!(code(&rampart(d.path(), &["show", "3"])), 1);
    let empty = tempfile::tempdir().unwrap();
    let o = rampart(empty.path(), &["verify"]);
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no audit log at"),
        "{o:?}"
    );
}
