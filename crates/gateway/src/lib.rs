//! The Rampart gateway: the edge reverse proxy.
//!
//! A [`Gateway`] accepts client connections (TLS with ALPN `h2`/`http/1.1`, or plain HTTP when
//! configured), serves HTTP/1.1 and HTTP/2 on them, and forwards every request to one upstream
//! with the forwarding headers an upstream needs (`X-Forwarded-*`, `Forwarded`,
//! `X-Request-Id`). Shields, origin lock, routing, identity and the WAF plug in here as they
//! land.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod error;
mod filter;
mod forward;
mod gated;
mod h1;
mod headers;
mod http_date;
mod log_budget;
#[cfg(test)]
mod mutation;
mod pool;
mod rate;
mod ratelimit;
mod raw_fields;
mod request_id;
mod server;
mod shedding;
mod shield;
mod tls;
mod upstream;

pub use auth::{AuthDecision, AuthFuture, Authenticator, RouteAuth, bearer_token};
pub use error::{GatewayError, GatewayErrorKind};
pub use filter::{
    Denial, DeniedRequest, DenyObserver, Filter, FilterSession, RequestHead, Verdict,
};
#[doc(hidden)]
pub use h1::{DecodedRequests, decode_request_heads};
pub use headers::{BadNetwork, IpNetwork};
#[doc(hidden)]
pub use pool::{DecodedResponse, decode_upstream_response};
pub use rate::{MinRate, TooSlow};
pub use ratelimit::{RateLimitKey, RateLimitOptions};
pub use server::{Gateway, GatewayOptions, GatewayReloader, ProtocolLimits};
pub use shedding::LoadShedding;
pub use shield::ConnectionLimits;
pub use tls::{GatewayTls, ReloadingCertificate, TlsError, certified_key};
pub use upstream::{HealthCheck, PassiveEjection, RouteOptions};
