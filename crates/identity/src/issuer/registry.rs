//! The client registry and the workload registry, in storage under
//! `identity/issuer/clients/<id>` and `identity/issuer/workloads/<name>`.
//!
//! Client secrets are stored as Argon2id hashes (PHC strings). Parameters: m = 19 MiB,
//! t = 2, p = 1 (the OWASP 2023 minimum for Argon2id). A secret is 256 random bits, so the
//! hash guards a leaked database rather than a guessable password; the price is one
//! Argon2id verification per `client_secret_*` token request (see `bench/identity`), run
//! off the async workers. Workload identity headers are also 256 random bits and are stored
//! as SHA-256 digests, compared in constant time: the managed-identity endpoint is on every
//! workload's hot path, and a slow hash buys nothing for a secret with that much entropy.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::IssuerError;
use super::jose::Jwk;

pub(crate) const CLIENT_PREFIX: &str = "identity/issuer/clients/";
pub(crate) const WORKLOAD_PREFIX: &str = "identity/issuer/workloads/";

/// Argon2id memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

fn argon2() -> Result<Argon2<'static>, IssuerError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|_| IssuerError::Crypto("bad Argon2id parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A secret shown to the operator exactly once (a client secret or an identity header).
/// Zeroized on drop; `Debug` shows nothing.
pub struct Secret(Zeroizing<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The secret text.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 256 random bits, hex, after a prefix secret scanners can find (`rpc_`, `rpi_`).
    pub(crate) fn generate(prefix: &str) -> Result<Self, IssuerError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| IssuerError::Crypto("no system randomness"))?;
        let mut text = Zeroizing::new(String::with_capacity(prefix.len() + 64));
        text.push_str(prefix);
        for byte in bytes.iter() {
            text.push_str(&format!("{byte:02x}"));
        }
        Ok(Self(text))
    }
}

/// Hashes a client secret with Argon2id (PHC string).
pub(crate) fn hash_secret(secret: &str) -> Result<String, IssuerError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| IssuerError::Crypto("no system randomness"))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|_| IssuerError::Crypto("cannot encode salt"))?;
    argon2()?
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| IssuerError::Crypto("Argon2id hashing failed"))
}

/// Checks `secret` against a PHC hash (the crate's verify compares in constant time). A hash
/// that does not parse verifies nothing.
pub(crate) fn verify_secret(secret: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().is_ok_and(|argon| argon.verify_password(secret.as_bytes(), &hash).is_ok())
}

/// A hash that no secret matches, verified for unknown clients so that "no such client" and
/// "wrong secret" cost the same time.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_secret("rampart: no client has this secret").unwrap_or_default())
}

/// SHA-256 hex of an identity header.
pub(crate) fn header_digest(header: &str) -> String {
    digest(&SHA256, header.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks a registration name: `[A-Za-z0-9._-]{1,64}`.
pub(crate) fn check_name(name: &str) -> Result<(), IssuerError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IssuerError::InvalidName(name.to_owned()))
    }
}

/// How a client proves who it is.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret_basic` / `client_secret_post`: the Argon2id hash of the secret.
    Secret {
        /// PHC string.
        argon2id: String,
    },
    /// `private_key_jwt` (RFC 7523): assertions signed by this public key.
    PrivateKeyJwt {
        /// The registered public key.
        jwk: Box<Jwk>,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { .. } => f.write_str("Secret(<argon2id hash>)"),
            Self::PrivateKeyJwt { jwk } => f.debug_tuple("PrivateKeyJwt").field(jwk).finish(),
        }
    }
}

/// A registered OAuth client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id` (and the token's `sub`).
    pub id: String,
    /// Stable object id of the client's principal (the token's `oid`).
    pub oid: String,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// Plain scopes it may request (e.g. `orders.read`).
    pub scopes: Vec<String>,
    /// Resources (audiences) it may request tokens for.
    pub resources: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
}

impl Client {
    /// `client_secret` or `private_key_jwt`, for listings.
    #[must_use]
    pub fn auth_method(&self) -> &'static str {
        match self.auth {
            ClientAuth::Secret { .. } => "client_secret",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

/// What to register a client with.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    /// The client id.
    pub id: String,
    /// Allowed scopes. A scope `<resource>/.default` allows `<resource>` as an audience.
    pub scopes: Vec<String>,
    /// Allowed resources (absolute URIs).
    pub resources: Vec<String>,
    /// A public key for `private_key_jwt`; without one the client gets a generated secret.
    pub jwk: Option<Jwk>,
}

/// A workload that gets tokens from the managed-identity endpoint.
#[derive(Clone, Serialize, Deserialize)]
pub struct Workload {
    /// The name (the token's `sub`).
    pub name: String,
    /// Stable object id (the token's `oid`, App Service's `principal_id`).
    pub oid: String,
    /// The identity's client id (`client_id` in responses and tokens).
    pub client_id: String,
    /// SHA-256 hex of its identity header.
    pub header_sha256: String,
    /// Resources it may get tokens for; empty means any.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("oid", &self.oid)
            .field("client_id", &self.client_id)
            .field("resources", &self.resources)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The resource a scope names, Azure style: `https://vault.example/.default` means
/// `https://vault.example`.
pub(crate) fn default_scope_resource(scope: &str) -> Option<&str> {
    scope.strip_suffix("/.default")
}

/// Whether `text` is usable as a resource indicator (RFC 8707 §2: an absolute URI without a
/// fragment).
pub(crate) fn valid_resource(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.starts_with("urn:") && text.len() > 4 && !text.contains('#');
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !text.contains('#')
        && !text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Resource normalisation for comparisons: one trailing slash does not make another audience.
pub(crate) fn normalize_resource(text: &str) -> &str {
    match text.strip_suffix('/') {
        Some(stripped) if stripped.contains("://") && !stripped.ends_with('/') => stripped,
        _ => text,
    }
}

/// Checks a scope token (RFC 6749 §3.3: printable ASCII but `"` and `\`, no spaces).
pub(crate) fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_and_verify_with_argon2id() {
        let secret = Secret::generate("rpc_").unwrap();
        assert_eq!(secret.expose().len(), 4 + 64);
        let hash = hash_secret(secret.expose()).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_secret(secret.expose(), &hash));
        assert!(!verify_secret("rpc_wrong", &hash));
        assert!(!verify_secret(secret.expose(), "not a hash"));
        assert!(!verify_secret(secret.expose(), dummy_hash()));
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn names_scopes_and_resources_are_checked() {
        assert!(check_name("orders-api.v2_x").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(valid_resource("https://vault.rampart.test"));
        assert!(valid_resource("urn:rampart:api"));
        for bad in ["vault", "https://", "https://a#frag", "://a", "https://a b"] {
            assert!(!valid_resource(bad), "{bad}");
        }
        assert_eq!(
            default_scope_resource("https://vault.rampart.test/.default"),
            Some("https://vault.rampart.test")
        );
        assert_eq!(normalize_resource("https://a/"), "https://a");
        assert!(valid_scope("orders.read"));
        assert!(!valid_scope("a\"b"));
    }
}
