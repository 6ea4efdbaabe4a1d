//! Rampart's configuration: one TOML file for the whole plane, one section per component.
//!
//! The file is read once: [`raw`] serde structs (`deny_unknown_fields`, every leaf spanned) are
//! converted by [`Config::from_toml_str`] into the validated types below, so components never
//! see a string they must re-check. Every error is a [`ConfigError`] naming the file, the line
//! and the dotted key and saying what would be valid:
//!
//! ```text
//! rampart.toml:5: gateway.listen: "0.0.0.0:99999" is not a socket address (expected IP:PORT, e.g. "127.0.0.1:8443")
//! ```
//!
//! Every key is optional; [`Config::default`] is what `rampart up` runs with, and [`example`]
//! is a fully commented file that spells those defaults out.
//!
//! Modules: [`error`] (the error type), [`duration`] (`5s`-style durations), `raw` (the file
//! as written), `locate` (lines and keys of byte offsets), `validate` (raw to typed).

#![forbid(unsafe_code)]

pub mod duration;
pub mod error;
mod locate;
mod raw;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrorKind};

/// The validated configuration of the whole plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[data]`: where state lives.
    pub data: DataConfig,
    /// `[log]`: log output.
    pub log: LogConfig,
    /// `[admin]`: the admin listener (health probes and metrics).
    pub admin: AdminConfig,
    /// `[gateway]`: the edge proxy.
    pub gateway: GatewayConfig,
    /// `[demo]`: the built-in demo upstream.
    pub demo: DemoConfig,
    /// `[storage]`: the state store.
    pub storage: StorageConfig,
    /// `[audit]`: the audit trail.
    pub audit: AuditConfig,
    /// `[waf]`: the web application firewall in the gateway.
    pub waf: WafConfig,
    /// `[identity]`: the token issuer and the managed-identity endpoint.
    pub identity: IdentityConfig,
    /// `[vault]`: the Azure Key Vault compatible vault.
    pub vault: VaultConfig,
    /// `[rate_limit]`: per-client request rate limits; none unless the section is present.
    pub rate_limit: Option<RateLimitConfig>,
    /// `[[route]]`: routes by host and path prefix, tried in order before the catch-all
    /// `gateway.upstream`.
    pub routes: Vec<RouteConfig>,
    /// `[[trusted_issuer]]`: OIDC issuers whose access tokens routes (and the vault) accept,
    /// besides rampart's own issuer.
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
}

/// An OIDC issuer whose tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuerConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its keys are found.
    pub keys: IssuerKeys,
    /// Accepted `aud` values (a token needs one of them).
    pub audiences: Vec<String>,
    /// The tenant it speaks for, if any (`tid` must match).
    pub tenant: Option<String>,
}

/// Where a trusted issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerKeys {
    /// OpenID discovery at `<issuer>/.well-known/openid-configuration`.
    Discovery,
    /// OpenID discovery at this URL.
    DiscoveryUrl(String),
    /// This JWKS URL, without discovery.
    JwksUri(String),
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataConfig {
    /// The data directory (created mode 0700), relative to the working directory.
    pub dir: PathBuf,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Text for people, JSON for log shippers.
    pub format: LogFormat,
    /// A level or `target=level` directives, e.g. `info,rampart_gateway=debug`.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Listener for `/healthz`, `/readyz` and `/metrics`; loopback unless
    /// `dangerous_public_admin`.
    pub listen: SocketAddr,
    /// Allows a non-loopback admin listener.
    pub dangerous_public_admin: bool,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The public listener.
    pub listen: SocketAddr,
    /// Where requests go.
    pub upstream: Upstream,
    /// How the listener speaks TLS.
    pub tls: TlsMode,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// The whole-request deadline towards the upstream.
    pub request_timeout: Duration,
    /// Deadline for a client to send a whole request head (not a per-read timeout).
    pub header_timeout: Duration,
    /// Deadline for a client to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Connections held at most; when full, the slowest unfinished ones are shed first.
    pub max_connections: usize,
    /// Connections one client address may hold.
    pub max_connections_per_client: usize,
    /// New connections one client address may open per second (bursts of twice that).
    pub max_new_connections_per_client: u32,
    /// How long a connection over its client's new-connection rate is held, unread, before it
    /// is closed (zero: closed at once); stops reconnect loops from cycling.
    pub over_rate_connection_hold: Duration,
    /// Minimum rate at which clients must send request bodies (slow POST defense).
    pub min_request_body_rate: DataRate,
    /// Minimum rate at which clients must read responses (slow read defense).
    pub min_response_rate: DataRate,
    /// Requests in flight to upstreams at most; beyond, requests queue.
    pub max_in_flight: usize,
    /// Requests waiting for an upstream slot at most; more get 503 + Retry-After.
    pub max_queued: usize,
    /// How long a request may wait for a slot.
    pub max_queue_wait: Duration,
    /// Proxies in front of the gateway whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Worker threads (one event loop and listening socket each); 0 = one per CPU.
    pub workers: usize,
}

