//! One issuer's keys: the current JWKS snapshot and the policy for refreshing it.
//!
//! - Fresh keys are used as they are; from 80 % of the TTL a background refresh starts
//!   (single-flight, at most one attempt per retry interval after a failure).
//! - Stale-if-error: when refreshes fail, the last good keys keep verifying until their fetch
//!   time + the stale-if-error limit. Beyond it, one foreground refresh is tried (rate
//!   limited), and failing that verification fails closed ([`VerifyError::JwksStale`]).
//! - An unknown `kid` refetches at most once per interval per issuer; concurrent callers wait
//!   for the one fetch in flight instead of starting their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::config::{IssuerPolicy, Source, checked_url};
use super::error::{FetchError, VerifyError};
use super::fetch::Fetcher;
use crate::jwt::{JwkSet, VerifyingKey};

/// What the verifier's issuers share: the HTTP client, the timing policy, a monotonic base.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) fetcher: Fetcher,
    pub(crate) ttl: Duration,
    pub(crate) retry: Duration,
    pub(crate) stale_max: Duration,
    pub(crate) unknown_kid_interval: Duration,
    pub(crate) base: Instant,
}

impl Shared {
    /// Milliseconds since `base`, plus one, so 0 can mean "never".
    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn elapsed_since(&self, stamp: u64, now: Instant) -> Option<Duration> {
        (stamp != 0).then(|| Duration::from_millis(self.stamp(now).saturating_sub(stamp)))
    }
}

/// The keys of one successful fetch.
#[derive(Debug)]
pub(crate) struct KeySnapshot {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    without_kid: Vec<Arc<VerifyingKey>>,
    fetched_at: Instant,
    generation: u64,
}

impl KeySnapshot {
    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.by_kid.get(kid)
    }

    /// Every key, for a token without `kid`.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<VerifyingKey>> {
        self.without_kid.iter().chain(self.by_kid.values())
    }

    fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// No keys yet.
    Initial,
    /// Keys older than the stale-if-error limit.
    Stale,
    /// A token names a kid the snapshot lacks.
    UnknownKid,
    /// Refresh ahead of expiry.
    Background,
}

