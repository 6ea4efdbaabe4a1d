//! Errors of the gateway's set-up; per-request failures become HTTP responses instead.

use std::net::SocketAddr;

/// An error that stops the gateway from starting or serving.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct GatewayError {
    kind: GatewayErrorKind,
}

impl GatewayError {
    /// What went wrong.
    pub fn kind(&self) -> &GatewayErrorKind {
        &self.kind
    }
}

/// The kinds of [`GatewayError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayErrorKind {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The upstream URL is not usable.
    #[error("upstream {url:?} is not usable: {reason}")]
    Upstream {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The rate limiter could not be set up (e.g. a malformed Redis URL).
    #[error("cannot set up rate limiting: {0}")]
    RateLimit(String),
    /// The TLS client configuration for HTTPS upstreams could not be built.
    #[error("cannot set up TLS to upstreams: {0}")]
    UpstreamTls(std::io::Error),
}

impl From<GatewayErrorKind> for GatewayError {
    fn from(kind: GatewayErrorKind) -> Self {
        Self { kind }
    }
}
