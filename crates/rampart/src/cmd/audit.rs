//! `rampart audit`: read, prove, verify and export the tamper-evident audit log.
//!
//! The log lives in `<data-dir>/audit/`; these commands only read it (they never take the
//! writer lock), so they work while `rampart up` is appending. `verify` exits with 3 when it
//! finds tampering; usage errors exit with 2 and operational errors with 1.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rampart_audit::export::{
    self, Destination, Exporter, Filter, Format, SyslogSender, SyslogTarget,
};
use rampart_audit::reader::{self, Cursor};
use rampart_audit::{Severity, VerifierKey, VerifyOptions, proof, segment};

use super::UsageError;

/// How often `-f`/`--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Audit log commands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print the public key that verifies the log's signed checkpoints (signed-note verifier
    /// key). Save it: `verify --pubkey` checks against it even if the key file is replaced.
    Pubkey,
    /// Print the newest signed checkpoint. Save it outside this machine:
    /// `verify --from-checkpoint FILE` then detects a log rolled back behind it.
    Checkpoint,
    /// Print records, one human-readable line each (the last N, then new ones with -f).
    Tail {
        /// Keep printing new records as they are appended.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the newest records to print first.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        lines: usize,
        /// Only records whose KEY equals VALUE (a trailing * matches a prefix). Keys:
        /// component, decision, action, actor, auth, resource. Repeatable; all must match.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<String>,
    },
    /// Print one record (by id = sequence number) with its location and leaf hash, as JSON.
    Show {
        /// The record id.
        id: u64,
    },
    /// Print an RFC 9162 inclusion proof of record ID against the newest signed checkpoint,
    /// or with --consistency a proof that the tree of OLD_SIZE records is a prefix of it.
    Prove {
        /// The record id.
        #[arg(required_unless_present = "consistency")]
        id: Option<u64>,
        /// Prove consistency from this older tree size to the newest checkpoint instead.
        #[arg(long, value_name = "OLD_SIZE", conflicts_with = "id")]
        consistency: Option<u64>,
    },
    /// Re-hash the whole log and check every record, checkpoint signature and consistency.
    /// Exits with 3 if the log was tampered with.
    Verify {
        /// A checkpoint saved earlier (`rampart audit checkpoint > FILE`): the log must
        /// contain it and be at least as long. Repeatable.
        #[arg(long, value_name = "FILE")]
        from_checkpoint: Vec<PathBuf>,
        /// The trusted verifier key (string from `rampart audit pubkey`, or a file holding
        /// it). Default: the key in the log directory.
        #[arg(long, value_name = "KEY")]
        pubkey: Option<String>,
        /// The witness copy of the newest checkpoint [default: <data-dir>/audit-witness.ckpt
        /// when it exists].
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
    },
    /// Export records for a SIEM: jsonl, RFC 5424 syslog or OCSF, to standard output, a
    /// file, or (syslog) a TCP/UDP collector.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Append to this file instead of standard output.
        #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "to")]
        output: Option<PathBuf>,
        /// Send syslog to a collector: tcp://HOST:PORT (RFC 6587 octet counting) or
        /// udp://HOST:PORT.
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// Keep exporting new records as they are appended (until interrupted).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Start at this record id.
        #[arg(long, default_value_t = 0, value_name = "ID")]
        from: u64,
    },
    /// Read a value on standard input and print its redacted form under this log's key
    /// (`hmac-sha256:...`), to check whether a redacted detail was that value.
    Hmac,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One canonical JSON record per line (byte-identical to the log; round-trips).
    Jsonl,
    /// RFC 5424 syslog messages.
    Syslog,
    /// OCSF API Activity (class 6003) events, one JSON object per line.
    Ocsf,
}

/// Runs one audit command against the log under `data_dir`.
pub async fn run(command: AuditCommand, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let dir = rampart_audit::log_dir(data_dir);
    let data_dir = data_dir.to_owned();
    // Everything below is blocking file and socket I/O.
    tokio::task::spawn_blocking(move || run_blocking(command, &dir, &data_dir))
        .await
        .context("audit command panicked")?
}

fn no_log(dir: &Path) -> anyhow::Result<()> {
    if !dir.join(rampart_audit::SIGNING_KEY_FILE).exists() {
        anyhow::bail!(
            "no audit log at {} (start `rampart up` first, or pass --data-dir)",
            dir.display()
        );
    }
    Ok(())
}

