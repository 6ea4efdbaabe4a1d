//! `rampart access ...`: role assignments, explained access checks and just-in-time elevation,
//! through the running plane's access API (`/access/...` on the admin listener).
//!
//! The command acts as the local admin (admin token from the data dir) unless `--token` (or
//! `RAMPART_TOKEN`) gives an access token: then it acts as that token's principal, which is
//! how a requester and a different approver use the same commands.

use std::process::ExitCode;

use serde_json::json;

use super::Settings;

/// `rampart access ...`.
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Act as the principal of this access token instead of the local admin.
    #[arg(long, env = "RAMPART_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: AccessCommand,
}

/// The access subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AccessCommand {
    /// Give PRINCIPAL (an id or group:NAME) ROLE at --scope (permanent, or --eligible for
    /// just-in-time elevation).
    Assign {
        principal: String,
        role: String,
        #[arg(long, default_value = "/")]
        scope: String,
        #[arg(long)]
        eligible: bool,
    },
    /// Remove an assignment by id.
    Unassign { id: String },
    /// List assignments (optionally of one principal, at or around one scope).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        scope: Option<String>,
    },
    /// List the role definitions.
    Roles,
    /// Explain whether PRINCIPAL may do ACTION at SCOPE (a data action unless --management).
    Check {
        principal: String,
        action: String,
        scope: String,
        /// PRINCIPAL's groups, for group assignments.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        management: bool,
    },
    /// Ask to activate an eligible ROLE at --scope for --for (e.g. 1h), with a reason.
    Request {
        role: String,
        #[arg(long)]
        scope: String,
        #[arg(long = "for", value_parser = parse_duration)]
        duration: std::time::Duration,
        #[arg(long)]
        reason: String,
    },
    /// List elevation requests (yours; --all for everyone's).
    Requests {
        #[arg(long)]
        pending: bool,
        #[arg(long)]
        all: bool,
    },
    /// Approve another principal's elevation request.
    Approve { id: String },
    /// Deny an elevation request.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// End an elevation (assignment or request id) now.
    Revoke { id: String },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    rampart_config::duration::parse_duration(text)
}

/// Runs an access subcommand and prints the plane's answer as JSON.
pub async fn run(args: AccessArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let (method, path, body) = match args.command {
        AccessCommand::Assign {
            principal,
            role,
            scope,
            eligible,
        } => (
            "POST",
            "/access/assignments".to_owned(),
            Some(
                json!({"principal": principal, "role": role, "scope": scope, "eligible": eligible}),
            ),
        ),
        AccessCommand::Unassign { id } => ("DELETE", format!("/access/assignments/{id}"), None),
        AccessCommand::List { principal, scope } => {
            let mut query = Vec::new();
            if let Some(principal) = principal {
                query.push(format!("principal={}", encode(&principal)));
            }
            if let Some(scope) = scope {
                query.push(format!("scope={}", encode(&scope)));
            }
            (
                "GET",
                format!("/access/assignments?{}", query.join("&")),
                None,
            )
        }
        AccessCommand::Roles => ("GET", "/access/roles".to_owned(), None),
        AccessCommand::Check {
            principal,
            action,
            scope,
            groups,
            management,
        } => (
            "POST",
            "/access/check".to_owned(),
            Some(
                json!({"principal": principal, "operation": action, "scope": scope,
                        "groups": groups, "management": management}),
            ),
        ),
        AccessCommand::Request {
            role,
            scope,
            duration,
            reason,
        } => (
            "POST",
            "/access/requests".to_owned(),
            Some(
                json!({"role": role, "scope": scope, "duration": duration.as_secs(), "reason": reason}),
            ),
        ),
        AccessCommand::Requests { pending, all } => (
            "GET",
            format!("/access/requests?pending={pending}&all={all}"),
            None,
        ),
        AccessCommand::Approve { id } => ("POST", format!("/access/requests/{id}/approve"), None),
        AccessCommand::Deny { id, reason } => (
            "POST",
            format!("/access/requests/{id}/deny"),
            Some(json!({ "reason": reason })),
        ),
        AccessCommand::Revoke { id } => ("POST", format!("/access/revoke/{id}"), None),
    };
    let data_dir = &settings.config.data.dir;
    let value =
        super::admin_client::call(data_dir, args.token.as_deref(), method, &path, body).await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
