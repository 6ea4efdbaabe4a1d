//! `rampart config`: validate a configuration file, or print the commented example.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_config::Config;

/// Configuration commands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file without starting anything; errors name file, line and key.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print a fully commented example configuration with every setting and its default.
    Example,
}

/// Runs one configuration command.
pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check { file } => {
            Config::load(&file)?;
            println!("{}: ok", file.display());
        }
        ConfigCommand::Example => print!("{}", rampart_config::example()),
    }
    Ok(ExitCode::SUCCESS)
}
