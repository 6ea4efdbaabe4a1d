//! Routes and upstream pools: which backends serve a request, which of them are healthy, and
//! failover between them.
//!
//! A route matches a host (exact, `*.suffix`, or any) and a path prefix; the most specific
//! host, then the longest prefix, wins. Each route has a pool of backends (think regional
//! stamps). A backend leaves rotation when active health checks fail or when requests to it
//! fail several times in a row (passive ejection, for a while); requests go round-robin over
//! the backends in rotation, and when none is, over all of them rather than none.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::GatewayError;
use crate::forward::UpstreamTarget;

/// One route: where requests for a host and path prefix go.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOptions {
    /// `Some("api.example.com")`, `Some("*.example.com")`, or `None` for any host.
    pub host: Option<String>,
    /// Path prefix, `/` for everything; matched on whole segments (`/api` matches `/api/x`,
    /// not `/apix`).
    pub path_prefix: String,
    /// Backend base URLs (`http://` or `https://`), at least one.
    pub backends: Vec<String>,
    /// Upstream response deadline for this route; the gateway's default when `None`.
    pub request_timeout: Option<Duration>,
    /// Active health checks, if any.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection of failing backends.
    pub ejection: PassiveEjection,
    /// Extra attempts on other backends, for idempotent requests without a body only.
    pub retries: u32,
    /// Identity demanded of callers, if any.
    pub auth: Option<crate::auth::RouteAuth>,
}

impl RouteOptions {
    /// A catch-all route to `backends`.
    pub fn catch_all(backends: Vec<String>) -> Self {
        Self {
            host: None,
            path_prefix: "/".to_owned(),
            backends,
            request_timeout: None,
            health_check: None,
            ejection: PassiveEjection::default(),
            retries: 1,
            auth: None,
        }
    }
}

/// Active health checking of a pool's backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path requested with GET; any 2xx is healthy.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Deadline of one check.
    pub timeout: Duration,
    /// Failed checks in a row that take a backend out of rotation.
    pub unhealthy_after: u32,
    /// Passed checks in a row that bring it back.
    pub healthy_after: u32,
}

impl HealthCheck {
    /// Checks of `path` every 5 s with the usual thresholds.
    pub fn at(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            unhealthy_after: 2,
            healthy_after: 2,
        }
    }
}

/// Passive ejection: failures of real requests take a backend out for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveEjection {
    /// Failed requests in a row (connection failures, timeouts) before ejection.
    pub consecutive_failures: u32,
    /// How long an ejected backend stays out.
    pub duration: Duration,
}

impl Default for PassiveEjection {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            duration: Duration::from_secs(10),
        }
    }
}

/// One backend of a pool. Every request reads whether it is in rotation and reports how it
/// went, from every worker thread: that state is atomics, written only when it changes.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) target: UpstreamTarget,
    pub(crate) url: String,
    healthy: AtomicBool,
    consecutive_failures: AtomicU32,
    /// Out of rotation until this many nanoseconds after `epoch`; 0 when not ejected.
    ejected_until: AtomicU64,
    epoch: Instant,
    /// Health-check results in a row that disagree with `healthy` (health checks only).
    health_streak: Mutex<u32>,
}

impl Backend {
    fn new(url: &str) -> Result<Self, GatewayError> {
        Ok(Self {
            target: UpstreamTarget::parse(url)?,
            url: url.to_owned(),
            healthy: AtomicBool::new(true),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            epoch: Instant::now(),
            health_streak: Mutex::new(0),
        })
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Whether the backend takes requests; `now` is read from the clock only for an ejected
    /// backend (the clock is not free, and most requests find none).
    fn in_rotation(&self, now: &std::cell::OnceCell<Instant>) -> bool {
        let ejected_until = self.ejected_until.load(Ordering::Relaxed);
        self.healthy.load(Ordering::Relaxed)
            && (ejected_until == 0
                || ejected_until <= self.nanos_since_epoch(*now.get_or_init(Instant::now)))
    }

    /// Records a health-check result.
    pub(crate) fn health_result(&self, passed: bool, check: &HealthCheck) {
        let mut streak = self
            .health_streak
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if passed == self.healthy.load(Ordering::Relaxed) {
            *streak = 0;
            return;
        }
        *streak += 1;
        let threshold = if passed {
            check.healthy_after
        } else {
            check.unhealthy_after
        };
        if *streak >= threshold.max(1) {
            self.healthy.store(passed, Ordering::Relaxed);
            *streak = 0;
            tracing::warn!(backend = %self.url, healthy = passed, "backend health changed");
            metrics::gauge!("rampart_gateway_backend_healthy", "backend" => self.url.clone())
                .set(if passed { 1.0 } else { 0.0 });
        }
    }
}

/// The backends of one route.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) backends: Vec<Arc<Backend>>,
    next: AtomicUsize,
    ejection: PassiveEjection,
    pub(crate) health_check: Option<HealthCheck>,
}

