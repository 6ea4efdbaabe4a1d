//! The gateway as the binary runs it: its options built from the configuration plus what the
//! plane wires in (TLS, origin lock, audit, the WAF), and the SIGHUP reload that applies a new
//! configuration (WAF rules included) to the running gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rampart_audit::{Auditor, Decision, Record};
use rampart_config::{Config, RateLimitKey, Upstream};
use rampart_gateway::{
    ConnectionLimits, DenyObserver, Filter, GatewayOptions, GatewayReloader, GatewayTls,
    HealthCheck, IpNetwork, LoadShedding, MinRate, RateLimitOptions, RouteAuth, RouteOptions,
};
use rampart_origin_lock::OriginLock;

use crate::cmd::{Settings, UsageError};

/// What the plane adds to the configuration: fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The listen address actually requested (a command-line `--listen` wins).
    pub listen: SocketAddr,
    /// TLS of the listener; `None` for plain HTTP.
    pub tls: Option<GatewayTls>,
    /// The catch-all upstream when it does not come from the configuration (`--upstream`, or
    /// the demo app's address).
    pub upstream_override: Option<String>,
    /// Signs every upstream request.
    pub origin_lock: Option<OriginLock>,
    /// Requires an outer edge's signature on every request.
    pub require_edge: Option<OriginLock>,
    /// Told about every denied request.
    pub deny_observer: Arc<dyn DenyObserver>,
    /// Verifies callers of routes with `auth = "bearer"` (without one, they refuse everyone).
    pub authenticator: Option<Arc<dyn rampart_gateway::Authenticator>>,
}

/// The request filters a configuration asks for.
#[derive(Debug, Default)]
pub struct Filters {
    /// In the order requests pass them.
    pub filters: Vec<Arc<dyn Filter>>,
    /// One line per filter for the banner and logs, e.g. `waf: OWASP CRS at ...`.
    pub descriptions: Vec<String>,
}

/// The request filters `config` asks for (the WAF).
pub fn filters(config: &Config) -> anyhow::Result<Filters> {
    let mut loaded = Filters::default();
    if let Some(waf) = crate::waf::load(&config.waf)? {
        loaded
            .descriptions
            .push(format!("waf: {}", waf.description));
        loaded
            .filters
            .push(Arc::new(crate::waf::WafFilter::new(waf.ruleset)));
    }
    Ok(loaded)
}

/// A gateway bound for `config`: its filters loaded, its listener bound.
pub struct BoundGateway {
    /// The gateway, ready to serve.
    pub gateway: rampart_gateway::Gateway,
    /// The catch-all upstream, for the banner and logs.
    pub upstream: String,
    /// One line per filter, e.g. `waf: OWASP CRS at ...`.
    pub filters: Vec<String>,
}

/// Loads the filters, builds the options and binds the gateway; an upstream the gateway
/// refuses is a usage error (exit code 2).
pub async fn bind(config: &Config, wiring: &Wiring) -> anyhow::Result<BoundGateway> {
    let loaded = filters(config)?;
    for description in &loaded.descriptions {
        tracing::info!(filter = description, "filter loaded");
    }
    let options = gateway_options(config, wiring, loaded.filters)?;
    let upstream = options
        .routes
        .last()
        .and_then(|route| route.backends.first().cloned())
        .unwrap_or_default();
    let gateway = rampart_gateway::Gateway::bind(options)
        .await
        .map_err(|error| match error.kind() {
            rampart_gateway::GatewayErrorKind::Upstream { .. } => {
                anyhow::Error::new(UsageError(error.to_string()))
            }
            _ => anyhow::Error::new(error),
        })?;
    Ok(BoundGateway {
        gateway,
        upstream,
        filters: loaded.descriptions,
    })
}

