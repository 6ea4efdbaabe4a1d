//! HTTP/2 abuse through a real h2 client: rapid reset (CVE-2023-44487) ends in GOAWAY long
//! before the flood is done, and the streams cap holds.

use std::net::SocketAddr;
use std::time::Duration;

use rampart_gateway::{Gateway, GatewayOptions};
use rampart_test_support::origin::ReflectingOrigin;
use tokio::net::TcpStream;

async fn start(origin: &ReflectingOrigin) -> SocketAddr {
    let options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

#[tokio::test]
async fn rapid_reset_is_cut_off_with_goaway() {
    const FLOOD: usize = 20_000;
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin).await;
    let tcp = TcpStream::connect(gateway).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut sent = 0;
    for _ in 0..FLOOD {
        let ready = match client.clone().ready().await {
            Ok(ready) => ready,
            Err(_) => break,
        };
        client = ready;
        let request = http::Request::get(format!("http://localhost:{}/", gateway.port()))
            .body(())
            .unwrap();
        match client.send_request(request, false) {
            Ok((_response, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        sent += 1;
        if sent % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let closed = tokio::time::timeout(Duration::from_secs(20), driver).await;
    assert!(
        sent < FLOOD,
        "the gateway took all {FLOOD} open-and-reset streams"
    );
    assert!(
        closed.is_ok(),
        "the connection was not closed after the flood"
    );
    assert!(
        origin.requests() < FLOOD / 10,
        "{} reset streams still reached the upstream",
        origin.requests()
    );
}
