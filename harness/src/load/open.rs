//! The open-loop executor: one uninterrupted arrival process, cut into windows.
//!
//! [`OpenLoop::start`] starts the [`sender`](super::sender) thread, which sends on the
//! [`Schedule`] whether or not earlier answers came back. Windows are consecutive slices
//! of that one process: a request belongs to the window it was scheduled in, and
//! nothing drains between windows, so the backend's queue carries over from one window
//! to the next as it would in service. [`OpenLoop::next_window`] returns each window once
//! every request scheduled in it was answered (or dropped); [`OpenLoop::finish`] stops
//! sending and waits for what is still in flight (the only drain, at the end).
//!
//! Latency is measured from the **scheduled** send time, not the actual one, so time a
//! send spent waiting behind a slow client is counted (the coordinated-omission
//! correction of wrk2 and MLPerf LoadGen's Server scenario). Each send's lag behind its
//! schedule goes into a histogram; a send more than [`super::LATE_AFTER`] late counts as
//! late. A window's wall time is its slice of the process, and its throughput counts the
//! answers that came back during that slice, whichever window sent them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use contract::{Backend, Prepared};
use tokio::sync::mpsc;

use super::schedule::Schedule;
use super::sender::{Event, Sender};
use super::Window;
use super::{cpu, Measurement, Recorder};

/// Requests in flight at most unless told otherwise (`--max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Name of the open loop's sender thread (its waiting is not client work, so
/// [`cpu`] does not count it).
pub const SENDER_THREAD_NAME: &str = "sb-sender";

/// How an open loop is cut and bounded.
#[derive(Debug, Clone, Copy)]
pub struct OpenSpec {
    /// One window.
    pub window: Window,
    /// Stop sending after this many windows (`None`: when finished).
    pub max_windows: Option<usize>,
    /// Sends due while this many requests are in flight are dropped (and counted).
    pub max_in_flight: usize,
}

/// A window still being filled or answered.
struct Slice {
    index: usize,
    start: Instant,
    /// The next window's start, once the sender has moved on.
    end: Option<Instant>,
    /// Sends scheduled in it (made or dropped), once it is closed.
    sends: Option<u64>,
    /// Answers and drops seen.
    settled: u64,
    rec: Recorder,
    m: Measurement,
}

/// A running open loop. Must be started, and finished, on a tokio runtime.
pub struct OpenLoop {
    events: mpsc::UnboundedReceiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Schedule>>,
    /// Windows not yet returned, oldest first.
    open: VecDeque<Slice>,
    /// Client CPU time and when it was read, at the last window returned.
    cpu_mark: (Instant, Option<Duration>),
    threads: usize,
}

