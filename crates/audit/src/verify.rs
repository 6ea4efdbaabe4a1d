//! Offline verification of a log: re-hash every record, check the hash chain, sequence
//! numbers, segment headers, every checkpoint signature, and that every signed checkpoint
//! (in the log directory, the witness copy, or given by the operator) is a prefix of the log.
//!
//! Each problem becomes a [`Finding`] that names where it is: record id, segment file and
//! byte offset, checkpoint file. How the six kinds of tampering show up:
//!
//! | tampering | finding |
//! |---|---|
//! | edited record | [`FindingKind::RecordModified`] (hash chain broken at the next record, or stored CRC wrong), plus [`FindingKind::CheckpointMismatch`] for the checkpoints covering it |
//! | deleted record | [`FindingKind::RecordMissing`] (sequence gap) |
//! | reordered pair | [`FindingKind::RecordsReordered`] |
//! | truncated tail | [`FindingKind::Truncated`] (a checkpoint signs more records than the log has) |
//! | forged checkpoint | [`FindingKind::CheckpointForged`] (bad signature, unknown key, or renamed) |
//! | rolled-back log | [`FindingKind::RolledBack`] (the witness or a checkpoint saved by the operator signs more records than the log, whose own newer checkpoints were deleted) |
//!
//! A torn tail left by a crash (never acknowledged, not covered by a checkpoint) is only a
//! [`Severity::Warning`]; so are records not yet covered by a checkpoint.
//!
//! Speed: segments are read whole, frames are parsed in place, and only the `seq`/`prev`
//! prefix of each record is decoded; the tree is computed with a streaming frontier.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::checkpoint::{self, NoteError};
use crate::error::Result;
use crate::hex;
use crate::keys::{Signer, VerifierKey};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::parse_prefix;
use crate::segment::{self, Frame, Frames, HEADER_LEN};
use crate::time::Timestamp;

/// What to trust when verifying.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The verifier key that must have signed the checkpoints (e.g. the output of
    /// `rampart audit pubkey` saved when the log was created). Default: the key in the log
    /// directory, which an attacker with disk access could have replaced.
    pub key: Option<VerifierKey>,
    /// Checkpoint notes saved by the operator earlier: `(label, note text)`. The log must be
    /// at least as long as each and consistent with it.
    pub trusted: Vec<(String, String)>,
    /// The witness file kept by the writer outside the log directory.
    pub witness: Option<PathBuf>,
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Integrity is broken: the log was tampered with or damaged.
    Error,
    /// Worth knowing, not a proof of tampering (torn tail, uncovered records).
    Warning,
}

/// The kind of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// A record's content differs from what was written.
    RecordModified,
    /// Records are missing from the sequence.
    RecordMissing,
    /// Records are out of order.
    RecordsReordered,
    /// A record appears twice.
    RecordDuplicated,
    /// A record's payload is not canonical.
    RecordMalformed,
    /// A segment file is damaged (header, framing).
    SegmentDamaged,
    /// Bytes at the end of the newest segment are a torn write (crash), never acknowledged.
    TornTail,
    /// The log is shorter than one of its own checkpoints.
    Truncated,
    /// A checkpoint's signature does not verify, is by another key, is malformed, or is
    /// stored under another size's name.
    CheckpointForged,
    /// A validly signed checkpoint does not match the records.
    CheckpointMismatch,
    /// The log (and its checkpoints) went back to an older state than a trusted checkpoint.
    RolledBack,
    /// A checkpoint known to the witness or the operator is missing from the log directory.
    CheckpointDeleted,
    /// The signing key in the log directory is not the trusted key.
    KeyReplaced,
    /// Records not yet covered by any signed checkpoint.
    Uncovered,
}

