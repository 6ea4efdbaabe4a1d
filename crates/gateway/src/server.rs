//! Listeners: worker threads, accepting connections, TLS handshakes, HTTP/1.1 and HTTP/2,
//! graceful shutdown.
//!
//! The gateway runs thread-per-core: each worker thread has its own single-threaded event
//! loop, its own listening socket on the gateway's address (`SO_REUSEPORT`: the kernel spreads
//! new connections over them) and its own upstream connection pool. A connection, its requests
//! and the upstream connections they use stay on one thread, so forwarding a request never
//! wakes another thread. What must be global is shared between the workers: connection caps
//! and fair shedding, rate-limit buckets, the load-shedding gate, the live settings that a
//! reload swaps, metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::error::{GatewayError, GatewayErrorKind};
use crate::forward::{ClientBody, ConnectionInfo, Forwarder, UpstreamClient, UpstreamConnector};
use crate::gated::Gated;
use crate::h1::{Ended, HeadLimits};
use crate::rate::{MinRate, MinRateIo};
use crate::ratelimit::RateLimitOptions;
use crate::shedding::LoadShedding;
use crate::shield::{Admission, ConnectionLimits, ConnectionTracker, Refusal};
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
    /// Worker threads, each with its own event loop, listening socket and upstream connection
    /// pool; 0 means one per CPU the process may run on.
    pub workers: usize,
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
            workers: 0,
        }
    }

    /// The number of worker threads these options ask for (at least one).
    fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            workers => workers,
        }
    }
}

/// A gateway bound to its listen address, ready to serve.
pub struct Gateway {
    /// One listening socket per worker, all on `local_addr`.
    listeners: Vec<std::net::TcpListener>,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    live: Arc<Live>,
    connector: UpstreamConnector,
    options: GatewayOptions,
}