impl OpenLoop {
    /// Starts sending `request` to `backend` on `schedule` (restarted at zero).
    pub fn start(
        backend: Arc<dyn Backend>,
        request: Arc<Prepared>,
        schedule: Schedule,
        spec: OpenSpec,
    ) -> OpenLoop {
        let runtime = tokio::runtime::Handle::current();
        let threads = match super::threads::count() {
            0 => runtime.metrics().num_workers(),
            n => n,
        };
        let (tx, events) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            backend,
            request,
            schedule,
            window: spec.window,
            max_windows: spec.max_windows,
            max_in_flight: spec.max_in_flight.max(1),
            stop: stop.clone(),
            runtime,
            events: tx,
        };
        let thread = std::thread::Builder::new()
            .name(SENDER_THREAD_NAME.into())
            .spawn(move || sender.run())
            .expect("the OS starts a thread");
        OpenLoop {
            events,
            stop,
            thread: Some(thread),
            open: VecDeque::new(),
            cpu_mark: (Instant::now(), cpu::client_cpu_time()),
            threads,
        }
    }

    /// The next window, once every request scheduled in it is answered or dropped;
    /// `None` when the sender stopped before the window closed.
    pub async fn next_window(&mut self) -> Option<Measurement> {
        loop {
            if let Some(front) = self.open.front() {
                if front.end.is_some() && front.sends == Some(front.settled) {
                    let slice = self.open.pop_front().expect("a front window");
                    return Some(self.close(slice));
                }
            }
            let event = self.events.recv().await?;
            self.take(event);
        }
    }

    /// Stops sending, waits for every request still in flight (their answers are not
    /// counted) and returns the schedule, its random stream where it stopped.
    pub async fn finish(mut self) -> Schedule {
        self.stop.store(true, Ordering::Relaxed);
        // The channel closes when the sender thread and every request task are done.
        while self.events.recv().await.is_some() {}
        let thread = self.thread.take().expect("finished once");
        thread.join().expect("the sender thread does not panic")
    }

    /// Files one event under its window.
    fn take(&mut self, event: Event) {
        match event {
            Event::Open {
                index,
                start,
                closed_sends,
                closed_busy,
            } => {
                if index > 0 {
                    let last = self.open.back_mut().expect("windows open in order");
                    last.end = Some(start);
                    last.sends = Some(closed_sends);
                    last.m.sender_busy = closed_busy;
                }
                self.open.push_back(Slice {
                    index,
                    start,
                    end: None,
                    sends: None,
                    settled: 0,
                    rec: Recorder::new(index as u64 + 1),
                    m: Measurement::empty(),
                });
            }
            Event::Answer {
                window,
                scheduled,
                sent,
                done,
                result,
            } => {
                let ok = result.is_ok();
                let slice = self.slice(window);
                slice.rec.send(sent.saturating_duration_since(scheduled));
                slice
                    .rec
                    .record(done.saturating_duration_since(scheduled), result);
                slice.settled += 1;
                if ok {
                    // Counted in the slice the answer came back in: the latest window
                    // started by then (every earlier one is still open, see next_window).
                    if let Some(s) = self.open.iter_mut().rev().find(|s| s.start <= done) {
                        s.m.completed += 1;
                    }
                }
            }
            Event::Dropped { window } => {
                let slice = self.slice(window);
                slice.m.dropped += 1;
                slice.settled += 1;
            }
        }
    }

    /// The open window numbered `index` (windows open in order, so they are dense).
    fn slice(&mut self, index: usize) -> &mut Slice {
        let first = self.open.front().expect("its window is open").index;
        &mut self.open[index - first]
    }

    /// The measurement of a window every request of which is settled.
    fn close(&mut self, slice: Slice) -> Measurement {
        let Slice {
            start,
            end,
            rec,
            m: extra,
            ..
        } = slice;
        let mut m = rec.finish();
        m.wall = end
            .expect("a closed window")
            .saturating_duration_since(start);
        m.completed = extra.completed;
        m.dropped = extra.dropped;
        m.sender_busy = extra.sender_busy;
        // Client CPU since the last window returned, as a share of that time, applied to
        // this window's wall (windows overlap their answers, so the CPU cannot be cut at
        // slice boundaries exactly).
        let now = (Instant::now(), cpu::client_cpu_time());
        if let (Some(a), Some(b)) = (self.cpu_mark.1, now.1) {
            let elapsed = now
                .0
                .saturating_duration_since(self.cpu_mark.0)
                .as_secs_f64();
            if elapsed > 0.0 {
                let share = b.saturating_sub(a).as_secs_f64() / elapsed;
                m.client_cpu_s = Some(share * m.wall.as_secs_f64());
            }
        }
        self.cpu_mark = now;
        m.client_threads = self.threads;
        m
    }
}

