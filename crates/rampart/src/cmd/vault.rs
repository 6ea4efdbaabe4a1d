//! `rampart vault ...`: vaults (create, list) and role assignments on vault objects, acting on
//! the data directory's storage. They need the storage to themselves: with the default redb
//! storage, stop `rampart up` first (a running plane holds the file; the error says so).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rampart_identity::Principal;
use rampart_identity::rbac::{
    AccessControl, AccessError, AccessOptions, AssignmentKind, SYSTEM_ACTOR, Scope, SystemClock,
};
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
    /// Give a principal (a token's oid, e.g. a workload's) a role on a vault or one of its
    /// secrets, keys or certificates (built-in roles: "Key Vault Secrets User", "Key Vault
    /// Secrets Officer", "Key Vault Administrator", ...).
    Assign {
        /// The principal id (`oid`), or `group:<name>`.
        #[arg(long)]
        principal: String,
        /// The role name or id.
        #[arg(long)]
        role: String,
        /// The vault [default: vault.default_vault].
        #[arg(long)]
        vault: Option<String>,
        /// Narrow the scope to this secret.
        #[arg(long)]
        secret: Option<String>,
    },
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
    store: Arc<dyn rampart_storage::Backend>,
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
        VaultCommand::Assign {
            principal,
            role,
            vault: vault_name,
            secret,
        } => {
            let vault_name = vault_name.unwrap_or_else(|| config.vault.default_vault.clone());
            let scope = match &secret {
                Some(secret) => Scope::secret(&vault_name, secret),
                None => Scope::vault(&vault_name),
            }
            .map_err(|e| UsageError(e.to_string()))?;
            let access = AccessControl::open(
                store,
                audit_log.auditor(),
                Arc::new(SystemClock),
                AccessOptions::default(),
            )
            .await?;
            // Whoever holds the data directory administers it: the local system actor is
            // made the first access administrator if there is none yet.
            let actor = Principal::local(SYSTEM_ACTOR);
            match access.bootstrap(&actor, SYSTEM_ACTOR).await {
                Ok(_) | Err(AccessError::AlreadyBootstrapped) => {}
                Err(e) => return Err(e.into()),
            }
            let assignment = access
                .assign(&actor, &principal, &role, &scope, AssignmentKind::Permanent)
                .await
                .map_err(|e| match e {
                    AccessError::UnknownRole { .. }
                    | AccessError::InvalidPrincipal { .. }
                    | AccessError::AssignmentExists { .. } => {
                        anyhow::Error::new(UsageError(e.to_string()))
                    }
                    other => anyhow::Error::new(other),
                })?;
            println!(
                "assigned {role:?} to {principal} at {scope} (assignment {})",
                assignment.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