impl FindingKind {
    /// Short kebab-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RecordModified => "record-modified",
            Self::RecordMissing => "record-missing",
            Self::RecordsReordered => "records-reordered",
            Self::RecordDuplicated => "record-duplicated",
            Self::RecordMalformed => "record-malformed",
            Self::SegmentDamaged => "segment-damaged",
            Self::TornTail => "torn-tail",
            Self::Truncated => "truncated",
            Self::CheckpointForged => "checkpoint-forged",
            Self::CheckpointMismatch => "checkpoint-mismatch",
            Self::RolledBack => "rolled-back",
            Self::CheckpointDeleted => "checkpoint-deleted",
            Self::KeyReplaced => "key-replaced",
            Self::Uncovered => "uncovered",
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem.
    pub kind: FindingKind,
    /// Record id concerned, if one.
    pub record: Option<u64>,
    /// Segment file name, if one.
    pub segment: Option<String>,
    /// Byte offset in that segment, if known.
    pub offset: Option<u64>,
    /// Checkpoint concerned (file or label), if one.
    pub checkpoint: Option<String>,
    /// Full, human-readable message including the location.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.kind.as_str(), self.message)
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug)]
pub struct Report {
    /// Records read (positions).
    pub records: u64,
    /// Segment files read.
    pub segments: usize,
    /// Checkpoint notes whose signature verified.
    pub checkpoints: usize,
    /// Size of the newest valid checkpoint in the log directory.
    pub newest_checkpoint: Option<u64>,
    /// Root of the whole log as read.
    pub root: Hash,
    /// The key checkpoints were checked against.
    pub key: VerifierKey,
    /// Problems, in the order found.
    pub findings: Vec<Finding>,
    /// Time taken.
    pub elapsed: Duration,
}

impl Report {
    /// Whether no error was found (warnings allowed).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Dir,
    Trusted,
    Witness,
}

#[derive(Debug)]
struct Target {
    label: String,
    size: u64,
    root: Hash,
    source: Source,
    matched: Option<bool>,
}

struct Loc {
    segment: Rc<str>,
    offset: u64,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        record: Option<u64>,
        loc: Option<&Loc>,
        checkpoint: Option<&str>,
        message: String,
    ) {
        self.0.push(Finding {
            severity,
            kind,
            record,
            segment: loc.map(|l| l.segment.to_string()),
            offset: loc.map(|l| l.offset),
            checkpoint: checkpoint.map(str::to_owned),
            message,
        });
    }

    fn error(
        &mut self,
        kind: FindingKind,
        record: Option<u64>,
        loc: Option<&Loc>,
        message: String,
    ) {
        self.push(Severity::Error, kind, record, loc, None, message);
    }

    fn checkpoint(&mut self, kind: FindingKind, name: &str, message: String) {
        self.push(Severity::Error, kind, None, None, Some(name), message);
    }
}

