//! The `rampart` binary: the command line, wiring of the components, and exit codes.
//! Engines live in the library crates; this crate only connects them.

mod access_http;
mod admin;
mod admin_reply;
mod auditing;
mod cmd;
mod datadir;
mod demo;
mod edge;
mod identity_gate;
mod identity_http;
mod plane;
mod telemetry;
mod tls;
mod vault;
mod vault_http;
mod vault_tls;
mod waf;

/// mimalloc instead of glibc malloc: the request paths allocate many small short-lived
/// objects, and glibc's malloc/free (with its fastbin consolidation) took about a sixth of the
/// vault's CPU per secret GET and ~7% of the gateway's; mimalloc's per-thread free lists make
/// that cheaper (bench/README.md, vault and gateway-proxy).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::telemetry::LogFormat;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  runtime error (a port in use, storage unreachable, an I/O failure)
  2  usage or configuration error (the message names file, line and key)
  3  integrity check failed (`rampart audit verify` found tampering)";

/// Rampart: the security plane of a mission-critical service, in one binary.
///
/// Start with `rampart up`: it runs the whole plane on this machine with embedded defaults,
/// in front of a demo app (or `--upstream URL`), and prints what to try.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about, after_help = EXIT_CODES)]
struct Cli {
    /// Configuration file (TOML). Without one, the safe built-in defaults apply;
    /// `rampart config example` prints every setting.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "RAMPART_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Where keys, storage and the audit log live [default: ./rampart-data, or data.dir
    /// from the configuration file].
    #[arg(long, global = true, env = "RAMPART_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log line format [default: text, or log.format from the configuration file].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the whole plane on this machine: gateway, demo app, admin endpoint, storage,
    /// audit log. Ctrl-C or SIGTERM stops it gracefully.
    Up(cmd::up::UpArgs),
    /// Run only the edge gateway in front of an upstream (`--upstream URL`).
    Gateway(cmd::gateway::GatewayArgs),
    /// The token issuer and managed-identity endpoint: run them alone (`serve`), and manage
    /// the OAuth clients and the workloads that get tokens.
    #[command(subcommand)]
    Identity(cmd::identity::IdentityCommand),
    /// Create and list vaults (acting on the data directory; stop `rampart up` first when it
    /// uses the default redb storage).
    #[command(subcommand)]
    Vault(cmd::vault::VaultCommand),
    /// Role assignments, explained access checks and just-in-time elevation (request,
    /// approve, revoke), through the running plane.
    Access(cmd::access::AccessArgs),
    /// Check or print configuration files.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Read, prove, verify and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Check WAF rule sets, and run the OWASP CRS regression suite against the engine.
    #[command(subcommand)]
    Waf(cmd::waf::WafCommand),
    /// Print a shell completion script (e.g. `rampart completions bash > /etc/bash_completion.d/rampart`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rampart: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            let code = cmd::exit_code_for(&error);
            eprintln!("rampart: {error:#}");
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "rampart",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(command) => cmd::config::run(command),
        Command::Up(args) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::up::run(args, settings).await
        }
        Command::Gateway(args) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::gateway::run(args, settings).await
        }
        Command::Waf(command) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::waf::run(command, &settings.config)
        }
        Command::Identity(command) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::identity::run(command, settings).await
        }
        Command::Vault(command) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::vault::run(command, settings).await
        }
        Command::Access(args) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::access::run(args, settings).await
        }
        Command::Audit(command) => {
            let settings = cmd::Settings::load(cli.config, cli.data_dir, cli.log_format)?;
            cmd::audit::run(command, &settings.config.data.dir).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
