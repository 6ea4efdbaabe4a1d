//! Filters in the request path: each phase can deny; denials carry the request id and nothing
//! else to the client, reach the deny observer with the reason and rule ids, and stop the
//! request before the upstream; bodies are inspected within limits.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{
    Denial, DeniedRequest, DenyObserver, Filter, FilterSession, Gateway, GatewayOptions,
    RateLimitOptions, RequestHead, Verdict,
};
use rampart_test_support::origin::ReflectingOrigin;

#[derive(Debug)]
struct Inspector;

struct InspectorSession;

impl Filter for Inspector {
    fn name(&self) -> &'static str {
        "inspector"
    }

    fn start(&self, _head: &RequestHead<'_>) -> Box<dyn FilterSession> {
        Box::new(InspectorSession)
    }
}

fn deny(rule: &str, reason: &str) -> Verdict {
    Verdict::Deny(Denial {
        status: StatusCode::FORBIDDEN,
        reason: reason.to_owned(),
        rule_ids: vec![rule.to_owned()],
    })
}

impl FilterSession for InspectorSession {
    fn request_headers(&mut self, head: &RequestHead<'_>) -> Verdict {
        if head.headers.contains_key("x-evil") {
            return deny("100", "evil header");
        }
        Verdict::Continue
    }

    fn request_body_limit(&self) -> usize {
        1024
    }

    fn request_body(&mut self, _head: &RequestHead<'_>, body: &[u8]) -> Verdict {
        if body.windows(6).any(|window| window == b"attack") {
            return deny("200", "attack in body");
        }
        Verdict::Continue
    }

    fn response_body_limit(&self) -> usize {
        4096
    }

    fn response_body(&mut self, body: &[u8], _complete: bool) -> Verdict {
        if body.windows(12).any(|window| window == b"secret-token") {
            return deny("300", "data leak in response");
        }
        Verdict::Continue
    }
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<DeniedRequest>>);

impl DenyObserver for Recorder {
    fn denied(&self, denial: DeniedRequest) {
        self.0.lock().unwrap().push(denial);
    }
}

async fn start(origin: &ReflectingOrigin, recorder: Arc<Recorder>) -> SocketAddr {
    let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
    options.filters = vec![Arc::new(Inspector)];
    options.deny_observer = Some(recorder);
    options.rate_limit = Some(RateLimitOptions {
        key: rampart_gateway::RateLimitKey::Header(http::HeaderName::from_static("x-client")),
        ..RateLimitOptions::per_client_ip(0.0001, 1)
    });
    let gateway = Gateway::bind(options).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    tokio::spawn(gateway.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn post(
    gateway: SocketAddr,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Bytes) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(format!("http://{gateway}/submit"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // Every request is its own rate-limit client unless the test says otherwise.
    if !headers.iter().any(|(name, _)| *name == "x-client") {
        request = request.header("x-client", uuid_like());
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("client-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[tokio::test]
async fn each_phase_can_deny_and_every_denial_is_observed() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let gateway = start(&origin, Arc::clone(&recorder)).await;

    let (status, headers, body) = post(gateway, &[("x-evil", "1")], b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("request_denied") && body.contains(headers["x-request-id"].to_str().unwrap()),
        "{body}"
    );
    assert!(
        !body.contains("evil"),
        "the denial reason leaked to the client: {body}"
    );

    let (status, _, _) = post(gateway, &[], b"an attack here".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        origin.requests(),
        0,
        "a denied request reached the upstream"
    );

    let (status, _, body) = post(gateway, &[], b"a fine body".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("a fine body"));

    let (status, _, _) = post(gateway, &[("x-leak", "secret-token")], b"ok".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, _) = post(gateway, &[("x-client", "same")], Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post(gateway, &[("x-client", "same")], Vec::new()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let denials = recorder.0.lock().unwrap().clone();
    let summary: Vec<(&str, Vec<String>, u16)> = denials
        .iter()
        .map(|denial| (denial.by, denial.rule_ids.clone(), denial.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("inspector", vec!["100".to_owned()], 403),
            ("inspector", vec!["200".to_owned()], 403),
            ("inspector", vec!["300".to_owned()], 403),
            ("rate_limit", vec![], 429),
        ]
    );
    assert_eq!(denials[0].reason, "evil header");
    assert_eq!(denials[0].path, "/submit");
    assert_eq!(denials[0].method, "POST");
}

#[tokio::test]
async fn bodies_over_the_inspection_limit_are_refused_and_large_responses_pass() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin, Arc::new(Recorder::default())).await;
    let (status, _, _) = post(gateway, &[], vec![b'a'; 2048]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A response larger than the response inspection limit streams through whole.
    let big_header = "b".repeat(8000);
    let (status, _, body) = post(gateway, &[("x-big", &big_header)], b"ok".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let reflected: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        reflected["headers"]["x-big"][0].as_str().unwrap().len(),
        8000
    );
}

#[tokio::test]
async fn inspected_responses_keep_their_content_length() {
    let origin = ReflectingOrigin::start().await.unwrap();
    let gateway = start(&origin, Arc::new(Recorder::default())).await;
    // Read whole by the filter (under its 4 KiB limit), and larger than the limit (the rest
    // streams after the inspected start): both keep the origin's length, neither is re-framed
    // as chunked.
    for header in ["small".to_owned(), "b".repeat(8000)] {
        // A GET without a body (the gateway's own HTTP/1.1 response writer) and a POST.
        let client: Client<_, http_body_util::Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let request = Request::get(format!("http://{gateway}/page"))
            .header("x-size", &header)
            .header("x-client", uuid_like())
            .body(http_body_util::Empty::new())
            .unwrap();
        let response = client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        assert_eq!(parts.status, StatusCode::OK);
        assert!(
            parts.headers.get(http::header::TRANSFER_ENCODING).is_none(),
            "{:?}",
            parts.headers
        );
        let length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .unwrap_or_else(|| panic!("no content-length: {:?}", parts.headers));
        assert_eq!(length.to_str().unwrap(), body.len().to_string());
        let (status, headers, body) = post(gateway, &[("x-size", &header)], b"ok".to_vec()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers.get(http::header::TRANSFER_ENCODING).is_none(),
            "{headers:?}"
        );
        let length = headers
            .get(http::header::CONTENT_LENGTH)
            .unwrap_or_else(|| panic!("no content-length: {headers:?}"));
        assert_eq!(length.to_str().unwrap(), body.len().to_string());
    }
}
