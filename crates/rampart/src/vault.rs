//! The plane's vault: the barrier opened on the plane's storage and unsealed as `[vault] seal`
//! says (a 0600 key file in the data directory, created on first start; an HSM key on a
//! PKCS#11 token; or Shamir shares, submitted by operators through the admin API while the
//! plane runs sealed), the default vault, the Azure Key Vault API listener (HTTPS with the
//! gateway's certificate) and the purge, key rotation and certificate lifetime-action
//! schedulers.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_audit::{Auditor, Decision, Record};
use rampart_config::{Pkcs11Seal, VaultConfig, VaultSeal};
use rampart_identity::Verifier;
use rampart_identity::rbac::{AccessControl, Scope};
use rampart_storage::Backend;
use rampart_vault::store::unix_now;
use rampart_vault::{
    Barrier, InitMethod, PinSource, Pkcs11Config, VaultError, VaultInfo, VaultOptions,
    VaultRegistry, VersionedStore, purge_expired,
};
use rampart_vault_api::{
    ApiConfig, AuthDecision, AuthRequest, Authorizer, ThrottleLimits, VaultApi,
};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::cmd::UsageError;
use crate::datadir::DataDir;

/// The unseal key file, relative to the data directory.
pub const KEY_FILE: &str = "vault-unseal.key";

/// How the vault was unsealed at start (what the banner says about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealSummary {
    /// Unsealed with this key file.
    KeyFile(PathBuf),
    /// Sealed: operators unseal it with Shamir shares (`initialized`: shares exist).
    Shamir {
        /// Whether `rampart vault init` already made the shares.
        initialized: bool,
    },
    /// Unsealed by the HSM key `key_label` on the token `token_label`.
    Pkcs11 {
        /// The token.
        token_label: String,
        /// The key on it.
        key_label: String,
    },
}

/// An open vault store (unsealed, except with the Shamir seal).
#[derive(Debug)]
pub struct OpenVault {
    /// The object store over the barrier.
    pub store: VersionedStore,
    /// How it was (or is to be) unsealed.
    pub seal: SealSummary,
}

impl OpenVault {
    /// The barrier under the store.
    pub fn barrier(&self) -> &Arc<Barrier> {
        self.store.barrier()
    }
}

/// Opens the barrier on `backend` as `[vault] seal` says: key file and PKCS#11 initialize on
/// first start and unseal now; Shamir leaves it sealed (initialized and unsealed later through
/// the admin API). Storage sealed with another method than the configured one is refused.
/// Once unsealed, the default vault is made sure to exist.
pub async fn open(
    config: &VaultConfig,
    data: &DataDir,
    backend: Arc<dyn Backend>,
) -> anyhow::Result<OpenVault> {
    let barrier = Arc::new(Barrier::new(backend));
    let status = barrier
        .status()
        .await
        .context("cannot read the vault's seal status")?;
    if let Some(stored) = status.method
        && stored != config.seal.method()
    {
        return Err(UsageError(format!(
            "the vault in this storage is sealed with the {stored} method, but [vault] seal = \"{}\" (set seal = \"{stored}\")",
            config.seal.method()
        ))
        .into());
    }
    let seal = match &config.seal {
        VaultSeal::KeyFile => {
            let key_file = data.root().join(KEY_FILE);
            if status.initialized {
                barrier
                    .unseal_with_key_file(key_file.clone())
                    .await
                    .with_context(|| {
                        format!("cannot unseal the vault with {}", key_file.display())
                    })?;
            } else {
                barrier
                    .init(InitMethod::KeyFile(key_file.clone()))
                    .await
                    .context("cannot initialize the vault")?;
                tracing::info!(key_file = %key_file.display(), "vault initialized (key-file seal)");
            }
            SealSummary::KeyFile(key_file)
        }
        VaultSeal::Pkcs11(seal) => {
            let hsm = pkcs11_config(seal)?;
            if status.initialized {
                barrier.unseal_with_pkcs11(&hsm).await.with_context(|| {
                    format!(
                        "cannot unseal the vault with the HSM key {:?} on token {:?}",
                        seal.key_label, seal.token_label
                    )
                })?;
            } else {
                barrier
                    .init(InitMethod::Pkcs11(hsm))
                    .await
                    .context("cannot initialize the vault with the HSM")?;
                tracing::info!(token = %seal.token_label, key = %seal.key_label, "vault initialized (pkcs11 seal)");
            }
            SealSummary::Pkcs11 {
                token_label: seal.token_label.clone(),
                key_label: seal.key_label.clone(),
            }
        }
        VaultSeal::Shamir => SealSummary::Shamir {
            initialized: status.initialized,
        },
    };
    if !barrier.is_sealed() {
        ensure_default_vault(config, &barrier).await?;
    }
    Ok(OpenVault {
        store: VersionedStore::new(barrier),
        seal,
    })
}

