//! Forwarding one request to the upstream and the response back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{GatewayError, GatewayErrorKind};
use crate::headers::{ForwardedFor, set_forwarding, strip_hop_by_hop};
use crate::rate::{MinRate, MinRateBody, TooSlow};
use crate::ratelimit::{RateLimiter, Verdict};
use crate::shedding::{LoadShedding, UpstreamGate};
use rampart_origin_lock::{Forwarding, OriginLock};

/// The body type of every response the gateway sends.
pub(crate) type GatewayBody = BoxBody<Bytes, hyper::Error>;

/// Where requests go: scheme, authority and a base path that request paths are appended to.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamTarget {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
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
        Ok(Self {
            scheme,
            authority,
            base_path,
        })
    }

    fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let tail = path_and_query.map_or("/", PathAndQuery::as_str);
        let joined = format!("{}{}", self.base_path, tail);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(joined)
            .build()
    }
}

/// Sends requests upstream over a shared connection pool.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, MinRateBody>,
    target: UpstreamTarget,
    request_timeout: Duration,
    min_body_rate: MinRate,
    rate_limiter: Option<std::sync::Arc<RateLimiter>>,
    origin_lock: Option<std::sync::Arc<OriginLock>>,
    require_edge: Option<std::sync::Arc<OriginLock>>,
    gate: std::sync::Arc<UpstreamGate>,
}

/// Origin-lock settings of a forwarder.
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeLocks {
    /// Sign every upstream request with this lock.
    pub sign: Option<OriginLock>,
    /// Accept only requests that carry a valid record from this (outer) edge.
    pub require: Option<OriginLock>,
}

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

impl Forwarder {
    pub(crate) fn new(
        target: UpstreamTarget,
        request_timeout: Duration,
        min_body_rate: MinRate,
        rate_limiter: Option<RateLimiter>,
        locks: EdgeLocks,
        shedding: LoadShedding,
    ) -> Result<Self, GatewayError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(GatewayErrorKind::UpstreamTls)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self {
            client,
            target,
            request_timeout,
            min_body_rate,
            rate_limiter: rate_limiter.map(std::sync::Arc::new),
            origin_lock: locks.sign.map(std::sync::Arc::new),
            require_edge: locks.require.map(std::sync::Arc::new),
            gate: std::sync::Arc::new(UpstreamGate::new(shedding)),
        })
    }

    /// Forwards one request; every failure becomes a response, never an error.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        connection: ConnectionInfo,
    ) -> Result<Response<GatewayBody>, Infallible> {
        let started = Instant::now();
        let request_id = uuid::Uuid::now_v7().to_string();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = self
            .forward(request, connection, &request_id)
            .await
            .unwrap_or_else(|failure| failure.into_response(&request_id));
        let mut response = response;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        metrics::counter!("rampart_gateway_requests_total", "status" => status_class(status))
            .increment(1);
        metrics::histogram!("rampart_gateway_request_duration_seconds")
            .record(elapsed.as_secs_f64());
        tracing::info!(
            request_id,
            client = %connection.peer.ip(),
            %method,
            path,
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        Ok(response)
    }

    async fn forward(
        &self,
        request: Request<Incoming>,
        connection: ConnectionInfo,
        request_id: &str,
    ) -> Result<Response<GatewayBody>, Failure> {
        if let Some(outer_edge) = &self.require_edge {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", PathAndQuery::as_str);
            if let Err(rejection) = outer_edge.verify(
                request.headers(),
                request.method().as_str(),
                path,
                unix_now(),
            ) {
                tracing::warn!(request_id, client = %connection.peer.ip(), %rejection, "request did not come through the required edge");
                metrics::counter!("rampart_gateway_edge_rejected_total").increment(1);
                return Err(Failure::NotThroughEdge);
            }
        }
        if let Some(limiter) = &self.rate_limiter {
            let key = limiter.key_for(connection.peer.ip(), request.headers());
            if let Verdict::Limit { retry_after } = limiter.check(&key).await {
                return Err(Failure::RateLimited { retry_after });
            }
        }
        let (mut parts, body) = request.into_parts();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|authority| authority.to_string()));
        parts.uri = self
            .target
            .uri_for(parts.uri.path_and_query())
            .map_err(|_| Failure::BadRequest)?;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        set_forwarding(
            &mut parts.headers,
            &ForwardedFor {
                client: connection.peer.ip(),
                proto: if connection.tls { "https" } else { "http" },
                host: host.as_deref(),
                request_id,
            },
        );
        if let Some(host) = host.and_then(|host| HeaderValue::from_str(&host).ok()) {
            parts.headers.insert(header::HOST, host);
        }
        if let Some(lock) = &self.origin_lock {
            let path = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
            lock.sign(
                &mut parts.headers,
                parts.method.as_str(),
                path,
                &Forwarding {
                    timestamp: unix_now(),
                    client: connection.peer.ip().to_string(),
                    request_id: request_id.to_owned(),
                },
            );
        }
        let Some(_slot) = self.gate.enter().await else {
            return Err(Failure::Overloaded);
        };
        let upstream_request =
            Request::from_parts(parts, MinRateBody::new(body, self.min_body_rate));
        let response = match tokio::time::timeout(
            self.request_timeout,
            self.client.request(upstream_request),
        )
        .await
        {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(error)) => {
                if caused_by::<TooSlow>(&error) {
                    tracing::info!(request_id, client = %connection.peer.ip(), "request body too slow");
                    return Err(Failure::TooSlow);
                }
                tracing::warn!(request_id, %error, "upstream request failed");
                return Err(Failure::Unreachable);
            }
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

/// Why a request got no upstream response.
#[derive(Debug, Clone, Copy)]
enum Failure {
    BadRequest,
    Overloaded,
    NotThroughEdge,
    TooSlow,
    RateLimited { retry_after: Duration },
    Unreachable,
    Timeout,
}

impl Failure {
    fn into_response(self, request_id: &str) -> Response<GatewayBody> {
        let (status, code) = match self {
            Self::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::NotThroughEdge => (StatusCode::FORBIDDEN, "edge_required"),
            Self::TooSlow => (StatusCode::REQUEST_TIMEOUT, "request_body_too_slow"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
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
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
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
        let pq: PathAndQuery = "/echo?x=1".parse().unwrap();
        assert_eq!(
            target.uri_for(Some(&pq)).unwrap().to_string(),
            "http://127.0.0.1:9000/base/echo?x=1"
        );
    }
}
