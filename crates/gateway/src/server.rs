//! Listeners: accepting connections, TLS handshakes, HTTP/1.1 and HTTP/2, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::error::{GatewayError, GatewayErrorKind};
use crate::forward::{ConnectionInfo, Forwarder};
use crate::rate::{MinRate, MinRateIo};
use crate::ratelimit::RateLimitOptions;
use crate::shedding::LoadShedding;
use crate::shield::{Admission, ConnectionLimits, ConnectionTracker};
use crate::upstream::{RouteOptions, Router};

/// How a gateway listens and where it forwards.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// TLS settings; `None` serves plain HTTP.
    pub tls: Option<crate::tls::GatewayTls>,
    /// Routes to upstream pools, matched by host and path prefix.
    pub routes: Vec<RouteOptions>,
    /// How long an upstream may take to answer a request (routes may override it).
    pub request_timeout: Duration,
    /// Deadline for a client to send a whole request head (HTTP/1.1), from the first byte.
    pub header_read_timeout: Duration,
    /// Deadline for a client to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Connection caps and fair shedding.
    pub limits: ConnectionLimits,
    /// Minimum rate at which a client must send a request body (the slow-POST defense).
    pub min_request_body_rate: MinRate,
    /// Minimum rate at which a client must read responses (the slow-read defense).
    pub min_response_rate: MinRate,
    /// Per-client request rate limit, if any.
    pub rate_limit: Option<RateLimitOptions>,
    /// Bounds on what one client may make the gateway hold per request head and per HTTP/2
    /// connection.
    pub protocol_limits: ProtocolLimits,
    /// Sign every upstream request with origin-lock headers, so backends can refuse traffic
    /// that bypassed the edge.
    pub origin_lock: Option<rampart_origin_lock::OriginLock>,
    /// Accept only requests signed by this outer edge (a gateway behind another edge).
    pub require_edge: Option<rampart_origin_lock::OriginLock>,
    /// Bound on upstream concurrency; the excess gets 503 + Retry-After.
    pub load_shedding: LoadShedding,
    /// Proxies in front of the gateway whose `X-Forwarded-For` is believed; none by default.
    pub trusted_proxies: Vec<crate::headers::IpNetwork>,
    /// Filters every request passes through, in order (WAF, identity, ...).
    pub filters: Vec<Arc<dyn crate::filter::Filter>>,
    /// Told about every denied request (the audit trail).
    pub deny_observer: Option<Arc<dyn crate::filter::DenyObserver>>,
    /// Verifies callers of routes with an [`auth`](RouteOptions::auth) policy. A route that
    /// demands identity while none is set refuses every request (fail closed).
    pub authenticator: Option<Arc<dyn crate::auth::Authenticator>>,
}

/// Protocol-level bounds: request head size, and HTTP/2 abuse limits (stream floods, rapid
/// reset (CVE-2023-44487), oversized header lists, dead peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// Largest HTTP/1.1 request head (request line plus headers), in bytes; larger gets 431.
    pub max_request_head_bytes: usize,
    /// Most headers in one HTTP/1.1 request.
    pub max_headers: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// Largest HTTP/2 header list (decoded), in bytes.
    pub h2_max_header_list_bytes: u32,
    /// Streams a client may open and reset before the gateway accepts them (rapid reset):
    /// past this the connection gets GOAWAY.
    pub h2_max_pending_accept_reset_streams: usize,
    /// Streams the gateway may reset because of client protocol errors before GOAWAY.
    pub h2_max_local_error_reset_streams: usize,
    /// PING interval that detects dead HTTP/2 peers; the peer has as long again to answer.
    pub h2_keep_alive_interval: Duration,
}

impl Default for ProtocolLimits {
    fn default() -> Self {
        Self {
            max_request_head_bytes: 64 * 1024,
            max_headers: 100,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_bytes: 64 * 1024,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 256,
            h2_keep_alive_interval: Duration::from_secs(20),
        }
    }
}