/// Makes sure the default vault exists (the barrier must be unsealed).
pub async fn ensure_default_vault(
    config: &VaultConfig,
    barrier: &Arc<Barrier>,
) -> anyhow::Result<VaultInfo> {
    VaultRegistry::new(Arc::clone(barrier))
        .ensure(
            &config.default_vault,
            &VaultOptions {
                geography: config.geography.clone(),
                ..VaultOptions::default()
            },
        )
        .await
        .with_context(|| format!("cannot open the default vault {:?}", config.default_vault))
}

/// The library's HSM settings for `[vault] seal = "pkcs11"`. A PIN file must be readable by
/// its owner only; the PIN itself is read by the library when it logs in, and never logged.
fn pkcs11_config(seal: &Pkcs11Seal) -> anyhow::Result<Pkcs11Config> {
    let pin = match &seal.pin {
        rampart_config::PinSource::Env(name) => PinSource::Env(name.clone()),
        rampart_config::PinSource::File(path) => {
            check_owner_only(path)?;
            PinSource::File(path.clone())
        }
    };
    Ok(Pkcs11Config {
        module: seal.module.clone(),
        token_label: seal.token_label.clone(),
        pin,
        key_label: seal.key_label.clone(),
    })
}

/// Refuses a secret file that group or others may read.
fn check_owner_only(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read the PIN file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(UsageError(format!(
            "the PIN file {} is readable by other users (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        ))
        .into());
    }
    Ok(())
}

/// Whether `error` only says the vault is sealed (schedulers wait quietly for the unseal).
fn is_sealed(error: &VaultError) -> bool {
    matches!(error, VaultError::Sealed | VaultError::NotInitialized)
}

/// The vault's [`Authorizer`] over identity: the plane's one token verifier (signature,
/// issuer, expiry; shared with the gateway and the access API, so one JWKS cache and one token
/// cache per issuer), then the vault's own audience check (a token issued for a gateway route
/// is refused here), and RBAC (the Key Vault data action at the object's scope, so the
/// built-in Key Vault roles apply).
#[derive(Debug)]
pub struct IdentityAuthorizer {
    verifier: Verifier,
    access: Arc<AccessControl>,
    audience: String,
}

impl IdentityAuthorizer {
    /// An authorizer over `verifier` and `access`, for tokens carrying `audience`.
    pub fn new(verifier: Verifier, access: Arc<AccessControl>, audience: String) -> Self {
        Self {
            verifier,
            access,
            audience,
        }
    }
}

#[async_trait::async_trait]
impl Authorizer for IdentityAuthorizer {
    async fn authorize(&self, request: AuthRequest<'_>) -> AuthDecision {
        let principal = match self.verifier.verify(request.token).await {
            Ok(principal) => principal,
            Err(error) => {
                return AuthDecision::Unauthenticated {
                    reason: format!("token refused: {error}"),
                };
            }
        };
        if !principal.has_audience(&self.audience) {
            return AuthDecision::Unauthenticated {
                reason: format!("the token is not issued for {}", self.audience),
            };
        }
        let scope = match Scope::parse(request.scope) {
            Ok(scope) => scope,
            Err(error) => {
                return AuthDecision::Forbidden {
                    principal: principal.id.clone(),
                    reason: format!("scope: {error}"),
                };
            }
        };
        match self
            .access
            .check_data_action(&principal, request.data_action, &scope)
            .await
        {
            Ok(decision) if decision.allowed => AuthDecision::Allow {
                principal: principal.id.clone(),
            },
            Ok(decision) => AuthDecision::Forbidden {
                principal: principal.id.clone(),
                reason: decision.reason.to_string(),
            },
            Err(error) => {
                tracing::error!(%error, "access check failed: refusing");
                AuthDecision::Forbidden {
                    principal: principal.id.clone(),
                    reason: "the access check failed".to_owned(),
                }
            }
        }
    }
}

/// The per-class throttle limits of `[vault]`: Azure's defaults (the key table of
/// `rampart_vault_api::throttle`), `throttle_secret_create`, and the `throttle_keys`
/// overrides (`hsm-rsa-4096` is class `key-hsm-rsa-4096`).
fn throttle_classes(config: &VaultConfig) -> std::collections::BTreeMap<String, u32> {
    let mut classes = ThrottleLimits::default().classes;
    classes.insert(
        rampart_vault_api::throttle::SECRET_CREATE.to_owned(),
        config.throttle_secret_create,
    );
    for (class, limit) in &config.throttle_keys {
        classes.insert(format!("key-{class}"), *limit);
    }
    classes
}

/// The API over `store` with the plane's settings.
pub fn api(
    config: &VaultConfig,
    authority: String,
    store: VersionedStore,
    authorizer: Arc<dyn Authorizer>,
    auditor: Auditor,
) -> VaultApi {
    let api_config = ApiConfig {
        domain: config.domain.clone(),
        default_vault: config.default_vault.clone(),
        authority,
        resource: config.resource.clone(),
        throttle: ThrottleLimits {
            window: config.throttle_window,
            all: config.throttle_all,
            classes: throttle_classes(config),
        },
        read_only: config.read_only,
    };
    VaultApi::new(api_config, store, authorizer, auditor)
}

/// Serves `router` on `listener` (TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "vault listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    let Ok(Ok(stream)) = handshake else {
                        return;
                    };
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                None => builder.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "vault connection ended with an error");
            }
        });
    }
}

