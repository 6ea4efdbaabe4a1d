//! Connection shields through real sockets: the cap sheds a Slowloris connection to let a
//! legitimate client in, one client cannot hold more than its share, and a client reconnecting
//! over its rate is held unanswered (or closed at once when holding is off).

use std::net::SocketAddr;
use std::time::Duration;

use rampart_gateway::{ConnectionLimits, Gateway, GatewayOptions};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn start(limits: ConnectionLimits, origin: &ReflectingOrigin) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.limits = limits;
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn connect_from(source: [u8; 4], gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(gateway).await.unwrap()
}

/// Reads until the peer closes; true if it closed (EOF or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn legitimate_get(source: [u8; 4], gateway: SocketAddr) -> String {
    let mut stream = connect_from(source, gateway).await;
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_full_gateway_sheds_slowloris_connections_for_a_new_client() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(
        ConnectionLimits {
            max_connections: 4,
            max_connections_per_client: 100,
            ..ConnectionLimits::default()
        },
        &origin,
    )
    .await;
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from([127, 0, 0, 1], gateway).await;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-a: ")
            .await
            .unwrap();
        attackers.push(stream);
    }
    // Let the gateway register all four before the legitimate client arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = legitimate_get([127, 0, 0, 2], gateway).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut shed = 0;
    for stream in &mut attackers {
        if closed_within(stream, Duration::from_millis(500)).await {
            shed += 1;
        }
    }
    assert!(shed >= 1, "no slow connection was shed");
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(
        ConnectionLimits {
            max_connections: 100,
            max_connections_per_client: 2,
            ..ConnectionLimits::default()
        },
        &origin,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from([127, 0, 0, 1], gateway).await;
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect_from([127, 0, 0, 1], gateway).await;
    assert!(
        closed_within(&mut third, Duration::from_secs(5)).await,
        "a third connection from the same client was kept"
    );
    for stream in &mut held {
        assert!(!closed_within(stream, Duration::from_millis(100)).await);
    }
    let response = legitimate_get([127, 0, 0, 2], gateway).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Opens connections from 127.0.0.1, each with a request, until one is not answered (the
/// client's burst is used up; every connection until then is served). Returns that connection,
/// when it started connecting, and whether it was closed (rather than still open) after
/// `patience`.
async fn connect_until_unanswered(
    gateway: SocketAddr,
    patience: Duration,
) -> (TcpStream, std::time::Instant, bool) {
    for _ in 0..50 {
        let connecting = std::time::Instant::now();
        let mut stream = connect_from([127, 0, 0, 1], gateway).await;
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        match tokio::time::timeout(patience, stream.read_to_end(&mut response)).await {
            Err(_) if response.is_empty() => return (stream, connecting, false),
            Ok(_) if response.is_empty() => return (stream, connecting, true),
            _ => {
                let text = String::from_utf8_lossy(&response);
                assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            }
        }
    }
    panic!("50 connections in a row were served: no connection rate was applied");
}

#[tokio::test]
async fn a_client_reconnecting_over_its_rate_is_held_unanswered_then_closed() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let hold = Duration::from_secs(5);
    let gateway = start(
        ConnectionLimits {
            max_new_connections_per_client_per_second: 1,
            over_rate_hold: hold,
            ..ConnectionLimits::default()
        },
        &origin,
    )
    .await;
    let (mut over_rate, connecting, closed) =
        connect_until_unanswered(gateway, Duration::from_secs(2)).await;
    assert!(
        !closed,
        "an over-rate connection was closed before its hold"
    );
    // While it is held, other clients are served.
    let response = legitimate_get([127, 0, 0, 2], gateway).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(60), over_rate.read(&mut buffer))
        .await
        .expect("the held connection was never closed");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a held connection was answered: {:?}",
        read.map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned())
    );
    assert!(
        connecting.elapsed() >= hold,
        "closed after {:?}, before its hold of {hold:?}",
        connecting.elapsed()
    );
}

#[tokio::test]
async fn without_a_hold_an_over_rate_connection_is_closed_at_once() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(
        ConnectionLimits {
            max_new_connections_per_client_per_second: 1,
            over_rate_hold: Duration::ZERO,
            ..ConnectionLimits::default()
        },
        &origin,
    )
    .await;
    let (_, _, closed) = connect_until_unanswered(gateway, Duration::from_secs(20)).await;
    assert!(
        closed,
        "an over-rate connection was kept open without a hold"
    );
}