/// Verifies the log in `dir`. Integrity problems are [`Finding`]s in the [`Report`]; an
/// `Err` means the verification could not run (no log, unreadable directory).
///
/// # Errors
/// I/O errors reading the directory or files, [`crate::ErrorKind::NoLog`].
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Result<Report> {
    let started = Instant::now();
    let mut out = Findings::default();
    let own_key = Signer::load(dir, false).map(|s| s.verifier().clone());
    let key = match (&opts.key, own_key) {
        (Some(k), Ok(own)) => {
            if &own != k {
                out.push(
                    Severity::Error,
                    FindingKind::KeyReplaced,
                    None,
                    None,
                    None,
                    format!(
                        "the signing key in {} is {own}, not the trusted key {k}: it was replaced",
                        dir.join(crate::SIGNING_KEY_FILE).display()
                    ),
                );
            }
            k.clone()
        }
        (Some(k), Err(_)) => k.clone(),
        (None, Ok(own)) => own,
        (None, Err(e)) => return Err(e),
    };

    // 1. Checkpoints.
    let mut targets: Vec<Target> = Vec::new();
    let mut valid = 0usize;
    let mut last_time: Option<(u64, Timestamp)> = None;
    for f in checkpoint::list(dir)? {
        let name = f.display_name();
        let text = match fs::read_to_string(&f.path) {
            Ok(t) => t,
            Err(e) => {
                out.checkpoint(
                    FindingKind::CheckpointForged,
                    &name,
                    format!("{name}: unreadable: {e}"),
                );
                continue;
            }
        };
        match checkpoint::verify_note(&text, &key) {
            Ok(cp) => {
                valid += 1;
                if cp.size != f.size {
                    out.checkpoint(
                        FindingKind::CheckpointForged,
                        &name,
                        format!(
                            "{name}: holds a validly signed checkpoint of size {} signed at {}, not of size {}: an older checkpoint was put in place of a newer one",
                            cp.size, cp.timestamp, f.size
                        ),
                    );
                } else if let Some((prev_size, prev_time)) = last_time
                    && cp.timestamp < prev_time
                {
                    out.push(
                            Severity::Warning,
                            FindingKind::CheckpointForged,
                            None,
                            None,
                            Some(&name),
                            format!(
                                "{name}: signed at {} but the smaller checkpoint of size {prev_size} was signed later, at {prev_time}",
                                cp.timestamp
                            ),
                        );
                }
                if cp.size == f.size {
                    last_time = Some((cp.size, cp.timestamp));
                }
                targets.push(Target {
                    label: name,
                    size: cp.size,
                    root: cp.root,
                    source: Source::Dir,
                    matched: None,
                });
            }
            Err(e) => {
                let detail = match e {
                    NoteError::BadSignature => {
                        "signature does not verify: the checkpoint was forged or altered".to_owned()
                    }
                    NoteError::UnknownKey => {
                        format!("not signed by the trusted key {}: forged", key.name)
                    }
                    other => format!("{other}: forged or damaged"),
                };
                out.checkpoint(
                    FindingKind::CheckpointForged,
                    &name,
                    format!("{name}: {detail}"),
                );
            }
        }
    }
    let newest_dir = targets
        .iter()
        .filter(|t| t.source == Source::Dir)
        .map(|t| t.size)
        .max();
    let mut extra: Vec<(String, String, Source)> = opts
        .trusted
        .iter()
        .map(|(l, t)| {
            (
                format!("trusted checkpoint {l}"),
                t.clone(),
                Source::Trusted,
            )
        })
        .collect();
    if let Some(w) = &opts.witness {
        match fs::read_to_string(w) {
            Ok(t) => extra.push((format!("witness {}", w.display()), t, Source::Witness)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out.checkpoint(
                FindingKind::CheckpointForged,
                &w.display().to_string(),
                format!("witness {}: unreadable: {e}", w.display()),
            ),
        }
    }
    for (label, text, source) in extra {
        match checkpoint::verify_note(&text, &key) {
            Ok(cp) => {
                valid += 1;
                targets.push(Target {
                    label,
                    size: cp.size,
                    root: cp.root,
                    source,
                    matched: None,
                });
            }
            Err(e) => out.checkpoint(
                FindingKind::CheckpointForged,
                &label,
                format!("{label}: {e}"),
            ),
        }
    }
    targets.sort_by_key(|t| t.size);

    // 2. Records.
    let segments = segment::list(dir)?;
    let mut st = Scan {
        frontier: Frontier::new(),
        prev_leaf: [0; 32],
        last_seq: None,
        anomaly_at_prev: false,
        prev_loc: None,
        reported_modified: None,
        next_target: 0,
        last_good_target: 0,
    };
    st.check_targets(&mut targets, &mut out);
    let count = segments.len();
    let mut tail_note: Option<(Loc, u64, &'static str)> = None;
    for (si, seg) in segments.iter().enumerate() {
        let name: Rc<str> = Rc::from(seg.name());
        let data = match fs::read(&seg.path) {
            Ok(d) => d,
            Err(e) => {
                out.error(
                    FindingKind::SegmentDamaged,
                    None,
                    Some(&Loc {
                        segment: Rc::clone(&name),
                        offset: 0,
                    }),
                    format!("segment {name}: unreadable: {e}"),
                );
                continue;
            }
        };
        match segment::parse_header(&data) {
            Ok(first) if first == seg.first => {}
            Ok(first) => out.error(
                FindingKind::SegmentDamaged,
                None,
                Some(&Loc { segment: Rc::clone(&name), offset: 0 }),
                format!("segment {name}: its header says it starts at record {first}: the file was renamed or replaced"),
            ),
            Err(reason) => {
                out.error(
                    FindingKind::SegmentDamaged,
                    None,
                    Some(&Loc { segment: Rc::clone(&name), offset: 0 }),
                    format!("segment {name} offset 0: {reason}"),
                );
                continue;
            }
        }
        let is_last = si + 1 == count;
        // In the newest segment, bytes after the last frame whose CRC holds may be a torn
        // write; find where that good part ends.
        let body_end = if is_last {
            let mut end = HEADER_LEN as u64;
            for fr in Frames::new(&data) {
                if let Frame::Record {
                    offset,
                    payload,
                    crc_ok: true,
                } = fr
                {
                    end = offset + (segment::FRAME_HEADER_LEN + payload.len()) as u64;
                }
            }
            Some(end)
        } else {
            None
        };
        for fr in Frames::new(&data) {
            match fr {
                Frame::Record {
                    offset,
                    payload,
                    crc_ok,
                } => {
                    if body_end.is_some_and(|end| offset >= end) {
                        tail_note = Some((
                            Loc {
                                segment: Rc::clone(&name),
                                offset,
                            },
                            data.len() as u64 - offset,
                            "a record with a bad crc",
                        ));
                        break;
                    }
                    st.record(
                        &Loc {
                            segment: Rc::clone(&name),
                            offset,
                        },
                        payload,
                        crc_ok,
                        &mut out,
                    );
                    st.check_targets(&mut targets, &mut out);
                }
                Frame::Torn { offset, reason } => {
                    let loc = Loc {
                        segment: Rc::clone(&name),
                        offset,
                    };
                    if is_last {
                        tail_note = Some((loc, data.len() as u64 - offset, reason));
                    } else {
                        out.error(
                            FindingKind::SegmentDamaged,
                            Some(st.frontier.size()),
                            Some(&loc),
                            format!("segment {name} offset {offset}: {reason}; the rest of this segment is unreadable"),
                        );
                    }
                    break;
                }
            }
        }
    }
    let n = st.frontier.size();

    // 3. What the checkpoints say about the end of the log.
    let end_loc = segments
        .last()
        .map(|s| {
            let len = fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0);
            format!("segment {} ends at offset {len}", s.name())
        })
        .unwrap_or_else(|| "there are no segment files".to_owned());
    let beyond_dir: Vec<&Target> = targets
        .iter()
        .filter(|t| t.size > n && t.source == Source::Dir)
        .collect();
    if let Some(t) = beyond_dir.last() {
        let tail = match &tail_note {
            Some((loc, bytes, reason)) => format!(
                " ({bytes} unreadable bytes at segment {} offset {}: {reason})",
                loc.segment, loc.offset
            ),
            None => String::new(),
        };
        out.checkpoint(
            FindingKind::Truncated,
            &t.label,
            format!(
                "the log has {n} records but {} signs {}: records {n}..{} were removed (truncated tail; {end_loc}){tail}",
                t.label,
                t.size,
                t.size - 1
            ),
        );
    } else if let Some((loc, bytes, reason)) = &tail_note {
        out.push(
            Severity::Warning,
            FindingKind::TornTail,
            Some(n),
            Some(loc),
            None,
            format!(
                "segment {} offset {}: {bytes} bytes of a torn write ({reason}), never acknowledged; cut at next open",
                loc.segment, loc.offset
            ),
        );
    }
    for t in targets
        .iter()
        .filter(|t| t.size > n && t.source != Source::Dir)
    {
        if newest_dir.is_none_or(|d| d < t.size) {
            out.checkpoint(
                FindingKind::RolledBack,
                &t.label,
                format!(
                    "the log was rolled back: {} signs {} records, but the log has {n} and its newest checkpoint signs {}; newer records and checkpoints were removed",
                    t.label,
                    t.size,
                    newest_dir.map_or_else(|| "none".to_owned(), |d| d.to_string())
                ),
            );
        }
    }
    for t in targets
        .iter()
        .filter(|t| t.size <= n && t.source != Source::Dir)
    {
        if t.matched == Some(true)
            && !targets
                .iter()
                .any(|d| d.source == Source::Dir && d.size >= t.size)
        {
            out.checkpoint(
                FindingKind::CheckpointDeleted,
                &t.label,
                format!(
                    "{} signs {} records but no checkpoint that large is left in {}: newer checkpoints were deleted",
                    t.label,
                    t.size,
                    checkpoint::CHECKPOINT_DIR
                ),
            );
        }
    }
    let covered = targets
        .iter()
        .filter(|t| t.matched == Some(true))
        .map(|t| t.size)
        .max()
        .unwrap_or(0);
    let mismatch = targets.iter().any(|t| t.matched == Some(false));
    if n > covered && beyond_dir.is_empty() && !mismatch {
        out.push(
            Severity::Warning,
            FindingKind::Uncovered,
            Some(covered),
            None,
            None,
            format!(
                "records {covered}..{} are not covered by a signed checkpoint yet",
                n - 1
            ),
        );
    }
    Ok(Report {
        records: n,
        segments: segments.len(),
        checkpoints: valid,
        newest_checkpoint: newest_dir,
        root: st.frontier.root(),
        key,
        findings: out.0,
        elapsed: started.elapsed(),
    })
}

struct Scan {
    frontier: Frontier,
    prev_leaf: Hash,
    last_seq: Option<u64>,
    /// The previous position had a sequence anomaly (its chain link is explained by it).
    anomaly_at_prev: bool,
    prev_loc: Option<Loc>,
    /// Record already reported as modified (by CRC), to avoid a second message.
    reported_modified: Option<u64>,
    next_target: usize,
    last_good_target: u64,
}

impl Scan {
    fn record(&mut self, loc: &Loc, payload: &[u8], crc_ok: bool, out: &mut Findings) {
        let pos = self.frontier.size();
        let leaf = leaf_hash(payload);
        let seg = &loc.segment;
        let off = loc.offset;
        let mut anomaly = false;
        match parse_prefix(payload) {
            None => {
                out.error(
                    FindingKind::RecordMalformed,
                    Some(pos),
                    Some(loc),
                    format!("record at position {pos} (segment {seg} offset {off}) is not a canonical record"),
                );
                anomaly = true;
            }
            Some((seq, prev, _)) => {
                if !crc_ok {
                    out.error(
                        FindingKind::RecordModified,
                        Some(seq),
                        Some(loc),
                        format!("record {seq} (segment {seg} offset {off}) was modified: its stored crc does not match its content"),
                    );
                    self.reported_modified = Some(seq);
                }
                let expected = self.last_seq.map_or(0, |s| s.saturating_add(1));
                if seq == expected {
                    if prev != self.prev_leaf && !self.anomaly_at_prev {
                        let victim = seq.wrapping_sub(1);
                        if seq == 0 {
                            out.error(
                                FindingKind::RecordModified,
                                Some(0),
                                Some(loc),
                                format!("record 0 (segment {seg} offset {off}) was modified: its prev hash is not zero"),
                            );
                        } else if self.reported_modified != Some(victim) {
                            let at = self
                                .prev_loc
                                .as_ref()
                                .map(|l| format!("segment {} offset {}", l.segment, l.offset))
                                .unwrap_or_default();
                            out.error(
                                FindingKind::RecordModified,
                                Some(victim),
                                self.prev_loc.as_ref(),
                                format!(
                                    "record {victim} ({at}) was modified: its hash {} does not match the prev hash {} stored in record {seq} (segment {seg} offset {off})",
                                    short(&self.prev_leaf),
                                    short(&prev)
                                ),
                            );
                        }
                    }
                } else if seq > expected {
                    let what = if seq - expected == 1 {
                        format!("record {expected} is missing")
                    } else {
                        format!(
                            "records {expected}..{} are missing ({} records)",
                            seq - 1,
                            seq - expected
                        )
                    };
                    out.error(
                        FindingKind::RecordMissing,
                        Some(expected),
                        Some(loc),
                        format!("{what}: segment {seg} offset {off} holds record {seq} where record {expected} was expected"),
                    );
                    anomaly = true;
                } else {
                    // seq < expected: out of order or duplicate.
                    let swapped = seq + 2 == expected
                        && out.0.last().is_some_and(|f| {
                            f.kind == FindingKind::RecordMissing
                                && f.record == Some(seq)
                                && f.message.starts_with(&format!("record {seq} is missing"))
                        });
                    if swapped {
                        let first_off = out.0.last().and_then(|f| f.offset).unwrap_or(0);
                        out.0.pop();
                        out.error(
                            FindingKind::RecordsReordered,
                            Some(seq),
                            Some(loc),
                            format!(
                                "records {seq} and {} are swapped: record {} is at segment {} offset {first_off} and record {seq} at segment {seg} offset {off}",
                                seq + 1,
                                seq + 1,
                                self.prev_loc.as_ref().map_or(&**seg, |l| &*l.segment),
                            ),
                        );
                    } else if Some(seq) == self.last_seq {
                        out.error(
                            FindingKind::RecordDuplicated,
                            Some(seq),
                            Some(loc),
                            format!(
                                "record {seq} appears twice: again at segment {seg} offset {off}"
                            ),
                        );
                    } else {
                        out.error(
                            FindingKind::RecordsReordered,
                            Some(seq),
                            Some(loc),
                            format!(
                                "record {seq} is out of order: found at segment {seg} offset {off}, after record {}",
                                expected - 1
                            ),
                        );
                    }
                    anomaly = true;
                }
                self.last_seq = Some(self.last_seq.map_or(seq, |s| s.max(seq)));
            }
        }
        self.anomaly_at_prev = anomaly;
        self.prev_leaf = leaf;
        self.prev_loc = Some(Loc {
            segment: Rc::clone(&loc.segment),
            offset: loc.offset,
        });
        let _ = pos;
        self.frontier.push(leaf);
    }

    /// Compares the root with every target whose size is the current size.
    fn check_targets(&mut self, targets: &mut [Target], out: &mut Findings) {
        let n = self.frontier.size();
        let mut root = None;
        while let Some(t) = targets.get_mut(self.next_target) {
            if t.size > n {
                break;
            }
            self.next_target += 1;
            if t.size < n {
                continue;
            }
            let r = *root.get_or_insert_with(|| self.frontier.root());
            let ok = r == t.root;
            t.matched = Some(ok);
            if ok {
                self.last_good_target = self.last_good_target.max(n);
                continue;
            }
            let msg = match t.source {
                Source::Dir => format!(
                    "{}: the first {n} records do not hash to the signed root {} (they hash to {}): records in {}..{} were altered",
                    t.label,
                    short(&t.root),
                    short(&r),
                    self.last_good_target,
                    n - 1
                ),
                _ => format!(
                    "the log diverges from {}: its first {n} records hash to {}, not to the signed {}; history was rewritten",
                    t.label,
                    short(&r),
                    short(&t.root)
                ),
            };
            let label = t.label.clone();
            out.checkpoint(FindingKind::CheckpointMismatch, &label, msg);
        }
    }
}

fn short(h: &Hash) -> String {
    let mut s = hex::encode(h);
    s.truncate(16);
    s
}
