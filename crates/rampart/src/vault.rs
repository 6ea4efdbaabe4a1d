//! The plane's vault: the barrier opened on the plane's storage (unsealed with a 0600 key file
//! in the data directory, created on first start), the default vault, the Azure Key Vault API
//! listener (HTTPS with the gateway's certificate) and the purge scheduler.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_audit::{Auditor, Decision, Record};
use rampart_config::{VaultConfig, VaultSeal};
use rampart_identity::Verifier;
use rampart_identity::rbac::{AccessControl, Scope};
use rampart_identity::verifier::{IssuerConfig, JwksSource, VerifierConfig};
use rampart_storage::Backend;
use rampart_vault::store::unix_now;
use rampart_vault::{
    Barrier, InitMethod, VaultInfo, VaultOptions, VaultRegistry, VersionedStore, purge_expired,
};
use rampart_vault_api::{
    ApiConfig, AuthDecision, AuthRequest, Authorizer, ThrottleLimits, VaultApi,
};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::datadir::DataDir;

/// The unseal key file, relative to the data directory.
pub const KEY_FILE: &str = "vault-unseal.key";

/// An open, unsealed vault store and its default vault.
#[derive(Debug)]
pub struct OpenVault {
    /// The object store (its barrier is unsealed).
    pub store: VersionedStore,
    /// The default vault (created if it was missing).
    pub default_vault: VaultInfo,
    /// The unseal key file.
    pub key_file: PathBuf,
}

/// Opens the barrier on `backend`: initializes it on first start, unseals it with the key
/// file, and makes sure the default vault exists.
pub async fn open(
    config: &VaultConfig,
    data: &DataDir,
    backend: Arc<dyn Backend>,
) -> anyhow::Result<OpenVault> {
    let key_file = data.root().join(KEY_FILE);
    let barrier = Arc::new(Barrier::new(backend));
    match config.seal {
        VaultSeal::KeyFile => {
            let status = barrier
                .status()
                .await
                .context("cannot read the vault's seal status")?;
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
        }
    }
    let store = VersionedStore::new(barrier.clone());
    let registry = VaultRegistry::new(barrier);
    let default_vault = registry
        .ensure(
            &config.default_vault,
            &VaultOptions {
                geography: config.geography.clone(),
                ..VaultOptions::default()
            },
        )
        .await
        .with_context(|| format!("cannot open the default vault {:?}", config.default_vault))?;
    Ok(OpenVault {
        store,
        default_vault,
        key_file,
    })
}

/// The vault's [`Authorizer`] over identity: the token verifier (signature, issuer, expiry,
/// audience = the vault resource) and RBAC (the Key Vault data action at the object's scope,
/// so the built-in Key Vault roles apply).
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

/// The authorizer of `rampart up`: tokens of the plane's own issuer (keys fetched from its
/// JWKS, trusting `ca` when the plane uses its development CA) with audience `[vault]
/// resource`, and the plane's access model.
pub fn identity_authorizer(
    config: &VaultConfig,
    issuer_url: &str,
    ca: Option<PathBuf>,
    access: Arc<AccessControl>,
) -> anyhow::Result<IdentityAuthorizer> {
    let verifier = Verifier::new(&VerifierConfig {
        issuers: vec![IssuerConfig {
            jwks: JwksSource::JwksUri(format!("{issuer_url}/jwks")),
            ..IssuerConfig::new(issuer_url, [config.resource.clone()])
        }],
        extra_ca_file: ca,
        ..VerifierConfig::default()
    })
    .context("cannot configure the vault's token verifier")?;
    Ok(IdentityAuthorizer::new(
        verifier,
        access,
        config.resource.clone(),
    ))
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

/// Runs the purge scheduler every `interval` until `shutdown` resolves: deleted objects past
/// their scheduled purge date are removed; each sweep that purged something is audited.
/// Sweeps are skipped while the API is read-only ([`VaultApi::set_read_only`]).
pub async fn purge_scheduler(
    api: VaultApi,
    interval: Duration,
    auditor: Auditor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        if api.is_read_only() {
            continue;
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
            Err(error) => {
                tracing::warn!(%error, "vault purge scheduler failed; retrying at the next interval");
            }
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
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        if api.is_read_only() {
            continue;
        }
        let vaults = match api.registry().list().await {
            Ok(vaults) => vaults,
            Err(error) => {
                tracing::warn!(%error, "key rotation scheduler cannot list vaults; retrying at the next interval");
                continue;
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
