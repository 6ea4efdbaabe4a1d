//! The lean HTTP/1.1 server side: requests without a body are read, handed to the forwarder
//! and answered here, without hyper's connection machinery; everything else hands the
//! connection (with the bytes already read) to hyper for the rest of its life.
//!
//! Most requests a gateway sees are bodiless `GET`s. For those the whole exchange is a
//! request head in and a response out: this loop parses the head with httparse, builds the
//! same `http::Request` hyper would, and writes the response head and body with as few
//! writes as possible. The first request it does not take on simply (a body, any framing
//! header but `Content-Length: 0`, `Expect`, `Upgrade`, HTTP/1.0, a request target that is
//! not origin-form, a head that does not parse, the HTTP/2 preface) is left unparsed, and
//! hyper serves the connection from there with all of its checks: request smuggling
//! defenses, body framing, `100 Continue`, error responses (400, 431) stay hyper's.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::forward::ClientBody;
use crate::server::Stop;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// Body data up to this size is copied behind the response head, so both go in one write.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Bounds on what a request head may be before hyper takes over (and answers 431).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

/// How the lean loop ended.
pub(crate) enum Ended {
    /// The connection is finished (closed by either side, or a response could not be sent).
    Closed,
    /// A request the loop does not serve: hyper takes the connection, reading these bytes
    /// first.
    HandOff(Bytes),
}

/// A parsed request head, or why there is none (yet).
enum Parsed {
    Request {
        request: Request<ClientBody>,
        keep_alive: bool,
    },
    /// More bytes are needed.
    Partial,
    /// Not for this loop: hyper serves it.
    NotLean,
}

/// Serves bodiless HTTP/1.1 requests on `io` until the connection ends, `draining` says to
/// stop between requests, or a request needs hyper.
pub(crate) async fn serve<S, H, F, B>(
    io: &mut S,
    limits: HeadLimits,
    handle: H,
    stop: &mut watch::Receiver<Stop>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request<ClientBody>) -> F,
    F: Future<Output = Response<B>>,
    B: Body<Data = Bytes>,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Vec::with_capacity(1024);
    loop {
        let (request, keep_alive) = loop {
            if !buf.is_empty() {
                match parse_request(&mut buf, limits) {
                    Parsed::Request {
                        request,
                        keep_alive,
                    } => break (request, keep_alive),
                    Parsed::Partial => {}
                    Parsed::NotLean => return Ended::HandOff(buf.freeze()),
                }
            }
            if buf.is_empty() && draining(stop) {
                return Ended::Closed;
            }
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            let read = if buf.is_empty() {
                // Between requests a drain ends the connection at once.
                tokio::select! {
                    read = io.read_buf(&mut buf) => read,
                    _ = stop.wait_for(|stop| *stop != Stop::Serving) => return Ended::Closed,
                }
            } else {
                io.read_buf(&mut buf).await
            };
            match read {
                Ok(0) | Err(_) => return Ended::Closed,
                Ok(_) => {}
            }
        };
        let head_only = request.method() == Method::HEAD;
        let response = handle(request).await;
        // A connection that is draining answers this request and closes.
        let keep_alive = keep_alive && !draining(stop);
        if write_response(io, &mut out, response, head_only, keep_alive)
            .await
            .is_err()
            || !keep_alive
        {
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
    }
}

fn draining(stop: &watch::Receiver<Stop>) -> bool {
    *stop.borrow() != Stop::Serving
}

/// Parses the request head at the start of `buf`, taking it out of `buf` when it is one
/// this loop serves.
fn parse_request(buf: &mut BytesMut, limits: HeadLimits) -> Parsed {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
    let slots = &mut slots[..limits.max_headers.clamp(1, 128)];
    let mut parsed = httparse::Request::new(&mut []);
    let length = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut parsed, buf, slots)
    {
        Ok(httparse::Status::Complete(length)) if length <= limits.max_head_bytes => length,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_head_bytes => {
            return Parsed::Partial;
        }
        // Too large, too many headers, malformed, HTTP/2's preface: hyper answers.
        _ => return Parsed::NotLean,
    };
    if parsed.version != Some(1) {
        return Parsed::NotLean;
    }
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Parsed::NotLean;
    };
    if !path.starts_with('/') {
        return Parsed::NotLean;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::NotLean;
    };
    let mut keep_alive = true;
    let mut content_length_seen = false;
    for header in parsed.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            // `Content-Length: 0` once is a bodiless request; any other length is a body.
            if content_length_seen || header.value.trim_ascii() != b"0" {
                return Parsed::NotLean;
            }
            content_length_seen = true;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::NotLean;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&byte| byte == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Parsed::NotLean;
                }
            }
        }
    }
    // Where the target and each header lie in the head, so the request can share its bytes.
    let base = buf.as_ptr() as usize;
    let offset = |slice: &[u8]| slice.as_ptr() as usize - base;
    let path_span = (offset(path.as_bytes()), path.len());
    let mut spans = [(0usize, 0usize, 0usize, 0usize); 128];
    let count = parsed.headers.len();
    for (span, header) in spans.iter_mut().zip(parsed.headers.iter()) {
        *span = (
            offset(header.name.as_bytes()),
            header.name.len(),
            offset(header.value),
            header.value.len(),
        );
    }
    let Some(request) = build_request(buf, length, method, path_span, &spans[..count]) else {
        return Parsed::NotLean;
    };
    Parsed::Request {
        request,
        keep_alive,
    }
}

