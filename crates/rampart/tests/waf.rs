//! The WAF in the gateway, through the real binary, running the OWASP Core Rule Set v4 from
//! `../shared` unchanged: clean traffic passes, SQL injection, XSS and path traversal are
//! refused before they reach the app, and every refusal is audited with the rule ids.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_test_support::origin::ReflectingOrigin;
use rampart_test_support::shared::shared_dir;

mod common;
use common::{RunningGateway, audit};

async fn send(addr: &str, method: &str, target: &str, body: &str) -> (u16, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{target}"))
        .header("host", "localhost")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("accept-language", "en-US,en;q=0.5");
    if body.starts_with('{') {
        request = request.header("content-type", "application/json");
    } else if !body.is_empty() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_core_rule_set_blocks_attacks_and_lets_clean_traffic_through() {
    let Some(shared) = shared_dir() else { return };
    let crs = shared.join("crs/v4.28.0");
    let origin = ReflectingOrigin::start().await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let config = temp.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[waf]\ncrs = \"{}\"\n",
            crs.display()
        ),
    )
    .unwrap();
    let mut gateway = RunningGateway::start(&config, &data_dir, &["--upstream", &origin.url()]);

    let (status, _) = send(&gateway.addr, "GET", "/orders?id=7&sort=date", "").await;
    assert_eq!(status, 200, "a clean GET was blocked");
    let (status, _) = send(
        &gateway.addr,
        "POST",
        "/comments",
        "name=Ann&comment=Nice+article%2C+thanks%21",
    )
    .await;
    assert_eq!(status, 200, "a clean form POST was blocked");
    let clean_json = r#"{"filter": {"name": "Ann", "tags": ["a", "b"]}}"#;
    let (status, _) = send(&gateway.addr, "POST", "/api/search", clean_json).await;
    assert_eq!(status, 200, "a clean JSON POST was blocked");
    assert_eq!(origin.requests(), 3);

    let attacks = [
        ("GET", "/orders?id=1%27%20OR%20%271%27%3D%271", ""),
        (
            "POST",
            "/comments",
            "comment=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
        ),
        ("GET", "/files?name=..%2F..%2F..%2F..%2Fetc%2Fpasswd", ""),
        // JSON bodies go through the JSON body processor (content-type rule 200001).
        (
            "POST",
            "/api/search",
            r#"{"filter": {"name": "x' UNION SELECT password FROM users--"}}"#,
        ),
    ];
    for (method, target, body) in attacks {
        let (status, answer) = send(&gateway.addr, method, target, body).await;
        assert_eq!(status, 403, "{method} {target} {body} was not blocked");
        // Only the error code and the request id, never rule ids or messages.
        let body: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("deny body is not JSON ({e}): {answer}"));
        let fields = body.as_object().expect("a JSON object");
        assert_eq!(body["error"], "request_denied", "{answer}");
        assert!(body["request_id"].is_string(), "{answer}");
        assert_eq!(fields.len(), 2, "rule internals leaked: {answer}");
    }
    assert_eq!(origin.requests(), 3, "an attack reached the app");

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
    let tail = String::from_utf8_lossy(&tail.stdout);
    assert_eq!(tail.lines().count(), 4, "{tail}");
    let show = audit(&data_dir, &["export", "--format", "jsonl"]);
    let records = String::from_utf8_lossy(&show.stdout);
    for expected in ["942100", "941100", "930100", "949110"] {
        assert!(
            records.contains(expected),
            "rule {expected} not in the audit trail:\n{records}"
        );
    }
}
