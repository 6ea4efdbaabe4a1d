//! Errors of the audit crate.
//!
//! [`AuditError`] wraps a boxed [`ErrorKind`] so that `Result<_, AuditError>` stays one
//! pointer wide on the hot append path. Messages are lowercase, without a trailing period, and
//! never contain a secret value (sensitive details are redacted before they reach the log).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error from the audit log: opening it, appending to it, reading it or exporting it.
///
/// Integrity problems found by [`crate::verify`] are *not* errors: they are
/// [`crate::Finding`]s in a [`crate::Report`]. An `AuditError` means the operation itself could
/// not be carried out.
#[derive(Debug)]
pub struct AuditError {
    kind: Box<ErrorKind>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we were doing (`"open"`, `"write"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log was shut down: no more records are accepted.
    #[error("the audit log is closed")]
    Closed,
    /// An earlier write or fsync failed; the log refuses every record from then on (fail
    /// closed) until it is reopened.
    #[error("the audit log failed and refuses records: {reason}")]
    Failed {
        /// The first failure.
        reason: String,
    },
    /// Another process holds the log open for writing.
    #[error("the audit log at {} is locked by another process", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A key file is readable or writable by group or others.
    #[error("{} has insecure permissions {mode:o}: it must be 0600 (chmod 600 it)", path.display())]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key could not be parsed or generated.
    #[error("key {}: {reason}", path.display())]
    Key {
        /// The key file (or the command-line source of a verifier key).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A verifier key string (`name+hash+base64`) is malformed.
    #[error("invalid verifier key {key:?}: {reason}")]
    VerifierKey {
        /// The string given.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A signed checkpoint could not be parsed or does not verify.
    #[error("checkpoint {name}: {reason}")]
    Checkpoint {
        /// The checkpoint's file name or label.
        name: String,
        /// Why.
        reason: String,
    },
    /// The log on disk is damaged in a way that must not be repaired automatically (it is not
    /// a torn, never-acknowledged tail). Run `rampart audit verify` for details.
    #[error("audit log damaged at {} offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record is larger than the maximum record size.
    #[error("record of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A record could not be encoded or decoded.
    #[error("record {what}: {reason}")]
    Record {
        /// Which record or line.
        what: String,
        /// Why.
        reason: String,
    },
    /// No record with this id exists.
    #[error("no record {id}: the log has {size} records")]
    NotFound {
        /// The id asked for.
        id: u64,
        /// Records in the log.
        size: u64,
    },
    /// A proof was asked for a record or size that no signed checkpoint covers yet.
    #[error("{what} is not covered by a signed checkpoint yet (newest covers {covered} records)")]
    NotCovered {
        /// What was asked.
        what: String,
        /// Size of the newest checkpoint.
        covered: u64,
    },
    /// Proof arguments out of range.
    #[error("invalid proof request: {reason}")]
    Proof {
        /// Why.
        reason: String,
    },
    /// An option value is invalid.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// Sending records to a SIEM failed.
    #[error("export to {target}: {source}")]
    Export {
        /// Where we were sending.
        target: String,
        /// The network or file error.
        #[source]
        source: io::Error,
    },
    /// There is no audit log in this directory.
    #[error("no audit log at {}", path.display())]
    NoLog {
        /// The directory.
        path: PathBuf,
    },
}

impl AuditError {
    /// The kind of error.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ErrorKind::Io {
            op,
            path: path.into(),
            source,
        }
        .into()
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        ErrorKind::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn checkpoint(name: impl Into<String>, reason: impl Into<String>) -> Self {
        ErrorKind::Checkpoint {
            name: name.into(),
            reason: reason.into(),
        }
        .into()
    }
}

impl From<ErrorKind> for AuditError {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_period() {
        let errors: Vec<AuditError> = vec![
            ErrorKind::Closed.into(),
            ErrorKind::Failed {
                reason: "fsync failed".into(),
            }
            .into(),
            AuditError::corrupt("/x/seg", 12, "crc mismatch"),
            ErrorKind::NotFound { id: 3, size: 2 }.into(),
        ];
        for e in errors {
            let m = e.to_string();
            assert!(m.chars().next().is_some_and(|c| !c.is_uppercase()), "{m}");
            assert!(!m.ends_with('.'), "{m}");
        }
    }
}