/// Book-keeping behind the single-flight lock.
#[derive(Debug, Default)]
struct FetchBook {
    last_unknown_kid: Option<Instant>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct IssuerState {
    pub(crate) policy: IssuerPolicy,
    snapshot: RwLock<Option<Arc<KeySnapshot>>>,
    /// Single-flight: held for the duration of a fetch.
    flight: tokio::sync::Mutex<FetchBook>,
    background: AtomicBool,
    last_success: AtomicU64,
    last_failure: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_success_wall: Mutex<Option<SystemTime>>,
    last_failure_wall: Mutex<Option<SystemTime>>,
}

/// A point-in-time view of one issuer's key state, for metrics and health.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerStatus {
    /// The issuer.
    pub issuer: String,
    /// When keys were last fetched successfully.
    pub last_success: Option<SystemTime>,
    /// When a fetch last failed.
    pub last_failure: Option<SystemTime>,
    /// The last fetch error, if the last fetch failed.
    pub last_error: Option<String>,
    /// Keys are past their TTL (refreshing fails): verification runs on stale keys.
    pub serving_stale: bool,
    /// Keys are past the stale-if-error limit (or none were ever fetched): tokens of this
    /// issuer are refused.
    pub failing_closed: bool,
    /// Keys in the current snapshot.
    pub keys: usize,
    /// JWKS fetch attempts so far.
    pub fetch_count: u64,
    /// Failed attempts so far.
    pub fetch_failures: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IssuerState {
    pub(crate) fn new(policy: IssuerPolicy) -> Self {
        Self {
            policy,
            snapshot: RwLock::new(None),
            flight: tokio::sync::Mutex::new(FetchBook::default()),
            background: AtomicBool::new(false),
            last_success: AtomicU64::new(0),
            last_failure: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_success_wall: Mutex::new(None),
            last_failure_wall: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<KeySnapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn last_error(&self) -> String {
        lock(&self.last_error)
            .clone()
            .unwrap_or_else(|| "no fetch attempted yet".to_owned())
    }

    fn recently_failed(&self, shared: &Shared, now: Instant) -> bool {
        shared
            .elapsed_since(self.last_failure.load(Ordering::Acquire), now)
            .is_some_and(|since| since < shared.retry)
    }

    /// For a cache hit: whether the issuer's keys are within the stale-if-error limit (if
    /// not, the caller takes the full path, which refreshes or fails closed). Starts a
    /// background refresh when the keys are due.
    pub(crate) fn vouches(self: &Arc<Self>, shared: &Arc<Shared>) -> bool {
        let now = Instant::now();
        let Some(age) = shared.elapsed_since(self.last_success.load(Ordering::Acquire), now) else {
            return false;
        };
        if age > shared.stale_max {
            return false;
        }
        if age >= shared.ttl.mul_f64(0.8) {
            self.spawn_refresh(shared, now);
        }
        true
    }

    /// The keys to verify with, refreshing as the module documentation says.
    pub(crate) async fn keys(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
    ) -> Result<Arc<KeySnapshot>, VerifyError> {
        let now = Instant::now();
        let Some(snapshot) = self.current() else {
            return self
                .refresh(shared, Trigger::Initial, None)
                .await
                .ok_or_else(|| VerifyError::JwksUnavailable {
                    issuer: self.policy.issuer.clone(),
                    reason: self.last_error(),
                });
        };
        let age = now.saturating_duration_since(snapshot.fetched_at);
        if age > shared.stale_max {
            if let Some(fresh) = self
                .refresh(shared, Trigger::Stale, Some(snapshot.generation))
                .await
                && now.saturating_duration_since(fresh.fetched_at) <= shared.stale_max
            {
                return Ok(fresh);
            }
            return Err(VerifyError::JwksStale {
                issuer: self.policy.issuer.clone(),
                age_secs: age.as_secs(),
                max_secs: shared.stale_max.as_secs(),
                reason: self.last_error(),
            });
        }
        if age >= shared.ttl.mul_f64(0.8) {
            self.spawn_refresh(shared, now);
        }
        Ok(snapshot)
    }

    /// After `seen` lacked a kid: a refetched snapshot (rate limited), or `seen` again.
    pub(crate) async fn refetch_for_unknown_kid(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        seen: &Arc<KeySnapshot>,
    ) -> Arc<KeySnapshot> {
        self.refresh(shared, Trigger::UnknownKid, Some(seen.generation))
            .await
            .unwrap_or_else(|| Arc::clone(seen))
    }

    fn spawn_refresh(self: &Arc<Self>, shared: &Arc<Shared>, now: Instant) {
        if self.recently_failed(shared, now) || self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.background.store(false, Ordering::Release);
            return;
        };
        let (this, shared) = (Arc::clone(self), Arc::clone(shared));
        runtime.spawn(async move {
            let seen = this.current().map(|s| s.generation);
            let _ = this.refresh(&shared, Trigger::Background, seen).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Single-flight refresh. Returns the snapshot to use after it (a newer one if another
    /// caller refreshed meanwhile), or `None` when there are no keys or (for the foreground
    /// triggers) the fetch failed or was rate limited.
    async fn refresh(
        &self,
        shared: &Shared,
        trigger: Trigger,
        seen: Option<u64>,
    ) -> Option<Arc<KeySnapshot>> {
        let mut book = self.flight.lock().await;
        let current = self.current();
        if let Some(snapshot) = &current
            && Some(snapshot.generation) != seen
        {
            return current; // refreshed while we waited for the lock
        }
        let now = Instant::now();
        match trigger {
            Trigger::UnknownKid => {
                if book.last_unknown_kid.is_some_and(|last| {
                    now.saturating_duration_since(last) < shared.unknown_kid_interval
                }) {
                    return current;
                }
                book.last_unknown_kid = Some(now);
            }
            Trigger::Initial | Trigger::Stale | Trigger::Background => {
                if self.recently_failed(shared, now) {
                    return None;
                }
            }
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch(shared).await {
            Ok(set) => {
                let generation = current.as_ref().map_or(1, |s| s.generation + 1);
                let snapshot = Arc::new(build_snapshot(&self.policy.issuer, set, generation));
                *self
                    .snapshot
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&snapshot));
                self.last_success
                    .store(shared.stamp(snapshot.fetched_at), Ordering::Release);
                self.last_failure.store(0, Ordering::Release);
                *lock(&self.last_success_wall) = Some(SystemTime::now());
                *lock(&self.last_error) = None;
                drop(book);
                Some(snapshot)
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_failure
                    .store(shared.stamp(Instant::now()), Ordering::Release);
                *lock(&self.last_failure_wall) = Some(SystemTime::now());
                let serving = current.as_ref().map_or("no keys: failing closed", |s| {
                    if now.saturating_duration_since(s.fetched_at) > shared.stale_max {
                        "stale beyond the limit: failing closed"
                    } else {
                        "serving the last good keys"
                    }
                });
                tracing::warn!(
                    issuer = %self.policy.issuer,
                    ?trigger,
                    %error,
                    "jwks fetch failed, {serving}"
                );
                *lock(&self.last_error) = Some(error.to_string());
                None
            }
        }
    }

    async fn fetch(&self, shared: &Shared) -> Result<JwkSet, FetchError> {
        let jwks_uri = match &self.policy.source {
            Source::Jwks(uri) => uri.clone(),
            Source::Discovery(url) => {
                #[derive(serde::Deserialize)]
                struct Discovery {
                    issuer: Option<String>,
                    jwks_uri: Option<String>,
                }
                let discovery: Discovery = shared.fetcher.get_json(url).await?;
                let discovery_error = |reason: String| FetchError::Discovery {
                    url: url.to_string(),
                    reason,
                };
                if discovery.issuer.as_deref() != Some(self.policy.issuer.as_str()) {
                    return Err(discovery_error(format!(
                        "names issuer {:?}, not {:?}",
                        discovery
                            .issuer
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect::<String>(),
                        self.policy.issuer
                    )));
                }
                let jwks_uri = discovery
                    .jwks_uri
                    .ok_or_else(|| discovery_error("no jwks_uri".to_owned()))?;
                checked_url(&jwks_uri).map_err(|error| discovery_error(error.to_string()))?
            }
        };
        shared
            .fetcher
            .get_json(&jwks_uri)
            .await
            .and_then(|set: JwkSet| {
                let usable = set
                    .keys
                    .iter()
                    .filter(|jwk| VerifyingKey::from_jwk(jwk).is_ok())
                    .count();
                if usable == 0 {
                    Err(FetchError::NoUsableKeys {
                        url: jwks_uri.to_string(),
                        skipped: set.keys.len(),
                    })
                } else {
                    Ok(set)
                }
            })
    }

    pub(crate) fn status(&self, shared: &Shared) -> IssuerStatus {
        let now = Instant::now();
        let snapshot = self.current();
        let age = snapshot
            .as_ref()
            .map(|s| now.saturating_duration_since(s.fetched_at));
        IssuerStatus {
            issuer: self.policy.issuer.clone(),
            last_success: *lock(&self.last_success_wall),
            last_failure: *lock(&self.last_failure_wall),
            last_error: lock(&self.last_error).clone(),
            serving_stale: age.is_some_and(|age| age > shared.ttl && age <= shared.stale_max),
            failing_closed: age.is_none_or(|age| age > shared.stale_max),
            keys: snapshot.as_ref().map_or(0, |s| s.len()),
            fetch_count: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

fn build_snapshot(issuer: &str, set: JwkSet, generation: u64) -> KeySnapshot {
    let mut by_kid = HashMap::new();
    let mut without_kid = Vec::new();
    for jwk in &set.keys {
        match VerifyingKey::from_jwk(jwk) {
            Ok(key) => {
                let key = Arc::new(key);
                match key.kid() {
                    Some(kid) => {
                        by_kid.insert(kid.to_owned(), key);
                    }
                    None => without_kid.push(key),
                }
            }
            Err(error) => {
                tracing::debug!(issuer, kid = ?jwk.kid, %error, "jwk skipped");
            }
        }
    }
    KeySnapshot {
        by_kid,
        without_kid,
        fetched_at: Instant::now(),
        generation,
    }
}
