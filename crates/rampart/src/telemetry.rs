//! Logs (tracing, text or JSON) and metrics (a Prometheus recorder) for the whole process.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl From<rampart_config::LogFormat> for LogFormat {
    fn from(format: rampart_config::LogFormat) -> Self {
        match format {
            rampart_config::LogFormat::Text => Self::Text,
            rampart_config::LogFormat::Json => Self::Json,
        }
    }
}

/// Libraries whose warnings an attacker can trigger once per connection (h2 logs every
/// rapid-reset GOAWAY): quiet unless the filter names them, so a flood cannot become a log
/// flood. The gateway's metrics count what matters.
const QUIET_BY_DEFAULT: &[&str] = &["h2", "hyper"];

/// Installs the global log subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let directives = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => directives,
        _ => level.to_owned(),
    };
    let filter = EnvFilter::try_new(with_quiet_libraries(&directives))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

fn with_quiet_libraries(directives: &str) -> String {
    let mut filter = directives.to_owned();
    for library in QUIET_BY_DEFAULT {
        let named = directives
            .split(',')
            .any(|directive| directive.trim().split(['=', ':']).next() == Some(library));
        if !named {
            filter.push_str(&format!(",{library}=error"));
        }
    }
    filter
}

/// Installs the global metrics recorder and returns the handle that renders `/metrics`.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|error| anyhow::anyhow!("cannot install the metrics recorder: {error}"))?;
    // The recorder keeps every histogram sample until it is folded into the buckets, which
    // only a scrape or an upkeep does: without this task an unscraped gateway would hold
    // every request's duration in memory.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
const METRICS_UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_triggered_library_warnings_are_quiet_unless_asked_for() {
        assert_eq!(with_quiet_libraries("info"), "info,h2=error,hyper=error");
        assert_eq!(
            with_quiet_libraries("info,h2=debug"),
            "info,h2=debug,hyper=error"
        );
    }
}