/// A minimum data rate: `bytes` per `per` of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRate {
    /// Bytes that must move...
    pub bytes: u64,
    /// ...per this much time.
    pub per: Duration,
}

/// An IP network (`addr/prefix`); a single address has the full prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address.
    pub addr: std::net::IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `[waf]`: the OWASP Core Rule Set (or any SecLang rules) on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafConfig {
    /// Where the Core Rule Set comes from.
    pub crs: CrsSource,
    /// The CRS setup file; by default `crs-setup.conf` (or `.example`) of the CRS directory.
    pub crs_setup: Option<PathBuf>,
    /// SecLang files (globs allowed) loaded after the setup file, before the rules: rule
    /// exclusions of the "before" kind, custom rules.
    pub before_crs: Vec<PathBuf>,
    /// SecLang files (globs allowed) loaded after the rules: "after" exclusions.
    pub after_crs: Vec<PathBuf>,
    /// The engine mode, whatever the files say.
    pub engine: WafEngine,
    /// CRS blocking paranoia level, 1 to 4.
    pub paranoia_level: u8,
    /// Largest request body inspected and accepted, files included (`SecRequestBodyLimit`).
    pub request_body_limit: u64,
    /// Largest request body without files (`SecRequestBodyNoFilesLimit`).
    pub request_body_no_files_limit: u64,
    /// Inspect response bodies of text types (`SecResponseBodyAccess`).
    pub response_body_access: bool,
}

/// Where the Core Rule Set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrsSource {
    /// The CRS installed on this machine (Debian's `modsecurity-crs`), if any.
    Auto,
    /// No CRS: only `before_crs` / `after_crs` files, if any.
    Off,
    /// A CRS directory holding `rules/` (and usually `crs-setup.conf`).
    Dir(PathBuf),
}

/// The WAF's engine mode (`SecRuleEngine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafEngine {
    /// Block what the rules deny.
    On,
    /// Evaluate and log, never block.
    DetectionOnly,
    /// Do not evaluate.
    Off,
}

/// `[rate_limit]`: a token bucket per client.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client.
    pub requests_per_second: f64,
    /// Requests a quiet client may send at once.
    pub burst: u32,
    /// What identifies a client.
    pub key: RateLimitKey,
    /// Share buckets across gateways through this Redis; local buckets when `None`.
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys.
    pub redis_prefix: String,
    /// How long to wait for Redis before falling back to local buckets.
    pub redis_timeout: Duration,
}

/// What identifies a client for rate limiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The client IP as the gateway sees it (after trusted proxies).
    ClientIp,
    /// The value of this request header (lowercase name).
    Header(String),
    /// The authenticated principal on routes with `auth`; the client IP where there is none.
    Principal,
}

/// `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// `api.example.com`, `*.example.com`, or `None` for any host.
    pub host: Option<String>,
    /// Path prefix, matched on whole segments.
    pub path_prefix: String,
    /// Backend base URLs, tried round-robin.
    pub backends: Vec<String>,
    /// Upstream deadline for this route; `gateway.request_timeout` when `None`.
    pub request_timeout: Option<Duration>,
    /// Active health checks (GET of this path, any 2xx is healthy), if any.
    pub health_check: Option<HealthCheckConfig>,
    /// Extra attempts on other backends, for idempotent bodyless requests only.
    pub retries: u32,
    /// The route's name (`route-<index>` unless set): its RBAC scope is
    /// `/gateway/routes/<name>`.
    pub name: String,
    /// What callers must prove, if anything.
    pub auth: Option<RouteAuthConfig>,
}

