//! Validation: the open loop against queueing theory.
//!
//! The backend is a test double (`doubles::FifoServer`): ONE FIFO worker holding every
//! request for exactly D. Under the harness's loads it is a textbook queue, so its
//! latencies are known:
//!
//! - closed loop of c: every request waits for the c - 1 ahead of it: c x D;
//! - constant arrivals below capacity (D/D/1 at utilisation 0.5): nobody waits, the
//!   latency is the closed-loop (c = 1) latency;
//! - Poisson arrivals (M/D/1) at utilisation 0.5 and 0.8: mean by Pollaczek-Khinchine,
//!   `W = D + rho D / (2 (1 - rho))` (target: within 5 %), p50 and p90 from a seeded
//!   discrete-event simulation of the same queue, a million arrivals (target: 10 %).
//!
//! It prints expected against measured (mean, p50, p90) for each, the simulation of the
//! very arrivals the harness sent (the sample path's own luck, which the long-run
//! figures average out), and the open loop's send lag. `SERVEBENCH_QUEUEING_SCALE`
//! (default 1) scales the number of requests; about 3 minutes at 1. Run it on an idle
//! machine: a busy one stretches the double's service time.

mod doubles;

use std::sync::Arc;
use std::time::Duration;

use contract::{Backend, Prepared};
use doubles as queue;
use harness::load::schedule::Schedule;
use harness::load::{self, Arrival, Measurement, OpenSpec, Window};
use queue::FifoServer;

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

/// Service time of the double.
const D: Duration = Duration::from_millis(2);

/// Sends per window of the open loops.
const PER_WINDOW: u64 = 1000;