impl Drop for OpenLoop {
    fn drop(&mut self) {
        // Not finished (a cancelled future): stop the sender; requests in flight end on
        // the runtime and their answers go nowhere.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One window on `schedule`, then a drain: the whole of a short open loop (warm-up).
pub async fn open_loop(
    backend: Arc<dyn Backend>,
    request: Arc<Prepared>,
    schedule: &mut Schedule,
    window: Window,
    max_in_flight: usize,
) -> Measurement {
    let taken = std::mem::replace(schedule, Schedule::new(1.0, super::Arrival::Constant, 0));
    let spec = OpenSpec {
        window,
        max_windows: Some(1),
        max_in_flight,
    };
    let mut lp = OpenLoop::start(backend, request, taken, spec);
    let m = lp.next_window().await.unwrap_or_else(Measurement::empty);
    *schedule = lp.finish().await;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::Sleeper;
    use crate::load::Arrival;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// `windows` windows of an open loop at `rate`, then the drain.
    fn windows(
        backend: Sleeper,
        rate: f64,
        window: Window,
        windows: usize,
        max_in_flight: usize,
        rt: tokio::runtime::Runtime,
    ) -> Vec<Measurement> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let req = Arc::new(Prepared::new("m", vec![]));
        rt.block_on(async move {
            let spec = OpenSpec {
                window,
                max_windows: Some(windows),
                max_in_flight,
            };
            let s = Schedule::new(rate, Arrival::Constant, 1);
            let mut lp = OpenLoop::start(backend, req, s, spec);
            let mut out = Vec::new();
            while let Some(m) = lp.next_window().await {
                out.push(m);
            }
            lp.finish().await;
            out
        })
    }

    #[test]
    fn a_slow_backend_does_not_slow_the_sends() {
        // 50 ms per request at 100 sends/s: five answers are outstanding at any time.
        let ms = windows(
            Sleeper::new(Duration::from_millis(50)),
            100.0,
            Window::Requests(50),
            1,
            1024,
            runtime(),
        );
        let m = &ms[0];
        assert_eq!((m.ok(), m.sends, m.dropped), (50, 50, 0));
        assert!(m.histogram.min() >= 50_000, "{}", m.histogram.min());
        assert_eq!(m.lag.len(), 50);
        // Sends are not held back by answers (on a loaded machine some start late).
        assert!(m.late < m.sends / 2, "{} late sends", m.late);
    }

    #[test]
    fn windows_are_consecutive_slices_and_nothing_drains_between_them() {
        // 30 ms answers, a send every 10 ms, windows of 5 sends: each window's last
        // answers come back while the next window is sending.
        let ms = windows(
            Sleeper::new(Duration::from_millis(30)),
            100.0,
            Window::Requests(5),
            4,
            1024,
            runtime(),
        );
        assert_eq!(ms.len(), 4);
        // Each slice is the schedule's own span: the first from the start (its first
        // send is one gap in), the rest from their first send to the next window's.
        let walls: Vec<u128> = ms.iter().map(|m| m.wall.as_micros()).collect();
        assert!((walls[0] as i128 - 60_000).abs() <= 1, "{walls:?}");
        for w in &walls[1..] {
            assert!((*w as i128 - 50_000).abs() <= 1, "{walls:?}");
        }
        for m in &ms {
            assert_eq!((m.ok(), m.sends), (5, 5));
        }
        // Answers are counted in the slice they came back in: the first window's
        // first answer is 40 ms in, so it holds at most 2 of them; later slices hold 5
        // on average.
        assert!(ms[0].completed <= 3, "{}", ms[0].completed);
        let total: u64 = ms.iter().map(|m| m.completed).sum();
        assert!(
            total < 20,
            "answers after the last slice are not in any window"
        );
    }

    #[test]
    fn sends_beyond_the_cap_are_dropped_and_counted() {
        // 50 ms answers at 1000 sends/s with at most 5 in flight: most sends are dropped.
        let ms = windows(
            Sleeper::new(Duration::from_millis(50)),
            1000.0,
            Window::Requests(100),
            1,
            5,
            runtime(),
        );
        let m = &ms[0];
        assert_eq!(m.sends + m.dropped, 100);
        assert!(m.dropped >= 50, "{} dropped", m.dropped);
        assert_eq!(m.ok(), m.sends);
    }

    #[test]
    fn latency_counts_from_the_scheduled_send_time() {
        // A test double that blocks for 30 ms in the send itself while sends are due
        // every 10 ms: the sender falls further behind with every send. Timed from the
        // actual send, every request would take 30 ms; timed from the schedule, the
        // last ones carry the ~20 ms x n they waited to go out.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slow = Sleeper {
            blocking: true,
            ..Sleeper::new(Duration::from_millis(30))
        };
        let m = &windows(slow, 100.0, Window::Requests(20), 1, 1024, rt)[0];
        assert_eq!(m.ok(), 20);
        assert!(m.late >= 15, "{} late sends", m.late);
        assert!(m.max_lag >= Duration::from_millis(250), "{:?}", m.max_lag);
        assert!(
            m.histogram.max() >= 280_000,
            "slowest {} µs: the wait before sending is not counted",
            m.histogram.max()
        );
        assert!(m.histogram.min() >= 30_000);
        // The load threads finish the requests.
        assert_eq!(m.client_threads, crate::load::threads::count());
    }
}
