//! Minimum data rates through real sockets: a slow-POST body is cut with 408, a fast one
//! passes; a client that stops reading a large response loses its connection (reset).

use std::net::SocketAddr;
use std::time::Duration;

use rampart_gateway::{Gateway, GatewayOptions, MinRate};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const STRICT: MinRate = MinRate {
    bytes: 64 * 1024,
    per: Duration::from_secs(1),
};

async fn start(origin: &ReflectingOrigin) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.min_request_body_rate = STRICT;
    options.min_response_rate = STRICT;
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn a_slow_post_body_is_cut_off_with_408() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    // Two bytes every 300 ms: a slowhttptest -B style client. The gateway must answer on its
    // own, so the trickle runs in the background and stops once the connection is closed.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b"ab").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut response = Vec::new();
    let _ = reader.read_to_end(&mut response).await;
    trickle.abort();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request_body_too_slow"), "{response}");
}

#[tokio::test]
async fn a_body_sent_at_a_normal_rate_passes() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    let body = vec![b'x'; 200_000];
    stream
        .write_all(
            format!(
                "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    let response = read_all(&mut stream).await;
    assert!(response.starts_with(b"HTTP/1.1 200"));
}

/// Reads until the connection ends: the bytes received and how it ended (`None`: a clean end).
async fn read_to_end(stream: &mut TcpStream) -> (usize, Option<std::io::ErrorKind>) {
    let mut received = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => return (received, None),
            Ok(n) => received += n,
            Err(error) => return (received, Some(error.kind())),
        }
    }
}

/// Asks for a `size` byte response on a connection with a small receive buffer, then reads
/// nothing while the gateway's budget for waiting on it runs out several times over.
async fn stop_reading(gateway: SocketAddr, size: usize) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(gateway).await.unwrap();
    // A response that the origin answers at once (no upload to wait for first: on a loaded
    // machine, streaming a large upload through could eat into the wait below).
    stream
        .write_all(
            format!("GET /bytes?n={size} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stream
}

/// Reads what reaches a client that stopped reading a `size` byte response: less than all of
/// it, then a reset, not a graceful end (what the gateway had queued for the client was dropped
/// rather than left in kernel memory for it to trickle out).
async fn assert_cut_off_with_a_reset(mut stream: TcpStream, size: usize) {
    let (received, end) = read_to_end(&mut stream).await;
    assert!(
        received < size,
        "the whole {size} byte response reached a client that stopped reading ({received} bytes)"
    );
    assert_eq!(
        end,
        Some(std::io::ErrorKind::ConnectionReset),
        "the connection of a client that stopped reading ended without a reset after {received} bytes"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_a_response_the_kernel_could_buffer_is_reset() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    // 1 MiB fits in a loopback send buffer: unbounded, the gateway would hand it all to the
    // kernel at once, never wait on the client, and close gracefully with it still queued.
    let size = 1 << 20;
    assert_cut_off_with_a_reset(stop_reading(gateway, size).await, size).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_connection() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let size = 16usize << 20;
    assert_cut_off_with_a_reset(stop_reading(gateway, size).await, size).await;
}