/// Runs `sweep` every `interval` (a late tick is delayed, not bunched) until `shutdown`
/// resolves; the first sweep runs at once.
async fn run_every<F, Sweep>(interval: Duration, shutdown: impl Future<Output = ()>, mut sweep: F)
where
    F: FnMut() -> Sweep,
    Sweep: Future,
{
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        sweep().await;
    }
}

/// Runs the purge scheduler every `interval` until `shutdown` resolves: deleted objects past
/// their scheduled purge date are removed; each sweep that purged something is audited.
/// Sweeps are skipped while the API is read-only ([`VaultApi::set_read_only`]).
pub async fn purge_scheduler(
    api: VaultApi,
    interval: Duration,
    auditor: Auditor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    run_every(interval, shutdown, || purge_sweep(&api, &auditor)).await;
}

/// One purge sweep (see [`purge_scheduler`]).
async fn purge_sweep(api: &VaultApi, auditor: &Auditor) {
    if api.is_read_only() || api.store().barrier().is_sealed() {
        return;
    }
    match purge_expired(api.registry(), api.store(), unix_now()).await {
        Ok(report) if report.purged > 0 => {
            tracing::info!(
                purged = report.purged,
                "vault purge scheduler removed expired deleted objects"
            );
            auditor.record_routine(
                Record::new("vault", "vault.purge_expired", Decision::Allow)
                    .actor("rampart", "system")
                    .detail("purged", report.purged.to_string())
                    .detail("examined", report.examined.to_string()),
            );
        }
        Ok(_) => {}
        Err(error) if is_sealed(&error) => {}
        Err(error) => {
            tracing::warn!(%error, "vault purge scheduler failed; retrying at the next interval");
        }
    }
}

/// The URL clients use for the default vault.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_loopback() {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