/// A route that demands a verified bearer token (`auth = "bearer"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuthConfig {
    /// Audiences a token may carry (any of them); empty: the trusted issuer's audiences.
    pub audiences: Vec<String>,
    /// Scopes the token must grant, all of them.
    pub required_scopes: Vec<String>,
    /// Whether callers also need an RBAC permission at `/gateway/routes/<name>`.
    pub authorize: bool,
}

/// Active health checks of a route's backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// The path requested.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
}

/// The gateway's upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in demo app (`[demo]`).
    Demo,
    /// An `http://` or `https://` base URL.
    Url(String),
}

/// How the gateway listener speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// A certificate from a development CA generated in the data dir.
    SelfSigned,
    /// PEM certificate chain and private key files, reloaded when they change.
    Files {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM).
        key: PathBuf,
    },
    /// The certificate `certificate` of a vault of this plane (its latest enabled version,
    /// swapped in when a new version appears).
    Vault {
        /// The certificate's name (1-127 letters, digits and '-').
        certificate: String,
        /// The vault holding it; `None`: `[vault] default_vault`.
        vault: Option<String>,
    },
    /// Plain HTTP (only for a gateway behind another TLS terminator, or benchmarks).
    DangerousPlaintext,
}

/// `[demo]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// The demo app's listener.
    pub listen: SocketAddr,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The backend and its settings.
    pub backend: StorageBackend,
}

/// The state store.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// Embedded redb file.
    Redb {
        /// The file, relative to the data dir unless absolute.
        path: PathBuf,
    },
    /// PostgreSQL, for several instances sharing state.
    Postgres {
        /// Connection URL (may carry a password: never printed).
        url: String,
        /// The table holding the key-value pairs.
        table: String,
        /// Connection pool size.
        pool_size: usize,
    },
}

impl fmt::Debug for StorageBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redb { path } => f.debug_struct("Redb").field("path", path).finish(),
            Self::Postgres {
                url,
                table,
                pool_size,
            } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("table", table)
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// How often a signed checkpoint is written while the log grows.
    pub checkpoint_interval: Duration,
    /// How long the writer waits for more records before an fsync.
    pub group_commit_max_delay: Duration,
    /// Size at which a new segment file starts.
    pub segment_max_bytes: u64,
    /// Which routine (allowed) records are kept; denies and sensitive records always are.
    pub routine_records: RoutineRecords,
}

/// `[vault]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// Where the vault API listens (HTTPS with the plane's certificate).
    pub listen: SocketAddr,
    /// Host suffix: `{vault}.{domain}` selects a vault.
    pub domain: String,
    /// The vault served for IP-literal and `localhost` hosts; created at start if missing.
    pub default_vault: String,
    /// The audience tokens for the vault must carry (the challenge's `resource`).
    pub resource: String,
    /// The deployment's geography id: backups restore only into vaults of the same one.
    pub geography: String,
    /// How the vault's root key is unsealed.
    pub seal: VaultSeal,
    /// The window the throttle limits count over.
    pub throttle_window: Duration,
    /// Operations per window per vault.
    pub throttle_all: u32,
    /// Secret creations (set, restore) per window per vault.
    pub throttle_secret_create: u32,
    /// Key-type throttle limits that differ from Azure's table, per window per vault, by
    /// class: `{software|hsm}-{type}` for operations on a key, with `-create` for create,
    /// import and rotate; `type` one of [`VAULT_THROTTLE_KEY_TYPES`]. Classes not named here
    /// keep Azure's limit (docs/vault-api.md).
    pub throttle_keys: std::collections::BTreeMap<String, u32>,
    /// How often the purge scheduler removes deleted objects past their retention.
    pub purge_interval: Duration,
    /// Start read-only (as during a regional failover): reads and cryptographic operations
    /// continue, changes are refused with 503 `ReadOnlyMode`.
    pub read_only: bool,
}

