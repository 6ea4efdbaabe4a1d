//! One module per subcommand of the `rampart` binary, and the settings they share.

pub mod access;
pub mod admin_client;
pub mod audit;
pub mod config;
pub mod gateway;
pub mod identity;
pub mod up;
pub mod vault;
pub mod waf;

use std::path::{Path, PathBuf};

use rampart_config::{Config, ConfigError};

use crate::telemetry::LogFormat;

/// Exit code for configuration and usage errors.
pub const EXIT_USAGE: u8 = 2;

/// Checks an `--upstream` URL: `http://` or `https://` with a host.
pub fn parse_upstream_url(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(text.to_owned()),
        _ => Err(format!(
            "{text:?} is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:3000)"
        )),
    }
}

/// A usage error found after argument parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to the documented exit code.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let is_usage = error.chain().any(|cause| {
        cause.downcast_ref::<ConfigError>().is_some()
            || cause.downcast_ref::<UsageError>().is_some()
    });
    if is_usage { EXIT_USAGE } else { 1 }
}

/// The configuration with command-line overrides applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The validated configuration.
    pub config: Config,
    /// The log format in force.
    pub log_format: LogFormat,
    /// The configuration file, if one was given (re-read on SIGHUP).
    pub config_file: Option<PathBuf>,
    /// `--data-dir`, which wins over `data.dir` on every read.
    data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads the configuration file if any, then applies `--data-dir` and `--log-format`.
    pub fn load(
        config_file: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        log_format: Option<LogFormat>,
    ) -> anyhow::Result<Self> {
        let config = read_config(config_file.as_deref(), data_dir.as_deref())?;
        let log_format = log_format.unwrap_or_else(|| config.log.format.into());
        Ok(Self {
            config,
            log_format,
            config_file,
            data_dir,
        })
    }

    /// Reads the configuration file again, with the same command-line overrides.
    pub fn reread(&self) -> Result<Config, ConfigError> {
        read_config(self.config_file.as_deref(), self.data_dir.as_deref())
    }
}

fn read_config(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
    let mut config = match file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = data_dir {
        config.data.dir = dir.to_owned();
    }
    Ok(config)
}
