//! A worker's upstream connections: HTTP/1.1 connections kept alive and reused per backend,
//! all on the worker's own event loop.
//!
//! Requests whose body is already complete and at most 64 KiB (most: `GET`, `HEAD`, small
//! bodies the filters buffered, small uploads that arrived with their head) take the direct
//! path: the request's own task writes the request head and body
//! in one write, reads and parses the response head, and the response body reads the rest
//! straight from the connection ([`LeanBody`]). No connection task, no channels between
//! tasks, no wake-ups beyond the socket's own. Requests with a body still streaming in
//! from the client go over a hyper HTTP/1.1 client connection driven by a task of its own,
//! which can send the body while the response already comes back.
//!
//! A connection leaves the pool for one request and comes back when that request's response
//! body has been read to its end (it is then free for the next request); a response body
//! dropped early, a failed request or a timed-out one closes the connection instead, so a
//! connection is never shared by two requests and never reused mid-response. A hyper
//! connection whose response has ended while its request body is still being sent (an
//! upstream may answer first) is skipped until it is free: no request waits on another
//! client's upload. Reuse is last-in first-out (the warmest connection first); connections
//! idle for longer than [`IDLE_TIMEOUT`] are closed when the pool next looks at them, and at
//! most [`MAX_IDLE_PER_BACKEND`] idle connections of each kind are kept per backend.
//!
//! A request sent on a kept-alive connection that the upstream closed in the meantime fails
//! before any of it is written (a hyper connection notices the close; a direct connection is
//! checked for one, without waiting, before use); it is then sent again on another
//! connection. On the direct path, a reused connection that fails the write or ends before
//! the first byte of the response (the upstream closed it as the request went out) gets the
//! request again on a new connection when its method is idempotent.

use std::collections::{HashMap, VecDeque};
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_service::Service as _;

use crate::forward::{UpstreamBody, UpstreamConnector, UpstreamTarget};
use crate::headers::ForwardingFields;
use crate::raw_fields::{FieldKind, RawFields};

/// How long an upstream connection may stay idle in the pool.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per backend and worker; more are closed.
pub(crate) const MAX_IDLE_PER_BACKEND: usize = 256;

/// Largest upstream response head (status line and headers), and most headers in it.
const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;
const MAX_RESPONSE_HEADERS: usize = 100;

/// Longest chunk-size line (with extensions) in a chunked response body.
const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// Why an upstream request got no response, or a response body broke off.
pub(crate) type SendError = Box<dyn std::error::Error + Send + Sync>;

/// An upstream connection as the connector makes it (plain TCP or TLS), with tokio's I/O
/// traits.
type UpstreamIo = TokioIo<<UpstreamConnector as tower_service::Service<http::Uri>>::Response>;

/// A direct connection's socket: plain TCP read and written as it is (not through the
/// connector's adapters between hyper's and tokio's I/O traits), or the connector's TLS
/// stream, boxed (its state is large).
enum DirectIo {
    Plain(tokio::net::TcpStream),
    Tls(Box<UpstreamIo>),
}

impl DirectIo {
    fn new(stream: <UpstreamConnector as tower_service::Service<http::Uri>>::Response) -> Self {
        match stream {
            hyper_rustls::MaybeHttpsStream::Http(plain) => Self::Plain(plain.into_inner()),
            tls => Self::Tls(Box::new(TokioIo::new(tls))),
        }
    }
}

impl tokio::io::AsyncRead for DirectIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for DirectIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One worker's upstream connections, by backend (scheme and authority).
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    connector: UpstreamConnector,
    idle: Mutex<HashMap<Arc<str>, VecDeque<Idle>>>,
    /// Idle direct connections by backend: a short list (a worker talks to few backends),
    /// searched by pointer first, rather than a hash of the key per request.
    direct: Mutex<Vec<(Arc<str>, VecDeque<DirectIdle>)>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

struct DirectIdle {
    connection: Box<DirectConnection>,
    since: Instant,
}

impl std::fmt::Debug for DirectIdle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DirectIdle")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// An upstream connection the request's own task reads and writes. Boxed where it is
/// kept: requests move it around.
struct DirectConnection {
    io: DirectIo,
    /// Bytes read from the upstream and not yet consumed.
    buf: BytesMut,
    /// The current request's deadline, one timer for the connection's life: moving a
    /// registered timer's deadline later is one atomic store, while a timer per request
    /// takes the timer wheel's lock to register and again to deregister.
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Where each field of the last response head lay: kept to be reused, not allocated
    /// for every response.
    spans: Vec<FieldSpan>,
    /// The last response's end-to-end fields as they came, when they were kept raw.
    raw: RawFields,
}

/// Where a header field lies in a head: name offset and length, value offset and length.
type FieldSpan = (usize, usize, usize, usize);

/// An upstream failure on the direct path.
#[derive(Debug, thiserror::Error)]
enum DirectError {
    #[error("upstream connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("upstream closed the connection before a complete response")]
    Closed,
    #[error("malformed upstream response: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    TimedOut(#[from] UpstreamTimedOut),
}

/// The upstream did not answer (response head) by the route's deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("upstream did not answer within the route's timeout")]
pub(crate) struct UpstreamTimedOut;

/// `future`, or [`UpstreamTimedOut`] once `deadline` passes.
async fn by_deadline<T>(
    deadline: tokio::time::Instant,
    future: impl std::future::Future<Output = Result<T, SendError>>,
) -> Result<T, SendError> {
    tokio::time::timeout_at(deadline, future)
        .await
        .unwrap_or_else(|_| Err(Box::new(UpstreamTimedOut)))
}

