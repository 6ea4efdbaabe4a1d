//! `rampart identity`: run the token issuer and the managed-identity endpoint alone
//! (`serve`), and manage OAuth clients and workloads.
//!
//! A running plane (`rampart up` or `rampart identity serve`) holds the storage open, so the
//! management commands talk to it through its admin API (the URL is in
//! `<data>/run/admin.url` while it runs; the bearer token is the admin token file). When no
//! plane runs, they open the storage and the audit log directly. Either way every change is
//! an audit record.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_config::TlsMode;
use rampart_identity::issuer::{ClientSpec, Issuer, IssuerError, Jwk};
use serde_json::{Value, json};

use crate::admin::{self, AdminState};
use crate::cmd::{Settings, UsageError};
use crate::datadir::DataDir;
use crate::identity_http::{self, IdentityAdmin};
use crate::plane::{self, Shutdown};
use crate::{auditing, telemetry};

/// The actor named in audit records of local (no plane running) identity actions.
const LOCAL_ACTOR: &str = "local-cli";

/// `rampart identity ...`.
#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Run the token issuer and the managed-identity endpoint (and the admin endpoint) alone.
    Serve,
    /// Workloads: processes that get tokens from the managed-identity endpoint with no secret
    /// in their code.
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// OAuth clients of the token endpoint (client credentials grant).
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `rampart identity workload ...`.
#[derive(Debug, clap::Subcommand)]
pub enum WorkloadCommand {
    /// Register a workload; prints IDENTITY_ENDPOINT=... and IDENTITY_HEADER=... for its
    /// environment (the header is shown once).
    Add {
        /// The workload's name (the `sub` of its tokens).
        name: String,
        /// Resources it may get tokens for (repeatable; default: any).
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
    },
    /// List the workloads.
    List,
    /// Remove a workload; its identity header stops working at once.
    Remove {
        /// The workload's name.
        name: String,
    },
}

/// `rampart identity client ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Register a client; without --jwk it gets a secret, printed once.
    Add {
        /// The client id.
        name: String,
        /// Allowed scopes (repeatable); `<resource>/.default` allows that resource as audience.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Allowed resources (repeatable).
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// A public JWK file: the client authenticates with private_key_jwt instead of a secret.
        #[arg(long, value_name = "FILE")]
        jwk: Option<PathBuf>,
    },
    /// Replace a client's secret; prints the new one once.
    Secret {
        /// The client id.
        name: String,
    },
    /// List the clients.
    List,
    /// Remove a client.
    Remove {
        /// The client id.
        name: String,
    },
}

/// `<data>/run/admin.url` while a plane runs: where management commands find it. Removed on
/// drop.
#[derive(Debug)]
pub struct RuntimeFile(PathBuf);

