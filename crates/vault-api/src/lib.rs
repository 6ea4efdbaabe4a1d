//! Rampart vault API: the Azure Key Vault data-plane REST adapter (axum) over `rampart-vault`,
//! so code written for Azure Key Vault (the Azure SDKs) works by changing only the vault URL
//! and the credential. Contract: the REST specs at api-version 2026-04-01 (7.0-7.6 and
//! 2025-07-01 accepted too).
//!
//! # Shared infrastructure (for secrets, keys and certificates alike)
//!
//! * [`VaultApi`]: the state (config, vault registry, store, [`Authorizer`], auditor,
//!   throttle, read-only switch [`VaultApi::set_read_only`]) and [`VaultApi::router`], which
//!   merges each object module's routes and answers unknown paths and methods with
//!   Azure-shaped errors.
//! * [`Ctx`] (extractor): vault from `Host`, api-version check, bearer token, request id;
//!   [`Ctx::authorize`] (401 challenge / 403 / 503 read-only / 429, audit), [`Ctx::json`],
//!   [`Ctx::object_id`], [`Ctx::paging`] and [`Ctx::next_link`]; [`Access::finish`] audits
//!   the outcome.
//! * [`ApiError`]: `{"error":{"code","message","innererror"?}}`; [`ApiError::vault`] maps a
//!   `VaultError` about a [`Subject`] to Azure's codes and messages.
//! * [`Body`] and [`ApiPath`]: extractors whose rejections are [`ApiError`]s (no plain-text
//!   axum rejections anywhere).
//!
//! # Adding an object module (keys, certificates)
//!
//! Write `src/keys.rs` with `pub(crate) fn routes() -> Router<VaultApi>` and merge it in
//! [`VaultApi::router`]. Each handler:
//!
//! ```ignore
//! static GET_KEY: Operation = Operation {
//!     audit_action: "key.get",
//!     data_action: "Microsoft.KeyVault/vaults/keys/read",
//!     throttle_class: None,
//!     write: false,
//! };
//!
//! async fn get_key(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
//!     let access = ctx.authorize(&GET_KEY, ctx.object_scope(ObjectKind::Key, &name)).await?;
//!     let result = do_the_work(&ctx, &name).await
//!         .map_err(|e| ApiError::vault(e, Subject::live(ObjectKind::Key, &name)));
//!     access.finish(result, None)
//! }
//! ```
//!
//! Authorize **before** parsing the body (`Body` extractor + [`Ctx::json`]), so the SDK's
//! body-less challenge request gets 401, not 400.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod auth;
pub mod certificates;
pub mod context;
pub mod error;
pub mod keys;
mod read_ahead;
mod secrets;
pub mod throttle;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use rampart_audit::Auditor;
use rampart_vault::{Secrets, VaultError, VaultInfo, VaultRegistry, VersionedStore};

pub use auth::{AuthDecision, AuthRequest, Authorizer, DenyAll};
pub use context::{
    API_VERSIONS, Access, ApiPath, Body, Checked, Ctx, LATEST_API_VERSION, Operation, Paging,
};
pub use error::{ApiError, Subject};
pub use throttle::{Throttle, ThrottleLimits};

/// How long a vault's settings are cached (they change only by purge protection turning on).
const VAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Host suffix: `{vault}.{domain}` selects a vault (default `vault.localhost`).
    pub domain: String,
    /// The vault for IP-literal and `localhost` hosts (default `default`).
    pub default_vault: String,
    /// The challenge's `authorization` (the token issuer authority).
    pub authority: String,
    /// The challenge's `resource` (the audience tokens must carry).
    pub resource: String,
    /// Throttling limits.
    pub throttle: ThrottleLimits,
    /// Start in read-only mode (writes refused with 503 `ReadOnlyMode`); switch at run time
    /// with [`VaultApi::set_read_only`].
    pub read_only: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            domain: "vault.localhost".into(),
            default_vault: "default".into(),
            authority: "https://127.0.0.1:8443/rampart".into(),
            resource: "https://vault.rampart.local".into(),
            throttle: ThrottleLimits::default(),
            read_only: false,
        }
    }
}

