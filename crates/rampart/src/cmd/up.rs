//! `rampart up`: the whole plane in one process with embedded defaults, and a banner that says
//! what to try.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rampart_config::{StorageBackend, TlsMode, Upstream};

use crate::admin::{self, AdminState};
use crate::auditing::{self, GatewayDenials};
use crate::cmd::Settings;
use crate::cmd::identity::RuntimeFile;
use crate::datadir::DataDir;
use crate::edge;
use crate::identity_http::{self, IdentityAdmin};
use crate::plane::{self, Shutdown};
use crate::{demo, telemetry, vault, vault_tls};

/// Options of `rampart up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Put this app behind the gateway instead of the demo app (`http://` or `https://` URL).
    #[arg(long, value_name = "URL", value_parser = super::parse_upstream_url)]
    upstream: Option<String>,
}

/// Starts everything, prints the banner, and runs until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let config = settings.config.clone();
    telemetry::init_logging(settings.log_format, &config.log.level)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics = telemetry::init_metrics()?;
    let data = DataDir::create(&config.data.dir)?;
    let (admin_token_path, admin_token) = plane::admin_token(&data)?;
    let (storage_description, instance_id, store) =
        open_storage(&config.storage.backend, &data).await?;
    let edge_id = edge_id_for(&instance_id);
    let (origin_keys_path, origin_lock) = plane::origin_lock(&data, &edge_id)?;
    let audit_log = auditing::open(&data, &config.audit, "up").await?;
    let auditor = audit_log.auditor();

    let shutdown = Shutdown::new();
    let mut signals = plane::Signals::new()?;
    let mut tasks = tokio::task::JoinSet::new();

    // The upstream: the user's app, or the demo app on its own loopback port.
    let upstream_override = match (args.upstream, &config.gateway.upstream) {
        (Some(url), _) => Some(url),
        (None, Upstream::Url(_)) => None,
        (None, Upstream::Demo) => {
            let listener = plane::bind(config.demo.listen, "demo app").await?;
            let addr = listener.local_addr()?;
            let lock = Arc::new(origin_lock.clone());
            tasks.spawn(demo::serve(listener, Some(lock), shutdown.signalled()));
            Some(format!("http://{addr}"))
        }
    };

    let (plane_tls, dev_ca) =
        plane::gateway_tls(&plane::plane_tls_mode(&config.gateway.tls), &data)?;
    let identity = identity_http::start(
        &config,
        &data,
        Arc::clone(&store),
        auditor.clone(),
        &shutdown,
        &mut tasks,
    )
    .await?;
    let access = crate::identity_gate::open_access(Arc::clone(&store), auditor.clone()).await?;
    // One verifier for the own issuer and every trusted one, shared by the gateway, the access
    // API and the vault (one JWKS cache and one token cache per issuer); each checks the
    // audience meant for it.
    let verifier =
        crate::identity_gate::verifier(&config, Some((&identity.issuer_url, dev_ca.as_deref())))?
            .context("the plane's own issuer gives a verifier")?;
    let authenticator = Some(Arc::new(crate::identity_gate::IdentityGate::new(
        verifier.clone(),
        Some(Arc::clone(&access)),
    )) as Arc<dyn rampart_gateway::Authenticator>);
    // The vault: barrier on the plane's storage, the default vault, the Azure Key Vault API
    // (tokens of the plane's issuer, RBAC) and the purge, rotation and certificate schedulers.
    let opened = vault::open(&config.vault, &data, Arc::clone(&store)).await?;
    let authorizer = vault::IdentityAuthorizer::new(
        verifier.verifier().clone(),
        Arc::clone(&access),
        config.vault.resource.clone(),
    );
    let vault_api = vault::api(
        &config.vault,
        identity.issuer_url.clone(),
        opened.store.clone(),
        Arc::new(authorizer),
        auditor.clone(),
    );
    // The gateway's certificate: from the vault (watched for new versions), or the plane's.
    let (tls, gateway_cert) = match &config.gateway.tls {
        TlsMode::Vault {
            certificate,
            vault: vault_name,
        } => {
            let vault_name = vault_name.as_deref().unwrap_or(&config.vault.default_vault);
            let from_vault = vault_tls::start(
                &vault_api,
                &data,
                vault_name,
                certificate,
                &["localhost".to_owned()],
                auditor.clone(),
            )
            .await?;
            tasks.spawn(from_vault.watcher.run(shutdown.signalled()));
            (Some(from_vault.tls), Some(from_vault.summary))
        }
        _ => (plane_tls.clone(), None),
    };
    let wiring = edge::Wiring {
        listen: config.gateway.listen,
        tls,
        upstream_override,
        origin_lock: Some(origin_lock),
        require_edge: None,
        deny_observer: Arc::new(GatewayDenials(auditor.clone())),
        authenticator,
    };
    let edge::BoundGateway {
        gateway,
        upstream: upstream_url,
        filters: filter_descriptions,
    } = edge::bind(&config, &wiring).await?;
    let gateway_addr = gateway.local_addr()?;
    let reloader = gateway.reloader();
    let grace = config.gateway.shutdown_grace;
    tasks.spawn(gateway.serve(shutdown.signalled(), grace));

    // The vault API listener: HTTPS with the gateway's certificate, except that with
    // gateway.tls = "vault" it keeps the development one (see plane::plane_tls_mode).
    let vault_listener = plane::bind(config.vault.listen, "vault API").await?;
    let vault_addr = vault_listener.local_addr()?;
    let vault_listener_tls = if gateway_cert.is_some() {
        plane_tls.as_ref()
    } else {
        wiring.tls.as_ref()
    }
    .map(|tls| Arc::clone(&tls.config));
    let vault_url = vault::url(vault_addr, vault_listener_tls.is_some());
    tasks.spawn(vault::serve(
        vault_listener,
        vault_listener_tls,
        vault_api.router(),
        shutdown.signalled(),
    ));
    tasks.spawn(vault::purge_scheduler(
        vault_api.clone(),
        config.vault.purge_interval,
        auditor.clone(),
        shutdown.signalled(),
    ));
    tasks.spawn(vault::rotation_scheduler(
        vault_api.clone(),
        config.vault.purge_interval,
        auditor.clone(),
        shutdown.signalled(),
    ));
    tasks.spawn(vault::certificate_scheduler(
        vault_api.clone(),
        config.vault.purge_interval,
        auditor.clone(),
        shutdown.signalled(),
    ));

    let admin_listener = plane::bind(config.admin.listen, "admin endpoint").await?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_state = AdminState {
        metrics,
        admin_token: Arc::clone(&admin_token),
        auditor: auditor.clone(),
        identity: Some(IdentityAdmin {
            issuer: Arc::clone(&identity.issuer),
            managed_identity_url: identity.managed_identity_url.clone(),
        }),
        access: Some(crate::access_http::AccessAdmin {
            access,
            verifier: Some(verifier),
        }),
        vault: Some(crate::vault_http::VaultAdmin {
            barrier: Arc::clone(opened.barrier()),
            config: Arc::new(config.vault.clone()),
            api: vault_api.clone(),
        }),
    };
    let runtime_file = RuntimeFile::write(&data, admin_addr)?;
    tasks.spawn(admin::serve(
        admin_listener,
        admin_state,
        shutdown.signalled(),
    ));

    let banner = Banner {
        gateway: gateway_addr,
        tls: !matches!(config.gateway.tls, TlsMode::DangerousPlaintext),
        upstream: &upstream_url,
        admin: admin_addr,
        vault: &vault_url,
        default_vault: &config.vault.default_vault,
        vault_seal: &opened.seal,
        data: data.root(),
        storage: &storage_description,
        admin_token_path: &admin_token_path,
        admin_token: &admin_token,
        origin_keys_path: &origin_keys_path,
        edge_id: &edge_id,
        dev_ca: dev_ca.as_deref(),
        gateway_cert: gateway_cert.as_ref(),
        audit_dir: audit_log.dir(),
        filters: &filter_descriptions,
        issuer_url: &identity.issuer_url,
        managed_identity_url: &identity.managed_identity_url,
    };
    println!("{banner}");
    tracing::info!(gateway = %gateway_addr, admin = %admin_addr, vault = %vault_addr, upstream = %upstream_url, "rampart is up");

    while signals.next().await == plane::PlaneSignal::Reload {
        edge::reload(&settings, &config, &wiring, &reloader, &auditor);
    }
    tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down");
    shutdown.trigger();
    let drained = tokio::time::timeout(grace + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some tasks did not stop within the grace period");
    }
    drop(runtime_file);
    drop(identity);
    drop(auditor);
    auditing::close(audit_log).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The edge id: stable for this plane, derived from its instance id.
