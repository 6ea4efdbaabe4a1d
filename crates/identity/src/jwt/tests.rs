//! Signature vectors generated with aws-lc-rs signing keys (RFC 7515 appendix A style: a JWK,
//! a signing input, a signature), RFC 8037 appendix A.4, and the refusals.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(alg: &str, kid: &str) -> String {
    format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#).as_bytes()),
        b64(br#"{"iss":"joe","exp":1300819380,"http://example.com/is_root":true}"#)
    )
}

fn rsa_jwk(key: &RsaKeyPair, alg: Option<&str>) -> Jwk {
    let public = key.public_key();
    Jwk {
        kty: "RSA".into(),
        kid: Some("rsa".into()),
        alg: alg.map(Into::into),
        n: Some(b64(public.modulus().big_endian_without_leading_zero())),
        e: Some(b64(public.exponent().big_endian_without_leading_zero())),
        ..Jwk::default()
    }
}

fn rsa_token(key: &RsaKeyPair, alg: &str) -> String {
    let encoding: &'static dyn signature::RsaEncoding = match alg {
        "RS256" => &signature::RSA_PKCS1_SHA256,
        "RS384" => &signature::RSA_PKCS1_SHA384,
        "RS512" => &signature::RSA_PKCS1_SHA512,
        "PS256" => &signature::RSA_PSS_SHA256,
        "PS384" => &signature::RSA_PSS_SHA384,
        "PS512" => &signature::RSA_PSS_SHA512,
        _ => unreachable!(),
    };
    let input = signing_input(alg, "rsa");
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(encoding, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", b64(&sig))
}

fn ec_jwk(key: &EcdsaKeyPair, crv: &str) -> Jwk {
    let point = key.public_key().as_ref();
    let size = (point.len() - 1) / 2;
    Jwk {
        kty: "EC".into(),
        kid: Some("ec".into()),
        crv: Some(crv.into()),
        x: Some(b64(&point[1..=size])),
        y: Some(b64(&point[1 + size..])),
        ..Jwk::default()
    }
}

fn ec_token(key: &EcdsaKeyPair, alg: &str) -> String {
    let input = signing_input(alg, "ec");
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

fn verify(token: &str, jwk: &Jwk) -> Result<(), JwtError> {
    let key = VerifyingKey::from_jwk(jwk).unwrap();
    Jws::parse(token)?.verify(&key)
}

fn flip_last_signature_bit(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    *sig.last_mut().unwrap() ^= 1;
    format!("{input}.{}", b64(&sig))
}

#[test]
fn rsa_family_verifies_and_pins() {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let unpinned = rsa_jwk(&key, None);
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let token = rsa_token(&key, alg);
        assert_eq!(verify(&token, &unpinned), Ok(()), "{alg}");
        assert_eq!(
            verify(&flip_last_signature_bit(&token), &unpinned),
            Err(JwtError::BadSignature),
            "{alg}"
        );
    }
    // A JWK `alg` pins the key to that one algorithm.
    let pinned = rsa_jwk(&key, Some("RS256"));
    assert_eq!(verify(&rsa_token(&key, "RS256"), &pinned), Ok(()));
    assert!(matches!(
        verify(&rsa_token(&key, "PS256"), &pinned),
        Err(JwtError::AlgorithmMismatch { alg: "PS256", .. })
    ));
}

#[test]
fn ecdsa_p256_and_p384() {
    let p256 = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let p384 = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let (jwk256, jwk384) = (ec_jwk(&p256, "P-256"), ec_jwk(&p384, "P-384"));
    let es256 = ec_token(&p256, "ES256");
    let es384 = ec_token(&p384, "ES384");
    assert_eq!(verify(&es256, &jwk256), Ok(()));
    assert_eq!(verify(&es384, &jwk384), Ok(()));
    assert_eq!(
        verify(&flip_last_signature_bit(&es256), &jwk256),
        Err(JwtError::BadSignature)
    );
    // A P-256 key verifies ES256 only.
    let relabelled = format!(
        "{}.{}",
        signing_input("ES384", "ec"),
        es256.rsplit_once('.').unwrap().1
    );
    assert!(matches!(
        verify(&relabelled, &jwk256),
        Err(JwtError::AlgorithmMismatch { alg: "ES384", .. })
    ));
    // ASN.1 DER signatures are not JWS signatures.
    let der_key = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        p256.to_pkcs8v1().unwrap().as_ref(),
    )
    .unwrap();
    let input = signing_input("ES256", "ec");
    let der = der_key
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    assert_eq!(
        verify(&format!("{input}.{}", b64(der.as_ref())), &jwk256),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn ed25519_generated_and_rfc8037_vector() {
    let key = Ed25519KeyPair::generate().unwrap();
    let jwk = Jwk {
        kty: "OKP".into(),
        kid: Some("ed".into()),
        crv: Some("Ed25519".into()),
        x: Some(b64(key.public_key().as_ref())),
        ..Jwk::default()
    };
    let input = signing_input("EdDSA", "ed");
    let token = format!("{input}.{}", b64(key.sign(input.as_bytes()).as_ref()));
    assert_eq!(verify(&token, &jwk), Ok(()));
    assert_eq!(
        verify(&flip_last_signature_bit(&token), &jwk),
        Err(JwtError::BadSignature)
    );

    // RFC 8037 appendix A.4 (public key of A.2, signature of A.4).
    let rfc = Jwk {
        kty: "OKP".into(),
        crv: Some("Ed25519".into()),
        x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
        ..Jwk::default()
    };
    let jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
               hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    assert_eq!(verify(jws, &rfc), Ok(()));
    assert_eq!(
        Jws::parse(jws).unwrap().payload(),
        b"Example of Ed25519 signing"
    );
}

#[test]
fn hmac_with_the_public_key_as_secret_is_refused() {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let n = key
        .public_key()
        .modulus()
        .big_endian_without_leading_zero()
        .to_vec();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","kid":"rsa"}"#),
        b64(br#"{"sub":"x"}"#)
    );
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &n);
    let tag = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    let token = format!("{input}.{}", b64(tag.as_ref()));
    assert!(matches!(
        Jws::parse(&token),
        Err(JwtError::ForbiddenAlgorithm(alg)) if alg == "HS256"
    ));
    // And a symmetric JWK never becomes a verifying key.
    let oct = Jwk {
        kty: "oct".into(),
        ..Jwk::default()
    };
    assert_eq!(
        VerifyingKey::from_jwk(&oct).unwrap_err(),
        JwkError::UnsupportedKeyType("oct".into())
    );
}

