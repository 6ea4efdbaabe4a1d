//! JSON Web Keys as an IdP serves them, and [`VerifyingKey`]: one JWK compiled once into
//! aws-lc public keys, pinned to the algorithms it may verify.
//!
//! Pinning: the JWK's `alg` when present (it must fit the key type), else derived from the key:
//! RSA → the RS*/PS* family, EC P-256 → ES256, EC P-384 → ES384, OKP Ed25519 → EdDSA.
//! Symmetric (`oct`) keys, RSA moduli under 2048 bits and encryption keys are refused.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::alg::{Algorithm, RSA_FAMILY};
use super::error::{JwkError, JwtError};

/// A JWK Set (RFC 7517 section 5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// A public JWK (RFC 7517, 7518 section 6, 8037). Private members are never read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC` or `OKP` (others are refused).
    #[serde(default)]
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The algorithm the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use: `sig` or `enc`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// RSA modulus (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve: `P-256`, `P-384`, `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK compiled for verification: parsed aws-lc keys, one per algorithm it is pinned to.
pub struct VerifyingKey {
    kid: Option<String>,
    keys: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithm_names())
            .finish()
    }
}

fn member(value: Option<&String>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    let value = value.ok_or(JwkError::BadMember(name))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| JwkError::BadMember(name))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(&top) => (big_endian.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn rejected(error: aws_lc_rs::error::KeyRejected) -> JwkError {
    JwkError::Rejected(error.to_string())
}

impl VerifyingKey {
    /// Compiles `jwk`.
    ///
    /// # Errors
    /// Every [`JwkError`]: unsupported type or curve, small RSA key, undecodable member,
    /// `alg` that does not fit, encryption key.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JwkError> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig")
            || jwk
                .key_ops
                .as_ref()
                .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err(JwkError::NotForSignatures);
        }
        let declared = jwk
            .alg
            .as_deref()
            .map(Algorithm::from_name)
            .transpose()
            .map_err(JwkError::Algorithm)?;
        let does_not_fit = |kty: &str| JwkError::AlgorithmDoesNotFit {
            alg: jwk.alg.clone().unwrap_or_default(),
            kty: kty.to_owned(),
        };
        let keys = match jwk.kty.as_str() {
            "RSA" => {
                let n = member(jwk.n.as_ref(), "n")?;
                let e = member(jwk.e.as_ref(), "e")?;
                let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
                let bits = bit_length(n);
                if !(2048..=8192).contains(&bits) {
                    return Err(JwkError::RsaKeySize { bits });
                }
                if e.is_empty() {
                    return Err(JwkError::BadMember("e"));
                }
                let algs: Vec<Algorithm> = match declared {
                    Some(alg) if alg.is_rsa() => vec![alg],
                    Some(_) => return Err(does_not_fit("RSA")),
                    None => RSA_FAMILY.to_vec(),
                };
                let components = RsaPublicKeyComponents { n, e };
                let mut keys = Vec::with_capacity(algs.len());
                for alg in algs {
                    let params = alg.rsa_params().ok_or_else(|| does_not_fit("RSA"))?;
                    keys.push((
                        alg,
                        components.to_parsed_public_key(params).map_err(rejected)?,
                    ));
                }
                keys
            }
            "EC" => {
                let crv = jwk.crv.as_deref().ok_or(JwkError::BadMember("crv"))?;
                let (alg, size, verification): (
                    _,
                    _,
                    &'static dyn signature::VerificationAlgorithm,
                ) = match crv {
                    "P-256" => (Algorithm::ES256, 32, &signature::ECDSA_P256_SHA256_FIXED),
                    "P-384" => (Algorithm::ES384, 48, &signature::ECDSA_P384_SHA384_FIXED),
                    other => {
                        return Err(JwkError::UnsupportedCurve(other.chars().take(32).collect()));
                    }
                };
                if declared.is_some_and(|d| d != alg) {
                    return Err(does_not_fit(&format!("EC {crv}")));
                }
                let x = member(jwk.x.as_ref(), "x")?;
                let y = member(jwk.y.as_ref(), "y")?;
                if x.len() != size {
                    return Err(JwkError::BadMember("x"));
                }
                if y.len() != size {
                    return Err(JwkError::BadMember("y"));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                vec![(
                    alg,
                    ParsedPublicKey::new(verification, point).map_err(rejected)?,
                )]
            }
            "OKP" => {
                let crv = jwk.crv.as_deref().ok_or(JwkError::BadMember("crv"))?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedCurve(crv.chars().take(32).collect()));
                }
                if declared.is_some_and(|d| d != Algorithm::EdDSA) {
                    return Err(does_not_fit("OKP Ed25519"));
                }
                let x = member(jwk.x.as_ref(), "x")?;
                if x.len() != 32 {
                    return Err(JwkError::BadMember("x"));
                }
                vec![(
                    Algorithm::EdDSA,
                    ParsedPublicKey::new(&signature::ED25519, x).map_err(rejected)?,
                )]
            }
            other => {
                return Err(JwkError::UnsupportedKeyType(
                    other.chars().take(32).collect(),
                ));
            }
        };
        Ok(Self {
            kid: jwk.kid.clone(),
            keys,
        })
    }

    /// The key id, when the JWK had one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.keys.iter().map(|(alg, _)| *alg)
    }

    /// Whether this key verifies `alg`.
    #[must_use]
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|(a, _)| *a == alg)
    }

    fn algorithm_names(&self) -> String {
        self.algorithms()
            .map(Algorithm::name)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Verifies `signature` over `message` with `alg`.
    ///
    /// # Errors
    /// [`JwtError::AlgorithmMismatch`] when the key is not pinned to `alg`,
    /// [`JwtError::BadSignature`] when the signature does not verify.
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        let (_, key) = self.keys.iter().find(|(a, _)| *a == alg).ok_or_else(|| {
            JwtError::AlgorithmMismatch {
                alg: alg.name(),
                key_algs: self.algorithm_names(),
            }
        })?;
        key.verify_sig(message, sig)
            .map_err(|_| JwtError::BadSignature)
    }
}
