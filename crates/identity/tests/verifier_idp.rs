//! The verifier against the real test IdP (panva oidc-provider on node): tokens of each
//! algorithm, forgeries, audience, expiry, algorithm confusion, an IdP outage, key rotation,
//! and failing closed once keys are stale beyond the limit.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_identity::verifier::{IssuerConfig, VerifierConfig, VerifyError};
use rampart_identity::{Principal, Verifier};
use rampart_test_support::idp::{DEFAULT_AUDIENCE, IdpOptions, TestIdp};

fn config(idp: &TestIdp) -> VerifierConfig {
    VerifierConfig {
        issuers: vec![IssuerConfig::new(idp.issuer(), [DEFAULT_AUDIENCE])],
        // Every verification checks the signature unless a test turns the cache on.
        cache_capacity: 0,
        ..VerifierConfig::default()
    }
}

fn header(token: &str) -> serde_json::Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Replaces the signature's last byte.
fn flip_signature(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    *sig.last_mut().unwrap() ^= 0x55;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn keys_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    (dir, path)
}

#[tokio::test]
async fn tokens_of_each_algorithm_verify_and_map_to_a_principal() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let Some(idp) = TestIdp::start(&IdpOptions::new(alg)) else {
            return;
        };
        let verifier = Verifier::new(&config(&idp)).unwrap();
        let token = idp.gateway_token(Some("api:read api:write"));
        assert_eq!(header(&token)["alg"], alg);
        assert_eq!(header(&token)["typ"], "at+jwt");
        let principal = verifier.verify(&token).await.unwrap();
        assert_eq!(principal.subject, "gateway-test", "{alg}");
        assert_eq!(principal.id, "gateway-test");
        assert_eq!(principal.issuer, idp.issuer());
        assert_eq!(principal.client_id.as_deref(), Some("gateway-test"));
        assert_eq!(principal.scopes, ["api:read", "api:write"]);
        assert!(principal.has_scope("api:write"));
        assert_eq!(principal.audiences, ["https://gateway.test/api"]);
        assert!(principal.has_audience("https://gateway.test/api"));
        assert!(principal.expires_at > unix_now());

        let other = idp.token("other-client", "other-secret", Some("api:read"), None);
        let principal = verifier.verify(&other).await.unwrap();
        assert_eq!(principal.subject, "other-client");
        assert_eq!(principal.scopes, ["api:read"]);

        let status = verifier.status();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].fetch_count, 1, "keys fetched once for {alg}");
        assert!(status[0].last_success.is_some());
        assert!(!status[0].serving_stale && !status[0].failing_closed);
    }
}

#[tokio::test]
async fn cached_tokens_cost_no_new_verification() {
    let Some(idp) = TestIdp::start(&IdpOptions::new("ES256")) else {
        return;
    };
    let verifier = Verifier::new(&VerifierConfig {
        cache_capacity: 1_000,
        ..config(&idp)
    })
    .unwrap();
    let token = idp.gateway_token(None);
    let first = verifier.verify(&token).await.unwrap();
    let second = verifier.verify(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "second call served from cache"
    );
    assert_eq!(verifier.cached_tokens(), 1);
    // A forgery of a cached token is not a cache hit.
    assert_eq!(
        verifier.verify(&flip_signature(&token)).await.unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn forged_signatures_and_payloads_are_rejected() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let Some(idp) = TestIdp::start(&IdpOptions::new(alg)) else {
            return;
        };
        let verifier = Verifier::new(&config(&idp)).unwrap();
        let token = idp.gateway_token(Some("api:read"));
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(
            verifier.verify(&flip_signature(&token)).await.unwrap_err(),
            VerifyError::BadSignature,
            "{alg}"
        );
        // Same signature over a payload granting more scopes.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        let escalated = claims.replace("\"api:read\"", "\"api:read api:write\"");
        assert_ne!(claims, escalated);
        parts[1] = URL_SAFE_NO_PAD.encode(escalated);
        assert_eq!(
            verifier.verify(&parts.join(".")).await.unwrap_err(),
            VerifyError::BadSignature,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let Some(idp) = TestIdp::start(&IdpOptions::new("RS256")) else {
        return;
    };
    let verifier = Verifier::new(&config(&idp)).unwrap();
    let orders = idp.token(
        "gateway-test",
        "gateway-test-secret",
        None,
        Some("https://orders.test/"),
    );
    assert_eq!(
        verifier.verify(&orders).await.unwrap_err(),
        VerifyError::WrongAudience(vec!["https://orders.test/".into()])
    );
    // A verifier for another API refuses the gateway's tokens.
    let mut other_api = config(&idp);
    other_api.issuers[0].audiences = vec!["https://orders.test/".into()];
    let other_api = Verifier::new(&other_api).unwrap();
    let gateway = idp.gateway_token(None);
    assert!(matches!(
        other_api.verify(&gateway).await,
        Err(VerifyError::WrongAudience(aud)) if aud == [DEFAULT_AUDIENCE]
    ));
    assert!(other_api.verify(&orders).await.is_ok());
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let Some(idp) = TestIdp::start(&IdpOptions {
        ttl_secs: Some(1),
        ..IdpOptions::new("EdDSA")
    }) else {
        return;
    };
    let verifier = Verifier::new(&VerifierConfig {
        clock_skew: Duration::ZERO,
        ..config(&idp)
    })
    .unwrap();
    let token = idp.gateway_token(None);
    let exp = verifier.verify(&token).await.map(|p| p.expires_at);
    // Verified or already expired, depending on how long issuing took; after exp it must fail.
    assert!(matches!(exp, Ok(_) | Err(VerifyError::Expired { .. })));
    while unix_now() <= exp.clone().unwrap_or(0) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Expired { .. })
    ));
    // With a generous skew the same token is still accepted.
    let lenient = Verifier::new(&VerifierConfig {
        clock_skew: Duration::from_secs(120),
        ..config(&idp)
    })
    .unwrap();
    assert!(lenient.verify(&token).await.is_ok());
}

