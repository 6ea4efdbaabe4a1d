//! Reading the log: a [`Cursor`] that walks records in order across segments and can follow
//! a log that another process is appending to (`tail -f`, `export --follow`).
//!
//! The reader never locks the log and never writes to it. It only returns complete frames
//! whose CRC matches; an incomplete frame at the end of the newest segment is a write in
//! progress and is waited for. Full integrity checking is [`crate::verify()`]'s job.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{AuditError, ErrorKind, Result};
use crate::merkle::{Hash, leaf_hash};
use crate::record::{Entry, parse_prefix};
use crate::segment::{self, Frame, Frames, HEADER_LEN, SegmentFile};

/// A stored record as read from disk, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    /// Position in the log (leaf index).
    pub index: u64,
    /// First record index of the segment holding it.
    pub segment: u64,
    /// Byte offset of its frame in that segment.
    pub offset: u64,
    /// Canonical JSON payload.
    pub payload: &'a [u8],
}

impl RawEntry<'_> {
    /// Decodes the payload.
    ///
    /// # Errors
    /// [`ErrorKind::Record`] if the payload is not a canonical entry.
    pub fn decode(&self) -> Result<Entry> {
        Entry::decode(self.payload).map_err(|reason| {
            ErrorKind::Record {
                what: format!(
                    "{} (segment {} offset {})",
                    self.index,
                    segment::file_name(self.segment),
                    self.offset
                ),
                reason,
            }
            .into()
        })
    }

    /// The sequence number stored in the payload, if the prefix is canonical.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        parse_prefix(self.payload).map(|(s, _, _)| s)
    }

    /// The Merkle leaf hash.
    #[must_use]
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(self.payload)
    }
}

/// Walks records in order, from a given index, across segments.
#[derive(Debug)]
pub struct Cursor {
    dir: PathBuf,
    /// Current segment, offset of the next frame in it, index of that frame.
    seg: Option<(SegmentFile, u64)>,
    next: u64,
    from: u64,
    buf: Vec<u8>,
}

impl Cursor {
    /// A cursor that yields records with index `from` and later.
    ///
    /// # Errors
    /// [`ErrorKind::NoLog`] if `dir` has no segments.
    pub fn new(dir: &Path, from: u64) -> Result<Self> {
        let segs = segment::list(dir)?;
        if segs.is_empty() {
            return Err(ErrorKind::NoLog {
                path: dir.to_owned(),
            }
            .into());
        }
        let start = segs
            .iter()
            .rev()
            .find(|s| s.first <= from)
            .or(segs.first())
            .cloned();
        let next = start.as_ref().map_or(0, |s| s.first);
        Ok(Self {
            dir: dir.to_owned(),
            seg: start.map(|s| (s, HEADER_LEN as u64)),
            next,
            from,
            buf: Vec::new(),
        })
    }

    /// Index of the next record the cursor will read.
    #[must_use]
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Reads every complete record available now, calling `f` for each (with index at least
    /// `from`) until `f` returns `Ok(false)`; returns how many were passed to `f`. Call again
    /// later to get new records.
    ///
    /// # Errors
    /// I/O errors, a damaged segment, or an error returned by `f`.
    pub fn poll<F>(&mut self, mut f: F) -> Result<u64>
    where
        F: FnMut(RawEntry<'_>) -> Result<bool>,
    {
        let mut emitted = 0;
        loop {
            let Some((seg, offset)) = self.seg.clone() else {
                return Ok(emitted);
            };
            self.read_from(&seg.path, offset)?;
            if offset == HEADER_LEN as u64 {
                // The buffer starts at the header's end; check the header once.
                let mut head = [0u8; HEADER_LEN];
                let mut file =
                    File::open(&seg.path).map_err(|e| AuditError::io("open", &seg.path, e))?;
                if file.read_exact(&mut head).is_ok() {
                    if segment::parse_header(&head) != Ok(seg.first) {
                        return Err(AuditError::corrupt(&seg.path, 0, "bad segment header"));
                    }
                } else {
                    return Ok(emitted); // header still being written
                }
            }
            let mut consumed = 0usize;
            for frame in Frames::at(&self.buf, 0) {
                match frame {
                    Frame::Record {
                        offset: rel,
                        payload,
                        crc_ok,
                    } => {
                        let at = offset + rel;
                        if !crc_ok {
                            return Err(AuditError::corrupt(
                                &seg.path,
                                at,
                                format!("record {} fails its crc", self.next),
                            ));
                        }
                        let mut go_on = true;
                        if self.next >= self.from {
                            go_on = f(RawEntry {
                                index: self.next,
                                segment: seg.first,
                                offset: at,
                                payload,
                            })?;
                            emitted += 1;
                        }
                        self.next += 1;
                        consumed = usize::try_from(rel).unwrap_or(usize::MAX)
                            + segment::FRAME_HEADER_LEN
                            + payload.len();
                        if !go_on {
                            self.seg = Some((seg, offset + consumed as u64));
                            return Ok(emitted);
                        }
                    }
                    Frame::Torn { .. } => break,
                }
            }
            let new_offset = offset + consumed as u64;
            self.seg = Some((seg.clone(), new_offset));
            // Move on only when a segment starting exactly at our next index exists.
            let next_path = self.dir.join(segment::file_name(self.next));
            if self.next != seg.first && next_path.exists() && next_path != seg.path {
                // Take whatever was appended to the old segment before switching.
                self.read_from(&seg.path, new_offset)?;
                if !self.buf.is_empty() {
                    continue;
                }
                self.seg = Some((
                    SegmentFile {
                        first: self.next,
                        path: next_path,
                    },
                    HEADER_LEN as u64,
                ));
                continue;
            }
            return Ok(emitted);
        }
    }

    fn read_from(&mut self, path: &Path, offset: u64) -> Result<()> {
        self.buf.clear();
        let mut file = File::open(path).map_err(|e| AuditError::io("open", path, e))?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut self.buf))
            .map_err(|e| AuditError::io("read", path, e))?;
        Ok(())
    }
}

/// Calls `f` for every record from `from` on, once (no following).
///
/// # Errors
/// As [`Cursor::poll`].
pub fn scan<F>(dir: &Path, from: u64, f: F) -> Result<u64>
where
    F: FnMut(RawEntry<'_>) -> Result<bool>,
{
    Cursor::new(dir, from)?.poll(f)
}

/// The decoded record `id`.
///
/// # Errors
/// [`ErrorKind::NotFound`] if the log has fewer records.
pub fn get(dir: &Path, id: u64) -> Result<(Entry, RawLocation)> {
    let mut cursor = Cursor::new(dir, id)?;
    let mut found = None;
    cursor.poll(|e| {
        found = Some((
            e.decode()?,
            RawLocation {
                segment: e.segment,
                offset: e.offset,
                leaf_hash: e.leaf_hash(),
            },
        ));
        Ok(false)
    })?;
    found.ok_or_else(|| {
        ErrorKind::NotFound {
            id,
            size: cursor.next_index(),
        }
        .into()
    })
}

/// Where a record is stored and its leaf hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLocation {
    /// First index of its segment.
    pub segment: u64,
    /// Byte offset of its frame.
    pub offset: u64,
    /// Its Merkle leaf hash.
    pub leaf_hash: Hash,
}

/// All leaf hashes of the log (for building proofs).
///
/// # Errors
/// As [`Cursor::poll`].
pub fn leaf_hashes(dir: &Path) -> Result<Vec<Hash>> {
    let mut out = Vec::new();
    scan(dir, 0, |e| {
        out.push(e.leaf_hash());
        Ok(true)
    })?;
    Ok(out)
}