impl UpstreamPool {
    pub(crate) fn new(connector: UpstreamConnector) -> Arc<Self> {
        Arc::new(Self {
            connector,
            idle: Mutex::new(HashMap::new()),
            direct: Mutex::new(Vec::new()),
        })
    }

    /// Sends a request with `head` and `body` to `target` on a kept-alive connection or a
    /// new one.
    /// Fails with [`UpstreamTimedOut`] when the response head has not come by `deadline`.
    ///
    /// A plain function returning the future rather than an `async fn`: an `async fn` keeps
    /// a second copy of each argument in its future, and this one is made for every request.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of each argument in its future"
    )]
    pub(crate) fn send<'a>(
        self: &'a Arc<Self>,
        target: &'a UpstreamTarget,
        head: OutgoingHead<'a>,
        body: UpstreamBody,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Response<UpstreamResponseBody>, SendError>> + 'a
    {
        async move {
            let body = if body.is_complete() {
                body
            } else {
                by_deadline(deadline, Box::pin(body.gather())).await?
            };
            if body.is_complete()
                && hyper::body::Body::size_hint(&body).lower() <= DIRECT_BODY_LIMIT
            {
                let message = encode_request(&head, body.into_complete());
                let idempotent = crate::forward::is_idempotent(head.method);
                let head_only = *head.method == Method::HEAD;
                return self
                    .send_direct(target, message, idempotent, head_only, deadline)
                    .await;
            }
            let request = head.to_request(body);
            by_deadline(deadline, Box::pin(self.send_streaming(target, request))).await
        }
    }

    /// A request whose body is all here (`message`, encoded): written and answered on a
    /// direct connection.
    async fn send_direct(
        self: &Arc<Self>,
        target: &UpstreamTarget,
        message: Vec<u8>,
        idempotent: bool,
        head_only: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Response<UpstreamResponseBody>, SendError> {
        while let Some(mut connection) = self.checkout_direct(target.pool_key()) {
            match connection.exchange(&message, head_only, deadline).await {
                Ok(head) => return Ok(self.direct_response(target, connection, head)),
                // The upstream closed the kept-alive connection as the request went out (the
                // write failed, or it ended before any of the response): another connection,
                // when sending the request twice cannot do harm.
                Err((DirectError::Io(_) | DirectError::Closed, false)) if idempotent => {}
                Err((error, _)) => return Err(error.into()),
            }
        }
        let mut connection =
            by_deadline(deadline, Box::pin(self.connect_direct(target, deadline))).await?;
        match connection.exchange(&message, head_only, deadline).await {
            Ok(head) => Ok(self.direct_response(target, connection, head)),
            Err((error, _)) => Err(error.into()),
        }
    }

    fn direct_response(
        self: &Arc<Self>,
        target: &UpstreamTarget,
        connection: Box<DirectConnection>,
        head: ResponseHead,
    ) -> Response<UpstreamResponseBody> {
        let (headers, raw_kept) = match head.fields {
            ResponseFields::Raw => (HeaderMap::new(), true),
            ResponseFields::Map(map) => (map, false),
        };
        let mut response = Response::new(UpstreamResponseBody::Direct(DirectBody {
            connection: Some(connection),
            framing: head.framing,
            reusable: head.reusable,
            trailers: None,
            reuse: Some((Arc::clone(self), Arc::clone(target.pool_key()))),
            raw_kept,
        }));
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = headers;
        response
    }

    /// A request whose body is still coming from the client: sent over a hyper client
    /// connection, whose task sends the body while the response may already come back.
    async fn send_streaming(
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
        response.map(|inner| {
            UpstreamResponseBody::Streamed(StreamedBody {
                inner,
                ended: false,
                reuse: Some(Reuse {
                    pool: Arc::clone(self),
                    key: Arc::clone(target.pool_key()),
                    sender,
                }),
            })
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

    /// The most recently used direct connection to `key` that is still open (as far as the
    /// socket tells without waiting).
    fn checkout_direct(&self, key: &Arc<str>) -> Option<Box<DirectConnection>> {
        let mut idle = self.direct.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = direct_list(&mut idle, key)?;
        let now = Instant::now();
        while let Some(mut candidate) = connections.pop_back() {
            if now.duration_since(candidate.since) < IDLE_TIMEOUT
                && candidate.connection.still_open()
            {
                return Some(candidate.connection);
            }
        }
        None
    }

    fn checkin_direct(&self, key: Arc<str>, connection: Box<DirectConnection>) {
        let now = Instant::now();
        let mut idle = self.direct.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = match direct_list(&mut idle, &key) {
            Some(connections) => connections,
            None => {
                idle.push((key, VecDeque::new()));
                match idle.last_mut() {
                    Some((_, connections)) => connections,
                    None => return,
                }
            }
        };
        while connections
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= IDLE_TIMEOUT)
        {
            connections.pop_front();
        }
        if connections.len() < MAX_IDLE_PER_BACKEND {
            connections.push_back(DirectIdle {
                connection,
                since: now,
            });
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

    /// Opens a direct connection to `target`.
    async fn connect_direct(
        &self,
        target: &UpstreamTarget,
        deadline: tokio::time::Instant,
    ) -> Result<Box<DirectConnection>, SendError> {
        let stream = self.connector.clone().call(target.origin().clone()).await?;
        Ok(Box::new(DirectConnection {
            io: DirectIo::new(stream),
            buf: BytesMut::with_capacity(READ_CHUNK),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            spans: Vec::new(),
            raw: RawFields::default(),
        }))
    }
}

/// The idle direct connections to `key`, if the list has any entry for it.
fn direct_list<'a>(
    lists: &'a mut [(Arc<str>, VecDeque<DirectIdle>)],
    key: &Arc<str>,
) -> Option<&'a mut VecDeque<DirectIdle>> {
    lists
        .iter_mut()
        .find(|(listed, _)| Arc::ptr_eq(listed, key) || **listed == **key)
        .map(|(_, connections)| connections)
}

/// Largest complete body sent on the direct path; larger ones go over a hyper connection,
/// which reads an early response (say, 413) while it is still writing the body.
const DIRECT_BODY_LIMIT: u64 = 64 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// What goes upstream ahead of a request's body, borrowed from the forwarder: its fields
/// are not copied into a request of their own (a request may go to a second backend).
pub(crate) struct OutgoingHead<'a> {
    pub method: &'a Method,
    /// Origin-form: the backend's path.
    pub uri: &'a http::Uri,
    /// The client's end-to-end fields (hop-by-hop ones and the forwarding ones taken out).
    pub headers: &'a HeaderMap,
    /// `Host` to send ahead of `headers`: given only when they have none.
    pub host: Option<&'a HeaderValue>,
    pub forwarding: &'a ForwardingFields<'a>,
}

impl OutgoingHead<'_> {
    /// A request of its own, for a hyper client connection.
    fn to_request(&self, body: UpstreamBody) -> Request<UpstreamBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        headers.clone_from(self.headers);
        if let Some(host) = self.host {
            headers.insert(header::HOST, host.clone());
        }
        self.forwarding.apply_to(headers);
        request
    }
}

