//! The certificates API through the router (`oneshot`), on a real barrier (redb and
//! PostgreSQL) with a real audit log: create (Self and Unknown + merge), the linked managed
//! secret, import, policy, soft delete/recover/purge, contacts, auth.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, Store};
use rampart_vault_api::ApiConfig;
use serde_json::json;
use x509_parser::prelude::FromDer as _;

const V: &str = "api-version=2026-04-01";

/// Signs `public_raw` (an EC P-256 point) under a fresh rcgen CA; returns (leaf, ca) DER.
fn ca_sign(public_raw: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    struct Pk(Vec<u8>);
    impl rcgen::PublicKeyData for Pk {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }
        fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
            &rcgen::PKCS_ECDSA_P256_SHA256
        }
    }
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["api.example.com".to_owned()])
        .unwrap()
        .signed_by(&Pk(public_raw), &ca_cert, &ca_key)
        .unwrap();
    (leaf.der().to_vec(), ca_cert.der().to_vec())
}

async fn lifecycle(store: Store) {
    let h = Harness::new(store, ApiConfig::default()).await;
    // Auth first: no token → 401 challenge, no role → 403.
    let body = json!({"policy": {"x509_props": {"subject": "CN=web"}, "issuer": {"name": "Self"}}});
    let r = h
        .send(
            Method::POST,
            "127.0.0.1:8446",
            &format!("/certificates/web/create?{V}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Method::POST,
            "127.0.0.1:8446",
            &format!("/certificates/web/create?{V}"),
            Some("deny:bob"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Self-signed create: 202 with a completed operation.
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/web/create?{V}"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        r.body["status"], "inProgress",
        "Azure's create answer is asynchronous"
    );
    assert_eq!(
        r.body["id"],
        "https://127.0.0.1:8446/certificates/web/pending"
    );
    let r = h
        .call(Method::GET, &format!("/certificates/web/pending?{V}"), None)
        .await;
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["target"], "https://127.0.0.1:8446/certificates/web");

    let r = h
        .call(Method::GET, &format!("/certificates/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let version = id.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        r.body["kid"],
        format!("https://127.0.0.1:8446/keys/web/{version}")
    );
    assert_eq!(
        r.body["sid"],
        format!("https://127.0.0.1:8446/secrets/web/{version}")
    );
    assert_eq!(
        r.body["policy"]["id"],
        "https://127.0.0.1:8446/certificates/web/policy"
    );
    assert_eq!(r.body["policy"]["key_props"]["kty"], "RSA");
    let cer = STANDARD.decode(r.body["cer"].as_str().unwrap()).unwrap();
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&cer).unwrap();
    assert_eq!(parsed.subject().to_string(), "CN=web");
    assert!(r.body["x5t"].as_str().unwrap().len() >= 27);

    // The linked secret: managed, PFX, and it cannot be changed directly.
    let r = h
        .call(Method::GET, &format!("/secrets/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["managed"], true);
    assert_eq!(r.body["contentType"], "application/x-pkcs12");
    assert!(STANDARD.decode(r.body["value"].as_str().unwrap()).is_ok());
    let r = h
        .call(Method::DELETE, &format!("/secrets/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = h
        .call(
            Method::PUT,
            &format!("/secrets/web?{V}"),
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(
        r.body["error"]["innererror"]["code"], "SecretManagedByKeyVault",
        "{:?}",
        r.body
    );

    // The linked key: usable, but every direct change is refused as Azure does (403
    // KeyManagedByKeyVault, "Operation "delete" is not allowed as this object's lifetime is
    // managed by Key Vault.").
    let r = h.call(Method::GET, &format!("/keys/web?{V}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["managed"], true);
    let kid = r.body["key"]["kid"].as_str().unwrap().to_owned();
    let kv = kid.rsplit('/').next().unwrap().to_owned();
    let r = h
        .call(
            Method::POST,
            &format!("/keys/web/{kv}/sign?{V}"),
            Some(json!({"alg": "RS256", "value": common::b64(&[1; 32])})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "sign with a certificate's key: {:?}",
        r.body
    );
    for (method, path, body, operation) in [
        (Method::DELETE, "/keys/web".to_owned(), None, "delete"),
        (
            Method::PATCH,
            format!("/keys/web/{kv}"),
            Some(json!({"attributes": {"enabled": false}})),
            "update",
        ),
        (Method::POST, "/keys/web/rotate".to_owned(), None, "rotate"),
        (
            Method::POST,
            "/keys/web/create".to_owned(),
            Some(json!({"kty": "RSA"})),
            "create",
        ),
        (
            Method::PUT,
            "/keys/web".to_owned(),
            Some(json!({"key": common::ec_p256_private_jwk()})),
            "import",
        ),
        (
            Method::PUT,
            "/keys/web/rotationpolicy".to_owned(),
            Some(
                json!({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}]}),
            ),
            "setRotationPolicy",
        ),
    ] {
        let r = h.call(method, &format!("{path}?{V}"), body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "Forbidden");
        assert_eq!(
            r.body["error"]["innererror"]["code"],
            "KeyManagedByKeyVault"
        );
        assert_eq!(
            r.body["error"]["message"],
            format!(
                "Operation \"{operation}\" is not allowed as this object's lifetime is managed by Key Vault."
            )
        );
    }
    let r = h.call(Method::GET, &format!("/keys/web?{V}"), None).await;
    assert_eq!(r.body["key"]["kid"], kid, "no new version");
    assert_eq!(r.body["attributes"]["enabled"], true);

    // Policy get/patch; a bad policy is a 400 BadParameter.
    let r = h
        .call(
            Method::PATCH,
            &format!("/certificates/web/policy?{V}"),
            Some(json!({"x509_props": {"validity_months": 24}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["x509_props"]["validity_months"], 24);
    let r = h
        .call(Method::GET, &format!("/certificates/web/policy?{V}"), None)
        .await;
    assert_eq!(r.body["x509_props"]["validity_months"], 24);
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/bad/create?{V}"),
            Some(json!({"policy": {"key_props": {"kty": "RSA", "key_size": 1024}, "x509_props": {"subject": "CN=x"}, "issuer": {"name": "Self"}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "BadParameter");

    // Unknown issuer: CSR, merge with a wrong key refused, right one completes (201).
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/ext/create?{V}"),
            Some(
                json!({"policy": {"key_props": {"kty": "EC", "crv": "P-256"},
                "x509_props": {"subject": "CN=api.example.com"}, "issuer": {"name": "Unknown"}}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["status"], "inProgress");
    let csr = STANDARD.decode(r.body["csr"].as_str().unwrap()).unwrap();
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&csr).unwrap();
    let public = req
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (wrong, _) = ca_sign(other.public_key_raw().to_vec());
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/ext/pending/merge?{V}"),
            Some(json!({"x5c": [STANDARD.encode(wrong)]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let (leaf, ca) = ca_sign(public);
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/ext/pending/merge?{V}"),
            Some(json!({"x5c": [STANDARD.encode(&leaf), STANDARD.encode(ca)]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["cer"], STANDARD.encode(&leaf));
    let r = h
        .call(Method::GET, &format!("/certificates/ext/pending?{V}"), None)
        .await;
    assert_eq!(r.body["status"], "completed");

    // List and versions.
    let r = h
        .call(Method::GET, &format!("/certificates?{V}"), None)
        .await;
    let names: Vec<&str> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["ext", "web"]);
    let r = h
        .call(
            Method::GET,
            &format!("/certificates/web/versions?{V}"),
            None,
        )
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);

    // Backup, then restore after purge (below) brings the certificate, key and secret back.
    let r = h
        .call(Method::POST, &format!("/certificates/ext/backup?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ext_backup = r.body["value"].as_str().unwrap().to_owned();
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/restore?{V}"),
            Some(json!({"value": ext_backup})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "exists: {:?}", r.body);
    // A vault of another geography refuses the blob; one of the same geography takes it.
    for (vault, geography) in [("elsewhere", "us"), ("same-geo", "eu")] {
        h.api
            .registry()
            .create(
                vault,
                &rampart_vault::VaultOptions {
                    geography: geography.into(),
                    ..rampart_vault::VaultOptions::default()
                },
            )
            .await
            .unwrap();
    }
    let r = h
        .send(
            Method::POST,
            "elsewhere.vault.localhost",
            &format!("/certificates/restore?{V}"),
            Some("allow:a"),
            Some(json!({"value": ext_backup})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("geography")
    );
    let r = h
        .send(
            Method::POST,
            "same-geo.vault.localhost",
            &format!("/certificates/restore?{V}"),
            Some("allow:a"),
            Some(json!({"value": ext_backup})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .send(
            Method::GET,
            "same-geo.vault.localhost",
            &format!("/secrets/ext?{V}"),
            Some("allow:a"),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the secret came along: {:?}",
        r.body
    );
    h.call(Method::DELETE, &format!("/certificates/ext?{V}"), None)
        .await;
    let r = h
        .call(
            Method::DELETE,
            &format!("/deletedcertificates/ext?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            Method::POST,
            &format!("/certificates/restore?{V}"),
            Some(json!({"value": ext_backup})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["cer"], STANDARD.encode(&leaf));
    let r = h
        .call(Method::GET, &format!("/secrets/ext?{V}"), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "secret restored with its certificate"
    );
    assert_eq!(r.body["managed"], true);

    // Delete / recover / delete / purge.
    let r = h
        .call(Method::DELETE, &format!("/certificates/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["recoveryId"],
        "https://127.0.0.1:8446/deletedcertificates/web"
    );
    let r = h
        .call(Method::GET, &format!("/certificates/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::GET, &format!("/deletedcertificates/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(Method::GET, &format!("/deletedcertificates?{V}"), None)
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = h
        .call(
            Method::POST,
            &format!("/deletedcertificates/web/recover?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .call(Method::GET, &format!("/secrets/web?{V}"), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "secret recovered with its certificate"
    );
    h.call(Method::DELETE, &format!("/certificates/web?{V}"), None)
        .await;
    let r = h
        .call(
            Method::DELETE,
            &format!("/deletedcertificates/web?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(Method::GET, &format!("/deletedcertificates/web?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::GET, &format!("/deletedsecrets/web?{V}"), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "secret purged with its certificate"
    );

    // Contacts.
    let r = h
        .call(Method::GET, &format!("/certificates/contacts?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::PUT,
            &format!("/certificates/contacts?{V}"),
            Some(json!({"contacts": [{"email": "ops@example.com", "name": "Ops"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .call(Method::GET, &format!("/certificates/contacts?{V}"), None)
        .await;
    assert_eq!(r.body["contacts"][0]["email"], "ops@example.com");
    let r = h
        .call(Method::DELETE, &format!("/certificates/contacts?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_lifecycle_redb() {
    lifecycle(Store::Redb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_lifecycle_postgres() {
    lifecycle(Store::Postgres).await;
}
