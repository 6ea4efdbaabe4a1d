//! JSON Web Keys as Azure Key Vault exchanges them: base64url fields without padding (input
//! with padding or in the standard alphabet is accepted too), the key operation names, and a
//! `Debug` that never prints private components.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};

/// Bytes carried as base64url (no padding) in JSON; zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Zeroizing<Vec<u8>>);

impl B64 {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Encodes as base64url without padding (Azure's form).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_slice())
    }

    /// Decodes base64url or standard base64, with or without padding.
    pub fn decode(text: &str) -> Option<Self> {
        let text = text.trim();
        [URL_SAFE_NO_PAD, URL_SAFE, STANDARD_NO_PAD, STANDARD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(|v| Self(Zeroizing::new(v)))
    }
}

impl fmt::Debug for B64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        Self::decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64url value"))
    }
}

/// An operation a key may be used for (`key_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyOperation {
    /// `encrypt`
    Encrypt,
    /// `decrypt`
    Decrypt,
    /// `sign`
    Sign,
    /// `verify`
    Verify,
    /// `wrapKey`
    WrapKey,
    /// `unwrapKey`
    UnwrapKey,
    /// `import` (accepted and kept, grants nothing here)
    Import,
    /// `export` (accepted and kept; keys are never exported)
    Export,
}

impl KeyOperation {
    /// Every operation, in Azure's order.
    pub const ALL: [Self; 8] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Sign,
        Self::Verify,
        Self::WrapKey,
        Self::UnwrapKey,
        Self::Import,
        Self::Export,
    ];

    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
            Self::Import => "import",
            Self::Export => "export",
        }
    }

    /// Parses Azure's name (case-insensitive, as the service is).
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| VaultError::InvalidKeyRequest {
                reason: format!(
                    "unknown key operation {:?}",
                    name.chars().take(32).collect::<String>()
                ),
            })
    }
}

/// A JSON Web Key (RFC 7517) with Azure's field set. Private fields are only read (import),
/// never produced by this crate.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonWebKey {
    /// Key identifier (`https://{host}/keys/{name}/{version}`, set by the API layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Key type: `RSA`, `RSA-HSM`, `EC`, `EC-HSM` (`oct` kinds are not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    /// Permitted operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<B64>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<B64>,
    /// RSA private exponent, or EC private key.
    #[serde(default, skip_serializing)]
    pub d: Option<B64>,
    /// RSA first CRT exponent.
    #[serde(default, skip_serializing)]
    pub dp: Option<B64>,
    /// RSA second CRT exponent.
    #[serde(default, skip_serializing)]
    pub dq: Option<B64>,
    /// RSA CRT coefficient.
    #[serde(default, skip_serializing)]
    pub qi: Option<B64>,
    /// RSA first prime.
    #[serde(default, skip_serializing)]
    pub p: Option<B64>,
    /// RSA second prime.
    #[serde(default, skip_serializing)]
    pub q: Option<B64>,
    /// Symmetric key (not supported; never produced).
    #[serde(default, skip_serializing)]
    pub k: Option<B64>,
    /// HSM key blob (`key_hsm`; not supported; never produced).
    #[serde(default, rename = "key_hsm", skip_serializing)]
    pub key_hsm: Option<B64>,
    /// Elliptic curve: `P-256`, `P-384`, `P-521`, `P-256K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC public point x.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<B64>,
    /// EC public point y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<B64>,
}

impl fmt::Debug for JsonWebKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has = |v: &Option<B64>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("JsonWebKey")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("key_ops", &self.key_ops)
            .field("n", &self.n)
            .field("e", &self.e)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("y", &self.y)
            .field("d", &has(&self.d))
            .field("p", &has(&self.p))
            .field("q", &has(&self.q))
            .field("k", &has(&self.k))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn b64_is_urlsafe_without_padding_and_lenient_on_input() {
        let v = B64::new(vec![0xfb, 0xff, 0x01]);
        assert_eq!(v.encode(), "-_8B");
        for text in ["-_8B", "+/8B", "-_8B", " -_8B "] {
            assert_eq!(B64::decode(text).unwrap(), v, "{text}");
        }
        assert_eq!(B64::decode("AQ==").unwrap().bytes(), &[1]);
        assert_eq!(B64::decode("AQ").unwrap().bytes(), &[1]);
        assert!(B64::decode("not base64!").is_none());
    }

    #[test]
    fn private_fields_are_never_serialized_nor_printed() {
        let jwk = JsonWebKey {
            kty: Some("EC".into()),
            crv: Some("P-256".into()),
            x: Some(B64::new(vec![1; 32])),
            y: Some(B64::new(vec![2; 32])),
            d: Some(B64::new(vec![0x5a; 32])),
            ..JsonWebKey::default()
        };
        let json = serde_json::to_value(&jwk).unwrap();
        assert!(json.get("d").is_none(), "{json}");
        assert_eq!(json["kty"], "EC");
        let text = format!("{jwk:?}");
        assert!(!text.contains("WlpaWl"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn key_operations_parse_case_insensitively() {
        assert_eq!(
            KeyOperation::parse("wrapKey").unwrap(),
            KeyOperation::WrapKey
        );
        assert_eq!(
            KeyOperation::parse("WRAPKEY").unwrap(),
            KeyOperation::WrapKey
        );
        assert!(matches!(
            KeyOperation::parse("launch"),
            Err(VaultError::InvalidKeyRequest { .. })
        ));
    }
}