/// Takes the head (`length` bytes) out of `buf` and builds the request from it; `None`
/// (with `buf` untouched) when a part is not valid for `http`'s types.
fn build_request(
    buf: &mut BytesMut,
    length: usize,
    method: Method,
    (path_at, path_len): (usize, usize),
    spans: &[(usize, usize, usize, usize)],
) -> Option<Request<ClientBody>> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(name_at, name_len, _, _) in spans {
        // Names are checked before anything is taken out of the buffer.
        HeaderName::from_bytes(buf.get(name_at..name_at + name_len)?).ok()?;
    }
    let head = buf.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_at..path_at + path_len)).ok();
    let restore = |buf: &mut BytesMut, head: &Bytes| {
        let mut whole = BytesMut::with_capacity(head.len() + buf.len());
        whole.extend_from_slice(head);
        whole.extend_from_slice(buf);
        *buf = whole;
    };
    let Some(uri) = uri else {
        restore(buf, &head);
        return None;
    };
    for &(name_at, name_len, value_at, value_len) in spans {
        let name = head
            .get(name_at..name_at + name_len)
            .and_then(|name| HeaderName::from_bytes(name).ok());
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len));
        match (name, value) {
            (Some(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                restore(buf, &head);
                return None;
            }
        }
    }
    let mut request = Request::new(ClientBody::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

/// Writes `response` to `io`: the head and, when it is already here, the start of the body
/// in one write, then the rest of the body as it comes.
async fn write_response<S, B>(
    io: &mut S,
    out: &mut Vec<u8>,
    response: Response<B>,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
    B: Body<Data = Bytes>,
{
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let bodiless = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut body = std::pin::pin!(body);
    let length = if bodiless {
        None
    } else {
        body.size_hint().exact()
    };
    out.clear();
    encode_head(out, status, &parts.headers, bodiless, length, keep_alive);
    if bodiless {
        io.write_all(out).await?;
        return io.flush().await;
    }
    let chunked = length.is_none();
    let mut left = length.unwrap_or(0);
    // The first frame, if it is here already, goes with the head.
    let mut pending_head = true;
    loop {
        let frame = if pending_head {
            match std::future::poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    io.write_all(out).await?;
                    io.flush().await?;
                    out.clear();
                    pending_head = false;
                    std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await
                }
            }
        } else {
            std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await
        };
        match frame {
            None => break,
            Some(Err(_)) => {
                if !out.is_empty() {
                    io.write_all(out).await?;
                }
                // The response cannot be completed: the connection ends without the last
                // chunk (or short of its length), which the client sees as an error.
                return Err(io::Error::other("the response body failed"));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        continue;
                    }
                    if !chunked {
                        let size = data.len() as u64;
                        if size > left {
                            return Err(io::Error::other("response body longer than announced"));
                        }
                        left -= size;
                    }
                    if chunked {
                        push_chunk_size(out, data.len());
                    }
                    if out.len() + data.len() <= COALESCE_LIMIT {
                        out.extend_from_slice(&data);
                    } else {
                        io.write_all(out).await?;
                        out.clear();
                        io.write_all(&data).await?;
                    }
                    if chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                    if !pending_head {
                        io.write_all(out).await?;
                        out.clear();
                    }
                }
                Err(frame) => {
                    if let (true, Ok(trailers)) = (chunked, frame.into_trailers()) {
                        out.extend_from_slice(b"0\r\n");
                        encode_fields(out, &trailers);
                        out.extend_from_slice(b"\r\n");
                        io.write_all(out).await?;
                        return io.flush().await;
                    }
                }
            },
        }
        if pending_head {
            // The head and the first frame go together; later frames as they come.
            io.write_all(out).await?;
            out.clear();
            pending_head = false;
            if !chunked && left == 0 && body.is_end_stream() {
                break;
            }
        }
    }
    if !chunked && left != 0 {
        if !out.is_empty() {
            io.write_all(out).await?;
        }
        return Err(io::Error::other("response body shorter than announced"));
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        io.write_all(out).await?;
    }
    io.flush().await
}

/// The status line and header section. Framing headers are the gateway's own: a known
/// length becomes `Content-Length`, an unknown one chunked transfer coding.
fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    bodiless: bool,
    length: Option<u64>,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        if name == header::CONTENT_LENGTH && !(bodiless && status != StatusCode::NO_CONTENT) {
            // Kept as the upstream sent it only where no body follows it (HEAD, 304).
            continue;
        }
        has_date |= name == header::DATE;
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has_date {
        crate::http_date::push_now(out);
    }
    if !bodiless {
        match length {
            Some(length) => {
                out.extend_from_slice(b"content-length: ");
                push_decimal(out, length);
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn encode_fields(out: &mut Vec<u8>, fields: &HeaderMap) {
    for (name, value) in fields {
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_chunk_size(out: &mut Vec<u8>, size: usize) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut value = size;
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[value & 15];
        value >>= 4;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A connection with bytes already read from it in front: what hyper serves after a
/// hand-off.
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    io: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Bytes, io: S) -> Self {
        Self { prefix, io }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let take = self.prefix.len().min(buf.remaining());
            let taken = self.prefix.split_to(take);
            buf.put_slice(&taken);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