/// Runs the key rotation scheduler every `interval` until `shutdown` resolves: in every vault,
/// keys whose rotation policy is due are rotated, and due `Notify` actions (once per version)
/// become audit records (`key.rotation_notify`), as do rotations (`key.rotate`). Sweeps are
/// skipped while the API is read-only ([`VaultApi::set_read_only`]).
pub async fn rotation_scheduler(
    api: VaultApi,
    interval: Duration,
    auditor: Auditor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    run_every(interval, shutdown, || rotation_sweep(&api, &auditor)).await;
}

/// One key rotation sweep over every vault (see [`rotation_scheduler`]).
async fn rotation_sweep(api: &VaultApi, auditor: &Auditor) {
    if api.is_read_only() {
        return;
    }
    let vaults = match api.registry().list().await {
        Ok(vaults) => vaults,
        Err(error) if is_sealed(&error) => return,
        Err(error) => {
            tracing::warn!(%error, "key rotation scheduler cannot list vaults; retrying at the next interval");
            return;
        }
    };
    for vault in vaults {
        let report = match api.keys().run_due_rotations(&vault.name, unix_now()).await {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(%error, vault = %vault.name, "key rotation sweep failed");
                continue;
            }
        };
        let events = report
            .rotated
            .iter()
            .map(|e| ("key.rotate", e))
            .chain(report.notified.iter().map(|e| ("key.rotation_notify", e)));
        for (action, (name, version)) in events {
            auditor.record_routine(
                Record::new("vault", action, Decision::Allow)
                    .actor("rampart", "system")
                    .resource(format!(
                        "/vaults/{}/keys/{}",
                        vault.name,
                        name.to_ascii_lowercase()
                    ))
                    .detail("version", version.clone())
                    .detail("trigger", "rotation policy"),
            );
        }
        for (name, error) in &report.failed {
            tracing::warn!(vault = %vault.name, key = %name, %error, "key rotation failed");
        }
    }
}

/// Runs the certificate lifetime-action scheduler every `interval` until `shutdown` resolves:
/// one [`certificate_lifetime_sweep`] per tick.
pub async fn certificate_scheduler(
    api: VaultApi,
    interval: Duration,
    auditor: Auditor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    run_every(interval, shutdown, || {
        certificate_lifetime_sweep(&api, &auditor, unix_now())
    })
    .await;
}

