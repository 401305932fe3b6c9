//! The open loop's sender: one OS thread that sends on time.
//!
//! The thread walks the [`Schedule`], cuts it into windows (a send belongs to the window
//! its scheduled time falls in), waits for each send with [`clock::wait_until`] (a
//! coarse sleep, then a spin), and makes the send itself: it polls the request's future
//! once, on this thread, inside the runtime's context, so the request leaves (a job
//! queued to an engine's executor, bytes written to a socket) within microseconds of its
//! schedule. A future that is not done after that first poll is handed to the runtime
//! whose context the poll ran in to finish ([`tokio::runtime::Handle::spawn`]): one of
//! the load threads ([`super::threads`]), in turn; its answer comes back to the collector
//! ([`super::open::OpenLoop`]) as an [`Event`]. Nothing here waits for an answer.
//!
//! A send due while [`Sender::max_in_flight`] requests are outstanding is not made but
//! counted as dropped, so a backend that cannot keep up cannot grow the client's queue
//! without bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use contract::{Backend, BackendError, Prepared};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;

use super::clock;
use super::schedule::Schedule;
use super::Window;

/// What the sender thread and the requests it sent tell the collector.
#[derive(Debug)]
pub enum Event {
    /// Window `index` starts at `start`; the window before it (if any) closed after
    /// `closed_sends` sends (made or dropped), the sender busy `closed_busy` making them.
    Open {
        /// Window number, from 0.
        index: usize,
        /// Start of its slice.
        start: Instant,
        /// Sends scheduled in the window before.
        closed_sends: u64,
        /// Time the sender spent making them (not waiting).
        closed_busy: Duration,
    },
    /// A request scheduled in `window` was answered.
    Answer {
        /// Window it was scheduled in.
        window: usize,
        /// Its scheduled send time.
        scheduled: Instant,
        /// When it was sent.
        sent: Instant,
        /// When its answer was back.
        done: Instant,
        /// The answer (outputs dropped).
        result: Result<(), BackendError>,
    },
    /// A send scheduled in `window` was dropped: too many requests in flight.
    Dropped {
        /// Window it was scheduled in.
        window: usize,
    },
}

/// Everything the sender thread needs.
pub struct Sender {
    /// Where requests go.
    pub backend: Arc<dyn Backend>,
    /// The request sent every time.
    pub request: Arc<Prepared>,
    /// Send times (offsets from the start of the process).
    pub schedule: Schedule,
    /// How the process is cut into windows.
    pub window: Window,
    /// Stop after this many windows (`None`: when stopped).
    pub max_windows: Option<usize>,
    /// Cap on requests in flight; sends beyond it are dropped.
    pub max_in_flight: usize,
    /// Set to stop sending.
    pub stop: Arc<AtomicBool>,
    /// The runtime that finishes requests when the load threads are gone.
    pub runtime: Handle,
    /// To the collector.
    pub events: UnboundedSender<Event>,
}

/// Where the window being filled stands.
struct Cut {
    index: usize,
    /// Its start, seconds from the start of the process.
    start: f64,
    sends: u64,
    busy: Duration,
    /// Offset of its last send.
    last: f64,
}

impl Sender {
    /// Runs the arrival process until stopped, out of windows, or the collector is
    /// gone; returns the schedule (its random stream continues where it stopped).
    pub fn run(mut self) -> Schedule {
        clock::tighten_timer_slack();
        clock::raise_priority();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let spin = clock::spin_margin(self.schedule.mean_gap());
        let begin = Instant::now();
        self.schedule.restart();
        let mut cut = Cut {
            index: 0,
            start: 0.0,
            sends: 0,
            busy: Duration::ZERO,
            last: 0.0,
        };
        if !self.emit(Event::Open {
            index: 0,
            start: begin,
            closed_sends: 0,
            closed_busy: Duration::ZERO,
        }) {
            return self.schedule;
        }
        loop {
            let offset = self.schedule.next_offset();
            if let Some(start) = next_start(self.window, &cut, offset) {
                let open = Event::Open {
                    index: cut.index + 1,
                    start: begin + Duration::from_secs_f64(start),
                    closed_sends: cut.sends,
                    closed_busy: cut.busy,
                };
                if !self.emit(open) || self.max_windows.is_some_and(|m| cut.index + 1 >= m) {
                    break;
                }
                cut = Cut {
                    index: cut.index + 1,
                    start,
                    sends: 0,
                    busy: Duration::ZERO,
                    last: start,
                };
            }
            let scheduled = begin + Duration::from_secs_f64(offset);
            if !clock::wait_until(scheduled, spin, &self.stop) {
                break;
            }
            cut.sends += 1;
            cut.last = offset;
            if in_flight.load(Ordering::Acquire) >= self.max_in_flight {
                if !self.emit(Event::Dropped { window: cut.index }) {
                    break;
                }
                continue;
            }
            in_flight.fetch_add(1, Ordering::AcqRel);
            let sent = Instant::now();
            self.send(cut.index, scheduled, sent, &in_flight);
            cut.busy += sent.elapsed();
        }
        self.schedule
    }