fn hand_made(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn forged_claims(idp: &TestIdp) -> serde_json::Value {
    serde_json::json!({
        "iss": idp.issuer(), "sub": "admin", "client_id": "admin", "aud": DEFAULT_AUDIENCE,
        "iat": unix_now(), "exp": unix_now() + 600, "scope": "api:read api:write",
    })
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let Some(idp) = TestIdp::start(&IdpOptions::new("RS256")) else {
        return;
    };
    let verifier = Verifier::new(&config(&idp)).unwrap();
    let kid = idp.jwks()["keys"][0]["kid"].clone();
    for alg in ["none", "None", "NONE"] {
        let header = serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let unsigned = hand_made(&header, &forged_claims(&idp), b"");
        let unsigned = unsigned.trim_end_matches('.').to_owned() + ".";
        assert!(
            matches!(
                verifier.verify(&unsigned).await,
                Err(VerifyError::ForbiddenAlgorithm(_))
            ),
            "{alg}"
        );
        // With a real signature part glued on, still refused.
        let real = idp.gateway_token(None);
        let glued = format!(
            "{}.{}",
            unsigned.trim_end_matches('.'),
            real.rsplit_once('.').unwrap().1
        );
        assert!(matches!(
            verifier.verify(&glued).await,
            Err(VerifyError::ForbiddenAlgorithm(_))
        ));
    }
}

#[tokio::test]
async fn hmac_keyed_with_the_idps_public_key_is_rejected() {
    let Some(idp) = TestIdp::start(&IdpOptions::new("RS256")) else {
        return;
    };
    let verifier = Verifier::new(&config(&idp)).unwrap();
    assert!(verifier.verify(&idp.gateway_token(None)).await.is_ok());
    let jwks = idp.jwks();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap();
    let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(rsa["e"].as_str().unwrap()).unwrap();
    // The public key as PEM (SubjectPublicKeyInfo), as an attacker would fetch it.
    let parsed = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&parsed)
        .unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    for (secret, name) in [(pem.as_bytes(), "pem"), (n.as_slice(), "raw n")] {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": rsa["kid"]});
            let unsigned = hand_made(&header, &forged_claims(&idp), b"x");
            let input = unsigned.rsplit_once('.').unwrap().0;
            let mac_alg = match alg {
                "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
                "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
                _ => aws_lc_rs::hmac::HMAC_SHA512,
            };
            let tag = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(mac_alg, secret),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            assert_eq!(
                verifier.verify(&token).await.unwrap_err(),
                VerifyError::ForbiddenAlgorithm(alg.into()),
                "{alg} keyed with {name}"
            );
            // Labelled RS256 instead, the MAC is just a bad signature.
            let relabelled = hand_made(
                &serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": rsa["kid"]}),
                &forged_claims(&idp),
                tag.as_ref(),
            );
            assert!(matches!(
                verifier.verify(&relabelled).await,
                Err(VerifyError::BadSignature)
            ));
        }
    }
}

/// Principal of a verification, for a compact assertion message.
fn summary(result: &Result<Arc<Principal>, VerifyError>) -> String {
    match result {
        Ok(p) => format!("ok {}", p.subject),
        Err(e) => format!("err {e}"),
    }
}

