//! The token issuer: OIDC discovery, JWKS, the OAuth 2.0 token endpoint (`client_credentials`
//! with `client_secret_basic`, `client_secret_post` and `private_key_jwt`), the client and
//! workload registries, and the managed-identity endpoint (Azure App Service protocol) that
//! gives workloads tokens with no secret in their code.
//!
//! Framework-neutral: each endpoint is a function from parsed request data to a response or an
//! [`OAuthError`]; the binary mounts them on HTTP listeners.
//!
//! - [`keys`]: signing keys (ES256 default, RS256), sealed at rest, rotated, published.
//! - [`registry`]: clients (Argon2id secrets or public JWKs) and workloads.
//! - [`token`]: the token endpoint and client authentication.
//! - [`managed`]: the managed-identity endpoint.
//! - [`jose`]: base64url, JWKs, compact JWS.
//!
//! Access tokens are RFC 9068 JWTs (`typ: at+jwt`) with `iss sub aud exp iat nbf jti
//! client_id scope oid`. Every issuance and refusal is an audit record.

pub mod error;
pub mod jose;
pub mod keys;
pub mod managed;
pub mod registry;
pub mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rampart_audit::{Auditor, Decision, Record};
use rampart_storage::{Backend, CasOutcome};
use serde_json::json;

pub use error::{IssuerError, OAuthError, OAuthErrorCode};
pub use jose::Jwk;
pub use keys::{Kek, SigningAlg};
pub use managed::{MANAGED_IDENTITY_API_VERSION, ManagedIdentityRequest, ManagedIdentityResponse};
pub use registry::{Client, ClientAuth, ClientSpec, Secret, Workload};
pub use token::{AccessToken, TokenRequest, TokenResponse};

use keys::{KeyRing, RotationPolicy};
use registry::{CLIENT_PREFIX, WORKLOAD_PREFIX};

/// Tokens must outlive this: Azure SDKs refresh a token expiring within 300 s, so a shorter
/// token would be refreshed on every call.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(301);
/// Longest token lifetime accepted (one day).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Unix time in seconds, injectable for tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now`.
    #[must_use]
    pub fn new(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The issuer's settings.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` of every token, and the base of the endpoint URLs
    /// (e.g. `https://localhost:8444`). No trailing slash, no query, no fragment.
    pub issuer_url: String,
    /// Access-token lifetime (default 1 h; between [`MIN_TOKEN_LIFETIME`] and
    /// [`MAX_TOKEN_LIFETIME`]).
    pub token_lifetime: Duration,
    /// How long a signing key signs before a new one replaces it (default 30 days).
    pub rotation_period: Duration,
    /// The signing algorithm of new keys.
    pub algorithm: SigningAlg,
}

impl IssuerConfig {
    /// Defaults for `issuer_url`: 1 h tokens, 30-day rotation, ES256.
    #[must_use]
    pub fn new(issuer_url: impl Into<String>) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            token_lifetime: Duration::from_secs(3600),
            rotation_period: Duration::from_secs(30 * 24 * 3600),
            algorithm: SigningAlg::Es256,
        }
    }

    fn check(&self) -> Result<(), IssuerError> {
        let url = &self.issuer_url;
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.ends_with('/')
            && !url.contains(['?', '#'])
            && url
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty());
        if !ok {
            return Err(IssuerError::InvalidConfig(format!(
                "issuer url {url:?} must be http(s)://host[:port][/path] without a trailing slash, query or fragment"
            )));
        }
        if !(MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&self.token_lifetime) {
            return Err(IssuerError::InvalidConfig(format!(
                "token lifetime {} s is outside {}..={} s",
                self.token_lifetime.as_secs(),
                MIN_TOKEN_LIFETIME.as_secs(),
                MAX_TOKEN_LIFETIME.as_secs()
            )));
        }
        if self.rotation_period < Duration::from_secs(3600) {
            return Err(IssuerError::InvalidConfig(
                "key rotation period must be at least 1 h".into(),
            ));
        }
        Ok(())
    }
}

/// The token issuer. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Issuer {
    store: Arc<dyn Backend>,
    kek: Kek,
    config: IssuerConfig,
    clock: Arc<dyn Clock>,
    auditor: Auditor,
    ring: RwLock<Arc<KeyRing>>,
    /// Bounds concurrent Argon2id verifications (19 MiB each) to the number of CPUs, so a
    /// flood of token requests queues instead of exhausting memory.
    hashing: tokio::sync::Semaphore,
}

/// The caller-specific claims of a token to mint; the issuer adds `iss`, `exp`, `iat`,
/// `nbf` and `jti`.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    /// `sub`.
    pub subject: &'a str,
    /// `aud` (the resource).
    pub audience: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `oid`: the principal's stable object id.
    pub oid: &'a str,
    /// `scope`, space separated, if any.
    pub scope: Option<String>,
}

