//! RFC 5424 syslog export, over TCP (RFC 6587 octet counting) or UDP (RFC 5426, one message
//! per datagram), or to a file (one message per line).
//!
//! ```text
//! <84>1 2026-01-01T00:00:00.000001Z host rampart - secret.delete [audit@32473 seq="7"
//!   component="vault" actor="alice" auth="jwt" action="secret.delete" resource="secrets/db"
//!   decision="deny" reason="policy" request_id="r1" source="10.0.0.1:5555"
//!   leaf="<hex leaf hash>"][details@32473 key="value"] BOM alice(jwt) secret.delete ...
//! ```
//!
//! - PRI: facility authpriv (10); severity informational (6) for allow, warning (4) for deny,
//!   error (3) for error.
//! - TIMESTAMP: the record's time in UTC with microseconds (RFC 5424 allows at most six
//!   fraction digits).
//! - APP-NAME `rampart`, PROCID `-`, MSGID = the action (printable ASCII, at most 32 chars).
//! - STRUCTURED-DATA: `audit@32473` with the record fields and `details@32473` with the
//!   details (32473 is the documentation enterprise number of RFC 5612); PARAM-VALUEs escape
//!   `"`, `\` and `]` (RFC 5424 section 6.3.3); PARAM-NAMEs are cut to 32 printable ASCII
//!   characters without `=`, space, `]` or `"`.
//! - MSG: a UTF-8 BOM and the human-readable line.

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use crate::error::{ErrorKind, Result};
use crate::hex;
use crate::merkle::Hash;
use crate::record::{Decision, Entry};

/// Facility authpriv.
pub const FACILITY_AUTHPRIV: u8 = 10;
/// SD-ID of the record fields.
pub const SD_AUDIT: &str = "audit@32473";
/// SD-ID of the details.
pub const SD_DETAILS: &str = "details@32473";

/// The syslog severity of a decision.
#[must_use]
pub fn severity(d: Decision) -> u8 {
    match d {
        Decision::Allow => 6,
        Decision::Deny => 4,
        Decision::Error => 3,
    }
}

fn push_escaped(out: &mut String, v: &str) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// An RFC 5424 SD-NAME or MSGID made of printable ASCII, at most 32 characters.
fn token(s: &str, forbid_sd: bool) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            let ok = c.is_ascii_graphic() && !(forbid_sd && matches!(c, '=' | ']' | '"'));
            if ok { c } else { '_' }
        })
        .take(32)
        .collect();
    if t.is_empty() { "-".to_owned() } else { t }
}

fn param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(&token(name, true));
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// The RFC 5424 message for an entry.
#[must_use]
pub fn message(entry: &Entry, leaf: &Hash, hostname: &str) -> String {
    let r = &entry.record;
    let pri = FACILITY_AUTHPRIV * 8 + severity(r.decision);
    let mut m = format!(
        "<{pri}>1 {} {} rampart - {} [{SD_AUDIT}",
        r.time.to_rfc3339(6),
        token(hostname, false),
        token(&r.action, false),
    );
    param(&mut m, "seq", &entry.seq.to_string());
    param(&mut m, "component", &r.component);
    param(&mut m, "actor", &r.actor.id);
    param(&mut m, "auth", &r.actor.auth);
    param(&mut m, "action", &r.action);
    param(&mut m, "resource", &r.resource);
    param(&mut m, "decision", r.decision.as_str());
    param(&mut m, "reason", &r.reason);
    if let Some(id) = &r.request_id {
        param(&mut m, "request_id", id);
    }
    if let Some(s) = &r.source {
        param(&mut m, "source", s);
    }
    param(&mut m, "leaf", &hex::encode(leaf));
    m.push(']');
    if !r.details.is_empty() {
        m.push('[');
        m.push_str(SD_DETAILS);
        for (k, v) in &r.details {
            param(&mut m, k, v);
        }
        m.push(']');
    }
    m.push_str(" \u{feff}");
    m.push_str(&super::human_line(entry));
    m
}

/// Where syslog messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// TCP with octet-counting framing.
    Tcp(String),
    /// UDP, one datagram per message.
    Udp(String),
}

