//! How close to its schedule the open loop sends.
//!
//! Send lag (scheduled send time to the moment the request leaves) at 100, 1,000 and
//! 10,000 sends per second, against an in-process no-op backend (the harness alone) and
//! against ONNX Runtime running the text-CNN at batch 1 (if its library loads: run
//! `scripts/setup`). Targets: mean <= 50 us, p99 <= 250 us. Then the open loop's p50 on
//! ONNX Runtime at 100 requests/s against the closed loop's p50 at concurrency 1, taken
//! in alternating chunks so the machine's drift hits both (target: within 10 %).
//! Run it on an idle machine (`uptime`).

#[allow(dead_code)]
mod common;
mod doubles;

use std::sync::Arc;
use std::time::Duration;

use contract::{Backend, Prepared};
use fixtures::ModelId;
use harness::load::schedule::Schedule;
use harness::load::{self, Arrival, Measurement, OpenSpec, Window};

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
        ort.prepare(ModelId::TextCnn.name(), vec![input])
            .expect("the request prepares"),
    );
    lags(&rt, "onnxruntime text-cnn b1", &ort, &request);

    // Open loop at 100/s against closed loop at c=1, in alternating chunks.
    let (mut open_h, mut closed_h) = (load::histogram(), load::histogram());
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
    }
    let (o, c) = (
        open_h.value_at_quantile(0.5) as f64,
        closed_h.value_at_quantile(0.5) as f64,
    );
    println!(
        "onnxruntime text-cnn b1: open loop 100/s p50 {:.0} us ({} requests), closed loop c=1 p50 {:.0} us ({} requests): ratio {:.3} (target within 10 %)",
        o,
        open_h.len(),
        c,
        closed_h.len(),
        o / c
    );
}
