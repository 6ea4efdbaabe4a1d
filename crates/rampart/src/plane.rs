//! Building blocks shared by the commands that run parts of the plane (`up`, `gateway`):
//! signals (shutdown, reload), TLS settings, generated credentials, the origin-lock keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_config::TlsMode;
use rampart_gateway::GatewayTls;
use rampart_origin_lock::{Key, OriginLock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cmd::UsageError;
use crate::datadir::{DataDir, load_or_create_secret, read_secret_file};
use crate::tls;

/// How long an origin-lock record stays valid.
pub const ORIGIN_LOCK_MAX_AGE: Duration = Duration::from_secs(30);

/// A shutdown switch every task can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// A switch in the "running" position.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::channel(false).0),
        }
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub fn signalled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

/// What the operator asked for with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneSignal {
    /// Ctrl-C or SIGTERM: shut down gracefully.
    Terminate,
    /// SIGHUP: re-read the configuration and apply what can change while running.
    Reload,
}

/// The signals a running plane listens for.
#[derive(Debug)]
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening (before the banner, so no signal is missed).
    pub fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> PlaneSignal {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => PlaneSignal::Terminate,
            _ = self.terminate.recv() => PlaneSignal::Terminate,
            _ = self.hangup.recv() => PlaneSignal::Reload,
        }
    }
}

/// Binds a listener, naming what it is for in the error.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// The gateway's TLS settings and, for the development certificate, the CA file to trust.
pub fn gateway_tls(
    mode: &TlsMode,
    data: &DataDir,
) -> anyhow::Result<(Option<GatewayTls>, Option<PathBuf>)> {
    Ok(match mode {
        TlsMode::SelfSigned => {
            let certificates = tls::ensure_dev_certificates(data)?;
            if certificates.generated {
                tracing::info!(ca = %certificates.ca_cert.display(), "generated a development CA and a localhost certificate");
            }
            let tls = GatewayTls::from_files(&certificates.server.cert, &certificates.server.key)?;
            (Some(tls), Some(certificates.ca_cert))
        }
        TlsMode::Files { cert, key } => (Some(GatewayTls::from_files(cert, key)?), None),
        TlsMode::Vault { .. } => {
            return Err(UsageError(
                "gateway.tls = \"vault\" needs the plane's vault: it works with `rampart up` only (use tls = \"files\" here)".to_owned(),
            )
            .into());
        }
        TlsMode::DangerousPlaintext => {
            tracing::warn!("plaintext is on: the gateway serves plain HTTP");
            (None, None)
        }
    })
}

/// The TLS mode of the plane's own listeners (token issuer, vault API): the gateway's, except
/// that with `gateway.tls = "vault"` they keep the development certificate (the vault cannot
/// serve its own listener's certificate before it is unsealed, and the plane's verifier trusts
/// its issuer through the development CA).
pub fn plane_tls_mode(gateway: &TlsMode) -> TlsMode {
    match gateway {
        TlsMode::Vault { .. } => TlsMode::SelfSigned,
        mode => mode.clone(),
    }
}

/// A random token with a recognisable prefix (so secret scanners can find leaked ones).
pub fn random_token(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("{prefix}{hex}"))
}

/// The admin token (generated on first start, 0600) and where it lives.
pub fn admin_token(data: &DataDir) -> anyhow::Result<(PathBuf, Arc<str>)> {
    let path = data.subdir("credentials")?.join("admin-token");
    let (token, _) = load_or_create_secret(&path, || Ok(random_token("rpa_")?.into_bytes()))?;
    let token: Arc<str> = String::from_utf8(token)
        .context("the admin token file is not text")?
        .trim()
        .into();
    Ok((path, token))
}

/// This plane's origin-lock: the edge id and keys under `credentials/`, generated on first
/// start. The keys file holds one `KID:BASE64URL_SECRET` per line; the first line signs, the
/// others are still accepted (rotation with overlap).
pub fn origin_lock(data: &DataDir, edge_id: &str) -> anyhow::Result<(PathBuf, OriginLock)> {
    let path = data.subdir("credentials")?.join("origin-lock.keys");
    load_or_create_secret(&path, || {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| anyhow::anyhow!("no system randomness"))?;
        Ok(format!("k1:{}\n", URL_SAFE_NO_PAD.encode(secret)).into_bytes())
    })?;
    let lock = read_origin_lock_keys(&path, edge_id)?;
    Ok((path, lock))
}

/// Reads an origin-lock keys file (`KID:BASE64URL_SECRET` per line, first one signs).
pub fn read_origin_lock_keys(path: &Path, edge_id: &str) -> anyhow::Result<OriginLock> {
    let text = String::from_utf8(read_secret_file(path)?)
        .with_context(|| format!("{} is not text", path.display()))?;
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let location = format!("{}:{}", path.display(), index + 1);
        let (kid, secret) = line
            .split_once(':')
            .ok_or_else(|| UsageError(format!("{location}: expected KID:BASE64URL_SECRET")))?;
        let secret = URL_SAFE_NO_PAD
            .decode(secret.trim().trim_end_matches('='))
            .map_err(|_| UsageError(format!("{location}: the secret is not base64url")))?;
        keys.push(
            Key::new(kid.trim(), &secret)
                .map_err(|error| UsageError(format!("{location}: {error}")))?,
        );
    }
    let mut keys = keys.into_iter();
    let signing = keys
        .next()
        .ok_or_else(|| UsageError(format!("{}: no key", path.display())))?;
    OriginLock::new(edge_id, signing, keys.collect(), ORIGIN_LOCK_MAX_AGE)
        .map_err(|error| UsageError(format!("{}: {error}", path.display())).into())
}