/// The serialized request: head (the request's fields, then the forwarding fields) and body
/// in one buffer, written with one write.
fn encode_request(head: &OutgoingHead<'_>, body: Bytes) -> Vec<u8> {
    let path = head
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let host = head.host;
    let mut size = head.method.as_str().len()
        + path.len()
        + 32
        + head.forwarding.encoded_len()
        + body.len()
        + host.map_or(0, |host| host.len() + 8);
    for (name, value) in head.headers {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut had_length = false;
    for (name, value) in head.headers {
        // The body is framed here, by its actual length.
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    head.forwarding.write_to(&mut out);
    if had_length || !body.is_empty() {
        out.extend_from_slice(b"content-length: ");
        crate::h1::push_decimal(&mut out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// A parsed upstream response head and how its body is framed.
struct ResponseHead {
    status: StatusCode,
    version: Version,
    fields: ResponseFields,
    framing: Framing,
    /// Whether the connection may carry another request once this response is read.
    reusable: bool,
}

/// Where a response head's end-to-end fields are: kept as the upstream sent them (in the
/// connection's [`RawFields`]) when they are few and plain, else in a map.
enum ResponseFields {
    Raw,
    Map(HeaderMap),
}

impl ResponseFields {
    /// The fields as a map, built from `raw` if they were kept there.
    fn into_map(self, raw: &RawFields) -> HeaderMap {
        match self {
            Self::Map(map) => map,
            Self::Raw => {
                let mut map = HeaderMap::new();
                raw.append_to(&mut map);
                map
            }
        }
    }
}

/// How a response body ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked transfer coding, at this point of the decoding.
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    UntilClose,
    /// Read to its end.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Expecting the trailer section after the last chunk.
    Trailers,
}

impl DirectConnection {
    /// Whether the idle connection is still usable: the upstream has neither closed it nor
    /// sent anything unasked. Does not wait: the socket's readiness says.
    fn still_open(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(self.poll_fill(&mut cx), Poll::Pending)
    }

    /// Reads more of the upstream's bytes into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        poll_fill(&mut self.io, &mut self.buf, cx)
    }

    /// Writes the request and reads the response head, by `deadline`. On failure, also
    /// whether any of the response had arrived (a connection that ends before that may
    /// simply have been closed by the upstream while idle).
    async fn exchange(
        &mut self,
        message: &[u8],
        head_only: bool,
        deadline: tokio::time::Instant,
    ) -> Result<ResponseHead, (DirectError, bool)> {
        let Self {
            io,
            buf,
            deadline: timer,
            spans,
            raw,
        } = self;
        timer.as_mut().reset(deadline);
        let exchange = async {
            if let Err(error) = io.write_all(message).await {
                return Err((error.into(), false));
            }
            if let Err(error) = io.flush().await {
                return Err((error.into(), false));
            }
            loop {
                match parse_response_head(buf, head_only, spans, raw) {
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(error) => return Err((error, true)),
                }
                let answered = !buf.is_empty();
                match std::future::poll_fn(|cx| poll_fill(io, buf, cx)).await {
                    Ok(0) => return Err((DirectError::Closed, answered)),
                    Ok(_) => {}
                    Err(error) => return Err((error.into(), answered)),
                }
            }
        };
        tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = timer.as_mut() => Err((UpstreamTimedOut.into(), true)),
        }
    }
}

/// Reads more of the upstream's bytes into `buf`; `Ok(0)` at the end of the stream.
fn poll_fill(
    io: &mut DirectIo,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    let read = io.read_buf(buf);
    std::pin::pin!(read).poll(cx)
}

/// Parses a response head at the start of `buf` and removes it from there: `None` while it
/// is incomplete. Interim (1xx) responses are skipped.
fn parse_response_head(
    buf: &mut BytesMut,
    head_only: bool,
    spans: &mut Vec<FieldSpan>,
    raw: &mut RawFields,
) -> Result<Option<ResponseHead>, DirectError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() };
            MAX_RESPONSE_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let length = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD_BYTES => {
                return Ok(None);
            }
            Ok(httparse::Status::Partial) => {
                return Err(DirectError::Malformed("response head too large"));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(DirectError::Malformed("too many response headers"));
            }
            Err(_) => return Err(DirectError::Malformed("invalid response head")),
        };
        let code = parsed.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| DirectError::Malformed("invalid status"))?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where each name and value lies in the head, so that the values can share its
        // bytes rather than be copied.
        let base = buf.as_ptr() as usize;
        spans.clear();
        spans.extend(parsed.headers.iter().map(|header| {
            let name = header.name.as_ptr() as usize - base;
            let value = header.value.as_ptr() as usize - base;
            (name, header.name.len(), value, header.value.len())
        }));
        let head = buf.split_to(length).freeze();
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(DirectError::Malformed("unexpected protocol switch"));
            }
            continue;
        }
        // The framing fields first; then the rest is kept as it came when it can be (few
        // fields, nothing that needs taking out afterwards), else put in a map.
        let mut fields = FramingFields::default();
        raw.reset(head.clone());
        let mut raw_kept = true;
        for &(name, name_len, value, value_len) in spans.iter() {
            let (Some(name_bytes), Some(value_bytes)) = (
                head.get(name..name + name_len),
                head.get(value..value + value_len),
            ) else {
                return Err(DirectError::Malformed("invalid header field"));
            };
            let kind = FieldKind::of(name_bytes);
            fields.note(kind, value_bytes);
            if !kind.is_hop_by_hop() && raw_kept {
                raw_kept = raw.push((name, name_len), (value, value_len), kind);
            }
        }
        let (framing, mut reusable) = fields.framing(status, head_only)?;
        reusable &= fields.keeps_alive(version);
        let both_framings = fields.transfer_encoding.is_some() && fields.content_length.is_some();
        if both_framings {
            // Both framings in one message hint at response splitting (RFC 9112 section
            // 6.3): Transfer-Encoding decides, the Content-Length is not forwarded, and the
            // connection is not trusted with another request.
            reusable = false;
        }
        let fields = if raw_kept && !fields.connection_names_others && !both_framings {
            ResponseFields::Raw
        } else {
            ResponseFields::Map(fields_map(&head, spans, &fields, both_framings)?)
        };
        return Ok(Some(ResponseHead {
            status,
            version,
            fields,
            framing,
            reusable,
        }));
    }
}

