//! A bare HTTP/1.1 client on one connection (TCP or TLS), for tests that must know the connection
//! stays the same across requests (reloads, keep-alive limits).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Sends `GET path` on `stream` (keep-alive) and reads exactly one response, which must carry
/// Content-Length. Returns the status code.
///
/// # Panics
/// When the connection closes or the response is not what the gateway sends.
pub async fn keep_alive_get<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> u16 {
    keep_alive_request(stream, "GET", path, "Host: localhost\r\n", None).await
}

/// Sends `method path` with the header lines `headers` (each ending in CRLF) and, when given,
/// `body` (with its Content-Length) on `stream` (keep-alive), and reads exactly one response,
/// which must carry Content-Length. Returns the status code.
///
/// # Panics
/// When the connection closes or the response is not an HTTP/1.1 response with a length.
pub async fn keep_alive_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &str,
    body: Option<&[u8]>,
) -> u16 {
    let mut request = format!("{method} {path} HTTP/1.1\r\n{headers}");
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    if let Some(body) = body {
        stream.write_all(body).await.unwrap();
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            read, 1,
            "{method} {path}: connection closed; head so far: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head.get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"))
}
