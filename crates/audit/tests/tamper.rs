//! The six kinds of tampering, each detected by `verify` with a precise finding; an untouched
//! log verifies clean. (The same cases run through the binary in crates/rampart/tests.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use rampart_audit::{FindingKind, Report, Severity, VerifyOptions, checkpoint, segment, verify};

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

fn rewrite(f: &FrameAt, new_frame: Option<&[u8]>) {
    let mut data = fs::read(&f.seg).unwrap();
    let tail = data.split_off(f.offset + f.len);
    data.truncate(f.offset);
    if let Some(nf) = new_frame {
        data.extend_from_slice(nf);
    }
    data.extend_from_slice(&tail);
    fs::write(&f.seg, data).unwrap();
}

fn payload(f: &FrameAt) -> Vec<u8> {
    fs::read(&f.seg).unwrap()[f.offset + 8..f.offset + f.len].to_vec()
}

fn edit(dir: &Path, k: usize, fix_crc: bool) {
    let fs_ = frames(dir);
    let f = &fs_[k];
    let p = String::from_utf8(payload(f)).unwrap();
    let q = p.replace(&format!("secrets/s{k}\""), &format!("secrets/X{k}\""));
    assert_ne!(p, q);
    let mut frame = Vec::new();
    segment::encode_frame(&mut frame, q.as_bytes());
    if !fix_crc {
        frame[4..8].copy_from_slice(&fs::read(&f.seg).unwrap()[f.offset + 4..f.offset + 8]);
    }
    rewrite(f, Some(&frame));
}

async fn fresh(n: u64, per: u64) -> (tempfile::TempDir, Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    let notes = common::build(d.path(), n, per).await;
    (d, notes)
}

fn errors(r: &Report) -> Vec<(FindingKind, String)> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.kind, f.message.clone()))
        .collect()
}

fn run(dir: &Path) -> Report {
    verify(dir, &VerifyOptions::default()).unwrap()
}