impl RuntimeFile {
    /// Writes the admin URL of this plane.
    pub fn write(data: &DataDir, admin: SocketAddr) -> anyhow::Result<Self> {
        let path = data.subdir("run")?.join("admin.url");
        fs::write(&path, format!("http://{admin}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for RuntimeFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Runs an identity subcommand.
pub async fn run(command: IdentityCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    let op = match command {
        IdentityCommand::Serve => return serve(settings).await,
        IdentityCommand::Workload(WorkloadCommand::Add { name, resources }) => {
            Op::AddWorkload { name, resources }
        }
        IdentityCommand::Workload(WorkloadCommand::List) => Op::ListWorkloads,
        IdentityCommand::Workload(WorkloadCommand::Remove { name }) => Op::RemoveWorkload(name),
        IdentityCommand::Client(ClientCommand::Add {
            name,
            scopes,
            resources,
            jwk,
        }) => {
            let jwk = match jwk {
                Some(path) => {
                    let text = fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    Some(Box::new(Jwk::parse(&text).map_err(|error| {
                        UsageError(format!("{}: {error}", path.display()))
                    })?))
                }
                None => None,
            };
            Op::AddClient {
                name,
                scopes,
                resources,
                jwk,
            }
        }
        IdentityCommand::Client(ClientCommand::Secret { name }) => Op::ClientSecret(name),
        IdentityCommand::Client(ClientCommand::List) => Op::ListClients,
        IdentityCommand::Client(ClientCommand::Remove { name }) => Op::RemoveClient(name),
    };
    let result = perform(&op, &settings).await?;
    print_result(&op, &result);
    Ok(ExitCode::SUCCESS)
}

/// `rampart identity serve`.
async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let config = settings.config.clone();
    telemetry::init_logging(settings.log_format, &config.log.level)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics = telemetry::init_metrics()?;
    let data = DataDir::create(&config.data.dir)?;
    let (_, admin_token) = plane::admin_token(&data)?;
    let (_, _, store) = super::up::open_storage(&config.storage.backend, &data).await?;
    let audit_log = auditing::open(&data, &config.audit, "identity serve").await?;
    let auditor = audit_log.auditor();
    let shutdown = Shutdown::new();
    let mut signals = plane::Signals::new()?;
    let mut tasks = tokio::task::JoinSet::new();
    let identity = identity_http::start(
        &config,
        &data,
        store,
        auditor.clone(),
        &shutdown,
        &mut tasks,
    )
    .await?;
    let admin_listener = plane::bind(config.admin.listen, "admin endpoint").await?;
    let admin_addr = admin_listener.local_addr()?;
    let state = AdminState {
        metrics,
        admin_token,
        auditor: auditor.clone(),
        identity: Some(IdentityAdmin {
            issuer: Arc::clone(&identity.issuer),
            managed_identity_url: identity.managed_identity_url.clone(),
        }),
        access: None,
        vault: None,
    };
    tasks.spawn(admin::serve(admin_listener, state, shutdown.signalled()));
    let runtime_file = RuntimeFile::write(&data, admin_addr)?;
    println!("rampart identity issuer {}", identity.issuer_url);
    println!(
        "managed identity endpoint {}",
        identity.managed_identity_url
    );
    println!("admin http://{admin_addr}");
    while signals.next().await != plane::PlaneSignal::Terminate {}
    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(runtime_file);
    drop(identity);
    drop(auditor);
    auditing::close(audit_log).await;
    Ok(ExitCode::SUCCESS)
}

/// A management operation.
#[derive(Debug)]
enum Op {
    AddWorkload {
        name: String,
        resources: Vec<String>,
    },
    ListWorkloads,
    RemoveWorkload(String),
    AddClient {
        name: String,
        scopes: Vec<String>,
        resources: Vec<String>,
        jwk: Option<Box<Jwk>>,
    },
    ClientSecret(String),
    ListClients,
    RemoveClient(String),
}

fn print_result(op: &Op, result: &Value) {
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();
    let list = |value: &Value, key: &str| {
        let items: Vec<&str> = value[key]
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(",")
        }
    };
    match op {
        Op::AddWorkload { .. } => {
            println!("IDENTITY_ENDPOINT={}", text(result, "identity_endpoint"));
            println!("IDENTITY_HEADER={}", text(result, "identity_header"));
        }
        Op::AddClient { .. } | Op::ClientSecret(_) => {
            println!("client_id={}", text(result, "id"));
            if let Some(secret) = result["client_secret"].as_str() {
                println!("client_secret={secret}");
                eprintln!("(the secret is shown once: rampart keeps only its Argon2id hash)");
            }
        }
        Op::ListWorkloads => {
            for workload in result.as_array().into_iter().flatten() {
                println!(
                    "{}\toid={}\tclient_id={}\tresources={}",
                    text(workload, "name"),
                    text(workload, "oid"),
                    text(workload, "client_id"),
                    list(workload, "resources"),
                );
            }
        }
        Op::ListClients => {
            for client in result.as_array().into_iter().flatten() {
                println!(
                    "{}\tauth={}\toid={}\tscopes={}\tresources={}",
                    text(client, "id"),
                    text(client, "auth"),
                    text(client, "oid"),
                    list(client, "scopes"),
                    list(client, "resources"),
                );
            }
        }
        Op::RemoveWorkload(name) | Op::RemoveClient(name) => println!("removed {name}"),
    }
}

/// Runs `op` on the running plane if there is one, else on the storage directly.
async fn perform(op: &Op, settings: &Settings) -> anyhow::Result<Value> {
    let data_dir = &settings.config.data.dir;
    let runtime = data_dir.join("run").join("admin.url");
    if let Ok(url) = fs::read_to_string(&runtime) {
        match remote(op, url.trim(), data_dir).await {
            Err(RemoteError::Unreachable(error)) => {
                tracing::debug!(%error, "the plane in {} is not running", runtime.display());
            }
            Err(RemoteError::Failed(error)) => return Err(error),
            Ok(value) => return Ok(value),
        }
    }
    local(op, settings).await
}

#[derive(Debug)]
enum RemoteError {
    /// Nothing listens there (a stale runtime file): fall back to the storage.
    Unreachable(anyhow::Error),
    Failed(anyhow::Error),
}

async fn remote(op: &Op, base: &str, data_dir: &Path) -> Result<Value, RemoteError> {
    let token_path = data_dir.join("credentials").join("admin-token");
    let token = crate::datadir::read_secret_file(&token_path).map_err(RemoteError::Failed)?;
    let token = String::from_utf8(token)
        .map_err(|_| RemoteError::Failed(anyhow::anyhow!("the admin token is not text")))?;
    let (method, path, body) = match op {
        Op::AddWorkload { name, resources } => (
            "POST",
            "/identity/workloads".to_owned(),
            Some(json!({ "name": name, "resources": resources })),
        ),
        Op::ListWorkloads => ("GET", "/identity/workloads".to_owned(), None),
        Op::RemoveWorkload(name) => ("DELETE", format!("/identity/workloads/{name}"), None),
        Op::AddClient {
            name,
            scopes,
            resources,
            jwk,
        } => (
            "POST",
            "/identity/clients".to_owned(),
            Some(json!({ "id": name, "scopes": scopes, "resources": resources, "jwk": jwk })),
        ),
        Op::ClientSecret(name) => ("POST", format!("/identity/clients/{name}/secret"), None),
        Op::ListClients => ("GET", "/identity/clients".to_owned(), None),
        Op::RemoveClient(name) => ("DELETE", format!("/identity/clients/{name}"), None),
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .map_err(|error| RemoteError::Failed(error.into()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(error) if error.is_connect() => return Err(RemoteError::Unreachable(error.into())),
        Err(error) => return Err(RemoteError::Failed(error.into())),
    };
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| RemoteError::Failed(error.into()))?
        .to_bytes();
    if status == http::StatusCode::NO_CONTENT {
        return Ok(Value::Null);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned());
        let error = anyhow::anyhow!("the running plane refused: {message} ({status})");
        return Err(RemoteError::Failed(if status.is_client_error() {
            UsageError(format!("{error:#}")).into()
        } else {
            error
        }));
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| RemoteError::Failed(anyhow::anyhow!("bad admin answer: {error}")))
}

async fn local(op: &Op, settings: &Settings) -> anyhow::Result<Value> {
    let config = &settings.config;
    let data = DataDir::create(&config.data.dir)?;
    let (_, _, store) = super::up::open_storage(&config.storage.backend, &data).await?;
    let audit_log = auditing::open(&data, &config.audit, "identity").await?;
    let tls = !matches!(config.gateway.tls, TlsMode::DangerousPlaintext);
    let issuer_url = identity_http::issuer_url_for(config, config.identity.listen, tls);
    let issuer =
        identity_http::open_issuer(config, &data, store, audit_log.auditor(), issuer_url).await?;
    let endpoint = identity_http::managed_identity_url(config.identity.managed_identity_listen);
    let result = local_op(op, &issuer, &endpoint).await;
    drop(issuer);
    auditing::close(audit_log).await;
    result.map_err(|error| match error {
        IssuerError::InvalidName(_)
        | IssuerError::InvalidJwk(_)
        | IssuerError::InvalidScope(_)
        | IssuerError::Exists { .. }
        | IssuerError::NotFound { .. } => UsageError(error.to_string()).into(),
        other => anyhow::Error::new(other),
    })
}

async fn local_op(op: &Op, issuer: &Issuer, endpoint: &str) -> Result<Value, IssuerError> {
    Ok(match op {
        Op::AddWorkload { name, resources } => {
            let (workload, header) = issuer
                .add_workload(name, resources.clone(), LOCAL_ACTOR)
                .await?;
            let mut value = identity_http::workload_json(&workload);
            value["identity_endpoint"] = json!(endpoint);
            value["identity_header"] = json!(header.expose());
            value
        }
        Op::ListWorkloads => Value::Array(
            issuer
                .list_workloads()
                .await?
                .iter()
                .map(identity_http::workload_json)
                .collect(),
        ),
        Op::RemoveWorkload(name) => {
            if !issuer.remove_workload(name, LOCAL_ACTOR).await? {
                return Err(IssuerError::NotFound {
                    kind: "workload",
                    name: name.clone(),
                });
            }
            Value::Null
        }
        Op::AddClient {
            name,
            scopes,
            resources,
            jwk,
        } => {
            let spec = ClientSpec {
                id: name.clone(),
                scopes: scopes.clone(),
                resources: resources.clone(),
                jwk: jwk.as_deref().cloned(),
            };
            let (client, secret) = issuer.add_client(spec, LOCAL_ACTOR).await?;
            let mut value = identity_http::client_json(&client);
            if let Some(secret) = secret {
                value["client_secret"] = json!(secret.expose());
            }
            value
        }
        Op::ClientSecret(name) => {
            let secret = issuer.generate_client_secret(name, LOCAL_ACTOR).await?;
            json!({ "id": name, "client_secret": secret.expose() })
        }
        Op::ListClients => Value::Array(
            issuer
                .list_clients()
                .await?
                .iter()
                .map(identity_http::client_json)
                .collect(),
        ),
        Op::RemoveClient(name) => {
            if !issuer.remove_client(name, LOCAL_ACTOR).await? {
                return Err(IssuerError::NotFound {
                    kind: "client",
                    name: name.clone(),
                });
            }
            Value::Null
        }
    })
}
