//! Seal configuration and the unseal methods' key sources: the key file, Shamir shares and the
//! PKCS#11 HSM ([`crate::pkcs11`]).
//!
//! The seal configuration (`vault/sys/seal-config`, plaintext JSON: method, Shamir
//! parameters, HSM key label) is not secret; it is bound as associated data into the sealed
//! keyring key, so editing it (say, lowering the Shamir threshold) makes unsealing fail.
//!
//! The key file holds one line, `rampart-vault-key v1 <base64 of 32 bytes>`, mode 0600. A
//! file readable by group or others is refused.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::Key256;
use crate::error::{Result, VaultError};
use crate::pkcs11::Pkcs11Config;

const KEY_FILE_HEADER: &str = "rampart-vault-key v1 ";

/// The stored seal configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SealConfig {
    /// The unseal key is in a key file.
    KeyFile,
    /// The unseal key is split into Shamir shares.
    Shamir {
        /// Number of shares made.
        shares: u8,
        /// Shares needed to unseal.
        threshold: u8,
        /// Identifies this split; printed in every share (hex).
        key_id: String,
    },
    /// The keyring key is encrypted by an HSM key.
    Pkcs11 {
        /// The token label used at init.
        token_label: String,
        /// The key label on the token.
        key_label: String,
    },
}

impl SealConfig {
    /// The method's name, as in errors and status.
    pub fn method(&self) -> &'static str {
        match self {
            Self::KeyFile => "key-file",
            Self::Shamir { .. } => "shamir",
            Self::Pkcs11 { .. } => "pkcs11",
        }
    }
}

/// How `init` protects the new vault.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum InitMethod {
    /// A key file at this path: used if it exists, created (mode 0600) if not.
    KeyFile(PathBuf),
    /// Shamir shares of a fresh unseal key.
    Shamir {
        /// Number of shares to make (1..=255).
        shares: u8,
        /// Shares needed to unseal (2..=shares, or 1 with a single share).
        threshold: u8,
    },
    /// An AES key on a PKCS#11 token (generated there when absent).
    Pkcs11(Pkcs11Config),
}

/// What `init` hands back: with Shamir, the encoded shares (shown once, then only the
/// operators have them).
#[derive(Default)]
pub struct InitOutput {
    /// The encoded Shamir shares, empty for other methods.
    pub shares: Vec<Zeroizing<String>>,
}

impl fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitOutput")
            .field("shares", &format_args!("<{} redacted>", self.shares.len()))
            .finish()
    }
}

/// Where an unseal attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsealProgress {
    /// Whether the vault is still sealed.
    pub sealed: bool,
    /// Shares accepted so far in this attempt (0 once unsealed).
    pub progress: u8,
    /// Shares needed.
    pub threshold: u8,
}

/// The vault's seal status, as `rampart vault status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether the vault has been initialized.
    pub initialized: bool,
    /// Whether the vault is sealed.
    pub sealed: bool,
    /// The seal method (`key-file`, `shamir`, `pkcs11`), once initialized.
    pub method: Option<&'static str>,
    /// Shamir: shares made.
    pub shares: Option<u8>,
    /// Shamir: shares needed.
    pub threshold: Option<u8>,
    /// Shamir: shares accepted so far.
    pub progress: u8,
    /// The active root key generation, when unsealed.
    pub root_key_generation: Option<u32>,
}

fn key_file_error(path: &Path, reason: impl Into<String>) -> VaultError {
    VaultError::KeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the key file at `path`.
pub fn read_key_file(path: &Path) -> Result<Key256> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| key_file_error(path, e.kind().to_string()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(key_file_error(
                path,
                format!(
                    "mode {:o} lets group or others read it (want 0600)",
                    mode & 0o777
                ),
            ));
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| key_file_error(path, e.kind().to_string()))?,
    );
    let body = text
        .trim_end()
        .strip_prefix(KEY_FILE_HEADER)
        .ok_or_else(|| key_file_error(path, "not a rampart vault key file"))?;
    let raw = Zeroizing::new(
        STANDARD
            .decode(body)
            .map_err(|_| key_file_error(path, "key is not base64"))?,
    );
    Key256::from_slice(&raw).ok_or_else(|| key_file_error(path, "key is not 32 bytes"))
}

/// Creates a key file with a fresh key at `path` (mode 0600, refusing to overwrite).
pub fn create_key_file(path: &Path) -> Result<Key256> {
    let key = Key256::generate()?;
    let mut text = Zeroizing::new(String::from(KEY_FILE_HEADER));
    STANDARD.encode_string(key.expose(), &mut text);
    text.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| key_file_error(path, format!("cannot create: {}", e.kind())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_error(path, format!("cannot write: {}", e.kind())))?;
    Ok(key)
}

/// Reads the key file at `path`, creating it first if it does not exist.
pub fn read_or_create_key_file(path: &Path) -> Result<Key256> {
    if path.exists() {
        read_key_file(path)
    } else {
        create_key_file(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_permissions() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| key_file_error(Path::new("."), e.to_string()))?;
        let path = dir.path().join("vault.key");
        let key = read_or_create_key_file(&path)?;
        assert_eq!(read_key_file(&path)?.expose(), key.expose());
        assert_eq!(read_or_create_key_file(&path)?.expose(), key.expose());
        assert!(create_key_file(&path).is_err(), "must not overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| key_file_error(&path, e.to_string()))?;
            let err = read_key_file(&path).unwrap_err();
            assert!(err.to_string().contains("0600"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn malformed_key_files_are_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| key_file_error(Path::new("."), e.to_string()))?;
        for (name, text) in [
            ("a", "hello\n"),
            ("b", "rampart-vault-key v1 !!!\n"),
            ("c", "rampart-vault-key v1 AAAA\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|e| key_file_error(&path, e.to_string()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| key_file_error(&path, e.to_string()))?;
            }
            assert!(
                matches!(read_key_file(&path), Err(VaultError::KeyFile { .. })),
                "{name}"
            );
        }
        assert!(read_key_file(&dir.path().join("missing")).is_err());
        Ok(())
    }

    #[test]
    fn seal_config_json_is_stable() -> Result<()> {
        let config = SealConfig::Shamir {
            shares: 5,
            threshold: 3,
            key_id: "0a0b0c0d".into(),
        };
        let json = serde_json::to_string(&config).map_err(|e| VaultError::Corrupt {
            what: "seal config".into(),
            reason: e.to_string(),
        })?;
        assert_eq!(
            json,
            r#"{"method":"shamir","shares":5,"threshold":3,"key_id":"0a0b0c0d"}"#
        );
        Ok(())
    }
}