impl Issuer {
    /// Opens the issuer on `store`: loads its signing key (creating the first one, or rotating
    /// one that is due).
    ///
    /// # Errors
    /// [`IssuerError::InvalidConfig`] for unusable settings; storage, corrupt-record and
    /// decryption errors (a wrong key-encryption key) from loading the keys.
    pub async fn open(
        store: Arc<dyn Backend>,
        kek: Kek,
        config: IssuerConfig,
        clock: Arc<dyn Clock>,
        auditor: Auditor,
    ) -> Result<Self, IssuerError> {
        config.check()?;
        let policy = Self::policy(&config);
        let ring = keys::load_or_rotate(&*store, &kek, policy, clock.now()).await?;
        Ok(Self {
            store,
            kek,
            config,
            clock,
            auditor,
            ring: RwLock::new(ring),
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
        })
    }

    fn policy(config: &IssuerConfig) -> RotationPolicy {
        RotationPolicy {
            alg: config.algorithm,
            rotation_period: config.rotation_period.as_secs(),
            token_lifetime: config.token_lifetime.as_secs(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The token endpoint URL (`<issuer>/token`), also an accepted assertion audience.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.config.issuer_url)
    }

    /// The OpenID Provider metadata (`/.well-known/openid-configuration`).
    #[must_use]
    pub fn discovery(&self) -> serde_json::Value {
        let issuer = &self.config.issuer_url;
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "token_endpoint": self.token_endpoint(),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
            "id_token_signing_alg_values_supported": [self.config.algorithm.as_str()],
            "access_token_signing_alg_values_supported": [self.config.algorithm.as_str()],
            "scopes_supported": [".default"],
            "claims_supported":
                ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "oid"],
        })
    }

    /// The JWK Set (`/jwks`): the signing key and every retired key whose tokens may still be
    /// valid.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        self.current_ring().jwks(self.clock.now())
    }

    /// The key id that signs now.
    #[must_use]
    pub fn signing_kid(&self) -> String {
        self.current_ring().kid.clone()
    }

    fn current_ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads the keys from storage, rotating and pruning as due, and sweeps expired
    /// assertion ids. Call it periodically (the binary does every minute); token requests also
    /// rotate on their own once the signing key is due.
    ///
    /// # Errors
    /// Storage and key errors; the current keys stay in use.
    pub async fn maintain(&self) -> Result<(), IssuerError> {
        let now = self.clock.now();
        let ring =
            keys::load_or_rotate(&*self.store, &self.kek, Self::policy(&self.config), now).await?;
        match self.ring.write() {
            Ok(mut slot) => *slot = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        token::sweep_replay_cache(&*self.store, now).await
    }

    /// The ring to sign with, rotating first when the signing key is due.
    async fn signing_ring(&self) -> Result<Arc<KeyRing>, IssuerError> {
        let ring = self.current_ring();
        let due = ring.alg != self.config.algorithm
            || self.clock.now()
                >= ring
                    .created_at
                    .saturating_add(self.config.rotation_period.as_secs());
        if due {
            self.maintain().await?;
            return Ok(self.current_ring());
        }
        Ok(ring)
    }

    /// Signs an RFC 9068 access token for a caller authenticated some other way (the token
    /// and managed-identity endpoints use it once they authenticated the caller); returns the
    /// token, its expiry (Unix seconds) and its `jti`. Not audited here: callers record why
    /// they minted it.
    ///
    /// # Errors
    /// Key rotation (storage) and signing errors.
    pub async fn mint_token(
        &self,
        claims: &Claims<'_>,
    ) -> Result<(AccessToken, u64, String), IssuerError> {
        let ring = self.signing_ring().await?;
        let now = self.clock.now();
        let exp = now.saturating_add(self.config.token_lifetime.as_secs());
        let jti = uuid::Uuid::new_v4().to_string();
        let header = json!({ "typ": "at+jwt", "alg": ring.alg.as_str(), "kid": ring.kid });
        let mut body = json!({
            "iss": self.config.issuer_url,
            "sub": claims.subject,
            "aud": claims.audience,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": claims.client_id,
            "oid": claims.oid,
        });
        if let (Some(scope), Some(map)) = (&claims.scope, body.as_object_mut()) {
            map.insert("scope".into(), json!(scope));
        }
        let input = format!(
            "{}.{}",
            jose::b64(header.to_string().as_bytes()),
            jose::b64(body.to_string().as_bytes())
        );
        let signature = ring.sign(input.as_bytes())?;
        Ok((
            AccessToken::new(format!("{input}.{}", jose::b64(&signature))),
            exp,
            jti,
        ))
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    pub(crate) fn store(&self) -> &dyn Backend {
        &*self.store
    }

    pub(crate) fn hashing(&self) -> &tokio::sync::Semaphore {
        &self.hashing
    }

    pub(crate) fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// Records an administrative action, waiting until it is durable (fail closed: if the
    /// audit log cannot record it, the action does not happen).
    async fn audit_admin(
        &self,
        actor: &str,
        action: &str,
        resource: String,
    ) -> Result<(), IssuerError> {
        self.auditor
            .record(
                Record::new("identity", action, Decision::Allow)
                    .actor(actor, "admin")
                    .resource(resource),
            )
            .await?;
        Ok(())
    }

    // ---- client registry ----

    /// Registers a client. Without a JWK it gets a generated secret, returned here and never
    /// again (only its Argon2id hash is stored).
    ///
    /// # Errors
    /// [`IssuerError::InvalidName`], [`IssuerError::InvalidScope`], [`IssuerError::Exists`],
    /// audit and storage errors.
    pub async fn add_client(
        &self,
        spec: ClientSpec,
        actor: &str,
    ) -> Result<(Client, Option<Secret>), IssuerError> {
        registry::check_name(&spec.id)?;
        let mut resources = Vec::new();
        let mut scopes = Vec::new();
        for scope in spec.scopes {
            if !registry::valid_scope(&scope) {
                return Err(IssuerError::InvalidScope(scope));
            }
            match registry::default_scope_resource(&scope) {
                Some(resource) => resources.push(resource.to_owned()),
                None => scopes.push(scope),
            }
        }
        resources.extend(spec.resources);
        for resource in &mut resources {
            if !registry::valid_resource(resource) {
                return Err(IssuerError::InvalidScope(resource.clone()));
            }
            *resource = registry::normalize_resource(resource).to_owned();
        }
        resources.dedup();
        let (auth, secret) = match spec.jwk {
            Some(jwk) => {
                Jwk::parse(
                    &serde_json::to_string(&jwk)
                        .map_err(|e| IssuerError::InvalidJwk(e.to_string()))?,
                )?;
                (ClientAuth::PrivateKeyJwt { jwk: Box::new(jwk) }, None)
            }
            None => {
                let secret = Secret::generate("rpc_")?;
                let expose = zeroize::Zeroizing::new(secret.expose().to_owned());
                let hash = tokio::task::spawn_blocking(move || registry::hash_secret(&expose))
                    .await
                    .map_err(|_| IssuerError::Crypto("the hashing task failed"))??;
                (ClientAuth::Secret { argon2id: hash }, Some(secret))
            }
        };
        let client = Client {
            id: spec.id,
            oid: uuid::Uuid::new_v4().to_string(),
            auth,
            scopes,
            resources,
            created_at: self.now(),
        };
        let key = format!("{CLIENT_PREFIX}{}", client.id);
        if self.store.get(key.as_bytes()).await?.is_some() {
            return Err(IssuerError::Exists {
                kind: "client",
                name: client.id,
            });
        }
        self.audit_admin(actor, "client.add", format!("client/{}", client.id))
            .await?;
        let value =
            serde_json::to_vec(&client).map_err(|e| IssuerError::InvalidConfig(e.to_string()))?;
        match self
            .store
            .compare_and_swap(key.as_bytes(), None, Some(&value))
            .await?
        {
            CasOutcome::Swapped => Ok((client, secret)),
            CasOutcome::Conflict { .. } => Err(IssuerError::Exists {
                kind: "client",
                name: client.id,
            }),
        }
    }

    /// Replaces a secret client's secret with a new one, returned here and never again.
    ///
    /// # Errors
    /// [`IssuerError::NotFound`] (also for `private_key_jwt` clients), audit and storage errors.
    pub async fn generate_client_secret(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<Secret, IssuerError> {
        let key = format!("{CLIENT_PREFIX}{id}");
        let not_found = || IssuerError::NotFound {
            kind: "client",
            name: id.to_owned(),
        };
        let old = self
            .store
            .get(key.as_bytes())
            .await?
            .ok_or_else(not_found)?;
        let mut client: Client = decode_record(&key, &old)?;
        if !matches!(client.auth, ClientAuth::Secret { .. }) {
            return Err(not_found());
        }
        let secret = Secret::generate("rpc_")?;
        let expose = zeroize::Zeroizing::new(secret.expose().to_owned());
        let hash = tokio::task::spawn_blocking(move || registry::hash_secret(&expose))
            .await
            .map_err(|_| IssuerError::Crypto("the hashing task failed"))??;
        client.auth = ClientAuth::Secret { argon2id: hash };
        self.audit_admin(actor, "client.secret.generate", format!("client/{id}"))
            .await?;
        let value =
            serde_json::to_vec(&client).map_err(|e| IssuerError::InvalidConfig(e.to_string()))?;
        match self
            .store
            .compare_and_swap(key.as_bytes(), Some(&old), Some(&value))
            .await?
        {
            CasOutcome::Swapped => Ok(secret),
            CasOutcome::Conflict { .. } => Err(not_found()),
        }
    }

    /// Removes a client; `false` if there was none.
    ///
    /// # Errors
    /// Audit and storage errors.
    pub async fn remove_client(&self, id: &str, actor: &str) -> Result<bool, IssuerError> {
        registry::check_name(id)?;
        self.audit_admin(actor, "client.remove", format!("client/{id}"))
            .await?;
        Ok(self
            .store
            .delete(format!("{CLIENT_PREFIX}{id}").as_bytes())
            .await?)
    }

    /// Every registered client, by id.
    ///
    /// # Errors
    /// Storage and corrupt-record errors.
    pub async fn list_clients(&self) -> Result<Vec<Client>, IssuerError> {
        list_records(&*self.store, CLIENT_PREFIX).await
    }

    pub(crate) async fn client(&self, id: &str) -> Result<Option<Client>, IssuerError> {
        if registry::check_name(id).is_err() {
            return Ok(None);
        }
        let key = format!("{CLIENT_PREFIX}{id}");
        match self.store.get(key.as_bytes()).await? {
            Some(value) => decode_record(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    // ---- workload registry ----

    /// Registers a workload for the managed-identity endpoint and returns its identity header,
    /// shown here and never again (only its SHA-256 is stored). `resources` limits the
    /// audiences it may ask for; empty means any.
    ///
    /// # Errors
    /// [`IssuerError::InvalidName`], [`IssuerError::InvalidScope`], [`IssuerError::Exists`],
    /// audit and storage errors.
    pub async fn add_workload(
        &self,
        name: &str,
        resources: Vec<String>,
        actor: &str,
    ) -> Result<(Workload, Secret), IssuerError> {
        registry::check_name(name)?;
        let mut resources = resources;
        for resource in &mut resources {
            if let Some(stripped) = registry::default_scope_resource(resource) {
                *resource = stripped.to_owned();
            }
            if !registry::valid_resource(resource) {
                return Err(IssuerError::InvalidScope(resource.clone()));
            }
            *resource = registry::normalize_resource(resource).to_owned();
        }
        let header = Secret::generate("rpi_")?;
        let workload = Workload {
            name: name.to_owned(),
            oid: uuid::Uuid::new_v4().to_string(),
            client_id: uuid::Uuid::new_v4().to_string(),
            header_sha256: registry::header_digest(header.expose()),
            resources,
            created_at: self.now(),
        };
        let key = format!("{WORKLOAD_PREFIX}{name}");
        if self.store.get(key.as_bytes()).await?.is_some() {
            return Err(IssuerError::Exists {
                kind: "workload",
                name: name.to_owned(),
            });
        }
        self.audit_admin(actor, "workload.add", format!("workload/{name}"))
            .await?;
        let value =
            serde_json::to_vec(&workload).map_err(|e| IssuerError::InvalidConfig(e.to_string()))?;
        match self
            .store
            .compare_and_swap(key.as_bytes(), None, Some(&value))
            .await?
        {
            CasOutcome::Swapped => Ok((workload, header)),
            CasOutcome::Conflict { .. } => Err(IssuerError::Exists {
                kind: "workload",
                name: name.to_owned(),
            }),
        }
    }

    /// Removes a workload (its identity header stops working at once); `false` if none.
    ///
    /// # Errors
    /// Audit and storage errors.
    pub async fn remove_workload(&self, name: &str, actor: &str) -> Result<bool, IssuerError> {
        registry::check_name(name)?;
        self.audit_admin(actor, "workload.remove", format!("workload/{name}"))
            .await?;
        Ok(self
            .store
            .delete(format!("{WORKLOAD_PREFIX}{name}").as_bytes())
            .await?)
    }

    /// Every registered workload, by name.
    ///
    /// # Errors
    /// Storage and corrupt-record errors.
    pub async fn list_workloads(&self) -> Result<Vec<Workload>, IssuerError> {
        list_records(&*self.store, WORKLOAD_PREFIX).await
    }
}

fn decode_record<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &[u8],
) -> Result<T, IssuerError> {
    serde_json::from_slice(value).map_err(|error| IssuerError::Corrupt {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

async fn list_records<T: serde::de::DeserializeOwned>(
    store: &dyn Backend,
    prefix: &str,
) -> Result<Vec<T>, IssuerError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.list(prefix.as_bytes(), after.as_deref(), 256).await?;
        for entry in page.entries {
            out.push(decode_record(
                &String::from_utf8_lossy(&entry.key),
                &entry.value,
            )?);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}
