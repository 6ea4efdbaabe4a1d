//! The token issuer end to end on a real redb store and a real audit log: each client
//! authentication method, replay protection, scope and resource rules, key rotation with the
//! old key published until its tokens expire, keys encrypted at rest, the managed-identity
//! endpoint, and the audit trail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_audit::{AuditLog, AuditOptions};
use rampart_identity::issuer::{
    ClientSpec, Issuer, IssuerConfig, IssuerError, Jwk, Kek, ManagedIdentityRequest, ManualClock,
    OAuthErrorCode, SigningAlg, TokenRequest,
};
use rampart_storage::{Backend, RedbBackend};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.rampart.test";
const VAULT: &str = "https://vault.rampart.test";
const T0: u64 = 1_800_000_000;

struct Harness {
    _dir: tempfile::TempDir,
    audit_dir: std::path::PathBuf,
    log: Option<AuditLog>,
    store: Arc<dyn Backend>,
    clock: ManualClock,
    issuer: Issuer,
    kek_bytes: [u8; 32],
}

async fn harness_with(config: IssuerConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Backend> = Arc::new(
        RedbBackend::open(&dir.path().join("kv.redb"))
            .await
            .unwrap(),
    );
    let audit_dir = dir.path().join("audit");
    let log = AuditLog::open(&audit_dir, AuditOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let mut kek_bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut kek_bytes).unwrap();
    let issuer = Issuer::open(
        Arc::clone(&store),
        Kek::from_bytes(kek_bytes),
        config,
        Arc::new(clock.clone()),
        log.auditor(),
    )
    .await
    .unwrap();
    Harness {
        _dir: dir,
        audit_dir,
        log: Some(log),
        store,
        clock,
        issuer,
        kek_bytes,
    }
}

async fn harness() -> Harness {
    harness_with(IssuerConfig::new(ISSUER)).await
}

impl Harness {
    /// Every audit record written so far, as JSON text.
    async fn audit_records(&mut self) -> Vec<String> {
        self.log.as_ref().unwrap().auditor().flush().await.unwrap();
        let mut out = Vec::new();
        rampart_audit::reader::scan(&self.audit_dir, 0, |entry| {
            out.push(String::from_utf8(entry.payload.to_vec()).unwrap());
            Ok(true)
        })
        .unwrap();
        out
    }

