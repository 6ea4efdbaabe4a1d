//! `rampart vault ...`: the seal (`status`, `init`, `unseal`) and the vaults (`create`,
//! `list`), through the running plane's admin API (`/vault/...`, with the admin token from the
//! data directory). `create` and `list` also work without a running plane, on the data
//! directory's storage directly (the storage must then be free: a running plane holds the
//! redb file). Roles on vaults and their objects are given with
//! `rampart access assign PRINCIPAL ROLE --scope /vaults/NAME[/secrets/S]`.
//!
//! Shamir shares are printed once, to stdout only, by `init`, and read by `unseal` from stdin
//! (a prompt without echo on a terminal), never from the command line (other users see it).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use rampart_identity::rbac::SYSTEM_ACTOR;
use rampart_vault::{VaultError, VaultOptions, VaultRegistry};
use serde_json::{Value, json};

use crate::auditing;
use crate::cmd::admin_client;
use crate::cmd::{Settings, UsageError};
use crate::datadir::DataDir;
use crate::vault;

/// `rampart vault ...`.
#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Show the seal: initialized, sealed, seal type, threshold, unseal progress.
    Status,
    /// Initialize a Shamir-sealed vault on the running plane: prints the shares once (stdout
    /// only; the plane keeps none) and leaves the vault sealed until a quorum comes back.
    Init {
        /// Number of shares to make (1-255).
        #[arg(long, default_value_t = 5)]
        shares: u8,
        /// Shares needed to unseal (2..=shares; 1 only with a single share).
        #[arg(long, default_value_t = 3)]
        threshold: u8,
    },
    /// Submit one unseal share (read from stdin, or a prompt on a terminal) to the running
    /// plane; prints the progress ("2 of 3") or that the vault is unsealed.
    Unseal,
    /// Create a vault (soft-delete retention and purge protection are fixed at creation).
    Create {
        /// The vault name: 3-24 letters, digits and '-', starting with a letter.
        name: String,
        /// Days a deleted object stays recoverable (7 to 90).
        #[arg(long, default_value_t = 90)]
        retention_days: u32,
        /// Refuse purges of deleted objects (irreversible).
        #[arg(long)]
        purge_protection: bool,
    },
    /// List the vaults.
    List,
    /// Switch the running vault API's read-only mode (as during a regional failover: reads and
    /// cryptographic operations continue, changes get 503 ReadOnlyMode), or show it. In memory
    /// only: a restart starts from `[vault] read_only` again.
    ReadOnly {
        /// `on`, `off`, or `status`.
        #[arg(value_enum)]
        switch: ReadOnlySwitch,
    },
}

/// What `rampart vault read-only` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadOnlySwitch {
    /// Refuse changes from now on.
    On,
    /// Accept changes again.
    Off,
    /// Show the current mode.
    Status,
}

