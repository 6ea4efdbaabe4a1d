//! Raw to typed: every key of the file checked once, each failure located at its line and key.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml_edit::ImDocument;

use crate::duration::parse_duration;
use crate::locate::{check_schema, key_at, line_of};
use crate::raw::{
    Leaf, RawAdmin, RawAudit, RawConfig, RawData, RawGateway, RawIdentity, RawLog, RawRateLimit,
    RawRoute, RawStorage, RawTrustedIssuer, RawVault, RawWaf, RoutineRecordsValue,
};
use crate::{
    AdminConfig, AuditConfig, Config, ConfigError, ConfigErrorKind, CrsSource, DataConfig,
    DataRate, DemoConfig, GatewayConfig, HealthCheckConfig, IdentityConfig, IpNet, IssuerKeys,
    LogConfig, LogFormat, PinSource, Pkcs11Seal, RateLimitConfig, RateLimitKey, RouteAuthConfig,
    RouteConfig, RoutineRecords, SigningAlgorithm, StorageBackend, StorageConfig, TlsMode,
    TrustedIssuerConfig, Upstream, VaultConfig, VaultSeal, WafConfig, WafEngine, defaults,
    redact_url,
};

pub(crate) fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let document = ImDocument::parse(text).map_err(|error| ConfigError {
        file: origin.to_owned(),
        line: error.span().map(|span| line_of(text, span.start)),
        key: None,
        kind: Box::new(ConfigErrorKind::Syntax {
            message: first_line(error.message()),
        }),
    })?;
    let file = File {
        text,
        origin,
        document: &document,
    };
    if let Some(unknown) = check_schema(&document) {
        return Err(file.error_at(unknown.offset, &unknown.key, unknown.kind));
    }
    let raw: RawConfig = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        ConfigError {
            file: origin.to_owned(),
            line: error.span().map(|span| line_of(text, span.start)),
            key: key_at(&document, &span),
            kind: Box::new(type_error(error.message())),
        }
    })?;
    file.convert(raw)
}

/// The file being validated, for locating errors.
struct File<'a> {
    text: &'a str,
    origin: &'a Path,
    document: &'a ImDocument<&'a str>,
}