/// What a reload swaps: the forwarder every new request picks up, and the health checks of
/// its routes' pools.
#[derive(Debug)]
struct Live {
    forwarder: std::sync::RwLock<Arc<Forwarder>>,
    /// Bumped after every swap, so workers know when their copy is stale without taking the
    /// lock.
    generation: AtomicU64,
    health_checks: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Live {
    fn new(forwarder: Forwarder) -> Self {
        Self {
            forwarder: std::sync::RwLock::new(Arc::new(forwarder)),
            generation: AtomicU64::new(0),
            health_checks: std::sync::Mutex::new(tokio::task::JoinSet::new()),
        }
    }

    fn swap(&self, next: Forwarder) {
        match self.forwarder.write() {
            Ok(mut guard) => *guard = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

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
        self.live.swap(next);
        metrics::counter!("rampart_gateway_reloads_total").increment(1);
        tracing::info!(routes = options.routes.len(), "gateway settings reloaded");
        Ok(())
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("workers", &self.listeners.len())
            .field("tls", &self.tls.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Binds the listen address (one socket per worker) and checks the upstream.
    pub async fn bind(options: GatewayOptions) -> Result<Self, GatewayError> {
        let router = Arc::new(Router::new(&options.routes, options.request_timeout)?);
        let forwarder = Forwarder::new(&options, router)?;
        let connector = crate::forward::upstream_connector()?;
        let live = Arc::new(Live::new(forwarder));
        let bind_error = |source| GatewayErrorKind::Bind {
            addr: options.listen,
            source,
        };
        let listeners =
            bind_listeners(options.listen, options.worker_count()).map_err(bind_error)?;
        let local_addr = match listeners.first() {
            Some(listener) => listener.local_addr().map_err(bind_error)?,
            None => options.listen,
        };
        let tls = options
            .tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(Arc::clone(&tls.config)));
        Ok(Self {
            listeners,
            local_addr,
            tls,
            live,
            connector,
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
        Ok(self.local_addr)
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for at most `grace`. The workers run on threads of their own; dropping this
    /// future stops them at once.
    pub async fn serve(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        let builder = Arc::new(protocol_builder(self.options.protocol_limits));
        let tracker = ConnectionTracker::new(self.options.limits);
        let (stop, stopping) = watch::channel(Stop::Serving);
        let stop = StopOnDrop(stop);
        let workers: Vec<_> = self
            .listeners
            .into_iter()
            .enumerate()
            .map(|(index, listener)| {
                Worker {
                    index,
                    listener,
                    client: crate::pool::UpstreamPool::new(self.connector.clone()),
                    tracker: Arc::clone(&tracker),
                    builder: Arc::clone(&builder),
                    head_limits: HeadLimits {
                        max_head_bytes: self.options.protocol_limits.max_request_head_bytes,
                        max_headers: self.options.protocol_limits.max_headers,
                    },
                    tls: self.tls.clone(),
                    tls_handshake_timeout: self.options.tls_handshake_timeout,
                    min_response_rate: self.options.min_response_rate,
                    idle_timeout: self.options.header_read_timeout,
                    live: Arc::new(WorkerForwarder::new(Arc::clone(&self.live))),
                    stop: stopping.clone(),
                }
                .start()
            })
            .collect();
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
        // The active/idle connection gauges change with every request: published once a
        // second rather than per request.
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = gauges.tick() => tracker.publish(),
            }
        }
        stop.0.send_replace(Stop::Draining(grace));
        background.abort_all();
        self.live.stop_health_checks();
        tracing::info!(open_connections = tracker.open(), "gateway draining");
        let mut drained = true;
        for finished in workers {
            drained &= finished.await.unwrap_or(false);
        }
        if !drained {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over; closing remaining connections"
            );
        }
    }
}

/// Binds `count` listening sockets on `addr`: one plain socket when `count` is 1, otherwise
/// a `SO_REUSEPORT` group on the same port (the kernel spreads connections over them).
fn bind_listeners(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    // An ordinary bind first: it fails when anything listens on the address already (a
    // reuse-port group included, so a second gateway on the same port is refused instead of
    // joining the group), and it picks the port when `addr` asks for any (port 0).
    let first = std::net::TcpListener::bind(addr)?;
    if count <= 1 {
        first.set_nonblocking(true)?;
        return Ok(vec![first]);
    }
    let addr = first.local_addr()?;
    drop(first);
    (0..count)
        .map(|_| {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(1024)?.into_std()
        })
        .collect()
}

/// The HTTP/1.1 and HTTP/2 server settings every connection is served with.
fn protocol_builder(limits: ProtocolLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
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
    builder
}

/// What the workers are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Serving,
    /// Stop accepting; let requests in flight finish for at most this long.
    Draining(Duration),
    /// Close everything now.
    Now,
}

/// Tells the workers to stop at once when `serve` ends or is dropped.
struct StopOnDrop(watch::Sender<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(Stop::Now);
    }
}

/// One worker thread: a listening socket, a single-threaded event loop serving the
/// connections it accepts, and the upstream connection pool their requests use.
struct Worker {
    index: usize,
    listener: std::net::TcpListener,
    client: UpstreamClient,
    tracker: Arc<ConnectionTracker>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    head_limits: HeadLimits,
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    min_response_rate: MinRate,
    idle_timeout: Duration,
    live: Arc<WorkerForwarder>,
    stop: watch::Receiver<Stop>,
}

/// A worker's copy of the live forwarder. Every request takes a reference to it; keeping one
/// copy per worker means that reference count is only touched by its own thread (a shared
/// one would bounce between the cores on every request).
#[derive(Debug)]
struct WorkerForwarder {
    live: Arc<Live>,
    copy: Mutex<(u64, Arc<Forwarder>)>,
}

impl WorkerForwarder {
    fn new(live: Arc<Live>) -> Self {
        let generation = live.generation.load(Ordering::Acquire);
        let copy = Arc::new(Forwarder::clone(&live.current()));
        Self {
            live,
            copy: Mutex::new((generation, copy)),
        }
    }

