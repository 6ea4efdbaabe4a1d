//! Parse errors.
//!
//! Every failure is a [`ParseError`]: the file it came from, the 1-based line where the
//! offending directive starts (when there is one) and an [`ErrorKind`] that carries the rejected
//! value. It displays as
//!
//! ```text
//! rules/custom.conf:12: unknown directive "SecRulez"
//! ```
//!
//! Messages are lowercase and have no trailing period.

use std::fmt;
use std::path::{Path, PathBuf};

/// A SecLang error: where it is (file, line) and what is wrong ([`ErrorKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file the directive came from (the `origin` given to [`parse_str`](crate::parse_str)
    /// for text that was not read from a file).
    pub file: PathBuf,
    /// The 1-based line where the offending directive starts; `None` for errors about a whole
    /// file (for example one that cannot be read).
    pub line: Option<u32>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(file: &Path, line: Option<u32>, kind: ErrorKind) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            kind,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ParseError {}

/// What is wrong with a piece of SecLang, carrying the rejected value.
///
/// The `Display` text is the message part of [`ParseError`]'s `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read (the top file, or one named by `Include`).
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The kind of I/O failure.
        error: std::io::ErrorKind,
    },
    /// A file is not valid UTF-8.
    #[error("{} is not valid utf-8 (first bad byte on line {line})", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the first invalid byte.
        line: u32,
    },
    /// The directive name is not one this parser knows.
    #[error("unknown directive {0:?}")]
    UnknownDirective(String),
    /// A double-quoted argument has no closing quote on its (logical) line.
    #[error("unterminated quote in argument {0:?}")]
    UnterminatedQuote(String),
    /// A comment line ends with a line continuation and the next line is a directive:
    /// ModSecurity would swallow that directive into the comment.
    #[error(
        "comment ends with a line continuation (\\) and would swallow the directive on the next line"
    )]
    CommentContinuation,
    /// A directive got the wrong number of arguments.
    #[error("wrong number of arguments for {directive}: expected {expected}, got {found}")]
    ArgumentCount {
        /// The directive, as canonically spelled (e.g. `SecRuleEngine`).
        directive: &'static str,
        /// What it takes, e.g. `"one argument"`.
        expected: &'static str,
        /// How many arguments it got.
        found: usize,
    },
    /// A directive argument is not an accepted value.
    #[error("invalid value {value:?} for {directive} (expected {expected})")]
    InvalidValue {
        /// The directive, as canonically spelled.
        directive: &'static str,
        /// The rejected value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A `SecRule` has variables but no operator argument.
    #[error("rule has no operator (expected SecRule VARIABLES \"OPERATOR\" \"ACTIONS\")")]
    MissingOperator,
    /// The operator name (after `@`) is not a known operator.
    #[error("unknown operator \"@{0}\"")]
    UnknownOperator(String),
    /// The variable list of a rule (or of a target update) is malformed.
    #[error("invalid variable {text:?}: {reason}")]
    InvalidVariable {
        /// The offending variable text.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The variable (collection) name is not a known one.
    #[error("unknown variable {0:?}")]
    UnknownVariable(String),
    /// The action list is malformed (empty action, stray text after a quoted value, ...).
    #[error("invalid action list {text:?}: {reason}")]
    ActionSyntax {
        /// The offending text.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The action name is not a known action.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A known action got a value it does not accept (or lacks a required one).
    #[error("action {action}: invalid value {value:?} (expected {expected})")]
    InvalidActionValue {
        /// The action name (lowercase).
        action: String,
        /// The rejected value (empty when the value is missing).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// `t:` names an unknown transformation.
    #[error("unknown transformation {0:?}")]
    UnknownTransformation(String),
    /// `ctl:` names an unknown sub-action.
    #[error("unknown ctl option {0:?}")]
    UnknownCtl(String),
    /// A rule with the `chain` action is not followed by a `SecRule`.
    #[error("rule {id} has the chain action but is not followed by a SecRule")]
    DanglingChain {
        /// The id of the chain starter (0 when it has none).
        id: u64,
    },
    /// A `SecRule` or `SecAction` that starts a rule has no `id` action.
    #[error(
        "rule has no id (every SecRule and SecAction needs an id action, except chained rules)"
    )]
    MissingId,
    /// Two rules have the same id.
    #[error("rule id {id} is already used at {first}")]
    DuplicateId {
        /// The id.
        id: u64,
        /// Where the first rule with that id starts (`file:line`).
        first: String,
    },
    /// An `Include` names a file (or pattern) that matches nothing.
    #[error("include {pattern:?} matches no file")]
    IncludeNotFound {
        /// The path or pattern as resolved against the including file's directory.
        pattern: String,
    },
    /// An `Include` pattern is not a valid glob pattern.
    #[error("include {pattern:?} is not a valid pattern: {reason}")]
    IncludePattern {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An `Include` names a file that is already being parsed (directly or through others).
    #[error("include cycle: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    IncludeCycle {
        /// The include chain, from the file first seen to the repeated one.
        chain: Vec<PathBuf>,
    },
    /// Includes nest deeper than the parser allows.
    #[error("includes nest deeper than {0} levels")]
    IncludeDepth(usize),
    /// `Include` was found while includes are disabled ([`Parser::without_includes`](crate::Parser::without_includes)).
    #[error("include {0:?} is not allowed here (includes are disabled)")]
    IncludeDisabled(String),
}
