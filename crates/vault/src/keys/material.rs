//! Key material: generation, import from a private JWK, the stored form (a type byte and the
//! PKCS#8 DER private key, only ever written through the barrier), the public JWK, and the
//! cryptographic operations (sign/verify over a digest, RSA encrypt/decrypt), all with
//! aws-lc-rs. Private bytes live in [`Zeroizing`] buffers; aws-lc clears its own key memory
//! when a key is freed. Nothing here prints key material.

use std::fmt;

use aws_lc_rs::digest::Digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{
    self, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::algorithms::{Curve, EncryptionAlgorithm, KeyType, SignatureAlgorithm};
use super::jwk::{B64, JsonWebKey};
use crate::error::{Result, VaultError};

/// Smallest RSA modulus accepted (bits).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (bits).
pub const MAX_RSA_BITS: usize = 4096;

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidKeyRequest {
        reason: reason.into(),
    }
}

/// What kind of key and how big.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// RSA with a modulus of `bits` bits (public exponent 65537).
    Rsa {
        /// Modulus size (2048, 3072 or 4096 for generation).
        bits: usize,
    },
    /// ECDSA on a curve.
    Ec(Curve),
}

impl KeySpec {
    fn tag(self) -> u8 {
        match self {
            Self::Rsa { .. } => 1,
            Self::Ec(Curve::P256) => 2,
            Self::Ec(Curve::P384) => 3,
            Self::Ec(Curve::P521) => 4,
            Self::Ec(Curve::P256K) => 5,
        }
    }
}

fn ec_signing(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        Curve::P256K => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
    }
}

fn ec_verification(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        Curve::P256K => &signature::ECDSA_P256K1_SHA256_FIXED,
    }
}

fn rsa_signing(alg: SignatureAlgorithm) -> Option<&'static dyn signature::RsaEncoding> {
    Some(match alg {
        SignatureAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        SignatureAlgorithm::Rs384 => &signature::RSA_PKCS1_SHA384,
        SignatureAlgorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
        SignatureAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
        SignatureAlgorithm::Ps384 => &signature::RSA_PSS_SHA384,
        SignatureAlgorithm::Ps512 => &signature::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn rsa_verification(alg: SignatureAlgorithm) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        SignatureAlgorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        SignatureAlgorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        SignatureAlgorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        SignatureAlgorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        SignatureAlgorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
        SignatureAlgorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn oaep(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaOaep => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaOaep256 => Some(&OAEP_SHA256_MGF1SHA256),
        EncryptionAlgorithm::Rsa15 => None,
    }
}

/// Imports a digest, checking its length against the algorithm's hash.
fn import_digest(alg: SignatureAlgorithm, digest: &[u8]) -> Result<Digest> {
    let hash = alg.digest();
    Digest::import_less_safe(digest, hash).map_err(|_| {
        invalid(format!(
            "a {} digest is {} bytes, got {}",
            alg.as_str(),
            hash.output_len(),
            digest.len()
        ))
    })
}

// --- minimal DER (RFC 8017 structures for JWK import and public-key verification) ---

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0));
        out.extend_from_slice(significant);
    }
}

