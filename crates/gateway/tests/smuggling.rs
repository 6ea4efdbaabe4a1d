//! HTTP/1.1 request smuggling attempts (RFC 9112 section 6): conflicting or obfuscated framing
//! is rejected, or framed by Transfer-Encoding alone with the connection closed afterwards, so
//! no second request can hide inside the first one's body.

use std::net::SocketAddr;
use std::time::Duration;

use rampart_gateway::{Gateway, GatewayOptions};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(origin: &ReflectingOrigin) -> SocketAddr {
    let options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

/// Sends raw bytes and reads until the gateway closes the connection.
async fn exchange(gateway: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("the gateway kept a connection open after ambiguous framing")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn content_length_with_transfer_encoding_cannot_smuggle_a_request() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    // CL.TE: a front end trusting Content-Length would see one request; one trusting
    // Transfer-Encoding would see a second, smuggled one.
    let response = exchange(
        gateway,
        b"POST /first HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(response.matches("HTTP/1.1 ").count(), 1, "{response}");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.contains("/smuggled"), "{response}");
    assert!(
        !response.contains("content-length\":[\"6"),
        "conflicting length forwarded: {response}"
    );
}

#[tokio::test]
async fn obfuscated_or_conflicting_framing_is_rejected() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    for raw in [
        // chunked is not the final coding
        &b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"[..],
        // an unknown coding
        b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        // two different lengths
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        // a signed length
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: +4\r\n\r\nabcd",
        // Transfer-Encoding in HTTP/1.0
        b"POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let response = exchange(gateway, raw).await;
        assert!(
            response.starts_with("HTTP/1.1 400") || response.starts_with("HTTP/1.0 400"),
            "{:?} got {response}",
            String::from_utf8_lossy(raw)
        );
    }
}
