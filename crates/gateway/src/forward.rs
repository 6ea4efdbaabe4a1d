//! Forwarding one request to the upstream and the response back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::pool::{OutgoingHead, UpstreamResponseBody, UpstreamTimedOut};

use crate::auth::{AuthDecision, Authenticator, RouteAuth, bearer_token};
use crate::error::{GatewayError, GatewayErrorKind};
use crate::filter::Verdict as FilterVerdict;
use crate::filter::{Denial, DeniedRequest, DenyObserver, FilterSession, Filters, RequestHead};
use crate::headers::{
    ForwardedFor, IpNetwork, client_address, forwarding_fields, strip_hop_by_hop,
};
use crate::log_budget::{LogBudget, Permit};
use crate::rate::{ClientBodyFailed, MinRate, MinRateBody, TooSlow};
use crate::ratelimit::{RateLimiter, Verdict};
use crate::raw_fields::RawFields;
use crate::server::GatewayOptions;
use crate::shedding::UpstreamGate;
use crate::upstream::Router;
use rampart_origin_lock::{Forwarding, OriginLock};

/// The body of every response the gateway sends: the upstream's as it streams in, the
/// upstream's with its start already read for the filters, or one the gateway made itself.
/// An enum rather than a boxed trait object: no allocation per response.
pub(crate) enum GatewayBody {
    Upstream(UpstreamResponseBody),
    /// Boxed: only responses the filters inspected take it, and every response is moved
    /// several times on its way out.
    Prefixed(Box<PrefixedBody>),
    Full(Option<Bytes>),
}

impl GatewayBody {
    fn full(bytes: Bytes) -> Self {
        Self::Full(Some(bytes))
    }

    /// The upstream's response fields, when they were kept as it sent them (the response's
    /// map then holds only what the gateway set): the lean HTTP/1.1 loop writes them out.
    pub(crate) fn raw_fields(&self) -> Option<&RawFields> {
        match self {
            Self::Upstream(body) => body.raw_fields(),
            Self::Prefixed(_) | Self::Full(_) => None,
        }
    }
}

/// Moves fields the upstream's response kept raw into its map, for whatever needs them
/// there (hyper's connections).
pub(crate) fn raw_fields_into_map(response: &mut Response<GatewayBody>) {
    if let GatewayBody::Upstream(body) = response.body()
        && body.raw_fields().is_some()
    {
        let mut headers = std::mem::take(response.headers_mut());
        if let GatewayBody::Upstream(body) = response.body_mut() {
            body.raw_fields_into(&mut headers);
        }
        *response.headers_mut() = headers;
    }
}

impl hyper::body::Body for GatewayBody {
    type Data = Bytes;
    type Error = crate::pool::SendError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Upstream(body) => std::pin::Pin::new(body).poll_frame(cx),
            Self::Prefixed(body) => std::pin::Pin::new(body).poll_frame(cx),
            Self::Full(bytes) => std::task::Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(hyper::body::Frame::data(bytes))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => body.is_end_stream(),
            Self::Prefixed(body) => body.is_end_stream(),
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Upstream(body) => body.size_hint(),
            Self::Prefixed(body) => body.size_hint(),
            Self::Full(bytes) => hyper::body::SizeHint::with_exact(
                bytes.as_ref().map_or(0, |bytes| bytes.len() as u64),
            ),
        }
    }
}

/// A client's request body: hyper's, or none (a bodiless request read by the lean
/// HTTP/1.1 server side).
#[derive(Debug)]
pub(crate) enum ClientBody {
    Hyper(Incoming),
    Empty,
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Hyper(body) => std::pin::Pin::new(body).poll_frame(cx),
            Self::Empty => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            Self::Empty => hyper::body::SizeHint::with_exact(0),
        }
    }
}

/// Where requests go: scheme, authority and a base path that request paths are appended to.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamTarget {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    /// `scheme://authority/`: what connections are made to.
    origin: Uri,
    /// `scheme://authority`: which pooled connections serve this target.
    pool_key: Arc<str>,
}

