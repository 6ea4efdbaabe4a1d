//! Configuration errors.
//!
//! Every failure is a [`ConfigError`]: the file it came from, the 1-based line of the offending
//! text (when there is one), the dotted key (when there is one) and a [`ConfigErrorKind`] that
//! carries the rejected value and says what would have been accepted. It displays as
//!
//! ```text
//! rampart.toml:12: gateway.listen: "0.0.0.0:99999" is not a socket address (expected IP:PORT, e.g. "127.0.0.1:8443")
//! ```
//!
//! Messages are lowercase and have no trailing period. Secrets never appear in them: URLs are
//! passed through [`redact_url`](crate::redact_url) before they are stored in an error.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::format_duration;

/// A configuration error: where it is (file, line, key) and what is wrong ([`ConfigErrorKind`]).
#[derive(Debug)]
pub struct ConfigError {
    /// The configuration file, as given to [`Config::load`](crate::Config::load) or as the
    /// `origin` of [`Config::from_toml_str`](crate::Config::from_toml_str).
    pub file: PathBuf,
    /// The 1-based line of the offending text, when the error has a position.
    pub line: Option<usize>,
    /// The dotted key, e.g. `gateway.listen`, when the error concerns one key or section.
    pub key: Option<String>,
    /// What is wrong (boxed: errors travel up many frames, the success path stays small).
    pub kind: Box<ConfigErrorKind>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong with a configuration, carrying the rejected value.
///
/// The `Display` text is the message part of [`ConfigError`]'s `file:line: key: message`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The configuration file could not be read.
    #[error("cannot read config file: {error}")]
    Io {
        /// The underlying I/O error.
        error: std::io::Error,
    },

