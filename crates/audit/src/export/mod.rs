//! Export of the log to a SIEM: [`jsonl`], [`syslog`] (RFC 5424) and [`ocsf`], to standard
//! output, a file, or (syslog) a TCP/UDP collector; [`run`] can follow a running log.

pub mod jsonl;
pub mod ocsf;
pub mod syslog;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{ErrorKind, Result};
use crate::reader::{Cursor, RawEntry};
use crate::record::Entry;

pub use syslog::{SyslogSender, SyslogTarget};

/// Export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One canonical JSON record per line.
    Jsonl,
    /// RFC 5424 syslog messages.
    Syslog,
    /// OCSF API Activity events, one per line.
    Ocsf,
}

impl Format {
    /// Parses `jsonl`, `syslog` or `ocsf`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Self::Jsonl),
            "syslog" => Some(Self::Syslog),
            "ocsf" => Some(Self::Ocsf),
            _ => None,
        }
    }
}

/// Where exported records go.
pub enum Destination {
    /// A writer (standard output, a file).
    Writer(Box<dyn Write + Send>),
    /// A syslog collector (syslog format only).
    Syslog(SyslogSender),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Writer(_) => f.write_str("Writer"),
            Self::Syslog(s) => f.debug_tuple("Syslog").field(s).finish(),
        }
    }
}

impl Destination {
    /// Appends to (or creates, mode 0600) a file.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn file(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| crate::AuditError::io("open", path, e))?;
        Ok(Self::Writer(Box::new(std::io::BufWriter::new(f))))
    }
}

/// Formats records and sends them to a destination.
#[derive(Debug)]
pub struct Exporter {
    format: Format,
    dest: Destination,
    hostname: String,
    label: String,
    buf: Vec<u8>,
}