/// Runs a vault subcommand.
pub async fn run(command: VaultCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    let data_dir = settings.config.data.dir.clone();
    match command {
        VaultCommand::Status => {
            let status = admin_client::call(&data_dir, None, "GET", "/vault/status", None).await?;
            print_status(&status);
        }
        VaultCommand::Init { shares, threshold } => {
            let body = json!({ "shares": shares, "threshold": threshold });
            let answer =
                admin_client::call(&data_dir, None, "POST", "/vault/init", Some(body)).await?;
            print_shares(&answer)?;
        }
        VaultCommand::Unseal => {
            let share = read_share()?;
            let answer = admin_client::call(
                &data_dir,
                None,
                "POST",
                "/vault/unseal",
                Some(json!({ "share": share.trim() })),
            )
            .await?;
            if answer["sealed"].as_bool() == Some(false) {
                println!("vault unsealed");
            } else {
                println!(
                    "unseal progress: {} of {} (still sealed)",
                    answer["progress"], answer["threshold"]
                );
            }
        }
        VaultCommand::Create {
            name,
            retention_days,
            purge_protection,
        } => {
            let op = RegistryOp::Create {
                name,
                retention_days,
                purge_protection,
            };
            return registry(op, settings).await;
        }
        VaultCommand::List => return registry(RegistryOp::List, settings).await,
        VaultCommand::ReadOnly { switch } => {
            let answer = match switch {
                ReadOnlySwitch::Status => {
                    admin_client::call(&data_dir, None, "GET", "/vault/read-only", None).await?
                }
                ReadOnlySwitch::On | ReadOnlySwitch::Off => {
                    let body = json!({ "read_only": switch == ReadOnlySwitch::On });
                    admin_client::call(&data_dir, None, "PUT", "/vault/read-only", Some(body))
                        .await?
                }
            };
            let mode = if answer["read_only"].as_bool() == Some(true) {
                "on (reads and cryptographic operations continue; changes get 503 ReadOnlyMode)"
            } else {
                "off"
            };
            println!("read-only: {mode}");
            println!(
                "at restart: {} ([vault] read_only; this switch is not persisted)",
                if answer["configured"].as_bool() == Some(true) {
                    "on"
                } else {
                    "off"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The vault registry operations, which also work without a running plane.
#[derive(Debug)]
enum RegistryOp {
    Create {
        name: String,
        retention_days: u32,
        purge_protection: bool,
    },
    List,
}

/// A registry operation through the running plane, or on the storage when none runs.
async fn registry(command: RegistryOp, settings: Settings) -> anyhow::Result<ExitCode> {
    let config = &settings.config;
    if admin_client::running_plane(&config.data.dir)
        .await
        .is_some()
    {
        return through_plane(command, &config.data.dir).await;
    }
    let data = DataDir::create(&config.data.dir)?;
    let (_, _, store) = super::up::open_storage(&config.storage.backend, &data)
        .await
        .context("cannot open the storage (is `rampart up` running on this data directory? stop it first)")?;
    let audit_log = auditing::open(&data, &config.audit, "vault").await?;
    let result = execute(command, &settings, &data, store, &audit_log).await;
    auditing::close(audit_log).await;
    result
}

fn print_status(status: &Value) {
    let text = |key: &str| match &status[key] {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("initialized   {}", text("initialized"));
    println!("sealed        {}", text("sealed"));
    println!("seal type     {}", text("seal_type"));
    if !status["threshold"].is_null() {
        println!(
            "threshold     {} of {} shares",
            text("threshold"),
            text("shares")
        );
        println!(
            "progress      {} of {}",
            text("progress"),
            text("threshold")
        );
    }
    if !status["root_key_generation"].is_null() {
        println!("root key      generation {}", text("root_key_generation"));
    }
}

fn print_shares(answer: &Value) -> anyhow::Result<()> {
    let shares = answer["shares"]
        .as_array()
        .context("the plane answered without shares")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "The vault is initialized and sealed. Give each share to a different operator; they are\n\
         shown this once and the plane keeps none. {} of them unseal the vault:\n\
         `rampart vault unseal`, one share per run.\n",
        answer["threshold"]
    )?;
    for (index, share) in shares.iter().enumerate() {
        writeln!(
            out,
            "share {}: {}",
            index + 1,
            share.as_str().context("a share is not text")?
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One share from stdin; on a terminal, asked for on stderr with echo off.
fn read_share() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("Unseal share (input hidden): ");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read the share from stdin")?;
    if line.trim().is_empty() {
        return Err(UsageError(
            "no share given (pipe it on stdin, or type it at the prompt)".into(),
        )
        .into());
    }
    Ok(line)
}

/// Turns the terminal's echo off or on (best effort, with `stty`).
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

/// `create` and `list` through the running plane's admin API.
async fn through_plane(command: RegistryOp, data_dir: &Path) -> anyhow::Result<ExitCode> {
    match command {
        RegistryOp::Create {
            name,
            retention_days,
            purge_protection,
        } => {
            let body = json!({
                "name": name,
                "retention_days": retention_days,
                "purge_protection": purge_protection,
            });
            let info =
                admin_client::call(data_dir, None, "POST", "/vault/vaults", Some(body)).await?;
            println!(
                "created vault {} (retention {} days, purge protection {}, geography {})",
                info["name"].as_str().unwrap_or_default(),
                info["retention_days"],
                if info["purge_protection"].as_bool() == Some(true) {
                    "on"
                } else {
                    "off"
                },
                info["geography"].as_str().unwrap_or_default()
            );
        }
        RegistryOp::List => {
            let vaults = admin_client::call(data_dir, None, "GET", "/vault/vaults", None).await?;
            for info in vaults.as_array().into_iter().flatten() {
                println!(
                    "{}\tretention_days={}\tpurge_protection={}\tgeography={}\trecovery_level={}",
                    info["name"].as_str().unwrap_or_default(),
                    info["retention_days"],
                    info["purge_protection"],
                    info["geography"].as_str().unwrap_or_default(),
                    info["recovery_level"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn execute(
    command: RegistryOp,
    settings: &Settings,
    data: &DataDir,
    store: std::sync::Arc<dyn rampart_storage::Backend>,
    audit_log: &rampart_audit::AuditLog,
) -> anyhow::Result<ExitCode> {
    let config = &settings.config;
    match command {
        RegistryOp::Create {
            name,
            retention_days,
            purge_protection,
        } => {
            let opened = vault::open(&config.vault, data, store).await?;
            ensure_unsealed(&opened)?;
            let registry = VaultRegistry::new(opened.store.barrier().clone());
            let options = VaultOptions {
                retention_days,
                purge_protection,
                geography: config.vault.geography.clone(),
            };
            let info = registry
                .create(&name, &options)
                .await
                .map_err(|e| match e {
                    VaultError::AlreadyExists { .. } | VaultError::InvalidSetting { .. } => {
                        anyhow::Error::new(UsageError(e.to_string()))
                    }
                    other => anyhow::Error::new(other),
                })?;
            audit_log
                .auditor()
                .record(
                    rampart_audit::Record::new(
                        "vault",
                        "vault.create",
                        rampart_audit::Decision::Allow,
                    )
                    .actor(SYSTEM_ACTOR, "local")
                    .resource(format!("/vaults/{}", info.name))
                    .detail("retention_days", info.retention_days.to_string())
                    .detail("purge_protection", info.purge_protection.to_string()),
                )
                .await?;
            println!(
                "created vault {} (retention {} days, purge protection {}, geography {})",
                info.name,
                info.retention_days,
                if info.purge_protection { "on" } else { "off" },
                info.geography
            );
        }
        RegistryOp::List => {
            let opened = vault::open(&config.vault, data, store).await?;
            ensure_unsealed(&opened)?;
            let registry = VaultRegistry::new(opened.store.barrier().clone());
            for info in registry.list().await? {
                println!(
                    "{}\tretention_days={}\tpurge_protection={}\tgeography={}\trecovery_level={}",
                    info.name,
                    info.retention_days,
                    info.purge_protection,
                    info.geography,
                    info.recovery_level()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a running plane, a Shamir-sealed vault cannot be opened here.
fn ensure_unsealed(opened: &vault::OpenVault) -> anyhow::Result<()> {
    if opened.barrier().is_sealed() {
        return Err(UsageError(
            "the vault uses the Shamir seal: start `rampart up`, unseal it (`rampart vault unseal`), then run this again (it goes through the running plane)".into(),
        )
        .into());
    }
    Ok(())
}