/// The end-to-end fields of a head as a map: hop-by-hop fields, the ones `Connection`
/// names, and a `Content-Length` beside a `Transfer-Encoding` left out.
fn fields_map(
    head: &Bytes,
    spans: &[FieldSpan],
    fields: &FramingFields,
    both_framings: bool,
) -> Result<HeaderMap, DirectError> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(name, name_len, value, value_len) in spans {
        let name_bytes = head
            .get(name..name + name_len)
            .ok_or(DirectError::Malformed("invalid header name"))?;
        // Hop-by-hop fields are for this connection only: never forwarded.
        if FieldKind::of(name_bytes).is_hop_by_hop() {
            continue;
        }
        let name = crate::headers::field_name(name_bytes)
            .ok_or(DirectError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|_| DirectError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }
    if fields.connection_names_others {
        // The fields `Connection` names are hop-by-hop too (RFC 9110 section 7.6.1).
        for &(name, name_len, value, value_len) in spans {
            let is_connection = head
                .get(name..name + name_len)
                .is_some_and(|name| FieldKind::of(name) == FieldKind::Connection);
            if is_connection && let Some(value) = head.get(value..value + value_len) {
                crate::headers::remove_connection_named(&mut headers, value);
            }
        }
    }
    if both_framings {
        headers.remove(header::CONTENT_LENGTH);
    }
    Ok(headers)
}

/// What the framing rules (RFC 9112 section 6.3) need from a response's header fields,
/// gathered as they are read.
#[derive(Debug, Default)]
struct FramingFields {
    /// The last `Transfer-Encoding` field's value.
    transfer_encoding: Option<Vec<u8>>,
    /// The length all `Content-Length` values agree on, or why they do not.
    content_length: Option<Result<u64, &'static str>>,
    /// `Connection` tokens.
    close: bool,
    keep_alive: bool,
    /// Whether `Connection` names fields (any token but `close` and `keep-alive`).
    connection_names_others: bool,
}

impl FramingFields {
    fn note(&mut self, kind: FieldKind, value: &[u8]) {
        match kind {
            FieldKind::TransferEncoding => self.transfer_encoding = Some(value.to_vec()),
            FieldKind::ContentLength => {
                if let Some(Err(_)) = self.content_length {
                    return;
                }
                let seen = self.content_length.and_then(Result::ok);
                self.content_length = Some(content_length(value, seen));
            }
            FieldKind::Connection => {
                for token in value.split(|&byte| byte == b',') {
                    let token = token.trim_ascii();
                    let close = token.eq_ignore_ascii_case(b"close");
                    let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                    self.close |= close;
                    self.keep_alive |= keep_alive;
                    self.connection_names_others |= !close && !keep_alive && !token.is_empty();
                }
            }
            FieldKind::Other | FieldKind::Date | FieldKind::HopByHop => {}
        }
    }

