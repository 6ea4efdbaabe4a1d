//! Load shedding: a bound on requests in flight to the upstreams, with a short, bounded queue.
//!
//! When the upstreams slow down, requests pile up; queuing them forever turns a slowdown into
//! an outage (every client times out, and retries make it worse). Past the bound the gateway
//! answers `503` with `Retry-After` at once, so clients back off and the requests that are
//! admitted still finish quickly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

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
///
/// The slots are one counter rather than a semaphore: every request takes and returns a
/// slot, and a semaphore's release takes a lock shared by all worker threads. Waiters are
/// woken through a `Notify` only when there are any.
#[derive(Debug)]
pub(crate) struct UpstreamGate {
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    freed: Notify,
    bounds: LoadShedding,
}

/// A request's place among the requests in flight; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    gate: &'a UpstreamGate,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.gate.queued.load(Ordering::Acquire) > 0 {
            self.gate.freed.notify_one();
        }
    }
}

impl UpstreamGate {
    pub(crate) fn new(bounds: LoadShedding) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            freed: Notify::new(),
            bounds: LoadShedding {
                max_in_flight: bounds.max_in_flight.max(1),
                ..bounds
            },
        }
    }

    /// A slot if one is free right now and nobody is waiting for one (no waiting, no future
    /// to hold).
    pub(crate) fn try_enter(&self) -> Option<Slot<'_>> {
        if self.queued.load(Ordering::Acquire) > 0 {
            return None;
        }
        self.take_slot()
    }

    fn take_slot(&self) -> Option<Slot<'_>> {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current >= self.bounds.max_in_flight {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot { gate: self }),
                Err(seen) => current = seen,
            }
        }
    }

    /// A slot, or `None` when the request should be shed.
    pub(crate) async fn enter(&self) -> Option<Slot<'_>> {
        if let Some(slot) = self.try_enter() {
            return Some(slot);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.bounds.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("rampart_gateway_shed_total", "reason" => "queue_full").increment(1);
            return None;
        }
        let waited = tokio::time::timeout(self.bounds.max_queue_wait, async {
            loop {
                // Registered before the check, so a slot freed in between still wakes it.
                let freed = self.freed.notified();
                let mut freed = std::pin::pin!(freed);
                freed.as_mut().enable();
                if let Some(slot) = self.take_slot() {
                    return slot;
                }
                freed.await;
            }
        })
        .await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(slot) => Some(slot),
            Err(_) => {
                metrics::counter!("rampart_gateway_shed_total", "reason" => "queue_timeout")
                    .increment(1);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max_in_flight: usize, max_queued: usize, wait_ms: u64) -> UpstreamGate {
        UpstreamGate::new(LoadShedding {
            max_in_flight,
            max_queued,
            max_queue_wait: Duration::from_millis(wait_ms),
        })
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let gate = gate(2, 0, 0);
        let first = gate.try_enter().expect("a free slot");
        let _second = gate.try_enter().expect("a free slot");
        assert!(
            gate.try_enter().is_none(),
            "a third request exceeds the bound"
        );
        drop(first);
        assert!(gate.try_enter().is_some(), "a dropped slot is free again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_the_slot_freed_while_it_waits() {
        let gate = std::sync::Arc::new(gate(1, 4, 60_000));
        let held = gate.try_enter().expect("a free slot");
        let waiter = {
            let gate = std::sync::Arc::clone(&gate);
            tokio::spawn(async move { gate.enter().await.is_some() })
        };
        tokio::task::yield_now().await;
        // Somebody is queued: new requests do not jump the queue.
        assert!(gate.try_enter().is_none());
        drop(held);
        assert!(waiter.await.unwrap(), "the freed slot went to the waiter");
        assert_eq!(gate.queued.load(Ordering::Acquire), 0);
        assert_eq!(gate.in_flight.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_queue_or_the_wait_are_shed() {
        let no_queue = gate(1, 0, 100);
        let _held = no_queue.try_enter().expect("a free slot");
        assert!(no_queue.enter().await.is_none(), "no queue: shed at once");
        let short_wait = gate(1, 1, 100);
        let _held = short_wait.try_enter().expect("a free slot");
        // Nobody frees the slot: the waiter gives up after the wait bound.
        assert!(short_wait.enter().await.is_none());
        assert_eq!(short_wait.queued.load(Ordering::Acquire), 0);
    }
}
