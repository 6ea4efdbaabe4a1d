//! A future polled only when it was woken. `tokio::select!` polls every branch each time its
//! task wakes; a connection's task wakes twice per request (client and upstream readable),
//! while its shedding, idle-deadline and drain branches almost never have anything to say.
//! Polling them anyway (a `Notify`, a timer and a watch channel) cost 2-3% of the
//! instructions of a proxied request. [`Gated`] gives its future a waker of its own that
//! records the wake-up before passing it on to the task, and skips the poll otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The inner future's waker: notes that the future asked to be polled, then wakes the task.
#[derive(Debug)]
struct GateWaker {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for GateWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

/// `future`, polled on the first poll and afterwards only once its own waker was woken.
pub(crate) struct Gated<F> {
    future: Pin<Box<F>>,
    gate: Arc<GateWaker>,
    waker: Waker,
}

impl<F: Future> Gated<F> {
    pub(crate) fn new(future: F) -> Self {
        let gate = Arc::new(GateWaker {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Self {
            future: Box::pin(future),
            waker: Waker::from(Arc::clone(&gate)),
            gate,
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.gate.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        // Cleared before the poll: a wake-up during or after it is kept for the next one.
        self.gate.woken.store(false, Ordering::Release);
        {
            let mut task = self
                .gate
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let this = &mut *self;
        this.future
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its polls; never ready.
    struct Counted {
        polls: Arc<AtomicUsize>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            Poll::Pending
        }
    }

    #[test]
    fn a_future_not_woken_is_not_polled_again() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = Gated::new(Counted {
            polls: Arc::clone(&polls),
        });
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..5 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1, "polled without a wake-up");
        gated.waker.wake_by_ref();
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn wake_ups_reach_the_task_and_the_future_completes() {
        tokio::time::pause();
        let (sender, receiver) = tokio::sync::oneshot::channel::<u8>();
        let timer = Gated::new(tokio::time::sleep(Duration::from_secs(10)));
        let received = Gated::new(receiver);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = sender.send(7);
        });
        tokio::select! {
            value = received => assert_eq!(value.unwrap(), 7),
            () = timer => panic!("the timer fired first"),
        }
        // A timer alone completes too.
        Gated::new(tokio::time::sleep(Duration::from_secs(5))).await;
    }
}
