//! The whole-head deadline and the idle limit, through real sockets: a Slowloris head that
//! trickles in is cut at the deadline, an idle keep-alive connection is closed after it, and a
//! download that takes much longer than the deadline (the client reading steadily) completes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rampart_gateway::{Gateway, GatewayOptions};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(1);

async fn start(origin: &ReflectingOrigin) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.header_read_timeout = DEADLINE;
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

/// Waits for the peer to close, with a hang guard far above any deadline under test.
async fn wait_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 4096];
    let guard = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    guard
        .await
        .expect("the gateway never closed the connection");
}

#[tokio::test]
async fn a_trickling_head_is_cut_at_the_deadline() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-a: b\r\n";
    let started = Instant::now();
    // One byte every 100 ms: every read makes progress, the head never completes in time.
    let writer = async {
        for byte in head.iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if started.elapsed() > Duration::from_secs(60) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the gateway kept reading a head for a minute");
    assert!(started.elapsed() >= DEADLINE);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    wait_closed(&mut stream).await;
    assert!(started.elapsed() >= DEADLINE);
    assert_eq!(origin.requests(), 1);
}

/// An upstream that streams `size` bytes in small writes, as file servers do.
async fn streaming_upstream(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = [b'x'; 16 * 1024];
                let mut sent = 0;
                while sent < size {
                    let end = chunk.len().min(size - sent);
                    if socket.write_all(&chunk[..end]).await.is_err() {
                        return;
                    }
                    sent += end;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_download_longer_than_the_deadline_completes() {
    let size = 3 << 19;
    let upstream = streaming_upstream(size).await;
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), upstream);
    options.header_read_timeout = DEADLINE;
    let gateway = Gateway::bind(options).await.unwrap();
    let gateway_addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    let gateway = gateway_addr;
    // A small receive window, so the gateway is still writing long after the deadline.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(gateway).await.unwrap();
    stream
        .write_all(format!("GET /bytes?n={size} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // About 320 KB/s (far above any minimum rate) for about five seconds: five deadlines.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    // A keep-alive connection: the gateway may read the next request head meanwhile.
    let expected_at_least = size;
    while received.len() < expected_at_least || !complete(&received, size) {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
            Err(error) => panic!("download cut after {} bytes: {error}", received.len()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() > DEADLINE,
        "the download was too fast to test anything"
    );
    assert!(
        complete(&received, size),
        "the download was cut after {} bytes",
        received.len()
    );
    let body_start = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("no response head")
        + 4;
    assert_eq!(
        received.len() - body_start,
        size,
        "the download was cut short"
    );
}

/// Whether `received` holds a response head and `size` body bytes.
fn complete(received: &[u8], size: usize) -> bool {
    received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .is_some_and(|head| received.len() - (head + 4) >= size)
}
