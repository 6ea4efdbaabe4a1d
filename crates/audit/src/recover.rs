//! Reopening a log: re-hash every segment, check it, and cut a torn tail.
//!
//! On open the writer rebuilds its Merkle frontier and hash-chain head from the segments. The
//! scan is strict: a broken sequence, hash chain, segment header or a checkpoint (or the
//! witness copy) that does not match the records refuses the open with
//! [`crate::ErrorKind::Corrupt`] (the log fails closed and `rampart audit verify` says more).
//!
//! The only repair is the torn tail left by a crash: in the last segment, from the first
//! incomplete or damaged frame to the end of the file, provided no valid frame follows it and
//! no signed checkpoint covers it. Such bytes were never fsynced, hence never acknowledged;
//! they are copied to `torn/<segment>-<offset>.bin` for forensics and cut off.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::error::{AuditError, Result};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::parse_prefix;
use crate::segment::{self, Frame, Frames, HEADER_LEN, SegmentFile};

/// What the writer needs to continue the log.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub frontier: Frontier,
    pub prev: Hash,
    /// The last segment and its valid length, if any segment exists.
    pub last: Option<(SegmentFile, u64)>,
}

/// A signed size the records must reproduce (newest checkpoint, witness).
#[derive(Debug)]
pub(crate) struct Anchor<'a> {
    pub label: String,
    pub checkpoint: &'a Checkpoint,
}

pub(crate) fn recover(dir: &Path, anchors: &[Anchor<'_>]) -> Result<Recovered> {
    let segments = segment::list(dir)?;
    let mut frontier = Frontier::new();
    let mut prev = [0u8; 32];
    let covered = anchors.iter().map(|a| a.checkpoint.size).max().unwrap_or(0);
    let check_anchors = |f: &Frontier| -> Result<()> {
        for a in anchors {
            if a.checkpoint.size == f.size() && a.checkpoint.root != f.root() {
                return Err(AuditError::corrupt(
                    dir,
                    0,
                    format!(
                        "the first {} records do not hash to the root signed by {}; the log was altered",
                        f.size(),
                        a.label
                    ),
                ));
            }
        }
        Ok(())
    };
    check_anchors(&frontier)?;
    let mut last = None;
    let count = segments.len();
    for (i, seg) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let data = fs::read(&seg.path).map_err(|e| AuditError::io("read", &seg.path, e))?;
        if seg.first != frontier.size() {
            return Err(AuditError::corrupt(
                &seg.path,
                0,
                format!(
                    "segment starts at record {} but the previous segments end at {}",
                    seg.first,
                    frontier.size()
                ),
            ));
        }
        match segment::parse_header(&data) {
            Ok(first) if first == seg.first => {}
            Ok(first) => {
                return Err(AuditError::corrupt(
                    &seg.path,
                    0,
                    format!("segment header says it starts at record {first}"),
                ));
            }
            Err(_) if is_last && data.len() <= HEADER_LEN => {
                // Crash while creating the segment: rewrite its header.
                tracing::warn!(segment = %seg.path.display(), "rewriting incomplete segment header");
                rewrite_header(&seg)?;
                last = Some((seg, HEADER_LEN as u64));
                break;
            }
            Err(reason) => return Err(AuditError::corrupt(&seg.path, 0, reason)),
        }
        let mut frames = Frames::new(&data);
        let mut valid_end = HEADER_LEN as u64;
        let mut torn: Option<(u64, &'static str)> = None;
        for frame in &mut frames {
            let (offset, payload) = match frame {
                Frame::Torn { offset, reason } => {
                    torn.get_or_insert((offset, reason));
                    break;
                }
                Frame::Record {
                    offset,
                    crc_ok: false,
                    ..
                } => {
                    torn.get_or_insert((offset, "crc mismatch"));
                    continue;
                }
                Frame::Record {
                    offset,
                    payload,
                    crc_ok: true,
                } => (offset, payload),
            };
            if let Some((bad, reason)) = torn {
                return Err(AuditError::corrupt(
                    &seg.path,
                    bad,
                    format!(
                        "{reason}, yet a valid record follows at offset {offset}: the record was modified"
                    ),
                ));
            }
            let Some((seq, p, _)) = parse_prefix(payload) else {
                return Err(AuditError::corrupt(
                    &seg.path,
                    offset,
                    "record is not canonical",
                ));
            };
            if seq != frontier.size() {
                return Err(AuditError::corrupt(
                    &seg.path,
                    offset,
                    format!("expected record {} but found record {seq}", frontier.size()),
                ));
            }
            if p != prev {
                return Err(AuditError::corrupt(
                    &seg.path,
                    offset,
                    format!(
                        "hash chain broken: record {seq} does not follow record {}",
                        seq.wrapping_sub(1)
                    ),
                ));
            }
            let leaf = leaf_hash(payload);
            frontier.push(leaf);
            prev = leaf;
            valid_end = offset + (segment::FRAME_HEADER_LEN + payload.len()) as u64;
            check_anchors(&frontier)?;
        }
        if let Some((offset, reason)) = torn {
            if !is_last || frontier.size() < covered {
                return Err(AuditError::corrupt(&seg.path, offset, reason));
            }
            cut_torn_tail(dir, &seg, &data, valid_end, reason)?;
        }
        if is_last {
            last = Some((seg, valid_end));
        }
    }
    if frontier.size() < covered {
        let a = anchors
            .iter()
            .max_by_key(|a| a.checkpoint.size)
            .map(|a| a.label.clone())
            .unwrap_or_default();
        return Err(AuditError::corrupt(
            dir,
            0,
            format!(
                "the log has {} records but {a} signs {covered}: records were removed",
                frontier.size()
            ),
        ));
    }
    Ok(Recovered {
        frontier,
        prev,
        last,
    })
}

fn rewrite_header(seg: &SegmentFile) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&seg.path)
        .map_err(|e| AuditError::io("open", &seg.path, e))?;
    f.write_all(&segment::encode_header(seg.first))
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("write", &seg.path, e))
}

fn cut_torn_tail(
    dir: &Path,
    seg: &SegmentFile,
    data: &[u8],
    valid_end: u64,
    reason: &str,
) -> Result<()> {
    let tail = data
        .get(usize::try_from(valid_end).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    let torn_dir = dir.join("torn");
    crate::keys::ensure_private_dir(&torn_dir)?;
    let keep = torn_dir.join(format!("{}-{valid_end}.bin", seg.name()));
    fs::write(&keep, tail).map_err(|e| AuditError::io("write", &keep, e))?;
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&seg.path)
        .map_err(|e| AuditError::io("open", &seg.path, e))?;
    f.set_len(valid_end)
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("truncate", &seg.path, e))?;
    tracing::warn!(
        segment = %seg.path.display(),
        offset = valid_end,
        bytes = tail.len(),
        reason,
        saved = %keep.display(),
        "cut the torn tail of the audit log (never acknowledged)"
    );
    Ok(())
}
