//! Errors of the JWS parser and of JWK compilation.

/// Why a compact JWS was refused (before or at signature verification).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than [`crate::jwt::MAX_TOKEN_LEN`].
    #[error("token is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not three base64url parts separated by dots, or a part does not decode.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The protected header is not the JSON object expected.
    #[error("malformed token header: {0}")]
    BadHeader(String),
    /// The header names `crit` extensions, none of which this verifier understands.
    #[error("token header has critical extensions {0:?}")]
    CriticalExtension(Vec<String>),
    /// `none` or an HMAC algorithm: never accepted for tokens signed by an IdP.
    #[error("algorithm {0:?} is forbidden")]
    ForbiddenAlgorithm(String),
    /// An algorithm this verifier does not implement.
    #[error("algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    /// The token's algorithm is not one the key is pinned to.
    #[error("algorithm {alg} does not fit the key (it verifies {key_algs})")]
    AlgorithmMismatch {
        /// The token's `alg`.
        alg: &'static str,
        /// The algorithms the key verifies, comma separated.
        key_algs: String,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// Why a JWK cannot be used to verify tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// A key type other than `RSA`, `EC` or `OKP` (for instance `oct`: symmetric keys are
    /// never accepted).
    #[error("key type {0:?} is not supported")]
    UnsupportedKeyType(String),
    /// A curve other than P-256, P-384 (EC) or Ed25519 (OKP).
    #[error("curve {0:?} is not supported")]
    UnsupportedCurve(String),
    /// An RSA modulus shorter than 2048 bits (or longer than 8192).
    #[error("rsa key of {bits} bits refused (2048 to 8192 accepted)")]
    RsaKeySize {
        /// The modulus size in bits.
        bits: usize,
    },
    /// A required member is missing or does not decode.
    #[error("key member {0:?} is missing or invalid")]
    BadMember(&'static str),
    /// The key material is rejected by aws-lc (point not on the curve, bad components).
    #[error("key rejected: {0}")]
    Rejected(String),
    /// The JWK's `alg` does not fit its key type (say `ES256` on an RSA key).
    #[error("algorithm {alg:?} does not fit a key of type {kty}")]
    AlgorithmDoesNotFit {
        /// The JWK's `alg`.
        alg: String,
        /// The JWK's `kty` (and curve).
        kty: String,
    },
    /// The JWK's `alg` is forbidden or unknown.
    #[error("key algorithm refused: {0}")]
    Algorithm(JwtError),
    /// The key is meant for encryption (`use` other than `sig`, or `key_ops` without `verify`).
    #[error("key is not for signature verification")]
    NotForSignatures,
}