    /// The forwarder of the latest reload.
    fn current(&self) -> Arc<Forwarder> {
        let generation = self.live.generation.load(Ordering::Acquire);
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        if copy.0 != generation {
            *copy = (generation, Arc::new(Forwarder::clone(&self.live.current())));
        }
        Arc::clone(&copy.1)
    }
}

impl Worker {
    /// Runs the worker on a thread of its own; the receiver says whether its connections
    /// drained within the grace period.
    fn start(self) -> oneshot::Receiver<bool> {
        let (finished, outcome) = oneshot::channel();
        let name = format!("rampart-gateway-{}", self.index);
        // Shared with the thread so that, if no thread can be made, the worker still runs
        // (as a task of the calling runtime) rather than leaving its socket unserved.
        let slot = Arc::new(Mutex::new(Some((self, finished))));
        let on_thread = Arc::clone(&slot);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let Some((worker, finished)) = on_thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            else {
                return;
            };
            let drained = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(worker.run()),
                Err(error) => {
                    tracing::error!(%error, "gateway worker cannot start its event loop");
                    true
                }
            };
            let _ = finished.send(drained);
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a gateway worker thread; serving its socket from the main runtime");
            if let Some((worker, finished)) =
                slot.lock().unwrap_or_else(PoisonError::into_inner).take()
            {
                tokio::spawn(async move {
                    let _ = finished.send(worker.run().await);
                });
            }
        }
        outcome
    }

    /// Accepts and serves connections until told to stop; true when every connection it
    /// served finished within the grace period.
    async fn run(self) -> bool {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, worker = self.index, "gateway worker cannot listen");
                return true;
            }
        };
        let graceful = GracefulShutdown::new();
        // Every connection holds a receiver: once all are gone, the lean HTTP/1.1
        // connections (which hyper's graceful shutdown does not see) have ended.
        let (open_connections, connection_alive) = watch::channel(());
        let mut stop = self.stop;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let admission = match self.tracker.admit(peer.ip()) {
                            Ok(admission) => admission,
                            Err(refusal) => {
                                metrics::counter!(
                                    "rampart_gateway_connections_shed_total",
                                    "reason" => refusal.label()
                                )
                                .increment(1);
                                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                                // A client reconnecting faster than its rate is held, unread,
                                // so its reconnect loop stops cycling (see `over_rate_hold`).
                                let held = (refusal == Refusal::PerClientRate)
                                    .then(|| self.tracker.hold_refused(peer.ip()))
                                    .flatten();
                                if let Some(held) = held {
                                    tokio::spawn(async move {
                                        tokio::time::sleep(held.hold()).await;
                                        drop(stream);
                                        drop(held);
                                    });
                                }
                                continue;
                            }
                        };
                        let connection = Connection {
                            admission: Arc::new(admission),
                            builder: Arc::clone(&self.builder),
                            head_limits: self.head_limits,
                            stop: stop.clone(),
                            _alive: connection_alive.clone(),
                            tls: self.tls.clone(),
                            tls_handshake_timeout: self.tls_handshake_timeout,
                            min_response_rate: self.min_response_rate,
                            idle_timeout: self.idle_timeout,
                            live: Arc::clone(&self.live),
                            client: Arc::clone(&self.client),
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
                _ = async { stop.wait_for(|stop| *stop != Stop::Serving).await.map(|_| ()) } => break,
            }
        }
        drop(listener);
        drop(connection_alive);
        let stopping = *stop.borrow();
        let grace = match stopping {
            Stop::Draining(grace) => grace,
            Stop::Serving | Stop::Now => return false,
        };
        tokio::select! {
            drained = tokio::time::timeout(grace, async {
                graceful.shutdown().await;
                open_connections.closed().await;
            }) => drained.is_ok(),
            _ = async { stop.wait_for(|stop| *stop == Stop::Now).await.map(|_| ()) } => false,
        }
    }
}

