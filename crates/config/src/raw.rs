//! The file as written: serde structs mirroring the TOML (`deny_unknown_fields`, every leaf
//! optional and spanned so that validation can point at its line), and the schema of sections
//! and keys that unknown-name errors suggest from.

use serde::Deserialize;
use toml::Spanned;

/// A leaf as written, with its byte span in the file.
pub(crate) type Leaf<T> = Option<Spanned<T>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub data: RawData,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub demo: RawDemo,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub waf: RawWaf,
    #[serde(default)]
    pub identity: RawIdentity,
    #[serde(default)]
    pub vault: RawVault,
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub trusted_issuer: Vec<RawTrustedIssuer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrustedIssuer {
    pub issuer: Leaf<String>,
    pub discovery_url: Leaf<String>,
    pub jwks_uri: Leaf<String>,
    pub audiences: Leaf<Vec<Spanned<String>>>,
    pub tenant: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    pub dir: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub format: Leaf<String>,
    pub level: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub listen: Leaf<String>,
    pub dangerous_public_admin: Leaf<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub listen: Leaf<String>,
    pub upstream: Leaf<String>,
    pub tls: Leaf<String>,
    pub cert_file: Leaf<String>,
    pub key_file: Leaf<String>,
    pub tls_certificate: Leaf<String>,
    pub tls_vault: Leaf<String>,
    pub dangerous_plaintext: Leaf<bool>,
    pub shutdown_grace: Leaf<String>,
    pub request_timeout: Leaf<String>,
    pub header_timeout: Leaf<String>,
    pub tls_handshake_timeout: Leaf<String>,
    pub max_connections: Leaf<i64>,
    pub max_connections_per_client: Leaf<i64>,
    pub max_new_connections_per_client: Leaf<i64>,
    pub over_rate_connection_hold: Leaf<String>,
    pub min_request_body_rate: Leaf<String>,
    pub min_response_rate: Leaf<String>,
    pub max_in_flight: Leaf<i64>,
    pub max_queued: Leaf<i64>,
    pub max_queue_wait: Leaf<String>,
    pub trusted_proxies: Leaf<Vec<Spanned<String>>>,
    pub workers: Leaf<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaf {
    pub crs: Leaf<String>,
    pub crs_setup: Leaf<String>,
    pub before_crs: Leaf<Vec<Spanned<String>>>,
    pub after_crs: Leaf<Vec<Spanned<String>>>,
    pub engine: Leaf<String>,
    pub paranoia_level: Leaf<i64>,
    pub request_body_limit: Leaf<i64>,
    pub request_body_no_files_limit: Leaf<i64>,
    pub response_body_access: Leaf<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub requests_per_second: Leaf<f64>,
    pub burst: Leaf<i64>,
    pub key: Leaf<String>,
    pub redis_url: Leaf<String>,
    pub redis_prefix: Leaf<String>,
    pub redis_timeout: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub host: Leaf<String>,
    pub path_prefix: Leaf<String>,
    pub backends: Leaf<Vec<Spanned<String>>>,
    pub request_timeout: Leaf<String>,
    pub health_check_path: Leaf<String>,
    pub health_check_interval: Leaf<String>,
    pub retries: Leaf<i64>,
    pub name: Leaf<String>,
    pub auth: Leaf<String>,
    pub audiences: Leaf<Vec<Spanned<String>>>,
    pub required_scopes: Leaf<Vec<Spanned<String>>>,
    pub authorize: Leaf<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDemo {
    pub listen: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub backend: Leaf<String>,
    pub path: Leaf<String>,
    pub postgres_url: Leaf<String>,
    pub postgres_table: Leaf<String>,
    pub postgres_pool_size: Leaf<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub checkpoint_interval: Leaf<String>,
    pub group_commit_max_delay: Leaf<String>,
    pub segment_max_bytes: Leaf<i64>,
    pub routine_records: Leaf<RoutineRecordsValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    pub listen: Leaf<String>,
    pub issuer_url: Leaf<String>,
    pub managed_identity_listen: Leaf<String>,
    pub token_lifetime: Leaf<String>,
    pub key_rotation: Leaf<String>,
    pub signing_algorithm: Leaf<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVault {
    pub listen: Leaf<String>,
    pub domain: Leaf<String>,
    pub default_vault: Leaf<String>,
    pub resource: Leaf<String>,
    pub geography: Leaf<String>,
    pub seal: Leaf<String>,
    pub pkcs11_module: Leaf<String>,
    pub pkcs11_token_label: Leaf<String>,
    pub pkcs11_key_label: Leaf<String>,
    pub pkcs11_pin_env: Leaf<String>,
    pub pkcs11_pin_file: Leaf<String>,
    pub throttle_window: Leaf<String>,
    pub throttle_all: Leaf<i64>,
    pub throttle_secret_create: Leaf<i64>,
    pub throttle_keys: Leaf<std::collections::BTreeMap<String, Spanned<i64>>>,
    pub purge_interval: Leaf<String>,
    pub read_only: Leaf<bool>,
}

/// `routine_records` may be written as a string (`"all"`, `"none"`, `"0.1"`) or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RoutineRecordsValue {
    Text(String),
    Fraction(f64),
}

/// Every section and its keys, in file order: what unknown-name errors list and suggest from.
/// A unit test checks that the example file sets exactly these keys.
pub(crate) const SCHEMA: &[(&str, &[&str])] = &[
    ("data", &["dir"]),
    ("log", &["format", "level"]),
    ("admin", &["listen", "dangerous_public_admin"]),
    (
        "gateway",
        &[
            "listen",
            "upstream",
            "tls",
            "cert_file",
            "key_file",
            "tls_certificate",
            "tls_vault",
            "dangerous_plaintext",
            "shutdown_grace",
            "request_timeout",
            "header_timeout",
            "tls_handshake_timeout",
            "max_connections",
            "max_connections_per_client",
            "max_new_connections_per_client",
            "over_rate_connection_hold",
            "min_request_body_rate",
            "min_response_rate",
            "max_in_flight",
            "max_queued",
            "max_queue_wait",
            "trusted_proxies",
            "workers",
        ],
    ),
    ("demo", &["listen"]),
    (
        "storage",
        &[
            "backend",
            "path",
            "postgres_url",
            "postgres_table",
            "postgres_pool_size",
        ],
    ),
    (
        "audit",
        &[
            "checkpoint_interval",
            "group_commit_max_delay",
            "segment_max_bytes",
            "routine_records",
        ],
    ),
    (
        "waf",
        &[
            "crs",
            "crs_setup",
            "before_crs",
            "after_crs",
            "engine",
            "paranoia_level",
            "request_body_limit",
            "request_body_no_files_limit",
            "response_body_access",
        ],
    ),
    (
        "identity",
        &[
            "listen",
            "issuer_url",
            "managed_identity_listen",
            "token_lifetime",
            "key_rotation",
            "signing_algorithm",
        ],
    ),
    (
        "vault",
        &[
            "listen",
            "domain",
            "default_vault",
            "resource",
            "geography",
            "seal",
            "pkcs11_module",
            "pkcs11_token_label",
            "pkcs11_key_label",
            "pkcs11_pin_env",
            "pkcs11_pin_file",
            "throttle_window",
            "throttle_all",
            "throttle_secret_create",
            "throttle_keys",
            "purge_interval",
            "read_only",
        ],
    ),
    (
        "rate_limit",
        &[
            "requests_per_second",
            "burst",
            "key",
            "redis_url",
            "redis_prefix",
            "redis_timeout",
        ],
    ),
    (
        "route",
        &[
            "host",
            "path_prefix",
            "backends",
            "request_timeout",
            "health_check_path",
            "health_check_interval",
            "retries",
            "name",
            "auth",
            "audiences",
            "required_scopes",
            "authorize",
        ],
    ),
    (
        "trusted_issuer",
        &["issuer", "discovery_url", "jwks_uri", "audiences", "tenant"],
    ),
];

/// The section names of [`SCHEMA`].
pub(crate) const SECTIONS: &[&str] = &[
    "data",
    "log",
    "admin",
    "gateway",
    "demo",
    "storage",
    "audit",
    "waf",
    "identity",
    "vault",
    "rate_limit",
    "route",
    "trusted_issuer",
];
