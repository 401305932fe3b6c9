//! A request deadline that costs no timer registration per request.
//!
//! `tokio::time::timeout` registers a timer in the runtime's wheel when a request starts
//! and removes it when the request ends: two passes through the timer driver's lock for
//! every request, which at tens of thousands of requests a second was a tenth of the
//! HTTP client's CPU. Requests are far shorter than their deadline (milliseconds against
//! minutes), so a [`LazyTimer`] is kept and reused, one per HTTP connection
//! (`http::Client`) or in a pool (the harness's deadline on every backend), and each
//! request only checks it:
//!
//! - The timer is armed at the deadline of some earlier request. It may fire early,
//!   never late: before a request, [`LazyTimer::arm`] pulls it in if it is armed later
//!   than this request's deadline (a request that started before the one that armed it,
//!   in another task).
//! - When it fires, [`LazyTimer::poll_passed`] reads the clock: if this request's
//!   deadline has passed, the request times out; if not, the timer is re-armed at this
//!   request's deadline and waited on again.
//!
//! So the wheel is touched about once per deadline period per timer, not twice per
//! request. A timer that fires while idle wakes the task that last waited on it, which
//! finds nothing to do: one spurious wake-up per period. A timer belongs to the runtime
//! it was first polled in: keep it with what belongs there too (a connection), or by
//! runtime ([`tokio::runtime::Handle::id`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::time::{Instant, Sleep};

/// One connection's deadline timer, re-armed only when it fires before the current
/// request's deadline.
#[derive(Debug)]
pub struct LazyTimer {
    sleep: Pin<Box<Sleep>>,
}

impl LazyTimer {
    /// A timer armed at `deadline` (registered in the wheel when first polled).
    pub fn new(deadline: Instant) -> LazyTimer {
        LazyTimer {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Makes the timer fire no later than `deadline`.
    pub fn arm(&mut self, deadline: Instant) {
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
    }

    /// Ready once `deadline` has passed; until then, re-armed at `deadline` each time it
    /// fires early. [`LazyTimer::arm`] with the same `deadline` must come first.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
    }

    /// Runs `work` until it ends (`Some` of its output) or `deadline` passes (`None`;
    /// `work` is dropped).
    pub fn within<F: Future>(&mut self, deadline: Instant, work: F) -> Within<'_, F> {
        self.arm(deadline);
        Within {
            timer: self,
            deadline,
            work,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`LazyTimer::within`]. A type of its own, not an `async fn`: the
    /// work is stored once, pinned in place. An `async fn` kept both its argument and
    /// the pinned copy, which doubled the size of every HTTP request's future (and
    /// took its heap allocation past the allocator's fast path for small blocks).
    pub struct Within<'a, F> {
        timer: &'a mut LazyTimer,
        deadline: Instant,
        #[pin]
        work: F,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The work first: an answer that is already there wins over the clock.
        if let Poll::Ready(out) = this.work.poll(cx) {
            return Poll::Ready(Some(out));
        }
        this.timer.poll_passed(cx, *this.deadline).map(|()| None)
    }
}

/// The deadline `limit` after `now`, or about 30 years from now if that overflows (as
/// tokio's own timeout).
pub fn deadline_after(now: Instant, limit: std::time::Duration) -> Instant {
    now.checked_add(limit)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(86400 * 365 * 30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Guard against a timer that never fires: far longer than any deadline here.
    const GUARD: Duration = Duration::from_secs(20);

    async fn guarded<T>(f: impl Future<Output = T>) -> T {
        // The guard first: a timer that never woke its task must not pass because the
        // guard's wake-up polled it once more.
        tokio::select! {
            biased;
            () = tokio::time::sleep(GUARD) => panic!("the lazy timer never fired"),
            out = f => out,
        }
    }

    #[tokio::test]
    async fn work_that_ends_in_time_is_kept_and_late_work_is_cut() {
        let now = Instant::now();
        let mut timer = LazyTimer::new(deadline_after(now, Duration::from_millis(60)));
        let out = guarded(timer.within(now + Duration::from_millis(60), async { 7 })).await;
        assert_eq!(out, Some(7));
        // Armed later than the next request's deadline: pulled in.
        let mut timer = LazyTimer::new(Instant::now() + Duration::from_secs(3600));
        let cut = guarded(timer.within(
            Instant::now() + Duration::from_millis(30),
            std::future::pending::<()>(),
        ))
        .await;
        assert_eq!(cut, None);
    }

    /// The work is stored once in the deadline's future, not once as an argument and
    /// again pinned (every HTTP request's future is as large as this one's work).
    #[tokio::test]
    async fn the_deadline_adds_no_copy_of_the_work() {
        let big = [7u8; 512];
        let work = async move { big.iter().map(|&b| u32::from(b)).sum::<u32>() };
        let work_size = std::mem::size_of_val(&work);
        let mut timer = LazyTimer::new(Instant::now() + Duration::from_secs(60));
        let within = timer.within(Instant::now() + Duration::from_secs(60), work);
        let size = std::mem::size_of_val(&within);
        assert!(
            size <= work_size + 32,
            "{size} bytes for {work_size} of work"
        );
        assert_eq!(within.await, Some(7 * 512));
    }

    #[tokio::test]
    async fn a_timer_that_fired_early_is_re_armed_not_taken_for_a_timeout() {
        let start = Instant::now();
        let mut timer = LazyTimer::new(start + Duration::from_millis(40));
        // The first request arms the timer at its deadline and ends at once.
        assert_eq!(
            timer
                .within(start + Duration::from_millis(40), async {})
                .await,
            Some(())
        );
        // A later request, whose deadline is 40 ms after the timer's: the work ends
        // after the timer fired, before this request's deadline.
        let later = start + Duration::from_millis(20);
        tokio::time::sleep_until(later).await;
        let work = tokio::time::sleep_until(start + Duration::from_millis(50));
        let out = guarded(timer.within(later + Duration::from_millis(40), work)).await;
        assert_eq!(out, Some(()), "the early fire is not a timeout");
        // And a request that outlives its deadline still times out on the re-armed timer.
        let out = guarded(timer.within(
            Instant::now() + Duration::from_millis(30),
            std::future::pending::<()>(),
        ))
        .await;
        assert_eq!(out, None);
        // A timer that fired long ago, while idle, is no timeout for a new request.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let work = tokio::time::sleep(Duration::from_millis(10));
        assert_eq!(guarded(timer.within(deadline, work)).await, Some(()));
    }
}