fn der_uint(out: &mut Vec<u8>, value: &[u8]) {
    let skip = value.iter().take_while(|b| **b == 0).count();
    let value = value.get(skip..).unwrap_or_default();
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_len(out, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

fn der_sequence(items: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::new());
    for item in items {
        der_uint(&mut body, item);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 6));
    out.push(0x30);
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// A usable key: parsed once, kept in memory (the service caches them per version).
pub struct KeyMaterial {
    inner: Inner,
}

enum Inner {
    Rsa {
        pair: rsa::KeyPair,
        decrypt: PrivateDecryptingKey,
    },
    Ec {
        curve: Curve,
        pair: EcdsaKeyPair,
    },
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("spec", &self.spec())
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// Generates a key. RSA sizes: 2048, 3072, 4096.
    pub fn generate(spec: KeySpec) -> Result<(Self, Zeroizing<Vec<u8>>)> {
        let key = match spec {
            KeySpec::Rsa { bits } => {
                let size = match bits {
                    2048 => rsa::KeySize::Rsa2048,
                    3072 => rsa::KeySize::Rsa3072,
                    4096 => rsa::KeySize::Rsa4096,
                    other => {
                        return Err(invalid(format!(
                            "unsupported RSA key size {other} (2048, 3072 or 4096)"
                        )));
                    }
                };
                let pair = rsa::KeyPair::generate(size)
                    .map_err(|_| VaultError::Crypto("rsa key generation"))?;
                let pkcs8 = Self::rsa_pkcs8(&pair)?;
                let decrypt = PrivateDecryptingKey::from_pkcs8(&pkcs8)
                    .map_err(|_| VaultError::Crypto("rsa decryption key setup"))?;
                Self {
                    inner: Inner::Rsa { pair, decrypt },
                }
            }
            KeySpec::Ec(curve) => {
                let pair = EcdsaKeyPair::generate(ec_signing(curve))
                    .map_err(|_| VaultError::Crypto("ec key generation"))?;
                Self {
                    inner: Inner::Ec { curve, pair },
                }
            }
        };
        let stored = key.to_stored()?;
        Ok((key, stored))
    }

    fn rsa_pkcs8(pair: &rsa::KeyPair) -> Result<Zeroizing<Vec<u8>>> {
        let der: Pkcs8V1Der<'static> = pair
            .as_der()
            .map_err(|_| VaultError::Crypto("rsa pkcs#8 encoding"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// The stored form: the spec's type byte, then the PKCS#8 DER private key.
    pub fn to_stored(&self) -> Result<Zeroizing<Vec<u8>>> {
        let pkcs8 = match &self.inner {
            Inner::Rsa { pair, .. } => Self::rsa_pkcs8(pair)?,
            Inner::Ec { pair, .. } => Zeroizing::new(
                pair.to_pkcs8v1()
                    .map_err(|_| VaultError::Crypto("ec pkcs#8 encoding"))?
                    .as_ref()
                    .to_vec(),
            ),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(pkcs8.len() + 1));
        out.push(self.spec().tag());
        out.extend_from_slice(&pkcs8);
        Ok(out)
    }

    /// Parses the stored form written by [`KeyMaterial::to_stored`].
    pub fn from_stored(stored: &[u8]) -> Result<Self> {
        let corrupt = |reason: &str| VaultError::Corrupt {
            what: "key material".into(),
            reason: reason.into(),
        };
        let (tag, der) = stored.split_first().ok_or_else(|| corrupt("empty"))?;
        let curve = match tag {
            1 => None,
            2 => Some(Curve::P256),
            3 => Some(Curve::P384),
            4 => Some(Curve::P521),
            5 => Some(Curve::P256K),
            _ => return Err(corrupt("unknown key type byte")),
        };
        let inner = match curve {
            None => Inner::Rsa {
                pair: rsa::KeyPair::from_pkcs8(der).map_err(|_| corrupt("rsa pkcs#8"))?,
                decrypt: PrivateDecryptingKey::from_pkcs8(der)
                    .map_err(|_| corrupt("rsa pkcs#8"))?,
            },
            Some(curve) => Inner::Ec {
                curve,
                pair: EcdsaKeyPair::from_pkcs8(ec_signing(curve), der)
                    .map_err(|_| corrupt("ec pkcs#8"))?,
            },
        };
        Ok(Self { inner })
    }

    /// Builds a key from a private JWK (RSA with `n e d p q dp dq qi`, or EC with
    /// `crv x y d`). Returns the key type named by the JWK (without the HSM suffix).
    pub fn from_jwk(jwk: &JsonWebKey) -> Result<(KeyType, Self)> {
        let kty = KeyType::parse(
            jwk.kty
                .as_deref()
                .ok_or_else(|| invalid("the key has no kty"))?,
        )?;
        let need = |v: &Option<B64>, name: &str| -> Result<Zeroizing<Vec<u8>>> {
            v.as_ref().map(|b| b.0.clone()).ok_or_else(|| {
                invalid(format!(
                    "the {} key has no {name} (a private key is required)",
                    kty.as_str()
                ))
            })
        };
        if kty.is_rsa() {
            let n = need(&jwk.n, "n")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(invalid(format!(
                    "RSA modulus of {bits} bits (2048 to 4096 are accepted)"
                )));
            }
            let parts = [
                &[0u8][..],
                &n,
                &need(&jwk.e, "e")?,
                &need(&jwk.d, "d")?,
                &need(&jwk.p, "p")?,
                &need(&jwk.q, "q")?,
                &need(&jwk.dp, "dp")?,
                &need(&jwk.dq, "dq")?,
                &need(&jwk.qi, "qi")?,
            ];
            let der = der_sequence(&parts);
            let pair =
                rsa::KeyPair::from_der(&der).map_err(|_| invalid("the RSA key is not valid"))?;
            let pkcs8 = Self::rsa_pkcs8(&pair)?;
            let decrypt = PrivateDecryptingKey::from_pkcs8(&pkcs8)
                .map_err(|_| invalid("the RSA key is not valid"))?;
            let key = Self {
                inner: Inner::Rsa { pair, decrypt },
            };
            // The modulus the JWK states must be the key's (from_der checks consistency).
            return Ok((KeyType::Rsa, key));
        }
        let curve = Curve::parse(
            jwk.crv
                .as_deref()
                .ok_or_else(|| invalid("the EC key has no crv"))?,
        )?;
        let field = curve.field_len();
        let fixed = |v: Zeroizing<Vec<u8>>, name: &str| -> Result<Zeroizing<Vec<u8>>> {
            let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
            let trimmed = Zeroizing::new(trimmed);
            if trimmed.len() > field {
                return Err(invalid(format!("{name} is longer than the curve allows")));
            }
            let mut out = Zeroizing::new(vec![0u8; field - trimmed.len()]);
            out.extend_from_slice(&trimmed);
            Ok(out)
        };
        let d = fixed(need(&jwk.d, "d")?, "d")?;
        let mut point = vec![0x04];
        point.extend_from_slice(&fixed(need(&jwk.x, "x")?, "x")?);
        point.extend_from_slice(&fixed(need(&jwk.y, "y")?, "y")?);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(ec_signing(curve), &d, &point)
            .map_err(|_| invalid("the EC key is not valid (d, x and y must match the curve)"))?;
        Ok((
            KeyType::Ec,
            Self {
                inner: Inner::Ec { curve, pair },
            },
        ))
    }

    /// Type and size.
    pub fn spec(&self) -> KeySpec {
        match &self.inner {
            Inner::Rsa { pair, .. } => KeySpec::Rsa {
                bits: pair.public_modulus_len() * 8,
            },
            Inner::Ec { curve, .. } => KeySpec::Ec(*curve),
        }
    }

    /// The public JWK (`n`/`e` or `crv`/`x`/`y`), with `kty` and `key_ops` left for the
    /// caller (who knows the stored type and operations).
    pub fn public_jwk(&self) -> JsonWebKey {
        match &self.inner {
            Inner::Rsa { pair, .. } => {
                let public = pair.public_key();
                JsonWebKey {
                    n: Some(B64::new(public.modulus().big_endian_without_leading_zero())),
                    e: Some(B64::new(
                        public.exponent().big_endian_without_leading_zero(),
                    )),
                    ..JsonWebKey::default()
                }
            }
            Inner::Ec { curve, pair } => {
                let point = pair.public_key().as_ref();
                let field = curve.field_len();
                let coord =
                    |range: std::ops::Range<usize>| point.get(range).map(|c| B64::new(c.to_vec()));
                JsonWebKey {
                    crv: Some(curve.as_str().to_owned()),
                    x: coord(1..1 + field),
                    y: coord(1 + field..1 + 2 * field),
                    ..JsonWebKey::default()
                }
            }
        }
    }

    fn check_alg(&self, alg: SignatureAlgorithm) -> Result<()> {
        let ok = match &self.inner {
            Inner::Rsa { .. } => alg.is_rsa(),
            Inner::Ec { curve, .. } => curve.signature_algorithm() == alg,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(format!(
                "algorithm {} cannot be used with a {} key",
                alg.as_str(),
                spec_name(self.spec())
            )))
        }
    }

    /// Signs a digest (its length must be the algorithm's hash length). ES signatures are
    /// `r || s`, each the curve's field length, as JWS and Azure use.
    pub fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        self.check_alg(alg)?;
        let digest = import_digest(alg, digest)?;
        match &self.inner {
            Inner::Rsa { pair, .. } => {
                let encoding = rsa_signing(alg).ok_or_else(|| invalid("not an RSA algorithm"))?;
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign_digest(encoding, &digest, &mut sig)
                    .map_err(|_| VaultError::Crypto("rsa sign"))?;
                Ok(sig)
            }
            Inner::Ec { pair, .. } => Ok(pair
                .sign_digest(&digest)
                .map_err(|_| VaultError::Crypto("ecdsa sign"))?
                .as_ref()
                .to_vec()),
        }
    }

    /// Verifies a signature over a digest with this key's public half.
    pub fn verify_digest(
        &self,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        self.check_alg(alg)?;
        let digest = import_digest(alg, digest)?;
        let ok = match &self.inner {
            Inner::Rsa { pair, .. } => {
                let params =
                    rsa_verification(alg).ok_or_else(|| invalid("not an RSA algorithm"))?;
                UnparsedPublicKey::new(params, pair.public_key().as_ref())
                    .verify_digest(&digest, signature)
                    .is_ok()
            }
            Inner::Ec { curve, pair } => {
                UnparsedPublicKey::new(ec_verification(*curve), pair.public_key().as_ref())
                    .verify_digest(&digest, signature)
                    .is_ok()
            }
        };
        Ok(ok)
    }

    fn rsa_decrypt_key(&self) -> Result<&PrivateDecryptingKey> {
        match &self.inner {
            Inner::Rsa { decrypt, .. } => Ok(decrypt),
            Inner::Ec { .. } => Err(invalid("encryption needs an RSA key")),
        }
    }

    /// Encrypts `plaintext` with the public key.
    pub fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self.rsa_decrypt_key()?;
        let modulus = key.key_size_bytes();
        let max = alg.max_plaintext(modulus);
        if plaintext.len() > max {
            return Err(invalid(format!(
                "{} with a {}-bit key encrypts at most {max} bytes, got {}",
                alg.as_str(),
                modulus * 8,
                plaintext.len()
            )));
        }
        let mut out = vec![0u8; modulus];
        let len = match oaep(alg) {
            Some(oaep_alg) => OaepPublicEncryptingKey::new(key.public_key()).and_then(|k| {
                k.encrypt(oaep_alg, plaintext, &mut out, None)
                    .map(|c| c.len())
            }),
            None => Pkcs1PublicEncryptingKey::new(key.public_key())
                .and_then(|k| k.encrypt(plaintext, &mut out).map(|c| c.len())),
        }
        .map_err(|_| VaultError::Crypto("rsa encrypt"))?;
        out.truncate(len);
        Ok(out)
    }

    /// Decrypts `ciphertext` (its length must be the modulus length).
    pub fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.rsa_decrypt_key()?;
        let modulus = key.key_size_bytes();
        if ciphertext.len() != modulus {
            return Err(invalid(format!(
                "the ciphertext is {} bytes, a {}-bit key needs {modulus}",
                ciphertext.len(),
                modulus * 8
            )));
        }
        let mut out = Zeroizing::new(vec![0u8; modulus]);
        let len = match oaep(alg) {
            Some(oaep_alg) => OaepPrivateDecryptingKey::new(key.clone()).and_then(|k| {
                k.decrypt(oaep_alg, ciphertext, &mut out, None)
                    .map(|p| p.len())
            }),
            None => Pkcs1PrivateDecryptingKey::new(key.clone())
                .and_then(|k| k.decrypt(ciphertext, &mut out).map(|p| p.len())),
        }
        .map_err(|_| invalid("decryption failed"))?;
        out.truncate(len);
        Ok(out)
    }
}

