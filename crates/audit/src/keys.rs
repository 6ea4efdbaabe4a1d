//! Key files of the log: the Ed25519 checkpoint signing key and the HMAC redaction salt.
//!
//! Both live in the log directory with mode 0600 and are created on first open:
//!
//! - `checkpoint-signing.key`: PKCS#8 (v2) DER of an Ed25519 key pair;
//! - `redaction.key`: 32 random bytes.
//!
//! A key file readable or writable by group or others is refused. The public half of the
//! signing key is published as a *verifier key* in the signed-note format
//! (`<name>+<key id hex>+<base64(0x01 || public key)>`), printed by `rampart audit pubkey`;
//! its name is also the checkpoint origin line (`rampart.local/audit/<16 hex>`).

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{AuditError, ErrorKind, Result};
use crate::hex;

/// File name of the signing key.
pub const SIGNING_KEY_FILE: &str = "checkpoint-signing.key";
/// File name of the redaction salt.
pub const REDACTION_KEY_FILE: &str = "redaction.key";

/// Algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// Creates `dir` (and parents) if needed; a directory we create gets mode 0700.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(AuditError::io(
            "create directory",
            dir,
            std::io::Error::new(IoKind::AlreadyExists, "a file is in the way"),
        )),
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| AuditError::io("create directory", dir, e)),
    }
}

/// Reads a key file, refusing insecure permissions. `Ok(None)` if it does not exist.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io("stat", path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ErrorKind::InsecurePermissions {
            path: path.to_owned(),
            mode,
        }
        .into());
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| AuditError::io("read", path, e))
}

/// Writes a new key file with mode 0600, durably; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io("create", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("write", path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsyncs a directory so that new or renamed entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io("fsync directory", dir, e))
}

fn key_error(path: &Path, reason: impl Into<String>) -> AuditError {
    ErrorKind::Key {
        path: path.to_owned(),
        reason: reason.into(),
    }
    .into()
}

/// Loads the redaction salt from `dir`, creating it if `create`.
pub(crate) fn redaction_key(dir: &Path, create: bool) -> Result<Vec<u8>> {
    let path = dir.join(REDACTION_KEY_FILE);
    if let Some(k) = read_private(&path)? {
        if k.len() < 16 {
            return Err(key_error(&path, "redaction key is shorter than 16 bytes"));
        }
        return Ok(k);
    }
    if !create {
        return Err(ErrorKind::NoLog {
            path: dir.to_owned(),
        }
        .into());
    }
    let mut k = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut k).map_err(|_| key_error(&path, "random generator failed"))?;
    write_private(&path, &k)?;
    Ok(k)
}

/// The checkpoint signer: an Ed25519 key pair and its note name.
pub struct Signer {
    pair: Ed25519KeyPair,
    verifier: VerifierKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads the signing key from `dir`, creating it if `create`.
    ///
    /// # Errors
    /// If the file is missing (and not `create`), unreadable, insecure or not a key.
    pub fn load(dir: &Path, create: bool) -> Result<Self> {
        let path = dir.join(SIGNING_KEY_FILE);
        let der = match read_private(&path)? {
            Some(d) => d,
            None if create => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| key_error(&path, "key generation failed"))?;
                write_private(&path, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            None => {
                return Err(ErrorKind::NoLog {
                    path: dir.to_owned(),
                }
                .into());
            }
        };
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|e| key_error(&path, format!("not an ed25519 pkcs#8 key: {e}")))?;
        let public = <[u8; 32]>::try_from(pair.public_key().as_ref())
            .map_err(|_| key_error(&path, "unexpected public key length"))?;
        let fp = digest::digest(&digest::SHA256, &public);
        let name = format!(
            "rampart.local/audit/{}",
            hex::encode(fp.as_ref().get(..8).unwrap_or_default())
        );
        Ok(Self {
            pair,
            verifier: VerifierKey::new(name, public),
        })
    }

    /// The public verifier key.
    #[must_use]
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }
}