impl UpstreamTarget {
    /// Parses an `http://` or `https://` URL with a host and no query.
    pub(crate) fn parse(url: &str) -> Result<Self, GatewayError> {
        let reject = |reason| GatewayErrorKind::Upstream {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| reject("not a URL"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| reject("no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(reject("scheme must be http or https").into());
        }
        let authority = uri.authority().cloned().ok_or_else(|| reject("no host"))?;
        if authority.as_str().contains('@') {
            return Err(reject("credentials in the URL are not allowed").into());
        }
        if uri.query().is_some() {
            return Err(reject("a query is not allowed").into());
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| reject("not a URL"))?;
        let pool_key = format!("{scheme}://{authority}").into();
        Ok(Self {
            scheme,
            authority,
            base_path,
            origin,
            pool_key,
        })
    }

    /// `scheme://authority/`, where connections to this target go.
    pub(crate) fn origin(&self) -> &Uri {
        &self.origin
    }

    /// The key of this target's pooled connections.
    pub(crate) fn pool_key(&self) -> &Arc<str> {
        &self.pool_key
    }

    /// The upstream's authority (its `Host` when the client sent none).
    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The origin-form request target (`/base/path?query`) for a request's path and query.
    pub(crate) fn path_for(&self, client_uri: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = match (self.base_path.is_empty(), client_uri.path_and_query()) {
            // The client's path and query as they are (shared, not copied).
            (true, Some(path_and_query)) => path_and_query.clone(),
            _ => PathAndQuery::try_from(format!("{}{}", self.base_path, client_path(client_uri)))?,
        };
        Ok(Uri::from(path_and_query))
    }

    /// The upstream URI for a request's path and query (health checks).
    pub(crate) fn uri_for(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let joined = format!("{}{}", self.base_path, path_and_query);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(joined)
            .build()
    }
}

/// The body sent upstream: the client's (rate-guarded) body, or one already read (buffered
/// for the filters, or empty on a retry), or the client's body with the part that had
/// already arrived taken out first. An enum rather than a boxed trait object: no allocation
/// per request; the streaming variants are boxed, so that the body of a bodiless request
/// (most of them) is small in the futures that carry it.
pub(crate) enum UpstreamBody {
    Client(Box<MinRateBody>),
    Full(Option<Bytes>),
    Gathered(Box<GatheredBody>),
}

/// A client's body with the part that had already arrived taken out first.
pub(crate) struct GatheredBody {
    prefix: Option<Bytes>,
    /// A trailers frame met while gathering.
    pending: Option<hyper::body::Frame<Bytes>>,
    rest: Box<MinRateBody>,
}

/// Most of a client's body gathered in memory to send it in one piece.
const GATHER_LIMIT: usize = 64 * 1024;

impl UpstreamBody {
    /// Whether the whole body is here already (nothing more to read from the client).
    pub(crate) fn is_complete(&self) -> bool {
        match self {
            Self::Client(body) => hyper::body::Body::is_end_stream(body),
            Self::Full(_) => true,
            Self::Gathered(_) => false,
        }
    }

    /// The body's bytes, when [complete](Self::is_complete) (empty otherwise).
    pub(crate) fn into_complete(self) -> Bytes {
        match self {
            Self::Client(_) | Self::Full(None) | Self::Gathered(_) => Bytes::new(),
            Self::Full(Some(bytes)) => bytes,
        }
    }

    /// Takes what the client has already sent of its body, without waiting for more: the
    /// whole body when it is all here (small uploads usually arrive with the request head),
    /// so it can go upstream in one write. Fails as reading the body would.
    pub(crate) async fn gather(self) -> Result<Self, <Self as hyper::body::Body>::Error> {
        let Self::Client(mut rest) = self else {
            return Ok(self);
        };
        let mut gathered: Option<Bytes> = None;
        let mut copied = bytes::BytesMut::new();
        let mut pending = None;
        let complete = std::future::poll_fn(|cx| {
            loop {
                if hyper::body::Body::is_end_stream(&rest) {
                    return std::task::Poll::Ready(Ok(true));
                }
                if gathered.as_ref().map_or(0, Bytes::len) + copied.len() >= GATHER_LIMIT {
                    return std::task::Poll::Ready(Ok(false));
                }
                match hyper::body::Body::poll_frame(std::pin::Pin::new(&mut rest), cx) {
                    std::task::Poll::Pending => return std::task::Poll::Ready(Ok(false)),
                    std::task::Poll::Ready(None) => return std::task::Poll::Ready(Ok(true)),
                    std::task::Poll::Ready(Some(Err(error))) => {
                        return std::task::Poll::Ready(Err(error));
                    }
                    std::task::Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => match &gathered {
                            // The first piece is kept as it is; later ones are appended.
                            None if copied.is_empty() => gathered = Some(data),
                            _ => {
                                if let Some(first) = gathered.take() {
                                    copied.extend_from_slice(&first);
                                }
                                copied.extend_from_slice(&data);
                            }
                        },
                        Err(frame) => {
                            pending = Some(frame);
                            return std::task::Poll::Ready(Ok(false));
                        }
                    },
                }
            }
        })
        .await?;
        let prefix = if copied.is_empty() {
            gathered
        } else {
            Some(copied.freeze())
        };
        Ok(if complete && pending.is_none() {
            Self::Full(prefix)
        } else {
            Self::Gathered(Box::new(GatheredBody {
                prefix,
                pending,
                rest,
            }))
        })
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Client(body) => std::pin::Pin::new(&mut **body).poll_frame(cx),
            Self::Full(bytes) => std::task::Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(hyper::body::Frame::data(bytes))),
            ),
            Self::Gathered(gathered) => {
                let GatheredBody {
                    prefix,
                    pending,
                    rest,
                } = &mut **gathered;
                if let Some(prefix) = prefix.take().filter(|prefix| !prefix.is_empty()) {
                    return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
                }
                if let Some(frame) = pending.take() {
                    return std::task::Poll::Ready(Some(Ok(frame)));
                }
                std::pin::Pin::new(&mut **rest).poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Client(body) => body.is_end_stream(),
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Self::Gathered(gathered) => {
                let GatheredBody {
                    prefix,
                    pending,
                    rest,
                } = &**gathered;
                prefix.as_ref().is_none_or(Bytes::is_empty)
                    && pending.is_none()
                    && rest.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Client(body) => body.size_hint(),
            Self::Full(bytes) => hyper::body::SizeHint::with_exact(
                bytes.as_ref().map_or(0, |bytes| bytes.len() as u64),
            ),
            Self::Gathered(gathered) => {
                let GatheredBody { prefix, rest, .. } = &**gathered;
                let before = prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
                let after = rest.size_hint();
                match after.exact() {
                    Some(exact) => hyper::body::SizeHint::with_exact(before + exact),
                    None => {
                        let mut hint = hyper::body::SizeHint::new();
                        hint.set_lower(before + after.lower());
                        hint
                    }
                }
            }
        }
    }
}

