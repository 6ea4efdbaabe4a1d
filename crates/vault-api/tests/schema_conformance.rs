//! Regressions found by schema fuzzing (crates/rampart/tests/vault_schema.rs runs schemathesis
//! with Azure's spec against `rampart up`): each test is a request that once answered 5xx, lost
//! the connection or answered outside Azure's response schema, through the router on a real
//! barrier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Store};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rampart_test_support::http1::keep_alive_request;
use rampart_vault_api::ApiConfig;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

const V: &str = "api-version=2026-04-01";

/// The spec's `*ListResult.nextLink` is a string: the last page omits it rather than sending
/// `null` (schemathesis' `response_schema_conformance` found `"nextLink": null`).
#[tokio::test]
async fn last_pages_omit_next_link() {
    let h = Harness::new(Store::Redb, ApiConfig::default()).await;
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/s1?{V}"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::POST,
            &format!("/keys/k1/create?{V}"),
            Some(json!({"kty": "EC"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for list in [
        "/secrets",
        "/secrets/s1/versions",
        "/deletedsecrets",
        "/keys",
        "/keys/k1/versions",
        "/deletedkeys",
        "/certificates",
        "/deletedcertificates",
    ] {
        let r = h.call(Method::GET, &format!("{list}?{V}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{list}: {:?}", r.body);
        assert!(r.body["value"].is_array(), "{list}: {:?}", r.body);
        assert!(r.body.get("nextLink").is_none(), "{list}: {:?}", r.body);
    }
    // A page that is not the last one still links to the next.
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/s2?{V}"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(Method::GET, &format!("/secrets?{V}&maxresults=1"), None)
        .await;
    assert!(r.body["nextLink"].is_string(), "{:?}", r.body);
    h.cleanup().await;
}

/// Sends one HTTP/1.1 request on `stream` (keep-alive) and reads one response with
/// Content-Length; returns the status. Panics when the server closed the connection.
async fn exchange(stream: &mut TcpStream, method: &str, path: &str, body: &[u8]) -> u16 {
    let headers = "Host: 127.0.0.1:8446\r\nAuthorization: Bearer allow:alice\r\n\
                   Content-Type: application/json\r\n";
    keep_alive_request(stream, method, path, headers, Some(body)).await
}

/// Answers given before the body is read (bad api-version, unknown path, 405, bad JSON) keep
/// the connection: hyper closed it when the body stayed unread, so schemathesis saw "EOF
/// occurred in violation of protocol" instead of the 400/404/405.
#[tokio::test]
async fn early_answers_keep_the_connection() {
    let h = Harness::new(Store::Redb, ApiConfig::default()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.api.router();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = vec![b'x'; 64 * 1024];
    let cases = [
        ("POST", "/keys/k/create?api-version=bad", 400),
        ("POST", "/nothing-here?api-version=2026-04-01", 404),
        ("PUT", "/keys/k/v1?api-version=2026-04-01", 405),
        ("PUT", "/secrets/s?api-version=2026-04-01", 400),
    ];
    for (method, path, status) in cases {
        assert_eq!(
            exchange(&mut stream, method, path, &body).await,
            status,
            "{method} {path}"
        );
        // The same connection still serves the next request.
        assert_eq!(
            exchange(&mut stream, "GET", "/secrets?api-version=2026-04-01", b"").await,
            200
        );
    }
    server.abort();
    h.cleanup().await;
}
