//! Token verification cost: cold (cache capacity 0, every call parses, checks the signature
//! and the claims) for RS256 (2048-bit), ES256 and EdDSA, the bare signature check under it,
//! and a hot token served by the verified-token cache.
//!
//! Keys come from a JWKS served by an in-process hyper server (fetched once before timing);
//! tokens are signed here with aws-lc-rs. Run: `cargo bench -p rampart-identity --bench verify`.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rampart_identity::Verifier;
use rampart_identity::jwt::{Jwk, Jws, VerifyingKey};
use rampart_identity::verifier::{IssuerConfig, JwksSource, VerifierConfig};

const AUDIENCE: &str = "https://gateway.test/api";
/// A jti as long as the test IdP's, so tokens have a realistic size (about 700 bytes).
const JTI: &str = "FYP0WvPrTTPikrAwhMcT5BYRWbjDD0tCLuVOh3tCtaw";

struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Keys {
    fn new() -> Self {
        Self {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            ed: Ed25519KeyPair::generate().unwrap(),
        }
    }

    fn jwks(&self) -> Vec<serde_json::Value> {
        let rsa = self.rsa.public_key();
        let point = self.ec.public_key().as_ref();
        vec![
            serde_json::json!({"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig",
                "n": b64(rsa.modulus().big_endian_without_leading_zero()),
                "e": b64(rsa.exponent().big_endian_without_leading_zero())}),
            serde_json::json!({"kty": "EC", "kid": "es", "alg": "ES256", "crv": "P-256",
                "x": b64(&point[1..33]), "y": b64(&point[33..])}),
            serde_json::json!({"kty": "OKP", "kid": "ed", "alg": "EdDSA", "crv": "Ed25519",
                "x": b64(self.ed.public_key().as_ref())}),
        ]
    }

    /// A token shaped like the test IdP's (RFC 9068 claims).
    fn token(&self, issuer: &str, alg: &str, jti: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let kid = match alg {
            "RS256" => "rs",
            "ES256" => "es",
            _ => "ed",
        };
        let header = serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let claims = serde_json::json!({
            "jti": jti, "sub": "gateway-test",
            "iat": now, "exp": now + 3600, "scope": "api:read api:write",
            "client_id": "gateway-test", "iss": issuer, "aud": AUDIENCE,
        });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match alg {
            "RS256" => {
                let mut sig = vec![0u8; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        input.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
            "ES256" => self
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            _ => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

async fn serve_jwks(jwks: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let jwks = jwks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| {
                    let body = Bytes::from(jwks.clone());
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = Keys::new();
    let jwks = serde_json::json!({ "keys": keys.jwks() });
    let issuer = runtime.block_on(serve_jwks(jwks.to_string()));
    let config = |cache_capacity| VerifierConfig {
        issuers: vec![IssuerConfig {
            jwks: JwksSource::JwksUri(format!("{issuer}/jwks")),
            ..IssuerConfig::new(issuer.clone(), [AUDIENCE])
        }],
        cache_capacity,
        ..VerifierConfig::default()
    };
    let cold = Verifier::new(&config(0)).unwrap();
    let cached = Verifier::new(&config(100_000)).unwrap();
    runtime.block_on(async {
        cold.prefetch().await.unwrap();
        cached.prefetch().await.unwrap();
    });

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = keys.token(&issuer, alg, JTI);
        assert!(runtime.block_on(cold.verify(&token)).is_ok());
        group.bench_function(format!("cold/{alg}"), |b| {
            b.to_async(&runtime).iter(|| cold.verify(&token));
        });
        // The signature check alone (parsed key, no claims, no async).
        let jwk: Jwk =
            serde_json::from_value(keys.jwks().into_iter().find(|k| k["alg"] == alg).unwrap())
                .unwrap();
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        group.bench_function(format!("signature/{alg}"), |b| {
            b.iter(|| Jws::parse(&token).unwrap().verify(&key).unwrap());
        });
    }
    let token = keys.token(&issuer, "ES256", JTI);
    // The floor of a cache hit: hashing the token.
    group.bench_function("sha256-of-token", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
    });
    assert!(runtime.block_on(cached.verify(&token)).is_ok());
    group.bench_function("cached/hot-token", |b| {
        b.to_async(&runtime).iter(|| cached.verify(&token));
    });
    // Many distinct cached tokens (the lookups spread over every shard).
    let good: Vec<String> = (0..1_000)
        .map(|i| keys.token(&issuer, "EdDSA", &format!("{JTI}-{i}")))
        .collect();
    runtime.block_on(async {
        for token in &good {
            cached.verify(token).await.unwrap();
        }
    });
    let mut next = 0usize;
    group.bench_function("cached/1000-tokens", |b| {
        b.to_async(&runtime).iter(|| {
            next = (next + 1) % good.len();
            cached.verify(&good[next])
        });
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
