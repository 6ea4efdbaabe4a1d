//! Errors: loading a rule set (parse errors from `rampart-seclang`, compile errors from this
//! crate, each with file and line).

use std::fmt;
use std::path::PathBuf;

use rampart_seclang::{Location, ParseError};

/// What went wrong compiling a directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileErrorKind {
    /// An operator argument that does not compile (bad regex, unreadable data file, ...).
    #[error("operator @{name} {argument:?}: {reason}")]
    Operator {
        /// The operator name.
        name: String,
        /// Its argument as written.
        argument: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An operator this engine does not implement.
    #[error("unsupported operator @{0}")]
    UnsupportedOperator(String),
    /// A transformation this engine does not implement.
    #[error("unsupported transformation {0}")]
    UnsupportedTransformation(String),
    /// A variable selector regex that does not compile.
    #[error("variable selector /{pattern}/: {reason}")]
    Selector {
        /// The pattern.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Two rules with one id.
    #[error("duplicate rule id {0}")]
    DuplicateId(u64),
    /// A rule (not a chained one) without an `id`.
    #[error("rule without an id")]
    MissingId,
}

/// A compile error with the directive's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// What went wrong.
    pub kind: CompileErrorKind,
    /// The file of the directive.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: u32,
}

impl CompileError {
    pub(crate) fn new(kind: CompileErrorKind, location: &Location) -> Self {
        Self {
            kind,
            file: location.file.to_path_buf(),
            line: location.line,
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.kind)
    }
}

impl std::error::Error for CompileError {}

/// Loading a rule set failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The SecLang text did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A directive did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
}
