//! Key types, curves and algorithm names as Azure Key Vault spells them, parsed once into enums.

use aws_lc_rs::digest;

use crate::error::{Result, VaultError};

fn invalid(what: &str, value: &str) -> VaultError {
    VaultError::InvalidKeyRequest {
        reason: format!(
            "unsupported {what} {:?}",
            value.chars().take(32).collect::<String>()
        ),
    }
}

/// A key type (`kty`). The `-HSM` kinds are kept as asked; they are backed by the same
/// software keys unless an HSM option is configured (see `docs/vault.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `RSA`
    Rsa,
    /// `RSA-HSM`
    RsaHsm,
    /// `EC`
    Ec,
    /// `EC-HSM`
    EcHsm,
}

impl KeyType {
    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::RsaHsm => "RSA-HSM",
            Self::Ec => "EC",
            Self::EcHsm => "EC-HSM",
        }
    }

    /// Parses Azure's name (case-insensitive). `oct` kinds are refused.
    pub fn parse(name: &str) -> Result<Self> {
        [Self::Rsa, Self::RsaHsm, Self::Ec, Self::EcHsm]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| invalid("key type", name))
    }

    /// Whether this is an RSA type.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa | Self::RsaHsm)
    }

    /// The HSM flavour of this type (`hsm = true` on import).
    pub fn with_hsm(self, hsm: bool) -> Self {
        match (self, hsm) {
            (Self::Rsa, true) => Self::RsaHsm,
            (Self::Ec, true) => Self::EcHsm,
            (other, _) => other,
        }
    }
}

/// An elliptic curve (`crv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// `P-256` (secp256r1)
    P256,
    /// `P-384`
    P384,
    /// `P-521`
    P521,
    /// `P-256K` (secp256k1)
    P256K,
}

impl Curve {
    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
            Self::P256K => "P-256K",
        }
    }

    /// Parses Azure's name (`SECP256K1` is accepted for `P-256K`, as the service does).
    pub fn parse(name: &str) -> Result<Self> {
        if name.eq_ignore_ascii_case("SECP256K1") {
            return Ok(Self::P256K);
        }
        [Self::P256, Self::P384, Self::P521, Self::P256K]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| invalid("curve", name))
    }

    /// Bytes of a coordinate or private scalar.
    pub fn field_len(self) -> usize {
        match self {
            Self::P256 | Self::P256K => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// The one signature algorithm Azure allows with this curve.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::P256 => SignatureAlgorithm::Es256,
            Self::P384 => SignatureAlgorithm::Es384,
            Self::P521 => SignatureAlgorithm::Es512,
            Self::P256K => SignatureAlgorithm::Es256K,
        }
    }
}

/// A signature algorithm over a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 (salt length = digest length).
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256 (`r || s`).
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// ECDSA secp256k1 with SHA-256.
    Es256K,
}

impl SignatureAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 10] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Es256K,
    ];

    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Es256K => "ES256K",
        }
    }

    /// Parses Azure's name.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| invalid("signature algorithm", name))
    }

    /// The digest the algorithm signs.
    pub fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 | Self::Es256K => &digest::SHA256,
            Self::Rs384 | Self::Ps384 | Self::Es384 => &digest::SHA384,
            Self::Rs512 | Self::Ps512 | Self::Es512 => &digest::SHA512,
        }
    }

    /// Whether it is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512
        )
    }
}

/// An encryption (and key wrapping) algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (`RSA-OAEP`).
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (`RSA-OAEP-256`).
    RsaOaep256,
    /// RSAES-PKCS1-v1_5 (`RSA1_5`).
    Rsa15,
}

impl EncryptionAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 3] = [Self::RsaOaep, Self::RsaOaep256, Self::Rsa15];

    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaOaep => "RSA-OAEP",
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::Rsa15 => "RSA1_5",
        }
    }

    /// Parses Azure's name. AES algorithms (`A256GCM`, ...) are for `oct` keys and refused.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| invalid("encryption algorithm", name))
    }

    /// Longest plaintext for a modulus of `modulus_len` bytes.
    pub fn max_plaintext(self, modulus_len: usize) -> usize {
        let overhead = match self {
            Self::RsaOaep => 2 * 20 + 2,
            Self::RsaOaep256 => 2 * 32 + 2,
            Self::Rsa15 => 11,
        };
        modulus_len.saturating_sub(overhead)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::parse(a.as_str()).unwrap(), a);
        }
        for a in EncryptionAlgorithm::ALL {
            assert_eq!(EncryptionAlgorithm::parse(a.as_str()).unwrap(), a);
        }
        assert_eq!(Curve::parse("secp256k1").unwrap(), Curve::P256K);
        assert_eq!(KeyType::parse("rsa-hsm").unwrap(), KeyType::RsaHsm);
        for bad in ["oct", "oct-HSM", ""] {
            assert!(KeyType::parse(bad).is_err(), "{bad}");
        }
        assert!(SignatureAlgorithm::parse("HS256").is_err());
        assert!(EncryptionAlgorithm::parse("A256GCM").is_err());
        assert!(Curve::parse("P-224").is_err());
    }

    #[test]
    fn oaep_limits_match_rfc_8017() {
        assert_eq!(EncryptionAlgorithm::RsaOaep.max_plaintext(256), 214);
        assert_eq!(EncryptionAlgorithm::RsaOaep256.max_plaintext(256), 190);
        assert_eq!(EncryptionAlgorithm::Rsa15.max_plaintext(256), 245);
    }
}