fn scale() -> f64 {
    std::env::var("SERVEBENCH_QUEUEING_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// Windows for about `n` requests (scaled), at least 2.
fn windows(n: f64) -> usize {
    ((n * scale() / PER_WINDOW as f64).round() as usize).max(2)
}

/// `windows` windows of an open loop, merged.
fn open_loop(
    rt: &tokio::runtime::Runtime,
    backend: &Arc<dyn Backend>,
    schedule: Schedule,
    windows: usize,
) -> Measurement {
    let spec = OpenSpec {
        window: Window::Requests(PER_WINDOW),
        max_windows: Some(windows),
        max_in_flight: load::DEFAULT_MAX_IN_FLIGHT,
    };
    let request = Arc::new(Prepared::new("m", vec![]));
    queue::open_windows(rt, backend, &request, schedule, spec)
}

fn closed_loop(
    rt: &tokio::runtime::Runtime,
    backend: &Arc<dyn Backend>,
    c: usize,
    n: u64,
) -> Measurement {
    let request = Arc::new(Prepared::new("m", vec![]));
    rt.block_on(load::closed_loop(
        backend.clone(),
        request,
        c,
        Window::Requests(n),
    ))
}

/// One row of the table.
struct Row {
    name: String,
    expected: [f64; 3],
    measured: [f64; 3],
    /// Simulated for the very arrivals sent (open loops).
    same_arrivals: Option<[f64; 3]>,
    /// Tolerances of mean and of p50/p90 (fractions).
    tolerance: (f64, f64),
    requests: u64,
    lag: Option<(Duration, Duration)>,
}

fn ms(v: [f64; 3]) -> String {
    format!("{:6.3} {:6.3} {:6.3}", v[0] * 1e3, v[1] * 1e3, v[2] * 1e3)
}

fn print(rows: &[Row]) {
    println!(
        "\n{:<28} {:>20}   {:>20}   {:>8} {:>8} {:>8}  {:>7}  {:>20}  {:>14}",
        "queue (D = 2 ms)",
        "expected mean/p50/p90",
        "measured mean/p50/p90",
        "mean",
        "p50",
        "p90",
        "verdict",
        "same arrivals sim",
        "lag mean/p99"
    );
    for r in rows {
        let dev: Vec<f64> = (0..3)
            .map(|i| r.measured[i] / r.expected[i] - 1.0)
            .collect();
        let ok = dev[0].abs() <= r.tolerance.0
            && dev[1].abs() <= r.tolerance.1
            && dev[2].abs() <= r.tolerance.1;
        println!(
            "{:<28} {:>20} ms {:>20} ms {:>+7.1}% {:>+7.1}% {:>+7.1}%  {:>7}  {:>20}  {:>14}",
            format!("{} ({} req)", r.name, r.requests),
            ms(r.expected),
            ms(r.measured),
            dev[0] * 100.0,
            dev[1] * 100.0,
            dev[2] * 100.0,
            if ok { "ok" } else { "MISSED" },
            r.same_arrivals.map(ms).unwrap_or_default(),
            r.lag
                .map(|(m, p)| format!("{} / {} us", m.as_micros(), p.as_micros()))
                .unwrap_or_default(),
        );
    }
    println!(
        "(tolerances: D/D/1 and closed loop 10 % on every figure; M/D/1 mean 5 % from Pollaczek-Khinchine, p50/p90 10 % from a 10^6-arrival simulation)"
    );
}

fn lag(m: &Measurement) -> Option<(Duration, Duration)> {
    Some((
        m.mean_lag(),
        Duration::from_nanos(m.lag.value_at_quantile(0.99)),
    ))
}

fn main() {
    harness::alloc::keep_freed_memory();
    // `cargo bench` passes --bench; nothing to parse.
    let rt = queue::runtime(Some(2));
    let server = Arc::new(FifoServer::new(D));
    let backend: Arc<dyn Backend> = server.clone();
    let d = D.as_secs_f64();
    let mut rows = Vec::new();

    // Closed loop of 1: the latency of one request with nobody ahead of it.
    let n1 = (2000.0 * scale()) as u64;
    let c1 = closed_loop(&rt, &backend, 1, n1);
    let c1_figures = queue::measured(&c1.histogram);
    rows.push(Row {
        name: "closed loop c=1".into(),
        expected: [d; 3],
        measured: c1_figures,
        same_arrivals: None,
        tolerance: (0.1, 0.1),
        requests: c1.ok(),
        lag: None,
    });

    // D/D/1 at 0.5: constant arrivals, half the capacity: the closed-loop latency.
    let rate = 0.5 / d;
    let m = open_loop(
        &rt,
        &backend,
        Schedule::new(rate, Arrival::Constant, 0),
        windows(2000.0),
    );
    rows.push(Row {
        name: "D/D/1 rho=0.5".into(),
        expected: c1_figures,
        measured: queue::measured(&m.histogram),
        same_arrivals: None,
        tolerance: (0.1, 0.1),
        requests: m.ok(),
        lag: lag(&m),
    });

    // M/D/1 at 0.5 and 0.8. The queue model takes the service time the double really
    // spent during that run (a little over D: its sleep wakes late) and adds the
    // hand-off to and from its worker that every request pays outside the queue (the
    // closed loop of one's mean less its service). With nominal D the model's p50 at
    // 0.5 sits exactly on the edge of the half of arrivals that wait for nobody, so 2 %
    // more service moved the measured p50 by 20 %.
    let handoff = (c1_figures[0] - server.mean_service().as_secs_f64()).max(0.0);
    let plus = |v: [f64; 3]| v.map(|x| x + handoff);
    let mut spent = d;
    for (rho, n, seed) in [(0.5, 15_000.0, 5u64), (0.8, 40_000.0, 8)] {
        let rate = rho / d;
        let w = windows(n);
        let before = server.services().len();
        let m = open_loop(
            &rt,
            &backend,
            Schedule::new(rate, Arrival::Poisson, seed),
            w,
        );
        let during = server.services().split_off(before);
        spent = during.iter().sum::<f64>() / during.len().max(1) as f64;
        let long = queue::summary(&queue::simulate(
            &queue::arrivals(rate, Arrival::Poisson, 1_000_003, 1_000_000),
            spent,
        ));
        let sent = queue::arrivals(rate, Arrival::Poisson, seed, m.ok() as usize);
        rows.push(Row {
            name: format!("M/D/1 rho={rho}"),
            expected: plus([queue::pk_mean(spent, rate * spent), long[1], long[2]]),
            measured: queue::measured(&m.histogram),
            same_arrivals: Some(plus(queue::summary(&queue::simulate(&sent, spent)))),
            tolerance: (0.05, 0.1),
            requests: m.ok(),
            lag: lag(&m),
        });
    }

    // Closed loop of 4: four service times.
    let c4 = closed_loop(&rt, &backend, 4, (2000.0 * scale()) as u64);
    rows.push(Row {
        name: "closed loop c=4".into(),
        expected: [4.0 * d; 3],
        measured: queue::measured(&c4.histogram),
        same_arrivals: None,
        tolerance: (0.1, 0.1),
        requests: c4.ok(),
        lag: None,
    });

    print(&rows);
    println!(
        "M/D/1 models: the double's service as spent in that run (0.8: {:.1} us; nominal \
         {} us), plus the hand-off, {:.1} us; the double's mean service over all: {:.1} us",
        spent * 1e6,
        D.as_micros(),
        handoff * 1e6,
        server.mean_service().as_secs_f64() * 1e6,
    );
}
