//! Upstream pools: round-robin over backends, failover when a backend is killed mid-test
//! (retries for idempotent requests, passive ejection for the rest), and active health checks
//! taking a backend out of rotation and back.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{Gateway, GatewayOptions, HealthCheck, PassiveEjection, RouteOptions};
use rampart_test_support::origin::ReflectingOrigin;

async fn start(route: RouteOptions) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), "http://unused");
    options.routes = vec![route];
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn status(gateway: SocketAddr, method: &str, body: &'static str) -> u16 {
    // A fresh client per request: the test is about the gateway's pool, not the client's.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{gateway}/orders"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn traffic_fails_over_when_a_backend_is_killed() {
    let first = ReflectingOrigin::start().await.unwrap();
    let second = ReflectingOrigin::start().await.unwrap();
    let mut route = RouteOptions::catch_all(vec![first.url(), second.url()]);
    route.retries = 1;
    route.ejection = PassiveEjection {
        consecutive_failures: 2,
        duration: Duration::from_secs(60),
    };
    let gateway = start(route).await;

    for _ in 0..10 {
        assert_eq!(status(gateway, "GET", "").await, 200);
    }
    assert!(
        first.requests() >= 3 && second.requests() >= 3,
        "not round-robin: {} / {}",
        first.requests(),
        second.requests()
    );

    drop(first);
    // Idempotent requests are retried on the other backend: no client sees the failure.
    for _ in 0..10 {
        assert_eq!(status(gateway, "GET", "").await, 200);
    }
    // The dead backend is ejected by now, so even requests that cannot be retried succeed.
    let served_before = second.requests();
    for _ in 0..6 {
        assert_eq!(status(gateway, "POST", "order=1").await, 200);
    }
    assert_eq!(second.requests(), served_before + 6);
}

#[tokio::test]
async fn health_checks_take_a_backend_out_of_rotation_and_back() {
    let sick = ReflectingOrigin::start().await.unwrap();
    let well = ReflectingOrigin::start().await.unwrap();
    let mut route = RouteOptions::catch_all(vec![sick.url(), well.url()]);
    route.health_check = Some(HealthCheck {
        path: "/healthz".to_owned(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        unhealthy_after: 2,
        healthy_after: 2,
    });
    let gateway = start(route).await;

    sick.set_healthy(false);
    // Wait for the checks to notice (polling, not a timing assertion).
    let mut out_of_rotation = false;
    for _ in 0..200 {
        let before = sick.requests();
        for _ in 0..4 {
            assert_eq!(status(gateway, "POST", "x").await, 200);
        }
        if sick.requests() == before {
            out_of_rotation = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(out_of_rotation, "an unhealthy backend kept getting traffic");

    sick.set_healthy(true);
    let mut back = false;
    for _ in 0..200 {
        let before = sick.requests();
        for _ in 0..4 {
            assert_eq!(status(gateway, "POST", "x").await, 200);
        }
        if sick.requests() > before {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "a recovered backend never came back into rotation");
}

#[tokio::test]
async fn requests_without_a_matching_route_get_404() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut route = RouteOptions::catch_all(vec![origin.url()]);
    route.host = Some("app.example".to_owned());
    let gateway = start(route).await;
    assert_eq!(status(gateway, "GET", "").await, 404);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn a_client_breaking_off_its_upload_does_not_eject_the_backend() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let first = ReflectingOrigin::start().await.unwrap();
    let second = ReflectingOrigin::start().await.unwrap();
    let mut route = RouteOptions::catch_all(vec![first.url(), second.url()]);
    // One failure would be enough to take a backend out for the rest of the test.
    route.ejection = PassiveEjection {
        consecutive_failures: 1,
        duration: Duration::from_secs(600),
    };
    let gateway = start(route).await;

    for _ in 0..2 {
        // Half an upload, then the client stops sending (and still reads the answer).
        let mut client = tokio::net::TcpStream::connect(gateway).await.unwrap();
        client
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: app\r\ncontent-length: 100000\r\n\r\npartial",
            )
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "the client's broken upload was blamed on the upstream: {answer}"
        );
    }
    // Both backends are still in rotation: requests keep alternating between them.
    let before = (first.requests(), second.requests());
    for _ in 0..6 {
        assert_eq!(status(gateway, "GET", "").await, 200);
    }
    // (A broken upload may reach its origin's counter late: at most one more per backend.)
    let served = (first.requests() - before.0, second.requests() - before.1);
    assert!(
        served.0 >= 3 && served.1 >= 3,
        "a backend was ejected for a client's broken upload: {served:?}"
    );
}