    /// Makes one send: polls the request once here, hands the rest to the runtime.
    fn send(&self, window: usize, scheduled: Instant, sent: Instant, in_flight: &Arc<AtomicUsize>) {
        let (backend, request) = (self.backend.clone(), self.request.clone());
        let mut request: Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send>> =
            Box::pin(async move { backend.infer(&request).await.map(|_| ()) });
        let answer = {
            let (events, in_flight) = (self.events.clone(), in_flight.clone());
            move |result| {
                let done = Instant::now();
                in_flight.fetch_sub(1, Ordering::AcqRel);
                let _ = events.send(Event::Answer {
                    window,
                    scheduled,
                    sent,
                    done,
                    result,
                });
            }
        };
        // A load thread finishes it, the next in turn, as in the closed loop; the
        // runtime the loop was started on only if they are gone.
        let runtime = super::threads::next().unwrap_or_else(|| self.runtime.clone());
        let _context = runtime.enter();
        // The waker is never used: if the request is not done, the runtime polls it
        // again as a task, which registers the task's own waker.
        match request
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(result) => answer(result),
            Poll::Pending => {
                runtime.spawn(async move { answer(request.await) });
            }
        }
    }

    /// Sends `event` to the collector; false when it is gone.
    fn emit(&self, event: Event) -> bool {
        self.events.send(event).is_ok()
    }
}

/// The start (seconds) of the window after `cut` if the send at `offset` no longer
/// belongs to `cut`. A request window holds exactly `n` sends and the next one starts at
/// its first send; a duration window ends at its length (once it holds `min_requests`
/// sends; if it reached them only later, right at the next send).
fn next_start(window: Window, cut: &Cut, offset: f64) -> Option<f64> {
    match window {
        Window::Requests(n) => (cut.sends >= n).then_some(offset),
        Window::Duration {
            seconds,
            min_requests,
        } => {
            let end = cut.start + seconds;
            (cut.sends >= min_requests && offset >= end).then_some(if end > cut.last {
                end
            } else {
                offset
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(start: f64, sends: u64, last: f64) -> Cut {
        Cut {
            index: 0,
            start,
            sends,
            busy: Duration::ZERO,
            last,
        }
    }

    #[test]
    fn windows_are_consecutive_slices_of_the_schedule() {
        let w = Window::Requests(3);
        assert_eq!(next_start(w, &cut(0.0, 2, 0.2), 0.3), None);
        assert_eq!(next_start(w, &cut(0.0, 3, 0.3), 0.4), Some(0.4));
        let d = Window::Duration {
            seconds: 1.0,
            min_requests: 2,
        };
        // Inside its length: the send belongs to the window.
        assert_eq!(next_start(d, &cut(0.0, 5, 0.8), 0.9), None);
        // Past its length with enough sends: the next window starts at the length.
        assert_eq!(next_start(d, &cut(0.0, 5, 0.9), 1.2), Some(1.0));
        // Too few sends: the window stretches until it has them.
        assert_eq!(next_start(d, &cut(0.0, 1, 0.5), 1.5), None);
        assert_eq!(next_start(d, &cut(0.0, 2, 1.5), 1.7), Some(1.7));
    }
}