impl Pool {
    fn new(options: &RouteOptions) -> Result<Self, GatewayError> {
        let backends = options
            .backends
            .iter()
            .map(|url| Backend::new(url).map(Arc::new))
            .collect::<Result<Vec<_>, GatewayError>>()?;
        Ok(Self {
            backends,
            next: AtomicUsize::new(0),
            ejection: options.ejection,
            health_check: options.health_check.clone(),
        })
    }

    /// Backends in the order to try them: those in rotation round-robin, then the rest.
    /// Worked out without an allocation for pools of up to 64 backends.
    pub(crate) fn candidates(&self) -> Candidates<'_> {
        let now = std::cell::OnceCell::new();
        let count = self.backends.len();
        // One backend needs no turn-taking (and no shared counter written per request).
        let start = if count > 1 {
            self.next.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let rotated = |position: usize| self.backends.get((start + position) % count);
        if count > 64 {
            let (mut available, unavailable): (Vec<_>, Vec<_>) = (0..count)
                .filter_map(rotated)
                .map(Arc::as_ref)
                .partition(|backend| backend.in_rotation(&now));
            available.extend(unavailable);
            return Candidates {
                backends: &self.backends,
                start,
                in_rotation: 0,
                next: 0,
                listed: Some(available.into_iter()),
            };
        }
        let in_rotation = (0..count)
            .filter(|&position| rotated(position).is_some_and(|backend| backend.in_rotation(&now)))
            .fold(0u64, |mask, position| mask | 1 << position);
        Candidates {
            backends: &self.backends,
            start,
            in_rotation,
            next: 0,
            listed: None,
        }
    }

    /// Records the outcome of a real request to `backend`.
    pub(crate) fn report(&self, backend: &Backend, succeeded: bool) {
        if succeeded {
            // Read first: a healthy backend's counter stays untouched (no shared write).
            if backend.consecutive_failures.load(Ordering::Relaxed) != 0 {
                backend.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let failures = backend.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.ejection.consecutive_failures.max(1) {
            backend.consecutive_failures.store(0, Ordering::Relaxed);
            backend.ejected_until.store(
                backend.nanos_since_epoch(Instant::now() + self.ejection.duration),
                Ordering::Relaxed,
            );
            tracing::warn!(backend = %backend.url, for_secs = self.ejection.duration.as_secs(), "backend ejected after failures");
            metrics::counter!("rampart_gateway_backend_ejections_total", "backend" => backend.url.clone())
                .increment(1);
        }
    }
}

/// A pool's backends in the order to try them (see [`Pool::candidates`]).
pub(crate) struct Candidates<'a> {
    backends: &'a [Arc<Backend>],
    /// The rotation's first backend.
    start: usize,
    /// Bit `i`: the backend `i` places after `start` is in rotation (pools of up to 64).
    in_rotation: u64,
    /// Places yielded or skipped so far: the first pass (in rotation) then the second.
    next: usize,
    /// The whole order, for larger pools.
    listed: Option<std::vec::IntoIter<&'a Backend>>,
}

impl Candidates<'_> {
    /// How many backends there are to try in all.
    pub(crate) fn backend_count(&self) -> usize {
        self.backends.len()
    }
}

impl<'a> Iterator for Candidates<'a> {
    type Item = &'a Backend;

