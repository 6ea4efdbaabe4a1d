//! Signed checkpoints in the C2SP `tlog-checkpoint` / `signed-note` format.
//!
//! A checkpoint commits to the first `size` records of the log:
//!
//! ```text
//! rampart.local/audit/1a2b3c4d5e6f7a8b          <- origin (= key name)
//! 1000                                          <- tree size
//! 0LZ2...base64 root hash...=                   <- RFC 9162 root, base64
//! timestamp 2026-01-01T00:00:00.000000000Z      <- extension line (time of signing)
//!
//! — rampart.local/audit/1a2b3c4d5e6f7a8b AbCd...base64(key id || Ed25519 signature)...
//! ```
//!
//! The signature covers the body (the first four lines including their newlines); the key id
//! is the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`, as in
//! `golang.org/x/mod/sumdb/note`. Checkpoints are stored as `checkpoints/<size 20 digits>.ckpt`
//! in the log directory, one file per tree size.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{AuditError, Result};
use crate::keys::{Signer, VerifierKey, sync_dir};
use crate::merkle::Hash;
use crate::time::Timestamp;

/// Directory (inside the log directory) holding checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// File name suffix of checkpoints.
pub const SUFFIX: &str = ".ckpt";
const SIG_PREFIX: &str = "\u{2014} ";
const TIME_PREFIX: &str = "timestamp ";

/// The content of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin line: identifies the log.
    pub origin: String,
    /// Number of records committed to.
    pub size: u64,
    /// Merkle root of those records.
    pub root: Hash,
    /// When it was signed.
    pub timestamp: Timestamp,
}

impl Checkpoint {
    /// The note body.
    #[must_use]
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{TIME_PREFIX}{}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.timestamp
        )
    }

    /// Signs the checkpoint, giving the full note text.
    #[must_use]
    pub fn sign(&self, signer: &Signer) -> String {
        let body = self.body();
        let vk = signer.verifier();
        let mut sig = vk.key_id.to_vec();
        sig.extend_from_slice(&signer.sign(body.as_bytes()));
        format!("{body}\n{SIG_PREFIX}{} {}\n", vk.name, B64.encode(sig))
    }
}

/// Why a checkpoint note was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not a well-formed checkpoint note.
    Malformed(String),
    /// No signature line is from the trusted key (the note was signed by another key, or
    /// its signature lines were removed).
    UnknownKey,
    /// A signature line names the trusted key but the signature does not verify: the body was
    /// changed after signing, or the signature forged.
    BadSignature,
    /// The origin line is not the trusted key's log.
    WrongOrigin(String),
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(r) => write!(f, "malformed checkpoint: {r}"),
            Self::UnknownKey => f.write_str("not signed by the trusted key"),
            Self::BadSignature => f.write_str("signature does not verify (forged or altered)"),
            Self::WrongOrigin(o) => write!(f, "origin {o:?} is not this log"),
        }
    }
}

fn malformed(r: impl Into<String>) -> NoteError {
    NoteError::Malformed(r.into())
}

/// Parses a note's body into a checkpoint, without checking signatures.
///
/// # Errors
/// If the note is malformed.
pub fn parse_unverified(text: &str) -> Result<(Checkpoint, &str, &str), NoteError> {
    if text.len() > 64 * 1024 {
        return Err(malformed("note is larger than 64 KiB"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed("note contains control characters"));
    }
    let Some(split) = text.find("\n\n") else {
        return Err(malformed("no blank line between body and signatures"));
    };
    let (body, sigs) = text.split_at(split + 1);
    let sigs = sigs.get(1..).unwrap_or_default();
    let mut lines = body.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(malformed("body must have origin, size and root hash lines"));
    };
    if origin.is_empty() {
        return Err(malformed("empty origin line"));
    }
    if size.is_empty()
        || !size.bytes().all(|c| c.is_ascii_digit())
        || (size.len() > 1 && size.starts_with('0'))
    {
        return Err(malformed(format!(
            "tree size {size:?} is not a decimal number"
        )));
    }
    let size: u64 = size
        .parse()
        .map_err(|_| malformed("tree size out of range"))?;
    let root = B64
        .decode(root)
        .ok()
        .and_then(|r| <Hash>::try_from(r).ok())
        .ok_or_else(|| malformed("root hash is not 32 bytes of base64"))?;
    let mut timestamp = None;
    for ext in lines {
        if ext.is_empty() {
            return Err(malformed("empty line in body"));
        }
        if let Some(t) = ext.strip_prefix(TIME_PREFIX) {
            timestamp = Some(Timestamp::parse(t).map_err(malformed)?);
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no timestamp line"))?;
    if !sigs.ends_with('\n') {
        return Err(malformed("signature block must end with a newline"));
    }
    Ok((
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            timestamp,
        },
        body,
        sigs,
    ))
}

/// Parses a note and checks that `key` signed it.
///
/// # Errors
/// [`NoteError`] says what is wrong.
pub fn verify_note(text: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
    let (cp, body, sigs) = parse_unverified(text)?;
    let mut found = false;
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
            return Err(malformed(format!("bad signature line {line:?}")));
        };
        let Some((name, sig)) = rest.split_once(' ') else {
            return Err(malformed("signature line lacks a signature"));
        };
        if name != key.name {
            continue;
        }
        let raw = B64
            .decode(sig)
            .map_err(|_| malformed("signature is not base64"))?;
        let (Some(id), Some(sig)) = (raw.get(..4), raw.get(4..)) else {
            return Err(malformed("signature too short"));
        };
        if id != key.key_id {
            continue;
        }
        found = true;
        if !key.verify(body.as_bytes(), sig) {
            return Err(NoteError::BadSignature);
        }
    }
    if !found {
        return Err(NoteError::UnknownKey);
    }
    if cp.origin != key.name {
        return Err(NoteError::WrongOrigin(cp.origin));
    }
    Ok(cp)
}

