//! Azure's key-type throttle classes through the router: a low configured limit on one class
//! gives 429 `Throttled` with `Retry-After` for that class — the type read from the key's
//! record for operations on an existing key, from the request for create and import — while
//! other classes and unclassed operations go on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Harness, Reply, Store, b64, contains, ec_p256_private_jwk, unthrottled};
use serde_json::{Value, json};

const V: &str = "api-version=2026-04-01";

async fn call(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Reply {
    h.call(method, &format!("{path}?{V}"), body).await
}

#[track_caller]
fn ok(r: &Reply, what: &str) {
    assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
}

#[track_caller]
fn throttled(r: &Reply, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {}",
        r.body
    );
    assert_eq!(r.body["error"]["code"], "Throttled", "{what}");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{what}: Retry-After {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_key_class_limit_throttles_that_class_only() {
    let mut config = unthrottled();
    // An hour-long window: no token comes back during the test.
    config.throttle.window = Duration::from_secs(3600);
    config
        .throttle
        .classes
        .insert("key-software-ec-p-384".into(), 3);
    config
        .throttle
        .classes
        .insert("key-hsm-ec-p-256-create".into(), 1);
    let mut h = Harness::new(Store::Redb, config).await;

    // Creates of other classes are not limited.
    ok(
        &call(
            &h,
            Method::POST,
            "/keys/p384/create",
            Some(json!({"kty": "EC", "crv": "P-384"})),
        )
        .await,
        "create P-384",
    );
    ok(
        &call(
            &h,
            Method::POST,
            "/keys/p256/create",
            Some(json!({"kty": "EC"})),
        )
        .await,
        "create P-256",
    );

    // Operations on the P-384 key share its class: 3 pass, then 429.
    ok(&call(&h, Method::GET, "/keys/p384", None).await, "get 1");
    let digest = b64(&[0x11; 48]);
    ok(
        &call(
            &h,
            Method::POST,
            "/keys/p384//sign",
            Some(json!({"alg": "ES384", "value": digest})),
        )
        .await,
        "sign",
    );
    ok(
        &call(&h, Method::GET, "/keys/p384/versions", None).await,
        "versions",
    );
    throttled(&call(&h, Method::GET, "/keys/p384", None).await, "get 4");
    throttled(
        &call(
            &h,
            Method::POST,
            "/keys/p384//sign",
            Some(json!({"alg": "ES384", "value": digest})),
        )
        .await,
        "sign 2",
    );
    // Another key type, lists and secrets are unaffected.
    for _ in 0..5 {
        ok(
            &call(&h, Method::GET, "/keys/p256", None).await,
            "P-256 get",
        );
    }
    ok(&call(&h, Method::GET, "/keys", None).await, "list");
    ok(
        &call(&h, Method::PUT, "/secrets/s", Some(json!({"value": "v"}))).await,
        "secret",
    );

    // Create classes come from the request: one EC-HSM P-256 creation, then 429 — for create
    // and for an import marked HSM alike — while software P-256 creations and rotations go on.
    ok(
        &call(
            &h,
            Method::POST,
            "/keys/hsm1/create",
            Some(json!({"kty": "EC-HSM"})),
        )
        .await,
        "EC-HSM create",
    );
    throttled(
        &call(
            &h,
            Method::POST,
            "/keys/hsm2/create",
            Some(json!({"kty": "EC-HSM", "crv": "P-256"})),
        )
        .await,
        "EC-HSM create 2",
    );
    throttled(
        &call(
            &h,
            Method::PUT,
            "/keys/hsm3",
            Some(json!({"key": ec_p256_private_jwk(), "Hsm": true})),
        )
        .await,
        "HSM import",
    );
    ok(
        &call(
            &h,
            Method::PUT,
            "/keys/soft",
            Some(json!({"key": ec_p256_private_jwk()})),
        )
        .await,
        "software import",
    );
    ok(
        &call(&h, Method::POST, "/keys/p256/rotate", None).await,
        "rotate",
    );
    // Operations on the HSM key (not creations) are another class.
    ok(
        &call(&h, Method::GET, "/keys/hsm1", None).await,
        "EC-HSM get",
    );
    // The refused creations made nothing.
    assert_eq!(
        call(&h, Method::GET, "/keys/hsm2", None).await.status,
        StatusCode::NOT_FOUND
    );

    let audit = h.audit_bytes().await;
    assert!(contains(&audit, b"key-software-ec-p-384"));
    assert!(contains(&audit, b"key-hsm-ec-p-256-create"));
    h.cleanup().await;
}
