//! The plane's audit trail: the log opened from `[audit]`, and the adapters that turn each
//! component's decisions (gateway denies, admin denials) into audit records.

use std::net::SocketAddr;

use anyhow::Context;
use rampart_audit::{AuditLog, AuditOptions, Auditor, Decision, Record, RoutinePolicy};
use rampart_config::{AuditConfig, RoutineRecords};
use rampart_gateway::{DeniedRequest, DenyObserver};

use crate::datadir::DataDir;

/// Opens (or creates) the audit log under the data dir, with its witness checkpoint beside it,
/// and records that the plane started (waiting for it: a log that cannot be written stops the
/// start, it does not run unaudited).
pub async fn open(data: &DataDir, config: &AuditConfig, command: &str) -> anyhow::Result<AuditLog> {
    let options = AuditOptions {
        checkpoint_interval: config.checkpoint_interval,
        group_commit_max_delay: config.group_commit_max_delay,
        segment_max_bytes: config.segment_max_bytes,
        routine: match config.routine_records {
            RoutineRecords::All => RoutinePolicy::All,
            RoutineRecords::None => RoutinePolicy::None,
            RoutineRecords::Sample(fraction) => RoutinePolicy::Sample(fraction),
        },
        witness: Some(rampart_audit::witness_path(data.root())),
    };
    let dir = rampart_audit::log_dir(data.root());
    let log = AuditLog::open(&dir, options)
        .with_context(|| format!("cannot open the audit log in {}", dir.display()))?;
    log.auditor()
        .record(
            Record::new("rampart", "plane.start", Decision::Allow)
                .detail("command", command)
                .detail("version", env!("CARGO_PKG_VERSION")),
        )
        .await
        .context("cannot write the audit log")?;
    Ok(log)
}

/// Writes the final signed checkpoint; says where the log is if that fails.
pub async fn close(log: AuditLog) {
    let auditor = log.auditor();
    auditor.record_routine(Record::new("rampart", "plane.stop", Decision::Allow));
    drop(auditor);
    if let Err(error) = log.shutdown().await {
        tracing::error!(%error, "the audit log could not write its final checkpoint");
    }
}

/// Sends every request the gateway denies to the audit trail.
#[derive(Debug)]
pub struct GatewayDenials(pub Auditor);

impl DenyObserver for GatewayDenials {
    fn denied(&self, denial: DeniedRequest) {
        let mut record = Record::new("gateway", "request", Decision::Deny)
            .request_id(denial.request_id)
            .source(denial.client)
            .resource(format!("{} {}", denial.method, denial.path))
            .reason(denial.reason)
            .detail("by", denial.by)
            .detail("status", denial.status.to_string());
        if !denial.rule_ids.is_empty() {
            record = record.detail("rules", denial.rule_ids.join(","));
        }
        // Denies are never sampled away; the request does not wait for the fsync.
        self.0.record_routine(record);
    }
}

/// Records an admin request refused for a missing or wrong token.
pub fn admin_denied(auditor: &Auditor, source: SocketAddr, path: &str) {
    auditor.record_routine(
        Record::new("admin", "admin.read", Decision::Deny)
            .source(source)
            .resource(path.to_owned())
            .reason("missing or wrong bearer token"),
    );
}
