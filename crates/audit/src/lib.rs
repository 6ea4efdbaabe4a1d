//! Rampart's audit trail: a tamper-evident, signed, offline-verifiable log exportable to a SIEM.
//!
//! - **Records** ([`Record`]) say who did what to which resource, with which outcome. Sensitive
//!   values are replaced by `hmac-sha256:<hex>` under a per-log salt ([`Redactor`]).
//! - **Storage**: append-only segment files ([`segment`]) of CRC-framed canonical JSON
//!   records. Each record is a leaf of an RFC 9162 Merkle tree ([`merkle`]) and carries its
//!   sequence number and the previous leaf hash (a hash chain).
//! - **Checkpoints** ([`checkpoint`]): the tree size and root, signed with Ed25519 in the C2SP
//!   signed-note format, written periodically and at shutdown, optionally copied to a witness
//!   file outside the log directory.
//! - **Writing** ([`AuditLog`], [`Auditor`]): group commit (one write + one fsync per batch);
//!   [`Auditor::record`] waits until durable and fails closed.
//! - **Reading** ([`reader`]), **proofs** ([`proof`]), **verification** ([`verify()`]) and
//!   **export** ([`export`]: jsonl, RFC 5424 syslog over TCP/UDP, OCSF).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_audit::AuditError> {
//! use rampart_audit::{AuditLog, AuditOptions, Decision, Record};
//!
//! let data_dir = std::path::Path::new("rampart-data");
//! let log = AuditLog::open(
//!     rampart_audit::log_dir(data_dir),
//!     AuditOptions { witness: Some(rampart_audit::witness_path(data_dir)), ..Default::default() },
//! )?;
//! let auditor = log.auditor(); // clone one into every component
//! // A sensitive operation: wait until durable, refuse the operation on error (fail closed).
//! let receipt = auditor
//!     .record(
//!         Record::new("vault", "secret.delete", Decision::Allow)
//!             .actor("alice", "jwt")
//!             .resource("secrets/db")
//!             .sensitive_detail("token", "eyJ..."),
//!     )
//!     .await?;
//! println!("audit record {}", receipt.seq);
//! // A routine event: queued, sampled per the policy (denials never are).
//! auditor.record_routine(Record::new("gateway", "request", Decision::Allow));
//! log.shutdown().await?; // final signed checkpoint
//! # Ok(()) }
//! ```
//!
//! # On disk
//!
//! ```text
//! <data_dir>/audit/                  0700
//!   LOCK                             writer lock
//!   checkpoint-signing.key           Ed25519 PKCS#8, 0600
//!   redaction.key                    HMAC salt, 0600
//!   00000000000000000000.seg         segments, named by first record id
//!   checkpoints/<size>.ckpt          signed checkpoints, named by tree size
//!   torn/<segment>-<offset>.bin      torn tails cut at reopen (forensics)
//! <data_dir>/audit-witness.ckpt      copy of the newest checkpoint (see [`witness_path`])
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod checkpoint;
mod crc;
pub mod error;
pub mod export;
pub mod hex;
mod keys;
mod log;
pub mod merkle;
pub mod proof;
pub mod reader;
mod record;
mod recover;
mod redact;
pub mod segment;
mod time;
pub mod verify;

use std::path::{Path, PathBuf};

pub use checkpoint::Checkpoint;
pub use error::{AuditError, ErrorKind};
pub use keys::{REDACTION_KEY_FILE, SIGNING_KEY_FILE, Signer, VerifierKey};
pub use log::{AuditLog, AuditOptions, Auditor, Receipt, RoutinePolicy, StatsSnapshot};
pub use record::{Actor, Decision, Entry, Record};
pub use redact::{REDACTED_PREFIX, Redactor};
pub use time::Timestamp;
pub use verify::{Finding, FindingKind, Report, Severity, VerifyOptions, verify};

/// The log directory inside a data directory: `<data_dir>/audit`.
#[must_use]
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

/// The default witness file for a data directory: `<data_dir>/audit-witness.ckpt`, outside
/// the log directory. Point [`AuditOptions::witness`] at another disk or host mount when one
/// is available.
#[must_use]
pub fn witness_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit-witness.ckpt")
}

/// The public verifier key of the log in `dir`.
///
/// # Errors
/// [`ErrorKind::NoLog`] if there is no signing key, or it cannot be read.
pub fn verifier_key(dir: &Path) -> Result<VerifierKey, AuditError> {
    Signer::load(dir, false).map(|s| s.verifier().clone())
}

/// The redactor of the log in `dir` (for `rampart audit hmac`).
///
/// # Errors
/// [`ErrorKind::NoLog`] if there is no redaction key, or it cannot be read.
pub fn redactor(dir: &Path) -> Result<Redactor, AuditError> {
    keys::redaction_key(dir, false).map(|k| Redactor::new(&k))
}