impl SyslogTarget {
    /// Parses `tcp://host:port` or `udp://host:port`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidOption`] for other forms.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            ErrorKind::InvalidOption {
                name: "--to",
                reason: format!("{s:?} is not tcp://HOST:PORT or udp://HOST:PORT"),
            }
            .into()
        };
        let (t, addr) = if let Some(a) = s.strip_prefix("tcp://") {
            (Self::Tcp(a.to_owned()), a)
        } else if let Some(a) = s.strip_prefix("udp://") {
            (Self::Udp(a.to_owned()), a)
        } else {
            return Err(bad());
        };
        match addr.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(t),
            _ => Err(bad()),
        }
    }
}

/// A connected syslog sender.
#[derive(Debug)]
pub enum SyslogSender {
    /// TCP stream.
    Tcp(std::io::BufWriter<TcpStream>, String),
    /// UDP socket connected to the collector.
    Udp(UdpSocket, String),
}

fn export_err(target: &str, source: std::io::Error) -> crate::AuditError {
    ErrorKind::Export {
        target: target.to_owned(),
        source,
    }
    .into()
}

impl SyslogSender {
    /// Connects to the target.
    ///
    /// # Errors
    /// [`ErrorKind::Export`] if it cannot connect.
    pub fn connect(target: &SyslogTarget) -> Result<Self> {
        match target {
            SyslogTarget::Tcp(a) => {
                let s = TcpStream::connect(a).map_err(|e| export_err(a, e))?;
                let _ = s.set_nodelay(true);
                Ok(Self::Tcp(std::io::BufWriter::new(s), format!("tcp://{a}")))
            }
            SyslogTarget::Udp(a) => {
                let peer = a
                    .to_socket_addrs()
                    .map_err(|e| export_err(a, e))?
                    .next()
                    .ok_or_else(|| export_err(a, std::io::Error::other("no address")))?;
                let bind = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind).map_err(|e| export_err(a, e))?;
                s.connect(peer).map_err(|e| export_err(a, e))?;
                Ok(Self::Udp(s, format!("udp://{a}")))
            }
        }
    }

    /// Sends one message.
    ///
    /// # Errors
    /// [`ErrorKind::Export`] on network errors.
    pub fn send(&mut self, msg: &str) -> Result<()> {
        match self {
            Self::Tcp(w, t) => write!(w, "{} {msg}", msg.len()).map_err(|e| export_err(t, e)),
            Self::Udp(s, t) => s
                .send(msg.as_bytes())
                .map(|_| ())
                .map_err(|e| export_err(t, e)),
        }
    }

    /// Flushes buffered TCP data.
    ///
    /// # Errors
    /// [`ErrorKind::Export`] on network errors.
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Self::Tcp(w, t) => w.flush().map_err(|e| export_err(t, e)),
            Self::Udp(..) => Ok(()),
        }
    }
}

/// This machine's host name (`-` if unknown), for the HOSTNAME field.
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Timestamp};

    #[test]
    fn formats_rfc5424() {
        let e = Entry {
            seq: 3,
            prev: [0; 32],
            record: Record::new("vault", "secret delete", Decision::Deny)
                .at(Timestamp::from_unix_nanos(1_767_225_600_123_456_789))
                .actor("al\"ice", "jwt")
                .reason("a]b\\c")
                .detail("k=ey", "v"),
        };
        let m = message(&e, &[1; 32], "host name");
        assert!(m.starts_with("<84>1 2026-01-01T00:00:00.123456Z host_name rampart - secret_delete [audit@32473 seq=\"3\""), "{m}");
        assert!(m.contains(r#"actor="al\"ice""#), "{m}");
        assert!(m.contains(r#"reason="a\]b\\c""#), "{m}");
        assert!(m.contains(r#"[details@32473 k_ey="v"]"#), "{m}");
        assert!(m.contains(" \u{feff}"));
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            SyslogTarget::parse("tcp://127.0.0.1:514").unwrap(),
            SyslogTarget::Tcp("127.0.0.1:514".into())
        );
        assert_eq!(
            SyslogTarget::parse("udp://[::1]:514").unwrap(),
            SyslogTarget::Udp("[::1]:514".into())
        );
        for bad in [
            "127.0.0.1:514",
            "tcp://",
            "tcp://host",
            "tcp://:5",
            "http://a:1",
            "udp://a:99999",
        ] {
            assert!(SyslogTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
