//! A worker's upstream connections: HTTP/1.1 connections driven directly (one hyper
//! connection task per upstream connection, on the worker's own event loop), kept alive and
//! reused per backend.
//!
//! A connection leaves the pool for one request and comes back when that request's response
//! body has been read to its end (it is then free for the next request); a response body
//! dropped early, a failed request or a timed-out one closes the connection instead, so a
//! connection is never shared by two requests and never reused mid-response. A connection
//! whose response has ended while its request body is still being sent (an upstream may
//! answer first) is skipped until it is free: no request waits on another client's upload.
//! Reuse is last-in first-out (the warmest connection first); connections idle for longer than
//! [`IDLE_TIMEOUT`] are closed when the pool next looks at them, and at most
//! [`MAX_IDLE_PER_BACKEND`] idle connections are kept per backend.
//!
//! A request sent on a kept-alive connection that the upstream closed in the meantime fails
//! before any of it is written; it is then sent again on another connection (it was never
//! seen by the upstream, so this is safe for every method).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use tower_service::Service as _;

use crate::forward::{UpstreamBody, UpstreamConnector, UpstreamTarget};

/// How long an upstream connection may stay idle in the pool.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per backend and worker; more are closed.
pub(crate) const MAX_IDLE_PER_BACKEND: usize = 256;

/// Why an upstream request got no response.
pub(crate) type SendError = Box<dyn std::error::Error + Send + Sync>;

/// One worker's upstream connections, by backend (scheme and authority).
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    connector: UpstreamConnector,
    idle: Mutex<HashMap<Arc<str>, VecDeque<Idle>>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

impl UpstreamPool {
    pub(crate) fn new(connector: UpstreamConnector) -> Arc<Self> {
        Arc::new(Self {
            connector,
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `request` (origin-form URI, `Host` set) to `target` on a kept-alive connection
    /// or a new one.
    pub(crate) async fn send(
        self: &Arc<Self>,
        target: &UpstreamTarget,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<UpstreamResponseBody>, SendError> {
        while let Some(mut sender) = self.checkout(target.pool_key()) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(target, sender, response)),
                Err(mut error) => match error.take_message() {
                    // Never written: the connection was closed under us; try another.
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut sender = Box::pin(self.connect(target)).await?;
        let response = sender.send_request(request).await?;
        Ok(self.wrap(target, sender, response))
    }

    fn wrap(
        self: &Arc<Self>,
        target: &UpstreamTarget,
        sender: SendRequest<UpstreamBody>,
        response: Response<Incoming>,
    ) -> Response<UpstreamResponseBody> {
        response.map(|inner| UpstreamResponseBody {
            inner,
            ended: false,
            reuse: Some(Reuse {
                pool: Arc::clone(self),
                key: Arc::clone(target.pool_key()),
                sender,
            }),
        })
    }

    /// The most recently used connection to `key` that is free for a request now. A connection
    /// whose response is done may still be sending its request body (an upstream may answer
    /// before reading it, and a slow client may trickle it): it stays in the pool, skipped,
    /// rather than making this request wait for the slow client.
    fn checkout(&self, key: &Arc<str>) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = idle.get_mut(&**key)?;
        let now = Instant::now();
        connections.retain(|connection| {
            !connection.sender.is_closed() && now.duration_since(connection.since) < IDLE_TIMEOUT
        });
        let ready = connections
            .iter()
            .rposition(|connection| connection.sender.is_ready())?;
        connections
            .remove(ready)
            .map(|connection| connection.sender)
    }

    fn checkin(&self, key: Arc<str>, sender: SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = idle.entry(key).or_default();
        while connections.front().is_some_and(|oldest| {
            oldest.sender.is_closed() || now.duration_since(oldest.since) >= IDLE_TIMEOUT
        }) {
            connections.pop_front();
        }
        if connections.len() < MAX_IDLE_PER_BACKEND {
            connections.push_back(Idle { sender, since: now });
        }
    }

    /// Opens a connection to `target` and starts its connection task on this thread.
    async fn connect(
        &self,
        target: &UpstreamTarget,
    ) -> Result<SendRequest<UpstreamBody>, SendError> {
        let stream = self.connector.clone().call(target.origin().clone()).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(stream).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A response body from the upstream; its connection goes back to the pool once the body
/// has been read to the end.
pub(crate) struct UpstreamResponseBody {
    inner: Incoming,
    ended: bool,
    reuse: Option<Reuse>,
}

struct Reuse {
    pool: Arc<UpstreamPool>,
    key: Arc<str>,
    sender: SendRequest<UpstreamBody>,
}

impl Drop for UpstreamResponseBody {
    fn drop(&mut self) {
        if (self.ended || hyper::body::Body::is_end_stream(&self.inner))
            && let Some(reuse) = self.reuse.take()
        {
            reuse.pool.checkin(reuse.key, reuse.sender);
        }
    }
}

impl hyper::body::Body for UpstreamResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
