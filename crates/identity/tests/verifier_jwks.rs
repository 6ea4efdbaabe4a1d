//! The verifier against a JWKS server written here (hyper), where the test controls what is
//! served and counts every fetch: a flood of unknown kids, discovery checks, size limits.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rampart_identity::Verifier;
use rampart_identity::verifier::{IssuerConfig, JwksSource, VerifierConfig, VerifyError};
use tokio::net::TcpListener;

const AUDIENCE: &str = "api://test";

/// What the server answers on `/.well-known/openid-configuration` and `/jwks`.
#[derive(Debug, Clone)]
struct Served {
    discovery_issuer: Option<String>,
    jwks_uri: Option<String>,
    jwks: String,
}

struct JwksServer {
    issuer: String,
    jwks_fetches: Arc<AtomicUsize>,
    served: Arc<std::sync::Mutex<Served>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(jwks: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(std::sync::Mutex::new(Served {
            discovery_issuer: Some(issuer.clone()),
            jwks_uri: Some(format!("{issuer}/jwks")),
            jwks,
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (served_in, fetches_in) = (Arc::clone(&served), Arc::clone(&jwks_fetches));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (served, fetches) = (Arc::clone(&served_in), Arc::clone(&fetches_in));
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let served = served.lock().unwrap().clone();
                        let body = match request.uri().path() {
                            "/jwks" => {
                                fetches.fetch_add(1, Ordering::SeqCst);
                                served.jwks
                            }
                            "/.well-known/openid-configuration" => serde_json::json!({
                                "issuer": served.discovery_issuer,
                                "jwks_uri": served.jwks_uri,
                            })
                            .to_string(),
                            _ => String::new(),
                        };
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            issuer,
            jwks_fetches,
            served,
            task,
        }
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, change: impl FnOnce(&mut Served)) {
        change(&mut self.served.lock().unwrap());
    }
}

struct Signer {
    key: Ed25519KeyPair,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Self {
        Self {
            key: Ed25519KeyPair::generate().unwrap(),
            kid: kid.to_owned(),
        }
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref()),
        })
    }

    fn token(&self, issuer: &str, kid: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let claims = serde_json::json!({
            "iss": issuer, "sub": "svc", "aud": AUDIENCE, "iat": now, "exp": now + 300,
            "scp": "read",
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

fn jwks_of(signers: &[&Signer]) -> String {
    serde_json::json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

fn config(issuer: &str) -> VerifierConfig {
    VerifierConfig {
        issuers: vec![IssuerConfig::new(issuer, [AUDIENCE])],
        cache_capacity: 0,
        ..VerifierConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_fetches_once() {
    let signer = Signer::new("good");
    let server = JwksServer::start(jwks_of(&[&signer])).await;
    let verifier = Verifier::new(&config(&server.issuer)).unwrap();
    assert!(
        verifier
            .verify(&signer.token(&server.issuer, "good"))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 1);

    let mut flood = tokio::task::JoinSet::new();
    for i in 0..1_000 {
        let verifier = verifier.clone();
        let token = signer.token(&server.issuer, &format!("bogus-{i}"));
        flood.spawn(async move { verifier.verify(&token).await });
    }
    let mut unknown = 0;
    while let Some(result) = flood.join_next().await {
        match result.unwrap() {
            Err(VerifyError::UnknownKid { kid: Some(kid), .. }) if kid.starts_with("bogus-") => {
                unknown += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(unknown, 1_000);
    assert_eq!(server.fetches(), 2, "one refetch for the whole flood");
    assert_eq!(verifier.status()[0].fetch_count, 2);
    // Known kids keep verifying without fetching.
    assert!(
        verifier
            .verify(&signer.token(&server.issuer, "good"))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn unknown_kid_refetch_picks_up_a_new_key_once_per_interval() {
    let (old, new, newer) = (Signer::new("old"), Signer::new("new"), Signer::new("newer"));
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let verifier = Verifier::new(&VerifierConfig {
        unknown_kid_refetch_interval: Duration::from_millis(300),
        ..config(&server.issuer)
    })
    .unwrap();
    assert!(
        verifier
            .verify(&old.token(&server.issuer, "old"))
            .await
            .is_ok()
    );
    server.serve(|s| s.jwks = jwks_of(&[&old, &new]));
    assert!(
        verifier
            .verify(&new.token(&server.issuer, "new"))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 2);
    server.serve(|s| s.jwks = jwks_of(&[&old, &new, &newer]));
    // Within the interval: no fetch, unknown.
    assert!(matches!(
        verifier.verify(&newer.token(&server.issuer, "newer")).await,
        Err(VerifyError::UnknownKid { .. })
    ));
    assert_eq!(server.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        verifier
            .verify(&newer.token(&server.issuer, "newer"))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn refresh_ahead_replaces_keys_in_the_background() {
    let (old, new) = (Signer::new("old"), Signer::new("new"));
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let verifier = Verifier::new(&VerifierConfig {
        jwks_ttl: Duration::from_millis(500),
        unknown_kid_refetch_interval: Duration::from_secs(3600),
        ..config(&server.issuer)
    })
    .unwrap();
    verifier.prefetch().await.unwrap();
    // The new key is served without its kid being asked for first.
    server.serve(|s| s.jwks = jwks_of(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    // Past 80 % of the TTL: this call uses the current keys and starts a refresh.
    assert!(
        verifier
            .verify(&old.token(&server.issuer, "old"))
            .await
            .is_ok()
    );
    for _ in 0..250 {
        if server.fetches() >= 2 && verifier.status()[0].keys == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(verifier.status()[0].keys, 2);
    assert!(
        verifier
            .verify(&new.token(&server.issuer, "new"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn discovery_must_name_the_issuer_and_a_safe_jwks_uri() {
    let signer = Signer::new("k");
    let server = JwksServer::start(jwks_of(&[&signer])).await;
    let token = signer.token(&server.issuer, "k");
    let verifier_config = VerifierConfig {
        refresh_retry_interval: Duration::from_millis(1),
        ..config(&server.issuer)
    };

    server.serve(|s| s.discovery_issuer = Some("https://evil.example".into()));
    let verifier = Verifier::new(&verifier_config).unwrap();
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::JwksUnavailable { reason, .. } if reason.contains("evil.example")),
        "{error}"
    );

    server.serve(|s| {
        s.discovery_issuer = Some(server.issuer.clone());
        s.jwks_uri = Some("http://jwks.example/keys".into());
    });
    let verifier = Verifier::new(&verifier_config).unwrap();
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::JwksUnavailable { reason, .. } if reason.contains("https")),
        "{error}"
    );
    assert_eq!(server.fetches(), 0);

    server.serve(|s| s.jwks_uri = Some(format!("{}/jwks", server.issuer)));
    let verifier = Verifier::new(&verifier_config).unwrap();
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn oversized_or_keyless_jwks_are_refused() {
    let signer = Signer::new("k");
    let padding = "x".repeat(4096);
    let server = JwksServer::start(
        serde_json::json!({"keys": [signer.jwk()], "padding": padding}).to_string(),
    )
    .await;
    let token = signer.token(&server.issuer, "k");
    let small = Verifier::new(&VerifierConfig {
        max_response_bytes: 4096,
        ..config(&server.issuer)
    })
    .unwrap();
    let error = small.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::JwksUnavailable { reason, .. } if reason.contains("more than 4096 bytes")),
        "{error}"
    );
    let large = Verifier::new(&config(&server.issuer)).unwrap();
    assert!(large.verify(&token).await.is_ok());

    // Only a symmetric key and a 1024-bit RSA key: nothing usable.
    server.serve(|s| {
        s.jwks = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "k"},
            {"kty": "RSA", "kid": "r", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xc5; 128])},
        ]})
        .to_string();
    });
    let keyless = Verifier::new(&config(&server.issuer)).unwrap();
    let error = keyless.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::JwksUnavailable { reason, .. } if reason.contains("no usable signature key")),
        "{error}"
    );
}

#[tokio::test]
async fn issuer_and_type_are_checked_before_any_fetch() {
    let signer = Signer::new("k");
    let server = JwksServer::start(jwks_of(&[&signer])).await;
    let verifier = Verifier::new(&config(&server.issuer)).unwrap();
    let foreign = signer.token(&format!("{}/", server.issuer), "k");
    assert_eq!(
        verifier.verify(&foreign).await.unwrap_err(),
        VerifyError::UnknownIssuer(format!("{}/", server.issuer))
    );
    let token = signer.token(&server.issuer, "k");
    let (_, rest) = token.split_once('.').unwrap();
    let untyped = format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k","typ":"JOSE"}"#)
    );
    assert_eq!(
        verifier.verify(&untyped).await.unwrap_err(),
        VerifyError::WrongType(Some("JOSE".into()))
    );
    assert_eq!(server.fetches(), 0);
}

#[tokio::test]
async fn missing_typ_is_accepted_only_when_configured() {
    let signer = Signer::new("k");
    let server = JwksServer::start(jwks_of(&[&signer])).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode(
            serde_json::json!({"iss": server.issuer, "sub": "s", "aud": AUDIENCE, "exp": now + 60})
                .to_string()
        )
    );
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.key.sign(input.as_bytes()).as_ref())
    );
    let strict = Verifier::new(&config(&server.issuer)).unwrap();
    assert_eq!(
        strict.verify(&token).await.unwrap_err(),
        VerifyError::WrongType(None)
    );
    let mut lenient = config(&server.issuer);
    lenient.issuers[0].allow_missing_typ = true;
    lenient.issuers[0].jwks = JwksSource::JwksUri(format!("{}/jwks", server.issuer));
    let lenient = Verifier::new(&lenient).unwrap();
    assert_eq!(lenient.verify(&token).await.unwrap().subject, "s");
}

#[tokio::test]
async fn oversized_and_garbage_tokens_are_malformed() {
    let signer = Signer::new("k");
    let server = JwksServer::start(jwks_of(&[&signer])).await;
    let verifier = Verifier::new(&VerifierConfig {
        cache_capacity: 10,
        ..config(&server.issuer)
    })
    .unwrap();
    let huge = format!(
        "{}.{}",
        signer.token(&server.issuer, "k"),
        "A".repeat(20_000)
    );
    let error = verifier.verify(&huge).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::Malformed(reason) if reason.contains("more than the 16384")),
        "{error}"
    );
    for garbage in ["", "Bearer x", "a.b.c", "....", "eyJ.eyJ.eyJ"] {
        assert!(
            matches!(
                verifier.verify(garbage).await,
                Err(VerifyError::Malformed(_))
            ),
            "{garbage:?}"
        );
    }
    assert_eq!(server.fetches(), 0);
}