/// Warning lines about denied requests, per second, for the whole process.
static DENIAL_LOG: LogBudget = LogBudget::new(20);

/// The connector every upstream connection is made with (HTTP, or HTTPS with the system's
/// roots).
pub(crate) type UpstreamConnector = HttpsConnector<HttpConnector>;

/// An upstream connection pool. Each worker thread has its own, so a request and the
/// connection it travels on stay on one thread.
pub(crate) type UpstreamClient = std::sync::Arc<crate::pool::UpstreamPool>;

/// Sends requests to the routes' upstream pools, over the calling worker's connection pool.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    router: Arc<Router>,
    min_body_rate: MinRate,
    rate_limiter: Option<Arc<RateLimiter>>,
    rate_limit_options: Option<crate::ratelimit::RateLimitOptions>,
    load_shedding: crate::shedding::LoadShedding,
    origin_lock: Option<Arc<OriginLock>>,
    require_edge: Option<Arc<OriginLock>>,
    gate: Arc<UpstreamGate>,
    trusted_proxies: Arc<[IpNetwork]>,
    filters: Filters,
    deny_observer: Option<Arc<dyn DenyObserver>>,
    authenticator: Option<Arc<dyn Authenticator>>,
    metrics: Arc<RequestMetrics>,
}

/// The response field naming the request id (a name parsed once, not per response).
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The per-request metrics, looked up once rather than on every request.
#[derive(Debug)]
struct RequestMetrics {
    /// `rampart_gateway_requests_total` by status class: 1xx to 5xx.
    requests_by_class: [metrics::Counter; 5],
    duration: metrics::Histogram,
}

impl RequestMetrics {
    fn new() -> Self {
        let class = |class: &'static str| metrics::counter!("rampart_gateway_requests_total", "status" => class);
        Self {
            requests_by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            duration: metrics::histogram!("rampart_gateway_request_duration_seconds"),
        }
    }

    fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status.clamp(100, 599) / 100 - 1);
        if let Some(counter) = self.requests_by_class.get(class) {
            counter.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// The connector for upstream connections: plain HTTP or HTTPS (the system's roots), with
/// Nagle's algorithm off (a request is written at once, not held for the previous ACK).
pub(crate) fn upstream_connector() -> Result<UpstreamConnector, GatewayError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(GatewayErrorKind::UpstreamTls)?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// An HTTP client with its own connection pool over `connector`, for health checks. Its
/// connection tasks run on the runtime that sends the requests.
pub(crate) fn upstream_client<B>(connector: UpstreamConnector) -> Client<UpstreamConnector, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

impl Forwarder {
    pub(crate) fn new(options: &GatewayOptions, router: Arc<Router>) -> Result<Self, GatewayError> {
        let rate_limiter = options
            .rate_limit
            .clone()
            .map(RateLimiter::new)
            .transpose()
            .map_err(|error| GatewayErrorKind::RateLimit(error.to_string()))?;
        Ok(Self {
            router,
            min_body_rate: options.min_request_body_rate,
            rate_limiter: rate_limiter.map(Arc::new),
            rate_limit_options: options.rate_limit.clone(),
            load_shedding: options.load_shedding,
            origin_lock: options.origin_lock.clone().map(Arc::new),
            require_edge: options.require_edge.clone().map(Arc::new),
            gate: Arc::new(UpstreamGate::new(options.load_shedding)),
            trusted_proxies: options.trusted_proxies.clone().into(),
            filters: options.filters.clone().into(),
            deny_observer: options.deny_observer.clone(),
            authenticator: options.authenticator.clone(),
            metrics: Arc::new(RequestMetrics::new()),
        })
    }

    /// The routes this forwarder sends to.
    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    /// A forwarder for new options that keeps what did not change: the rate-limit buckets
    /// (when the limits are the same) and the load-shedding gate with its in-flight count
    /// (when its bounds are the same). The upstream connection pools belong to the worker
    /// threads and stay as they are.
    pub(crate) fn rebuilt(
        &self,
        options: &GatewayOptions,
        router: Arc<Router>,
    ) -> Result<Self, GatewayError> {
        let mut next = Self::new(options, router)?;
        if next.rate_limit_options == self.rate_limit_options {
            next.rate_limiter.clone_from(&self.rate_limiter);
        }
        if next.load_shedding == self.load_shedding {
            next.gate = Arc::clone(&self.gate);
        }
        Ok(next)
    }

    /// Forwards one request, which arrived at `started`, over `client_pool` (the worker's
    /// pool); every failure becomes a response, never an error. `finish` turns the response
    /// into what the caller serves: done here rather than in a wrapping future, which would
    /// hold this future twice.
    ///
    /// A plain function returning the future, not an `async fn`, here and in [`Self::forward`]:
    /// an `async fn` keeps a second copy of each argument (the request's head is 224 bytes)
    /// in its future, and a request's futures are copied whole into the boxes that hold them.
    pub(crate) fn handle<R>(
        self: Arc<Self>,
        request: Request<ClientBody>,
        connection: ConnectionInfo,
        client_pool: UpstreamClient,
        started: Instant,
        finish: impl FnOnce(Response<GatewayBody>) -> R,
    ) -> impl Future<Output = R> {
        let id = crate::request_id::new_request_id(started);
        let client = client_address(
            connection.peer.ip(),
            request.headers(),
            &self.trusted_proxies,
        );
        let (parts, body) = request.into_parts();
        let method = parts.method.clone();
        let target = parts.uri.clone();
        async move {
            let request_id = id.as_str();
            let mut response = match Box::pin(self.forward(
                parts,
                body,
                connection,
                client,
                request_id,
                &client_pool,
            ))
            .await
            {
                Ok(response) => response,
                Err(failure) => {
                    self.failure_response(failure, request_id, client, &method, &target)
                }
            };
            if let Ok(value) = HeaderValue::from_str(request_id) {
                // Set over the upstream's own, wherever its fields are.
                let raw = match response.body_mut() {
                    GatewayBody::Upstream(body) => body.raw_fields_mut(),
                    GatewayBody::Prefixed(_) | GatewayBody::Full(_) => None,
                };
                match raw {
                    Some(raw) => raw.set(&X_REQUEST_ID, value),
                    None => {
                        response.headers_mut().insert(&X_REQUEST_ID, value);
                    }
                }
            }
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            self.metrics.record(status, elapsed);
            tracing::info!(
                request_id,
                %client,
                %method,
                path = target.path(),
                status,
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
            finish(response)
        }
    }

    /// The response to a request that failed or was refused; a refusal is logged (within
    /// the log budget), counted and reported to the deny observer. Out of line: not the
    /// path most requests take.
    #[cold]
    #[inline(never)]
    fn failure_response(
        &self,
        failure: Failure,
        request_id: &str,
        client: std::net::IpAddr,
        method: &Method,
        target: &Uri,
    ) -> Response<GatewayBody> {
        if let Some((by, denial)) = failure.denial() {
            // Attackers choose how many denials there are: the log gets a bounded
            // number of lines, the audit trail and the metrics get every one.
            if let Permit::Write { suppressed } = DENIAL_LOG.permit(Instant::now()) {
                tracing::warn!(
                    request_id,
                    %client,
                    by,
                    reason = %denial.reason,
                    rules = ?denial.rule_ids,
                    suppressed_before = suppressed,
                    "request denied"
                );
            }
            metrics::counter!("rampart_gateway_denied_total", "by" => by).increment(1);
            if let Some(observer) = &self.deny_observer {
                observer.denied(DeniedRequest {
                    request_id: request_id.to_owned(),
                    client,
                    method: method.to_string(),
                    path: target
                        .path_and_query()
                        .map_or("/", PathAndQuery::as_str)
                        .to_owned(),
                    by,
                    status: denial.status.as_u16(),
                    reason: denial.reason,
                    rule_ids: denial.rule_ids,
                });
            }
        }
        failure.into_response(request_id)
    }

    /// Takes a rate-limit token for this request's client; `Err(RateLimited)` when its bucket
    /// is empty.
    async fn take_rate_token(
        &self,
        client: std::net::IpAddr,
        headers: &http::HeaderMap,
        principal: Option<&str>,
    ) -> Result<(), Failure> {
        if let Some(limiter) = &self.rate_limiter {
            let key = limiter.key_for(client, headers, principal);
            if let Verdict::Limit { retry_after } = Box::pin(limiter.check(&key)).await {
                return Err(Failure::RateLimited { retry_after });
            }
        }
        Ok(())
    }

    /// Applies a route's identity policy: the verified principal when the caller may go on.
    async fn authenticate(
        &self,
        policy: &RouteAuth,
        headers: &http::HeaderMap,
        client: std::net::IpAddr,
        request_id: &str,
    ) -> Result<String, Failure> {
        let token = bearer_token(headers);
        let Some(authenticator) = &self.authenticator else {
            tracing::error!(
                request_id,
                route = policy.route,
                "the route demands identity but the gateway has no authenticator: refusing"
            );
            return Err(Failure::Unauthenticated {
                reason: "no authenticator configured".to_owned(),
                token_presented: token.is_some(),
            });
        };
        match authenticator.authenticate(policy, token, client).await {
            AuthDecision::Allow { principal } => {
                tracing::debug!(
                    request_id,
                    principal,
                    route = policy.route,
                    "caller verified"
                );
                Ok(principal)
            }
            AuthDecision::Unauthenticated {
                reason,
                token_presented,
            } => Err(Failure::Unauthenticated {
                reason,
                token_presented,
            }),
            AuthDecision::Forbidden { principal, reason } => Err(Failure::Denied(
                "identity",
                Denial::forbidden(format!("{principal}: {reason}")),
            )),
        }
    }

    /// Forwards a request (`parts`, `body`): the edge check, rate limits, the route's identity
    /// policy, the filters, then the route's backends in turn (a second one only for a
    /// request that can be sent again unchanged).
    ///
    /// The steps only some requests take (an outer edge, rate limits, identity, filters, a
    /// full gate, a failed backend) are functions of their own, awaited in boxes: this
    /// future stays small (it is copied whole into its box) and the code every request runs
    /// stays together.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of each argument in its future"
    )]
    fn forward<'a>(
        &'a self,
        mut parts: http::request::Parts,
        body: ClientBody,
        connection: ConnectionInfo,
        client: std::net::IpAddr,
        request_id: &'a str,
        client_pool: &'a UpstreamClient,
    ) -> impl Future<Output = Result<Response<GatewayBody>, Failure>> + 'a {
        async move {
            if let Some(outer_edge) = &self.require_edge {
                self.check_outer_edge(outer_edge, &parts, client, request_id)?;
            }
            // Buckets per principal are taken once the route's identity check has run (below).
            let limit_by_principal = self
                .rate_limiter
                .as_ref()
                .is_some_and(|limiter| limiter.keys_by_principal());
            if !limit_by_principal && self.rate_limiter.is_some() {
                Box::pin(self.take_rate_token(client, &parts.headers, None)).await?;
            }
            // HTTP/1.1 names the host in `Host`; HTTP/2 in `:authority`, which becomes `Host`
            // upstream.
            // The header's value is shared, not copied: `parts` changes below.
            let host_header = parts
                .headers
                .get(header::HOST)
                .filter(|value| value.to_str().is_ok())
                .cloned();
            let host_from_header = host_header.is_some();
            let host_from_authority = match host_header {
                Some(_) => None,
                None => parts.uri.authority().map(|authority| authority.to_string()),
            };
            let host = host_header
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .or(host_from_authority.as_deref());
            let route = self
                .router
                .route(host, parts.uri.path())
                .ok_or(Failure::NoRoute)?;
            if route.auth.is_some() || limit_by_principal {
                Box::pin(self.admit_caller(route, &parts.headers, client, request_id)).await?;
            }
            let mut body = Some(body);
            let (mut sessions, buffered_body) = if self.filters.is_empty() {
                (Vec::new(), None)
            } else {
                Box::pin(self.filter_request(&parts, &mut body, connection, client, request_id))
                    .await?
            };
            strip_hop_by_hop(&mut parts.headers);
            let forwarding = forwarding_fields(
                &mut parts.headers,
                &ForwardedFor {
                    peer: connection.peer.ip(),
                    peer_trusted: self
                        .trusted_proxies
                        .iter()
                        .any(|network| network.contains(connection.peer.ip())),
                    proto: if connection.tls { "https" } else { "http" },
                    host,
                    request_id,
                },
            );
            if !host_from_header
                && let Some(host) = host.and_then(|host| HeaderValue::from_str(host).ok())
            {
                parts.headers.insert(header::HOST, host);
            }
            // With no host named at all, each backend gets its own authority as `Host`.
            let host_missing = !parts.headers.contains_key(header::HOST);

            // Only a request that can be sent again unchanged may go to a second backend.
            let replayable = is_idempotent(&parts.method)
                && (buffered_body.is_some()
                    || body.as_ref().is_some_and(hyper::body::Body::is_end_stream));
            let attempts = if replayable {
                1 + route.retries as usize
            } else {
                1
            };
            let _slot = match self.gate.try_enter() {
                Some(slot) => slot,
                None => match Box::pin(self.gate.enter()).await {
                    Some(slot) => slot,
                    None => return Err(Failure::Overloaded),
                },
            };
            // A body that has ended already (every bodiless request) needs no rate guard.
            let mut body = body.map(|body| {
                if hyper::body::Body::is_end_stream(&body) {
                    UpstreamBody::Full(None)
                } else {
                    UpstreamBody::Client(Box::new(MinRateBody::new(body, self.min_body_rate)))
                }
            });
            let mut last_failure = Failure::Unreachable;
            let candidates = route.pool.candidates();
            let attempts = attempts.min(candidates.backend_count());
            for backend in candidates.take(attempts) {
                let uri = backend
                    .target
                    .path_for(&parts.uri)
                    .map_err(|_| Failure::BadRequest)?;
                if let Some(lock) = &self.origin_lock {
                    sign_for_origin(lock, &mut parts, &uri, client, request_id);
                }
                let backend_host = if host_missing {
                    HeaderValue::from_str(backend.target.authority().as_str()).ok()
                } else {
                    None
                };
                let upstream_body = match (&buffered_body, body.take()) {
                    (Some(bytes), _) => full_body(Bytes::clone(bytes)),
                    (None, Some(body)) => body,
                    (None, None) => full_body(Bytes::new()),
                };
                let head = OutgoingHead {
                    method: &parts.method,
                    uri: &uri,
                    headers: &parts.headers,
                    host: backend_host.as_ref(),
                    forwarding: &forwarding,
                };
                let deadline = tokio::time::Instant::now() + route.timeout;
                match client_pool
                    .send(&backend.target, head, upstream_body, deadline)
                    .await
                {
                    Ok(response) => {
                        route.pool.report(backend, true);
                        let (mut response_parts, response_body) = response.into_parts();
                        // A direct response comes without them (its parser leaves them out).
                        if !matches!(response_body, UpstreamResponseBody::Direct(_)) {
                            strip_hop_by_hop(&mut response_parts.headers);
                        }
                        if sessions.is_empty() {
                            let body = GatewayBody::Upstream(response_body);
                            return Ok(Response::from_parts(response_parts, body));
                        }
                        return Box::pin(filter_response(
                            &mut sessions,
                            response_parts,
                            response_body,
                        ))
                        .await;
                    }
                    Err(error) => {
                        last_failure =
                            upstream_failed(&error, &route.pool, backend, client, request_id)?;
                    }
                }
            }
            Err(last_failure)
        }
    }

    /// Refuses a request that did not come through the outer edge this gateway requires.
    #[cold]
    #[inline(never)]
    fn check_outer_edge(
        &self,
        outer_edge: &OriginLock,
        parts: &http::request::Parts,
        client: std::net::IpAddr,
        request_id: &str,
    ) -> Result<(), Failure> {
        let Err(rejection) = outer_edge.verify(
            &parts.headers,
            parts.method.as_str(),
            client_path(&parts.uri),
            unix_now(),
        ) else {
            return Ok(());
        };
        if let Permit::Write { suppressed } = DENIAL_LOG.permit(Instant::now()) {
            tracing::warn!(request_id, %client, %rejection, suppressed_before = suppressed, "request did not come through the required edge");
        }
        metrics::counter!("rampart_gateway_edge_rejected_total").increment(1);
        Err(Failure::NotThroughEdge)
    }

    /// The route's identity policy, and the rate limit by principal once it is known.
    async fn admit_caller(
        &self,
        route: &crate::upstream::Route,
        headers: &HeaderMap,
        client: std::net::IpAddr,
        request_id: &str,
    ) -> Result<(), Failure> {
        let limit_by_principal = self
            .rate_limiter
            .as_ref()
            .is_some_and(|limiter| limiter.keys_by_principal());
        let mut principal = None;
        if let Some(policy) = &route.auth {
            match self.authenticate(policy, headers, client, request_id).await {
                Ok(verified) => principal = Some(verified),
                Err(refused) => {
                    // A refused credential still costs its address a token, so a flood of
                    // bad tokens is limited like any anonymous flood.
                    if limit_by_principal {
                        self.take_rate_token(client, headers, None).await?;
                    }
                    return Err(refused);
                }
            }
        }
        if limit_by_principal {
            self.take_rate_token(client, headers, principal.as_deref())
                .await?;
        }
        Ok(())
    }

    /// The filters' request phases: headers, then the body (read up to the largest limit a
    /// filter asks for, and then sent upstream from memory). The sessions, to see the
    /// response, and the body if it was read.
    async fn filter_request(
        &self,
        parts: &http::request::Parts,
        body: &mut Option<ClientBody>,
        connection: ConnectionInfo,
        client: std::net::IpAddr,
        request_id: &str,
    ) -> Result<(FilterSessions, Option<Bytes>), Failure> {
        let head = RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            client,
            peer: connection.peer,
            request_id,
            tls: connection.tls,
        };
        let mut sessions: FilterSessions = Vec::new();
        for filter in self.filters.iter() {
            let mut session = filter.start(&head);
            if let FilterVerdict::Deny(denial) = session.request_headers(&head) {
                return Err(Failure::Denied(filter.name(), denial));
            }
            sessions.push((filter.name(), session));
        }
        let body_limit = sessions
            .iter()
            .map(|(_, session)| session.request_body_limit())
            .max()
            .unwrap_or(0);
        if body_limit == 0 {
            return Ok((sessions, None));
        }
        let Some(unread) = body.take() else {
            return Err(Failure::BadRequest);
        };
        let bytes = collect_request_body(unread, body_limit, self.min_body_rate).await?;
        for (name, session) in &mut sessions {
            if let FilterVerdict::Deny(denial) = session.request_body(&head, &bytes) {
                return Err(Failure::Denied(name, denial));
            }
        }
        Ok((sessions, Some(bytes)))
    }
}