#[tokio::test]
async fn outage_keeps_verifying_with_the_last_good_keys() {
    let (_keys_dir, keys) = keys_file();
    // A first run with 2 s tokens, for a token that expires during the outage...
    let Some(mut idp) = TestIdp::start(&IdpOptions {
        ttl_secs: Some(2),
        keys_file: Some(keys.clone()),
        ..IdpOptions::new("ES256")
    }) else {
        return;
    };
    let short = idp.gateway_token(None);
    // ...then the same keys with 5 min tokens.
    idp.restart(&IdpOptions {
        keys_file: Some(keys.clone()),
        ..IdpOptions::new("ES256")
    });
    let long_a = idp.gateway_token(Some("api:read"));
    let long_b = idp.token("other-client", "other-secret", None, None);
    let verifier = Verifier::new(&VerifierConfig {
        clock_skew: Duration::ZERO,
        jwks_ttl: Duration::from_secs(1),
        refresh_retry_interval: Duration::from_millis(200),
        ..config(&idp)
    })
    .unwrap();
    verifier.prefetch().await.unwrap();
    assert!(verifier.verify(&long_a).await.is_ok());
    assert!(verifier.verify(&long_b).await.is_ok());

    idp.kill();
    let short_exp = {
        let claims = short.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        claims["exp"].as_u64().unwrap()
    };
    // 200 verifications over about 3 s, while refreshes are attempted and fail.
    let mut rejections = Vec::new();
    for i in 0..200 {
        let token = if i % 2 == 0 { &long_a } else { &long_b };
        let result = verifier.verify(token).await;
        if result.is_err() {
            rejections.push(summary(&result));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert!(
        rejections.is_empty(),
        "rejected during the outage: {rejections:?}"
    );
    while unix_now() < short_exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(matches!(
        verifier.verify(&short).await,
        Err(VerifyError::Expired { .. })
    ));
    let status = &verifier.status()[0];
    assert!(status.serving_stale, "{status:?}");
    assert!(!status.failing_closed);
    assert!(
        status.fetch_failures >= 1,
        "refreshes were attempted: {status:?}"
    );
    assert!(status.last_error.is_some());
    assert_eq!(status.fetch_count, status.fetch_failures + 1);
}

#[tokio::test]
async fn rotated_keys_are_fetched_on_unknown_kid() {
    let (_keys_dir, keys) = keys_file();
    let Some(mut idp) = TestIdp::start(&IdpOptions {
        keys_file: Some(keys),
        ..IdpOptions::new("RS256")
    }) else {
        return;
    };
    // Default TTL (10 min) and unknown-kid interval (30 s).
    let verifier = Verifier::new(&config(&idp)).unwrap();
    let before = idp.gateway_token(None);
    assert!(verifier.verify(&before).await.is_ok());
    assert_eq!(verifier.status()[0].fetch_count, 1);

    idp.restart(&IdpOptions::new("RS256"));
    let after = idp.gateway_token(None);
    assert_ne!(header(&before)["kid"], header(&after)["kid"], "new keys");
    let principal = verifier
        .verify(&after)
        .await
        .unwrap_or_else(|error| panic!("{error}: {:?}", verifier.status()));
    assert_eq!(principal.subject, "gateway-test");
    assert_eq!(verifier.status()[0].fetch_count, 2, "one refetch");
    // The old key is gone; its tokens now name an unknown kid, and the refetch budget for
    // this interval is spent: no further fetch.
    assert!(matches!(
        verifier.verify(&before).await,
        Err(VerifyError::UnknownKid { .. })
    ));
    assert_eq!(verifier.status()[0].fetch_count, 2);
}

#[tokio::test]
async fn keys_stale_beyond_the_limit_fail_closed_then_recover() {
    let (_keys_dir, keys) = keys_file();
    let options = IdpOptions {
        keys_file: Some(keys),
        ..IdpOptions::new("EdDSA")
    };
    let Some(mut idp) = TestIdp::start(&options) else {
        return;
    };
    let verifier = Verifier::new(&VerifierConfig {
        jwks_ttl: Duration::from_secs(1),
        refresh_retry_interval: Duration::from_millis(200),
        stale_if_error: Duration::from_secs(2),
        // The cache is on: a cached token must not outlive the keys that vouched for it.
        cache_capacity: 100,
        ..config(&idp)
    })
    .unwrap();
    let token = idp.gateway_token(None);
    assert!(verifier.verify(&token).await.is_ok());
    idp.kill();
    assert!(verifier.verify(&token).await.is_ok(), "within the limit");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(error, VerifyError::JwksStale { max_secs: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("stale-if-error"), "{error}");
    assert!(verifier.status()[0].failing_closed);

    idp.restart(&options);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(verifier.verify(&token).await.is_ok(), "recovered");
    assert!(!verifier.status()[0].failing_closed);
}