fn edge_id_for(instance_id: &str) -> String {
    let tail: String = instance_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("rampart-{tail}")
}

/// Opens the configured storage backend (proving it is reachable), says what it is, and
/// returns the plane's instance id (created on first start, stable afterwards).
pub async fn open_storage(
    backend: &StorageBackend,
    data: &DataDir,
) -> anyhow::Result<(String, String, Arc<dyn rampart_storage::Backend>)> {
    let (spec, description) = match backend {
        StorageBackend::Redb { path } => {
            let path = data.root().join(path);
            let description = format!("redb at {}", path.display());
            (rampart_storage::BackendSpec::Redb { path }, description)
        }
        StorageBackend::Postgres {
            url,
            table,
            pool_size,
        } => (
            rampart_storage::BackendSpec::Postgres {
                url: url.clone(),
                table: table.clone(),
                pool_size: *pool_size,
            },
            format!("PostgreSQL table {table}"),
        ),
    };
    let store = rampart_storage::open_backend(&spec)
        .await
        .with_context(|| format!("cannot open storage ({description})"))?;
    let key = b"rampart/instance-id";
    let candidate = uuid::Uuid::now_v7().to_string();
    // Compare-and-swap so two processes starting on one store agree on a single id.
    let _ = store
        .compare_and_swap(key, None, Some(candidate.as_bytes()))
        .await?;
    let stored = store
        .get(key)
        .await?
        .context("the instance id vanished from storage")?;
    let instance_id = String::from_utf8(stored).context("the stored instance id is not text")?;
    Ok((description, instance_id, store))
}

