//! How fast the open-loop generator can send, and its CPU cost per request.
//!
//! The backend is an in-process no-op (it answers at once), so everything measured is
//! the harness: scheduling a send, making it on the sender thread, timing it, recording
//! it in the collector. The
//! schedule asks for far more than can be sent (10 million per second), so the loop
//! runs flat out; criterion reports the time per window of [`SENDS`] sends (its
//! throughput line is the maximum send rate). Afterwards one long window is timed by
//! hand and the async worker threads' CPU time per request is printed. Figures above a
//! backend's own rate mean the client is not the bottleneck; compare with the
//! `client-bound` flag of real runs.

mod criterion_main;
mod doubles;

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Backend, Prepared};
use criterion::{criterion_group, Criterion, Throughput};
use harness::load::schedule::Schedule;
use harness::load::{cpu, open_loop, Arrival, Window, DEFAULT_MAX_IN_FLIGHT};

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

/// Sends per measured window.
const SENDS: u64 = 20_000;

fn open_loop_rate(c: &mut Criterion) {
    let rt = doubles::runtime(None);
    let backend: Arc<dyn Backend> = Arc::new(doubles::NoOp);
    let request = Arc::new(Prepared::new("m", vec![]));
    let mut group = c.benchmark_group("open_loop");
    group.throughput(Throughput::Elements(SENDS));
    group.sample_size(20);
    group.bench_function("max_send_rate", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let mut s = Schedule::new(1e7, Arrival::Constant, i);
                let t0 = Instant::now();
                let m = rt.block_on(open_loop(
                    backend.clone(),
                    request.clone(),
                    &mut s,
                    Window::Requests(SENDS),
                    DEFAULT_MAX_IN_FLIGHT,
                ));
                total += t0.elapsed();
                assert_eq!(m.ok(), SENDS);
            }
            total
        })
    });
    group.finish();

    // One long window by hand: sends per second and client CPU per request.
    let n = 200_000;
    let mut s = Schedule::new(1e7, Arrival::Poisson, 1);
    let cpu0 = cpu::client_cpu_time();
    let t0 = Instant::now();
    let m = rt.block_on(open_loop(
        backend,
        request,
        &mut s,
        Window::Requests(n),
        DEFAULT_MAX_IN_FLIGHT,
    ));
    let wall = t0.elapsed();
    let cpu1 = cpu::client_cpu_time();
    println!(
        "open loop against a no-op backend: {n} sends in {:.3} s = {:.0} sends/s on {} async worker threads",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        m.client_threads
    );
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        println!(
            "client CPU: {:.2} µs per request ({:.2} s of CPU)",
            (b - a).as_secs_f64() * 1e6 / n as f64,
            (b - a).as_secs_f64()
        );
    }
}

criterion_group!(benches, open_loop_rate);

fn main() {
    criterion_main::run(&[benches]);
}
