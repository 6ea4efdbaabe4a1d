//! Minimum data rates: the slow-POST and slow-read defenses.
//!
//! A [`ProgressMeter`] counts only the time spent *waiting on the client* (a read or write that
//! could not proceed). Once a client has kept the gateway waiting for `per` in total while
//! moving fewer than `bytes`, it is too slow and its connection or request is ended. Idle time
//! (nothing to send, nothing expected) costs nothing, so keep-alive and long polls are safe;
//! a client that trickles a byte now and then (Slowloris-style bodies, tiny TCP windows) is not.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A minimum data rate: at least `bytes` for every `per` spent waiting on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes that must move...
    pub bytes: u64,
    /// ...per this much time spent waiting.
    pub per: Duration,
}

impl MinRate {
    /// The default for request bodies and responses: 1 KiB per 10 s of waiting.
    pub const DEFAULT: Self = Self {
        bytes: 1024,
        per: Duration::from_secs(10),
    };
}

/// The error a too-slow client gets.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("client moved data below the minimum rate ({} bytes per {:?} of waiting)", rate.bytes, rate.per)]
pub struct TooSlow {
    rate: MinRate,
}

/// Counts progress against waiting time for one direction of one connection or body.
#[derive(Debug)]
pub(crate) struct ProgressMeter {
    rate: MinRate,
    period_bytes: u64,
    /// Waiting time already finished in this period.
    stalled: Duration,
    /// When the current wait started, if waiting.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl ProgressMeter {
    pub(crate) fn new(rate: MinRate) -> Self {
        Self {
            rate,
            period_bytes: 0,
            stalled: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// Records `bytes` moved; ends any wait.
    pub(crate) fn progressed(&mut self, bytes: usize) {
        if let Some(since) = self.waiting_since.take() {
            self.stalled += since.elapsed();
        }
        self.period_bytes = self.period_bytes.saturating_add(bytes as u64);
        if self.period_bytes >= self.rate.bytes {
            self.period_bytes = 0;
            self.stalled = Duration::ZERO;
        }
    }

    /// Records that the client kept us waiting; errors once it has been too slow, otherwise
    /// arms a timer so the verdict comes even if the client sends nothing more.
    pub(crate) fn waiting(&mut self, cx: &mut Context<'_>) -> Result<(), TooSlow> {
        loop {
            let now = Instant::now();
            let since = *self.waiting_since.get_or_insert(now);
            let stalled = self.stalled + now.saturating_duration_since(since);
            if stalled >= self.rate.per {
                if self.period_bytes < self.rate.bytes {
                    return Err(TooSlow { rate: self.rate });
                }
                self.period_bytes = 0;
                self.stalled = Duration::ZERO;
                self.waiting_since = Some(now);
                continue;
            }
            let deadline = now + (self.rate.per - stalled);
            let timer = match &mut self.timer {
                Some(timer) => {
                    timer.as_mut().reset(deadline);
                    timer
                }
                None => self
                    .timer
                    .insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
        }
    }
}

/// A client connection whose writes (the responses) must drain at a minimum rate.
#[derive(Debug)]
pub(crate) struct MinRateIo<T> {
    inner: T,
    writes: ProgressMeter,
}

impl<T> MinRateIo<T> {
    pub(crate) fn new(inner: T, rate: MinRate) -> Self {
        Self {
            inner,
            writes: ProgressMeter::new(rate),
        }
    }
}

impl<T: AbortOnClose> MinRateIo<T> {
    /// The client reads too slowly: its connection is to be reset when it closes.
    #[cold]
    fn cut_off(&self, too_slow: TooSlow) -> io::Error {
        metrics::counter!("rampart_gateway_slow_clients_total", "direction" => "response")
            .increment(1);
        self.inner.abort_on_close();
        io::Error::new(io::ErrorKind::TimedOut, too_slow)
    }
}

/// Unsent response bytes the kernel may hold for one client connection (`TCP_NOTSENT_LOWAT`).
///
/// Without a bound, a write succeeds as long as the send buffer has room, and on loopback or a
/// fast path the kernel sizes that buffer to megabytes: a slow reader's whole response then
/// sits in kernel memory, the gateway's writes never wait, the minimum read rate never sees it,
/// and the connection ends as an idle one with the response still queued (slowhttptest's slow
/// read: 256 connections, each with three 256 KiB responses handed to the kernel at once, closed
/// gracefully at the idle deadline with the data still queued). Bounded, the socket reports
/// writable only while less than this waits to be sent: a client that reads keeps it flowing
/// (what is in flight is not counted; one loopback bulk stream loses ~5% to the extra write
/// wake-ups), one that does not makes the gateway wait, which the minimum response rate
/// measures and ends.
pub(crate) const UNSENT_LIMIT: u32 = 128 * 1024;

/// Applies [`UNSENT_LIMIT`] to a client connection (best effort: a kernel without the option
/// leaves the send buffer as the bound).
pub(crate) fn limit_unsent(stream: &tokio::net::TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT);
}

/// A connection that can be closed abortively.
pub(crate) trait AbortOnClose {
    /// Makes closing the connection reset it (RST) and discard what is still queued for the
    /// peer, instead of leaving the kernel to deliver it.
    fn abort_on_close(&self);
}

impl AbortOnClose for tokio::net::TcpStream {
    fn abort_on_close(&self) {
        // A slow reader's socket holds up to a send buffer of response (hundreds of KiB on
        // loopback) that a graceful close would keep in kernel memory, orphaned, for as long
        // as the reader keeps its window open a crack. A zero linger time frees it at close
        // (nginx's `reset_timedout_connection`).
        #[allow(
            deprecated,
            reason = "deprecated for a non-zero linger, which blocks the closing thread; a zero one resets at once"
        )]
        let _ = self.set_linger(Some(Duration::ZERO));
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MinRateIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + AbortOnClose + Unpin> AsyncWrite for MinRateIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                this.writes.progressed(written);
                Poll::Ready(Ok(written))
            }
            Poll::Pending => match this.writes.waiting(cx) {
                Ok(()) => Poll::Pending,
                Err(too_slow) => Poll::Ready(Err(this.cut_off(too_slow))),
            },
            other => other,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(written)) => {
                this.writes.progressed(written);
                Poll::Ready(Ok(written))
            }
            Poll::Pending => match this.writes.waiting(cx) {
                Ok(()) => Poll::Pending,
                Err(too_slow) => Poll::Ready(Err(this.cut_off(too_slow))),
            },
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The client's request body broke off (the client went away, or its framing was bad) while
/// it was being forwarded: the client's failure, not the upstream's.
#[derive(Debug)]
pub(crate) struct ClientBodyFailed(hyper::Error);

