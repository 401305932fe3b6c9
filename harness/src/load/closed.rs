//! The closed-loop executor.
//!
//! `concurrency` tasks each keep exactly one request in flight: send, wait for the
//! answer, send again. Latency is timed around each [`Backend::infer`] call: two clock
//! reads a request, the second of which also says whether a duration window has ended
//! (it is the time the next request is claimed at). Each task has its own
//! [`Recorder`]; they are merged when the window ends.
//!
//! The tasks run on the [`threads`], dealt out in turn, so each stays on one thread and
//! is run by the thread that sees its answer come (on the caller's runtime only if the
//! load threads are gone).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use contract::{Backend, Prepared};

use super::{cpu, threads, Measurement, Recorder, Window};

/// Runs `request` in a closed loop at `concurrency` until `window` ends.
pub async fn closed_loop(
    backend: Arc<dyn Backend>,
    request: Arc<Prepared>,
    concurrency: usize,
    window: Window,
) -> Measurement {
    let started = Arc::new(Started::default());
    let cpu0 = cpu::ClientCpu::now();
    let begin = Instant::now();
    let mut on_load_threads = true;
    let mut tasks = Tasks(
        (0..concurrency.max(1))
            .map(|i| {
                let (backend, request, started) =
                    (backend.clone(), request.clone(), started.clone());
                let task = async move {
                    let mut rec = Recorder::new(i as u64 + 1);
                    let mut now = begin;
                    while claim(&started, window, begin, now) {
                        let t0 = Instant::now();
                        let result = backend.infer(&request).await;
                        now = Instant::now();
                        rec.record(now - t0, result);
                    }
                    rec.finish()
                };
                match threads::next() {
                    Some(thread) => thread.spawn(task),
                    None => {
                        on_load_threads = false;
                        tokio::spawn(task)
                    }
                }
            })
            .collect(),
    );
    let mut total = Measurement::empty();
    for (i, task) in tasks.0.iter_mut().enumerate() {
        let part = task.await.expect("load task does not panic");
        total.merge(&part, i as u64);
    }
    total.wall = begin.elapsed();
    total.sends = total.ok() + total.failed();
    total.completed = total.ok();
    cpu0.finish_into(&mut total);
    if on_load_threads {
        total.client_threads = concurrency.clamp(1, threads::count());
    }
    total
}

/// The load tasks of one window; dropped before they end (the window's future was
/// dropped: the run was interrupted), it stops them, so none keeps its backend alive.
struct Tasks(Vec<tokio::task::JoinHandle<Measurement>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The requests a window has started, shared by its tasks.
#[derive(Default)]
struct Started {
    count: AtomicU64,
    /// A duration window has started its `min_requests`: from then on only the clock
    /// decides, and the tasks stop writing to `count` (a write from every request,
    /// passed between cores, cost more than the rest of the claim).
    floor_met: AtomicBool,
}

/// True while the window (which began at `begin`; it is `now`) wants another request;
/// claims it.
fn claim(started: &Started, window: Window, begin: Instant, now: Instant) -> bool {
    match window {
        Window::Requests(total) => started.count.fetch_add(1, Ordering::Relaxed) < total,
        Window::Duration {
            seconds,
            min_requests,
        } => {
            if started.floor_met.load(Ordering::Relaxed) {
                return (now - begin).as_secs_f64() < seconds;
            }
            let n = started.count.fetch_add(1, Ordering::Relaxed);
            if n + 1 >= min_requests {
                started.floor_met.store(true, Ordering::Relaxed);
            }
            n < min_requests || (now - begin).as_secs_f64() < seconds
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::Sleeper;
    use std::time::Duration;

    fn run(window: Window, concurrency: usize) -> Measurement {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend: Arc<dyn Backend> = Arc::new(Sleeper {
            fail_every: Some(3),
            ..Sleeper::new(Duration::from_millis(5))
        });
        let req = Arc::new(Prepared::new("m", vec![]));
        rt.block_on(closed_loop(backend, req, concurrency, window))
    }

    #[test]
    fn request_windows_send_exactly_n_and_count_errors_by_kind() {
        let m = run(Window::Requests(30), 3);
        assert_eq!(m.ok() + m.failed(), 30);
        assert_eq!(m.errors.get("server"), Some(&10));
        assert!(m.error_messages["server"].contains("503"));
        // Every latency is at least the 5 ms the backend sleeps.
        assert!(m.histogram.min() >= 5_000, "{}", m.histogram.min());
        assert_eq!(m.samples.len(), 20);
    }

    /// A test double that notes the name of the thread each request runs on.
    struct ThreadNoter(std::sync::Mutex<std::collections::BTreeSet<String>>);

    #[async_trait::async_trait]
    impl Backend for ThreadNoter {
        fn describe(&self) -> contract::Description {
            Sleeper::new(Duration::ZERO).describe()
        }
        async fn health(&self) -> Result<(), contract::BackendError> {
            Ok(())
        }
        async fn infer(
            &self,
            _: &Prepared,
        ) -> Result<Vec<contract::Tensor>, contract::BackendError> {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            self.0.lock().unwrap().insert(name);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(vec![])
        }
    }

    #[test]
    fn load_tasks_run_on_the_load_threads_spread_over_all_of_them() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend = Arc::new(ThreadNoter(Default::default()));
        let req = Arc::new(Prepared::new("m", vec![]));
        let m = rt.block_on(closed_loop(backend.clone(), req, 4, Window::Requests(200)));
        assert_eq!(m.ok(), 200);
        let names = backend.0.lock().unwrap().clone();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(threads::LOAD_THREAD_NAME)),
            "{names:?}"
        );
        let used = 4.min(threads::count());
        assert_eq!(names.len(), used, "{names:?}");
        assert_eq!(m.client_threads, used);
    }

    /// A window whose future is dropped (the run was interrupted) stops its load tasks,
    /// so none of them keeps the backend (and a server it manages) alive.
    #[test]
    fn a_dropped_window_stops_its_load_tasks() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend = Arc::new(Sleeper::new(Duration::from_secs(600)));
        let req = Arc::new(Prepared::new("m", vec![]));
        let window = closed_loop(backend.clone(), req, 3, Window::Requests(3));
        let cut =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), window).await });
        assert!(cut.is_err(), "the window cannot end within 50 ms");
        // The load threads drop the aborted tasks as soon as they run; wait for that
        // (not a speed check: without the abort they would hold it for 10 minutes).
        let until = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&backend) > 1 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            Arc::strong_count(&backend),
            1,
            "a load task still holds the backend"
        );
    }

    #[test]
    fn duration_windows_honour_the_floor_on_requests() {
        let m = run(
            Window::Duration {
                seconds: 0.001,
                min_requests: 12,
            },
            2,
        );
        assert!(m.ok() + m.failed() >= 12);
        assert!(m.ok() + m.failed() <= 13);
    }
}