    async fn secret_client(&self, id: &str, scopes: &[&str]) -> String {
        let (client, secret) = self
            .issuer
            .add_client(
                ClientSpec {
                    id: id.into(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    ..ClientSpec::default()
                },
                "test-admin",
            )
            .await
            .unwrap();
        assert_eq!(client.auth_method(), "client_secret");
        secret.unwrap().expose().to_owned()
    }
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

fn request(pairs: &[(&str, &str)], authorization: Option<&str>) -> TokenRequest {
    TokenRequest::parse(&form(pairs), authorization, Some("127.0.0.1:5555".into())).unwrap()
}

fn b64d(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// Checks the token's signature against the issuer's JWKS (with aws-lc-rs directly) and
/// returns (header, claims).
fn verify(issuer: &Issuer, token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64d(parts[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64d(parts[1])).unwrap();
    let signature = b64d(parts[2]);
    let message = format!("{}.{}", parts[0], parts[1]);
    let jwks = issuer.jwks();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    match header["alg"].as_str().unwrap() {
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(b64d(key["x"].as_str().unwrap()));
            point.extend(b64d(key["y"].as_str().unwrap()));
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message.as_bytes(), &signature)
                .expect("ES256 signature verifies");
        }
        "RS256" => {
            let n = b64d(key["n"].as_str().unwrap());
            let e = b64d(key["e"].as_str().unwrap());
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message.as_bytes(), &signature)
                .expect("RS256 signature verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    (header, claims)
}

#[tokio::test]
async fn client_secret_basic_issues_an_rfc9068_token_that_verifies() {
    let mut h = harness().await;
    let secret = h
        .secret_client(
            "orders",
            &["https://vault.rampart.test/.default", "orders.read"],
        )
        .await;
    let response = h
        .issuer
        .token(&request(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "https://vault.rampart.test/.default"),
            ],
            Some(&basic("orders", &secret)),
        ))
        .await
        .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 3600);
    assert_eq!(response.scope.as_deref(), Some("orders.read"));
    let token = response.access_token.expose().to_owned();
    assert!(!format!("{response:?}").contains(&token));
    let (header, claims) = verify(&h.issuer, &token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], h.issuer.signing_kid());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "orders");
    assert_eq!(claims["client_id"], "orders");
    assert_eq!(claims["aud"], VAULT);
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["nbf"], T0);
    assert_eq!(claims["exp"], T0 + 3600);
    assert_eq!(claims["scope"], "orders.read");
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).unwrap();
    let oid = claims["oid"].as_str().unwrap();
    uuid::Uuid::parse_str(oid).unwrap();
    // The oid is stable: a second token carries the same one, and a fresh jti.
    let again = h
        .issuer
        .token(&request(
            &[("grant_type", "client_credentials"), ("resource", VAULT)],
            Some(&basic("orders", &secret)),
        ))
        .await
        .unwrap();
    let (_, claims2) = verify(&h.issuer, again.access_token.expose());
    assert_eq!(claims2["oid"], oid);
    assert_ne!(claims2["jti"], claims["jti"]);

    let records = h.audit_records().await;
    let issued: Vec<&String> = records
        .iter()
        .filter(|r| r.contains("token.issue") && r.contains("client_secret_basic"))
        .collect();
    assert_eq!(issued.len(), 2, "{records:#?}");
    for record in &records {
        assert!(
            !record.contains(&secret) && !record.contains(&token),
            "{record}"
        );
    }
}

#[tokio::test]
async fn client_secret_post_works_and_wrong_secrets_are_refused() {
    let mut h = harness().await;
    let secret = h
        .secret_client("billing", &["https://vault.rampart.test/.default"])
        .await;
    let ok = h
        .issuer
        .token(&request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing"),
                ("client_secret", &secret),
                ("resource", VAULT),
            ],
            None,
        ))
        .await
        .unwrap();
    let (_, claims) = verify(&h.issuer, ok.access_token.expose());
    assert_eq!(claims["sub"], "billing");
    assert!(claims.get("scope").is_none());

    // The last character changed (to one it is not: a secret ending in `0` stays wrong).
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_ne!(wrong, secret);
    let post = h
        .issuer
        .token(&request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing"),
                ("client_secret", &wrong),
                ("resource", VAULT),
            ],
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(post.code, OAuthErrorCode::InvalidClient);
    assert_eq!(post.status, 401);
    assert!(!post.basic_challenge);
    let basic_wrong = h
        .issuer
        .token(&request(
            &[("grant_type", "client_credentials"), ("resource", VAULT)],
            Some(&basic("billing", &wrong)),
        ))
        .await
        .unwrap_err();
    assert_eq!(basic_wrong.code, OAuthErrorCode::InvalidClient);
    assert!(basic_wrong.basic_challenge);
    // An unknown client is refused the same way.
    let unknown = h
        .issuer
        .token(&request(
            &[("grant_type", "client_credentials"), ("resource", VAULT)],
            Some(&basic("nobody", &secret)),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, OAuthErrorCode::InvalidClient);
    assert_eq!(unknown.description, basic_wrong.description);
    // No credentials, or two methods at once.
    let none = h
        .issuer
        .token(&request(&[("grant_type", "client_credentials")], None))
        .await
        .unwrap_err();
    assert_eq!(none.code, OAuthErrorCode::InvalidClient);
    let both = h
        .issuer
        .token(&request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing"),
                ("client_secret", &secret),
            ],
            Some(&basic("billing", &secret)),
        ))
        .await
        .unwrap_err();
    assert_eq!(both.code, OAuthErrorCode::InvalidRequest);

    let records = h.audit_records().await;
    let denied = records
        .iter()
        .filter(|r| r.contains("token.issue") && r.contains("\"deny\""))
        .count();
    assert_eq!(denied, 5, "{records:#?}");
    for record in &records {
        assert!(
            !record.contains(&secret) && !record.contains(&wrong),
            "{record}"
        );
    }
}