    /// The text is not valid TOML.
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The TOML parser's description of the problem.
        message: String,
    },

    /// A top-level table that is not one of the known sections.
    #[error("unknown section{} (expected one of: {})", suggest(*.suggestion), .valid.join(", "))]
    UnknownSection {
        /// The unknown section name.
        name: String,
        /// The closest known section, if one is close.
        suggestion: Option<&'static str>,
        /// The known sections.
        valid: &'static [&'static str],
    },

    /// A key that its section does not have.
    #[error("unknown key{} (expected one of: {})", suggest(*.suggestion), .valid.join(", "))]
    UnknownKey {
        /// The unknown key (without its section).
        name: String,
        /// The closest known key of the section, if one is close.
        suggestion: Option<&'static str>,
        /// The keys the section accepts.
        valid: &'static [&'static str],
    },

    /// A value of the wrong TOML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the key takes, e.g. `a string`.
        expected: String,
        /// The type (and, for scalars, the value) that was found, e.g. `integer 8443`.
        found: String,
    },

    /// A deserialization failure not covered by the other kinds.
    #[error("{message}")]
    Invalid {
        /// The deserializer's message.
        message: String,
    },

    /// A string that is not an `IP:PORT` socket address.
    #[error("{value:?} is not a socket address (expected IP:PORT, e.g. {example:?})")]
    InvalidSocketAddr {
        /// The rejected value.
        value: String,
        /// A valid example (the key's default).
        example: &'static str,
    },

    /// An admin listener on a non-loopback address without `dangerous_public_admin = true`.
    #[error(
        "\"{addr}\" is not a loopback address (the admin listener serves metrics and health \
         probes to this host only; use 127.0.0.1 or [::1], or set admin.dangerous_public_admin = true)"
    )]
    PublicAdmin {
        /// The rejected address.
        addr: SocketAddr,
    },

    /// Two listeners on the same port.
    #[error("\"{addr}\" is already used by {other} (each listener needs its own port)")]
    ListenConflict {
        /// The rejected address.
        addr: SocketAddr,
        /// The key of the listener that already has it.
        other: &'static str,
    },

    /// A string that is not one of a fixed set of choices.
    #[error("{value:?} is not a {what} (expected {expected})")]
    InvalidChoice {
        /// The rejected value.
        value: String,
        /// What the value names, e.g. `log format`.
        what: &'static str,
        /// The accepted choices.
        expected: &'static str,
    },

    /// A `log.level` that is not a valid filter.
    #[error(
        "{value:?} is not a log filter: {reason} (expected a level trace, debug, info, warn, \
         error or off, or comma-separated target=level directives, e.g. \"info,rampart_gateway=debug\")"
    )]
    InvalidLogFilter {
        /// The rejected value.
        value: String,
        /// Which part is wrong.
        reason: String,
    },

    /// A `gateway.upstream` that is neither `demo` nor an acceptable URL.
    #[error(
        "{value:?} is not a valid upstream: {reason} (expected \"demo\" or an http:// or https:// \
         URL with a host, e.g. \"http://127.0.0.1:3000\")"
    )]
    InvalidUpstream {
        /// The rejected value, with credentials redacted.
        value: String,
        /// Which part is wrong.
        reason: String,
    },

    /// A key that is required by the value of another key, and missing.
    #[error("missing, required when {condition} (expected {expected})")]
    Required {
        /// The condition that requires the key, e.g. `gateway.tls = "files"`.
        condition: &'static str,
        /// What the key takes.
        expected: &'static str,
    },

    /// A key that only applies when another key has a certain value.
    #[error("only allowed when {condition} (remove it, or set {condition})")]
    NotApplicable {
        /// The condition under which the key applies.
        condition: &'static str,
    },

    /// `gateway.dangerous_plaintext = true` together with `gateway.tls = "files"` or `"vault"`.
    #[error(
        "plain HTTP cannot be combined with gateway.tls = \"files\" or \"vault\" (set \
         dangerous_plaintext = false to serve TLS with that certificate, or remove tls and its \
         certificate keys)"
    )]
    PlaintextWithCertFiles,

    /// An empty string where a value is needed.
    #[error("must not be empty (expected {expected})")]
    Empty {
        /// What the key takes.
        expected: &'static str,
    },

    /// A path starting with `~`, which nothing expands.
    #[error(
        "{value:?} starts with \"~\", which is not expanded to the home directory (expected \
         an absolute path or one relative to {relative_to})"
    )]
    HomeRelativePath {
        /// The rejected path.
        value: String,
        /// What relative paths of this key are relative to.
        relative_to: &'static str,
    },

    /// A string that is not a duration.
    #[error(
        "{value:?} is not a duration: {reason} (expected a whole number followed by ms, s, m or h, \
         e.g. {example:?})"
    )]
    InvalidDuration {
        /// The rejected value.
        value: String,
        /// Which part is wrong.
        reason: String,
        /// A valid example (the key's default).
        example: &'static str,
    },

    /// A duration outside the key's range.
    #[error("{value:?} is out of range (expected {} to {})", format_duration(*.min), format_duration(*.max))]
    DurationOutOfRange {
        /// The rejected value, as written.
        value: String,
        /// The smallest accepted duration.
        min: Duration,
        /// The largest accepted duration.
        max: Duration,
    },

    /// An integer outside the key's range.
    #[error("{value} is out of range (expected {min} to {max})")]
    IntegerOutOfRange {
        /// The rejected value.
        value: i64,
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },

    /// A byte size outside the key's range.
    #[error("{value} is out of range (expected {} to {} bytes)", format_bytes(*.min), format_bytes(*.max))]
    ByteSizeOutOfRange {
        /// The rejected value.
        value: i64,
        /// The smallest accepted size in bytes.
        min: u64,
        /// The largest accepted size in bytes.
        max: u64,
    },

    /// A `storage.postgres_url` that is not a PostgreSQL connection URL.
    #[error(
        "{value:?} is not a PostgreSQL URL (expected postgres:// or postgresql://, e.g. \
         \"postgres://rampart@127.0.0.1:5432/rampart\")"
    )]
    InvalidPostgresUrl {
        /// The rejected value, with credentials redacted.
        value: String,
    },

    /// An `identity.issuer_url` that is not an http(s) URL usable as a token issuer.
    #[error(
        "{value:?} is not an issuer URL (expected https:// or http:// with a host, no trailing \
         slash, query or fragment, e.g. \"https://id.example.com\")"
    )]
    InvalidIssuerUrl {
        /// The rejected value.
        value: String,
    },

    /// A `storage.postgres_table` that is not a plain lowercase SQL identifier.
    #[error(
        "{value:?} is not a valid table name (expected a lowercase letter or _ followed by up to 62 \
         lowercase letters, digits or _, e.g. \"rampart_kv\")"
    )]
    InvalidTableName {
        /// The rejected value.
        value: String,
    },

    /// A data rate that is not `<bytes>B/<duration>`.
    #[error(
        "{value:?} is not a data rate (expected bytes per duration, 1 to 1073741824 bytes per \
         1s to 1h, e.g. \"1024B/10s\")"
    )]
    InvalidDataRate {
        /// The rejected value.
        value: String,
    },

    /// A trusted proxy that is not an address or a CIDR network.
    #[error(
        "{value:?} is not a network: {reason} (expected an IP address or CIDR, e.g. \"10.0.0.0/8\" or \"::1\")"
    )]
    InvalidNetwork {
        /// The rejected value.
        value: String,
        /// Which part is wrong.
        reason: String,
    },

    /// A rate-limit key that is not `client-ip`, `principal` or `header:NAME`.
    #[error(
        "{value:?} is not a rate-limit key (expected \"client-ip\", \"principal\" or \
         \"header:NAME\" with a valid header name, e.g. \"header:x-api-key\")"
    )]
    InvalidRateLimitKey {
        /// The rejected value.
        value: String,
    },

    /// A Redis URL that is not `redis://` or `rediss://`.
    #[error(
        "{value:?} is not a Redis URL (expected redis:// or rediss://, e.g. \"redis://127.0.0.1:6379\")"
    )]
    InvalidRedisUrl {
        /// The rejected value, with credentials redacted.
        value: String,
    },

    /// A route host that is not a host name or `*.domain`.
    #[error(
        "{value:?} is not a host (expected a host name such as \"api.example.com\" or a \
         wildcard such as \"*.example.com\", without port or scheme)"
    )]
    InvalidHost {
        /// The rejected value.
        value: String,
    },

    /// A route path prefix that does not start with `/`.
    #[error("{value:?} is not a path prefix (expected a path starting with \"/\", e.g. \"/api\")")]
    InvalidPathPrefix {
        /// The rejected value.
        value: String,
    },

    /// A number outside the key's range.
    #[error("{value} is out of range (expected more than {min} and at most {max})")]
    NumberOutOfRange {
        /// The rejected value.
        value: f64,
        /// The exclusive lower bound.
        min: f64,
        /// The inclusive upper bound.
        max: f64,
    },

    /// An `audit.routine_records` that is not `all`, `none` or a fraction.
    #[error(
        "{value:?} is not a record setting (expected \"all\", \"none\" or a sample fraction \
         between 0 and 1, e.g. \"0.1\")"
    )]
    InvalidRoutineRecords {
        /// The rejected value.
        value: String,
    },
}

fn suggest(suggestion: Option<&'static str>) -> String {
    match suggestion {
        Some(name) => format!(", did you mean {name:?}?"),
        None => String::new(),
    }
}

/// `1048576` -> `1048576 (1 MiB)`; sizes that are not whole MiB or GiB print as plain numbers.
fn format_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{bytes} ({} GiB)", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{bytes} ({} MiB)", bytes / MIB)
    } else {
        bytes.to_string()
    }
}