fn run_blocking(command: AuditCommand, dir: &Path, data_dir: &Path) -> anyhow::Result<ExitCode> {
    no_log(dir)?;
    match command {
        AuditCommand::Pubkey => {
            println!("{}", rampart_audit::verifier_key(dir)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let key = rampart_audit::verifier_key(dir)?;
            match rampart_audit::checkpoint::newest_valid(dir, &key)? {
                Some((_, text)) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                None => anyhow::bail!("the audit log has no signed checkpoint yet"),
            }
        }
        AuditCommand::Tail {
            follow,
            lines,
            filters,
        } => tail(dir, follow, lines, &filters),
        AuditCommand::Show { id } => {
            let (entry, loc) = reader::get(dir, id)?;
            let record = serde_json::from_slice::<serde_json::Value>(&entry.encode()?)?;
            let out = serde_json::json!({
                "id": id,
                "segment": segment::file_name(loc.segment),
                "offset": loc.offset,
                "leaf_hash": rampart_audit::hex::encode(&loc.leaf_hash),
                "record": record,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove { id, consistency } => {
            let key = rampart_audit::verifier_key(dir)?;
            let json = match (id, consistency) {
                (_, Some(old)) => proof::prove_consistency(dir, old, &key)?.to_json(),
                (Some(id), None) => proof::prove_inclusion(dir, id, &key)?.to_json(),
                (None, None) => {
                    return Err(
                        UsageError("give a record id or --consistency OLD_SIZE".into()).into(),
                    );
                }
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            from_checkpoint,
            pubkey,
            witness,
        } => verify(dir, data_dir, &from_checkpoint, pubkey.as_deref(), witness),
        AuditCommand::Export {
            format,
            output,
            to,
            follow,
            from,
        } => export_cmd(dir, format, output, to, follow, from),
        AuditCommand::Hmac => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("read the value from standard input")?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            println!("{}", rampart_audit::redactor(dir)?.redact(value));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_key(s: &str) -> anyhow::Result<VerifierKey> {
    if let Ok(k) = VerifierKey::parse(s) {
        return Ok(k);
    }
    match std::fs::read_to_string(s) {
        Ok(text) => VerifierKey::parse(text.trim())
            .map_err(|e| UsageError(format!("--pubkey {s}: {e}")).into()),
        Err(_) => Err(UsageError(format!(
            "--pubkey {s:?} is neither a verifier key (name+id+key) nor a readable file"
        ))
        .into()),
    }
}

fn verify(
    dir: &Path,
    data_dir: &Path,
    from_checkpoint: &[PathBuf],
    pubkey: Option<&str>,
    witness: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let key = pubkey.map(parse_key).transpose()?;
    let mut trusted = Vec::new();
    for f in from_checkpoint {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("read the checkpoint {}", f.display()))?;
        trusted.push((f.display().to_string(), text));
    }
    let witness = witness.or_else(|| {
        let w = rampart_audit::witness_path(data_dir);
        w.exists().then_some(w)
    });
    let report = rampart_audit::verify(
        dir,
        &VerifyOptions {
            key,
            trusted,
            witness: witness.clone(),
        },
    )?;
    let mut out = std::io::stdout().lock();
    for f in &report.findings {
        writeln!(out, "{f}")?;
    }
    let errors = report.errors().count();
    let warnings = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let rate = report.records as f64 / report.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "{}: {} records in {} segments, {} signed checkpoints (newest signs {}), root {}, key {}{}; {errors} errors, {warnings} warnings; {:.2}s ({rate:.0} records/s)",
        if errors == 0 { "ok" } else { "FAILED" },
        report.records,
        report.segments,
        report.checkpoints,
        report
            .newest_checkpoint
            .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        rampart_audit::hex::encode(&report.root),
        report.key.name,
        witness
            .map(|w| format!(", witness {}", w.display()))
            .unwrap_or_default(),
        report.elapsed.as_secs_f64(),
    )?;
    out.flush()?;
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn tail(dir: &Path, follow: bool, lines: usize, filters: &[String]) -> anyhow::Result<ExitCode> {
    let filters = filters
        .iter()
        .map(|f| Filter::parse(f).map_err(|e| UsageError(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let keep = |e: &rampart_audit::Entry| filters.iter().all(|f| f.matches(e));
    // The newest `lines` matching records: scan from the last segment, stepping back one
    // segment at a time until enough match.
    let segs = segment::list(dir)?;
    let mut last: VecDeque<String> = VecDeque::new();
    let mut next = 0;
    for start in (0..segs.len()).rev() {
        let first = segs.get(start).map_or(0, |s| s.first);
        last.clear();
        let mut cursor = Cursor::new(dir, first)?;
        cursor.poll(|raw| {
            let e = raw.decode()?;
            if keep(&e) {
                last.push_back(export::human_line(&e));
                if last.len() > lines {
                    last.pop_front();
                }
            }
            Ok(true)
        })?;
        next = cursor.next_index();
        if last.len() >= lines || start == 0 {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    for l in &last {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut cursor = Cursor::new(dir, next)?;
    loop {
        let mut out = std::io::stdout().lock();
        cursor.poll(|raw| {
            let e = raw.decode()?;
            if keep(&e) {
                writeln!(out, "{}", export::human_line(&e)).map_err(|err| {
                    rampart_audit::AuditError::from(rampart_audit::ErrorKind::Export {
                        target: "standard output".into(),
                        source: err,
                    })
                })?;
            }
            Ok(true)
        })?;
        out.flush()?;
        drop(out);
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn export_cmd(
    dir: &Path,
    format: ExportFormat,
    output: Option<PathBuf>,
    to: Option<String>,
    follow: bool,
    from: u64,
) -> anyhow::Result<ExitCode> {
    let format = match format {
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Syslog => Format::Syslog,
        ExportFormat::Ocsf => Format::Ocsf,
    };
    let (dest, label) = match (&to, &output) {
        (Some(url), _) => {
            if format != Format::Syslog {
                return Err(UsageError("--to needs --format syslog".into()).into());
            }
            let target = SyslogTarget::parse(url).map_err(|e| UsageError(e.to_string()))?;
            (
                Destination::Syslog(SyslogSender::connect(&target)?),
                url.clone(),
            )
        }
        (None, Some(path)) => (Destination::file(path)?, path.display().to_string()),
        (None, None) => (
            Destination::Writer(Box::new(std::io::BufWriter::new(std::io::stdout()))),
            "standard output".to_owned(),
        ),
    };
    let mut exporter = Exporter::new(format, dest, label)?;
    let stop = Arc::new(AtomicBool::new(false));
    if follow {
        let stop = Arc::clone(&stop);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
    }
    let n = export::run(dir, from, follow, FOLLOW_POLL, &mut exporter, &stop)?;
    if output.is_some() || to.is_some() {
        eprintln!("exported {n} records");
    }
    Ok(ExitCode::SUCCESS)
}