#[tokio::test]
async fn only_client_credentials_is_supported() {
    let h = harness().await;
    let secret = h
        .secret_client("svc", &["https://vault.rampart.test/.default"])
        .await;
    for grant in ["authorization_code", "password", "refresh_token"] {
        let error = h
            .issuer
            .token(&request(
                &[("grant_type", grant)],
                Some(&basic("svc", &secret)),
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code, OAuthErrorCode::UnsupportedGrantType, "{grant}");
        assert_eq!(error.body()["error"], "unsupported_grant_type");
    }
    let missing = h
        .issuer
        .token(&request(&[], Some(&basic("svc", &secret))))
        .await
        .unwrap_err();
    assert_eq!(missing.code, OAuthErrorCode::InvalidRequest);
}

#[tokio::test]
async fn scope_and_resource_rules() {
    let h = harness().await;
    let secret = h
        .secret_client(
            "api",
            &[
                "https://vault.rampart.test/.default",
                "https://orders.rampart.test/.default",
                "orders.read",
            ],
        )
        .await;
    let auth = basic("api", &secret);
    let ask = |pairs: Vec<(&'static str, &'static str)>| {
        let mut all = vec![("grant_type", "client_credentials")];
        all.extend(pairs);
        request(&all, Some(&auth))
    };
    // A resource the client may not have.
    let error = h
        .issuer
        .token(&ask(vec![("resource", "https://other.rampart.test")]))
        .await
        .unwrap_err();
    assert_eq!(error.code, OAuthErrorCode::InvalidTarget);
    let error = h
        .issuer
        .token(&ask(vec![("scope", "https://other.rampart.test/.default")]))
        .await
        .unwrap_err();
    assert_eq!(error.code, OAuthErrorCode::InvalidTarget);
    // A scope the client may not have.
    let error = h
        .issuer
        .token(&ask(vec![("resource", VAULT), ("scope", "orders.write")]))
        .await
        .unwrap_err();
    assert_eq!(error.code, OAuthErrorCode::InvalidScope);
    // Two audiences in one request; a relative resource; a fragment.
    for pairs in [
        vec![
            ("resource", VAULT),
            ("scope", "https://orders.rampart.test/.default"),
        ],
        vec![("resource", "vault")],
        vec![("resource", "https://vault.rampart.test#x")],
    ] {
        let error = h.issuer.token(&ask(pairs.clone())).await.unwrap_err();
        assert_eq!(error.code, OAuthErrorCode::InvalidTarget, "{pairs:?}");
    }
    // Two allowed resources: the request must name one.
    let error = h
        .issuer
        .token(&ask(vec![("scope", "orders.read")]))
        .await
        .unwrap_err();
    assert_eq!(error.code, OAuthErrorCode::InvalidTarget);
    // resource and a matching .default agree; a trailing slash is the same audience.
    let ok = h
        .issuer
        .token(&ask(vec![
            ("resource", "https://vault.rampart.test/"),
            ("scope", "https://vault.rampart.test/.default orders.read"),
        ]))
        .await
        .unwrap();
    let (_, claims) = verify(&h.issuer, ok.access_token.expose());
    assert_eq!(claims["aud"], VAULT);
    assert_eq!(claims["scope"], "orders.read");
    // A client with one resource gets it by default.
    let single = h
        .secret_client("single", &["https://vault.rampart.test/.default"])
        .await;
    let ok = h
        .issuer
        .token(&request(
            &[("grant_type", "client_credentials")],
            Some(&basic("single", &single)),
        ))
        .await
        .unwrap();
    assert_eq!(verify(&h.issuer, ok.access_token.expose()).1["aud"], VAULT);
}

/// A signed RFC 7523 client assertion.
fn assertion(alg: &str, sign: &dyn Fn(&[u8]) -> Vec<u8>, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn es256_client_key() -> (EcdsaKeyPair, Jwk) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = Jwk::parse(
        &json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
        .to_string(),
    )
    .unwrap();
    (pair, jwk)
}

fn assertion_form(assertion: &str) -> TokenRequest {
    request(
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("resource", VAULT),
        ],
        None,
    )
}