impl File<'_> {
    fn error_at(&self, offset: usize, key: &str, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            file: self.origin.to_owned(),
            line: Some(line_of(self.text, offset)),
            key: Some(key.to_owned()),
            kind: Box::new(kind),
        }
    }

    fn error<T>(&self, leaf: &Spanned<T>, key: &str, kind: ConfigErrorKind) -> ConfigError {
        self.error_at(leaf.span().start, key, kind)
    }

    /// An error about a key that is absent: located at its section's header, if there is one.
    fn missing(&self, section: &str, key: &str, kind: ConfigErrorKind) -> ConfigError {
        let line = self
            .document
            .as_table()
            .get(section)
            .and_then(toml_edit::Item::span)
            .map(|span| line_of(self.text, span.start));
        ConfigError {
            file: self.origin.to_owned(),
            line,
            key: Some(format!("{section}.{key}")),
            kind: Box::new(kind),
        }
    }

    fn convert(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let tls_at = raw.gateway.tls.as_ref().map(|value| value.span().start);
        let config = Config {
            data: self.data(raw.data, defaults.data)?,
            log: self.log(raw.log, defaults.log)?,
            admin: self.admin(raw.admin, defaults.admin)?,
            gateway: self.gateway(raw.gateway, defaults.gateway)?,
            demo: DemoConfig {
                listen: self.socket_addr(
                    raw.demo.listen.as_ref(),
                    "demo.listen",
                    defaults::DEMO_LISTEN,
                    defaults.demo.listen,
                )?,
            },
            storage: self.storage(raw.storage)?,
            audit: self.audit(raw.audit, defaults.audit)?,
            waf: self.waf(raw.waf, defaults.waf)?,
            identity: self.identity(raw.identity, defaults.identity)?,
            vault: self.vault(raw.vault, defaults.vault)?,
            rate_limit: raw.rate_limit.map(|raw| self.rate_limit(raw)).transpose()?,
            routes: raw
                .route
                .into_iter()
                .enumerate()
                .map(|(index, raw)| self.route(index, raw))
                .collect::<Result<_, _>>()?,
            trusted_issuers: raw
                .trusted_issuer
                .into_iter()
                .enumerate()
                .map(|(index, raw)| self.trusted_issuer(index, raw))
                .collect::<Result<_, _>>()?,
        };
        self.check_route_names(&config.routes)?;
        if matches!(config.gateway.tls, TlsMode::Vault { .. })
            && config.vault.seal == VaultSeal::Shamir
        {
            return Err(self.error_at(
                tls_at.unwrap_or(0),
                "gateway.tls",
                ConfigErrorKind::Invalid {
                    message: "\"vault\" needs a vault that unseals at start, but vault.seal = \"shamir\" starts sealed (use seal = \"key-file\" or \"pkcs11\", or gateway.tls = \"files\")".to_owned(),
                },
            ));
        }
        self.check_listeners(&config, &raw_listen_spans(self.document))?;
        Ok(config)
    }

    fn data(&self, raw: RawData, default: DataConfig) -> Result<DataConfig, ConfigError> {
        Ok(DataConfig {
            dir: match &raw.dir {
                Some(dir) => self.path(dir, "data.dir", "the working directory")?,
                None => default.dir,
            },
        })
    }

    fn log(&self, raw: RawLog, default: LogConfig) -> Result<LogConfig, ConfigError> {
        let format = match &raw.format {
            None => default.format,
            Some(value) => match value.get_ref().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(self.error(
                        value,
                        "log.format",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "log format",
                            expected: "\"text\" or \"json\"",
                        },
                    ));
                }
            },
        };
        let level = match &raw.level {
            None => default.level,
            Some(value) => {
                check_log_filter(value.get_ref()).map_err(|reason| {
                    self.error(
                        value,
                        "log.level",
                        ConfigErrorKind::InvalidLogFilter {
                            value: value.get_ref().clone(),
                            reason,
                        },
                    )
                })?;
                value.get_ref().clone()
            }
        };
        Ok(LogConfig { format, level })
    }

    fn admin(&self, raw: RawAdmin, default: AdminConfig) -> Result<AdminConfig, ConfigError> {
        let listen = self.socket_addr(
            raw.listen.as_ref(),
            "admin.listen",
            defaults::ADMIN_LISTEN,
            default.listen,
        )?;
        let dangerous_public_admin = raw
            .dangerous_public_admin
            .map_or(default.dangerous_public_admin, Spanned::into_inner);
        if !dangerous_public_admin
            && !listen.ip().is_loopback()
            && let Some(value) = &raw.listen
        {
            return Err(self.error(
                value,
                "admin.listen",
                ConfigErrorKind::PublicAdmin { addr: listen },
            ));
        }
        Ok(AdminConfig {
            listen,
            dangerous_public_admin,
        })
    }

    fn gateway(
        &self,
        raw: RawGateway,
        default: GatewayConfig,
    ) -> Result<GatewayConfig, ConfigError> {
        let listen = self.socket_addr(
            raw.listen.as_ref(),
            "gateway.listen",
            defaults::GATEWAY_LISTEN,
            default.listen,
        )?;
        let upstream = match &raw.upstream {
            None => default.upstream,
            Some(value) if value.get_ref() == "demo" => Upstream::Demo,
            Some(value) => Upstream::Url(check_upstream(value.get_ref()).map_err(|reason| {
                self.error(
                    value,
                    "gateway.upstream",
                    ConfigErrorKind::InvalidUpstream {
                        value: redact_url(value.get_ref()),
                        reason,
                    },
                )
            })?),
        };
        let tls = self.tls(&raw)?;
        let shutdown_grace = self.duration(
            raw.shutdown_grace.as_ref(),
            "gateway.shutdown_grace",
            "10s",
            (Duration::ZERO, Duration::from_secs(3600)),
            default.shutdown_grace,
        )?;
        let request_timeout = self.duration(
            raw.request_timeout.as_ref(),
            "gateway.request_timeout",
            "60s",
            (Duration::from_secs(1), Duration::from_secs(3600)),
            default.request_timeout,
        )?;
        let timeout = |leaf: &Leaf<String>, key: &str, default: Duration| {
            self.duration(
                leaf.as_ref(),
                key,
                "10s",
                (Duration::from_secs(1), Duration::from_secs(300)),
                default,
            )
        };
        let header_timeout = timeout(
            &raw.header_timeout,
            "gateway.header_timeout",
            default.header_timeout,
        )?;
        let tls_handshake_timeout = timeout(
            &raw.tls_handshake_timeout,
            "gateway.tls_handshake_timeout",
            default.tls_handshake_timeout,
        )?;
        let max_connections = self.count(
            &raw.max_connections,
            "gateway.max_connections",
            (1, 1_000_000),
            default.max_connections,
        )?;
        let max_connections_per_client = self.count(
            &raw.max_connections_per_client,
            "gateway.max_connections_per_client",
            (1, 1_000_000),
            default.max_connections_per_client,
        )?;
        let max_new_connections_per_client = self.count(
            &raw.max_new_connections_per_client,
            "gateway.max_new_connections_per_client",
            (1, 1_000_000),
            default.max_new_connections_per_client as usize,
        )?;
        let over_rate_connection_hold = self.duration(
            raw.over_rate_connection_hold.as_ref(),
            "gateway.over_rate_connection_hold",
            "10s",
            (Duration::ZERO, Duration::from_secs(300)),
            default.over_rate_connection_hold,
        )?;
        let workers = self.count(&raw.workers, "gateway.workers", (0, 1024), default.workers)?;
        let min_request_body_rate = self.data_rate(
            &raw.min_request_body_rate,
            "gateway.min_request_body_rate",
            default.min_request_body_rate,
        )?;
        let min_response_rate = self.data_rate(
            &raw.min_response_rate,
            "gateway.min_response_rate",
            default.min_response_rate,
        )?;
        let max_in_flight = self.count(
            &raw.max_in_flight,
            "gateway.max_in_flight",
            (1, 1_000_000),
            default.max_in_flight,
        )?;
        let max_queued = self.count(
            &raw.max_queued,
            "gateway.max_queued",
            (0, 1_000_000),
            default.max_queued,
        )?;
        let max_queue_wait = self.duration(
            raw.max_queue_wait.as_ref(),
            "gateway.max_queue_wait",
            "1s",
            (Duration::ZERO, Duration::from_secs(60)),
            default.max_queue_wait,
        )?;
        let trusted_proxies = match &raw.trusted_proxies {
            None => default.trusted_proxies,
            Some(list) => list
                .get_ref()
                .iter()
                .map(|entry| {
                    parse_network(entry.get_ref()).map_err(|reason| {
                        self.error(
                            entry,
                            "gateway.trusted_proxies",
                            ConfigErrorKind::InvalidNetwork {
                                value: entry.get_ref().clone(),
                                reason,
                            },
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(GatewayConfig {
            listen,
            upstream,
            tls,
            shutdown_grace,
            request_timeout,
            header_timeout,
            tls_handshake_timeout,
            max_connections,
            max_connections_per_client,
            max_new_connections_per_client: u32::try_from(max_new_connections_per_client)
                .unwrap_or(u32::MAX),
            over_rate_connection_hold,
            min_request_body_rate,
            min_response_rate,
            max_in_flight,
            max_queued,
            max_queue_wait,
            trusted_proxies,
            workers,
        })
    }

    fn tls(&self, raw: &RawGateway) -> Result<TlsMode, ConfigError> {
        const FILES: &str = "gateway.tls = \"files\"";
        const VAULT: &str = "gateway.tls = \"vault\"";
        let plaintext = raw
            .dangerous_plaintext
            .as_ref()
            .is_some_and(|value| *value.get_ref());
        let mode = match &raw.tls {
            None => "self-signed",
            Some(value) => match value.get_ref().as_str() {
                mode @ ("self-signed" | "files" | "vault") => mode,
                other => {
                    return Err(self.error(
                        value,
                        "gateway.tls",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "TLS mode",
                            expected: "\"self-signed\", \"files\" or \"vault\"",
                        },
                    ));
                }
            },
        };
        let not_applicable = |pairs: &[(&Leaf<String>, &str)], condition| {
            for (leaf, key) in pairs {
                if let Some(value) = leaf {
                    return Err(self.error(
                        value,
                        key,
                        ConfigErrorKind::NotApplicable { condition },
                    ));
                }
            }
            Ok(())
        };
        let files_keys = [
            (&raw.cert_file, "gateway.cert_file"),
            (&raw.key_file, "gateway.key_file"),
        ];
        let vault_keys = [
            (&raw.tls_certificate, "gateway.tls_certificate"),
            (&raw.tls_vault, "gateway.tls_vault"),
        ];
        if mode != "files" {
            not_applicable(&files_keys, FILES)?;
        }
        if mode != "vault" {
            not_applicable(&vault_keys, VAULT)?;
        }
        if mode == "self-signed" {
            return Ok(if plaintext {
                TlsMode::DangerousPlaintext
            } else {
                TlsMode::SelfSigned
            });
        }
        if plaintext && let Some(value) = &raw.dangerous_plaintext {
            return Err(self.error(
                value,
                "gateway.dangerous_plaintext",
                ConfigErrorKind::PlaintextWithCertFiles,
            ));
        }
        if mode == "vault" {
            let certificate = match &raw.tls_certificate {
                Some(value) => {
                    let name = value.get_ref();
                    if !is_object_name(name) {
                        return Err(self.error(
                            value,
                            "gateway.tls_certificate",
                            ConfigErrorKind::Invalid {
                                message: format!(
                                    "{:?} is not a certificate name (expected 1-127 letters, digits and '-')",
                                    name.chars().take(128).collect::<String>()
                                ),
                            },
                        ));
                    }
                    name.clone()
                }
                None => {
                    return Err(self.missing(
                        "gateway",
                        "tls_certificate",
                        ConfigErrorKind::Required {
                            condition: VAULT,
                            expected: "the name of a certificate in the vault, e.g. \"gateway\"",
                        },
                    ));
                }
            };
            let vault = match &raw.tls_vault {
                None => None,
                Some(value) => {
                    let text = value.get_ref();
                    if !is_vault_name(text) {
                        return Err(self.error(
                            value,
                            "gateway.tls_vault",
                            ConfigErrorKind::Invalid {
                                message: format!(
                                    "{text:?} is not a vault name (expected 3-24 letters, digits and '-', starting with a letter, not ending with '-', no \"--\")"
                                ),
                            },
                        ));
                    }
                    Some(text.to_ascii_lowercase())
                }
            };
            return Ok(TlsMode::Vault { certificate, vault });
        }
        let pem = |leaf: &Leaf<String>, key: &str| match leaf {
            Some(value) => self.path(value, &format!("gateway.{key}"), "the working directory"),
            None => Err(self.missing(
                "gateway",
                key,
                ConfigErrorKind::Required {
                    condition: FILES,
                    expected: "the path of a PEM file",
                },
            )),
        };
        let cert = pem(&raw.cert_file, "cert_file")?;
        let key = pem(&raw.key_file, "key_file")?;
        Ok(TlsMode::Files { cert, key })
    }

    fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        const POSTGRES: &str = "storage.backend = \"postgres\"";
        const REDB: &str = "storage.backend = \"redb\"";
        let postgres = match &raw.backend {
            None => false,
            Some(value) => match value.get_ref().as_str() {
                "redb" => false,
                "postgres" => true,
                other => {
                    return Err(self.error(
                        value,
                        "storage.backend",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "storage backend",
                            expected: "\"redb\" or \"postgres\"",
                        },
                    ));
                }
            },
        };
        if !postgres {
            if let Some((span, key)) = [
                (raw.postgres_url.as_ref().map(Spanned::span), "postgres_url"),
                (
                    raw.postgres_table.as_ref().map(Spanned::span),
                    "postgres_table",
                ),
                (
                    raw.postgres_pool_size.as_ref().map(Spanned::span),
                    "postgres_pool_size",
                ),
            ]
            .into_iter()
            .find_map(|(span, key)| span.map(|span| (span, key)))
            {
                return Err(self.error_at(
                    span.start,
                    &format!("storage.{key}"),
                    ConfigErrorKind::NotApplicable {
                        condition: POSTGRES,
                    },
                ));
            }
            let path = match &raw.path {
                Some(value) => self.path(value, "storage.path", "data.dir")?,
                None => PathBuf::from(defaults::REDB_FILE),
            };
            return Ok(StorageConfig {
                backend: StorageBackend::Redb { path },
            });
        }
        if let Some(value) = &raw.path {
            return Err(self.error(
                value,
                "storage.path",
                ConfigErrorKind::NotApplicable { condition: REDB },
            ));
        }
        let url = match &raw.postgres_url {
            None => {
                return Err(self.missing(
                    "storage",
                    "postgres_url",
                    ConfigErrorKind::Required {
                        condition: POSTGRES,
                        expected: "a postgres:// URL",
                    },
                ));
            }
            Some(value) => {
                let url = value.get_ref();
                let host_part = url
                    .strip_prefix("postgres://")
                    .or_else(|| url.strip_prefix("postgresql://"));
                if host_part
                    .is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace))
                {
                    return Err(self.error(
                        value,
                        "storage.postgres_url",
                        ConfigErrorKind::InvalidPostgresUrl {
                            value: redact_url(url),
                        },
                    ));
                }
                url.clone()
            }
        };
        let table = match &raw.postgres_table {
            None => defaults::POSTGRES_TABLE.to_owned(),
            Some(value) => {
                if !is_table_name(value.get_ref()) {
                    return Err(self.error(
                        value,
                        "storage.postgres_table",
                        ConfigErrorKind::InvalidTableName {
                            value: value.get_ref().clone(),
                        },
                    ));
                }
                value.get_ref().clone()
            }
        };
        let pool_size = match &raw.postgres_pool_size {
            None => defaults::POSTGRES_POOL_SIZE,
            Some(value) => {
                let size = *value.get_ref();
                usize::try_from(size)
                    .ok()
                    .filter(|size| (1..=1024).contains(size))
                    .ok_or_else(|| {
                        self.error(
                            value,
                            "storage.postgres_pool_size",
                            ConfigErrorKind::IntegerOutOfRange {
                                value: size,
                                min: 1,
                                max: 1024,
                            },
                        )
                    })?
            }
        };
        Ok(StorageConfig {
            backend: StorageBackend::Postgres {
                url,
                table,
                pool_size,
            },
        })
    }

    fn audit(&self, raw: RawAudit, default: AuditConfig) -> Result<AuditConfig, ConfigError> {
        let checkpoint_interval = self.duration(
            raw.checkpoint_interval.as_ref(),
            "audit.checkpoint_interval",
            "60s",
            (Duration::from_secs(1), Duration::from_secs(24 * 3600)),
            default.checkpoint_interval,
        )?;
        let group_commit_max_delay = self.duration(
            raw.group_commit_max_delay.as_ref(),
            "audit.group_commit_max_delay",
            "0ms",
            (Duration::ZERO, Duration::from_secs(1)),
            default.group_commit_max_delay,
        )?;
        const MIN_SEGMENT: u64 = 4 << 10;
        const MAX_SEGMENT: u64 = 4 << 30;
        let segment_max_bytes = match &raw.segment_max_bytes {
            None => default.segment_max_bytes,
            Some(value) => {
                let size = *value.get_ref();
                u64::try_from(size)
                    .ok()
                    .filter(|size| (MIN_SEGMENT..=MAX_SEGMENT).contains(size))
                    .ok_or_else(|| {
                        self.error(
                            value,
                            "audit.segment_max_bytes",
                            ConfigErrorKind::ByteSizeOutOfRange {
                                value: size,
                                min: MIN_SEGMENT,
                                max: MAX_SEGMENT,
                            },
                        )
                    })?
            }
        };
        let routine_records = match &raw.routine_records {
            None => default.routine_records,
            Some(value) => {
                let parsed = match value.get_ref() {
                    RoutineRecordsValue::Text(text) if text == "all" => Some(RoutineRecords::All),
                    RoutineRecordsValue::Text(text) if text == "none" => Some(RoutineRecords::None),
                    RoutineRecordsValue::Text(text) => text.parse::<f64>().ok().and_then(fraction),
                    RoutineRecordsValue::Fraction(number) => fraction(*number),
                };
                parsed.ok_or_else(|| {
                    let written = match value.get_ref() {
                        RoutineRecordsValue::Text(text) => text.clone(),
                        RoutineRecordsValue::Fraction(number) => number.to_string(),
                    };
                    self.error(
                        value,
                        "audit.routine_records",
                        ConfigErrorKind::InvalidRoutineRecords { value: written },
                    )
                })?
            }
        };
        Ok(AuditConfig {
            checkpoint_interval,
            group_commit_max_delay,
            segment_max_bytes,
            routine_records,
        })
    }

    fn identity(
        &self,
        raw: RawIdentity,
        default: IdentityConfig,
    ) -> Result<IdentityConfig, ConfigError> {
        let listen = self.socket_addr(
            raw.listen.as_ref(),
            "identity.listen",
            defaults::IDENTITY_LISTEN,
            default.listen,
        )?;
        let managed_identity_listen = self.socket_addr(
            raw.managed_identity_listen.as_ref(),
            "identity.managed_identity_listen",
            defaults::MANAGED_IDENTITY_LISTEN,
            default.managed_identity_listen,
        )?;
        let issuer_url = match &raw.issuer_url {
            None => default.issuer_url,
            Some(value) => {
                let text = value.get_ref();
                if !is_issuer_url(text) {
                    return Err(self.error(
                        value,
                        "identity.issuer_url",
                        ConfigErrorKind::InvalidIssuerUrl {
                            value: text.clone(),
                        },
                    ));
                }
                Some(text.clone())
            }
        };
        let token_lifetime = self.duration(
            raw.token_lifetime.as_ref(),
            "identity.token_lifetime",
            "1h",
            (Duration::from_secs(301), Duration::from_secs(24 * 3600)),
            default.token_lifetime,
        )?;
        let key_rotation = self.duration(
            raw.key_rotation.as_ref(),
            "identity.key_rotation",
            "720h",
            (
                Duration::from_secs(3600),
                Duration::from_secs(365 * 24 * 3600),
            ),
            default.key_rotation,
        )?;
        let signing_algorithm = match &raw.signing_algorithm {
            None => default.signing_algorithm,
            Some(value) => match value.get_ref().as_str() {
                "ES256" => SigningAlgorithm::Es256,
                "RS256" => SigningAlgorithm::Rs256,
                other => {
                    return Err(self.error(
                        value,
                        "identity.signing_algorithm",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "signing algorithm",
                            expected: "\"ES256\" or \"RS256\"",
                        },
                    ));
                }
            },
        };
        Ok(IdentityConfig {
            listen,
            issuer_url,
            managed_identity_listen,
            token_lifetime,
            key_rotation,
            signing_algorithm,
        })
    }

    fn vault(&self, raw: RawVault, default: VaultConfig) -> Result<VaultConfig, ConfigError> {
        let listen = self.socket_addr(
            raw.listen.as_ref(),
            "vault.listen",
            defaults::VAULT_LISTEN,
            default.listen,
        )?;
        let domain = match &raw.domain {
            None => default.domain,
            Some(value) => {
                let text = value.get_ref().to_ascii_lowercase();
                if !is_dns_name(&text) {
                    return Err(self.error(
                        value,
                        "vault.domain",
                        ConfigErrorKind::InvalidHost {
                            value: value.get_ref().clone(),
                        },
                    ));
                }
                text
            }
        };
        let default_vault = match &raw.default_vault {
            None => default.default_vault,
            Some(value) => {
                let text = value.get_ref();
                if !is_vault_name(text) {
                    return Err(self.error(
                        value,
                        "vault.default_vault",
                        ConfigErrorKind::Invalid {
                            message: format!(
                                "{text:?} is not a vault name (expected 3-24 letters, digits and '-', starting with a letter, not ending with '-', no \"--\")"
                            ),
                        },
                    ));
                }
                text.to_ascii_lowercase()
            }
        };
        let resource = match &raw.resource {
            None => default.resource,
            Some(value) => {
                let text = value.get_ref();
                let ok = (text.starts_with("https://") || text.starts_with("http://"))
                    && text.len() <= 512
                    && !text.contains(|c: char| c.is_whitespace() || c == '"' || c.is_control())
                    && text
                        .split_once("://")
                        .is_some_and(|(_, rest)| !rest.is_empty());
                if !ok {
                    return Err(self.error(
                        value,
                        "vault.resource",
                        ConfigErrorKind::Invalid {
                            message: format!(
                                "{text:?} is not a resource URI (expected an absolute https:// URI such as \"https://vault.rampart.local\")"
                            ),
                        },
                    ));
                }
                text.clone()
            }
        };
        let geography = match &raw.geography {
            None => default.geography,
            Some(value) => {
                let text = value.get_ref();
                let ok = !text.is_empty()
                    && text.len() <= 64
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !ok {
                    return Err(self.error(
                        value,
                        "vault.geography",
                        ConfigErrorKind::Invalid {
                            message: format!(
                                "{text:?} is not a geography id (expected 1-64 letters, digits or '-', e.g. \"westeurope\")"
                            ),
                        },
                    ));
                }
                text.clone()
            }
        };
        let seal = self.vault_seal(&raw)?;
        let throttle_window = self.duration(
            raw.throttle_window.as_ref(),
            "vault.throttle_window",
            "10s",
            (Duration::from_secs(1), Duration::from_secs(3600)),
            default.throttle_window,
        )?;
        let limit = |leaf: &Leaf<i64>, key: &str, default: u32| -> Result<u32, ConfigError> {
            let n = self.count(leaf, key, (1, 10_000_000), default as usize)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        let throttle_all = limit(
            &raw.throttle_all,
            "vault.throttle_all",
            default.throttle_all,
        )?;
        let throttle_secret_create = limit(
            &raw.throttle_secret_create,
            "vault.throttle_secret_create",
            default.throttle_secret_create,
        )?;
        let mut throttle_keys = default.throttle_keys;
        if let Some(table) = &raw.throttle_keys {
            for (class, value) in table.get_ref() {
                let key = format!("vault.throttle_keys.{class}");
                if !valid_key_class(class) {
                    return Err(self.error(
                        value,
                        &key,
                        ConfigErrorKind::InvalidChoice {
                            value: class.clone(),
                            what: "key throttle class",
                            expected: "\"{software|hsm}-{type}\" or \"{software|hsm}-{type}-create\", type one of rsa-2048, rsa-3072, rsa-4096, ec-p-256, ec-p-384, ec-p-521, ec-p-256k",
                        },
                    ));
                }
                let limit = limit(&Some(value.clone()), &key, 1)?;
                throttle_keys.insert(class.clone(), limit);
            }
        }
        let read_only = raw
            .read_only
            .as_ref()
            .map_or(default.read_only, |v| *v.get_ref());
        let purge_interval = self.duration(
            raw.purge_interval.as_ref(),
            "vault.purge_interval",
            "1h",
            (Duration::from_secs(1), Duration::from_secs(24 * 3600)),
            default.purge_interval,
        )?;
        Ok(VaultConfig {
            listen,
            domain,
            default_vault,
            resource,
            geography,
            seal,
            throttle_window,
            throttle_all,
            throttle_secret_create,
            throttle_keys,
            purge_interval,
            read_only,
        })
    }

    /// `vault.seal` and, with `"pkcs11"`, the token's keys (the PIN only by reference: an
    /// environment variable or a 0600 file, never in the file itself).
    fn vault_seal(&self, raw: &RawVault) -> Result<VaultSeal, ConfigError> {
        const PKCS11: &str = "vault.seal = \"pkcs11\"";
        let method = match &raw.seal {
            None => "key-file",
            Some(value) => match value.get_ref().as_str() {
                method @ ("key-file" | "shamir" | "pkcs11") => method,
                other => {
                    return Err(self.error(
                        value,
                        "vault.seal",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "vault seal method",
                            expected: "\"key-file\", \"shamir\" or \"pkcs11\"",
                        },
                    ));
                }
            },
        };
        let pkcs11_keys = [
            (&raw.pkcs11_module, "pkcs11_module"),
            (&raw.pkcs11_token_label, "pkcs11_token_label"),
            (&raw.pkcs11_key_label, "pkcs11_key_label"),
            (&raw.pkcs11_pin_env, "pkcs11_pin_env"),
            (&raw.pkcs11_pin_file, "pkcs11_pin_file"),
        ];
        if method != "pkcs11" {
            if let Some((value, key)) = pkcs11_keys
                .iter()
                .find_map(|(leaf, key)| leaf.as_ref().map(|value| (value, *key)))
            {
                return Err(self.error(
                    value,
                    &format!("vault.{key}"),
                    ConfigErrorKind::NotApplicable { condition: PKCS11 },
                ));
            }
            return Ok(if method == "shamir" {
                VaultSeal::Shamir
            } else {
                VaultSeal::KeyFile
            });
        }
        let label = |leaf: &Leaf<String>, key: &str| -> Result<Option<String>, ConfigError> {
            let Some(value) = leaf else {
                return Ok(None);
            };
            let text = value.get_ref();
            if text.trim().is_empty() || text.len() > 32 {
                return Err(self.error(
                    value,
                    key,
                    ConfigErrorKind::Invalid {
                        message: format!(
                            "{text:?} is not a PKCS#11 label (expected 1-32 characters)"
                        ),
                    },
                ));
            }
            Ok(Some(text.clone()))
        };
        let module = match &raw.pkcs11_module {
            Some(value) => self.path(value, "vault.pkcs11_module", "the working directory")?,
            None => PathBuf::from(defaults::PKCS11_MODULE),
        };
        let Some(token_label) = label(&raw.pkcs11_token_label, "vault.pkcs11_token_label")? else {
            return Err(self.missing(
                "vault",
                "pkcs11_token_label",
                ConfigErrorKind::Required {
                    condition: PKCS11,
                    expected: "the label of the token holding the key",
                },
            ));
        };
        let key_label = label(&raw.pkcs11_key_label, "vault.pkcs11_key_label")?
            .unwrap_or_else(|| defaults::PKCS11_KEY_LABEL.to_owned());
        let pin = match (&raw.pkcs11_pin_env, &raw.pkcs11_pin_file) {
            (Some(_), Some(file)) => {
                return Err(self.error(
                    file,
                    "vault.pkcs11_pin_file",
                    ConfigErrorKind::Invalid {
                        message:
                            "give the PIN either by pkcs11_pin_env or by pkcs11_pin_file, not both"
                                .to_owned(),
                    },
                ));
            }
            (Some(env), None) => {
                let name = env.get_ref();
                let ok = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(self.error(
                        env,
                        "vault.pkcs11_pin_env",
                        ConfigErrorKind::Invalid {
                            message: format!(
                                "{name:?} is not an environment variable name (expected letters, digits and '_', e.g. \"RAMPART_HSM_PIN\"; the PIN itself never goes in the file)"
                            ),
                        },
                    ));
                }
                PinSource::Env(name.clone())
            }
            (None, Some(file)) => PinSource::File(self.path(
                file,
                "vault.pkcs11_pin_file",
                "the working directory",
            )?),
            (None, None) => {
                return Err(self.missing(
                    "vault",
                    "pkcs11_pin_env",
                    ConfigErrorKind::Required {
                        condition: PKCS11,
                        expected: "the name of the environment variable holding the PIN (or pkcs11_pin_file, a 0600 file)",
                    },
                ));
            }
        };
        Ok(VaultSeal::Pkcs11(Pkcs11Seal {
            module,
            token_label,
            key_label,
            pin,
        }))
    }

    fn waf(&self, raw: RawWaf, default: WafConfig) -> Result<WafConfig, ConfigError> {
        let crs = match &raw.crs {
            None => default.crs,
            Some(value) => match value.get_ref().as_str() {
                "auto" => CrsSource::Auto,
                "off" => CrsSource::Off,
                _ => CrsSource::Dir(self.path(value, "waf.crs", "the working directory")?),
            },
        };
        let crs_setup = match &raw.crs_setup {
            None => None,
            Some(value) => {
                if crs == CrsSource::Off {
                    return Err(self.error(
                        value,
                        "waf.crs_setup",
                        ConfigErrorKind::NotApplicable {
                            condition: "waf.crs is not \"off\"",
                        },
                    ));
                }
                Some(self.path(value, "waf.crs_setup", "the working directory")?)
            }
        };
        let files =
            |leaf: &Leaf<Vec<Spanned<String>>>, key: &str| -> Result<Vec<PathBuf>, ConfigError> {
                leaf.as_ref().map_or(Ok(Vec::new()), |list| {
                    list.get_ref()
                        .iter()
                        .map(|entry| self.path(entry, key, "the working directory"))
                        .collect()
                })
            };
        let before_crs = files(&raw.before_crs, "waf.before_crs")?;
        let after_crs = files(&raw.after_crs, "waf.after_crs")?;
        let engine = match &raw.engine {
            None => default.engine,
            Some(value) => match value.get_ref().as_str() {
                "on" => WafEngine::On,
                "detection-only" => WafEngine::DetectionOnly,
                "off" => WafEngine::Off,
                other => {
                    return Err(self.error(
                        value,
                        "waf.engine",
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "WAF engine mode",
                            expected: "\"on\", \"detection-only\" or \"off\"",
                        },
                    ));
                }
            },
        };
        let paranoia_level = self.count(
            &raw.paranoia_level,
            "waf.paranoia_level",
            (1, 4),
            usize::from(default.paranoia_level),
        )?;
        let body_limit = |leaf: &Leaf<i64>, key: &str, default: u64| {
            const MAX: u64 = 1 << 30;
            let Some(value) = leaf else {
                return Ok(default);
            };
            let size = *value.get_ref();
            u64::try_from(size)
                .ok()
                .filter(|size| (1..=MAX).contains(size))
                .ok_or_else(|| {
                    self.error(
                        value,
                        key,
                        ConfigErrorKind::ByteSizeOutOfRange {
                            value: size,
                            min: 1,
                            max: MAX,
                        },
                    )
                })
        };
        let request_body_limit = body_limit(
            &raw.request_body_limit,
            "waf.request_body_limit",
            default.request_body_limit,
        )?;
        let request_body_no_files_limit = body_limit(
            &raw.request_body_no_files_limit,
            "waf.request_body_no_files_limit",
            default.request_body_no_files_limit,
        )?;
        Ok(WafConfig {
            crs,
            crs_setup,
            before_crs,
            after_crs,
            engine,
            paranoia_level: u8::try_from(paranoia_level).unwrap_or(1),
            request_body_limit,
            request_body_no_files_limit,
            response_body_access: raw
                .response_body_access
                .map_or(default.response_body_access, Spanned::into_inner),
        })
    }

    fn rate_limit(&self, raw: RawRateLimit) -> Result<RateLimitConfig, ConfigError> {
        let requests_per_second = match &raw.requests_per_second {
            None => {
                return Err(self.missing(
                    "rate_limit",
                    "requests_per_second",
                    ConfigErrorKind::Required {
                        condition: "the [rate_limit] section is present",
                        expected: "the sustained requests per second per client, e.g. 50",
                    },
                ));
            }
            Some(value) => {
                let rate = *value.get_ref();
                if !(rate > 0.0 && rate <= 1_000_000.0) {
                    return Err(self.error(
                        value,
                        "rate_limit.requests_per_second",
                        ConfigErrorKind::NumberOutOfRange {
                            value: rate,
                            min: 0.0,
                            max: 1_000_000.0,
                        },
                    ));
                }
                rate
            }
        };
        let default_burst = (requests_per_second.ceil() as usize).max(1);
        let burst = self.count(
            &raw.burst,
            "rate_limit.burst",
            (1, 1_000_000),
            default_burst,
        )?;
        let key = match &raw.key {
            None => RateLimitKey::ClientIp,
            Some(value) => {
                let text = value.get_ref();
                match text.strip_prefix("header:") {
                    _ if text == "client-ip" => RateLimitKey::ClientIp,
                    _ if text == "principal" => RateLimitKey::Principal,
                    Some(name) if is_header_name(name) => {
                        RateLimitKey::Header(name.to_ascii_lowercase())
                    }
                    _ => {
                        return Err(self.error(
                            value,
                            "rate_limit.key",
                            ConfigErrorKind::InvalidRateLimitKey {
                                value: text.clone(),
                            },
                        ));
                    }
                }
            }
        };
        let redis_url = match &raw.redis_url {
            None => None,
            Some(value) => {
                let url = value.get_ref();
                let rest = url
                    .strip_prefix("redis://")
                    .or_else(|| url.strip_prefix("rediss://"));
                if rest.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
                    return Err(self.error(
                        value,
                        "rate_limit.redis_url",
                        ConfigErrorKind::InvalidRedisUrl {
                            value: redact_url(url),
                        },
                    ));
                }
                Some(url.clone())
            }
        };
        let redis_prefix = match &raw.redis_prefix {
            None => defaults::REDIS_PREFIX.to_owned(),
            Some(value) if value.get_ref().is_empty() => {
                return Err(self.error(
                    value,
                    "rate_limit.redis_prefix",
                    ConfigErrorKind::Empty {
                        expected: "a key prefix, e.g. \"rampart:rl:\"",
                    },
                ));
            }
            Some(value) => value.get_ref().clone(),
        };
        let redis_timeout = self.duration(
            raw.redis_timeout.as_ref(),
            "rate_limit.redis_timeout",
            "50ms",
            (Duration::from_millis(1), Duration::from_secs(10)),
            defaults::REDIS_TIMEOUT,
        )?;
        Ok(RateLimitConfig {
            requests_per_second,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
            key,
            redis_url,
            redis_prefix,
            redis_timeout,
        })
    }

    fn route(&self, index: usize, raw: RawRoute) -> Result<RouteConfig, ConfigError> {
        let key = |name: &str| format!("route[{index}].{name}");
        let host = match &raw.host {
            None => None,
            Some(value) => {
                if !is_route_host(value.get_ref()) {
                    return Err(self.error(
                        value,
                        &key("host"),
                        ConfigErrorKind::InvalidHost {
                            value: value.get_ref().clone(),
                        },
                    ));
                }
                Some(value.get_ref().to_ascii_lowercase())
            }
        };
        let path_prefix = match &raw.path_prefix {
            None => defaults::PATH_PREFIX.to_owned(),
            Some(value) => {
                let prefix = value.get_ref();
                if !prefix.starts_with('/')
                    || prefix.contains(['?', '#'])
                    || prefix.contains(char::is_whitespace)
                {
                    return Err(self.error(
                        value,
                        &key("path_prefix"),
                        ConfigErrorKind::InvalidPathPrefix {
                            value: prefix.clone(),
                        },
                    ));
                }
                prefix.clone()
            }
        };
        let backends = match &raw.backends {
            None => {
                return Err(ConfigError {
                    file: self.origin.to_owned(),
                    line: self.route_line(index),
                    key: Some(key("backends")),
                    kind: Box::new(ConfigErrorKind::Required {
                        condition: "a [[route]] is defined",
                        expected: "a list of backend URLs, e.g. [\"http://10.0.0.1:8080\"]",
                    }),
                });
            }
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.error(
                    list,
                    &key("backends"),
                    ConfigErrorKind::Empty {
                        expected: "at least one backend URL",
                    },
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|entry| {
                    check_upstream(entry.get_ref()).map_err(|reason| {
                        self.error(
                            entry,
                            &key("backends"),
                            ConfigErrorKind::InvalidUpstream {
                                value: redact_url(entry.get_ref()),
                                reason,
                            },
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let request_timeout = match &raw.request_timeout {
            None => None,
            Some(_) => Some(self.duration(
                raw.request_timeout.as_ref(),
                &key("request_timeout"),
                "60s",
                (Duration::from_secs(1), Duration::from_secs(3600)),
                defaults::REQUEST_TIMEOUT,
            )?),
        };
        let interval = self.duration(
            raw.health_check_interval.as_ref(),
            &key("health_check_interval"),
            "5s",
            (Duration::from_secs(1), Duration::from_secs(3600)),
            defaults::HEALTH_CHECK_INTERVAL,
        )?;
        let health_check = match &raw.health_check_path {
            None => {
                if let Some(value) = &raw.health_check_interval {
                    return Err(self.error(
                        value,
                        &key("health_check_interval"),
                        ConfigErrorKind::NotApplicable {
                            condition: "health_check_path is set",
                        },
                    ));
                }
                None
            }
            Some(value) if !value.get_ref().starts_with('/') => {
                return Err(self.error(
                    value,
                    &key("health_check_path"),
                    ConfigErrorKind::InvalidPathPrefix {
                        value: value.get_ref().clone(),
                    },
                ));
            }
            Some(value) => Some(HealthCheckConfig {
                path: value.get_ref().clone(),
                interval,
            }),
        };
        let retries = self.count(&raw.retries, &key("retries"), (0, 5), 1)?;
        let name = match &raw.name {
            None => format!("route-{index}"),
            Some(value) => {
                let name = value.get_ref();
                if !is_route_name(name) {
                    return Err(self.error(
                        value,
                        &key("name"),
                        ConfigErrorKind::InvalidChoice {
                            value: name.clone(),
                            what: "route name",
                            expected: "1 to 64 letters, digits, '.', '_' or '-'",
                        },
                    ));
                }
                name.clone()
            }
        };
        let auth = self.route_auth(index, &raw)?;
        Ok(RouteConfig {
            host,
            path_prefix,
            backends,
            request_timeout,
            health_check,
            retries: u32::try_from(retries).unwrap_or(5),
            name,
            auth,
        })
    }

    /// A route's `auth`, `audiences`, `required_scopes` and `authorize`.
    fn route_auth(
        &self,
        index: usize,
        raw: &RawRoute,
    ) -> Result<Option<RouteAuthConfig>, ConfigError> {
        let key = |name: &str| format!("route[{index}].{name}");
        let bearer = match &raw.auth {
            None => false,
            Some(value) => match value.get_ref().as_str() {
                "none" => false,
                "bearer" => true,
                other => {
                    return Err(self.error(
                        value,
                        &key("auth"),
                        ConfigErrorKind::InvalidChoice {
                            value: other.to_owned(),
                            what: "route auth mode",
                            expected: "\"none\" or \"bearer\"",
                        },
                    ));
                }
            },
        };
        if !bearer {
            let only_with_bearer = [
                raw.audiences
                    .as_ref()
                    .map(|leaf| (leaf.span().start, "audiences")),
                raw.required_scopes
                    .as_ref()
                    .map(|leaf| (leaf.span().start, "required_scopes")),
                raw.authorize
                    .as_ref()
                    .map(|leaf| (leaf.span().start, "authorize")),
            ];
            if let Some((offset, name)) = only_with_bearer.into_iter().flatten().next() {
                return Err(self.error_at(
                    offset,
                    &key(name),
                    ConfigErrorKind::NotApplicable {
                        condition: "auth = \"bearer\"",
                    },
                ));
            }
            return Ok(None);
        }
        let words = |leaf: &Leaf<Vec<Spanned<String>>>, name: &str| {
            leaf.as_ref().map_or(Ok(Vec::new()), |list| {
                list.get_ref()
                    .iter()
                    .map(|entry| {
                        let word = entry.get_ref();
                        if word.is_empty() || word.contains(char::is_whitespace) {
                            Err(self.error(
                                entry,
                                &key(name),
                                ConfigErrorKind::InvalidChoice {
                                    value: word.clone(),
                                    what: "token claim value",
                                    expected: "a non-empty string without spaces",
                                },
                            ))
                        } else {
                            Ok(word.clone())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
        };
        Ok(Some(RouteAuthConfig {
            audiences: words(&raw.audiences, "audiences")?,
            required_scopes: words(&raw.required_scopes, "required_scopes")?,
            authorize: raw.authorize.as_ref().is_some_and(|leaf| *leaf.get_ref()),
        }))
    }

    fn trusted_issuer(
        &self,
        index: usize,
        raw: RawTrustedIssuer,
    ) -> Result<TrustedIssuerConfig, ConfigError> {
        let key = |name: &str| format!("trusted_issuer[{index}].{name}");
        let line = self.table_line("trusted_issuer", index);
        let required = |name: &str, expected: &'static str| ConfigError {
            file: self.origin.to_owned(),
            line,
            key: Some(key(name)),
            kind: Box::new(ConfigErrorKind::Required {
                condition: "a [[trusted_issuer]] is defined",
                expected,
            }),
        };
        let Some(issuer) = &raw.issuer else {
            return Err(required(
                "issuer",
                "the exact iss of its tokens, e.g. \"https://login.example.com\"",
            ));
        };
        if !is_issuer_url(issuer.get_ref()) {
            return Err(self.error(
                issuer,
                &key("issuer"),
                ConfigErrorKind::InvalidIssuerUrl {
                    value: issuer.get_ref().clone(),
                },
            ));
        }
        let url = |leaf: &Spanned<String>, name: &str| {
            if is_http_url(leaf.get_ref()) {
                Ok(leaf.get_ref().clone())
            } else {
                Err(self.error(
                    leaf,
                    &key(name),
                    ConfigErrorKind::InvalidChoice {
                        value: leaf.get_ref().clone(),
                        what: "URL",
                        expected: "an https:// (or, to loopback only, http://) URL with a host",
                    },
                ))
            }
        };
        let keys = match (&raw.discovery_url, &raw.jwks_uri) {
            (Some(_), Some(jwks)) => {
                return Err(self.error(
                    jwks,
                    &key("jwks_uri"),
                    ConfigErrorKind::NotApplicable {
                        condition: "discovery_url is not set",
                    },
                ));
            }
            (Some(discovery), None) => IssuerKeys::DiscoveryUrl(url(discovery, "discovery_url")?),
            (None, Some(jwks)) => IssuerKeys::JwksUri(url(jwks, "jwks_uri")?),
            (None, None) => IssuerKeys::Discovery,
        };
        let audiences = match &raw.audiences {
            None => {
                return Err(required(
                    "audiences",
                    "the aud values its tokens must carry for this plane, e.g. [\"https://api.example.com\"]",
                ));
            }
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.error(
                    list,
                    &key("audiences"),
                    ConfigErrorKind::Empty {
                        expected: "at least one audience",
                    },
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|entry| {
                    let value = entry.get_ref();
                    if value.is_empty() || value.contains(char::is_whitespace) {
                        Err(self.error(
                            entry,
                            &key("audiences"),
                            ConfigErrorKind::InvalidChoice {
                                value: value.clone(),
                                what: "token claim value",
                                expected: "a non-empty string without spaces",
                            },
                        ))
                    } else {
                        Ok(value.clone())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let tenant = match &raw.tenant {
            Some(value) if value.get_ref().is_empty() => {
                return Err(self.error(
                    value,
                    &key("tenant"),
                    ConfigErrorKind::Empty {
                        expected: "the tenant id its tokens carry in tid",
                    },
                ));
            }
            other => other.as_ref().map(|value| value.get_ref().clone()),
        };
        Ok(TrustedIssuerConfig {
            issuer: issuer.get_ref().clone(),
            keys,
            audiences,
            tenant,
        })
    }

    /// The line of the `index`th `[[name]]` table header.
    fn table_line(&self, name: &str, index: usize) -> Option<usize> {
        let tables = self.document.as_table().get(name)?.as_array_of_tables()?;
        let span = tables.get(index)?.span()?;
        Some(line_of(self.text, span.start))
    }

    /// Route names are the routes' RBAC scopes: two routes cannot share one.
    fn check_route_names(&self, routes: &[RouteConfig]) -> Result<(), ConfigError> {
        for (index, route) in routes.iter().enumerate() {
            if routes.iter().take(index).any(|r| r.name == route.name) {
                return Err(ConfigError {
                    file: self.origin.to_owned(),
                    line: self.route_line(index),
                    key: Some(format!("route[{index}].name")),
                    kind: Box::new(ConfigErrorKind::InvalidChoice {
                        value: route.name.clone(),
                        what: "route name of its own",
                        expected: "a name no earlier [[route]] uses",
                    }),
                });
            }
        }
        Ok(())
    }

    /// The line of the `index`th `[[route]]` header.
    fn route_line(&self, index: usize) -> Option<usize> {
        let tables = self
            .document
            .as_table()
            .get("route")?
            .as_array_of_tables()?;
        let span = tables.get(index)?.span()?;
        Some(line_of(self.text, span.start))
    }

    fn count(
        &self,
        leaf: &Leaf<i64>,
        key: &str,
        (min, max): (usize, usize),
        default: usize,
    ) -> Result<usize, ConfigError> {
        let Some(value) = leaf else {
            return Ok(default);
        };
        let number = *value.get_ref();
        usize::try_from(number)
            .ok()
            .filter(|number| (min..=max).contains(number))
            .ok_or_else(|| {
                self.error(
                    value,
                    key,
                    ConfigErrorKind::IntegerOutOfRange {
                        value: number,
                        min: i64::try_from(min).unwrap_or(i64::MAX),
                        max: i64::try_from(max).unwrap_or(i64::MAX),
                    },
                )
            })
    }

    fn data_rate(
        &self,
        leaf: &Leaf<String>,
        key: &str,
        default: DataRate,
    ) -> Result<DataRate, ConfigError> {
        let Some(value) = leaf else {
            return Ok(default);
        };
        parse_data_rate(value.get_ref()).ok_or_else(|| {
            self.error(
                value,
                key,
                ConfigErrorKind::InvalidDataRate {
                    value: value.get_ref().clone(),
                },
            )
        })
    }

    fn socket_addr(
        &self,
        leaf: Option<&Spanned<String>>,
        key: &str,
        example: &'static str,
        default: SocketAddr,
    ) -> Result<SocketAddr, ConfigError> {
        let Some(value) = leaf else {
            return Ok(default);
        };
        value.get_ref().parse().map_err(|_| {
            self.error(
                value,
                key,
                ConfigErrorKind::InvalidSocketAddr {
                    value: value.get_ref().clone(),
                    example,
                },
            )
        })
    }

    fn duration(
        &self,
        leaf: Option<&Spanned<String>>,
        key: &str,
        example: &'static str,
        (min, max): (Duration, Duration),
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = leaf else {
            return Ok(default);
        };
        let text = value.get_ref();
        let duration = parse_duration(text).map_err(|reason| {
            self.error(
                value,
                key,
                ConfigErrorKind::InvalidDuration {
                    value: text.clone(),
                    reason,
                    example,
                },
            )
        })?;
        if duration < min || duration > max {
            return Err(self.error(
                value,
                key,
                ConfigErrorKind::DurationOutOfRange {
                    value: text.clone(),
                    min,
                    max,
                },
            ));
        }
        Ok(duration)
    }

    fn path(
        &self,
        value: &Spanned<String>,
        key: &str,
        relative_to: &'static str,
    ) -> Result<PathBuf, ConfigError> {
        let text = value.get_ref();
        if text.trim().is_empty() {
            return Err(self.error(
                value,
                key,
                ConfigErrorKind::Empty {
                    expected: "a file system path",
                },
            ));
        }
        if text.starts_with('~') {
            return Err(self.error(
                value,
                key,
                ConfigErrorKind::HomeRelativePath {
                    value: text.clone(),
                    relative_to,
                },
            ));
        }
        Ok(PathBuf::from(text))
    }

    /// Two listeners may not share a port on overlapping addresses.
    fn check_listeners(
        &self,
        config: &Config,
        spans: &[(&'static str, Range<usize>)],
    ) -> Result<(), ConfigError> {
        let mut listeners = vec![
            ("gateway.listen", config.gateway.listen),
            ("admin.listen", config.admin.listen),
            ("identity.listen", config.identity.listen),
            (
                "identity.managed_identity_listen",
                config.identity.managed_identity_listen,
            ),
            ("vault.listen", config.vault.listen),
        ];
        if config.gateway.upstream == Upstream::Demo {
            listeners.push(("demo.listen", config.demo.listen));
        }
        for (index, (key, addr)) in listeners.iter().enumerate() {
            let earlier = listeners.get(..index).unwrap_or_default();
            if let Some((other, _)) = earlier.iter().find(|(_, other)| overlaps(*addr, *other)) {
                // Blame whichever of the two was written in the file (the later one if both).
                let (blamed, addr, other) = match spans.iter().find(|(k, _)| k == key) {
                    Some(_) => (*key, *addr, *other),
                    None => (*other, *addr, *key),
                };
                let kind = ConfigErrorKind::ListenConflict { addr, other };
                return Err(match spans.iter().find(|(k, _)| *k == blamed) {
                    Some((_, span)) => self.error_at(span.start, blamed, kind),
                    None => ConfigError {
                        file: self.origin.to_owned(),
                        line: None,
                        key: Some(blamed.to_owned()),
                        kind: Box::new(kind),
                    },
                });
            }
        }
        Ok(())
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens.
fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Azure's vault name rules.
/// A Key Vault object name: 1-127 letters, digits and '-'.
fn is_object_name(text: &str) -> bool {
    (1..=127).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_vault_name(text: &str) -> bool {
    (3..=24).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && !text.ends_with('-')
        && !text.contains("--")
}

fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn raw_listen_spans(document: &ImDocument<&str>) -> Vec<(&'static str, Range<usize>)> {
    [
        ("gateway", "listen", "gateway.listen"),
        ("admin", "listen", "admin.listen"),
        ("demo", "listen", "demo.listen"),
        ("identity", "listen", "identity.listen"),
        (
            "identity",
            "managed_identity_listen",
            "identity.managed_identity_listen",
        ),
        ("vault", "listen", "vault.listen"),
    ]
    .into_iter()
    .filter_map(|(section, name, key)| {
        let span = document
            .as_table()
            .get(section)?
            .as_table_like()?
            .get(name)?
            .span()?;
        Some((key, span))
    })
    .collect()
}

/// `1024B/10s`: at least one byte, at most 1 GiB, per 1 s to 1 h.
fn parse_data_rate(text: &str) -> Option<DataRate> {
    let (bytes, per) = text.split_once("B/")?;
    let bytes: u64 = bytes.parse().ok().filter(|b| (1..=1 << 30).contains(b))?;
    let per = parse_duration(per)
        .ok()
        .filter(|per| (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(per))?;
    Some(DataRate { bytes, per })
}

/// `10.0.0.0/8`, `192.168.1.7`, `fd00::/8`; host bits must be zero.
fn parse_network(text: &str) -> Result<IpNet, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(prefix) => prefix
            .parse::<u8>()
            .ok()
            .filter(|prefix| *prefix <= bits)
            .ok_or_else(|| format!("{prefix:?} is not a prefix length (0 to {bits})"))?,
    };
    let host_bits = |value: u128, width: u8| {
        let host = u32::from(width - prefix);
        host > 0 && value & (u128::MAX >> (128 - host)) != 0
    };
    let has_host_bits = match addr {
        IpAddr::V4(v4) => host_bits(u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => host_bits(u128::from(v6), 128),
    };
    if has_host_bits {
        return Err(format!("host bits are set after /{prefix}"));
    }
    Ok(IpNet { addr, prefix })
}

/// An HTTP header name (RFC 9110 token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `api.example.com` or `*.example.com`.
/// An http(s) URL usable as a token issuer: a host, no trailing slash, query or fragment.
fn is_issuer_url(text: &str) -> bool {
    is_http_url(text) && !text.ends_with('/') && !text.contains(['?', '#'])
}

/// An http(s) URL with a host and no whitespace or control characters.
fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn is_route_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

fn is_route_host(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn fraction(number: f64) -> Option<RoutineRecords> {
    (0.0..=1.0)
        .contains(&number)
        .then_some(RoutineRecords::Sample(number))
}

/// `info`, `warn,rampart_gateway=debug`, `rampart_audit::log=trace`.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    if filter.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    for directive in filter.split(',') {
        let directive = directive.trim();
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target), level),
            None if LEVELS.contains(&directive.to_ascii_lowercase().as_str()) => (None, directive),
            None => {
                return Err(format!(
                    "{directive:?} is not a level (a target takes =level)"
                ));
            }
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("{level:?} is not a level"));
        }
        if let Some(target) = target
            && (target.is_empty()
                || !target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        {
            return Err(format!("{target:?} is not a target"));
        }
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host and a valid port; returns it unchanged.
fn check_upstream(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("the scheme is not http or https")?;
    if url.contains(char::is_whitespace) {
        return Err("it contains whitespace".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("it carries credentials (the gateway forwards the client's own)".to_owned());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("the IPv6 host is not closed")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{port:?} is not a port"));
    }
    Ok(url.to_owned())
}

/// A lowercase SQL identifier that needs no quoting.
fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Turns serde's "invalid type: integer `8443`, expected a string" into [`ConfigErrorKind`].
fn type_error(message: &str) -> ConfigErrorKind {
    let message = first_line(message);
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return ConfigErrorKind::WrongType {
            expected: expected.to_owned(),
            found: found.replace('`', ""),
        };
    }
    ConfigErrorKind::Invalid { message }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

/// Whether `class` names a key throttle class: `{software|hsm}-{type}[-create]`.
fn valid_key_class(class: &str) -> bool {
    let Some(rest) = class
        .strip_prefix("software-")
        .or_else(|| class.strip_prefix("hsm-"))
    else {
        return false;
    };
    let key_type = rest.strip_suffix("-create").unwrap_or(rest);
    crate::VAULT_THROTTLE_KEY_TYPES.contains(&key_type)
}