    /// How the body is framed, and whether the connection can be reused after it.
    fn framing(&self, status: StatusCode, head_only: bool) -> Result<(Framing, bool), DirectError> {
        if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Ok((Framing::Length(0), true));
        }
        if let Some(coding) = &self.transfer_encoding {
            // Transfer-Encoding overrides any Content-Length; a coding that does not end in
            // chunked leaves the end to the connection's close.
            let chunked = coding
                .rsplit(|&byte| byte == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            return Ok(if chunked {
                (Framing::Chunked(Chunk::Size), true)
            } else {
                (Framing::UntilClose, false)
            });
        }
        match self.content_length {
            Some(Ok(length)) => Ok((Framing::Length(length), true)),
            Some(Err(reason)) => Err(DirectError::Malformed(reason)),
            None => Ok((Framing::UntilClose, false)),
        }
    }

    /// Whether the upstream keeps the connection open after this response.
    fn keeps_alive(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.keep_alive
        } else {
            !self.close
        }
    }
}

/// The length one `Content-Length` field gives (a list of equal lengths is one length),
/// checked against the length earlier fields gave.
fn content_length(value: &[u8], seen: Option<u64>) -> Result<u64, &'static str> {
    let mut length = seen;
    for part in value.split(|&byte| byte == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err("invalid content-length");
        }
        let parsed = part
            .iter()
            .try_fold(0u64, |length, &digit| {
                length.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })
            .ok_or("invalid content-length")?;
        if length.is_some_and(|seen| seen != parsed) {
            return Err("conflicting content-length");
        }
        length = Some(parsed);
    }
    length.ok_or("invalid content-length")
}

/// A response body from the upstream; its connection goes back to the pool once the body
/// has been read to the end.
pub(crate) enum UpstreamResponseBody {
    /// Read straight from a direct connection.
    Direct(DirectBody),
    /// From a hyper client connection.
    Streamed(StreamedBody),
}

impl UpstreamResponseBody {
    /// The response's fields kept as the upstream sent them, if they were (read before the
    /// body: the connection goes back to the pool once the body is read).
    pub(crate) fn raw_fields(&self) -> Option<&RawFields> {
        match self {
            Self::Direct(DirectBody {
                raw_kept: true,
                connection: Some(connection),
                ..
            }) => Some(&connection.raw),
            _ => None,
        }
    }

    /// The raw fields, to set some over the upstream's.
    pub(crate) fn raw_fields_mut(&mut self) -> Option<&mut RawFields> {
        match self {
            Self::Direct(DirectBody {
                raw_kept: true,
                connection: Some(connection),
                ..
            }) => Some(&mut connection.raw),
            _ => None,
        }
    }

    /// Moves the raw fields, if any, into `map` (for whatever needs them there: filters,
    /// hyper's connections).
    pub(crate) fn raw_fields_into(&mut self, map: &mut HeaderMap) {
        if let Some(raw) = self.raw_fields() {
            raw.append_to(map);
        }
        if let Self::Direct(body) = self {
            body.raw_kept = false;
        }
    }
}

impl hyper::body::Body for UpstreamResponseBody {
    type Data = Bytes;
    type Error = SendError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        match self.get_mut() {
            Self::Direct(body) => body.poll_next(cx),
            Self::Streamed(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(SendError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Direct(body) => {
                body.framing == Framing::Done || body.framing == Framing::Length(0)
            }
            Self::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Direct(body) => match body.framing {
                Framing::Length(left) => hyper::body::SizeHint::with_exact(left),
                Framing::Done => hyper::body::SizeHint::with_exact(0),
                Framing::Chunked(_) | Framing::UntilClose => hyper::body::SizeHint::default(),
            },
            Self::Streamed(body) => body.size_hint(),
        }
    }
}

/// A response body read from a direct connection.
pub(crate) struct DirectBody {
    connection: Option<Box<DirectConnection>>,
    framing: Framing,
    reusable: bool,
    /// Boxed: trailers are rare, and the body is moved with every response.
    trailers: Option<Box<HeaderMap>>,
    reuse: Option<(Arc<UpstreamPool>, Arc<str>)>,
    /// Whether the response's fields are the connection's raw fields (the response's own
    /// map then holds only what the gateway set; see [`UpstreamResponseBody::raw_fields`]).
    raw_kept: bool,
}

impl DirectBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        loop {
            if let Some(trailers) = self.trailers.take() {
                return Poll::Ready(Some(Ok(Frame::trailers(*trailers))));
            }
            let Some(connection) = self.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match next_step(&mut self.framing, &mut connection.buf) {
                Ok(Step::Data(data)) => {
                    if self.framing == Framing::Length(0) {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Trailers(trailers)) => {
                    self.trailers = Some(Box::new(trailers));
                    continue;
                }
                Ok(Step::Progressed) => continue,
                Ok(Step::End) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(error) => return self.fail(error),
            }
            // Nothing buffered to hand out: read more.
            let Some(connection) = self.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(connection.poll_fill(cx)) {
                Ok(0) if self.framing == Framing::UntilClose => {
                    self.framing = Framing::Done;
                    self.reusable = false;
                    self.connection = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return self.fail(DirectError::Closed),
                Ok(_) => {}
                Err(error) => return self.fail(error.into()),
            }
        }
    }

    fn fail(&mut self, error: DirectError) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        self.connection = None;
        self.reuse = None;
        Poll::Ready(Some(Err(error.into())))
    }

    /// The body has been read to its end: the connection goes back to the pool if it can
    /// carry another request (nothing unread left over, and the upstream keeps it open).
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(connection) = self.connection.take()
            && self.reusable
            && connection.buf.is_empty()
            && let Some((pool, key)) = self.reuse.take()
        {
            pool.checkin_direct(key, connection);
        }
    }
}

impl Drop for DirectBody {
    fn drop(&mut self) {
        // A body that was fully buffered is complete even if nobody asked for its end.
        if self.framing == Framing::Length(0) {
            self.finish();
        }
    }
}

