//! How close to its schedule the open loop sends.
//!
//! Send lag (scheduled send time to the moment the request leaves) at 100, 1,000 and
//! 10,000 sends per second, against an in-process no-op backend (the harness alone) and
//! against ONNX Runtime running the text-CNN at batch 1 (if its library loads: run
//! `scripts/setup`). Targets: mean <= 50 us, p99 <= 250 us. Then the open loop's p50 on
//! ONNX Runtime at 100 requests/s against the closed loop's p50 at concurrency 1, taken
//! in alternating chunks so the machine's drift hits both (target: within 10 %).
//!
//! The ground truth for that last pair is the bare engine: `Session::run` called
//! directly on one thread, paced on the same Poisson schedule (latency from the
//! scheduled time, as the open loop counts it) and back to back. The engine itself is
//! slower when requests come 10 ms apart (its thread pool has gone to sleep, its caches
//! are cold) than back to back, so the bench also prints harness/bare at each pacing:
//! what the harness adds, apart from what the engine does at that load. The bare engine
//! is paced once more with its thread spinning through the gaps instead of sleeping, so
//! the core never idles: what is left of its slowdown then comes from the time between
//! calls itself (caches gone cold), not from a core woken from idle. Last, the cost of
//! the hand-off to an engine's executor thread and back (two thread wake-ups), which
//! every in-process request through the harness pays and the bare engine does not.
//! Run it on an idle machine (`uptime`).

#[allow(dead_code)]
mod common;
mod doubles;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Backend, Prepared};
use fixtures::ModelId;
use harness::load::clock;
use harness::load::schedule::Schedule;
use harness::load::{self, Arrival, Measurement, OpenSpec, Window};

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

/// Seconds of sending per rate.
const SECONDS: f64 = 5.0;

/// An open loop at `rate` (Poisson) for `seconds`, windows of a second, merged.
fn open(
    rt: &tokio::runtime::Runtime,
    backend: &Arc<dyn Backend>,
    request: &Arc<Prepared>,
    rate: f64,
    seconds: f64,
    seed: u64,
) -> Measurement {
    let spec = OpenSpec {
        window: Window::Duration {
            seconds: 1.0_f64.min(seconds),
            min_requests: 1,
        },
        max_windows: Some(seconds.ceil() as usize),
        max_in_flight: load::DEFAULT_MAX_IN_FLIGHT,
    };
    let s = Schedule::new(rate, Arrival::Poisson, seed);
    doubles::open_windows(rt, backend, request, s, spec)
}

fn report(what: &str, rate: f64, m: &Measurement) {
    let p99 = Duration::from_nanos(m.lag.value_at_quantile(0.99));
    let ok = m.mean_lag() <= Duration::from_micros(50) && p99 <= Duration::from_micros(250);
    println!(
        "{what:<28} {rate:>6} sends/s: lag mean {:>7.1} us, p50 {:>7.1} us, p99 {:>7.1} us, max {:>8.1} us; {} sends, {} late, {} dropped  {}",
        m.mean_lag().as_secs_f64() * 1e6,
        m.lag.value_at_quantile(0.5) as f64 / 1e3,
        p99.as_secs_f64() * 1e6,
        m.max_lag.as_secs_f64() * 1e6,
        m.sends,
        m.late,
        m.dropped,
        if ok { "ok" } else { "MISSED (target mean <= 50 us, p99 <= 250 us)" }
    );
}

fn lags(
    rt: &tokio::runtime::Runtime,
    what: &str,
    backend: &Arc<dyn Backend>,
    request: &Arc<Prepared>,
) {
    for (i, rate) in [100.0, 1_000.0, 10_000.0].into_iter().enumerate() {
        let m = open(rt, backend, request, rate, SECONDS, i as u64);
        report(what, rate, &m);
    }
}

