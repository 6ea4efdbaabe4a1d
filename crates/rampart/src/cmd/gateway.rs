//! `rampart gateway`: only the edge gateway (and its admin endpoint), in front of an upstream,
//! optionally behind another edge whose origin lock it requires.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rampart_config::{TlsMode, Upstream};

use crate::admin::{self, AdminState};
use crate::auditing::{self, GatewayDenials};
use crate::cmd::{Settings, UsageError};
use crate::datadir::DataDir;
use crate::edge;
use crate::plane::{self, Shutdown};
use crate::telemetry;

/// Options of `rampart gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// Listen address [default: gateway.listen].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The app behind the gateway, `http://` or `https://` [default: gateway.upstream].
    #[arg(long, value_name = "URL", value_parser = super::parse_upstream_url)]
    upstream: Option<String>,
    /// Serve plain HTTP instead of TLS (for benchmarks, or behind a TLS-terminating edge).
    #[arg(long)]
    dangerous_plaintext: bool,
    /// Accept only requests that came through the outer edge with this id (origin lock);
    /// anything else gets 403.
    #[arg(long, value_name = "EDGE_ID", requires = "edge_keys")]
    require_edge_id: Option<String>,
    /// The outer edge's origin-lock keys, one `KID:BASE64URL_SECRET` per line (mode 0600).
    #[arg(long, value_name = "FILE")]
    edge_keys: Option<PathBuf>,
}

/// Runs the gateway until Ctrl-C or SIGTERM; SIGHUP reloads the configuration.
pub async fn run(args: GatewayArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let config = settings.config.clone();
    telemetry::init_logging(settings.log_format, &config.log.level)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics = telemetry::init_metrics()?;
    let data = DataDir::create(&config.data.dir)?;
    let (_, admin_token) = plane::admin_token(&data)?;
    let mut signals = plane::Signals::new()?;

    if args.upstream.is_none() && config.gateway.upstream == Upstream::Demo {
        return Err(UsageError(
            "rampart gateway needs an upstream: --upstream URL or gateway.upstream (the demo app comes with `rampart up`)".to_owned(),
        )
        .into());
    }
    let tls_mode = if args.dangerous_plaintext {
        TlsMode::DangerousPlaintext
    } else {
        config.gateway.tls.clone()
    };
    let (tls, _) = plane::gateway_tls(&tls_mode, &data)?;
    let require_edge = match (&args.require_edge_id, &args.edge_keys) {
        (Some(edge_id), Some(keys)) => Some(plane::read_origin_lock_keys(keys, edge_id)?),
        _ => None,
    };
    let audit_log = auditing::open(&data, &config.audit, "gateway").await?;
    let auditor = audit_log.auditor();
    let wiring = edge::Wiring {
        listen: args.listen.unwrap_or(config.gateway.listen),
        tls,
        upstream_override: args.upstream,
        origin_lock: None,
        require_edge,
        deny_observer: Arc::new(GatewayDenials(auditor.clone())),
        // A standalone gateway has no access model: routes with `authorize = true` refuse.
        authenticator: crate::identity_gate::gate(&config, None, None)?,
    };
    let edge::BoundGateway {
        gateway, upstream, ..
    } = edge::bind(&config, &wiring).await?;
    let addr = gateway.local_addr()?;
    let reloader = gateway.reloader();
    let shutdown = Shutdown::new();
    let grace = config.gateway.shutdown_grace;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(gateway.serve(shutdown.signalled(), grace));
    let admin_listener = plane::bind(config.admin.listen, "admin endpoint").await?;
    let admin_addr = admin_listener.local_addr()?;
    tasks.spawn(admin::serve(
        admin_listener,
        AdminState {
            metrics,
            admin_token: Arc::clone(&admin_token),
            auditor: auditor.clone(),
            identity: None,
            access: None,
            vault: None,
        },
        shutdown.signalled(),
    ));
    println!("rampart gateway listening on {addr} -> {upstream} (admin http://{admin_addr})");
    tracing::info!(%addr, %upstream, "gateway is up");

    while signals.next().await == plane::PlaneSignal::Reload {
        edge::reload(&settings, &config, &wiring, &reloader, &auditor);
    }
    shutdown.trigger();
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(auditor);
    auditing::close(audit_log).await;
    Ok(ExitCode::SUCCESS)
}
