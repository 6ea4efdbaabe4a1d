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
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::forward::ClientBody;
use crate::gated::Gated;
use crate::raw_fields::{FieldKind, RawFields};
use crate::server::Stop;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// Body data up to this size is copied behind the response head, so both go in one write.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Fields the gateway may put into a request's map before it goes upstream: the origin
/// lock's two (the forwarding fields are written as lines after the map's, not put into it).
const ADDED_HEADERS: usize = 2;

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

/// A parsed request head, or why there is none (yet). Returned once per request and taken
/// apart at once: boxing the large variant would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
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

/// A response body that may carry its response's header fields as the upstream sent them
/// (see `raw_fields.rs`): the loop writes those out before the response map's own.
pub(crate) trait RawFieldsSource {
    /// The fields kept raw, if any (asked before the body is read).
    fn raw_fields(&self) -> Option<&RawFields>;
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
    B: Body<Data = Bytes> + RawFieldsSource,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // Allocated with the first response (a connection handed to hyper at once never needs it).
    let mut out = Vec::new();
    // Where the fields of the last head lay: reused, not allocated for every request.
    let mut spans = Vec::new();
    // The drain signal, waited for between requests by one future for the whole connection:
    // a new wait per request would register with the channel (a lock every connection of
    // every worker shares) on every request.
    let mut drain_signal = stop.clone();
    // Polled only when the channel wakes it, not on every read.
    let mut drain = Gated::new(drain_signal.wait_for(|stop| *stop != Stop::Serving));
    loop {
        let (request, keep_alive) = loop {
            if !buf.is_empty() {
                match parse_request(&mut buf, limits, &mut spans) {
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
                    _ = &mut drain => return Ended::Closed,
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

/// Where a header field lies in a head: name offset and length, value offset and length.
type FieldSpan = (usize, usize, usize, usize);

/// Parses the request head at the start of `buf`, taking it out of `buf` when it is one
/// this loop serves.
fn parse_request(buf: &mut BytesMut, limits: HeadLimits, spans: &mut Vec<FieldSpan>) -> Parsed {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
    let slots = &mut slots[..limits.max_headers.clamp(1, 128)];
    let mut parsed = httparse::Request::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        slots,
    ) {
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
    spans.clear();
    spans.extend(parsed.headers.iter().map(|header| {
        (
            offset(header.name.as_bytes()),
            header.name.len(),
            offset(header.value),
            header.value.len(),
        )
    }));
    let Some(request) = build_request(buf, length, method, path_span, spans) else {
        return Parsed::NotLean;
    };
    Parsed::Request {
        request,
        keep_alive,
    }
}

/// Takes the head (`length` bytes) out of `buf` and builds the request from it; `None`
/// (with `buf` as it was) when a part is not valid for `http`'s types.
fn build_request(
    buf: &mut BytesMut,
    length: usize,
    method: Method,
    (path_at, path_len): (usize, usize),
    spans: &[FieldSpan],
) -> Option<Request<ClientBody>> {
    // Room for the fields the gateway adds, so that adding them does not grow the map.
    let mut headers = HeaderMap::with_capacity(spans.len() + ADDED_HEADERS);
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
            .and_then(crate::headers::field_name);
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
    B: Body<Data = Bytes> + RawFieldsSource,
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
    encode_head(
        out,
        status,
        body.as_ref().get_ref().raw_fields(),
        &parts.headers,
        bodiless,
        length,
        keep_alive,
    );
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
            // The head and the first frame go together (with the last chunk, when the body
            // says it has ended: one write for a whole small response); later frames as they
            // come.
            pending_head = false;
            if body.is_end_stream() {
                break;
            }
            io.write_all(out).await?;
            out.clear();
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
    raw_fields: Option<&RawFields>,
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
    // A Content-Length is kept as the upstream sent it only where no body follows it
    // (HEAD, 304); otherwise the gateway frames the body.
    let keep_content_length = bodiless && status != StatusCode::NO_CONTENT;
    let mut has_date = false;
    // The raw fields hold no hop-by-hop ones (their parser left them out).
    for (name, value, kind) in raw_fields.into_iter().flat_map(RawFields::iter) {
        if kind == FieldKind::ContentLength && !keep_content_length {
            continue;
        }
        has_date |= kind == FieldKind::Date;
        push_field(out, name, value);
    }
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        if name == header::CONTENT_LENGTH && !keep_content_length {
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

/// Appends `value` in decimal (message framing: `Content-Length`).
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
            if self.prefix.is_empty() {
                // Let go of the read buffer the prefix was cut from.
                self.prefix = Bytes::new();
            }
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

/// What [`decode_request_heads`] did with a byte stream: the requests the lean loop would
/// serve (method, target, header count, keep-alive), and the bytes it would hand to hyper.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct DecodedRequests {
    pub served: Vec<(String, String, usize, bool)>,
    pub handed_off: Option<Vec<u8>>,
}

/// Reads request heads from `wire` as the lean HTTP/1.1 loop does, the bytes arriving in
/// pieces of `piece` bytes, until the input ends or a request goes to hyper. For the fuzz
/// target and tests: any input must give an answer, never a panic, and what is handed to
/// hyper must be exactly the bytes not taken as served heads.
#[doc(hidden)]
pub fn decode_request_heads(wire: &[u8], piece: usize) -> DecodedRequests {
    let limits = HeadLimits {
        max_head_bytes: 4096,
        max_headers: 32,
    };
    let mut pieces = wire.chunks(piece.max(1));
    let mut buf = BytesMut::new();
    let mut decoded = DecodedRequests::default();
    let mut spans = Vec::new();
    loop {
        if !buf.is_empty() {
            match parse_request(&mut buf, limits, &mut spans) {
                Parsed::Request {
                    request,
                    keep_alive,
                } => {
                    decoded.served.push((
                        request.method().to_string(),
                        request.uri().to_string(),
                        request.headers().len(),
                        keep_alive,
                    ));
                    continue;
                }
                Parsed::NotLean => {
                    let mut rest = buf.to_vec();
                    for piece in pieces {
                        rest.extend_from_slice(piece);
                    }
                    decoded.handed_off = Some(rest);
                    return decoded;
                }
                Parsed::Partial => {}
            }
        }
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None => return decoded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use http_body_util::Full;
    use hyper::body::Frame;
    use tokio::io::DuplexStream;

    const LIMITS: HeadLimits = HeadLimits {
        max_head_bytes: 1024,
        max_headers: 16,
    };

    /// The client's end of the pipe, what the handler saw, and the loop's task.
    type Started = (
        DuplexStream,
        Arc<Mutex<Vec<String>>>,
        tokio::task::JoinHandle<Ended>,
    );

    /// A body of unknown size made of these frames.
    struct Frames(VecDeque<Result<Frame<Bytes>, io::Error>>);

    impl RawFieldsSource for Frames {
        fn raw_fields(&self) -> Option<&RawFields> {
            None
        }
    }

    impl RawFieldsSource for Full<Bytes> {
        fn raw_fields(&self) -> Option<&RawFields> {
            None
        }
    }

    /// A body whose response's upstream fields were kept raw.
    struct WithRawFields(RawFields, Full<Bytes>);

    impl RawFieldsSource for WithRawFields {
        fn raw_fields(&self) -> Option<&RawFields> {
            Some(&self.0)
        }
    }

    impl Body for WithRawFields {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Pin::new(&mut self.1).poll_frame(cx)
        }

        fn size_hint(&self) -> hyper::body::SizeHint {
            self.1.size_hint()
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    /// Runs the lean loop on one end of a pipe with `respond` as the handler; returns the
    /// client's end, what the handler saw (`METHOD path host`), and how the loop ended.
    fn start<B, R>(respond: R) -> (watch::Sender<Stop>, Started)
    where
        B: Body<Data = Bytes> + RawFieldsSource + Send + 'static,
        B::Error: Send,
        R: Fn(&Request<ClientBody>) -> Response<B> + Send + Sync + 'static,
    {
        let (stop_tx, stop) = watch::channel(Stop::Serving);
        (stop_tx, start_with(respond, stop))
    }

    fn start_with<B, R>(respond: R, mut stop: watch::Receiver<Stop>) -> Started
    where
        B: Body<Data = Bytes> + RawFieldsSource + Send + 'static,
        B::Error: Send,
        R: Fn(&Request<ClientBody>) -> Response<B> + Send + Sync + 'static,
    {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let handle = |request: Request<ClientBody>| {
                let host = request
                    .headers()
                    .get(header::HOST)
                    .map(|host| host.to_str().unwrap_or("?").to_owned())
                    .unwrap_or_default();
                record.lock().unwrap().push(format!(
                    "{} {} {host}",
                    request.method(),
                    request.uri()
                ));
                let response = respond(&request);
                async move { response }
            };
            // The server's end closes when the loop ends, as a socket would.
            serve(&mut server, LIMITS, handle, &mut stop).await
        });
        (client, seen, task)
    }

    fn hello(_: &Request<ClientBody>) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
        response
            .headers_mut()
            .insert("x-upstream", HeaderValue::from_static("yes"));
        response
    }

    async fn read_to_end(client: &mut DuplexStream) -> String {
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        String::from_utf8(received).unwrap()
    }

    async fn ended(task: tokio::task::JoinHandle<Ended>) -> Option<Vec<u8>> {
        match task.await.unwrap() {
            Ended::Closed => None,
            Ended::HandOff(bytes) => Some(bytes.to_vec()),
        }
    }

    #[test]
    fn request_heads_decode_in_any_pieces_and_nothing_is_lost() {
        let samples: [&[u8]; 4] = [
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /u HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"DELETE /d HTTP/1.1\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ];
        let served = [2, 1, 1, 0];
        for (wire, count) in samples.iter().zip(served) {
            for piece in [1, 3, wire.len()] {
                let decoded = decode_request_heads(wire, piece);
                assert_eq!(decoded.served.len(), count, "piece {piece}");
            }
        }
        let mut mutator = crate::mutation::Mutator::new(0x2545_f491_4f6c_dd1d_u64);
        for round in 0..4000 {
            let wire = mutator.mutate(samples[round % samples.len()], b"0123456789 :/\r\n\t,Cc");
            let decoded = decode_request_heads(&wire, (mutator.next() % 9) as usize);
            if let Some(rest) = decoded.handed_off {
                assert!(
                    wire.ends_with(&rest),
                    "handed off bytes are the unserved tail"
                );
            }
        }
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
        let (_stop, (mut client, seen, task)) = start(hello);
        client
            .write_all(
                b"GET /a?x=1 HTTP/1.1\r\nHost: one\r\n\r\n\
                  DELETE /b HTTP/1.1\r\nHost: two\r\nContent-Length: 0\r\n\r\n\
                  GET /c HTTP/1.1\r\nHost: three\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        assert_eq!(
            *seen.lock().unwrap(),
            ["GET /a?x=1 one", "DELETE /b two", "GET /c three"]
        );
        let responses: Vec<&str> = received.split("HTTP/1.1 ").skip(1).collect();
        assert_eq!(responses.len(), 3, "{received}");
        for response in &responses[..2] {
            assert!(response.starts_with("200 OK\r\n"), "{response}");
            assert!(response.contains("\r\nx-upstream: yes\r\n"), "{response}");
            assert!(response.contains("\r\ncontent-length: 5\r\n"), "{response}");
            assert!(response.contains("\r\ndate: "), "{response}");
            assert!(!response.contains("connection: close"), "{response}");
            assert!(response.ends_with("\r\n\r\nhello"), "{response}");
        }
        assert!(
            responses[2].contains("\r\nconnection: close\r\n"),
            "{}",
            responses[2]
        );
        assert!(responses[2].ends_with("\r\n\r\nhello"));
    }

    #[tokio::test]
    async fn requests_with_bodies_and_other_protocols_are_handed_over_unread() {
        let cases: [&[u8]; 9] = [
            b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET http://elsewhere/ HTTP/1.1\r\nHost: elsewhere\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ];
        for bytes in cases {
            let (_stop, (mut client, seen, task)) = start(hello);
            client.write_all(bytes).await.unwrap();
            assert_eq!(
                ended(task).await.as_deref(),
                Some(bytes),
                "{}",
                String::from_utf8_lossy(bytes)
            );
            assert!(seen.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_body_after_served_requests_hands_over_from_that_request() {
        let (_stop, (mut client, seen, task)) = start(hello);
        let upload = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let mut bytes = b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        bytes.extend_from_slice(upload);
        client.write_all(&bytes).await.unwrap();
        assert_eq!(ended(task).await.as_deref(), Some(&upload[..]));
        assert_eq!(*seen.lock().unwrap(), ["GET /first h"]);
        let mut head = vec![0; 512];
        let read = client.read(&mut head).await.unwrap();
        assert!(head[..read].ends_with(b"hello"));
    }

    #[test]
    fn a_target_http_refuses_after_the_head_parsed_leaves_the_bytes_whole() {
        // httparse takes `<` in a request target, `http::Uri` does not: the head has been
        // taken out of the buffer by then and must be put back for hyper.
        let wire = b"GET /a<b HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert!(Uri::try_from("/a<b").is_err());
        let decoded = decode_request_heads(wire, wire.len());
        assert!(decoded.served.is_empty());
        assert_eq!(decoded.handed_off.as_deref(), Some(&wire[..]));
    }

    #[tokio::test]
    async fn too_large_or_too_many_headers_go_to_hyper_for_its_431() {
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(17));
        let unfinished = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(2000));
        for bytes in [big, many, unfinished] {
            let (_stop, (mut client, _seen, task)) = start(hello);
            client.write_all(bytes.as_bytes()).await.unwrap();
            assert_eq!(ended(task).await.as_deref(), Some(bytes.as_bytes()));
        }
    }

    #[tokio::test]
    async fn head_requests_and_bodiless_statuses_get_no_body() {
        let (_stop, (mut client, _seen, task)) = start(|request: &Request<ClientBody>| {
            let status = if request.uri().path() == "/none" {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::OK
            };
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("1234"));
            response
        });
        client
            .write_all(
                b"HEAD /file HTTP/1.1\r\n\r\nGET /none HTTP/1.1\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        let (head_response, no_content) = received.split_at(received.find("HTTP/1.1 204").unwrap());
        assert!(head_response.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head_response.contains("\r\ncontent-length: 1234\r\n"));
        assert!(head_response.ends_with("\r\n\r\n"));
        assert!(!no_content.contains("content-length"), "{no_content}");
        assert!(!no_content.contains("transfer-encoding"), "{no_content}");
        assert!(no_content.ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn raw_upstream_fields_are_written_as_they_came_before_the_gateways_own() {
        use crate::raw_fields::FieldKind;
        let head: &'static [u8] = b"Server: up\r\nDate: Mon\r\nContent-Length: 99\r\nX-Up: 1\r\n";
        let (_stop, (mut client, _seen, task)) = start(move |request: &Request<ClientBody>| {
            let mut raw = RawFields::default();
            raw.reset(Bytes::from_static(head));
            for (name, value) in [
                ((0, 6), (8, 2)),
                ((12, 4), (18, 3)),
                ((23, 14), (39, 2)),
                ((43, 4), (49, 1)),
            ] {
                assert!(raw.push(name, value, FieldKind::of(&head[name.0..name.0 + name.1])));
            }
            raw.set(
                &http::HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("mine"),
            );
            let mut response =
                Response::new(WithRawFields(raw, Full::new(Bytes::from_static(b"hello"))));
            if request.method() == Method::HEAD {
                *response.status_mut() = StatusCode::OK;
            }
            response
                .headers_mut()
                .insert("x-gateway", HeaderValue::from_static("1"));
            response
        });
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        let (get, head_response) = received.split_at(received.rfind("HTTP/1.1 200").unwrap());
        // The upstream's fields first, as they came; its Content-Length gives way to the
        // gateway's framing; its Date stands (no second one); the gateway's fields follow.
        assert_eq!(
            get,
            "HTTP/1.1 200 OK\r\nServer: up\r\nDate: Mon\r\nX-Up: 1\r\nx-request-id: mine\r\nx-gateway: 1\r\ncontent-length: 5\r\n\r\nhello"
        );
        // A HEAD response keeps the upstream's Content-Length.
        assert_eq!(
            head_response,
            "HTTP/1.1 200 OK\r\nServer: up\r\nDate: Mon\r\nContent-Length: 99\r\nX-Up: 1\r\nx-request-id: mine\r\nx-gateway: 1\r\nconnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn bodies_of_unknown_length_are_chunked_with_their_trailers() {
        let (_stop, (mut client, _seen, task)) = start(|_: &Request<ClientBody>| {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", HeaderValue::from_static("abc"));
            Response::new(Frames(VecDeque::from([
                Ok(Frame::data(Bytes::from_static(b"hello "))),
                Ok(Frame::data(Bytes::new())),
                Ok(Frame::data(Bytes::from(vec![b'x'; 20_000]))),
                Ok(Frame::trailers(trailers)),
            ])))
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        let (head, body) = received.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        let expected = format!(
            "6\r\nhello \r\n4e20\r\n{}\r\n0\r\nx-checksum: abc\r\n\r\n",
            "x".repeat(20_000)
        );
        assert_eq!(body, expected);
    }

    #[tokio::test]
    async fn a_failing_body_ends_the_connection_without_the_last_chunk() {
        let (_stop, (mut client, _seen, task)) = start(|_: &Request<ClientBody>| {
            Response::new(Frames(VecDeque::from([
                Ok(Frame::data(Bytes::from_static(b"part"))),
                Err(io::Error::other("upstream reset")),
            ])))
        });
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        assert!(received.ends_with("\r\n\r\n4\r\npart\r\n"), "{received}");
        assert_eq!(received.matches("HTTP/1.1").count(), 1);
    }

    #[tokio::test]
    async fn a_drain_closes_idle_connections_and_ends_busy_ones_after_their_response() {
        let (stop, (mut client, _seen, task)) = start(hello);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut first = vec![0; 512];
        let read = client.read(&mut first).await.unwrap();
        assert!(first[..read].ends_with(b"hello"));
        stop.send_replace(Stop::Draining(std::time::Duration::from_secs(1)));
        assert_eq!(ended(task).await, None);
        assert_eq!(read_to_end(&mut client).await, "");

        // The drain starts while the first request is being handled.
        let (stop, receiver) = watch::channel(Stop::Serving);
        let (mut client, _seen, task) = start_with(
            move |request| {
                stop.send_replace(Stop::Draining(std::time::Duration::from_secs(1)));
                hello(request)
            },
            receiver,
        );
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let received = read_to_end(&mut client).await;
        assert_eq!(ended(task).await, None);
        assert_eq!(received.matches("HTTP/1.1 200").count(), 1, "{received}");
        assert!(received.contains("\r\nconnection: close\r\n"), "{received}");
    }
}
