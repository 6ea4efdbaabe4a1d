//! Segment files: the append-only storage of the log.
//!
//! A segment is named after the index of its first record, zero-padded to 20 digits
//! (`00000000000000000000.seg`), and holds:
//!
//! ```text
//! header:  "RAMPAUD1" (8 bytes) | first record index (u64 little-endian)
//! frames:  payload length (u32 LE) | CRC-32C of payload (u32 LE) | payload (canonical JSON)
//! ```
//!
//! Frames are only ever appended. A crash can leave a torn last frame (short, or with a bad
//! CRC); it was never acknowledged, and [`crate::AuditLog::open`] cuts it off. Anything else
//! that does not parse is damage, which is reported, never silently repaired.

use std::fs;
use std::path::{Path, PathBuf};

use crate::crc::crc32c;
use crate::error::{AuditError, Result};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"RAMPAUD1";
/// Segment header length.
pub const HEADER_LEN: usize = 16;
/// Frame header length (length + CRC).
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest payload accepted.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// File name suffix of segments.
pub const SUFFIX: &str = ".seg";

/// The file name of the segment whose first record is `first`.
#[must_use]
pub fn file_name(first: u64) -> String {
    format!("{first:020}{SUFFIX}")
}

/// The first record index encoded in a segment file name.
#[must_use]
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a segment header.
#[must_use]
pub fn encode_header(first: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let (m, f) = h.split_at_mut(8);
    m.copy_from_slice(MAGIC);
    f.copy_from_slice(&first.to_le_bytes());
    h
}

/// Parses a segment header, returning the first record index.
///
/// # Errors
/// A description if the header is short or its magic is wrong.
pub fn parse_header(data: &[u8]) -> Result<u64, &'static str> {
    let h = data
        .get(..HEADER_LEN)
        .ok_or("segment header is incomplete")?;
    let (m, f) = h.split_at(8);
    if m != MAGIC {
        return Err("segment header has the wrong magic");
    }
    let first = <[u8; 8]>::try_from(f).map_err(|_| "segment header is incomplete")?;
    Ok(u64::from_le_bytes(first))
}

/// Appends a frame for `payload` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Fills in the frame header reserved at `start` for the payload that follows it in `buf`.
pub(crate) fn seal_frame(buf: &mut [u8], start: usize) {
    let Some((head, payload)) = buf
        .get_mut(start..)
        .map(|b| b.split_at_mut(FRAME_HEADER_LEN.min(b.len())))
    else {
        return;
    };
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32c(payload);
    let (l, c) = head.split_at_mut(4.min(head.len()));
    l.copy_from_slice(&len.to_le_bytes());
    if c.len() == 4 {
        c.copy_from_slice(&crc.to_le_bytes());
    }
}

/// One item found while scanning frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame.
    Record {
        /// Offset of the frame header in the file.
        offset: u64,
        /// The payload.
        payload: &'a [u8],
        /// Whether the stored CRC matches the payload.
        crc_ok: bool,
    },
    /// Bytes that do not form a complete frame; scanning stops here.
    Torn {
        /// Offset where the bad bytes start.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Iterates the frames of a segment's bytes (after the header).
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Frames of a whole segment file's contents, starting after the header.
    #[must_use]
    pub fn new(file: &'a [u8]) -> Self {
        Self::at(file, HEADER_LEN)
    }

    /// Frames starting at byte `pos` of `data`.
    #[must_use]
    pub fn at(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            done: false,
        }
    }

    /// Offset just after the last complete frame returned.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos as u64;
        let torn = |this: &mut Self, reason| {
            this.done = true;
            Some(Frame::Torn { offset, reason })
        };
        let Some(head) = self
            .data
            .get(self.pos..self.pos + FRAME_HEADER_LEN)
            .and_then(|h| <[u8; 8]>::try_from(h).ok())
        else {
            return torn(self, "incomplete frame header at end of file");
        };
        let [l0, l1, l2, l3, c0, c1, c2, c3] = head;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if len == 0 || len > MAX_RECORD_BYTES {
            return torn(self, "invalid frame length");
        }
        let start = self.pos + FRAME_HEADER_LEN;
        let Some(payload) = self.data.get(start..start + len) else {
            return torn(self, "frame extends past end of file");
        };
        self.pos = start + len;
        Some(Frame::Record {
            offset,
            payload,
            crc_ok: crc32c(payload) == crc,
        })
    }
}

/// A segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// First record index according to the file name.
    pub first: u64,
    /// Full path.
    pub path: PathBuf,
}

impl SegmentFile {
    /// The file name.
    #[must_use]
    pub fn name(&self) -> String {
        file_name(self.first)
    }
}

/// The segments in `dir`, sorted by first index.
///
/// # Errors
/// If the directory cannot be read.
pub fn list(dir: &Path) -> Result<Vec<SegmentFile>> {
    let rd = fs::read_dir(dir).map_err(|e| AuditError::io("read directory", dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| AuditError::io("read directory", dir, e))?;
        let name = ent.file_name();
        if let Some(first) = name.to_str().and_then(parse_file_name) {
            out.push(SegmentFile {
                first,
                path: ent.path(),
            });
        }
    }
    out.sort_by_key(|s| s.first);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_headers() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_file_name("0000000000000000042.seg"), None);
        assert_eq!(parse_file_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_header(&encode_header(9)), Ok(9));
        assert!(parse_header(b"RAMPAUD1").is_err());
        assert!(parse_header(b"XXXXXXXX12345678").is_err());
    }

    #[test]
    fn frames_detect_torn_and_damaged() {
        let mut data = encode_header(0).to_vec();
        encode_frame(&mut data, b"one");
        encode_frame(&mut data, b"two");
        let full = data.clone();
        let got: Vec<_> = Frames::new(&full).collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(
            got[1],
            Frame::Record {
                payload: b"two",
                crc_ok: true,
                ..
            }
        ));

        // Torn: cut in the middle of the second frame.
        let cut = &full[..full.len() - 1];
        let got: Vec<_> = Frames::new(cut).collect();
        assert!(matches!(
            got[1],
            Frame::Torn {
                reason: "frame extends past end of file",
                ..
            }
        ));

        // Damaged payload: CRC mismatch, scanning continues.
        let mut bad = full.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let got: Vec<_> = Frames::new(&bad).collect();
        assert!(matches!(got[1], Frame::Record { crc_ok: false, .. }));

        // Zeros after the last frame (a crash on some file systems).
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0u8; 20]);
        let got: Vec<_> = Frames::new(&zeros).collect();
        assert!(matches!(
            got[2],
            Frame::Torn {
                reason: "invalid frame length",
                ..
            }
        ));

        // sealing in place equals encode_frame
        let mut sealed = vec![0u8; 8];
        sealed.extend_from_slice(b"one");
        seal_frame(&mut sealed, 0);
        let mut enc = Vec::new();
        encode_frame(&mut enc, b"one");
        assert_eq!(sealed, enc);
    }
}
