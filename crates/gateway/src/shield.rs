//! Connection shields: a global connection cap with fair shedding and a per-client cap.
//!
//! When the gateway is full, a new connection does not simply wait or get refused: the
//! connection that has waited longest without a request in flight (a Slowloris socket still
//! trickling its head, or an idle keep-alive) is closed to make room. Only when every
//! connection is busy serving a request is the newcomer refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Connection caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open client connections the gateway holds at most.
    pub max_connections: usize,
    /// Open connections one client address may hold at most.
    pub max_connections_per_client: usize,
    /// New connections one client address may open per second (bursts of twice that): a
    /// client whose connections keep being closed for abuse (HTTP/2 rapid reset gets GOAWAY)
    /// cannot make the gateway spend its time accepting and handshaking.
    pub max_new_connections_per_client_per_second: u32,
    /// How long a connection refused for its client's connection rate is held open, unread,
    /// before it is closed (zero closes it at once). A client reconnecting in a loop (rapid
    /// reset gets GOAWAY, then reconnects at once) otherwise makes the gateway accept and close
    /// thousands of sockets a second; held, its connections stop cycling. Bounded: at most 32
    /// per client and 1,024 in all are held, beyond which refusals close at once.
    pub over_rate_hold: Duration,
}

/// Over-rate connections one client can have held at once (see
/// [`ConnectionLimits::over_rate_hold`]).
pub(crate) const MAX_HELD_PER_CLIENT: usize = 32;
/// Over-rate connections held at once across all clients.
pub(crate) const MAX_HELD: usize = 1024;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_client: 256,
            max_new_connections_per_client_per_second: 200,
            over_rate_hold: Duration::from_secs(10),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The client already holds its share of connections.
    PerClient,
    /// The client opens connections faster than its rate.
    PerClientRate,
    /// Every slot holds a connection that is serving a request.
    Full,
}

impl Refusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::PerClient => "per_client_cap",
            Self::PerClientRate => "per_client_rate",
            Self::Full => "full",
        }
    }
}

/// Per-connection progress, updated by the connection's own requests without the tracker's
/// lock (requests start and finish far more often than connections open).
#[derive(Debug)]
struct Progress {
    /// Requests in flight, or [`EVICTED`] once the tracker picked this idle connection to shed.
    in_flight: AtomicUsize,
    /// When the connection last started or finished a request (or opened), in nanoseconds
    /// since the tracker's epoch.
    last_progress: AtomicU64,
}

/// Set on an idle connection's `in_flight` when it is shed: only a connection with nothing in
/// flight can be switched to it, so a request that started first keeps its connection.
const EVICTED: usize = usize::MAX / 2;

#[derive(Debug)]
struct Entry {
    client: IpAddr,
    progress: Arc<Progress>,
    evict: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    connections: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
    /// Per-client token buckets for new connections: tokens and when they were counted.
    accept_buckets: HashMap<IpAddr, (f64, Instant)>,
    /// Over-rate connections held per client, and in all.
    held_per_client: HashMap<IpAddr, usize>,
    held: usize,
}

/// Accept buckets kept at most; beyond, full (quiet) clients' buckets are dropped.
const MAX_ACCEPT_BUCKETS: usize = 65_536;

impl State {
    fn forget(&mut self, id: u64) -> Option<Entry> {
        let entry = self.connections.remove(&id)?;
        if let Some(count) = self.per_client.get_mut(&entry.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_client.remove(&entry.client);
            }
        }
        Some(entry)
    }
}

/// The connection gauges, looked up once (a lookup per request would cost more than the
/// update).
#[derive(Debug)]
struct ConnectionGauges {
    open: metrics::Gauge,
    active: metrics::Gauge,
    idle: metrics::Gauge,
}

/// Tracks open connections and decides admissions and evictions. Shared by every worker
/// thread: admissions and closes take a lock, requests starting and finishing only touch
/// their own connection's atomics.
#[derive(Debug)]
pub(crate) struct ConnectionTracker {
    limits: ConnectionLimits,
    state: Mutex<State>,
    /// Open connections (mirrors `state.connections.len()`).
    open: AtomicUsize,
    epoch: Instant,
    gauges: ConnectionGauges,
}

