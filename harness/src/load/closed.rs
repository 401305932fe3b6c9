//! The closed-loop executor.
//!
//! `concurrency` tasks each keep exactly one request in flight: send, wait for the
//! answer, send again. Latency is timed around each [`Backend::infer`] call: two clock
//! reads a request, the second of which also says whether a duration window has ended
//! (it is the time the next request is claimed at). Each task has its own
//! [`Recorder`]; they are merged when the window ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use contract::{Backend, Prepared};

use super::{cpu, Measurement, Recorder, Window};

/// Runs `request` in a closed loop at `concurrency` until `window` ends.
pub async fn closed_loop(
    backend: Arc<dyn Backend>,
    request: Arc<Prepared>,
    concurrency: usize,
    window: Window,
) -> Measurement {
    let started = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu::ClientCpu::now();
    let begin = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|i| {
            let (backend, request, started) = (backend.clone(), request.clone(), started.clone());
            tokio::spawn(async move {
                let mut rec = Recorder::new(i as u64 + 1);
                let mut now = begin;
                while claim(&started, window, begin, now) {
                    let t0 = Instant::now();
                    let result = backend.infer(&request).await;
                    now = Instant::now();
                    rec.record(now - t0, result);
                }
                rec.finish()
            })
        })
        .collect();
    let mut total = Measurement::empty();
    for (i, task) in tasks.into_iter().enumerate() {
        let part = task.await.expect("load task does not panic");
        total.merge(&part, i as u64);
    }
    total.wall = begin.elapsed();
    total.sends = total.ok() + total.failed();
    total.completed = total.ok();
    cpu0.finish_into(&mut total);
    total
}

/// True while the window (which began at `begin`; it is `now`) wants another request;
/// claims it.
fn claim(started: &AtomicU64, window: Window, begin: Instant, now: Instant) -> bool {
    let n = started.fetch_add(1, Ordering::Relaxed);
    match window {
        Window::Requests(total) => n < total,
        Window::Duration {
            seconds,
            min_requests,
        } => n < min_requests || (now - begin).as_secs_f64() < seconds,
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