impl Exporter {
    /// A new exporter.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidOption`] when a network destination is used with a format other
    /// than syslog.
    pub fn new(format: Format, dest: Destination, label: impl Into<String>) -> Result<Self> {
        if matches!(dest, Destination::Syslog(_)) && format != Format::Syslog {
            return Err(ErrorKind::InvalidOption {
                name: "--to",
                reason: "network export needs --format syslog".into(),
            }
            .into());
        }
        Ok(Self {
            format,
            dest,
            hostname: syslog::hostname(),
            label: label.into(),
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Exports one record.
    ///
    /// # Errors
    /// Decoding or sending errors.
    pub fn send(&mut self, raw: &RawEntry<'_>) -> Result<()> {
        match self.format {
            Format::Jsonl => jsonl::write_line(raw.payload, &mut self.buf),
            Format::Syslog => {
                let e = raw.decode()?;
                let msg = syslog::message(&e, &raw.leaf_hash(), &self.hostname);
                if let Destination::Syslog(s) = &mut self.dest {
                    return s.send(&msg);
                }
                self.buf.extend_from_slice(msg.as_bytes());
                self.buf.push(b'\n');
            }
            Format::Ocsf => {
                let e = raw.decode()?;
                let v = ocsf::event(&e, &raw.leaf_hash());
                serde_json::to_writer(&mut self.buf, &v).map_err(|e| ErrorKind::Record {
                    what: raw.index.to_string(),
                    reason: e.to_string(),
                })?;
                self.buf.push(b'\n');
            }
        }
        if self.buf.len() >= 1 << 16 {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if let Destination::Writer(w) = &mut self.dest {
            w.write_all(&self.buf).map_err(|e| self.export_err(e))?;
        }
        self.buf.clear();
        Ok(())
    }

    fn export_err(&self, source: std::io::Error) -> crate::AuditError {
        ErrorKind::Export {
            target: self.label.clone(),
            source,
        }
        .into()
    }

    /// Flushes everything buffered.
    ///
    /// # Errors
    /// Write or network errors.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_buf()?;
        match &mut self.dest {
            Destination::Writer(w) => w.flush().map_err(|e| ErrorKind::Export {
                target: self.label.clone(),
                source: e,
            })?,
            Destination::Syslog(s) => s.flush()?,
        }
        Ok(())
    }
}

/// Exports the records from id `from` on; with `follow`, keeps exporting new records (polling
/// every `poll`) until `stop` is set. Returns how many records were exported.
///
/// # Errors
/// Reading or sending errors.
pub fn run(
    dir: &Path,
    from: u64,
    follow: bool,
    poll: Duration,
    exporter: &mut Exporter,
    stop: &AtomicBool,
) -> Result<u64> {
    let mut cursor = Cursor::new(dir, from)?;
    let mut total = 0;
    loop {
        total += cursor.poll(|e| exporter.send(&e).map(|()| !stop.load(Ordering::Relaxed)))?;
        exporter.flush()?;
        if !follow || stop.load(Ordering::Relaxed) {
            return Ok(total);
        }
        std::thread::sleep(poll);
    }
}

/// One human-readable line for a record (used by `tail` and as the syslog MSG).
#[must_use]
pub fn human_line(e: &Entry) -> String {
    use std::fmt::Write as _;
    let r = &e.record;
    let actor = if r.actor.id.is_empty() {
        "-"
    } else {
        &r.actor.id
    };
    let mut s = format!(
        "{} #{} {} {} {actor}({}) {} {}",
        r.time.to_rfc3339(3),
        e.seq,
        r.component,
        r.decision.as_str().to_ascii_uppercase(),
        if r.actor.auth.is_empty() {
            "-"
        } else {
            &r.actor.auth
        },
        r.action,
        if r.resource.is_empty() {
            "-"
        } else {
            &r.resource
        },
    );
    if !r.reason.is_empty() {
        let _ = write!(s, " reason={:?}", r.reason);
    }
    if let Some(id) = &r.request_id {
        let _ = write!(s, " req={id}");
    }
    if let Some(src) = &r.source {
        let _ = write!(s, " src={src}");
    }
    for (k, v) in &r.details {
        let _ = write!(s, " {k}={v:?}");
    }
    s.retain(|c| !c.is_control());
    s
}

/// A `key=value` filter for `tail`: keys `component`, `decision`, `action`, `actor`, `auth`,
/// `resource`; a value ending in `*` matches a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    key: FilterKey,
    value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterKey {
    Component,
    Decision,
    Action,
    Actor,
    Auth,
    Resource,
}

impl Filter {
    /// Parses `key=value`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidOption`] for an unknown key or a missing `=`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: String| -> crate::AuditError {
            ErrorKind::InvalidOption {
                name: "--filter",
                reason,
            }
            .into()
        };
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| bad(format!("{s:?} is not key=value")))?;
        let key = match k {
            "component" => FilterKey::Component,
            "decision" => FilterKey::Decision,
            "action" => FilterKey::Action,
            "actor" => FilterKey::Actor,
            "auth" => FilterKey::Auth,
            "resource" => FilterKey::Resource,
            other => {
                return Err(bad(format!(
                    "unknown key {other:?} (use component, decision, action, actor, auth or resource)"
                )));
            }
        };
        if key == FilterKey::Decision && crate::Decision::parse(v).is_none() {
            return Err(bad(format!(
                "decision must be allow, deny or error, not {v:?}"
            )));
        }
        Ok(Self {
            key,
            value: v.to_owned(),
        })
    }

    /// Whether the entry matches.
    #[must_use]
    pub fn matches(&self, e: &Entry) -> bool {
        let r = &e.record;
        let field = match self.key {
            FilterKey::Component => r.component.as_str(),
            FilterKey::Decision => r.decision.as_str(),
            FilterKey::Action => r.action.as_str(),
            FilterKey::Actor => r.actor.id.as_str(),
            FilterKey::Auth => r.actor.auth.as_str(),
            FilterKey::Resource => r.resource.as_str(),
        };
        match self.value.strip_suffix('*') {
            Some(prefix) => field.starts_with(prefix),
            None => field == self.value,
        }
    }
}

/// The path form of an export file, for messages.
#[must_use]
pub fn label_for(path: Option<&PathBuf>) -> String {
    path.map_or_else(|| "standard output".to_owned(), |p| p.display().to_string())
}
