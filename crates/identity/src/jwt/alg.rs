//! The JWS algorithms this verifier accepts, and the ones it refuses outright.

use super::error::JwtError;

/// A JWS signature algorithm (RFC 7518 section 3, RFC 8037).
///
/// Only asymmetric algorithms exist here: `none` and `HS256/384/512` are refused by
/// [`Algorithm::from_name`] as [`JwtError::ForbiddenAlgorithm`], so a token can never be
/// checked with an HMAC whose key is some public key (the RS/HS confusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256 (fixed-size `r || s` signature).
    ES256,
    /// ECDSA P-384 with SHA-384 (fixed-size `r || s` signature).
    ES384,
    /// Ed25519 (`EdDSA` in RFC 8037, also accepted under its RFC 9864 name `Ed25519`).
    EdDSA,
}

/// The RSA algorithms, for a key whose JWK carries no `alg`.
pub(crate) const RSA_FAMILY: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl Algorithm {
    /// The algorithm a JWS header or JWK names.
    ///
    /// # Errors
    /// [`JwtError::ForbiddenAlgorithm`] for `none` and `HS*` (any case),
    /// [`JwtError::UnsupportedAlgorithm`] for anything else unknown.
    pub fn from_name(name: &str) -> Result<Self, JwtError> {
        Ok(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" | "Ed25519" => Self::EdDSA,
            other => {
                let shown: String = other.chars().take(32).collect();
                let forbidden = other.eq_ignore_ascii_case("none")
                    || other
                        .get(..2)
                        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS"));
                return Err(if forbidden {
                    JwtError::ForbiddenAlgorithm(shown)
                } else {
                    JwtError::UnsupportedAlgorithm(shown)
                });
            }
        })
    }

    /// The algorithm's JWS name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Whether this is one of the RSA algorithms.
    #[must_use]
    pub fn is_rsa(self) -> bool {
        RSA_FAMILY.contains(&self)
    }

    pub(crate) fn rsa_params(self) -> Option<&'static aws_lc_rs::signature::RsaParameters> {
        use aws_lc_rs::signature as s;
        Some(match self {
            Self::RS256 => &s::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &s::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &s::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &s::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &s::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &s::RSA_PSS_2048_8192_SHA512,
            Self::ES256 | Self::ES384 | Self::EdDSA => return None,
        })
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in
            RSA_FAMILY
                .into_iter()
                .chain([Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA])
        {
            assert_eq!(Algorithm::from_name(alg.name()), Ok(alg));
        }
        assert_eq!(Algorithm::from_name("Ed25519"), Ok(Algorithm::EdDSA));
    }

    #[test]
    fn none_and_hmac_are_forbidden_in_any_case() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "hs256", "Hs512",
        ] {
            assert!(
                matches!(
                    Algorithm::from_name(name),
                    Err(JwtError::ForbiddenAlgorithm(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_algorithms_are_unsupported() {
        for name in ["", "ES512", "RS1", "ES256K", "Ed448", "rs256", "A128KW"] {
            assert!(
                matches!(
                    Algorithm::from_name(name),
                    Err(JwtError::UnsupportedAlgorithm(_))
                ),
                "{name}"
            );
        }
    }
}