/// The file name of the checkpoint for `size`.
#[must_use]
pub fn file_name(size: u64) -> String {
    format!("{size:020}{SUFFIX}")
}

/// The tree size encoded in a checkpoint file name.
#[must_use]
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A checkpoint file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFile {
    /// Tree size from the file name.
    pub size: u64,
    /// Full path.
    pub path: PathBuf,
}

impl CheckpointFile {
    /// `checkpoints/<name>`, for messages.
    #[must_use]
    pub fn display_name(&self) -> String {
        format!("{CHECKPOINT_DIR}/{}", file_name(self.size))
    }
}

/// The checkpoint files of the log in `log_dir`, by size.
///
/// # Errors
/// If the directory exists but cannot be read.
pub fn list(log_dir: &Path) -> Result<Vec<CheckpointFile>> {
    let dir = log_dir.join(CHECKPOINT_DIR);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io("read directory", &dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| AuditError::io("read directory", &dir, e))?;
        if let Some(size) = ent.file_name().to_str().and_then(parse_file_name) {
            out.push(CheckpointFile {
                size,
                path: ent.path(),
            });
        }
    }
    out.sort_by_key(|c| c.size);
    Ok(out)
}

/// Writes `text` to `path` atomically and durably (temporary file, fsync, rename, fsync dir).
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint")
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| AuditError::io("create", &tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| AuditError::io("rename", path, e))?;
    sync_dir(dir)
}

/// Stores a signed checkpoint note in `log_dir/checkpoints/`.
pub(crate) fn store(log_dir: &Path, size: u64, text: &str) -> Result<PathBuf> {
    let dir = log_dir.join(CHECKPOINT_DIR);
    crate::keys::ensure_private_dir(&dir)?;
    let path = dir.join(file_name(size));
    write_atomic(&path, text)?;
    Ok(path)
}

/// Reads the newest checkpoint note in `log_dir` that `key` signed, if any.
///
/// # Errors
/// If the directory cannot be read.
pub fn newest_valid(log_dir: &Path, key: &VerifierKey) -> Result<Option<(Checkpoint, String)>> {
    for f in list(log_dir)?.iter().rev() {
        let Ok(text) = fs::read_to_string(&f.path) else {
            continue;
        };
        if let Ok(cp) = verify_note(&text, key)
            && cp.size == f.size
        {
            return Ok(Some((cp, text)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Signer) {
        let d = tempfile::tempdir().unwrap();
        let s = Signer::load(d.path(), true).unwrap();
        (d, s)
    }

    fn cp(s: &Signer, size: u64) -> Checkpoint {
        Checkpoint {
            origin: s.verifier().name.clone(),
            size,
            root: [7; 32],
            timestamp: Timestamp::from_unix_nanos(1_767_225_600_000_000_000),
        }
    }

    #[test]
    fn signs_and_verifies() {
        let (_d, s) = setup();
        let text = cp(&s, 10).sign(&s);
        assert!(text.contains("\n10\n"));
        assert!(text.contains("\n\n\u{2014} rampart.local/audit/"));
        assert_eq!(verify_note(&text, s.verifier()).unwrap(), cp(&s, 10));
    }

    #[test]
    fn detects_forgery() {
        let (_d, s) = setup();
        let (_d2, other) = setup();
        let text = cp(&s, 10).sign(&s);
        let altered = text.replacen("\n10\n", "\n11\n", 1);
        assert_eq!(
            verify_note(&altered, s.verifier()),
            Err(NoteError::BadSignature)
        );
        let foreign = cp(&other, 10).sign(&other);
        assert_eq!(
            verify_note(&foreign, s.verifier()),
            Err(NoteError::UnknownKey)
        );
        let unsigned = text.split("\n\n").next().unwrap().to_owned() + "\n\n";
        assert!(verify_note(&unsigned, s.verifier()).is_err());
        for bad in ["", "x\n", "o\n1\nAA==\n\n", "o\n01\nAA==\ntimestamp x\n\n"] {
            assert!(matches!(
                verify_note(bad, s.verifier()),
                Err(NoteError::Malformed(_))
            ));
        }
    }

    #[test]
    fn stores_and_lists() {
        let (d, s) = setup();
        for n in [3, 1, 2] {
            store(d.path(), n, &cp(&s, n).sign(&s)).unwrap();
        }
        let l = list(d.path()).unwrap();
        assert_eq!(l.iter().map(|c| c.size).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(
            newest_valid(d.path(), s.verifier())
                .unwrap()
                .unwrap()
                .0
                .size,
            3
        );
    }
}
