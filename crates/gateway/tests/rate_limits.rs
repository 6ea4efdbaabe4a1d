//! Rate limits: shared by two gateways through a real Redis, and the documented fallback to
//! local buckets when Redis goes away mid-test.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{Gateway, GatewayOptions, RateLimitKey, RateLimitOptions};
use rampart_test_support::origin::ReflectingOrigin;
use rampart_test_support::redis::RedisServer;

async fn start(origin: &ReflectingOrigin, limit: RateLimitOptions) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.rate_limit = Some(limit);
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

fn shared_limit(redis: &RedisServer, burst: u32) -> RateLimitOptions {
    RateLimitOptions {
        // Practically no refill during the test: the burst is the whole allowance.
        rate_per_second: 0.0001,
        burst,
        key: RateLimitKey::Header(http::HeaderName::from_static("x-api-key")),
        redis_url: Some(redis.url()),
        redis_prefix: "rampart-test:".to_owned(),
        redis_timeout: Duration::from_millis(500),
    }
}

/// Sends `count` requests as client `key`; returns (allowed, limited).
async fn send(gateway: SocketAddr, key: &str, count: usize) -> (usize, usize) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (mut allowed, mut limited) = (0, 0);
    for _ in 0..count {
        let request = Request::get(format!("http://{gateway}/"))
            .header("x-api-key", key)
            .body(Full::default())
            .unwrap();
        let response = client.request(request).await.unwrap();
        match response.status().as_u16() {
            200 => allowed += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert!(String::from_utf8_lossy(&body).contains("rate_limited"));
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    (allowed, limited)
}

#[tokio::test]
async fn two_gateways_share_one_limit_through_redis() {
    let redis = RedisServer::start();
    let origin = ReflectingOrigin::start().await.unwrap();
    let first = start(&origin, shared_limit(&redis, 10)).await;
    let second = start(&origin, shared_limit(&redis, 10)).await;
    let (allowed_first, limited_first) = send(first, "tenant-a", 8).await;
    let (allowed_second, limited_second) = send(second, "tenant-a", 8).await;
    assert_eq!(
        allowed_first + allowed_second,
        10,
        "the two instances together allowed more or less than the limit"
    );
    assert_eq!(limited_first + limited_second, 6);
    // Another client has its own bucket.
    assert_eq!(send(second, "tenant-b", 3).await, (3, 0));
}

#[tokio::test]
async fn redis_down_falls_back_to_local_limits_not_to_no_limits() {
    let mut redis = RedisServer::start();
    let origin = ReflectingOrigin::start().await.unwrap();
    let first = start(&origin, shared_limit(&redis, 5)).await;
    let second = start(&origin, shared_limit(&redis, 5)).await;
    assert_eq!(send(first, "tenant-a", 3).await, (3, 0));
    redis.stop();
    // Each instance now enforces the limit on its own: 5 per instance, then 429s.
    assert_eq!(send(first, "tenant-a", 7).await, (5, 2));
    assert_eq!(send(second, "tenant-a", 7).await, (5, 2));
}
