//! `rampart gateway` behind another edge (`--require-edge-id`), through the real binary:
//! requests without a valid origin-lock record are refused, signed ones pass, and every
//! refusal lands in the audit trail.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_origin_lock::{Forwarding, Key, OriginLock};
use rampart_test_support::origin::ReflectingOrigin;

mod common;
use common::{RunningGateway, audit};

const EDGE_ID: &str = "outer-edge-1";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_gateway_behind_an_edge_refuses_unsigned_requests_and_audits_them() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    std::fs::write(&config, "[admin]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let keys = temp.path().join("edge.keys");
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, SECRET);
    std::fs::write(&keys, format!("k1:{encoded}\n")).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();

    let keys_arg = keys.to_str().unwrap();
    let origin_url = origin.url();
    let mut gateway = RunningGateway::start(
        &config,
        &data_dir,
        &[
            "--upstream",
            &origin_url,
            "--require-edge-id",
            EDGE_ID,
            "--edge-keys",
            keys_arg,
        ],
    );
    let addr = gateway.addr.clone();

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("http://{addr}/orders?id=7");
    let unsigned = client
        .request(Request::get(&url).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        origin.requests(),
        0,
        "an unsigned request reached the upstream"
    );

    let lock = OriginLock::new(
        EDGE_ID,
        Key::new("k1", SECRET).unwrap(),
        Vec::new(),
        Duration::from_secs(60),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    let forwarding = Forwarding {
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        client: "203.0.113.9".to_owned(),
        request_id: "edge-req-1".to_owned(),
    };
    lock.sign(&mut headers, "GET", "/orders?id=7", &forwarding);
    let mut signed = Request::get(&url);
    for (name, value) in &headers {
        signed = signed.header(name, value);
    }
    let signed = client
        .request(signed.body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    assert_eq!(origin.requests(), 1);

    gateway.stop();

    let tail = audit(
        &data_dir,
        &[
            "tail",
            "--filter",
            "decision=deny",
            "--filter",
            "component=gateway",
        ],
    );
    assert!(tail.status.success(), "{tail:?}");
    let tail = String::from_utf8_lossy(&tail.stdout);
    assert!(tail.contains("GET /orders?id=7"), "{tail}");
    assert!(tail.contains("origin_lock"), "{tail}");
    assert_eq!(
        tail.lines().filter(|line| line.contains("/orders")).count(),
        1,
        "{tail}"
    );
}
