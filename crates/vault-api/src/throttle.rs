//! Per-vault throttling with token buckets, Azure-like: every operation takes a token from
//! the vault's `all` bucket (default 4,000 per 10 s) and one from the bucket of each class it
//! belongs to that has a limit: `secret-create` (default 300 per 10 s) and the key classes of
//! Azure's key table (below). Over a limit the API answers 429 `Throttled` with `Retry-After`.
//!
//! **Key classes** ([`key_class`]): Azure limits key transactions per vault per 10 s by key
//! type, software vs HSM, and "CREATE key" vs "all other transactions"
//! (learn.microsoft.com/azure/key-vault/general/service-limits, "Key transactions"):
//!
//! | key type | HSM create | HSM other | software create | software other |
//! |---|---|---|---|---|
//! | RSA 2,048-bit | 10 | 2,000 | 20 | 4,000 |
//! | RSA 3,072-bit | 10 | 500 | 20 | 1,000 |
//! | RSA 4,096-bit | 10 | 250 | 20 | 500 |
//! | EC P-256, P-384, P-521, secp256k1 | 10 | 2,000 | 20 | 4,000 |
//!
//! Each cell is a class named `key-{software|hsm}-{type}[-create]` (`type` one of
//! [`KEY_TYPES`]), e.g. `key-hsm-rsa-4096` or `key-software-ec-p-256-create`; its default is
//! Azure's number. Azure enforces the key limits as a *weighted sum* (one RSA-4096 HSM
//! operation uses 8 RSA-2048 HSM operations' worth of budget); Rampart gives each class its own
//! bucket instead, so a busy class never throttles another — the `all` bucket still caps the
//! vault's total.
//!
//! Buckets start full and refill continuously (limit / window per second); a class or vault
//! never seen costs nothing until used.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Class of secret creation (set) operations.
pub const SECRET_CREATE: &str = "secret-create";

/// The key types of Azure's key throttling table, as they appear in class names.
pub const KEY_TYPES: [&str; 7] = [
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ec-p-256",
    "ec-p-384",
    "ec-p-521",
    "ec-p-256k",
];

/// The throttle class of a key operation: `key-{software|hsm}-{key_type}` for any operation on
/// an existing key, with `-create` for operations that make key material (create, import,
/// rotate). `key_type` is one of [`KEY_TYPES`].
pub fn key_class(hsm: bool, key_type: &str, create: bool) -> String {
    format!(
        "key-{}-{key_type}{}",
        if hsm { "hsm" } else { "software" },
        if create { "-create" } else { "" }
    )
}

/// Azure's default limit per 10 s of a key class (see the module docs), `None` for a name
/// that is not a key class.
pub fn key_class_default(class: &str) -> Option<u32> {
    let rest = class.strip_prefix("key-")?;
    let (hsm, rest) = if let Some(r) = rest.strip_prefix("hsm-") {
        (true, r)
    } else {
        (false, rest.strip_prefix("software-")?)
    };
    let (key_type, create) = match rest.strip_suffix("-create") {
        Some(t) => (t, true),
        None => (rest, false),
    };
    if !KEY_TYPES.contains(&key_type) {
        return None;
    }
    let other = match key_type {
        "rsa-3072" => 1000,
        "rsa-4096" => 500,
        _ => 4000,
    };
    Some(match (hsm, create) {
        (true, true) => 10,
        (false, true) => 20,
        (true, false) => other / 2,
        (false, false) => other,
    })
}