impl GatewayOptions {
    /// Options with the safe defaults, forwarding everything to one upstream.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        Self {
            listen,
            tls: None,
            routes: vec![RouteOptions::catch_all(vec![upstream.into()])],
            request_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            limits: ConnectionLimits::default(),
            min_request_body_rate: MinRate::DEFAULT,
            min_response_rate: MinRate::DEFAULT,
            rate_limit: None,
            protocol_limits: ProtocolLimits::default(),
            origin_lock: None,
            require_edge: None,
            load_shedding: LoadShedding::default(),
            trusted_proxies: Vec::new(),
            filters: Vec::new(),
            deny_observer: None,
            authenticator: None,
        }
    }
}

/// A gateway bound to its listen address, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    live: Arc<Live>,
    options: GatewayOptions,
}

/// What a reload swaps: the forwarder every new request picks up, and the health checks of
/// its routes' pools.
#[derive(Debug)]
struct Live {
    forwarder: std::sync::RwLock<Arc<Forwarder>>,
    health_checks: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Live {
    fn current(&self) -> Arc<Forwarder> {
        match self.forwarder.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the health-check tasks with ones for `router`'s pools (inside a runtime).
    fn check_health_of(&self, router: &Router) {
        let mut tasks = match self.health_checks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        tasks.abort_all();
        for pool in router.checked_pools() {
            tasks.spawn(crate::upstream::check_health_forever(pool));
        }
    }

    fn stop_health_checks(&self) {
        if let Ok(mut tasks) = self.health_checks.lock() {
            tasks.abort_all();
        }
    }
}

/// Applies new routes, rate limits, filters, trusted proxies, origin-lock keys, load-shedding
/// bounds and upstream timeouts to a running gateway without dropping a connection: requests
/// already in flight finish with the settings they started with, every later request (on new
/// and on kept-alive connections) uses the new ones. Listener settings (address, TLS,
/// connection caps, protocol limits, head and handshake deadlines, response read rate) take a
/// restart.
#[derive(Debug, Clone)]
pub struct GatewayReloader {
    live: Arc<Live>,
}

impl GatewayReloader {
    /// Validates `options` and swaps them in; on error the running settings stay.
    pub fn reload(&self, options: &GatewayOptions) -> Result<(), GatewayError> {
        let router = Arc::new(Router::new(&options.routes, options.request_timeout)?);
        let next = self.live.current().rebuilt(options, Arc::clone(&router))?;
        self.live.check_health_of(&router);
        match self.live.forwarder.write() {
            Ok(mut guard) => *guard = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        metrics::counter!("rampart_gateway_reloads_total").increment(1);
        tracing::info!(routes = options.routes.len(), "gateway settings reloaded");
        Ok(())
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Gateway")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Binds the listen address and checks the upstream.
    pub async fn bind(options: GatewayOptions) -> Result<Self, GatewayError> {
        let router = Arc::new(Router::new(&options.routes, options.request_timeout)?);
        let forwarder = Forwarder::new(&options, router)?;
        let live = Arc::new(Live {
            forwarder: std::sync::RwLock::new(Arc::new(forwarder)),
            health_checks: std::sync::Mutex::new(tokio::task::JoinSet::new()),
        });
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| GatewayErrorKind::Bind {
                    addr: options.listen,
                    source,
                })?;
        let tls = options
            .tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(Arc::clone(&tls.config)));
        Ok(Self {
            listener,
            tls,
            live,
            options,
        })
    }

    /// A handle that applies new settings to this gateway while it serves.
    pub fn reloader(&self) -> GatewayReloader {
        GatewayReloader {
            live: Arc::clone(&self.live),
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for at most `grace`.
    pub async fn serve(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let limits = self.options.protocol_limits;
        builder
            .http1()
            .timer(TokioTimer::new())
            // The whole-head deadline is the connection's idle deadline (see `Connection`),
            // measured by the gateway: hyper's own timer can fire while a long response is
            // still being written, and does not cover HTTP/2 or protocol detection.
            .header_read_timeout(None)
            .max_buf_size(limits.max_request_head_bytes.max(8192))
            .max_headers(limits.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_header_list_size(limits.h2_max_header_list_bytes)
            .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
            .keep_alive_interval(limits.h2_keep_alive_interval)
            .keep_alive_timeout(limits.h2_keep_alive_interval);
        let builder = Arc::new(builder);
        let tracker = ConnectionTracker::new(self.options.limits);
        let mut background = tokio::task::JoinSet::new();
        if let Some(reloader) = self
            .options
            .tls
            .as_ref()
            .and_then(|tls| tls.reloader.clone())
        {
            background.spawn(reloader.watch(Duration::from_secs(5)));
        }
        self.live.check_health_of(self.live.current().router());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let admission = match tracker.admit(peer.ip()) {
                            Ok(admission) => admission,
                            Err(refusal) => {
                                metrics::counter!(
                                    "rampart_gateway_connections_shed_total",
                                    "reason" => refusal.label()
                                )
                                .increment(1);
                                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                                drop(stream);
                                continue;
                            }
                        };
                        let connection = Connection {
                            admission: Arc::new(admission),
                            builder: Arc::clone(&builder),
                            tls: self.tls.clone(),
                            tls_handshake_timeout: self.options.tls_handshake_timeout,
                            min_response_rate: self.options.min_response_rate,
                            idle_timeout: self.options.header_read_timeout,
                            live: Arc::clone(&self.live),
                            watcher: graceful.watcher(),
                        };
                        tokio::spawn(connection.serve(stream, peer));
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        background.abort_all();
        self.live.stop_health_checks();
        let open = graceful.count();
        tracing::info!(open_connections = open, "gateway draining");
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over; closing remaining connections"
            );
        }
    }
}

/// Everything one accepted connection needs.
struct Connection {
    admission: Arc<Admission>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    min_response_rate: MinRate,
    idle_timeout: Duration,
    live: Arc<Live>,
    watcher: hyper_util::server::graceful::Watcher,
}

/// A response body that keeps its request counted as in flight until it is done or dropped.
struct InFlightBody {
    inner: crate::forward::GatewayBody,
    _in_flight: crate::shield::InFlight,
}

impl InFlightBody {
    fn new(inner: crate::forward::GatewayBody, in_flight: crate::shield::InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for InFlightBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Connection {
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let stream = MinRateIo::new(stream, self.min_response_rate);
        let info = ConnectionInfo {
            peer,
            tls: self.tls.is_some(),
        };
        let live = self.live;
        let admission = Arc::clone(&self.admission);
        let service = service_fn(move |request| {
            let forwarder = live.current();
            let in_flight = admission.request();
            async move {
                let response = forwarder.handle(request, info).await;
                // In flight until the last byte of the response is handed to the connection:
                // a long download is neither idle nor a candidate for shedding.
                response
                    .map(|response| response.map(|body| InFlightBody::new(body, in_flight).boxed()))
            }
        });
        let evicted = Arc::clone(&self.admission);
        let evicted = async move { evicted.evicted().await };
        let idle = Arc::clone(&self.admission);
        let idle_timeout = self.idle_timeout;
        let idle = async move { idle.idle_expired(idle_timeout).await };
        tokio::select! {
            () = serve_protocol(self.tls, self.tls_handshake_timeout, &self.builder, stream, peer, service, self.watcher) => {}
            () = evicted => {
                tracing::debug!(%peer, "connection shed to make room for a new one");
            }
            () = idle => {
                metrics::counter!("rampart_gateway_idle_closed_total").increment(1);
                tracing::debug!(%peer, "connection closed: no complete request within the deadline");
            }
        }
    }
}

async fn serve_protocol<S>(
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    builder: &auto::Builder<TokioExecutor>,
    stream: MinRateIo<TcpStream>,
    peer: SocketAddr,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<crate::forward::GatewayBody>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let result = match tls {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(tls_handshake_timeout, acceptor.accept(stream));
            let tls_stream = match handshake.await {
                Ok(Ok(tls_stream)) => tls_stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "tls handshake timed out");
                    return;
                }
            };
            let connection = builder
                .serve_connection(TokioIo::new(tls_stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
        None => {
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