fn spec_name(spec: KeySpec) -> String {
    match spec {
        KeySpec::Rsa { bits } => format!("RSA {bits}"),
        KeySpec::Ec(curve) => format!("EC {}", curve.as_str()),
    }
}

/// Verifies a signature over a digest with a public JWK alone (`n`/`e` or `crv`/`x`/`y`), as a
/// client holding only the public key would.
pub fn verify_with_public_jwk(
    jwk: &JsonWebKey,
    alg: SignatureAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let digest = import_digest(alg, digest)?;
    if let Some(params) = rsa_verification(alg) {
        let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
            return Err(invalid("an RSA algorithm needs n and e"));
        };
        let der = der_sequence(&[n.bytes(), e.bytes()]);
        return Ok(UnparsedPublicKey::new(params, der.as_slice())
            .verify_digest(&digest, signature)
            .is_ok());
    }
    let curve = Curve::parse(jwk.crv.as_deref().unwrap_or_default())?;
    if curve.signature_algorithm() != alg {
        return Err(invalid(format!(
            "algorithm {} cannot be used with curve {}",
            alg.as_str(),
            curve.as_str()
        )));
    }
    let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
        return Err(invalid("an EC key needs x and y"));
    };
    let mut point = vec![0x04];
    point.extend_from_slice(x.bytes());
    point.extend_from_slice(y.bytes());
    Ok(
        UnparsedPublicKey::new(ec_verification(curve), point.as_slice())
            .verify_digest(&digest, signature)
            .is_ok(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use aws_lc_rs::digest;

    use super::*;

    fn specs() -> Vec<KeySpec> {
        vec![
            KeySpec::Rsa { bits: 2048 },
            KeySpec::Ec(Curve::P256),
            KeySpec::Ec(Curve::P384),
            KeySpec::Ec(Curve::P521),
            KeySpec::Ec(Curve::P256K),
        ]
    }

    fn algs_for(spec: KeySpec) -> Vec<SignatureAlgorithm> {
        match spec {
            KeySpec::Rsa { .. } => SignatureAlgorithm::ALL
                .into_iter()
                .filter(|a| a.is_rsa())
                .collect(),
            KeySpec::Ec(c) => vec![c.signature_algorithm()],
        }
    }

    #[test]
    fn every_algorithm_signs_and_verifies_and_rejects_tampering() {
        for spec in specs() {
            let (key, stored) = KeyMaterial::generate(spec).unwrap();
            let reloaded = KeyMaterial::from_stored(&stored).unwrap();
            assert_eq!(reloaded.spec(), spec);
            let public = key.public_jwk();
            for alg in algs_for(spec) {
                let d = digest::digest(alg.digest(), b"message");
                let sig = key.sign_digest(alg, d.as_ref()).unwrap();
                assert!(
                    reloaded.verify_digest(alg, d.as_ref(), &sig).unwrap(),
                    "{alg:?}"
                );
                assert!(verify_with_public_jwk(&public, alg, d.as_ref(), &sig).unwrap());
                let mut tampered = d.as_ref().to_vec();
                tampered[0] ^= 1;
                assert!(!key.verify_digest(alg, &tampered, &sig).unwrap(), "{alg:?}");
                assert!(!verify_with_public_jwk(&public, alg, &tampered, &sig).unwrap());
                // Wrong digest length: a typed error, not a panic.
                assert!(matches!(
                    key.sign_digest(alg, &d.as_ref()[1..]),
                    Err(VaultError::InvalidKeyRequest { .. })
                ));
            }
        }
    }

    #[test]
    fn algorithms_of_another_key_type_are_refused() {
        let (ec, _) = KeyMaterial::generate(KeySpec::Ec(Curve::P256)).unwrap();
        let d = digest::digest(&digest::SHA384, b"m");
        assert!(
            ec.sign_digest(SignatureAlgorithm::Es384, d.as_ref())
                .is_err()
        );
        assert!(
            ec.sign_digest(SignatureAlgorithm::Rs384, d.as_ref())
                .is_err()
        );
        assert!(ec.encrypt(EncryptionAlgorithm::RsaOaep, b"x").is_err());
        assert!(matches!(
            KeyMaterial::generate(KeySpec::Rsa { bits: 1024 }),
            Err(VaultError::InvalidKeyRequest { .. })
        ));
    }

    #[test]
    fn rsa_encrypts_and_decrypts_with_each_padding() {
        let (key, _) = KeyMaterial::generate(KeySpec::Rsa { bits: 2048 }).unwrap();
        for alg in EncryptionAlgorithm::ALL {
            let ct = key.encrypt(alg, b"attack at dawn").unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(key.decrypt(alg, &ct).unwrap().as_slice(), b"attack at dawn");
            let too_long = vec![0u8; alg.max_plaintext(256) + 1];
            assert!(key.encrypt(alg, &too_long).is_err());
            assert!(key.decrypt(alg, &ct[1..]).is_err());
        }
        let ct = key.encrypt(EncryptionAlgorithm::RsaOaep256, b"x").unwrap();
        assert!(matches!(
            key.decrypt(EncryptionAlgorithm::RsaOaep, &ct),
            Err(VaultError::InvalidKeyRequest { .. })
        ));
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        der_uint(&mut out, &[0, 0, 0x80]);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        der_uint(&mut out, &[]);
        assert_eq!(out, [0x02, 0x01, 0x00]);
        out.clear();
        der_len(&mut out, 300);
        assert_eq!(out, [0x82, 0x01, 0x2c]);
    }

    #[test]
    fn stored_form_rejects_garbage() {
        for bad in [&[][..], &[9, 1, 2], &[1, 0x30, 0x00], &[2, 1]] {
            assert!(matches!(
                KeyMaterial::from_stored(bad),
                Err(VaultError::Corrupt { .. })
            ));
        }
    }
}