/// The public key that verifies checkpoints, with its signed-note name and key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name (also the checkpoint origin).
    pub name: String,
    /// First four bytes of `SHA-256(name || "\n" || 0x01 || public key)`.
    pub key_id: [u8; 4],
    /// Ed25519 public key.
    pub public: [u8; 32],
}

impl VerifierKey {
    /// A verifier key for `name` and `public`.
    #[must_use]
    pub fn new(name: String, public: [u8; 32]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(name.as_bytes());
        ctx.update(b"\n");
        ctx.update(&[ALG_ED25519]);
        ctx.update(&public);
        let d = ctx.finish();
        let mut key_id = [0u8; 4];
        if let Some(h) = d.as_ref().get(..4) {
            key_id.copy_from_slice(h);
        }
        Self {
            name,
            key_id,
            public,
        }
    }

    /// Parses `<name>+<8 hex>+<base64(0x01 || 32-byte key)>`.
    ///
    /// # Errors
    /// If the string is malformed or the key id does not match.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| {
            AuditError::from(ErrorKind::VerifierKey {
                key: s.chars().take(200).collect(),
                reason,
            })
        };
        let s = s.trim();
        // As in golang.org/x/mod/sumdb/note: split at the first two '+' only (base64 keys
        // may contain '+').
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("invalid key name"));
        }
        if id.len() != 8 {
            return Err(bad("key id must be 8 hex digits"));
        }
        let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        let (Some(&ALG_ED25519), Some(pk)) = (raw.first(), raw.get(1..)) else {
            return Err(bad("not an ed25519 key"));
        };
        let public = <[u8; 32]>::try_from(pk).map_err(|_| bad("ed25519 key must be 32 bytes"))?;
        let vk = Self::new(name.to_owned(), public);
        if hex::encode(&vk.key_id) != id {
            return Err(bad("key id does not match name and key"));
        }
        Ok(vk)
    }

    /// Whether `sig` is a valid signature of `msg` by this key.
    #[must_use]
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.public)
            .verify(msg, sig)
            .is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(&self.public);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(&self.key_id),
            B64.encode(raw)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_private_and_reloaded() {
        let d = tempfile::tempdir().unwrap();
        let s1 = Signer::load(d.path(), true).unwrap();
        let s2 = Signer::load(d.path(), false).unwrap();
        assert_eq!(s1.verifier(), s2.verifier());
        let mode = fs::metadata(d.path().join(SIGNING_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let r1 = redaction_key(d.path(), true).unwrap();
        assert_eq!(r1, redaction_key(d.path(), false).unwrap());

        let vk = s1.verifier().to_string();
        assert!(vk.starts_with("rampart.local/audit/"));
        assert_eq!(&VerifierKey::parse(&vk).unwrap(), s1.verifier());
        let sig = s1.sign(b"msg");
        assert!(s1.verifier().verify(b"msg", &sig));
        assert!(!s1.verifier().verify(b"msh", &sig));
    }

    #[test]
    fn insecure_key_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        Signer::load(d.path(), true).unwrap();
        let p = d.path().join(SIGNING_KEY_FILE);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = Signer::load(d.path(), false).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InsecurePermissions { .. }),
            "{e}"
        );
    }

    #[test]
    fn missing_key_is_no_log() {
        let d = tempfile::tempdir().unwrap();
        let e = Signer::load(d.path(), false).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NoLog { .. }));
    }

    #[test]
    fn verifier_key_parse_rejects_bad_input() {
        let d = tempfile::tempdir().unwrap();
        let vk = Signer::load(d.path(), true).unwrap().verifier().to_string();
        let mut parts: Vec<&str> = vk.splitn(3, '+').collect();
        for bad in [
            "",
            "a+b",
            "a+00000000+AQ==",
            "na me+00000000+AQ==",
            &format!("{vk}x"),
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        }
        parts[1] = "00000000";
        assert!(VerifierKey::parse(&parts.join("+")).is_err());
    }
}
