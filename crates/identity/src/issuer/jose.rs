//! The small part of JOSE the issuer needs: base64url, public JWKs, compact JWS signing of
//! the tokens it issues, and signature checks of client assertions against a registered JWK.
//! (Verifying tokens for relying parties is the `verifier` module's job, not this one's.)

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::IssuerError;

/// Base64url without padding (RFC 7515 §2).
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, tolerating trailing padding.
pub(crate) fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// A public JSON Web Key (RFC 7517): EC P-256, RSA, or OKP Ed25519.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `sig` for signing keys.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// The algorithm the key is for (`ES256`, `RS256`, `EdDSA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve (`P-256`, `Ed25519`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Private parts: must be absent (kept only so their presence can be refused).
    #[serde(default, skip_serializing)]
    d: Option<serde_json::Value>,
}

/// The public key material of a [`Jwk`], decoded and checked.
#[derive(Debug)]
enum PublicKey {
    /// Uncompressed P-256 point (0x04 || x || y).
    P256(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

impl Jwk {
    /// A JWK for a P-256 public key given as an uncompressed point.
    pub(crate) fn p256(point: &[u8], kid: &str) -> Result<Self, IssuerError> {
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(IssuerError::Crypto("unexpected P-256 public key encoding")),
        };
        Ok(Self {
            kty: "EC".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            alg: Some("ES256".into()),
            crv: Some("P-256".into()),
            x: Some(b64(x)),
            y: Some(b64(y)),
            n: None,
            e: None,
            d: None,
        })
    }

    /// A JWK for an RSA public key.
    pub(crate) fn rsa(n: &[u8], e: &[u8], kid: &str) -> Self {
        Self {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            alg: Some("RS256".into()),
            crv: None,
            x: None,
            y: None,
            n: Some(b64(n)),
            e: Some(b64(e)),
            d: None,
        }
    }

    /// Parses a public JWK and checks it is usable for signature verification.
    ///
    /// # Errors
    /// [`IssuerError::InvalidJwk`] for malformed JSON, private parts, an unsupported key type
    /// or curve, or coordinates of the wrong size.
    pub fn parse(text: &str) -> Result<Self, IssuerError> {
        let jwk: Self = serde_json::from_str(text)
            .map_err(|error| IssuerError::InvalidJwk(format!("not a JWK: {error}")))?;
        jwk.public_key()?;
        Ok(jwk)
    }

    fn public_key(&self) -> Result<PublicKey, IssuerError> {
        let bad = |what: &str| IssuerError::InvalidJwk(what.to_owned());
        if self.d.is_some() {
            return Err(bad(
                "the key holds private parts (\"d\"); register the public key only",
            ));
        }
        let field = |value: &Option<String>, name: &str| {
            value
                .as_deref()
                .and_then(unb64)
                .ok_or_else(|| bad(&format!("missing or non-base64url \"{name}\"")))
        };
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let (x, y) = (field(&self.x, "x")?, field(&self.y, "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(bad("P-256 coordinates must be 32 bytes each"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(PublicKey::P256(point))
            }
            ("RSA", _) => {
                let (n, e) = (field(&self.n, "n")?, field(&self.e, "e")?);
                if n.len() < 256 {
                    return Err(bad("RSA keys must have at least 2048 bits"));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            ("OKP", Some("Ed25519")) => {
                let x = field(&self.x, "x")?;
                if x.len() != 32 {
                    return Err(bad("Ed25519 keys are 32 bytes"));
                }
                Ok(PublicKey::Ed25519(x))
            }
            (kty, crv) => Err(bad(&format!(
                "unsupported key type {kty} (curve {}); use EC P-256, RSA or OKP Ed25519",
                crv.unwrap_or("none")
            ))),
        }
    }

    /// Whether `signature` over `message` verifies under this key with JWS algorithm `alg`.
    /// The algorithm must match the key type (and the key's `alg`, when it names one).
    pub(crate) fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        if self.alg.as_deref().is_some_and(|declared| declared != alg) {
            return false;
        }
        match (self.public_key(), alg) {
            (Ok(PublicKey::P256(point)), "ES256") => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Ok(PublicKey::Rsa { n, e }), "RS256") => RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            (Ok(PublicKey::Ed25519(x)), "EdDSA") => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

/// A compact JWS split into its parts, header and claims decoded (not yet verified).
#[derive(Debug)]
pub(crate) struct CompactJws {
    pub header: serde_json::Map<String, serde_json::Value>,
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl CompactJws {
    /// Splits and decodes `token`; `None` when it is not a three-part JWS with JSON objects.
    pub(crate) fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let object = |part: &str| match serde_json::from_slice(&unb64(part)?) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        };
        Some(Self {
            header: object(header)?,
            claims: object(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: unb64(signature)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_parse_refuses_private_and_unsupported_keys() {
        let private = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#;
        assert!(
            Jwk::parse(private)
                .unwrap_err()
                .to_string()
                .contains("private")
        );
        let p384 = r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#;
        assert!(
            Jwk::parse(p384)
                .unwrap_err()
                .to_string()
                .contains("unsupported")
        );
        let short = r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#;
        assert!(
            Jwk::parse(short)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        assert!(Jwk::parse("not json").is_err());
    }

    #[test]
    fn compact_jws_parse_refuses_malformed_tokens() {
        assert!(CompactJws::parse("a.b").is_none());
        assert!(CompactJws::parse("a.b.c.d").is_none());
        let header = b64(br#"{"alg":"ES256"}"#);
        let claims = b64(br#"[1]"#);
        assert!(CompactJws::parse(&format!("{header}.{claims}.AA")).is_none());
        let claims = b64(br#"{"sub":"x"}"#);
        let jws = CompactJws::parse(&format!("{header}.{claims}.AA")).unwrap();
        assert_eq!(jws.claims["sub"], "x");
    }
}
