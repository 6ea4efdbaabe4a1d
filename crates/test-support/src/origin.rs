//! An in-process origin server that reflects each request back, for tests behind the gateway.
//!
//! `GET /slow?ms=N` waits N milliseconds before answering (for shutdown and timeout tests);
//! `GET /bytes?n=N` answers N bytes of `x` as `text/plain` (for long downloads);
//! `GET /healthz` answers 200 or 503 as [`ReflectingOrigin::set_healthy`] says; every other
//! request is answered `200` with a JSON body describing what arrived. Dropping the origin
//! closes its listener and every open connection, as a killed backend would.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running reflecting origin; stops when dropped.
#[derive(Debug)]
pub struct ReflectingOrigin {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl ReflectingOrigin {
    /// Starts an origin on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let (counter, health) = (Arc::clone(&requests), Arc::clone(&healthy));
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the accept task aborts them all.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, health) = (Arc::clone(&counter), Arc::clone(&health));
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let healthy = health.load(Ordering::Relaxed);
                        let is_health_check = request.uri().path() == "/healthz";
                        if !is_health_check {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        async move {
                            if is_health_check {
                                let mut response = Response::new(Full::new(Bytes::new()));
                                if !healthy {
                                    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                }
                                return Ok(response);
                            }
                            reflect(request).await
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            requests,
            healthy,
            task,
        })
    }

    /// The origin's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `/healthz` answer 200 (healthy) or 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// How many requests (other than health checks) reached the origin so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// The origin's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ReflectingOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reflect(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/bytes" {
        let size = parts
            .uri
            .query()
            .and_then(|query| query.strip_prefix("n="))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let mut response = Response::new(Full::new(Bytes::from(vec![b'x'; size])));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain"),
        );
        return Ok(response);
    }
    if parts.uri.path() == "/with-headers" {
        // Each `name=value` pair of the query becomes a response header field.
        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
        for pair in parts.uri.query().unwrap_or_default().split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && let (Ok(name), Ok(value)) = (
                    hyper::header::HeaderName::from_bytes(name.as_bytes()),
                    hyper::header::HeaderValue::from_str(value),
                )
            {
                response.headers_mut().append(name, value);
            }
        }
        return Ok(response);
    }
    if parts.uri.path() == "/slow" {
        let millis = parts
            .uri
            .query()
            .and_then(|query| query.strip_prefix("ms="))
            .and_then(|value| value.parse().ok())
            .unwrap_or(100);
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let reflected = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(Full::new(Bytes::from(reflected.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