#[tokio::test]
async fn untouched_log_verifies() {
    let (d, _) = fresh(100, 25).await;
    let r = run(d.path());
    assert!(r.is_ok() && r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!((r.records, r.checkpoints), (100, 4));
}

#[tokio::test]
async fn edited_record_is_named() {
    for fix_crc in [true, false] {
        let (d, _) = fresh(100, 25).await;
        edit(d.path(), 42, fix_crc);
        let r = run(d.path());
        let e = errors(&r);
        assert!(!r.is_ok());
        let first = &e[0];
        assert_eq!(first.0, FindingKind::RecordModified, "{e:?}");
        assert!(
            first
                .1
                .starts_with("record 42 (segment 00000000000000000000.seg offset "),
            "{e:?}"
        );
        assert_eq!(r.findings[0].record, Some(42));
        // Checkpoints covering record 42 no longer match, and say where the change lies.
        assert!(
            e.iter().any(|(k, m)| *k == FindingKind::CheckpointMismatch
                && m.contains("checkpoints/00000000000000000050.ckpt")
                && m.contains("records in 25..49 were altered")),
            "{e:?}"
        );
        assert!(
            !e.iter()
                .any(|(_, m)| m.contains("00000000000000000025.ckpt")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn deleted_record_is_named() {
    let (d, _) = fresh(100, 25).await;
    let f = frames(d.path());
    rewrite(&f[17], None);
    let e = errors(&run(d.path()));
    assert_eq!(e[0].0, FindingKind::RecordMissing, "{e:?}");
    assert!(
        e[0].1
            .starts_with("record 17 is missing: segment 00000000000000000000.seg offset "),
        "{e:?}"
    );
    assert!(
        e[0].1
            .contains("holds record 18 where record 17 was expected")
    );
}

#[tokio::test]
async fn reordered_pair_is_named() {
    let (d, _) = fresh(100, 25).await;
    let f = frames(d.path());
    let (a, b) = (payload(&f[60]), payload(&f[61]));
    let mut both = Vec::new();
    segment::encode_frame(&mut both, &b);
    segment::encode_frame(&mut both, &a);
    let joined = FrameAt {
        seg: f[60].seg.clone(),
        offset: f[60].offset,
        len: f[60].len + f[61].len,
    };
    rewrite(&joined, Some(&both));
    let e = errors(&run(d.path()));
    assert_eq!(e[0].0, FindingKind::RecordsReordered, "{e:?}");
    assert!(e[0].1.starts_with("records 60 and 61 are swapped"), "{e:?}");
    assert!(
        !e.iter()
            .any(|(k, _)| *k == FindingKind::RecordMissing || *k == FindingKind::RecordModified),
        "{e:?}"
    );
}

#[tokio::test]
async fn truncated_tail_is_named() {
    let (d, _) = fresh(100, 25).await;
    let f = frames(d.path());
    let cut = &f[90];
    let data = fs::read(&cut.seg).unwrap();
    fs::write(&cut.seg, &data[..cut.offset]).unwrap();
    let e = errors(&run(d.path()));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, FindingKind::Truncated);
    assert!(e[0].1.starts_with("the log has 90 records but checkpoints/00000000000000000100.ckpt signs 100: records 90..99 were removed"), "{e:?}");

    // Cut in the middle of a frame: still reported as truncation (not a harmless torn tail).
    let (d, _) = fresh(30, 10).await;
    let f = frames(d.path());
    let data = fs::read(&f[25].seg).unwrap();
    fs::write(&f[25].seg, &data[..f[25].offset + 20]).unwrap();
    let e = errors(&run(d.path()));
    assert_eq!(e[0].0, FindingKind::Truncated, "{e:?}");
    assert!(e[0].1.contains("records 25..29 were removed"), "{e:?}");
}

#[tokio::test]
async fn forged_checkpoint_is_named() {
    let (d, _) = fresh(100, 25).await;
    let p = d.path().join("checkpoints").join(checkpoint::file_name(50));
    let text = fs::read_to_string(&p).unwrap();
    // Claim another root (as if to cover edited records).
    let lines: Vec<&str> = text.split('\n').collect();
    let forged = text.replacen(lines[2], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
    fs::write(&p, forged).unwrap();
    let e = errors(&run(d.path()));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, FindingKind::CheckpointForged);
    assert_eq!(
        e[0].1,
        "checkpoints/00000000000000000050.ckpt: signature does not verify: the checkpoint was forged or altered"
    );

    // A checkpoint signed with the attacker's own key.
    let (d, _) = fresh(10, 10).await;
    let other = tempfile::tempdir().unwrap();
    common::build(other.path(), 12, 12).await;
    fs::copy(
        other
            .path()
            .join("checkpoints")
            .join(checkpoint::file_name(12)),
        d.path().join("checkpoints").join(checkpoint::file_name(12)),
    )
    .unwrap();
    let e = errors(&run(d.path()));
    assert!(
        e.iter().any(|(k, m)| *k == FindingKind::CheckpointForged
            && m.starts_with(
                "checkpoints/00000000000000000012.ckpt: not signed by the trusted key"
            )),
        "{e:?}"
    );
}

#[tokio::test]
async fn rolled_back_log_is_named() {
    let (d, notes) = fresh(100, 25).await;
    // The operator saved the newest checkpoint earlier.
    let saved = notes.last().unwrap().clone();
    // Attacker: cut the log back to 50 records and delete the checkpoints above 50, so
    // that the log and its own checkpoints agree.
    let f = frames(d.path());
    let data = fs::read(&f[50].seg).unwrap();
    fs::write(&f[50].seg, &data[..f[50].offset]).unwrap();
    for size in [75, 100] {
        fs::remove_file(
            d.path()
                .join("checkpoints")
                .join(checkpoint::file_name(size)),
        )
        .unwrap();
    }
    // Alone, the log is self-consistent.
    let r = run(d.path());
    assert!(r.is_ok(), "{:?}", r.findings);
    // Against the saved checkpoint, the rollback shows.
    let r = verify(
        d.path(),
        &VerifyOptions {
            trusted: vec![("saved.ckpt".into(), saved)],
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, FindingKind::RolledBack);
    assert_eq!(
        e[0].1,
        "the log was rolled back: trusted checkpoint saved.ckpt signs 100 records, but the log has 50 and its newest checkpoint signs 50; newer records and checkpoints were removed"
    );

    // An older checkpoint presented as the newest (copied over the newest file).
    let (d, _) = fresh(100, 25).await;
    let cps = d.path().join("checkpoints");
    fs::copy(
        cps.join(checkpoint::file_name(75)),
        cps.join(checkpoint::file_name(100)),
    )
    .unwrap();
    let e = errors(&run(d.path()));
    assert!(e.iter().any(|(k, m)| *k == FindingKind::CheckpointForged
        && m.starts_with("checkpoints/00000000000000000100.ckpt: holds a validly signed checkpoint of size 75")), "{e:?}");
}

#[tokio::test]
async fn torn_tail_is_a_warning_and_is_cut_at_open() {
    let d = tempfile::tempdir().unwrap();
    let log = rampart_audit::AuditLog::open(d.path(), common::opts()).unwrap();
    let a = log.auditor();
    for i in 0..10 {
        a.record(common::rec(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    // A crash in the middle of the next batch leaves half a frame.
    let seg = d.path().join(segment::file_name(0));
    let mut data = fs::read(&seg).unwrap();
    let mut frame = Vec::new();
    segment::encode_frame(&mut frame, b"{\"seq\":10,\"prev\":\"torn");
    data.extend_from_slice(&frame[..frame.len() - 5]);
    fs::write(&seg, &data).unwrap();
    let r = run(d.path());
    assert!(r.is_ok(), "{:?}", r.findings);
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::TornTail && f.severity == Severity::Warning)
    );
    // Reopen cuts it (keeping a copy) and the log continues.
    let log = rampart_audit::AuditLog::open(d.path(), common::opts()).unwrap();
    assert_eq!(log.auditor().record(common::rec(10)).await.unwrap().seq, 10);
    log.shutdown().await.unwrap();
    assert_eq!(fs::read_dir(d.path().join("torn")).unwrap().count(), 1);
    let r = run(d.path());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[tokio::test]
async fn replaced_key_is_named_when_the_key_is_pinned() {
    let (d, _) = fresh(5, 5).await;
    let pinned = rampart_audit::verifier_key(d.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    common::build(other.path(), 1, 1).await;
    fs::copy(
        other.path().join(rampart_audit::SIGNING_KEY_FILE),
        d.path().join(rampart_audit::SIGNING_KEY_FILE),
    )
    .unwrap();
    let r = verify(
        d.path(),
        &VerifyOptions {
            key: Some(pinned),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, FindingKind::KeyReplaced);
}
