//! Per-client rate limits: token buckets kept locally, or shared by every gateway instance
//! through Redis.
//!
//! With Redis, one Lua script refills and takes from the bucket atomically, on Redis's clock,
//! so instances agree on the count whatever their own clocks say. When Redis cannot answer
//! within its deadline, the gateway falls back to its local buckets (the same rate and burst,
//! per instance): limits stay on, never fail open, and the fallback is logged and counted in
//! `rampart_gateway_ratelimit_fallback_total`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderName;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// What identifies "one client" for rate limiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The client's IP address as the gateway sees it.
    ClientIp,
    /// The value of a request header (requests without it share one bucket).
    Header(HeaderName),
    /// The authenticated principal on routes that demand identity (one bucket per caller,
    /// whatever address it comes from). Requests without a verified principal (routes without
    /// `auth`, and requests whose credential was refused) are keyed by client IP instead.
    Principal,
}

/// A per-client token bucket: `rate_per_second` tokens refill continuously up to `burst`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitOptions {
    /// Sustained requests per second per client.
    pub rate_per_second: f64,
    /// Requests a client may send at once after being quiet.
    pub burst: u32,
    /// What identifies a client.
    pub key: RateLimitKey,
    /// Share buckets across instances through this Redis (`redis://127.0.0.1:6379`).
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// How long to wait for Redis before falling back to local buckets.
    pub redis_timeout: Duration,
}

impl RateLimitOptions {
    /// A local limit keyed by client IP.
    pub fn per_client_ip(rate_per_second: f64, burst: u32) -> Self {
        Self {
            rate_per_second,
            burst,
            key: RateLimitKey::ClientIp,
            redis_url: None,
            redis_prefix: "rampart:rl:".to_owned(),
            redis_timeout: Duration::from_millis(50),
        }
    }
}

/// The outcome of taking a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    Allow,
    Limit { retry_after: Duration },
}

/// A bucket in local memory.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

const SHARDS: usize = 16;
/// Past this many buckets in a shard, full (idle) buckets are dropped.
const SHARD_SOFT_CAP: usize = 4096;

/// Token buckets in this process.
#[derive(Debug)]
struct LocalBuckets {
    rate: f64,
    burst: f64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
}

impl LocalBuckets {
    fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn take(&self, key: &str) -> Verdict {
        let now = Instant::now();
        let shard_index = (self.hasher.hash_one(key) as usize) % SHARDS;
        let Some(shard) = self.shards.get(shard_index) else {
            return Verdict::Allow;
        };
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= SHARD_SOFT_CAP && !shard.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            shard.retain(|_, bucket| refilled(bucket, now, rate, burst) < burst);
        }
        let bucket = shard.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let tokens = refilled(bucket, now, self.rate, self.burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                updated: now,
            };
            Verdict::Allow
        } else {
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            Verdict::Limit {
                retry_after: Duration::from_secs_f64((1.0 - tokens) / self.rate),
            }
        }
    }
}

fn refilled(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

/// Refill and take one token atomically, on Redis's clock. Returns {allowed, retry_after_s}.
const TAKE_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
local retry_after = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_after = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(retry_after)}
";