/// What the buffered bytes of a response body give next (see [`next_step`]).
enum Step {
    /// Body data.
    Data(Bytes),
    /// The trailer section after the last chunk.
    Trailers(HeaderMap),
    /// The framing moved on without data: ask again.
    Progressed,
    /// The body has ended.
    End,
    /// Nothing more can be decoded from what is buffered: read more.
    NeedMore,
}

/// Takes the next piece of a response body out of `buf` by its `framing`, moving the
/// framing on: the one decoding step the direct path and [`decode_upstream_response`] share.
fn next_step(framing: &mut Framing, buf: &mut BytesMut) -> Result<Step, DirectError> {
    match *framing {
        Framing::Done | Framing::Length(0) => Ok(Step::End),
        Framing::Length(left) if !buf.is_empty() => {
            let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            *framing = Framing::Length(left - take as u64);
            Ok(Step::Data(buf.split_to(take).freeze()))
        }
        Framing::UntilClose if !buf.is_empty() => Ok(Step::Data(buf.split().freeze())),
        Framing::Chunked(state) => {
            let (next, data) = decode_chunked(buf, state)?;
            let progressed = next != *framing || data.is_some();
            *framing = next;
            if let Some(data) = data {
                return Ok(Step::Data(data));
            }
            if next == Framing::Done
                && let Ok(Some(trailers)) = take_trailers(buf)
            {
                return Ok(Step::Trailers(trailers));
            }
            Ok(if progressed {
                Step::Progressed
            } else {
                Step::NeedMore
            })
        }
        Framing::Length(_) | Framing::UntilClose => Ok(Step::NeedMore),
    }
}

/// Decodes what `buf` holds of a chunked body from `state`: the next state and any data.
/// The trailer section is left in `buf` for [`take_trailers`] once the state is `Done`.
fn decode_chunked(
    buf: &mut BytesMut,
    state: Chunk,
) -> Result<(Framing, Option<Bytes>), DirectError> {
    match state {
        Chunk::Size => {
            let Some(end) = buf.windows(2).position(|pair| pair == b"\r\n") else {
                if buf.len() > MAX_CHUNK_LINE_BYTES {
                    return Err(DirectError::Malformed("chunk size line too long"));
                }
                return Ok((Framing::Chunked(state), None));
            };
            let line = buf.get(..end).unwrap_or_default();
            let digits = line
                .split(|&byte| byte == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if digits.is_empty() || digits.len() > 15 {
                return Err(DirectError::Malformed("invalid chunk size"));
            }
            let mut size = 0u64;
            for &digit in digits {
                let value = char::from(digit)
                    .to_digit(16)
                    .ok_or(DirectError::Malformed("invalid chunk size"))?;
                size = size * 16 + u64::from(value);
            }
            buf.advance(end + 2);
            Ok((
                Framing::Chunked(if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                }),
                None,
            ))
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok((Framing::Chunked(state), None));
            }
            let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let data = buf.split_to(take).freeze();
            let left = left - take as u64;
            let next = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Ok((Framing::Chunked(next), Some(data)))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok((Framing::Chunked(state), None));
            }
            if buf.get(..2) != Some(b"\r\n") {
                return Err(DirectError::Malformed("chunk data not followed by CRLF"));
            }
            buf.advance(2);
            Ok((Framing::Chunked(Chunk::Size), None))
        }
        Chunk::Trailers => {
            let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
            match httparse::parse_headers(buf, &mut slots) {
                Ok(httparse::Status::Complete(_)) => Ok((Framing::Done, None)),
                Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD_BYTES => {
                    Ok((Framing::Chunked(state), None))
                }
                _ => Err(DirectError::Malformed("invalid trailer section")),
            }
        }
    }
}

/// Removes the (complete) trailer section from the start of `buf`; the trailers, if any.
fn take_trailers(buf: &mut BytesMut) -> Result<Option<HeaderMap>, DirectError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let Ok(httparse::Status::Complete((length, fields))) = httparse::parse_headers(buf, &mut slots)
    else {
        return Err(DirectError::Malformed("invalid trailer section"));
    };
    let mut trailers = HeaderMap::new();
    for field in fields {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) {
            trailers.append(name, value);
        }
    }
    buf.advance(length);
    Ok((!trailers.is_empty()).then_some(trailers))
}

/// A response body from a hyper client connection; its connection goes back to the pool
/// once the body has been read to the end.
pub(crate) struct StreamedBody {
    inner: Incoming,
    ended: bool,
    reuse: Option<Reuse>,
}

struct Reuse {
    pool: Arc<UpstreamPool>,
    key: Arc<str>,
    sender: SendRequest<UpstreamBody>,
}

impl Drop for StreamedBody {
    fn drop(&mut self) {
        if (self.ended || hyper::body::Body::is_end_stream(&self.inner))
            && let Some(reuse) = self.reuse.take()
        {
            reuse.pool.checkin(reuse.key, reuse.sender);
        }
    }
}

impl hyper::body::Body for StreamedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
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

/// What [`decode_upstream_response`] read: the final status, the body's bytes, whether
/// trailers came, and whether the connection could carry another request.
#[doc(hidden)]
#[derive(Debug)]
pub struct DecodedResponse {
    pub status: u16,
    /// End-to-end header fields, as the response's map would hold them.
    pub fields: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: bool,
    pub reusable: bool,
}

