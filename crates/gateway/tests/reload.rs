//! Reloading a running gateway: new routes and rate limits apply to the next request, even on
//! a connection that stays open across the reload; a rejected reload keeps the running
//! settings.

use std::net::SocketAddr;
use std::time::Duration;

use rampart_gateway::{Gateway, GatewayOptions, RateLimitOptions};
use rampart_test_support::http1::keep_alive_get as get;
use rampart_test_support::origin::ReflectingOrigin;
use tokio::net::TcpStream;

#[tokio::test]
async fn routes_and_rate_limits_change_without_dropping_a_connection() {
    let before = ReflectingOrigin::start().await.unwrap();
    let after = ReflectingOrigin::start().await.unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let gateway = Gateway::bind(GatewayOptions::new(listen, before.url()))
        .await
        .unwrap();
    let addr = gateway.local_addr().unwrap();
    let reloader = gateway.reloader();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));

    let mut connection = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(&mut connection, "/one").await, 200);
    assert_eq!((before.requests(), after.requests()), (1, 0));

    // New upstream and a strict rate limit, applied while the connection stays open.
    let mut options = GatewayOptions::new(listen, after.url());
    options.rate_limit = Some(RateLimitOptions::per_client_ip(0.001, 1));
    reloader.reload(&options).unwrap();
    assert_eq!(get(&mut connection, "/two").await, 200);
    assert_eq!((before.requests(), after.requests()), (1, 1));
    assert_eq!(get(&mut connection, "/three").await, 429);
    assert_eq!(after.requests(), 1);

    // An invalid reload is refused and the running settings stay.
    let broken = GatewayOptions::new(listen, "ftp://nowhere");
    assert!(reloader.reload(&broken).is_err());
    assert_eq!(get(&mut connection, "/four").await, 429);

    // Same rate limit again: the buckets are kept, the client is still limited.
    reloader.reload(&options).unwrap();
    assert_eq!(get(&mut connection, "/five").await, 429);

    // Limit lifted: requests flow again, on the same connection.
    reloader
        .reload(&GatewayOptions::new(listen, after.url()))
        .unwrap();
    assert_eq!(get(&mut connection, "/six").await, 200);
    assert_eq!(after.requests(), 2);
}