/// The filter sessions of one request, by filter name.
type FilterSessions = Vec<(&'static str, Box<dyn FilterSession>)>;

/// Signs the request for `uri` with the origin lock (replacing the fields signed for an
/// earlier backend).
fn sign_for_origin(
    lock: &OriginLock,
    parts: &mut http::request::Parts,
    uri: &Uri,
    client: std::net::IpAddr,
    request_id: &str,
) {
    let signed_path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    lock.sign(
        &mut parts.headers,
        parts.method.as_str(),
        signed_path,
        &Forwarding {
            timestamp: unix_now(),
            client: client.to_string(),
            request_id: request_id.to_owned(),
        },
    );
}

/// The filters' response phases, then the response to send: the upstream's, or a denial.
async fn filter_response(
    sessions: &mut FilterSessions,
    mut parts: http::response::Parts,
    mut body: UpstreamResponseBody,
) -> Result<Response<GatewayBody>, Failure> {
    // The filters look at the response's fields in its map.
    body.raw_fields_into(&mut parts.headers);
    let body = inspect_response(sessions, &parts, body).await?;
    for (_, session) in sessions.iter_mut() {
        session.logging(parts.status);
    }
    Ok(Response::from_parts(parts, body))
}

/// Records a failed attempt at `backend`: `Ok` with the failure to report if no other
/// backend answers, `Err` when no other backend may be tried (the client's body is at fault).
#[cold]
#[inline(never)]
fn upstream_failed(
    error: &crate::pool::SendError,
    pool: &crate::upstream::Pool,
    backend: &crate::upstream::Backend,
    client: std::net::IpAddr,
    request_id: &str,
) -> Result<Failure, Failure> {
    if caused_by::<TooSlow>(&**error) {
        tracing::info!(request_id, %client, "request body too slow");
        return Err(Failure::TooSlow);
    }
    if caused_by::<ClientBodyFailed>(&**error) {
        // The client broke off its upload: not the backend's failure (no ejection, no
        // retry), or any client could take backends out of rotation.
        tracing::info!(request_id, %client, %error, "request body broke off");
        return Err(Failure::BadRequest);
    }
    pool.report(backend, false);
    metrics::counter!("rampart_gateway_upstream_failures_total", "backend" => backend.url.clone())
        .increment(1);
    if caused_by::<UpstreamTimedOut>(&**error) {
        tracing::warn!(request_id, backend = %backend.url, "upstream timed out");
        return Ok(Failure::Timeout);
    }
    tracing::warn!(request_id, backend = %backend.url, %error, "upstream request failed");
    Ok(Failure::Unreachable)
}

/// The path and query of a request target, `/` when it has none (`OPTIONS *` and the like).
fn client_path(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", PathAndQuery::as_str)
}

fn full_body(bytes: Bytes) -> UpstreamBody {
    UpstreamBody::Full(Some(bytes))
}

/// Reads a request body for inspection, up to `limit` bytes, at the minimum data rate.
async fn collect_request_body(
    body: ClientBody,
    limit: usize,
    min_rate: MinRate,
) -> Result<Bytes, Failure> {
    let limited = http_body_util::Limited::new(MinRateBody::new(body, min_rate), limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Failure::TooLarge),
        Err(error) if caused_by::<TooSlow>(error.as_ref()) => Err(Failure::TooSlow),
        Err(_) => Err(Failure::BadRequest),
    }
}