/// The gateway's options for `config`, with `filters` in front of the upstream.
pub fn gateway_options(
    config: &Config,
    wiring: &Wiring,
    filters: Vec<Arc<dyn Filter>>,
) -> anyhow::Result<GatewayOptions> {
    let upstream = match (&wiring.upstream_override, &config.gateway.upstream) {
        (Some(url), _) => url.clone(),
        (None, Upstream::Url(url)) => url.clone(),
        (None, Upstream::Demo) => {
            return Err(UsageError(
                "no upstream: set gateway.upstream or pass --upstream URL".to_owned(),
            )
            .into());
        }
    };
    let gateway = &config.gateway;
    let mut options = GatewayOptions::new(wiring.listen, upstream.clone());
    options.tls.clone_from(&wiring.tls);
    options.request_timeout = gateway.request_timeout;
    options.header_read_timeout = gateway.header_timeout;
    options.tls_handshake_timeout = gateway.tls_handshake_timeout;
    options.workers = gateway.workers;
    options.limits = ConnectionLimits {
        max_connections: gateway.max_connections,
        max_connections_per_client: gateway.max_connections_per_client,
        max_new_connections_per_client_per_second: gateway.max_new_connections_per_client,
        over_rate_hold: gateway.over_rate_connection_hold,
    };
    options.min_request_body_rate = MinRate {
        bytes: gateway.min_request_body_rate.bytes,
        per: gateway.min_request_body_rate.per,
    };
    options.min_response_rate = MinRate {
        bytes: gateway.min_response_rate.bytes,
        per: gateway.min_response_rate.per,
    };
    options.load_shedding = LoadShedding {
        max_in_flight: gateway.max_in_flight,
        max_queued: gateway.max_queued,
        max_queue_wait: gateway.max_queue_wait,
    };
    options.trusted_proxies = gateway
        .trusted_proxies
        .iter()
        .map(|network| {
            network
                .to_string()
                .parse::<IpNetwork>()
                .with_context(|| format!("trusted proxy {network}"))
        })
        .collect::<anyhow::Result<_>>()?;
    options.rate_limit = config.rate_limit.as_ref().map(|limit| {
        let mut options = RateLimitOptions::per_client_ip(limit.requests_per_second, limit.burst);
        match &limit.key {
            RateLimitKey::ClientIp => {}
            RateLimitKey::Principal => options.key = rampart_gateway::RateLimitKey::Principal,
            RateLimitKey::Header(name) => {
                if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                    options.key = rampart_gateway::RateLimitKey::Header(name);
                }
            }
        }
        options.redis_url.clone_from(&limit.redis_url);
        options.redis_prefix.clone_from(&limit.redis_prefix);
        options.redis_timeout = limit.redis_timeout;
        options
    });
    let mut routes: Vec<RouteOptions> = config
        .routes
        .iter()
        .map(|route| {
            let mut options = RouteOptions::catch_all(route.backends.clone());
            options.host.clone_from(&route.host);
            options.path_prefix.clone_from(&route.path_prefix);
            options.request_timeout = route.request_timeout;
            options.retries = route.retries;
            options.health_check = route.health_check.as_ref().map(|check| HealthCheck {
                interval: check.interval,
                ..HealthCheck::at(&check.path)
            });
            options.auth = route.auth.as_ref().map(|auth| RouteAuth {
                route: route.name.clone(),
                audiences: auth.audiences.clone(),
                required_scopes: auth.required_scopes.clone(),
                authorize: auth.authorize,
            });
            options
        })
        .collect();
    routes.push(RouteOptions::catch_all(vec![upstream]));
    options.routes = routes;
    options.origin_lock.clone_from(&wiring.origin_lock);
    options.require_edge.clone_from(&wiring.require_edge);
    options.deny_observer = Some(Arc::clone(&wiring.deny_observer));
    options.authenticator.clone_from(&wiring.authenticator);
    options.filters = filters;
    Ok(options)
}

/// Settings a running plane cannot change: they differ between `old` and `new` and need a
/// restart.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.gateway, &new.gateway);
    let checks = [
        ("data.dir", old.data != new.data),
        ("log", old.log != new.log),
        ("admin", old.admin != new.admin),
        ("demo", old.demo != new.demo),
        ("storage", old.storage != new.storage),
        ("audit", old.audit != new.audit),
        ("vault", old.vault != new.vault),
        ("gateway.listen", a.listen != b.listen),
        ("gateway.tls", a.tls != b.tls),
        (
            "gateway.shutdown_grace",
            a.shutdown_grace != b.shutdown_grace,
        ),
        (
            "gateway.header_timeout",
            a.header_timeout != b.header_timeout,
        ),
        (
            "gateway.tls_handshake_timeout",
            a.tls_handshake_timeout != b.tls_handshake_timeout,
        ),
        (
            "gateway.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "gateway.max_connections_per_client",
            a.max_connections_per_client != b.max_connections_per_client,
        ),
        (
            "gateway.max_new_connections_per_client",
            a.max_new_connections_per_client != b.max_new_connections_per_client,
        ),
        (
            "gateway.over_rate_connection_hold",
            a.over_rate_connection_hold != b.over_rate_connection_hold,
        ),
        (
            "gateway.min_response_rate",
            a.min_response_rate != b.min_response_rate,
        ),
        ("gateway.workers", a.workers != b.workers),
    ];
    checks
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// Re-reads the configuration and applies it to the running gateway. A file that does not
/// validate changes nothing; settings that need a restart (compared with `started`, the
/// configuration the process started with, which is what still runs for them) are named in
/// the log. Every attempt is audited.
pub fn reload(
    settings: &Settings,
    started: &Config,
    wiring: &Wiring,
    reloader: &GatewayReloader,
    auditor: &Auditor,
) {
    let file = settings.config_file.as_ref().map_or_else(
        || "(defaults)".to_owned(),
        |path| path.display().to_string(),
    );
    let outcome = settings
        .reread()
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let loaded = filters(&config)?;
            for description in &loaded.descriptions {
                tracing::info!(filter = description, "filter loaded");
            }
            let options = gateway_options(&config, wiring, loaded.filters)?;
            reloader.reload(&options)?;
            Ok(config)
        });
    let record = Record::new("rampart", "config.reload", Decision::Allow).resource(file.clone());
    match outcome {
        Ok(config) => {
            let mut pending = restart_needed(started, &config);
            if wiring.upstream_override.is_some()
                && started.gateway.upstream != config.gateway.upstream
            {
                pending.push("gateway.upstream (overridden by --upstream or the demo app)");
            }
            if pending.is_empty() {
                tracing::info!(file, "configuration reloaded");
            } else {
                tracing::warn!(
                    file,
                    needs_restart = pending.join(", "),
                    "configuration reloaded; these settings apply only after a restart"
                );
            }
            let record = if pending.is_empty() {
                record
            } else {
                record.detail("needs_restart", pending.join(","))
            };
            auditor.record_routine(record);
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "configuration not reloaded; the running settings stay");
            let mut record = record.reason(format!("{error:#}"));
            record.decision = Decision::Error;
            auditor.record_routine(record);
        }
    }
}
