//! Origin lock end to end: the gateway signs, the documented Python verifier (examples/) accepts
//! what came through the gateway and refuses forged, late-replayed and bare requests; a gateway
//! in `require_edge` mode refuses requests that did not come through its outer edge.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{Gateway, GatewayOptions};
use rampart_origin_lock::{Forwarding, Key, OriginLock};
use rampart_test_support::origin::ReflectingOrigin;

const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

fn lock(secret: &[u8]) -> OriginLock {
    OriginLock::new(
        "edge-test",
        Key::new("k1", secret).unwrap(),
        vec![],
        Duration::from_secs(30),
    )
    .unwrap()
}

struct PythonBackend {
    child: Child,
    url: String,
}

impl PythonBackend {
    fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/origin-lock/verify_origin_lock.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--edge-id", "edge-test", "--key"])
            .arg(format!("k1:{}", URL_SAFE_NO_PAD.encode(SECRET)))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the origin-lock example test");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Self {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for PythonBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(options: GatewayOptions) -> SocketAddr {
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn get(url: &str, headers: &HeaderMap) -> (u16, serde_json::Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::get(url).body(Full::default()).unwrap();
    request.headers_mut().extend(headers.clone());
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn signed_headers(lock: &OriginLock, path: &str, timestamp: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    lock.sign(
        &mut headers,
        "GET",
        path,
        &Forwarding {
            timestamp,
            client: "198.51.100.1".to_owned(),
            request_id: "req-1".to_owned(),
        },
    );
    headers
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_python_example_accepts_only_what_came_through_the_gateway() {
    let backend = PythonBackend::start();
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), backend.url.clone());
    options.origin_lock = Some(lock(&SECRET));
    let gateway = start(options).await;

    let (status, body) = get(&format!("http://{gateway}/orders?id=7"), &HeaderMap::new()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], true);
    assert_eq!(body["client"], "127.0.0.1");

    let direct = format!("{}/orders?id=7", backend.url);
    let (status, body) = get(&direct, &HeaderMap::new()).await;
    assert_eq!(status, 403, "a bare request reached the backend: {body}");

    let (status, _) = get(
        &direct,
        &signed_headers(&lock(&SECRET), "/orders?id=7", now()),
    )
    .await;
    assert_eq!(status, 200, "the verifier rejects a valid record");

    let forged = signed_headers(
        &lock(b"another-secret-another-secret-xx"),
        "/orders?id=7",
        now(),
    );
    let (status, body) = get(&direct, &forged).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("bad signature"))
    );

    let other_path = signed_headers(&lock(&SECRET), "/orders?id=8", now());
    let (status, _) = get(&direct, &other_path).await;
    assert_eq!(status, 403, "a record for another path was accepted");

    let late = signed_headers(&lock(&SECRET), "/orders?id=7", now() - 120);
    let (status, body) = get(&direct, &late).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("stale record"))
    );
}

#[tokio::test]
async fn require_edge_mode_refuses_requests_that_bypassed_the_outer_edge() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.require_edge = Some(lock(&SECRET));
    let inner = start(options).await;

    let (status, body) = get(&format!("http://{inner}/a"), &HeaderMap::new()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("edge_required"))
    );
    assert_eq!(origin.requests(), 0);

    let headers = signed_headers(&lock(&SECRET), "/a", now());
    let (status, _) = get(&format!("http://{inner}/a"), &headers).await;
    assert_eq!(status, 200);
    assert_eq!(origin.requests(), 1);
}