/// Rate limiting for one gateway: Redis first when configured, local buckets otherwise.
pub(crate) struct RateLimiter {
    options: RateLimitOptions,
    local: LocalBuckets,
    redis: Option<ConnectionManager>,
    script: redis::Script,
    /// Seconds since `started` when the last fallback warning was logged.
    last_fallback_warning: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RateLimiter")
            .field("options", &self.options)
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Builds the limiter; a Redis connection is made lazily, so a Redis that is down at start
    /// only means local limits until it comes back.
    pub(crate) fn new(options: RateLimitOptions) -> Result<Self, redis::RedisError> {
        let redis = match &options.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(options.redis_timeout))
                    .set_response_timeout(Some(options.redis_timeout))
                    .set_number_of_retries(1);
                Some(ConnectionManager::new_lazy_with_config(client, config)?)
            }
            None => None,
        };
        Ok(Self {
            local: LocalBuckets::new(options.rate_per_second, options.burst),
            options,
            redis,
            script: redis::Script::new(TAKE_SCRIPT),
            last_fallback_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        })
    }

    /// Whether buckets are per authenticated principal (taken after identity is checked).
    pub(crate) fn keys_by_principal(&self) -> bool {
        self.options.key == RateLimitKey::Principal
    }

    /// What identifies the client of this request; `principal` is the verified caller, if any.
    pub(crate) fn key_for(
        &self,
        client: std::net::IpAddr,
        headers: &http::HeaderMap,
        principal: Option<&str>,
    ) -> String {
        match &self.options.key {
            RateLimitKey::ClientIp => client.to_string(),
            RateLimitKey::Principal => match principal {
                Some(principal) => format!("principal:{principal}"),
                None => format!("ip:{client}"),
            },
            RateLimitKey::Header(name) => headers
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default(),
        }
    }

    /// Takes one token for `key`.
    pub(crate) async fn check(&self, key: &str) -> Verdict {
        let verdict = match &self.redis {
            Some(redis) => match self.take_shared(redis.clone(), key).await {
                Ok(verdict) => verdict,
                Err(error) => {
                    self.warn_fallback(&error);
                    metrics::counter!("rampart_gateway_ratelimit_fallback_total").increment(1);
                    self.local.take(key)
                }
            },
            None => self.local.take(key),
        };
        if let Verdict::Limit { .. } = verdict {
            metrics::counter!("rampart_gateway_ratelimit_limited_total").increment(1);
        }
        verdict
    }

    async fn take_shared(
        &self,
        mut redis: ConnectionManager,
        key: &str,
    ) -> Result<Verdict, redis::RedisError> {
        let redis_key = format!("{}{}", self.options.redis_prefix, key);
        let mut invocation = self.script.key(redis_key);
        invocation
            .arg(self.options.rate_per_second)
            .arg(self.options.burst);
        let call = invocation.invoke_async::<(i64, String)>(&mut redis);
        let (allowed, retry_after) = tokio::time::timeout(self.options.redis_timeout, call)
            .await
            .map_err(|_| {
                redis::RedisError::from((redis::ErrorKind::Io, "redis did not answer in time"))
            })??;
        if allowed == 1 {
            return Ok(Verdict::Allow);
        }
        let seconds = retry_after
            .parse::<f64>()
            .unwrap_or(1.0)
            .clamp(0.0, 86_400.0);
        Ok(Verdict::Limit {
            retry_after: Duration::from_secs_f64(seconds),
        })
    }

    /// Logs the fallback at most every ten seconds.
    fn warn_fallback(&self, error: &redis::RedisError) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_fallback_warning.load(Ordering::Relaxed);
        if last == u64::MAX || now >= last.saturating_add(10) {
            self.last_fallback_warning.store(now, Ordering::Relaxed);
            tracing::warn!(%error, "redis unavailable: rate limits fall back to this instance's local buckets");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_limits_per_client() {
        let buckets = LocalBuckets::new(0.001, 3);
        for _ in 0..3 {
            assert_eq!(buckets.take("a"), Verdict::Allow);
        }
        let Verdict::Limit { retry_after } = buckets.take("a") else {
            panic!("fourth request allowed");
        };
        assert!(retry_after > Duration::from_secs(100), "{retry_after:?}");
        assert_eq!(buckets.take("b"), Verdict::Allow, "clients share a bucket");
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let buckets = LocalBuckets::new(1000.0, 1);
        assert_eq!(buckets.take("a"), Verdict::Allow);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(buckets.take("a"), Verdict::Allow);
    }

    #[test]
    fn idle_buckets_are_dropped_when_a_shard_is_full() {
        let buckets = LocalBuckets::new(1_000_000.0, 1);
        for client in 0..(SHARDS * SHARD_SOFT_CAP * 2) {
            let _ = buckets.take(&client.to_string());
        }
        let total: usize = buckets
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().len())
            .sum();
        assert!(
            total <= SHARDS * SHARD_SOFT_CAP + SHARDS,
            "{total} buckets kept"
        );
    }
}
