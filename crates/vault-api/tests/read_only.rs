//! Read-only mode (as during a regional failover), through the router on a real barrier with
//! a real audit log: every operation that changes state — secrets, keys, certificates,
//! contacts, policies — answers 503 `ServiceUnavailable` / `ReadOnlyMode` and is audited, and
//! changes nothing; reads, backups and sign/verify/encrypt/decrypt/wrap/unwrap keep working;
//! switching back restores writes; `ApiConfig::read_only` starts in the mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Store, b64, contains, unthrottled, version_of};
use rampart_vault_api::ApiConfig;
use serde_json::{Value, json};

const V: &str = "api-version=2026-04-01";

async fn ok(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Value {
    let r = h.call(method, &format!("{path}?{V}"), body).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_change_and_serves_reads_and_crypto() {
    let mut h = Harness::new(Store::Redb, unthrottled()).await;
    assert!(!h.api.is_read_only());
    // Before the failover: objects of every kind.
    let s = ok(&h, Method::PUT, "/secrets/s", Some(json!({"value": "v1"}))).await;
    let sv = version_of(&s["id"]);
    ok(&h, Method::PUT, "/secrets/sd", Some(json!({"value": "v"}))).await;
    ok(&h, Method::DELETE, "/secrets/sd", None).await;
    let k = ok(
        &h,
        Method::POST,
        "/keys/k/create",
        Some(json!({"kty": "RSA", "key_size": 2048})),
    )
    .await;
    let kv = version_of(&k["key"]["kid"]);
    ok(
        &h,
        Method::POST,
        "/keys/kd/create",
        Some(json!({"kty": "EC"})),
    )
    .await;
    ok(&h, Method::DELETE, "/keys/kd", None).await;
    let secret_blob = ok(&h, Method::POST, "/secrets/s/backup", None).await["value"].clone();
    let key_blob = ok(&h, Method::POST, "/keys/k/backup", None).await["value"].clone();
    let cert_policy =
        json!({"policy": {"x509_props": {"subject": "CN=c"}, "issuer": {"name": "Self"}}});
    ok(
        &h,
        Method::POST,
        "/certificates/c/create",
        Some(cert_policy.clone()),
    )
    .await;
    ok(
        &h,
        Method::PUT,
        "/certificates/contacts",
        Some(json!({"contacts": [{"email": "ops@example.com"}]})),
    )
    .await;
    let digest = b64(&[0x42; 32]);
    let sig = ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/sign"),
        Some(json!({"alg": "RS256", "value": digest})),
    )
    .await["value"]
        .clone();
    let ct = ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/encrypt"),
        Some(json!({"alg": "RSA-OAEP", "value": b64(b"hi")})),
    )
    .await["value"]
        .clone();

    h.api.set_read_only(true);
    assert!(h.api.is_read_only());

    let writes: Vec<(Method, String, Value)> = vec![
        (Method::PUT, "/secrets/s".into(), json!({"value": "v2"})),
        (Method::PUT, "/secrets/new".into(), json!({"value": "v"})),
        (
            Method::PATCH,
            format!("/secrets/s/{sv}"),
            json!({"attributes": {"enabled": false}}),
        ),
        (Method::DELETE, "/secrets/s".into(), json!({})),
        (Method::POST, "/deletedsecrets/sd/recover".into(), json!({})),
        (Method::DELETE, "/deletedsecrets/sd".into(), json!({})),
        (
            Method::POST,
            "/secrets/restore".into(),
            json!({"value": secret_blob}),
        ),
        (
            Method::POST,
            "/keys/new/create".into(),
            json!({"kty": "EC"}),
        ),
        (Method::POST, "/keys/k/create".into(), json!({"kty": "EC"})),
        (
            Method::PUT,
            "/keys/imp".into(),
            json!({"key": common::ec_p256_private_jwk()}),
        ),
        (
            Method::PATCH,
            format!("/keys/k/{kv}"),
            json!({"attributes": {"enabled": false}}),
        ),
        (Method::DELETE, "/keys/k".into(), json!({})),
        (Method::POST, "/keys/k/rotate".into(), json!({})),
        (
            Method::PUT,
            "/keys/k/rotationpolicy".into(),
            json!({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}]}),
        ),
        (Method::POST, "/deletedkeys/kd/recover".into(), json!({})),
        (Method::DELETE, "/deletedkeys/kd".into(), json!({})),
        (
            Method::POST,
            "/keys/restore".into(),
            json!({"value": key_blob}),
        ),
        (
            Method::POST,
            "/certificates/c2/create".into(),
            cert_policy.clone(),
        ),
        (Method::POST, "/certificates/c/create".into(), cert_policy),
        (
            Method::POST,
            "/certificates/c3/import".into(),
            json!({"value": "x"}),
        ),
        (
            Method::PATCH,
            "/certificates/c".into(),
            json!({"attributes": {"enabled": false}}),
        ),
        (
            Method::PATCH,
            "/certificates/c/policy".into(),
            json!({"x509_props": {"validity_months": 3}}),
        ),
        (Method::DELETE, "/certificates/c".into(), json!({})),
        (
            Method::PATCH,
            "/certificates/c/pending".into(),
            json!({"cancellation_requested": true}),
        ),
        (Method::DELETE, "/certificates/c/pending".into(), json!({})),
        (
            Method::POST,
            "/certificates/c/pending/merge".into(),
            json!({"x5c": []}),
        ),
        (
            Method::POST,
            "/deletedcertificates/c/recover".into(),
            json!({}),
        ),
        (Method::DELETE, "/deletedcertificates/c".into(), json!({})),
        (
            Method::POST,
            "/certificates/restore".into(),
            json!({"value": "x"}),
        ),
        (
            Method::PUT,
            "/certificates/contacts".into(),
            json!({"contacts": []}),
        ),
        (Method::DELETE, "/certificates/contacts".into(), json!({})),
    ];
    for (method, path, body) in &writes {
        let r = h
            .call(method.clone(), &format!("{path}?{V}"), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["code"], "ServiceUnavailable", "{path}");
        assert_eq!(
            r.body["error"]["innererror"]["code"], "ReadOnlyMode",
            "{path}"
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("read-only"),
            "{path}"
        );
    }
    // Authentication still comes first: the SDK's challenge flow works during a failover.
    let r = h
        .send(
            Method::PUT,
            "127.0.0.1:8446",
            &format!("/secrets/s?{V}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Reads, backups and crypto keep working.
    let got = ok(&h, Method::GET, "/secrets/s", None).await;
    assert_eq!(got["value"], "v1", "the secret did not change");
    assert_eq!(
        ok(&h, Method::GET, "/secrets/s/versions", None).await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ok(&h, Method::GET, "/secrets", None).await;
    ok(&h, Method::GET, "/deletedsecrets/sd", None).await;
    ok(&h, Method::POST, "/secrets/s/backup", None).await;
    let key = ok(&h, Method::GET, "/keys/k", None).await;
    assert!(key["attributes"]["enabled"].as_bool().unwrap());
    assert_eq!(version_of(&key["key"]["kid"]), kv, "no rotation happened");
    ok(&h, Method::GET, "/keys", None).await;
    ok(&h, Method::GET, "/deletedkeys/kd", None).await;
    ok(&h, Method::GET, "/keys/k/rotationpolicy", None).await;
    ok(&h, Method::POST, "/keys/k/backup", None).await;
    ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/sign"),
        Some(json!({"alg": "RS256", "value": digest})),
    )
    .await;
    let verified = ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/verify"),
        Some(json!({"alg": "RS256", "digest": digest, "value": sig})),
    )
    .await;
    assert_eq!(verified["value"], true);
    ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/encrypt"),
        Some(json!({"alg": "RSA-OAEP", "value": b64(b"x")})),
    )
    .await;
    let plain = ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/decrypt"),
        Some(json!({"alg": "RSA-OAEP", "value": ct})),
    )
    .await;
    assert_eq!(plain["value"], b64(b"hi"));
    let wrapped = ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/wrapkey"),
        Some(json!({"alg": "RSA-OAEP", "value": b64(&[1; 32])})),
    )
    .await["value"]
        .clone();
    ok(
        &h,
        Method::POST,
        &format!("/keys/k/{kv}/unwrapkey"),
        Some(json!({"alg": "RSA-OAEP", "value": wrapped})),
    )
    .await;
    ok(&h, Method::POST, "/rng", Some(json!({"count": 8}))).await;
    ok(&h, Method::GET, "/certificates/c", None).await;
    ok(&h, Method::GET, "/certificates", None).await;
    ok(&h, Method::GET, "/certificates/c/policy", None).await;
    ok(&h, Method::GET, "/certificates/c/pending", None).await;
    ok(&h, Method::POST, "/certificates/c/backup", None).await;
    let contacts = ok(&h, Method::GET, "/certificates/contacts", None).await;
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 1);

    // Out of read-only mode: writes work again.
    h.api.set_read_only(false);
    ok(&h, Method::PUT, "/secrets/s", Some(json!({"value": "v2"}))).await;
    ok(&h, Method::DELETE, "/deletedsecrets/sd", None).await;

    // Every refusal is in the audit trail, with the reason.
    let audit = h.audit_bytes().await;
    assert!(contains(&audit, b"read-only mode"));
    for action in ["secret.set", "key.rotate", "certificate.set_contacts"] {
        assert!(contains(&audit, action.as_bytes()), "{action}");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn the_config_can_start_read_only() {
    let config = ApiConfig {
        read_only: true,
        ..ApiConfig::default()
    };
    let h = Harness::new(Store::Redb, config).await;
    assert!(h.api.is_read_only());
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/s?{V}"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"]["innererror"]["code"], "ReadOnlyMode");
    let r = h.call(Method::GET, &format!("/secrets?{V}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    h.cleanup().await;
}