/// Everything one accepted connection needs.
struct Connection {
    admission: Arc<Admission>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    head_limits: HeadLimits,
    stop: watch::Receiver<Stop>,
    /// Dropped when the connection ends (see [`Worker::run`]).
    _alive: watch::Receiver<()>,
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    min_response_rate: MinRate,
    idle_timeout: Duration,
    live: Arc<WorkerForwarder>,
    client: UpstreamClient,
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

impl crate::h1::RawFieldsSource for InFlightBody {
    fn raw_fields(&self) -> Option<&crate::raw_fields::RawFields> {
        self.inner.raw_fields()
    }
}

impl hyper::body::Body for InFlightBody {
    type Data = bytes::Bytes;
    type Error = crate::pool::SendError;

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

/// What every request of a connection is handled with: the worker's forwarder and upstream
/// pool, and the connection's admission (which counts requests in flight).
#[derive(Clone)]
struct RequestHandler {
    live: Arc<WorkerForwarder>,
    client: UpstreamClient,
    admission: Arc<Admission>,
    info: ConnectionInfo,
}

impl RequestHandler {
    /// Forwards one request; the response keeps the request counted as in flight until its
    /// last byte is handed to the connection (a long download is neither idle nor a
    /// candidate for shedding).
    /// Handles one request. `lean` when the lean HTTP/1.1 loop serves it (it writes fields
    /// the upstream's response kept raw as they are); hyper needs every field in the map.
    fn call(
        &self,
        request: hyper::Request<ClientBody>,
        lean: bool,
    ) -> impl Future<Output = hyper::Response<InFlightBody>> + Send + use<> {
        let forwarder = self.live.current();
        let client = Arc::clone(&self.client);
        // One clock reading for the request's start: its progress mark, its latency and its id.
        let started = std::time::Instant::now();
        let in_flight = self.admission.request_at(started);
        let info = self.info;
        forwarder.handle(request, info, client, started, move |mut response| {
            if !lean {
                crate::forward::raw_fields_into_map(&mut response);
            }
            response.map(|body| InFlightBody::new(body, in_flight))
        })
    }
}

impl Connection {
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        crate::rate::limit_unsent(&stream);
        let stream = MinRateIo::new(stream, self.min_response_rate);
        let handler = RequestHandler {
            live: self.live,
            client: self.client,
            admission: Arc::clone(&self.admission),
            info: ConnectionInfo {
                peer,
                tls: self.tls.is_some(),
            },
        };
        // Polled only when they were woken, not every time the connection's task wakes.
        let evicted = Arc::clone(&self.admission);
        let evicted = Gated::new(async move { evicted.evicted().await });
        let idle = Arc::clone(&self.admission);
        let idle_timeout = self.idle_timeout;
        let idle = Gated::new(async move { idle.idle_expired(idle_timeout).await });
        let protocol = Protocol {
            builder: &self.builder,
            head_limits: self.head_limits,
            handler,
            watcher: self.watcher,
            stop: self.stop,
        };
        tokio::select! {
            () = protocol.serve(self.tls, self.tls_handshake_timeout, stream, peer) => {}
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

/// How a connection's requests are read and answered: the lean HTTP/1.1 loop first, hyper
/// (HTTP/2, and HTTP/1.1 requests with bodies and the like) from the first request the loop
/// hands over.
struct Protocol<'a> {
    builder: &'a auto::Builder<TokioExecutor>,
    head_limits: HeadLimits,
    handler: RequestHandler,
    watcher: hyper_util::server::graceful::Watcher,
    stop: watch::Receiver<Stop>,
}

impl Protocol<'_> {
    async fn serve(
        self,
        tls: Option<TlsAcceptor>,
        tls_handshake_timeout: Duration,
        stream: MinRateIo<TcpStream>,
        peer: SocketAddr,
    ) {
        match tls {
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(tls_handshake_timeout, acceptor.accept(stream));
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
                if tls_stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    self.hyper(tls_stream, peer).await;
                } else {
                    self.lean_first(tls_stream, peer).await;
                }
            }
            None => self.lean_first(stream, peer).await,
        }
    }

    /// Serves bodiless HTTP/1.1 requests with the lean loop, then hands the rest of the
    /// connection to hyper if a request needs it.
    async fn lean_first<S>(mut self, mut io: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let handler = self.handler.clone();
        let ended = crate::h1::serve(
            &mut io,
            self.head_limits,
            // Boxed: the forwarding future is large, and moving it costs more than a box.
            |request| Box::pin(handler.call(request, true)),
            &mut self.stop,
        )
        .await;
        if let Ended::HandOff(prefix) = ended {
            self.hyper(crate::h1::Prefixed::new(prefix, io), peer).await;
        }
    }

    async fn hyper<S>(self, io: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let handler = self.handler;
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            // The request's future is large (the forwarding steps, the upstream exchange):
            // boxed, hyper moves only the box around (several copies per request otherwise).
            let response = Box::pin(handler.call(request.map(ClientBody::Hyper), false));
            async move { Ok::<_, std::convert::Infallible>(response.await) }
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        if let Err(error) = self.watcher.watch(connection).await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}