    fn next(&mut self) -> Option<&'a Backend> {
        if let Some(listed) = &mut self.listed {
            return listed.next();
        }
        let count = self.backends.len();
        while self.next < 2 * count {
            let first_pass = self.next < count;
            let position = self.next % count;
            self.next += 1;
            if (self.in_rotation >> position & 1 == 1) == first_pass {
                return self
                    .backends
                    .get((self.start + position) % count)
                    .map(Arc::as_ref);
            }
        }
        None
    }
}

/// Runs a pool's active health checks until the task is aborted.
pub(crate) async fn check_health_forever(pool: Arc<Pool>) {
    let Some(check) = pool.health_check.clone() else {
        return;
    };
    let client = match crate::forward::upstream_connector() {
        Ok(connector) => {
            crate::forward::upstream_client::<http_body_util::Empty<bytes::Bytes>>(connector)
        }
        Err(error) => {
            tracing::error!(%error, "health checks cannot run");
            return;
        }
    };
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for backend in &pool.backends {
            let Ok(uri) = backend.target.uri_for(&check.path) else {
                tracing::error!(path = %check.path, "health check path is not a valid path");
                return;
            };
            let request = http::Request::get(uri)
                .header(http::header::USER_AGENT, "rampart-health-check")
                .body(http_body_util::Empty::new());
            let passed = match request {
                Ok(request) => matches!(
                    tokio::time::timeout(check.timeout, client.request(request)).await,
                    Ok(Ok(response)) if response.status().is_success()
                ),
                Err(_) => false,
            };
            backend.health_result(passed, &check);
        }
    }
}

/// A compiled route.
#[derive(Debug)]
pub(crate) struct Route {
    host: Option<String>,
    prefix: String,
    pub(crate) pool: Arc<Pool>,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) auth: Option<crate::auth::RouteAuth>,
}

impl Route {
    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let host_matches = match (&self.host, host) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(pattern), Some(host)) => {
                let host = host.rsplit_once(':').map_or(host, |(name, port)| {
                    if port.bytes().all(|byte| byte.is_ascii_digit()) {
                        name
                    } else {
                        host
                    }
                });
                match pattern.strip_prefix("*.") {
                    Some(suffix) => host
                        .strip_suffix(suffix)
                        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                    None => pattern.eq_ignore_ascii_case(host),
                }
            }
        };
        let prefix = self.prefix.trim_end_matches('/');
        host_matches
            && (prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// Sort key: exact hosts first, then wildcards, then any; longer prefixes first.
    fn specificity(&self) -> (u8, usize) {
        let host_rank = match &self.host {
            Some(host) if !host.starts_with("*.") => 0,
            Some(_) => 1,
            None => 2,
        };
        (host_rank, usize::MAX - self.prefix.len())
    }
}

