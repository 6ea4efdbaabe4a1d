//! The token verifier the gateway and the vault use: JWT access tokens (RFC 9068) of trusted
//! OIDC issuers, checked locally against their JWKS, with IdP-outage continuity.
//!
//! - [`config`]: [`VerifierConfig`], [`IssuerConfig`], their defaults and bounds.
//! - `jwks` (private): per-issuer key snapshots, refresh ahead of expiry, stale-if-error,
//!   rate-limited refetch on unknown `kid`; [`IssuerStatus`] for metrics.
//! - `fetch` (private): bounded HTTP(S) GETs of discovery documents and JWKS.
//! - `claims` (private): time, audience and tenant checks; claims → [`Principal`].
//! - `cache` (private): verified tokens by SHA-256, until `exp`, bounded and sharded.
//! - [`error`]: [`VerifyError`], [`ConfigError`], [`FetchError`].
//!
//! Order of checks in [`Verifier::verify`]: cache; JWS shape and algorithm (`none`/`HS*`
//! refused); `iss` (exact) → issuer; header `typ`; key by `kid` (pinned algorithm);
//! signature; `exp`/`nbf`/`iat` with skew; `aud`; `sub`; tenant.

mod cache;
mod claims;
pub mod config;
pub mod error;
mod fetch;
mod jwks;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use config::{IssuerConfig, JwksSource, MAX_CLOCK_SKEW, VerifierConfig};
pub use error::{ConfigError, FetchError, VerifyError};
pub use jwks::IssuerStatus;

use crate::Principal;
use crate::jwt::{Jws, JwtError, MAX_TOKEN_LEN, VerifyingKey};
use cache::{TokenCache, TokenDigest};
use claims::Claims;
use fetch::Fetcher;
use jwks::{IssuerState, Shared};

/// Tokens without `kid` are tried against at most this many keys.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// Verifies access tokens; cheap to clone (shared state), safe to share across tasks.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuers: Vec<Arc<IssuerState>>,
    shared: Arc<Shared>,
    cache: TokenCache,
    skew: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn digest(token: &str) -> TokenDigest {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(digest.as_ref()) {
        *slot = *byte;
    }
    out
}

impl Verifier {
    /// Validates `config` and builds the verifier. No key is fetched yet: the first token of
    /// each issuer fetches its JWKS ([`Verifier::prefetch`] does it ahead).
    ///
    /// # Errors
    /// [`ConfigError`] for a configuration outside the bounds, a non-https URL to a host other
    /// than loopback, an unreadable extra CA file.
    pub fn new(config: &VerifierConfig) -> Result<Self, ConfigError> {
        let policies = config.validate()?;
        let fetcher = Fetcher::new(
            config.extra_ca_file.as_deref(),
            config.fetch_timeout,
            config.max_response_bytes,
        )?;
        let shared = Arc::new(Shared {
            fetcher,
            ttl: config.jwks_ttl,
            retry: config.refresh_retry_interval,
            stale_max: config.stale_if_error,
            unknown_kid_interval: config.unknown_kid_refetch_interval,
            base: Instant::now(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                issuers: policies
                    .into_iter()
                    .map(|policy| Arc::new(IssuerState::new(policy)))
                    .collect(),
                shared,
                cache: TokenCache::new(config.cache_capacity),
                skew: config.clock_skew.as_secs(),
            }),
        })
    }

    /// Fetches every issuer's keys now (at start-up, so the first request does not wait).
    ///
    /// # Errors
    /// The first issuer whose keys cannot be fetched.
    pub async fn prefetch(&self) -> Result<(), VerifyError> {
        for issuer in &self.inner.issuers {
            issuer.keys(&self.inner.shared).await?;
        }
        Ok(())
    }

    /// Verifies `token` (the compact JWS, without `Bearer `) and returns who it proves.
    ///
    /// # Errors
    /// A [`VerifyError`] naming the first check that failed.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        let inner = &*self.inner;
        if token.len() > MAX_TOKEN_LEN {
            // Refused before hashing: an oversized token costs nothing.
            return Err(JwtError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            }
            .into());
        }
        let now = unix_now();
        let key = if inner.cache.enabled() {
            let key = digest(token);
            if let Some((principal, issuer)) = inner.cache.get(&key, now)
                && inner
                    .issuers
                    .get(issuer)
                    .is_some_and(|state| state.vouches(&inner.shared))
            {
                return Ok(principal);
            }
            Some(key)
        } else {
            None
        };
        let (index, principal) = self.verify_uncached(token, now).await?;
        let principal = Arc::new(principal);
        if let Some(key) = key {
            inner.cache.insert(key, Arc::clone(&principal), index, now);
        }
        Ok(principal)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(usize, Principal), VerifyError> {
        let inner = &*self.inner;
        let jws = Jws::parse(token)?;
        let claims = Claims::parse(jws.payload())?;
        let iss = claims
            .iss
            .as_deref()
            .ok_or(VerifyError::MissingClaim("iss"))?;
        let (index, issuer) = inner
            .issuers
            .iter()
            .enumerate()
            .find(|(_, state)| state.policy.issuer == iss)
            .ok_or_else(|| VerifyError::UnknownIssuer(iss.chars().take(200).collect()))?;
        let policy = &issuer.policy;
        match jws.header().typ.as_deref() {
            None if policy.allow_missing_typ => {}
            Some(typ) if policy.token_types.contains(&config::normalize_typ(typ)) => {}
            other => {
                return Err(VerifyError::WrongType(
                    other.map(|t| t.chars().take(64).collect()),
                ));
            }
        }
        let snapshot = issuer.keys(&inner.shared).await?;
        let kid = jws.header().kid.as_deref();
        match kid {
            Some(kid) => {
                let key = match snapshot.by_kid(kid) {
                    Some(key) => Arc::clone(key),
                    None => {
                        let refetched = issuer
                            .refetch_for_unknown_kid(&inner.shared, &snapshot)
                            .await;
                        refetched
                            .by_kid(kid)
                            .cloned()
                            .ok_or_else(|| VerifyError::UnknownKid {
                                issuer: policy.issuer.clone(),
                                kid: Some(kid.chars().take(128).collect()),
                            })?
                    }
                };
                check_signature(&jws, &key)?;
            }
            None => {
                let alg = jws.algorithm();
                let candidates: Vec<&Arc<VerifyingKey>> = snapshot
                    .all()
                    .filter(|key| key.accepts(alg))
                    .take(MAX_KEYS_WITHOUT_KID)
                    .collect();
                if candidates.is_empty() {
                    return Err(VerifyError::UnknownKid {
                        issuer: policy.issuer.clone(),
                        kid: None,
                    });
                }
                if !candidates.iter().any(|key| jws.verify(key).is_ok()) {
                    return Err(VerifyError::BadSignature);
                }
            }
        }
        let principal = claims.into_principal(policy, now, inner.skew)?;
        Ok((index, principal))
    }

    /// Per-issuer key state, for metrics and health endpoints.
    #[must_use]
    pub fn status(&self) -> Vec<IssuerStatus> {
        self.inner
            .issuers
            .iter()
            .map(|issuer| issuer.status(&self.inner.shared))
            .collect()
    }

    /// How many verified tokens the cache holds.
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }
}

fn check_signature(jws: &Jws<'_>, key: &VerifyingKey) -> Result<(), VerifyError> {
    jws.verify(key).map_err(|error| match error {
        JwtError::AlgorithmMismatch { alg, .. } => VerifyError::AlgorithmMismatch {
            alg,
            kid: key.kid().map(str::to_owned),
        },
        other => other.into(),
    })
}