impl ApiConfig {
    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge(&self) -> String {
        format!(
            "Bearer authorization=\"{}\", resource=\"{}\"",
            self.authority, self.resource
        )
    }
}

struct Inner {
    config: ApiConfig,
    registry: VaultRegistry,
    store: VersionedStore,
    secrets: Secrets,
    keys: rampart_vault::keys::Keys,
    authorizer: Arc<dyn Authorizer>,
    auditor: Auditor,
    throttle: Throttle,
    read_only: AtomicBool,
    vaults: RwLock<HashMap<String, (Instant, VaultInfo)>>,
}

/// The API state. Cheap to clone.
#[derive(Clone)]
pub struct VaultApi {
    inner: Arc<Inner>,
}

impl fmt::Debug for VaultApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultApi")
            .field("config", &self.inner.config)
            .field("authorizer", &self.inner.authorizer)
            .finish_non_exhaustive()
    }
}

impl VaultApi {
    /// The API over `store` (its barrier holds the vault registry).
    pub fn new(
        config: ApiConfig,
        store: VersionedStore,
        authorizer: Arc<dyn Authorizer>,
        auditor: Auditor,
    ) -> Self {
        let registry = VaultRegistry::new(store.barrier().clone());
        let throttle = Throttle::new(config.throttle.clone());
        let read_only = AtomicBool::new(config.read_only);
        Self {
            inner: Arc::new(Inner {
                config,
                registry,
                secrets: Secrets::new(store.clone()),
                keys: rampart_vault::keys::Keys::new(store.clone()),
                store,
                authorizer,
                auditor,
                throttle,
                read_only,
                vaults: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The vault registry.
    pub fn registry(&self) -> &VaultRegistry {
        &self.inner.registry
    }

    /// The object store.
    pub fn store(&self) -> &VersionedStore {
        &self.inner.store
    }

    /// The secrets service.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// The keys service.
    pub fn keys(&self) -> &rampart_vault::keys::Keys {
        &self.inner.keys
    }

    /// The authorizer.
    pub fn authorizer(&self) -> &dyn Authorizer {
        self.inner.authorizer.as_ref()
    }

    /// The audit handle.
    pub fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }

    /// The throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// Whether the API is in read-only mode.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only.load(Ordering::SeqCst)
    }

    /// Switches read-only mode (e.g. during a regional failover): while on, every operation
    /// that changes state (set, create, import, update, delete, recover, purge, restore,
    /// rotate, rotation policy, certificate policy, contacts, merge) is refused with 503
    /// `ReadOnlyMode` and audited; reads, backups and sign/verify/encrypt/decrypt/wrap/unwrap
    /// continue. Takes effect for requests authorized after the call. Background writers (the
    /// purge, key rotation and certificate lifetime-action schedulers) check
    /// [`VaultApi::is_read_only`] too.
    pub fn set_read_only(&self, on: bool) {
        let was = self.inner.read_only.swap(on, Ordering::SeqCst);
        if was != on {
            tracing::warn!(read_only = on, "vault API read-only mode switched");
        }
    }

    /// A vault's settings (cached for a few seconds). Sealed barrier → [`VaultError::Sealed`].
    pub async fn vault(&self, name: &str) -> Result<VaultInfo, VaultError> {
        if self.inner.store.barrier().is_sealed() {
            return Err(VaultError::Sealed);
        }
        let key = name.to_ascii_lowercase();
        if let Ok(cache) = self.inner.vaults.read()
            && let Some((at, info)) = cache.get(&key)
            && at.elapsed() < VAULT_CACHE_TTL
        {
            return Ok(info.clone());
        }
        let info = self.inner.registry.get(&key).await?;
        if let Ok(mut cache) = self.inner.vaults.write() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), info.clone()));
        }
        Ok(info)
    }

    /// The router: every object module's routes, Azure-shaped answers for unknown paths and
    /// methods.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(secrets::routes())
            .merge(certificates::routes())
            .merge(keys::routes())
            .fallback(|req: Request| async move {
                ApiError::no_route(req.method().as_str(), req.uri().path()).into_response()
            })
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
            .layer(axum::middleware::from_fn(read_ahead::read_body_first))
            .with_state(self.clone())
    }
}