/// Runs the response hooks: the head, then as much of the body as the filters want to see.
async fn inspect_response(
    sessions: &mut [(&'static str, Box<dyn FilterSession>)],
    parts: &http::response::Parts,
    body: UpstreamResponseBody,
) -> Result<GatewayBody, Failure> {
    for (name, session) in sessions.iter_mut() {
        if let FilterVerdict::Deny(denial) = session.response_headers(parts.status, &parts.headers)
        {
            return Err(Failure::Denied(name, denial));
        }
    }
    let limit = sessions
        .iter()
        .map(|(_, session)| session.response_body_limit())
        .max()
        .unwrap_or(0);
    if limit == 0 {
        return Ok(GatewayBody::Upstream(body));
    }
    let mut body = body;
    let mut seen = bytes::BytesMut::new();
    let mut trailers = None;
    let mut complete = false;
    while seen.len() <= limit {
        match body.frame().await {
            None => {
                complete = true;
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => seen.extend_from_slice(&data),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    complete = true;
                    break;
                }
            },
            Some(Err(_)) => return Err(Failure::Unreachable),
        }
    }
    let seen = seen.freeze();
    let inspected = seen.get(..seen.len().min(limit)).unwrap_or_default();
    for (name, session) in sessions.iter_mut() {
        if let FilterVerdict::Deny(denial) = session.response_body(inspected, complete) {
            return Err(Failure::Denied(name, denial));
        }
    }
    Ok(GatewayBody::Prefixed(Box::new(PrefixedBody {
        prefix: Some(seen),
        trailers,
        rest: (!complete).then_some(body),
    })))
}

/// A response body whose start was already read: the buffered part, then the rest.
pub(crate) struct PrefixedBody {
    prefix: Option<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<UpstreamResponseBody>,
}

impl hyper::body::Body for PrefixedBody {
    type Data = Bytes;
    type Error = crate::pool::SendError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(prefix) = self.prefix.take().filter(|prefix| !prefix.is_empty()) {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
        }
        if let Some(rest) = self.rest.as_mut() {
            return std::pin::Pin::new(rest).poll_frame(cx);
        }
        std::task::Poll::Ready(
            self.trailers
                .take()
                .map(|trailers| Ok(hyper::body::Frame::trailers(trailers))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(Bytes::is_empty)
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
            && self.trailers.is_none()
    }

    /// The buffered part's length plus the rest's: exact when the rest's is (a response the
    /// filters read whole keeps its `Content-Length`, and goes out in one write with its
    /// head); unknown with trailers to send (chunked).
    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.trailers.is_some() {
            return hyper::body::SizeHint::default();
        }
        let prefix = self.prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
        let Some(rest) = &self.rest else {
            return hyper::body::SizeHint::with_exact(prefix);
        };
        let rest = rest.size_hint();
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(prefix.saturating_add(rest.lower()));
        if let Some(upper) = rest.upper() {
            hint.set_upper(prefix.saturating_add(upper));
        }
        hint
    }
}

/// Methods whose repetition has no further effect (RFC 9110 section 9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Why a request got no upstream response.
#[derive(Debug, Clone)]
enum Failure {
    BadRequest,
    TooLarge,
    Denied(&'static str, Denial),
    NoRoute,
    Overloaded,
    NotThroughEdge,
    TooSlow,
    RateLimited {
        retry_after: Duration,
    },
    Unauthenticated {
        reason: String,
        token_presented: bool,
    },
    Unreachable,
    Timeout,
}

impl Failure {
    /// Who denied the request and how, for the deny observer; `None` for failures that are not
    /// a decision about the client (upstream errors, overload).
    fn denial(&self) -> Option<(&'static str, Denial)> {
        match self {
            Self::Denied(by, denial) => Some((by, denial.clone())),
            Self::NotThroughEdge => Some((
                "origin_lock",
                Denial::forbidden("request did not come through the required edge"),
            )),
            Self::RateLimited { .. } => Some((
                "rate_limit",
                Denial {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    reason: "client exceeded its rate limit".to_owned(),
                    rule_ids: Vec::new(),
                },
            )),
            Self::Unauthenticated { reason, .. } => Some((
                "identity",
                Denial {
                    status: StatusCode::UNAUTHORIZED,
                    reason: reason.clone(),
                    rule_ids: Vec::new(),
                },
            )),
            _ => None,
        }
    }

    fn into_response(self, request_id: &str) -> Response<GatewayBody> {
        let (status, code) = match &self {
            Self::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request_body_too_large"),
            Self::Denied(_, denial) => (denial.status, "request_denied"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::NotThroughEdge => (StatusCode::FORBIDDEN, "edge_required"),
            Self::TooSlow => (StatusCode::REQUEST_TIMEOUT, "request_body_too_slow"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unauthenticated { .. } => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Unreachable => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
            Self::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        };
        let mut response = error_response(status, code, request_id);
        match self {
            Self::TooSlow => {
                // The rest of the body will never be read: the connection cannot be reused.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Self::Overloaded => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Self::Unauthenticated {
                token_presented, ..
            } => {
                // RFC 6750 section 3: no error code when no credential was sent.
                let challenge = if token_presented {
                    "Bearer realm=\"rampart\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"rampart\""
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            _ => {}
        }
        response
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Whether `error` or any error it wraps is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        if cause.is::<E>() {
            return true;
        }
        current = cause.source();
    }
    false
}

/// A small JSON error body the gateway itself produces.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    request_id: &str,
) -> Response<GatewayBody> {
    let body = format!("{{\"error\":\"{code}\",\"request_id\":\"{request_id}\"}}\n");
    let mut response = Response::new(GatewayBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_checked() {
        for bad in [
            "ftp://x",
            "localhost:80",
            "http://u:p@host/",
            "http://host/?q=1",
            "",
        ] {
            assert!(UpstreamTarget::parse(bad).is_err(), "{bad} accepted");
        }
        let target = UpstreamTarget::parse("http://127.0.0.1:9000/base/").unwrap();
        assert_eq!(
            target.uri_for("/echo?x=1").unwrap().to_string(),
            "http://127.0.0.1:9000/base/echo?x=1"
        );
    }
}