/// The key types of the vault's key throttle classes (`[vault] throttle_keys`), as in Azure's
/// key throttling table.
pub const VAULT_THROTTLE_KEY_TYPES: [&str; 7] = [
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ec-p-256",
    "ec-p-384",
    "ec-p-521",
    "ec-p-256k",
];

/// How the vault is unsealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultSeal {
    /// A 256-bit key in a 0600 file in the data directory (`vault-unseal.key`), read at start.
    KeyFile,
    /// Shamir shares held by operators: the plane starts sealed; `rampart vault init` makes
    /// the shares, `rampart vault unseal` submits them.
    Shamir,
    /// An AES key on a PKCS#11 token, used at start to unseal.
    Pkcs11(Pkcs11Seal),
}

impl VaultSeal {
    /// The method's name, as in the configuration and `rampart vault status`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::KeyFile => "key-file",
            Self::Shamir => "shamir",
            Self::Pkcs11(_) => "pkcs11",
        }
    }
}

/// `[vault] seal = "pkcs11"`: where the HSM key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Seal {
    /// The PKCS#11 module (shared library), `vault.pkcs11_module`.
    pub module: PathBuf,
    /// The label of the token (it selects the slot), `vault.pkcs11_token_label`.
    pub token_label: String,
    /// The label of the AES key on the token (generated there at first start).
    pub key_label: String,
    /// Where the user PIN comes from (never the configuration itself).
    pub pin: PinSource,
}

/// Where a PKCS#11 user PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// An environment variable, `vault.pkcs11_pin_env`.
    Env(String),
    /// A file readable only by its owner (mode 0600), `vault.pkcs11_pin_file`.
    File(PathBuf),
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// The issuer's listener (discovery, JWKS, token endpoint); HTTPS with the gateway's TLS
    /// settings unless the gateway is plaintext.
    pub listen: SocketAddr,
    /// The `iss` of issued tokens and base of the endpoint URLs; `None`: derived from `listen`
    /// (`https://localhost:PORT` for a loopback listener).
    pub issuer_url: Option<String>,
    /// The managed-identity endpoint (plain HTTP, serving loopback callers only).
    pub managed_identity_listen: SocketAddr,
    /// Access-token lifetime (more than 300 s: Azure SDKs refresh tokens expiring within 300 s).
    pub token_lifetime: Duration,
    /// How long a signing key signs before the next one replaces it.
    pub key_rotation: Duration,
    /// The signing algorithm of new keys.
    pub signing_algorithm: SigningAlgorithm,
}

/// Token signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// RSA PKCS#1 v1.5 SHA-256, 2048-bit keys.
    Rs256,
}

