//! The keys API through the router (`oneshot`), on a real barrier (redb and PostgreSQL) with a
//! real audit log: shapes, ids, base64url values, status codes, data actions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::signature::{self, KeyPair as _};
use axum::http::{Method, StatusCode};
use common::{Harness, Store, b64, version_of};
use rampart_vault::keys::{B64, JsonWebKey, SignatureAlgorithm, verify_with_public_jwk};
use rampart_vault_api::ApiConfig;
use serde_json::{Value, json};

const V: &str = "api-version=2026-04-01";
const HOST: &str = "https://127.0.0.1:8446";

fn unb64(v: &Value) -> Vec<u8> {
    let text = v.as_str().unwrap();
    assert!(
        !text.contains('=') && !text.contains('+') && !text.contains('/'),
        "{text}"
    );
    B64::decode(text).unwrap().bytes().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

async fn lifecycle(store: Store) {
    let h = Harness::new(store, ApiConfig::default()).await;

    // Create: RSA 2048 with defaults.
    let r = h
        .call(
            Method::POST,
            &format!("/keys/Signer/create?{V}"),
            Some(json!({"kty": "RSA", "key_size": 2048, "tags": {"team": "pay"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let kid = r.body["key"]["kid"].as_str().unwrap().to_owned();
    let v1 = version_of(&r.body["key"]["kid"]);
    assert_eq!(kid, format!("{HOST}/keys/Signer/{v1}"));
    assert_eq!(r.body["key"]["kty"], "RSA");
    assert_eq!(unb64(&r.body["key"]["n"]).len(), 256);
    assert_eq!(unb64(&r.body["key"]["e"]), [1, 0, 1]);
    assert!(r.body["key"].get("d").is_none() && r.body["key"].get("p").is_none());
    assert_eq!(
        r.body["key"]["key_ops"],
        json!([
            "encrypt",
            "decrypt",
            "sign",
            "verify",
            "wrapKey",
            "unwrapKey"
        ])
    );
    assert_eq!(r.body["attributes"]["enabled"], true);
    assert_eq!(
        r.body["attributes"]["recoveryLevel"],
        "Recoverable+Purgeable"
    );
    assert_eq!(r.body["tags"]["team"], "pay");
    let public: JsonWebKey = serde_json::from_value(r.body["key"].clone()).unwrap();

    // Get: latest (SDK form with the empty version) and by version.
    for path in ["/keys/signer/", "/keys/signer"] {
        let r = h.call(Method::GET, &format!("{path}?{V}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["key"]["kid"], kid.as_str());
    }
    let r = h
        .call(Method::GET, &format!("/keys/signer/{v1}?{V}"), None)
        .await;
    assert_eq!(
        r.body["key"]["n"],
        json!(public.n.as_ref().unwrap().encode())
    );

    // Sign over a digest; verify in the vault and with the public key alone.
    let digest = sha256(b"payload");
    let r = h
        .call(
            Method::POST,
            &format!("/keys/signer/{v1}/sign?{V}"),
            Some(json!({"alg": "PS256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["kid"], kid.as_str());
    let sig = unb64(&r.body["value"]);
    assert!(verify_with_public_jwk(&public, SignatureAlgorithm::Ps256, &digest, &sig).unwrap());
    assert_eq!(
        h.authz.seen.lock().unwrap().last().unwrap(),
        &(
            "Microsoft.KeyVault/vaults/keys/sign/action".to_owned(),
            "/vaults/default/keys/signer".to_owned()
        )
    );
    for (d, expected) in [(digest.clone(), true), (sha256(b"other"), false)] {
        let r = h
            .call(
                Method::POST,
                &format!("/keys/signer/{v1}/verify?{V}"),
                Some(json!({"alg": "PS256", "digest": b64(&d), "value": b64(&sig)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["value"], expected);
    }
    // Latest version through the empty-version path.
    let r = h
        .call(
            Method::POST,
            &format!("/keys/signer//sign?{V}"),
            Some(json!({"alg": "RS256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["kid"], kid.as_str());

    // Encrypt/decrypt and wrap/unwrap.
    for (enc, dec) in [("encrypt", "decrypt"), ("wrapkey", "unwrapkey")] {
        for alg in ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] {
            let r = h
                .call(
                    Method::POST,
                    &format!("/keys/signer/{v1}/{enc}?{V}"),
                    Some(json!({"alg": alg, "value": b64(b"sixteen byte key")})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{enc} {alg}: {}", r.body);
            let ct = r.body["value"].clone();
            let r = h
                .call(
                    Method::POST,
                    &format!("/keys/signer/{v1}/{dec}?{V}"),
                    Some(json!({"alg": alg, "value": ct})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{dec} {alg}: {}", r.body);
            assert_eq!(unb64(&r.body["value"]), b"sixteen byte key");
        }
    }

    // Bad requests: typed 400s.
    for (path, body) in [
        ("/keys/x/create", json!({"kty": "oct"})),
        ("/keys/x/create", json!({"kty": "RSA", "key_size": 1024})),
        ("/keys/x/create", json!({"kty": "EC", "crv": "P-224"})),
        (
            "/keys/signer//sign",
            json!({"alg": "HS256", "value": b64(&digest)}),
        ),
        (
            "/keys/signer//sign",
            json!({"alg": "RS256", "value": b64(&digest[..5])}),
        ),
        ("/keys/signer//sign", json!({"alg": "RS256", "value": "!!"})),
        ("/rng", json!({"count": 0})),
        ("/rng", json!({"count": 129})),
    ] {
        let r = h
            .call(Method::POST, &format!("{path}?{V}"), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["code"], "BadParameter", "{}", r.body);
    }
    let r = h
        .call(
            Method::POST,
            &format!("/rng?{V}"),
            Some(json!({"count": 32})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(unb64(&r.body["value"]).len(), 32);

    // key_ops enforcement and disabled keys: 403.
    let r = h
        .call(
            Method::PATCH,
            &format!("/keys/signer/{v1}?{V}"),
            Some(json!({"key_ops": ["verify"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key"]["key_ops"], json!(["verify"]));
    let r = h
        .call(
            Method::POST,
            &format!("/keys/signer/{v1}/sign?{V}"),
            Some(json!({"alg": "RS256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h
        .call(
            Method::PATCH,
            &format!("/keys/signer/?{V}"),
            Some(json!({"key_ops": ["sign"], "attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call(
            Method::POST,
            &format!("/keys/signer/{v1}/sign?{V}"),
            Some(json!({"alg": "RS256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["innererror"]["code"], "KeyDisabled");

    // Rotate, versions, list.
    let r = h
        .call(Method::POST, &format!("/keys/signer/rotate?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v2 = version_of(&r.body["key"]["kid"]);
    assert_ne!(v2, v1);
    assert_eq!(r.body["key"]["key_ops"], json!(["sign"]));
    let r = h
        .call(Method::GET, &format!("/keys/signer/versions?{V}"), None)
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2, "{}", r.body);
    h.call(
        Method::POST,
        &format!("/keys/Curve/create?{V}"),
        Some(json!({"kty": "EC-HSM", "crv": "P-256K"})),
    )
    .await;
    let r = h
        .call(Method::GET, &format!("/keys?{V}&maxresults=1"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["value"][0]["kid"], format!("{HOST}/keys/Curve"));
    assert!(r.body["nextLink"].as_str().unwrap().starts_with(HOST));

    // Rotation policy: default, set, read back; invalid → 400.
    let r = h
        .call(
            Method::GET,
            &format!("/keys/signer/rotationpolicy?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], format!("{HOST}/keys/signer/rotationpolicy"));
    assert_eq!(r.body["lifetimeActions"][0]["action"]["type"], "Notify");
    let policy = json!({
        "lifetimeActions": [
            {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
            {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}
        ],
        "attributes": {"expiryTime": "P1Y"}
    });
    let r = h
        .call(
            Method::PUT,
            &format!("/keys/signer/rotationpolicy?{V}"),
            Some(policy),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call(
            Method::GET,
            &format!("/keys/signer/rotationpolicy?{V}"),
            None,
        )
        .await;
    assert_eq!(
        r.body["lifetimeActions"][0]["trigger"]["timeAfterCreate"],
        "P90D"
    );
    assert_eq!(r.body["attributes"]["expiryTime"], "P1Y");
    assert!(r.body["attributes"]["created"].as_i64().unwrap() > 0);
    let r = h
        .call(
            Method::PUT,
            &format!("/keys/signer/rotationpolicy?{V}"),
            Some(json!({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D"}, "action": {"type": "Rotate"}}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Backup, delete, 409 on reuse, deleted views, recover, purge, restore.
    let r = h
        .call(Method::POST, &format!("/keys/signer/backup?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let blob = r.body["value"].as_str().unwrap().to_owned();
    let r = h
        .call(Method::DELETE, &format!("/keys/signer?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["recoveryId"], format!("{HOST}/deletedkeys/Signer"));
    assert!(
        r.body["scheduledPurgeDate"].as_i64().unwrap() > r.body["deletedDate"].as_i64().unwrap()
    );
    let r = h
        .call(Method::GET, &format!("/keys/signer?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "KeyNotFound");
    let r = h
        .call(
            Method::POST,
            &format!("/keys/signer/create?{V}"),
            Some(json!({"kty": "RSA"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = h
        .call(Method::GET, &format!("/deletedkeys?{V}"), None)
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = h
        .call(
            Method::POST,
            &format!("/deletedkeys/signer/recover?{V}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(version_of(&r.body["key"]["kid"]), v2);
    h.call(Method::DELETE, &format!("/keys/signer?{V}"), None)
        .await;
    let r = h
        .call(Method::DELETE, &format!("/deletedkeys/signer?{V}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        h.authz.seen.lock().unwrap().last().unwrap().0,
        "Microsoft.KeyVault/vaults/keys/purge/action"
    );
    let r = h
        .call(
            Method::POST,
            &format!("/keys/restore?{V}"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(version_of(&r.body["key"]["kid"]), v2);
    let r = h
        .call(
            Method::POST,
            &format!("/keys/restore?{V}"),
            Some(json!({"value": blob})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // Import an EC key made elsewhere; the vault's signature verifies with its public key.
    let pair =
        signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let d: EcPrivateKeyBin = pair.private_key().as_be_bytes().unwrap();
    let point = pair.public_key().as_ref();
    let r = h
        .call(
            Method::PUT,
            &format!("/keys/imported?{V}"),
            Some(json!({
                "key": {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]),
                        "y": b64(&point[33..65]), "d": b64(d.as_ref()),
                        "key_ops": ["sign", "verify"]},
                "Hsm": true
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key"]["kty"], "EC-HSM");
    assert!(r.body["key"].get("d").is_none());
    let r = h
        .call(
            Method::POST,
            &format!("/keys/imported//sign?{V}"),
            Some(json!({"alg": "ES256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sig = unb64(&r.body["value"]);
    assert_eq!(sig.len(), 64);
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        .verify_digest(
            &digest::Digest::import_less_safe(&digest, &digest::SHA256).unwrap(),
            &sig,
        )
        .unwrap();

    // Authentication and authorization.
    let r = h
        .send(
            Method::POST,
            "127.0.0.1:8446",
            &format!("/keys/imported//sign?{V}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("www-authenticate"));
    let r = h
        .send(
            Method::POST,
            "127.0.0.1:8446",
            &format!("/keys/imported//sign?{V}"),
            Some("deny:bob"),
            Some(json!({"alg": "ES256", "value": b64(&digest)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_lifecycle_redb() {
    lifecycle(Store::Redb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_lifecycle_postgres() {
    lifecycle(Store::Postgres).await;
}
