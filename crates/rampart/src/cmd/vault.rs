//! `rampart vault ...`: vaults (create, list), acting on the data directory's storage. They
//! need the storage to themselves: with the default redb storage, stop `rampart up` first (a
//! running plane holds the file; the error says so). Roles on vaults and their objects are
//! given with `rampart access assign PRINCIPAL ROLE --scope /vaults/NAME[/secrets/S]`.

use std::process::ExitCode;

use anyhow::Context;
use rampart_identity::rbac::SYSTEM_ACTOR;
use rampart_vault::{VaultError, VaultOptions, VaultRegistry};

use crate::auditing;
use crate::cmd::{Settings, UsageError};
use crate::datadir::DataDir;
use crate::vault;

/// `rampart vault ...`.
#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
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
}

/// Runs a vault subcommand.
pub async fn run(command: VaultCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    let config = &settings.config;
    let data = DataDir::create(&config.data.dir)?;
    let (_, _, store) = super::up::open_storage(&config.storage.backend, &data)
        .await
        .context("cannot open the storage (is `rampart up` running on this data directory? stop it first)")?;
    let audit_log = auditing::open(&data, &config.audit, "vault").await?;
    let result = execute(command, &settings, &data, store, &audit_log).await;
    auditing::close(audit_log).await;
    result
}

async fn execute(
    command: VaultCommand,
    settings: &Settings,
    data: &DataDir,
    store: std::sync::Arc<dyn rampart_storage::Backend>,
    audit_log: &rampart_audit::AuditLog,
) -> anyhow::Result<ExitCode> {
    let config = &settings.config;
    match command {
        VaultCommand::Create {
            name,
            retention_days,
            purge_protection,
        } => {
            let opened = vault::open(&config.vault, data, store).await?;
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
        VaultCommand::List => {
            let opened = vault::open(&config.vault, data, store).await?;
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