/// Sampling of routine records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RoutineRecords {
    /// Every one.
    All,
    /// None.
    None,
    /// This fraction (0..=1).
    Sample(f64),
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data: DataConfig {
                dir: PathBuf::from(defaults::DATA_DIR),
            },
            log: LogConfig {
                format: LogFormat::Text,
                level: defaults::LOG_LEVEL.to_owned(),
            },
            admin: AdminConfig {
                listen: parse_default(defaults::ADMIN_LISTEN),
                dangerous_public_admin: false,
            },
            gateway: GatewayConfig {
                listen: parse_default(defaults::GATEWAY_LISTEN),
                upstream: Upstream::Demo,
                tls: TlsMode::SelfSigned,
                shutdown_grace: defaults::SHUTDOWN_GRACE,
                request_timeout: defaults::REQUEST_TIMEOUT,
                header_timeout: defaults::HEADER_TIMEOUT,
                tls_handshake_timeout: defaults::TLS_HANDSHAKE_TIMEOUT,
                max_connections: defaults::MAX_CONNECTIONS,
                max_connections_per_client: defaults::MAX_CONNECTIONS_PER_CLIENT,
                max_new_connections_per_client: defaults::MAX_NEW_CONNECTIONS_PER_CLIENT,
                over_rate_connection_hold: defaults::OVER_RATE_CONNECTION_HOLD,
                min_request_body_rate: defaults::MIN_DATA_RATE,
                min_response_rate: defaults::MIN_DATA_RATE,
                max_in_flight: defaults::MAX_IN_FLIGHT,
                max_queued: defaults::MAX_QUEUED,
                max_queue_wait: defaults::MAX_QUEUE_WAIT,
                trusted_proxies: Vec::new(),
                workers: 0,
            },
            demo: DemoConfig {
                listen: parse_default(defaults::DEMO_LISTEN),
            },
            storage: StorageConfig {
                backend: StorageBackend::Redb {
                    path: PathBuf::from(defaults::REDB_FILE),
                },
            },
            audit: AuditConfig {
                checkpoint_interval: defaults::CHECKPOINT_INTERVAL,
                group_commit_max_delay: defaults::GROUP_COMMIT_MAX_DELAY,
                segment_max_bytes: defaults::SEGMENT_MAX_BYTES,
                routine_records: RoutineRecords::All,
            },
            waf: WafConfig {
                crs: CrsSource::Auto,
                crs_setup: None,
                before_crs: Vec::new(),
                after_crs: Vec::new(),
                engine: WafEngine::On,
                paranoia_level: 1,
                request_body_limit: defaults::WAF_REQUEST_BODY_LIMIT,
                request_body_no_files_limit: defaults::WAF_REQUEST_BODY_NO_FILES_LIMIT,
                response_body_access: true,
            },
            identity: IdentityConfig {
                listen: parse_default(defaults::IDENTITY_LISTEN),
                issuer_url: None,
                managed_identity_listen: parse_default(defaults::MANAGED_IDENTITY_LISTEN),
                token_lifetime: defaults::TOKEN_LIFETIME,
                key_rotation: defaults::KEY_ROTATION,
                signing_algorithm: SigningAlgorithm::Es256,
            },
            vault: VaultConfig {
                listen: parse_default(defaults::VAULT_LISTEN),
                domain: defaults::VAULT_DOMAIN.to_owned(),
                default_vault: defaults::VAULT_DEFAULT_NAME.to_owned(),
                resource: defaults::VAULT_RESOURCE.to_owned(),
                geography: defaults::VAULT_GEOGRAPHY.to_owned(),
                seal: VaultSeal::KeyFile,
                throttle_window: defaults::VAULT_THROTTLE_WINDOW,
                throttle_all: defaults::VAULT_THROTTLE_ALL,
                throttle_secret_create: defaults::VAULT_THROTTLE_SECRET_CREATE,
                throttle_keys: std::collections::BTreeMap::new(),
                read_only: false,
                purge_interval: defaults::VAULT_PURGE_INTERVAL,
            },
            rate_limit: None,
            routes: Vec::new(),
            trusted_issuers: Vec::new(),
        }
    }
}