impl std::fmt::Display for ClientBodyFailed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "the client's request body failed: {}", self.0)
    }
}

impl std::error::Error for ClientBodyFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A request body that must arrive at a minimum rate (the slow-POST defense).
#[derive(Debug)]
pub(crate) struct MinRateBody {
    inner: crate::forward::ClientBody,
    reads: ProgressMeter,
}

impl MinRateBody {
    pub(crate) fn new(inner: crate::forward::ClientBody, rate: MinRate) -> Self {
        Self {
            inner,
            reads: ProgressMeter::new(rate),
        }
    }
}

impl Body for MinRateBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.reads
                    .progressed(frame.data_ref().map_or(0, |data| data.len()));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(Box::new(ClientBodyFailed(error)))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.reads.waiting(cx) {
                Ok(()) => Poll::Pending,
                Err(too_slow) => {
                    metrics::counter!("rampart_gateway_slow_clients_total", "direction" => "request_body")
                        .increment(1);
                    Poll::Ready(Some(Err(Box::new(too_slow))))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test(start_paused = true)]
    async fn waiting_without_progress_is_too_slow_after_the_budget() {
        let mut meter = ProgressMeter::new(MinRate {
            bytes: 100,
            per: Duration::from_secs(10),
        });
        let verdict = poll_fn(|cx| match meter.waiting(cx) {
            Ok(()) => Poll::Pending,
            Err(error) => Poll::Ready(error),
        });
        // Paused time auto-advances to the armed timer: the verdict comes without new data.
        let started = Instant::now();
        let _too_slow = verdict.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn enough_progress_resets_the_budget_and_idle_time_is_free() {
        let mut meter = ProgressMeter::new(MinRate {
            bytes: 100,
            per: Duration::from_secs(10),
        });
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..5 {
            assert!(meter.waiting(&mut cx).is_ok());
            tokio::time::advance(Duration::from_secs(8)).await;
            meter.progressed(150);
            // Long idle (no wait in progress) costs nothing.
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        assert!(meter.waiting(&mut cx).is_ok());
        tokio::time::advance(Duration::from_secs(8)).await;
        meter.progressed(10);
        assert!(meter.waiting(&mut cx).is_ok());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            meter.waiting(&mut cx).is_err(),
            "11 s of waiting for 10 bytes passed"
        );
    }

    fn futures_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