/// What `rampart up` prints once everything listens.
struct Banner<'a> {
    gateway: SocketAddr,
    tls: bool,
    upstream: &'a str,
    admin: SocketAddr,
    vault: &'a str,
    default_vault: &'a str,
    vault_seal: &'a vault::SealSummary,
    data: &'a Path,
    storage: &'a str,
    admin_token_path: &'a Path,
    admin_token: &'a str,
    origin_keys_path: &'a Path,
    edge_id: &'a str,
    dev_ca: Option<&'a Path>,
    gateway_cert: Option<&'a vault_tls::Summary>,
    audit_dir: &'a Path,
    filters: &'a [String],
    issuer_url: &'a str,
    managed_identity_url: &'a str,
}

impl std::fmt::Display for Banner<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.gateway.ip().is_loopback() {
            format!("localhost:{}", self.gateway.port())
        } else {
            self.gateway.to_string()
        };
        let gateway_url = format!("{scheme}://{host}");
        let cacert = match self.gateway_cert {
            Some(cert) => format!("--cacert {} ", cert.public_copy.display()),
            None => self
                .dev_ca
                .map(|ca| format!("--cacert {} ", ca.display()))
                .unwrap_or_default(),
        };
        // Show only a prefix of the token: enough to tell tokens apart, useless to an attacker.
        let token_hint: String = self.admin_token.chars().take(8).collect();
        writeln!(out, "Rampart {} is up.", env!("CARGO_PKG_VERSION"))?;
        writeln!(out)?;
        writeln!(out, "  gateway   {gateway_url}  ->  {}", self.upstream)?;
        writeln!(
            out,
            "  admin     http://{}  (/metrics, /healthz, /readyz)",
            self.admin
        )?;
        writeln!(
            out,
            "  vault     {}  (Azure Key Vault API, vault {:?})",
            self.vault, self.default_vault
        )?;
        let waf = self
            .filters
            .iter()
            .find_map(|filter| filter.strip_prefix("waf: "));
        match waf {
            Some(waf) => writeln!(out, "  waf       {waf}")?,
            None => writeln!(
                out,
                "  waf       off (no Core Rule Set found: apt-get install modsecurity-crs, or set waf.crs)"
            )?,
        }
        writeln!(
            out,
            "  identity  {}  (OIDC issuer: /.well-known/openid-configuration, /jwks, /token)",
            self.issuer_url
        )?;
        writeln!(
            out,
            "  workloads {}  (managed identity: rampart identity workload add NAME)",
            self.managed_identity_url
        )?;
        writeln!(out, "  storage   {}", self.storage)?;
        writeln!(out, "  data      {} (mode 0700)", self.data.display())?;
        writeln!(
            out,
            "  audit     {} (signed, tamper-evident)",
            self.audit_dir.display()
        )?;
        writeln!(
            out,
            "  edge id   {} (origin lock on every upstream request)",
            self.edge_id
        )?;
        writeln!(out)?;
        writeln!(out, "Credentials (files mode 0600, never printed in full):")?;
        writeln!(
            out,
            "  admin token       {}  ({token_hint}...)",
            self.admin_token_path.display()
        )?;
        writeln!(
            out,
            "  origin-lock keys  {}  (give them to backends that verify the edge)",
            self.origin_keys_path.display()
        )?;
        match self.vault_seal {
            vault::SealSummary::KeyFile(key_file) => writeln!(
                out,
                "  vault key         {}  (unseals the vault at start)",
                key_file.display()
            )?,
            vault::SealSummary::Pkcs11 {
                token_label,
                key_label,
            } => writeln!(
                out,
                "  vault key         HSM key {key_label:?} on PKCS#11 token {token_label:?}  (unsealed the vault at start)"
            )?,
            vault::SealSummary::Shamir { .. } => writeln!(
                out,
                "  vault key         Shamir shares held by the operators (never stored)"
            )?,
        }
        match (self.dev_ca, self.gateway_cert) {
            (Some(ca), None) => writeln!(
                out,
                "  TLS CA            {}  (public; trust it to reach the gateway)",
                ca.display()
            )?,
            (Some(ca), Some(_)) => writeln!(
                out,
                "  TLS CA            {}  (public; trust it to reach the identity issuer and the vault)",
                ca.display()
            )?,
            (None, _) => {}
        }
        if let Some(cert) = self.gateway_cert {
            let how = if cert.created {
                "created now, self-signed by the vault, auto-renewed"
            } else {
                "swapped in when a new version appears"
            };
            writeln!(
                out,
                "  gateway cert      vault certificate {:?} in vault {:?}, version {}  ({how})",
                cert.name, cert.vault, cert.version
            )?;
            writeln!(
                out,
                "  gateway cert PEM  {}  (public copy of the one in service; trust it when self-signed)",
                cert.public_copy.display()
            )?;
        }
        if let vault::SealSummary::Shamir { initialized } = self.vault_seal {
            let rampart = format!("rampart --data-dir {}", self.data.display());
            writeln!(out)?;
            writeln!(
                out,
                "The vault is SEALED (Shamir seal): its API answers 503 until a quorum of shares is in."
            )?;
            if !initialized {
                writeln!(
                    out,
                    "  {rampart} vault init --shares 5 --threshold 3   (prints the shares once)"
                )?;
            }
            writeln!(
                out,
                "  {rampart} vault unseal   (one share per run, from stdin; repeat up to the threshold)"
            )?;
            writeln!(out, "  {rampart} vault status")?;
        }
        writeln!(out)?;
        writeln!(out, "Try:")?;
        // 1: what reaches the backend; 2: what does not; 3: the record of it.
        writeln!(
            out,
            "  curl {cacert}--http2 -d 'hello' '{gateway_url}/echo/anything?x=1'"
        )?;
        if waf.is_some() {
            writeln!(
                out,
                "  curl {cacert}-i \"{gateway_url}/echo?id=1%27%20OR%20%271%27=%271\"   (SQL injection: 403)"
            )?;
        } else {
            writeln!(
                out,
                "  curl -i http://{}/metrics   (no token: 401)",
                self.admin
            )?;
        }
        writeln!(
            out,
            "  rampart --data-dir {} audit tail   (every deny, in a signed log)",
            self.data.display()
        )?;
        writeln!(out)?;
        write!(out, "Ctrl-C stops it.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_ids_are_valid_origin_lock_ids() {
        let id = edge_id_for(&uuid::Uuid::now_v7().to_string());
        assert_eq!(id.len(), "rampart-".len() + 12);
        let key = rampart_origin_lock::Key::new("k", &[0; 32]).unwrap();
        assert!(rampart_origin_lock::OriginLock::new(&id, key, vec![], Duration::ZERO).is_ok());
    }
}