fn parse_default(addr: &str) -> SocketAddr {
    addr.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The defaults, in one place (the example file repeats them; a test keeps both in step).
pub mod defaults {
    use std::time::Duration;

    /// `vault.pkcs11_module`.
    pub const PKCS11_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    /// `vault.pkcs11_key_label`.
    pub const PKCS11_KEY_LABEL: &str = "rampart-vault-root";
    /// `data.dir`.
    pub const DATA_DIR: &str = "./rampart-data";
    /// `log.level`.
    pub const LOG_LEVEL: &str = "info";
    /// `admin.listen`.
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9901";
    /// `gateway.listen`.
    pub const GATEWAY_LISTEN: &str = "127.0.0.1:8443";
    /// `demo.listen`.
    pub const DEMO_LISTEN: &str = "127.0.0.1:8081";
    /// `vault.listen`.
    pub const VAULT_LISTEN: &str = "127.0.0.1:8446";
    /// `vault.domain`.
    pub const VAULT_DOMAIN: &str = "vault.localhost";
    /// `vault.default_vault`.
    pub const VAULT_DEFAULT_NAME: &str = "default";
    /// `vault.resource`.
    pub const VAULT_RESOURCE: &str = "https://vault.rampart.local";
    /// `vault.geography`.
    pub const VAULT_GEOGRAPHY: &str = "local";
    /// `vault.throttle_window` (Azure's).
    pub const VAULT_THROTTLE_WINDOW: Duration = Duration::from_secs(10);
    /// `vault.throttle_all` (Azure's 4,000 transactions per 10 s per vault).
    pub const VAULT_THROTTLE_ALL: u32 = 4000;
    /// `vault.throttle_secret_create` (Azure's 300 per 10 s).
    pub const VAULT_THROTTLE_SECRET_CREATE: u32 = 300;
    /// `vault.purge_interval`.
    pub const VAULT_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
    /// `identity.listen`.
    pub const IDENTITY_LISTEN: &str = "127.0.0.1:8444";
    /// `identity.managed_identity_listen`.
    pub const MANAGED_IDENTITY_LISTEN: &str = "127.0.0.1:8445";
    /// `identity.token_lifetime`.
    pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
    /// `identity.key_rotation` (30 days).
    pub const KEY_ROTATION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// `gateway.shutdown_grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
    /// `gateway.request_timeout`.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// `gateway.header_timeout`.
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// `gateway.tls_handshake_timeout`.
    pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// `gateway.max_connections`.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// `gateway.max_connections_per_client`.
    pub const MAX_CONNECTIONS_PER_CLIENT: usize = 256;
    /// `gateway.max_new_connections_per_client` (per second).
    pub const MAX_NEW_CONNECTIONS_PER_CLIENT: u32 = 200;
    /// `gateway.over_rate_connection_hold`.
    pub const OVER_RATE_CONNECTION_HOLD: Duration = Duration::from_secs(10);
    /// `gateway.min_request_body_rate` and `gateway.min_response_rate`: 1 KiB per 10 s.
    pub const MIN_DATA_RATE: super::DataRate = super::DataRate {
        bytes: 1024,
        per: Duration::from_secs(10),
    };
    /// `gateway.max_in_flight`.
    pub const MAX_IN_FLIGHT: usize = 1024;
    /// `gateway.max_queued`.
    pub const MAX_QUEUED: usize = 1024;
    /// `gateway.max_queue_wait`.
    pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);
    /// `waf.request_body_limit` (ModSecurity's recommended 12.5 MiB).
    pub const WAF_REQUEST_BODY_LIMIT: u64 = 13_107_200;
    /// `waf.request_body_no_files_limit` (ModSecurity's recommended 128 KiB).
    pub const WAF_REQUEST_BODY_NO_FILES_LIMIT: u64 = 131_072;
    /// `rate_limit.redis_prefix`.
    pub const REDIS_PREFIX: &str = "rampart:rl:";
    /// `rate_limit.redis_timeout`.
    pub const REDIS_TIMEOUT: Duration = Duration::from_millis(50);
    /// `route.path_prefix`.
    pub const PATH_PREFIX: &str = "/";
    /// `route.health_check_interval`.
    pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
    /// `storage.path`.
    pub const REDB_FILE: &str = "rampart.redb";
    /// `storage.postgres_table`.
    pub const POSTGRES_TABLE: &str = "rampart_kv";
    /// `storage.postgres_pool_size`.
    pub const POSTGRES_POOL_SIZE: usize = 16;
    /// `audit.checkpoint_interval`.
    pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
    /// `audit.group_commit_max_delay`.
    pub const GROUP_COMMIT_MAX_DELAY: Duration = Duration::ZERO;
    /// `audit.segment_max_bytes`.
    pub const SEGMENT_MAX_BYTES: u64 = 64 << 20;
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            kind: Box::new(ConfigErrorKind::Io { error }),
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Validates configuration text; `origin` is the file name used in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        validate::from_toml_str(text, origin)
    }
}

/// A fully commented configuration file that sets every key to its default.
pub fn example() -> &'static str {
    include_str!("example.toml")
}

/// A URL with any password replaced by `***`, for messages and debug output.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("http://h:1/p@q"), "http://h:1/p@q");
        assert_eq!(redact_url("no-scheme"), "no-scheme");
    }

    #[test]
    fn storage_debug_never_shows_the_password() {
        let backend = StorageBackend::Postgres {
            url: "postgres://app:s3cret@db/x".to_owned(),
            table: "t".to_owned(),
            pool_size: 1,
        };
        let text = format!("{backend:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