/// Every key class with Azure's default limit.
pub fn key_class_defaults() -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for hsm in [false, true] {
        for key_type in KEY_TYPES {
            for create in [false, true] {
                let class = key_class(hsm, key_type, create);
                if let Some(limit) = key_class_default(&class) {
                    out.insert(class, limit);
                }
            }
        }
    }
    out
}

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
    /// creations per 10 s; the key table of the module docs.
    fn default() -> Self {
        let mut classes = key_class_defaults();
        classes.insert(SECRET_CREATE.to_owned(), 300);
        Self {
            window: Duration::from_secs(10),
            all: 4000,
            classes,
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

    /// Takes a token for an operation of `classes` (classes without a limit cost nothing) in
    /// `vault`, and one from its `all` bucket; `Err(seconds)` to wait when a bucket is empty
    /// (nothing is taken then).
    pub fn acquire(&self, vault: &str, classes: &[&str]) -> Result<(), u64> {
        self.acquire_at(vault, classes, Instant::now())
    }

    fn acquire_at(&self, vault: &str, classes: &[&str], now: Instant) -> Result<(), u64> {
        let mut names = vec![("all", self.limits.all)];
        for class in classes {
            if let Some(limit) = self.limits.classes.get(*class) {
                names.push((*class, *limit));
            }
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
            t.acquire_at("v", &[SECRET_CREATE], now).unwrap();
        }
        let wait = t.acquire_at("v", &[SECRET_CREATE], now).unwrap_err();
        assert!((1..=4).contains(&wait), "{wait}");
        // Other operations still pass; another vault has its own buckets.
        t.acquire_at("v", &[], now).unwrap();
        t.acquire_at("w", &[SECRET_CREATE], now).unwrap();
        // 10 s / 3 per token: after 4 s one token is back.
        t.acquire_at("v", &[SECRET_CREATE], now + Duration::from_secs(4))
            .unwrap();
    }

    #[test]
    fn refused_requests_take_nothing() {
        let t = Throttle::new(limits(2, 100));
        let now = Instant::now();
        t.acquire_at("v", &[], now).unwrap();
        t.acquire_at("v", &[], now).unwrap();
        for _ in 0..10 {
            assert!(t.acquire_at("v", &[], now).is_err());
        }
        t.acquire_at("v", &[], now + Duration::from_secs(5))
            .unwrap();
    }

    #[test]
    fn key_classes_carry_azures_table() {
        let d = ThrottleLimits::default().classes;
        // 7 types x software/HSM x create/other, plus secret-create.
        assert_eq!(d.len(), 29);
        assert_eq!(d["key-software-rsa-2048"], 4000);
        assert_eq!(d["key-hsm-rsa-2048"], 2000);
        assert_eq!(d["key-software-rsa-3072"], 1000);
        assert_eq!(d["key-hsm-rsa-3072"], 500);
        assert_eq!(d["key-software-rsa-4096"], 500);
        assert_eq!(d["key-hsm-rsa-4096"], 250);
        for t in ["ec-p-256", "ec-p-384", "ec-p-521", "ec-p-256k"] {
            assert_eq!(d[&key_class(false, t, false)], 4000, "{t}");
            assert_eq!(d[&key_class(true, t, false)], 2000, "{t}");
        }
        for t in KEY_TYPES {
            assert_eq!(d[&key_class(false, t, true)], 20, "{t}");
            assert_eq!(d[&key_class(true, t, true)], 10, "{t}");
        }
        assert_eq!(key_class_default("key-software-rsa-1024"), None);
        assert_eq!(key_class_default("secret-create"), None);
        assert_eq!(key_class_default("key-hsm-ec-p-256-created"), None);
    }

    #[test]
    fn every_class_of_an_operation_is_charged() {
        let mut l = limits(100, 100);
        l.classes.insert("key-hsm-rsa-4096".into(), 2);
        let t = Throttle::new(l);
        let now = Instant::now();
        t.acquire_at("v", &["key-hsm-rsa-4096"], now).unwrap();
        t.acquire_at("v", &["key-hsm-rsa-4096", "unlimited"], now)
            .unwrap();
        assert!(t.acquire_at("v", &["key-hsm-rsa-4096"], now).is_err());
        // Another key class and unclassed operations are unaffected.
        t.acquire_at("v", &["key-hsm-rsa-2048"], now).unwrap();
        t.acquire_at("v", &[], now).unwrap();
    }
}
