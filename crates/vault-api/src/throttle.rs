//! Per-vault throttling with token buckets, Azure-like: every operation takes a token from
//! the vault's `all` bucket (default 4,000 per 10 s) and, when it belongs to a class with its
//! own limit (e.g. `secret-create`, default 300 per 10 s), one from that class's bucket too.
//! Over the limit the API answers 429 `Throttled` with `Retry-After`.
//!
//! Buckets start full and refill continuously (limit / window per second); a class or vault
//! never seen costs nothing until used.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Class of secret creation (set) operations.
pub const SECRET_CREATE: &str = "secret-create";

/// Limits: per window, for all operations of a vault and per class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// The window the limits are counted over.
    pub window: Duration,
    /// Operations of any kind per window per vault.
    pub all: u32,
    /// Per-class limits per window per vault.
    pub classes: BTreeMap<String, u32>,
}

impl Default for ThrottleLimits {
    /// Azure's published limits: 4,000 transactions per 10 s per vault; 300 secret
    /// creations per 10 s.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            all: 4000,
            classes: BTreeMap::from([(SECRET_CREATE.to_owned(), 300)]),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every vault.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl Throttle {
    /// Buckets with `limits`.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// Takes a token for an operation of `class` (if any) in `vault`; `Err(seconds)` to wait
    /// when a bucket is empty (nothing is taken then).
    pub fn acquire(&self, vault: &str, class: Option<&str>) -> Result<(), u64> {
        self.acquire_at(vault, class, Instant::now())
    }

    fn acquire_at(&self, vault: &str, class: Option<&str>, now: Instant) -> Result<(), u64> {
        let mut names = vec![("all", self.limits.all)];
        if let Some(class) = class
            && let Some(limit) = self.limits.classes.get(class)
        {
            names.push((class, *limit));
        }
        let window = self.limits.window.as_secs_f64().max(0.001);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0.0f64;
        for (name, limit) in &names {
            let capacity = f64::from(*limit);
            let bucket = buckets
                .entry((vault.to_owned(), (*name).to_owned()))
                .or_insert(Bucket {
                    tokens: capacity,
                    at: now,
                });
            let rate = capacity / window;
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let need = if rate > 0.0 {
                    (1.0 - bucket.tokens) / rate
                } else {
                    window
                };
                wait = wait.max(need);
            }
        }
        if wait > 0.0 {
            // Whole seconds, at least 1 (Retry-After has no fractions).
            return Err(wait.ceil().max(1.0) as u64);
        }
        for (name, _) in &names {
            if let Some(bucket) = buckets.get_mut(&(vault.to_owned(), (*name).to_owned())) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn limits(all: u32, create: u32) -> ThrottleLimits {
        ThrottleLimits {
            window: Duration::from_secs(10),
            all,
            classes: BTreeMap::from([(SECRET_CREATE.to_owned(), create)]),
        }
    }

    #[test]
    fn class_limit_applies_before_the_general_one() {
        let t = Throttle::new(limits(100, 3));
        let now = Instant::now();
        for _ in 0..3 {
            t.acquire_at("v", Some(SECRET_CREATE), now).unwrap();
        }
        let wait = t.acquire_at("v", Some(SECRET_CREATE), now).unwrap_err();
        assert!((1..=4).contains(&wait), "{wait}");
        // Other operations still pass; another vault has its own buckets.
        t.acquire_at("v", None, now).unwrap();
        t.acquire_at("w", Some(SECRET_CREATE), now).unwrap();
        // 10 s / 3 per token: after 4 s one token is back.
        t.acquire_at("v", Some(SECRET_CREATE), now + Duration::from_secs(4))
            .unwrap();
    }

    #[test]
    fn refused_requests_take_nothing() {
        let t = Throttle::new(limits(2, 100));
        let now = Instant::now();
        t.acquire_at("v", None, now).unwrap();
        t.acquire_at("v", None, now).unwrap();
        for _ in 0..10 {
            assert!(t.acquire_at("v", None, now).is_err());
        }
        t.acquire_at("v", None, now + Duration::from_secs(5))
            .unwrap();
    }
}