/// Reads one upstream response from `wire` as the direct upstream path does (head, 1xx
/// skipped, then the body by its framing), the bytes arriving in pieces of `piece` bytes;
/// the end of `wire` is the upstream closing the connection. For the fuzz target and tests:
/// any input must give a response or an error, never a panic.
#[doc(hidden)]
pub fn decode_upstream_response(
    wire: &[u8],
    piece: usize,
    head_only: bool,
) -> Result<DecodedResponse, String> {
    let piece = piece.max(1);
    let mut pieces = wire.chunks(piece);
    let mut buf = BytesMut::new();
    let mut spans = Vec::new();
    let mut raw = RawFields::default();
    let head = loop {
        if let Some(head) = parse_response_head(&mut buf, head_only, &mut spans, &mut raw)
            .map_err(|e| e.to_string())?
        {
            break head;
        }
        let next = pieces.next().ok_or("closed before a complete head")?;
        buf.extend_from_slice(next);
    };
    let mut framing = head.framing;
    let mut decoded = DecodedResponse {
        status: head.status.as_u16(),
        fields: head
            .fields
            .into_map(&raw)
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
        trailers: false,
        reusable: head.reusable,
    };
    loop {
        match next_step(&mut framing, &mut buf).map_err(|e| e.to_string())? {
            Step::Data(data) => {
                decoded.body.extend_from_slice(&data);
                continue;
            }
            Step::Trailers(_) => {
                decoded.trailers = true;
                continue;
            }
            Step::Progressed => continue,
            Step::End => {
                decoded.reusable &= buf.is_empty();
                return Ok(decoded);
            }
            Step::NeedMore => {}
        }
        match pieces.next() {
            Some(next) => buf.extend_from_slice(next),
            None if framing == Framing::UntilClose => {
                decoded.reusable = false;
                return Ok(decoded);
            }
            None => return Err("closed before the end of the body".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parsed head, its fields in a map whichever way they were kept.
    fn head(bytes: &[u8], head_only: bool) -> Result<Option<ResponseHead>, DirectError> {
        let mut buf = BytesMut::from(bytes);
        let mut raw = RawFields::default();
        let parsed = parse_response_head(&mut buf, head_only, &mut Vec::new(), &mut raw)?;
        Ok(parsed.map(|mut head| {
            head.fields = ResponseFields::Map(head.fields.into_map(&raw));
            head
        }))
    }

    /// The fields a head kept raw (`None` when it needed a map), as `name: value` lines.
    fn raw_kept(bytes: &[u8]) -> Option<Vec<String>> {
        let mut buf = BytesMut::from(bytes);
        let mut raw = RawFields::default();
        let parsed = parse_response_head(&mut buf, false, &mut Vec::new(), &mut raw)
            .unwrap()
            .unwrap();
        matches!(parsed.fields, ResponseFields::Raw).then(|| {
            raw.iter()
                .map(|(name, value, _)| {
                    format!(
                        "{}: {}",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(value)
                    )
                })
                .collect()
        })
    }

    impl ResponseFields {
        fn map(&self) -> HeaderMap {
            match self {
                Self::Map(map) => map.clone(),
                Self::Raw => panic!("the test helper puts the fields in a map"),
            }
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let parsed = head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.framing, Framing::Length(5));
        assert!(parsed.reusable);
        let parsed = head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(parsed.framing, Framing::Chunked(Chunk::Size));
        assert!(
            !parsed.reusable,
            "a response with both framings closes the connection"
        );
        assert!(parsed.fields.map().get(header::CONTENT_LENGTH).is_none());
        let parsed = head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(parsed.reusable);
        let parsed = head(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(parsed.framing, Framing::UntilClose);
        assert!(!parsed.reusable);
        let parsed = head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.framing, Framing::Length(0));
        let parsed = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!parsed.reusable);
        let parsed = head(b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!parsed.reusable);
        assert!(
            head(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(head(b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", false).is_err());
        // A list of one length is that length; the largest u64 is a length, one more is not.
        let listed = head(b"HTTP/1.1 200 OK\r\ncontent-length: 7 , 7\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(listed.framing, Framing::Length(7));
        let largest = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(largest.framing, Framing::Length(u64::MAX));
        for invalid in [&b"18446744073709551616"[..], b"1 2", b"+5", b"5,", b""] {
            let mut response = b"HTTP/1.1 200 OK\r\ncontent-length: ".to_vec();
            response.extend_from_slice(invalid);
            response.extend_from_slice(b"\r\n\r\n");
            assert!(head(&response, false).is_err(), "{invalid:?}");
        }
        assert!(
            head(b"HTTP/1.1 200 OK\r\ncontent-le", false)
                .unwrap()
                .is_none()
        );
    }

    /// Whole responses read the same whatever pieces they arrive in; and thousands of
    /// mutated responses give a response or an error, never a panic (the fuzz target
    /// `upstream_response` runs the same entry point for longer).
    #[test]
    fn upstream_responses_decode_in_any_pieces_and_never_panic() {
        let samples: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 103 Early\r\n\r\nHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nx-sum: 1\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ];
        let wants: [(&[u8], bool); 4] = [
            (b"hello", false),
            (b"hello!", true),
            (b"until close", false),
            (b"", false),
        ];
        for (wire, (body, trailers)) in samples.iter().zip(wants) {
            for piece in [1, 2, 7, wire.len()] {
                let decoded = decode_upstream_response(wire, piece, false).unwrap();
                assert_eq!(decoded.body, body, "piece {piece}");
                assert_eq!(decoded.trailers, trailers);
            }
        }
        let mut mutator = crate::mutation::Mutator::new(0x9e37_79b9_7f4a_7c15_u64);
        for round in 0..4000 {
            let wire = mutator.mutate(samples[round % samples.len()], b"0123456789abcdef\r\n;: -");
            let piece = (mutator.next() % 9) as usize;
            if let Ok(decoded) =
                decode_upstream_response(&wire, piece, mutator.next().is_multiple_of(5))
            {
                assert!(decoded.body.len() <= wire.len());
                for (name, _) in &decoded.fields {
                    let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                    assert!(!crate::headers::is_hop_by_hop(&name), "{name} passed");
                }
            }
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let parsed = head(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(parsed.status, StatusCode::NO_CONTENT);
        assert!(parsed.fields.map().get("link").is_none());
    }

    #[test]
    fn plain_response_fields_are_kept_raw_and_the_rest_in_a_map() {
        // As they came (case and order), hop-by-hop fields left out.
        assert_eq!(
            raw_kept(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\nX-B: 1\r\nx-a: 2\r\n\r\n"),
            Some(vec![
                "Server: nginx".to_owned(),
                "Content-Length: 5".to_owned(),
                "X-B: 1".to_owned(),
                "x-a: 2".to_owned()
            ])
        );
        // A Connection that names fields, both framings, or many fields: a map.
        assert_eq!(
            raw_kept(
                b"HTTP/1.1 200 OK\r\nConnection: x-hop\r\nx-hop: 1\r\nContent-Length: 0\r\n\r\n"
            ),
            None
        );
        assert_eq!(
            raw_kept(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            None
        );
        let mut many = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".to_vec();
        for index in 0..crate::raw_fields::MAX_RAW_FIELDS {
            many.extend_from_slice(format!("x-{index}: {index}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(raw_kept(&many), None);
        let parsed = head(&many, false).unwrap().unwrap();
        assert_eq!(
            parsed.fields.map().len(),
            crate::raw_fields::MAX_RAW_FIELDS + 1
        );
        // The raw form and the map form hold the same fields.
        let wire = b"HTTP/1.1 200 OK\r\nDate: d\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\nTE: x\r\n\r\n";
        assert!(raw_kept(wire).is_some());
        let map = head(wire, false).unwrap().unwrap().fields.map();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get_all("set-cookie").iter().count(), 2);
        assert!(map.get("te").is_none());
    }

    #[test]
    fn hop_by_hop_response_fields_are_left_out() {
        let parsed = head(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nProxy-Connection: x\r\nTrailer: x-sum\r\nUpgrade: h2c\r\nX-Kept: 2\r\nContent-Type: text/plain\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        let headers = parsed.fields.map();
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-kept"]);
        assert!(
            parsed.reusable,
            "keep-alive with chunked framing can carry another request"
        );
        assert_eq!(parsed.framing, Framing::Chunked(Chunk::Size));

        // Only `close` and `keep-alive`: nothing else is named, everything else stays.
        let parsed = head(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        let headers = parsed.fields.map();
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "x-hop"]);
        assert!(!parsed.reusable);
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\n";
        // Fed one byte at a time, the decoder yields the same data and the trailers.
        let mut buf = BytesMut::new();
        let mut state = Framing::Chunked(Chunk::Size);
        let mut data = Vec::new();
        let mut trailers = None;
        for &byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Framing::Chunked(chunk) = state {
                let (next, piece) = decode_chunked(&mut buf, chunk).unwrap();
                let moved = next != state || piece.is_some();
                if let Some(piece) = piece {
                    data.extend_from_slice(&piece);
                }
                state = next;
                if state == Framing::Done {
                    trailers = take_trailers(&mut buf).unwrap();
                }
                if !moved {
                    break;
                }
            }
        }
        assert_eq!(state, Framing::Done);
        assert_eq!(data, b"hello world");
        assert_eq!(trailers.unwrap().get("x-sum").unwrap(), "1");
        assert!(buf.is_empty());
        // The usual ending: no trailer section at all.
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        let mut state = Framing::Chunked(Chunk::Size);
        let mut data = Vec::new();
        while let Framing::Chunked(chunk) = state {
            let (next, piece) = decode_chunked(&mut buf, chunk).unwrap();
            if let Some(piece) = piece {
                data.extend_from_slice(&piece);
            }
            state = next;
        }
        assert_eq!(state, Framing::Done);
        assert_eq!(take_trailers(&mut buf).unwrap(), None);
        assert_eq!(data, b"abc");
        assert!(buf.is_empty());
        let mut bad = BytesMut::from(&b"zz\r\n"[..]);
        assert!(decode_chunked(&mut bad, Chunk::Size).is_err());
        let mut bad = BytesMut::from(&b"abXY"[..]);
        assert!(decode_chunked(&mut bad, Chunk::DataEnd).is_err());
    }

    #[test]
    fn requests_are_framed_by_their_body() {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = "/a?b=1".parse().unwrap();
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("up"));
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        request
            .headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        let forwarding = crate::headers::forwarding_fields(
            request.headers_mut(),
            &crate::headers::ForwardedFor {
                peer: "192.0.2.1".parse().unwrap(),
                peer_trusted: false,
                proto: "http",
                host: Some("up"),
                request_id: "r1",
            },
        );
        let (parts, ()) = request.into_parts();
        let head = OutgoingHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            host: None,
            forwarding: &forwarding,
        };
        let wire = encode_request(&head, Bytes::from_static(b"abc"));
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: up\r\nx-forwarded-for: 192.0.2.1\r\n\
             x-forwarded-proto: http\r\nx-forwarded-host: up\r\n\
             forwarded: for=192.0.2.1;proto=http;host=\"up\"\r\nx-request-id: r1\r\n\
             content-length: 3\r\n\r\nabc"
        );
    }
}