#[tokio::test]
async fn private_key_jwt_is_accepted_once_and_replays_are_refused() {
    let mut h = harness().await;
    let (pair, jwk) = es256_client_key();
    let (client, secret) = h
        .issuer
        .add_client(
            ClientSpec {
                id: "batch".into(),
                resources: vec![VAULT.into()],
                jwk: Some(jwk),
                ..ClientSpec::default()
            },
            "test-admin",
        )
        .await
        .unwrap();
    assert!(secret.is_none());
    assert_eq!(client.auth_method(), "private_key_jwt");
    let sign = |message: &[u8]| {
        pair.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let claims = |jti: &str, aud: &str, exp: u64| json!({"iss": "batch", "sub": "batch", "aud": aud, "exp": exp, "iat": T0, "jti": jti});
    let endpoint = format!("{ISSUER}/token");
    let good = assertion("ES256", &sign, &claims("j1", &endpoint, T0 + 120));
    let response = h.issuer.token(&assertion_form(&good)).await.unwrap();
    let (_, token_claims) = verify(&h.issuer, response.access_token.expose());
    assert_eq!(token_claims["sub"], "batch");
    assert_eq!(token_claims["aud"], VAULT);

    // The same assertion again: refused.
    let replay = h.issuer.token(&assertion_form(&good)).await.unwrap_err();
    assert_eq!(replay.code, OAuthErrorCode::InvalidClient);
    assert!(
        replay.description.contains("replayed"),
        "{}",
        replay.description
    );

    // The issuer URL is an accepted audience too; anything else is not.
    let by_issuer = assertion("ES256", &sign, &claims("j2", ISSUER, T0 + 120));
    h.issuer.token(&assertion_form(&by_issuer)).await.unwrap();
    let refusals = [
        (
            "wrong aud",
            assertion("ES256", &sign, &claims("j3", "https://elsewhere", T0 + 120)),
        ),
        (
            "expired",
            assertion("ES256", &sign, &claims("j4", &endpoint, T0 - 120)),
        ),
        (
            "too long",
            assertion("ES256", &sign, &claims("j5", &endpoint, T0 + 3600)),
        ),
        (
            "no exp",
            assertion(
                "ES256",
                &sign,
                &json!({"iss": "batch", "sub": "batch", "aud": endpoint, "jti": "j6"}),
            ),
        ),
        (
            "sub differs",
            assertion(
                "ES256",
                &sign,
                &json!({"iss": "batch", "sub": "other", "aud": endpoint, "exp": T0 + 60, "jti": "j7"}),
            ),
        ),
        (
            "no jti",
            assertion(
                "ES256",
                &sign,
                &json!({"iss": "batch", "sub": "batch", "aud": endpoint, "exp": T0 + 60}),
            ),
        ),
        ("alg none", {
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            parts[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
            format!("{}.{}.", parts[0], parts[1])
        }),
    ];
    for (what, text) in &refusals {
        let error = h.issuer.token(&assertion_form(text)).await.unwrap_err();
        assert_eq!(error.code, OAuthErrorCode::InvalidClient, "{what}: {error}");
    }
    // Signed by another key.
    let (other, _) = es256_client_key();
    let forged = assertion(
        "ES256",
        &|m: &[u8]| {
            other
                .sign(&SystemRandom::new(), m)
                .unwrap()
                .as_ref()
                .to_vec()
        },
        &claims("j8", &endpoint, T0 + 60),
    );
    let error = h.issuer.token(&assertion_form(&forged)).await.unwrap_err();
    assert!(error.description.contains("signature"), "{error}");

    // Once the assertion expired, the replay-cache entry is swept.
    h.clock.advance(Duration::from_secs(3600));
    h.issuer.maintain().await.unwrap();
    let page = h
        .store
        .list(b"identity/issuer/jti/", None, 100)
        .await
        .unwrap();
    assert!(page.entries.is_empty(), "{page:?}");

    let records = h.audit_records().await;
    assert!(
        records
            .iter()
            .any(|r| r.contains("private_key_jwt") && r.contains("replayed"))
    );
}

#[tokio::test]
async fn private_key_jwt_accepts_eddsa_keys() {
    let h = harness().await;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = Jwk::parse(
        &json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
            .to_string(),
    )
    .unwrap();
    h.issuer
        .add_client(
            ClientSpec {
                id: "edge".into(),
                resources: vec![VAULT.into()],
                jwk: Some(jwk),
                ..ClientSpec::default()
            },
            "test-admin",
        )
        .await
        .unwrap();
    let text = assertion(
        "EdDSA",
        &|m: &[u8]| pair.sign(m).as_ref().to_vec(),
        &json!({"iss": "edge", "sub": "edge", "aud": format!("{ISSUER}/token"), "exp": T0 + 60, "jti": "e1"}),
    );
    let response = h.issuer.token(&assertion_form(&text)).await.unwrap();
    assert_eq!(
        verify(&h.issuer, response.access_token.expose()).1["sub"],
        "edge"
    );
    // The key's type fixes the algorithm: an ES256 header does not verify with it.
    let mut parts: Vec<&str> = text.split('.').collect();
    let es_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#);
    parts[0] = &es_header;
    assert!(
        h.issuer
            .token(&assertion_form(&parts.join(".")))
            .await
            .is_err()
    );
    let _ = ED25519;
}

#[tokio::test]
async fn keys_rotate_and_old_keys_stay_published_until_their_tokens_expire() {
    let h = harness().await;
    let secret = h
        .secret_client("svc", &["https://vault.rampart.test/.default"])
        .await;
    let ask = || {
        request(
            &[("grant_type", "client_credentials")],
            Some(&basic("svc", &secret)),
        )
    };
    let first = h.issuer.token(&ask()).await.unwrap();
    let (first_header, _) = verify(&h.issuer, first.access_token.expose());
    let old_kid = first_header["kid"].as_str().unwrap().to_owned();
    assert_eq!(h.issuer.jwks()["keys"].as_array().unwrap().len(), 1);

    // Just before the rotation period: same key.
    h.clock.advance(Duration::from_secs(30 * 24 * 3600 - 1));
    let token = h.issuer.token(&ask()).await.unwrap();
    assert_eq!(
        verify(&h.issuer, token.access_token.expose()).0["kid"],
        old_kid.as_str()
    );
    let last_old = token; // signed by the old key at T0 + 30d - 1
    // At the period: a new key signs; the old one is still published.
    h.clock.advance(Duration::from_secs(1));
    let rotated = h.issuer.token(&ask()).await.unwrap();
    let (new_header, _) = verify(&h.issuer, rotated.access_token.expose());
    let new_kid = new_header["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(h.issuer.signing_kid(), new_kid);
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kids(h.issuer.jwks()), [new_kid.clone(), old_kid.clone()]);
    // The last token of the old key still verifies for its whole lifetime...
    h.clock.advance(Duration::from_secs(3599));
    h.issuer.maintain().await.unwrap();
    verify(&h.issuer, last_old.access_token.expose());
    // ...and once every token it signed has expired, the old key is gone (from the JWKS
    // and from storage).
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(kids(h.issuer.jwks()), [new_kid.as_str()]);
    h.issuer.maintain().await.unwrap();
    assert_eq!(kids(h.issuer.jwks()), [new_kid.as_str()]);
    let stored = h
        .store
        .list(b"identity/issuer/keys/", None, 100)
        .await
        .unwrap();
    assert_eq!(stored.entries.len(), 1);
}

#[tokio::test]
async fn signing_keys_are_encrypted_at_rest_and_need_the_kek() {
    let h = harness().await;
    let page = h
        .store
        .list(b"identity/issuer/keys/", None, 100)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    let raw = &page.entries[0].value;
    let record: Value = serde_json::from_slice(raw).unwrap();
    let sealed = b64d(record["sealed_private"].as_str().unwrap());
    // nonce (12) + PKCS#8 of a P-256 key (138) + tag (16), and not a PKCS#8 itself.
    assert_eq!(sealed.len(), 12 + 138 + 16);
    assert!(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &sealed).is_err());
    assert!(
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &sealed[12..sealed.len() - 16]
        )
        .is_err()
    );
    // The PKCS#8 header of a P-256 key appears nowhere in the stored bytes, raw or base64url.
    let pkcs8_prefix: &[u8] = &[0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07];
    assert!(!raw.windows(pkcs8_prefix.len()).any(|w| w == pkcs8_prefix));
    assert!(!String::from_utf8_lossy(raw).contains(&URL_SAFE_NO_PAD.encode(&pkcs8_prefix[..9])));
    assert!(record.get("d").is_none() && record["public"].get("d").is_none());

    // Reopened with the same KEK: the same key signs. With another KEK: refused.
    let auditor = h.log.as_ref().unwrap().auditor();
    let same = Issuer::open(
        Arc::clone(&h.store),
        Kek::from_bytes(h.kek_bytes),
        IssuerConfig::new(ISSUER),
        Arc::new(h.clock.clone()),
        auditor.clone(),
    )
    .await
    .unwrap();
    assert_eq!(same.signing_kid(), h.issuer.signing_kid());
    let other = Issuer::open(
        Arc::clone(&h.store),
        Kek::generate().unwrap(),
        IssuerConfig::new(ISSUER),
        Arc::new(h.clock.clone()),
        auditor,
    )
    .await
    .unwrap_err();
    assert!(matches!(other, IssuerError::Corrupt { .. }), "{other}");
    assert!(other.to_string().contains("does not decrypt"), "{other}");
}