/// All routes of a gateway.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub(crate) fn new(
        options: &[RouteOptions],
        default_timeout: Duration,
    ) -> Result<Self, GatewayError> {
        let mut routes = options
            .iter()
            .map(|route| {
                if route.backends.is_empty() {
                    return Err(crate::error::GatewayErrorKind::Upstream {
                        url: String::new(),
                        reason: "a route needs at least one backend",
                    }
                    .into());
                }
                Ok(Route {
                    host: route.host.as_ref().map(|host| host.to_ascii_lowercase()),
                    prefix: route.path_prefix.clone(),
                    pool: Arc::new(Pool::new(route)?),
                    timeout: route.request_timeout.unwrap_or(default_timeout),
                    retries: route.retries,
                    auth: route.auth.clone(),
                })
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        routes.sort_by_key(Route::specificity);
        Ok(Self { routes })
    }

    /// The route for a request, if any.
    pub(crate) fn route(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        self.routes.iter().find(|route| route.matches(host, path))
    }

    /// Every pool that has health checks.
    pub(crate) fn checked_pools(&self) -> impl Iterator<Item = Arc<Pool>> + '_ {
        self.routes
            .iter()
            .filter(|route| route.pool.health_check.is_some())
            .map(|route| Arc::clone(&route.pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn route(host: Option<&str>, prefix: &str, backend: &str) -> RouteOptions {
        RouteOptions {
            host: host.map(str::to_owned),
            path_prefix: prefix.to_owned(),
            ..RouteOptions::catch_all(vec![backend.to_owned()])
        }
    }

    fn chosen<'a>(router: &'a Router, host: Option<&str>, path: &str) -> Option<&'a str> {
        router
            .route(host, path)
            .and_then(|route| route.pool.backends.first())
            .map(|backend| backend.url.as_str())
    }

    #[test]
    fn the_most_specific_route_wins() {
        let router = Router::new(
            &[
                route(None, "/", "http://any"),
                route(None, "/api", "http://api"),
                route(Some("*.example.com"), "/", "http://wild"),
                route(Some("shop.example.com"), "/", "http://shop"),
                route(Some("shop.example.com"), "/api/v2", "http://shop-v2"),
            ],
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            chosen(&router, Some("shop.example.com:8443"), "/api/v2/x"),
            Some("http://shop-v2")
        );
        assert_eq!(
            chosen(&router, Some("SHOP.example.com"), "/api/v2x"),
            Some("http://shop")
        );
        assert_eq!(
            chosen(&router, Some("a.example.com"), "/api"),
            Some("http://wild")
        );
        assert_eq!(
            chosen(&router, Some("example.com"), "/api/x"),
            Some("http://api")
        );
        assert_eq!(chosen(&router, None, "/apix"), Some("http://any"));
    }

    #[test]
    fn no_route_means_none() {
        let router =
            Router::new(&[route(Some("a.test"), "/", "http://a")], Duration::ZERO).unwrap();
        assert!(router.route(Some("b.test"), "/").is_none());
        assert!(router.route(None, "/").is_none());
    }

    #[test]
    fn failing_backends_are_ejected_and_healthy_ones_preferred() {
        let mut options = RouteOptions::catch_all(vec!["http://a".into(), "http://b".into()]);
        options.ejection = PassiveEjection {
            consecutive_failures: 2,
            duration: Duration::from_secs(60),
        };
        let pool = Pool::new(&options).unwrap();
        let a = Arc::clone(&pool.backends[0]);
        pool.report(&a, false);
        pool.report(&a, true);
        pool.report(&a, false);
        for _ in 0..4 {
            assert_eq!(pool.candidates().count(), 2);
        }
        pool.report(&a, false);
        for _ in 0..4 {
            let order: Vec<_> = pool.candidates().map(|b| b.url.clone()).collect();
            assert_eq!(order, ["http://b", "http://a"], "ejected backend not last");
        }
    }

    #[test]
    fn candidates_take_turns_among_backends_in_rotation_and_list_every_backend_once() {
        for backends in [3usize, 70] {
            let urls: Vec<String> = (0..backends).map(|i| format!("http://b{i}")).collect();
            let mut options = RouteOptions::catch_all(urls.clone());
            options.ejection = PassiveEjection {
                consecutive_failures: 1,
                duration: Duration::from_secs(60),
            };
            let pool = Pool::new(&options).unwrap();
            let ejected = Arc::clone(&pool.backends[0]);
            pool.report(&ejected, false);
            let mut firsts = HashSet::new();
            for _ in 0..backends {
                let order: Vec<String> = pool.candidates().map(|b| b.url.clone()).collect();
                assert_eq!(order.len(), backends, "{order:?}");
                assert_eq!(
                    order.iter().collect::<HashSet<_>>().len(),
                    backends,
                    "a backend listed twice: {order:?}"
                );
                assert_eq!(order.last(), Some(&urls[0]), "ejected backend not last");
                firsts.insert(order[0].clone());
            }
            // Every backend in rotation comes first in turn.
            assert_eq!(firsts.len(), backends - 1, "{firsts:?}");
        }
    }

    #[test]
    fn health_checks_flip_state_only_after_the_thresholds() {
        let options = RouteOptions::catch_all(vec!["http://a".into()]);
        let pool = Pool::new(&options).unwrap();
        let backend = &pool.backends[0];
        let check = HealthCheck::at("/healthz");
        let now = std::cell::OnceCell::from(Instant::now());
        let now = &now;
        backend.health_result(false, &check);
        assert!(backend.in_rotation(now));
        backend.health_result(false, &check);
        assert!(!backend.in_rotation(now));
        backend.health_result(true, &check);
        assert!(!backend.in_rotation(now));
        backend.health_result(true, &check);
        assert!(backend.in_rotation(now));
    }
}
