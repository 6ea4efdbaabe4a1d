//! Load shedding: with the upstream slow and the bound reached, the excess gets 503 with
//! Retry-After at once instead of queuing forever, and the upstream sees only what was admitted.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{Gateway, GatewayOptions, LoadShedding};
use rampart_test_support::origin::ReflectingOrigin;

#[tokio::test]
async fn excess_requests_are_shed_with_503_and_retry_after() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.load_shedding = LoadShedding {
        max_in_flight: 2,
        max_queued: 1,
        max_queue_wait: Duration::from_millis(100),
    };
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let requests = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            let request = Request::get(format!("http://{addr}/slow?ms=1500"))
                .body(Full::default())
                .unwrap();
            let response = client.request(request).await.unwrap();
            (
                response.status().as_u16(),
                response.headers().get("retry-after").cloned(),
            )
        })
    });
    let mut ok = 0;
    let mut shed = 0;
    for request in requests.collect::<Vec<_>>() {
        match request.await.unwrap() {
            (200, _) => ok += 1,
            (503, retry_after) => {
                assert_eq!(retry_after.unwrap(), "1");
                shed += 1;
            }
            (status, _) => panic!("unexpected status {status}"),
        }
    }
    assert_eq!(ok + shed, 8);
    assert!(ok >= 2, "admitted requests failed");
    assert!(
        shed >= 5,
        "only {shed} of 8 shed with 2 slots and 1 queue place"
    );
    assert!(
        origin.requests() <= 3,
        "{} requests reached the upstream",
        origin.requests()
    );
}
