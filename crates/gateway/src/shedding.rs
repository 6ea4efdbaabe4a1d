//! Load shedding: a bound on requests in flight to the upstreams, with a short, bounded queue.
//!
//! When the upstreams slow down, requests pile up; queuing them forever turns a slowdown into
//! an outage (every client times out, and retries make it worse). Past the bound the gateway
//! answers `503` with `Retry-After` at once, so clients back off and the requests that are
//! admitted still finish quickly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Bounds on upstream concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadShedding {
    /// Requests in flight to upstreams at most.
    pub max_in_flight: usize,
    /// Requests waiting for a slot at most; more are shed at once.
    pub max_queued: usize,
    /// How long a request may wait for a slot before it is shed.
    pub max_queue_wait: Duration,
}

impl Default for LoadShedding {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            max_queued: 1024,
            max_queue_wait: Duration::from_secs(1),
        }
    }
}

/// Admits requests to the upstreams or sheds them.
#[derive(Debug)]
pub(crate) struct UpstreamGate {
    slots: Semaphore,
    queued: AtomicUsize,
    bounds: LoadShedding,
}

impl UpstreamGate {
    pub(crate) fn new(bounds: LoadShedding) -> Self {
        Self {
            slots: Semaphore::new(bounds.max_in_flight.max(1)),
            queued: AtomicUsize::new(0),
            bounds,
        }
    }

    /// A slot if one is free right now (no waiting, no future to hold).
    pub(crate) fn try_enter(&self) -> Option<SemaphorePermit<'_>> {
        self.slots.try_acquire().ok()
    }

    /// A slot, or `None` when the request should be shed.
    pub(crate) async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Some(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.bounds.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("rampart_gateway_shed_total", "reason" => "queue_full").increment(1);
            return None;
        }
        let waited = tokio::time::timeout(self.bounds.max_queue_wait, self.slots.acquire()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                metrics::counter!("rampart_gateway_shed_total", "reason" => "queue_timeout")
                    .increment(1);
                None
            }
        }
    }
}