fn main() {
    harness::alloc::keep_freed_memory();
    let rt = doubles::runtime(None);
    let noop: Arc<dyn Backend> = Arc::new(doubles::NoOp);
    lags(
        &rt,
        "no-op backend",
        &noop,
        &Arc::new(Prepared::new("m", vec![])),
    );

    let (dir, input, threads) = common::text_cnn_batch_1();
    let ort = match adapter_onnxruntime::open(&common::options(&dir, threads)) {
        Ok(b) => b,
        Err(e) => {
            println!("onnxruntime text-CNN batch 1: not measured ({e})");
            return;
        }
    };
    let request = Arc::new(
        ort.prepare(ModelId::TextCnn.name(), vec![input.clone()])
            .expect("the request prepares"),
    );
    lags(&rt, "onnxruntime text-cnn b1", &ort, &request);

    // Open loop at 100/s against closed loop at c=1, and the bare engine paced the same
    // way and back to back, in alternating chunks.
    let mut bare_call = common::bare_onnxruntime_call(&dir, &input, threads);
    let [mut open_h, mut closed_h, mut paced_h, mut spun_h, mut b2b_h] =
        [(); 5].map(|_| load::histogram());
    for chunk in 0..6u64 {
        let m = open(&rt, &ort, &request, 100.0, 3.0, 100 + chunk);
        open_h.add(&m.histogram).expect("same bounds");
        let c = rt.block_on(load::closed_loop(
            ort.clone(),
            request.clone(),
            1,
            Window::Requests(300),
        ));
        closed_h.add(&c.histogram).expect("same bounds");
        for (gaps, into) in [(Gaps::Wait, &mut paced_h), (Gaps::Spin, &mut spun_h)] {
            bare_paced(&mut bare_call, 100.0, 300, 100 + chunk, gaps, into);
        }
        for _ in 0..300 {
            let t0 = Instant::now();
            std::hint::black_box(bare_call());
            b2b_h.saturating_record(t0.elapsed().as_micros() as u64);
        }
    }
    let p50 = |h: &hdrhistogram::Histogram<u64>| h.value_at_quantile(0.5) as f64;
    let (o, c, p, b) = (p50(&open_h), p50(&closed_h), p50(&paced_h), p50(&b2b_h));
    let spun = p50(&spun_h);
    println!(
        "onnxruntime text-cnn b1, p50 over {} requests each:\n  \
         open loop 100/s {o:.0} us, closed loop c=1 {c:.0} us: open/closed {:.3} (target within 10 %)\n  \
         bare engine paced 100/s {p:.0} us, back to back {b:.0} us: paced/back-to-back {:.3} (the engine's own)\n  \
         bare engine paced 100/s, its thread spinning through every gap {spun:.0} us: /back-to-back {:.3} \
         (the part of that not from sleeping)\n  \
         harness/bare: open loop {:.3}, closed loop {:.3}",
        open_h.len(),
        o / c,
        p / b,
        spun / b,
        o / p,
        c / b
    );
    let (hot, slept) = (handoff_round_trip(0), handoff_round_trip(1_000));
    println!(
        "  thread hand-off (what an engine's executor costs), p50 of a round trip between two \
         threads: back to back {hot:.0} us, the waiting thread idle 1 ms {slept:.0} us"
    );
}

/// The p50 (µs) of a round trip between two threads over `std::sync::mpsc`, the other
/// thread busy for `work_us` before it answers (not counted): what handing a request to
/// an engine's executor thread and its answer back costs in wake-ups, which the harness
/// pays on every in-process request and the bare engine does not.
fn handoff_round_trip(work_us: u64) -> f64 {
    let (to_worker, jobs) = std::sync::mpsc::channel::<()>();
    let (to_caller, answers) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        for () in jobs {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(work_us) {
                std::hint::spin_loop();
            }
            if to_caller.send(()).is_err() {
                return;
            }
        }
    });
    let mut h = load::histogram();
    for _ in 0..2_000 {
        let t0 = Instant::now();
        to_worker.send(()).expect("the worker runs");
        answers.recv().expect("the worker answers");
        let took = t0.elapsed().as_micros() as u64;
        h.saturating_record(took.saturating_sub(work_us));
    }
    drop(to_worker);
    worker.join().expect("the worker ends");
    h.value_at_quantile(0.5) as f64
}

/// How the bare engine's thread waits between calls.
#[derive(Clone, Copy)]
enum Gaps {
    /// As the harness's sender does: asleep, spinning only the last stretch.
    Wait,
    /// Spinning all the way, so the core never idles: what is left of the engine's
    /// slowdown then is not the sleep's (a core woken from idle), but its caches gone
    /// cold between calls (other work on the host, the spin loop itself).
    Spin,
}

/// `n` calls of the bare engine on this thread at `rate` (Poisson, `seed`), waiting
/// between them as `gaps` says, each latency from its scheduled time, recorded in µs
/// into `into`.
fn bare_paced(
    call: &mut impl FnMut() -> Vec<f32>,
    rate: f64,
    n: usize,
    seed: u64,
    gaps: Gaps,
    into: &mut hdrhistogram::Histogram<u64>,
) {
    let mut schedule = Schedule::new(rate, Arrival::Poisson, seed);
    let never = AtomicBool::new(false);
    // The sender's own spin margin, so the ground truth waits as the harness does.
    let spin = match gaps {
        Gaps::Wait => clock::spin_margin(schedule.mean_gap()),
        Gaps::Spin => Duration::MAX,
    };
    let start = Instant::now();
    for _ in 0..n {
        let due = start + Duration::from_secs_f64(schedule.next_offset());
        clock::wait_until(due, spin, &never);
        std::hint::black_box(call());
        into.saturating_record(due.elapsed().as_micros() as u64);
    }
}
