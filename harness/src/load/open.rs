//! The open-loop executor.
//!
//! Sends go out at their scheduled times ([`Schedule`]) whether or not earlier answers
//! came back; each send is its own task. Latency is measured from the **scheduled** send
//! time, not the actual one, so time a send spent waiting behind a slow client or a
//! saturated runtime is counted (the coordinated-omission correction of wrk2 and MLPerf
//! LoadGen's Server scenario). Every send's lag behind its schedule is recorded; a send
//! more than [`super::LATE_AFTER`] late counts as late.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Backend, Prepared};
use tokio::task::JoinSet;

use super::schedule::Schedule;
use super::{cpu, Measurement, Recorder, Window};

/// Sends `request` on `schedule` until `window` ends, then waits for every answer.
/// A duration window stops sending at its end (but not before `min_requests` sends).
pub async fn open_loop(
    backend: Arc<dyn Backend>,
    request: Arc<Prepared>,
    schedule: &mut Schedule,
    window: Window,
) -> Measurement {
    schedule.restart();
    let cpu0 = cpu::ClientCpu::now();
    let begin = Instant::now();
    let mut sender = Recorder::new(0);
    let mut answers = Recorder::new(1);
    let mut in_flight = JoinSet::new();
    let mut sent = 0u64;
    loop {
        let offset = schedule.next_offset();
        let more = match window {
            Window::Requests(n) => sent < n,
            Window::Duration {
                seconds,
                min_requests,
            } => sent < min_requests || offset < seconds,
        };
        if !more {
            break;
        }
        let scheduled = begin + Duration::from_secs_f64(offset);
        tokio::time::sleep_until(tokio::time::Instant::from_std(scheduled)).await;
        sender.send(Instant::now().saturating_duration_since(scheduled));
        let (backend, request) = (backend.clone(), request.clone());
        in_flight.spawn(async move {
            let result = backend.infer(&request).await.map(|_| ());
            (scheduled.elapsed(), result)
        });
        sent += 1;
        while let Some(done) = in_flight.try_join_next() {
            let (latency, result) = done.expect("request task does not panic");
            answers.record(latency, result);
        }
    }
    while let Some(done) = in_flight.join_next().await {
        let (latency, result) = done.expect("request task does not panic");
        answers.record(latency, result);
    }
    let mut m = answers.finish();
    m.merge(&sender.finish(), 0);
    m.wall = begin.elapsed();
    cpu0.finish_into(&mut m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::Sleeper;
    use crate::load::Arrival;

    fn run(backend: Sleeper, rate: f64, n: u64, rt: tokio::runtime::Runtime) -> Measurement {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let req = Arc::new(Prepared::new("m", vec![]));
        rt.block_on(async move {
            let mut s = Schedule::new(rate, Arrival::Constant, 1);
            open_loop(backend, req, &mut s, Window::Requests(n)).await
        })
    }

    #[test]
    fn a_slow_backend_does_not_slow_the_sends() {
        // 50 ms per request at 100 sends/s: five answers are outstanding at any time; a
        // closed loop of one would need 2.5 s, the open loop about 0.5 s + 50 ms.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let m = run(Sleeper::new(Duration::from_millis(50)), 100.0, 50, rt);
        assert_eq!(m.ok(), 50);
        assert_eq!(m.sends, 50);
        assert!(m.wall < Duration::from_millis(1500), "{:?}", m.wall);
        assert!(m.histogram.min() >= 50_000, "{}", m.histogram.min());
        // Sends are not held back by answers (on a loaded machine some start late).
        assert!(m.late < m.sends / 2, "{} late sends", m.late);
    }

    #[test]
    fn latency_counts_from_the_scheduled_send_time() {
        // A test double that blocks the only runtime thread for 30 ms per request while
        // sends are due every 10 ms: the sender falls further behind with every send.
        // Timed from the actual send, every request would take 30 ms; timed from the
        // schedule, the last ones carry the ~20 ms x n they waited to go out.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slow = Sleeper {
            blocking: true,
            ..Sleeper::new(Duration::from_millis(30))
        };
        let m = run(slow, 100.0, 20, rt);
        assert_eq!(m.ok(), 20);
        assert!(m.late >= 15, "{} late sends", m.late);
        assert!(m.max_lag >= Duration::from_millis(250), "{:?}", m.max_lag);
        assert!(
            m.histogram.max() >= 280_000,
            "slowest {} µs: the wait before sending is not counted",
            m.histogram.max()
        );
        assert!(m.histogram.min() >= 30_000);
        assert_eq!(m.client_threads, 1);
    }
}