/// One sweep of the certificate lifetime-action scheduler over every vault at `now`
/// ([`rampart_vault::Certificates::run_lifetime_actions`]): due `AutoRenew` actions make the
/// next version (audited `certificate.renew`, actor the scheduler); due `EmailContacts`
/// actions, once per version, are audited `vault.certificate_near_expiry` (the certificate,
/// version, expiry and the vault's contact addresses) and counted
/// (`rampart_vault_certificate_near_expiry_total`), for a SIEM to alert on, as there is no
/// mail. Renewals are counted in `rampart_vault_certificate_renewals_total`, certificates whose
/// actions failed in `rampart_vault_certificate_lifetime_errors_total`. Skipped
/// while the API is read-only or the barrier sealed; failures are logged and retried at the
/// next sweep. Returns the reports by vault.
pub async fn certificate_lifetime_sweep(
    api: &VaultApi,
    auditor: &Auditor,
    now: i64,
) -> Vec<(String, rampart_vault::LifetimeReport)> {
    if api.is_read_only() || api.store().barrier().is_sealed() {
        return Vec::new();
    }
    let vaults = match api.registry().list().await {
        Ok(vaults) => vaults,
        Err(error) if is_sealed(&error) => return Vec::new(),
        Err(error) => {
            tracing::warn!(%error, "certificate lifetime scheduler cannot list vaults; retrying at the next interval");
            return Vec::new();
        }
    };
    let certificates = rampart_vault::Certificates::new(api.store().clone());
    let mut reports = Vec::with_capacity(vaults.len());
    for vault in vaults {
        let report = match certificates.run_lifetime_actions(&vault, now).await {
            Ok(report) => report,
            Err(error) if is_sealed(&error) => return reports,
            Err(error) => {
                tracing::warn!(%error, vault = %vault.name, "certificate lifetime sweep failed; retrying at the next interval");
                continue;
            }
        };
        let resource = |name: &str| {
            format!(
                "/vaults/{}/certificates/{}",
                vault.name,
                name.to_ascii_lowercase()
            )
        };
        for renewed in &report.renewed {
            tracing::info!(vault = %vault.name, certificate = %renewed.name, version = %renewed.version, previous = %renewed.previous, "certificate renewed (AutoRenew lifetime action)");
            metrics::counter!("rampart_vault_certificate_renewals_total").increment(1);
            auditor.record_routine(
                Record::new("vault", "certificate.renew", Decision::Allow)
                    .actor("certificate-lifetime-scheduler", "system")
                    .resource(resource(&renewed.name))
                    .detail("version", renewed.version.clone())
                    .detail("previous", renewed.previous.clone())
                    .detail("trigger", "lifetime action AutoRenew"),
            );
        }
        for near in &report.near_expiry {
            tracing::warn!(vault = %vault.name, certificate = %near.name, version = %near.version, expires = near.expires, "certificate near expiry (EmailContacts lifetime action)");
            metrics::counter!("rampart_vault_certificate_near_expiry_total").increment(1);
            auditor.record_routine(
                Record::new("vault", "vault.certificate_near_expiry", Decision::Allow)
                    .actor("certificate-lifetime-scheduler", "system")
                    .resource(resource(&near.name))
                    .detail("version", near.version.clone())
                    .detail("expires", near.expires.to_string())
                    .detail("contacts", near.contacts.join(","))
                    .detail("trigger", "lifetime action EmailContacts"),
            );
        }
        for (name, error) in &report.failed {
            metrics::counter!("rampart_vault_certificate_lifetime_errors_total").increment(1);
            tracing::warn!(vault = %vault.name, certificate = %name, %error, "certificate lifetime action failed; retrying at the next interval");
        }
        reports.push((vault.name.clone(), report));
    }
    reports
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    /// An authorizer for tests that drive the vault in-process only: every caller is refused.
    #[derive(Debug)]
    pub(crate) struct NoCallers;

    #[async_trait::async_trait]
    impl rampart_vault_api::Authorizer for NoCallers {
        async fn authorize(
            &self,
            _: rampart_vault_api::AuthRequest<'_>,
        ) -> rampart_vault_api::AuthDecision {
            rampart_vault_api::AuthDecision::Unauthenticated {
                reason: "no callers in this test".into(),
            }
        }
    }

    /// Audit records of the log in `dir` with `action`.
    fn audited(dir: &Path, action: &str) -> Vec<rampart_audit::Record> {
        let mut out = Vec::new();
        rampart_audit::reader::scan(dir, 0, |raw| {
            let entry = raw.decode()?;
            if entry.record.action == action {
                out.push(entry.record);
            }
            Ok(true)
        })
        .unwrap();
        out
    }

    /// The scheduler's sweep over every vault: a due AutoRenew is audited `certificate.renew`
    /// (actor the scheduler), a due EmailContacts `vault.certificate_near_expiry` with the
    /// contacts, once per version; nothing happens while read-only or sealed.
    #[tokio::test]
    async fn certificate_sweep_renews_and_reports_near_expiry_once_audited() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(
            rampart_storage::RedbBackend::open(dir.path().join("kv.redb"))
                .await
                .unwrap(),
        );
        let barrier = Arc::new(rampart_vault::Barrier::new(backend));
        let key_file = dir.path().join("key");
        barrier
            .init(rampart_vault::InitMethod::KeyFile(key_file.clone()))
            .await
            .unwrap();
        let registry = rampart_vault::VaultRegistry::new(Arc::clone(&barrier));
        let options = rampart_vault::VaultOptions::default();
        let vault = registry.ensure("default", &options).await.unwrap();
        let other = registry.ensure("other", &options).await.unwrap();
        let audit_dir = dir.path().join("audit");
        let log = rampart_audit::AuditLog::open(&audit_dir, rampart_audit::AuditOptions::default())
            .unwrap();
        let auditor = log.auditor();
        let api = VaultApi::new(
            rampart_vault_api::ApiConfig::default(),
            rampart_vault::VersionedStore::new(Arc::clone(&barrier)),
            Arc::new(NoCallers),
            auditor.clone(),
        );
        let certificates = rampart_vault::Certificates::new(api.store().clone());
        let policy = |action: &str| -> rampart_vault::certificates::Policy {
            serde_json::from_value(serde_json::json!({
                "key_props": {"kty": "EC", "crv": "P-256"},
                "x509_props": {"subject": "CN=app.example", "validity_months": 12},
                "issuer": {"name": "Self"},
                "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": action}}],
            }))
            .unwrap()
        };
        let create = |vault, name: &'static str, action: &'static str| {
            let certificates = certificates.clone();
            let policy = policy(action);
            async move {
                let op = certificates
                    .create(
                        vault,
                        name,
                        rampart_vault::certificates::NewCertificate {
                            policy,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                op.target_version.unwrap()
            }
        };
        let renew_v1 = create(&vault, "renew", "AutoRenew").await;
        let mail_v1 = create(&other, "mail", "EmailContacts").await;
        certificates
            .set_contacts(
                &other,
                vec![rampart_vault::certificates::Contact {
                    email: Some("pki@example.com".into()),
                    name: None,
                    phone: None,
                }],
            )
            .await
            .unwrap();
        let first = certificates.get("default", "renew", None).await.unwrap();
        let (nbf, exp) = (
            first.attributes.not_before.unwrap(),
            first.attributes.expires.unwrap(),
        );
        let due = nbf + (exp - nbf) * 8 / 10 + 3600;

        api.set_read_only(true);
        assert!(
            certificate_lifetime_sweep(&api, &auditor, due)
                .await
                .is_empty()
        );
        api.set_read_only(false);
        barrier.seal();
        assert!(
            certificate_lifetime_sweep(&api, &auditor, due)
                .await
                .is_empty()
        );
        barrier.unseal_with_key_file(&key_file).await.unwrap();
        assert_eq!(
            certificates
                .get("default", "renew", None)
                .await
                .unwrap()
                .version,
            renew_v1,
            "renewed while read-only or sealed"
        );

        for _ in 0..2 {
            let reports = certificate_lifetime_sweep(&api, &auditor, due).await;
            assert_eq!(reports.len(), 2, "{reports:?}");
        }
        auditor.flush().await.unwrap();
        let renewals = audited(&audit_dir, "certificate.renew");
        assert_eq!(renewals.len(), 1, "{renewals:?}");
        let renewed = certificates.get("default", "renew", None).await.unwrap();
        assert_eq!(renewals[0].resource, "/vaults/default/certificates/renew");
        assert_eq!(renewals[0].actor.id, "certificate-lifetime-scheduler");
        assert_eq!(renewals[0].details["version"], renewed.version);
        assert_eq!(renewals[0].details["previous"], renew_v1);
        let near = audited(&audit_dir, "vault.certificate_near_expiry");
        assert_eq!(near.len(), 1, "reported once per version: {near:?}");
        assert_eq!(near[0].resource, "/vaults/other/certificates/mail");
        assert_eq!(near[0].details["version"], mail_v1);
        assert_eq!(near[0].details["contacts"], "pki@example.com");
        assert_eq!(near[0].details["expires"], {
            let mail = certificates.get("other", "mail", None).await.unwrap();
            mail.attributes.expires.unwrap().to_string()
        });
    }

    #[test]
    fn key_throttle_overrides_name_the_apis_classes() {
        assert_eq!(
            rampart_config::VAULT_THROTTLE_KEY_TYPES,
            rampart_vault_api::throttle::KEY_TYPES
        );
        let mut config = rampart_config::Config::default().vault;
        let defaults = throttle_classes(&config);
        assert_eq!(defaults, ThrottleLimits::default().classes);
        config.throttle_keys.insert("hsm-rsa-4096".into(), 3);
        config
            .throttle_keys
            .insert("software-ec-p-256k-create".into(), 7);
        let classes = throttle_classes(&config);
        // Overrides replace existing classes; none is added.
        assert_eq!(classes.len(), defaults.len());
        assert_eq!(classes["key-hsm-rsa-4096"], 3);
        assert_eq!(classes["key-software-ec-p-256k-create"], 7);
    }
}