impl ConnectionTracker {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::new(State::default()),
            open: AtomicUsize::new(0),
            epoch: Instant::now(),
            gauges: ConnectionGauges {
                open: metrics::gauge!("rampart_gateway_open_connections"),
                active: metrics::gauge!("rampart_gateway_connections", "state" => "active"),
                idle: metrics::gauge!("rampart_gateway_connections", "state" => "idle"),
            },
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the open-connections gauge (on every open and close).
    fn publish_open(&self) {
        self.gauges
            .open
            .set(self.open.load(Ordering::Relaxed) as f64);
    }

    /// Publishes every connection gauge: open, and open by state (active or idle). Counting
    /// the active ones walks the connections, so this runs on a timer, not per request.
    pub(crate) fn publish(&self) {
        let state = self.state();
        let open = state.connections.len();
        let active = state
            .connections
            .values()
            .filter(|entry| {
                let in_flight = entry.progress.in_flight.load(Ordering::Relaxed);
                in_flight > 0 && in_flight < EVICTED
            })
            .count();
        drop(state);
        self.gauges.open.set(open as f64);
        self.gauges.active.set(active as f64);
        self.gauges.idle.set(open.saturating_sub(active) as f64);
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Admits a connection from `client`, shedding the longest-idle one if the gateway is full.
    pub(crate) fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Admission, Refusal> {
        let now = Instant::now();
        let mut state = self.state();
        if state.per_client.get(&client).copied().unwrap_or(0)
            >= self.limits.max_connections_per_client
        {
            return Err(Refusal::PerClient);
        }
        if !self.take_accept_token(&mut state, client, now) {
            return Err(Refusal::PerClientRate);
        }
        if state.connections.len() >= self.limits.max_connections {
            let Some(victim) = Self::claim_longest_idle(&state) else {
                return Err(Refusal::Full);
            };
            if let Some(entry) = state.forget(victim) {
                self.open.fetch_sub(1, Ordering::Relaxed);
                entry.evict.notify_one();
                metrics::counter!("rampart_gateway_connections_shed_total", "reason" => "evicted_for_new")
                    .increment(1);
            }
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let evict = Arc::new(Notify::new());
        let progress = Arc::new(Progress {
            in_flight: AtomicUsize::new(0),
            last_progress: AtomicU64::new(self.nanos_since_epoch(now)),
        });
        state.connections.insert(
            id,
            Entry {
                client,
                progress: Arc::clone(&progress),
                evict: Arc::clone(&evict),
            },
        );
        *state.per_client.entry(client).or_insert(0) += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        drop(state);
        self.publish_open();
        Ok(Admission {
            id,
            tracker: Arc::clone(self),
            progress,
            evict,
        })
    }

    /// The idle connection that made progress longest ago, marked evicted so no request can
    /// start on it any more; `None` when every connection is busy.
    fn claim_longest_idle(state: &State) -> Option<u64> {
        let mut idle: Vec<(u64, u64)> = state
            .connections
            .iter()
            .filter(|(_, entry)| entry.progress.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, entry)| (entry.progress.last_progress.load(Ordering::Relaxed), *id))
            .collect();
        idle.sort_unstable();
        idle.into_iter().find_map(|(_, id)| {
            let entry = state.connections.get(&id)?;
            entry
                .progress
                .in_flight
                .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
                .then_some(id)
        })
    }

    fn request_started(&self, progress: &Progress, at: Instant) {
        progress
            .last_progress
            .store(self.nanos_since_epoch(at), Ordering::Relaxed);
        progress.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_finished(&self, progress: &Progress) {
        progress
            .last_progress
            .store(self.nanos_since_epoch(Instant::now()), Ordering::Relaxed);
        progress.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes one new-connection token from `client`'s bucket; false when it is empty.
    fn take_accept_token(&self, state: &mut State, client: IpAddr, now: Instant) -> bool {
        let rate = f64::from(self.limits.max_new_connections_per_client_per_second);
        if rate <= 0.0 {
            return true;
        }
        let burst = rate * 2.0;
        if state.accept_buckets.len() >= MAX_ACCEPT_BUCKETS {
            state.accept_buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = state.accept_buckets.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a refused connection from `client` into the hold: `Some` with how long to keep
    /// it (unread) before closing, unless holding is off or the client or the gateway holds
    /// its most already. The slot is given back when the returned guard drops.
    pub(crate) fn hold_refused(self: &Arc<Self>, client: IpAddr) -> Option<HeldRefusal> {
        if self.limits.over_rate_hold.is_zero() {
            return None;
        }
        let mut state = self.state();
        let held_by_client = state.held_per_client.get(&client).copied().unwrap_or(0);
        if held_by_client >= MAX_HELD_PER_CLIENT || state.held >= MAX_HELD {
            return None;
        }
        state.held_per_client.insert(client, held_by_client + 1);
        state.held += 1;
        Some(HeldRefusal {
            tracker: Arc::clone(self),
            client,
        })
    }

    /// Open connections, across every worker.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// An admitted connection; dropping it releases the slot.
#[derive(Debug)]
pub(crate) struct Admission {
    id: u64,
    tracker: Arc<ConnectionTracker>,
    progress: Arc<Progress>,
    evict: Arc<Notify>,
}

impl Admission {
    /// Resolves when the tracker sheds this connection to make room for a new one.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Resolves once the connection has gone `timeout` without a request in flight: from
    /// accept to the first complete request head, and between requests (the whole-head
    /// deadline and the idle keep-alive limit in one).
    pub(crate) async fn idle_expired(&self, timeout: Duration) {
        loop {
            let wait = match self.progress.in_flight.load(Ordering::Acquire) {
                // Shed: the eviction ends the connection.
                EVICTED.. => return std::future::pending().await,
                0 => {
                    let since = self
                        .tracker
                        .instant_of(self.progress.last_progress.load(Ordering::Relaxed));
                    match timeout.checked_sub(since.elapsed()) {
                        Some(left) if !left.is_zero() => left,
                        _ => return,
                    }
                }
                _ => timeout,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Marks a request in flight until the returned guard drops.
    #[cfg(test)]
    pub(crate) fn request(&self) -> InFlight {
        self.request_at(Instant::now())
    }

    /// Marks a request that started at `at` (now, read by the caller) in flight until the
    /// returned guard drops.
    pub(crate) fn request_at(&self, at: Instant) -> InFlight {
        self.tracker.request_started(&self.progress, at);
        InFlight {
            tracker: Arc::clone(&self.tracker),
            progress: Arc::clone(&self.progress),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut state = self.tracker.state();
        if state.forget(self.id).is_some() {
            self.tracker.open.fetch_sub(1, Ordering::Relaxed);
        }
        drop(state);
        self.tracker.publish_open();
    }
}

/// A refused connection's place in the hold (see [`ConnectionTracker::hold_refused`]).
#[derive(Debug)]
pub(crate) struct HeldRefusal {
    tracker: Arc<ConnectionTracker>,
    client: IpAddr,
}

impl HeldRefusal {
    /// How long the connection is kept before it is closed.
    pub(crate) fn hold(&self) -> Duration {
        self.tracker.limits.over_rate_hold
    }
}

impl Drop for HeldRefusal {
    fn drop(&mut self) {
        let mut state = self.tracker.state();
        state.held = state.held.saturating_sub(1);
        if let Some(count) = state.held_per_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.held_per_client.remove(&self.client);
            }
        }
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    tracker: Arc<ConnectionTracker>,
    progress: Arc<Progress>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.tracker.request_finished(&self.progress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn per_client_cap_refuses_only_that_client() {
        let tracker = ConnectionTracker::new(ConnectionLimits {
            max_connections: 10,
            max_connections_per_client: 2,
            ..ConnectionLimits::default()
        });
        let _a = tracker.admit(ip(1)).unwrap();
        let _b = tracker.admit(ip(1)).unwrap();
        assert_eq!(tracker.admit(ip(1)).unwrap_err(), Refusal::PerClient);
        let _c = tracker.admit(ip(2)).unwrap();
        drop(_a);
        let _d = tracker.admit(ip(1)).unwrap();
    }

    #[test]
    fn a_client_opening_connections_too_fast_is_refused_until_its_bucket_refills() {
        let tracker = ConnectionTracker::new(ConnectionLimits {
            max_new_connections_per_client_per_second: 5,
            ..ConnectionLimits::default()
        });
        // A burst of twice the rate passes (each connection closed at once, as an abuser's are).
        for _ in 0..10 {
            drop(tracker.admit(ip(1)).unwrap());
        }
        assert_eq!(tracker.admit(ip(1)).unwrap_err(), Refusal::PerClientRate);
        // Another client is not affected.
        drop(tracker.admit(ip(2)).unwrap());
        // One token comes back every 200 ms.
        std::thread::sleep(std::time::Duration::from_millis(250));
        drop(tracker.admit(ip(1)).unwrap());
    }

    #[test]
    fn over_rate_connections_are_held_up_to_a_bound_per_client_and_in_all() {
        let tracker = ConnectionTracker::new(ConnectionLimits::default());
        let held: Vec<HeldRefusal> = (0..MAX_HELD_PER_CLIENT)
            .map(|_| tracker.hold_refused(ip(1)).expect("room in the hold"))
            .collect();
        assert_eq!(held[0].hold(), ConnectionLimits::default().over_rate_hold);
        // The client's share is full: its next refusal is closed at once; others still held.
        assert!(tracker.hold_refused(ip(1)).is_none());
        let other = tracker
            .hold_refused(ip(2))
            .expect("another client has its own share");
        // A released slot can be taken again.
        drop(held);
        assert!(tracker.hold_refused(ip(1)).is_some());
        drop(other);
        // The total bound holds across clients.
        let mut many = Vec::new();
        for client in 0..=u8::MAX {
            for _ in 0..MAX_HELD_PER_CLIENT {
                if let Some(hold) = tracker.hold_refused(IpAddr::from([10, 0, 0, client])) {
                    many.push(hold);
                }
            }
        }
        assert_eq!(many.len(), MAX_HELD);
        drop(many);
        assert_eq!(tracker.state().held, 0);
        assert!(tracker.state().held_per_client.is_empty());
    }

    #[test]
    fn a_zero_hold_closes_over_rate_connections_at_once() {
        let tracker = ConnectionTracker::new(ConnectionLimits {
            over_rate_hold: Duration::ZERO,
            ..ConnectionLimits::default()
        });
        assert!(tracker.hold_refused(ip(1)).is_none());
    }

    #[tokio::test]
    async fn a_full_gateway_sheds_the_longest_idle_connection_not_a_busy_one() {
        let tracker = ConnectionTracker::new(ConnectionLimits {
            max_connections: 3,
            max_connections_per_client: 10,
            ..ConnectionLimits::default()
        });
        let oldest_idle = tracker.admit(ip(1)).unwrap();
        let busy_oldest_ever = tracker.admit(ip(1)).unwrap();
        let _request = busy_oldest_ever.request();
        let newer_idle = tracker.admit(ip(1)).unwrap();
        // Make `busy_oldest_ever` the oldest by progress too: it is still not shed, it is busy.
        let newcomer = tracker.admit(ip(2)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), oldest_idle.evicted())
            .await
            .expect("the oldest idle connection was not told to close");
        assert_eq!(tracker.open(), 3);
        drop(oldest_idle);
        assert_eq!(
            tracker.open(),
            3,
            "dropping an evicted connection freed a slot twice"
        );
        // All remaining: one busy, two idle; the next newcomer sheds `newer_idle`.
        let _another = tracker.admit(ip(3)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), newer_idle.evicted())
            .await
            .expect("the next idle connection was not shed");
        drop(newcomer);
    }

    #[test]
    fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let tracker = ConnectionTracker::new(ConnectionLimits {
            max_connections: 1,
            max_connections_per_client: 10,
            ..ConnectionLimits::default()
        });
        let busy = tracker.admit(ip(1)).unwrap();
        let _request = busy.request();
        assert_eq!(tracker.admit(ip(2)).unwrap_err(), Refusal::Full);
    }
}