#[tokio::test]
async fn rs256_issuers_sign_with_rsa_and_switching_algorithms_rotates() {
    let mut config = IssuerConfig::new(ISSUER);
    config.algorithm = SigningAlg::Rs256;
    let h = harness_with(config).await;
    let secret = h
        .secret_client("svc", &["https://vault.rampart.test/.default"])
        .await;
    let token = h
        .issuer
        .token(&request(
            &[("grant_type", "client_credentials")],
            Some(&basic("svc", &secret)),
        ))
        .await
        .unwrap();
    let (header, _) = verify(&h.issuer, token.access_token.expose());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        h.issuer.discovery()["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    // The same store opened for ES256: a new key, the RSA key still published.
    let es = Issuer::open(
        Arc::clone(&h.store),
        Kek::from_bytes(h.kek_bytes),
        IssuerConfig::new(ISSUER),
        Arc::new(h.clock.clone()),
        h.log.as_ref().unwrap().auditor(),
    )
    .await
    .unwrap();
    let jwks = es.jwks();
    let types: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["EC", "RSA"]);
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_methods() {
    let h = harness().await;
    let doc = h.issuer.discovery();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/jwks"));
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Backend> = Arc::new(
        RedbBackend::open(&dir.path().join("kv.redb"))
            .await
            .unwrap(),
    );
    let log = AuditLog::open(dir.path().join("audit"), AuditOptions::default()).unwrap();
    let open = |config: IssuerConfig| {
        Issuer::open(
            Arc::clone(&store),
            Kek::generate().unwrap(),
            config,
            Arc::new(ManualClock::new(T0)),
            log.auditor(),
        )
    };
    for url in ["ftp://x", "https://x/", "https://x?a=b", "https://"] {
        assert!(
            matches!(
                open(IssuerConfig::new(url)).await,
                Err(IssuerError::InvalidConfig(_))
            ),
            "{url}"
        );
    }
    let mut short = IssuerConfig::new(ISSUER);
    short.token_lifetime = Duration::from_secs(300);
    assert!(matches!(
        open(short).await,
        Err(IssuerError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn client_registry_shows_secrets_once() {
    let mut h = harness().await;
    let secret = h
        .secret_client("app", &["https://vault.rampart.test/.default", "x.read"])
        .await;
    let listed = h.issuer.list_clients().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].resources, [VAULT]);
    assert_eq!(listed[0].scopes, ["x.read"]);
    let listing = format!("{listed:?}");
    assert!(
        !listing.contains(&secret) && !listing.contains("argon2id$"),
        "{listing}"
    );
    // The stored record holds only the Argon2id hash.
    let raw = h
        .store
        .get(b"identity/issuer/clients/app")
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.contains("$argon2id$v=19$m=19456,t=2,p=1$") && !raw.contains(&secret));
    // Duplicate and bad names.
    let dup = h
        .issuer
        .add_client(
            ClientSpec {
                id: "app".into(),
                ..ClientSpec::default()
            },
            "t",
        )
        .await;
    assert!(matches!(dup, Err(IssuerError::Exists { .. })));
    let bad = h
        .issuer
        .add_client(
            ClientSpec {
                id: "a b".into(),
                ..ClientSpec::default()
            },
            "t",
        )
        .await;
    assert!(matches!(bad, Err(IssuerError::InvalidName(_))));
    let bad_resource = h
        .issuer
        .add_client(
            ClientSpec {
                id: "r".into(),
                resources: vec!["nope".into()],
                ..ClientSpec::default()
            },
            "t",
        )
        .await;
    assert!(matches!(bad_resource, Err(IssuerError::InvalidScope(_))));
    // A new secret replaces the old one.
    let fresh = h.issuer.generate_client_secret("app", "t").await.unwrap();
    let ask = |s: &str| {
        request(
            &[("grant_type", "client_credentials")],
            Some(&basic("app", s)),
        )
    };
    assert!(h.issuer.token(&ask(&secret)).await.is_err());
    h.issuer.token(&ask(fresh.expose())).await.unwrap();
    // Removal.
    assert!(h.issuer.remove_client("app", "t").await.unwrap());
    assert!(!h.issuer.remove_client("app", "t").await.unwrap());
    assert!(h.issuer.token(&ask(fresh.expose())).await.is_err());
    let records = h.audit_records().await;
    for action in ["client.add", "client.secret.generate", "client.remove"] {
        assert!(records.iter().any(|r| r.contains(action)), "{action}");
    }
}

fn mi(peer: &str, query: &str, header: Option<&str>) -> ManagedIdentityRequest {
    ManagedIdentityRequest {
        peer: peer.parse::<IpAddr>().unwrap(),
        query: query.to_owned(),
        identity_header: header.map(str::to_owned),
    }
}

#[tokio::test]
async fn managed_identity_endpoint_speaks_app_service() {
    let mut h = harness().await;
    let (workload, header) = h
        .issuer
        .add_workload("orders-api", vec![], "test-admin")
        .await
        .unwrap();
    let header = header.expose().to_owned();
    assert!(header.starts_with("rpi_") && header.len() == 68);
    let (_other, other_header) = h
        .issuer
        .add_workload("billing", vec![VAULT.into()], "t")
        .await
        .unwrap();
    let query = "api-version=2019-08-01&resource=https%3A%2F%2Fvault.rampart.test";
    let response = h
        .issuer
        .managed_identity_token(&mi("127.0.0.1", query, Some(&header)))
        .await
        .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.resource, VAULT);
    assert_eq!(response.client_id, workload.client_id);
    assert_eq!(response.expires_on, (T0 + 3600).to_string());
    let body = serde_json::to_value(&response).unwrap();
    assert!(body["expires_on"].is_string());
    let (_, claims) = verify(&h.issuer, response.access_token.expose());
    assert_eq!(claims["sub"], "orders-api");
    assert_eq!(claims["oid"], workload.oid.as_str());
    assert_eq!(claims["aud"], VAULT);
    assert_eq!(claims["client_id"], workload.client_id.as_str());
    // The header identifies the workload.
    let billing = h
        .issuer
        .managed_identity_token(&mi("::1", query, Some(other_header.expose())))
        .await
        .unwrap();
    assert_eq!(
        verify(&h.issuer, billing.access_token.expose()).1["sub"],
        "billing"
    );
    // Selectors must name this identity.
    let by_id = format!("{query}&client_id={}", workload.client_id);
    h.issuer
        .managed_identity_token(&mi("127.0.0.1", &by_id, Some(&header)))
        .await
        .unwrap();
    let by_oid = format!("{query}&principal_id={}", workload.oid);
    h.issuer
        .managed_identity_token(&mi("127.0.0.1", &by_oid, Some(&header)))
        .await
        .unwrap();

    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        (
            "non-loopback",
            query.into(),
            Some(&header),
            403,
            "access_denied",
        ),
        ("no header", query.into(), None, 400, "invalid_request"),
        (
            "wrong header",
            query.into(),
            Some("rpi_0000"),
            401,
            "invalid_client",
        ),
        (
            "api version",
            query.replace("2019-08-01", "2017-09-01"),
            Some(&header),
            400,
            "invalid_request",
        ),
        (
            "no api version",
            "resource=https%3A%2F%2Fvault.rampart.test".into(),
            Some(&header),
            400,
            "invalid_request",
        ),
        (
            "no resource",
            "api-version=2019-08-01".into(),
            Some(&header),
            400,
            "invalid_request",
        ),
        (
            "relative resource",
            "api-version=2019-08-01&resource=vault".into(),
            Some(&header),
            400,
            "invalid_request",
        ),
        (
            "other client id",
            format!("{query}&client_id=00000000-0000-0000-0000-000000000000"),
            Some(&header),
            400,
            "invalid_request",
        ),
    ];
    for (what, query, header, status, code) in cases {
        let peer = if what == "non-loopback" {
            "192.0.2.2"
        } else {
            "127.0.0.1"
        };
        let error = h
            .issuer
            .managed_identity_token(&mi(peer, &query, header))
            .await
            .unwrap_err();
        assert_eq!(
            (error.status, error.code.as_str()),
            (status, code),
            "{what}"
        );
    }
    // A workload limited to some resources gets only those.
    let elsewhere = "api-version=2019-08-01&resource=https%3A%2F%2Fother.rampart.test";
    let error = h
        .issuer
        .managed_identity_token(&mi("127.0.0.1", elsewhere, Some(other_header.expose())))
        .await
        .unwrap_err();
    assert_eq!(error.code, OAuthErrorCode::InvalidTarget);
    // Removing the workload revokes its header.
    assert_eq!(h.issuer.list_workloads().await.unwrap().len(), 2);
    assert!(h.issuer.remove_workload("orders-api", "t").await.unwrap());
    let error = h
        .issuer
        .managed_identity_token(&mi("127.0.0.1", query, Some(&header)))
        .await
        .unwrap_err();
    assert_eq!(error.status, 401);

    let records = h.audit_records().await;
    assert!(records.iter().any(|r| r.contains("managed_identity.token")
        && r.contains("orders-api")
        && r.contains("\"allow\"")));
    assert!(records.iter().any(|r| r.contains("managed_identity.token")
        && r.contains("192.0.2.2")
        && r.contains("\"deny\"")));
    for record in &records {
        assert!(
            !record.contains(&header) && !record.contains(response.access_token.expose()),
            "{record}"
        );
    }
    // Workload listings never hold the header.
    assert!(!format!("{:?}", h.issuer.list_workloads().await.unwrap()).contains(&header));
}