#[test]
fn unusable_jwks_are_refused() {
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let good_rsa = rsa_jwk(&rsa, None);
    let mut small = good_rsa.clone();
    small.n = Some(b64(&[0xc5; 128]));
    assert_eq!(
        VerifyingKey::from_jwk(&small).unwrap_err(),
        JwkError::RsaKeySize { bits: 1024 }
    );
    let mut es_on_rsa = good_rsa.clone();
    es_on_rsa.alg = Some("ES256".into());
    assert!(matches!(
        VerifyingKey::from_jwk(&es_on_rsa),
        Err(JwkError::AlgorithmDoesNotFit { .. })
    ));
    let mut hs_on_rsa = good_rsa.clone();
    hs_on_rsa.alg = Some("HS256".into());
    assert!(matches!(
        VerifyingKey::from_jwk(&hs_on_rsa),
        Err(JwkError::Algorithm(JwtError::ForbiddenAlgorithm(_)))
    ));
    let mut enc = good_rsa.clone();
    enc.use_ = Some("enc".into());
    assert_eq!(
        VerifyingKey::from_jwk(&enc).unwrap_err(),
        JwkError::NotForSignatures
    );
    let mut no_e = good_rsa.clone();
    no_e.e = None;
    assert_eq!(
        VerifyingKey::from_jwk(&no_e).unwrap_err(),
        JwkError::BadMember("e")
    );

    let ec = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let good_ec = ec_jwk(&ec, "P-256");
    assert!(VerifyingKey::from_jwk(&good_ec).is_ok());
    let mut off_curve = good_ec.clone();
    off_curve.y = Some(b64(&[1u8; 32]));
    assert!(matches!(
        VerifyingKey::from_jwk(&off_curve),
        Err(JwkError::Rejected(_))
    ));
    let mut short = good_ec.clone();
    short.x = Some(b64(&[1u8; 31]));
    assert_eq!(
        VerifyingKey::from_jwk(&short).unwrap_err(),
        JwkError::BadMember("x")
    );
    let mut p521 = good_ec.clone();
    p521.crv = Some("P-521".into());
    assert!(matches!(
        VerifyingKey::from_jwk(&p521),
        Err(JwkError::UnsupportedCurve(_))
    ));
    let mut es384_on_p256 = good_ec.clone();
    es384_on_p256.alg = Some("ES384".into());
    assert!(matches!(
        VerifyingKey::from_jwk(&es384_on_p256),
        Err(JwkError::AlgorithmDoesNotFit { .. })
    ));
    let x25519 = Jwk {
        kty: "OKP".into(),
        crv: Some("X25519".into()),
        x: Some(b64(&[9u8; 32])),
        ..Jwk::default()
    };
    assert!(matches!(
        VerifyingKey::from_jwk(&x25519),
        Err(JwkError::UnsupportedCurve(_))
    ));
}

#[test]
fn jwk_set_parses_what_idps_serve() {
    let set: JwkSet = serde_json::from_str(
        r#"{"keys":[{"kty":"EC","use":"sig","kid":"k","alg":"ES256","crv":"P-256",
            "x":"C0bzXiXsFyl-roBXXqk_aslzgdiyNT6fXylnxaduBVU",
            "y":"l6VFJl5voox2W3Lc9AXrutqeUMOlvN5DU86XaP_zMXE","x5t":"ignored"}]}"#,
    )
    .unwrap();
    let key = VerifyingKey::from_jwk(&set.keys[0]).unwrap();
    assert_eq!(key.kid(), Some("k"));
    assert_eq!(key.algorithms().collect::<Vec<_>>(), [Algorithm::ES256]);
}
