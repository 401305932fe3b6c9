//! One row per backend and point: the windows a backend ran at a point summed up, with
//! the server-side breakdown (queue, compute) of those windows where the server reports it.

use super::failures::{all_failed, error_kinds, record_failure};
use super::measure::{point_label, Part, PointState, Site, LATE_LIMIT};
use super::plan::{Measure, Point};
use super::Opened;
use crate::load::{cpu, series, Load, Measurement};
use crate::results::{is_stall, Breakdown, Efficiency, Failed, MeasurementInfo, PointResult};
use crate::stats::stability::{self, WindowFigures};
use crate::stats::{self, Latency};
use crate::HarnessError;
use contract::ServerStats;

/// One result from every window of a backend at a point.
pub(super) fn summarise(
    o: &Opened,
    point: &Point,
    part: &Part,
    cfg: &Measure,
    seed: u64,
) -> PointResult {
    let windows: Vec<&Measurement> = part.windows.iter().flatten().collect();
    let mut merged = Measurement::empty();
    let mut info = MeasurementInfo {
        trials: windows.len(),
        windows: windows.len(),
        reported_windows: windows.len(),
        ..Default::default()
    };
    let mut client_cpu = None::<f64>;
    for (k, w) in windows.iter().enumerate() {
        info.total_requests += w.ok() + w.failed();
        info.total_wall_s += w.wall.as_secs_f64();
        if let Some(load) = w.client_load() {
            client_cpu = Some(client_cpu.map_or(load, |c| c.max(load)));
        }
        merged.merge(w, seed ^ k as u64);
    }
    // perf_analyzer's rule on three consecutive groups of the backend's windows.
    let figs: Vec<WindowFigures> = thirds(&windows, seed)
        .iter()
        .map(|w| series::figures(w, cfg.percentile))
        .collect();
    info.stable = stability::is_stable(&figs, cfg.stability);
    info.stable_trials = info.stable as usize;
    let (sends, late) = (merged.sends, merged.late);
    info.sends = sends;
    info.late_sends = late;
    info.late_fraction = if sends > 0 {
        late as f64 / sends as f64
    } else {
        0.0
    };
    let open = matches!(point.load, Load::Open { .. });
    if open && sends > 0 {
        info.mean_lag_ms = merged.total_lag.as_secs_f64() * 1000.0 / sends as f64;
        info.max_lag_ms = merged.max_lag.as_secs_f64() * 1000.0;
        // The histogram rounds up within its precision; the exact maximum bounds it.
        info.p99_lag_ms = (merged.lag.value_at_quantile(0.99) as f64 / 1e6).min(info.max_lag_ms);
    }
    let dropped = merged.dropped;
    info.dropped_sends = dropped;
    info.client_cpu = client_cpu;
    let late_flag = info.late_fraction > LATE_LIMIT;
    info.client_bound = client_cpu.is_some_and(|c| c > cpu::SATURATED);

    let latency = Latency::from_histogram(&merged.histogram, &merged.slowest);
    let longest = merged.longest_wait.max(part.untimed.longest_wait);
    info.longest_wait_ms = longest.as_secs_f64() * 1000.0;
    info.request_timeout_ms = part.request_timeout.as_millis() as u64;
    info.max_in_flight = part.max_in_flight;
    let stall = is_stall(info.longest_wait_ms, latency.as_ref().map(|l| l.p50));
    let mut flags = Vec::new();
    if !info.stable {
        flags.push("unstable".to_string());
    }
    if info.client_bound {
        flags.push("client-bound".into());
    }
    if late_flag {
        flags.push("late-sends".into());
    }
    if dropped > 0 {
        flags.push("dropped-sends".into());
    }
    if latency
        .as_ref()
        .is_some_and(|l| l.few_samples.iter().any(|p| p == "p99"))
    {
        flags.push("few-samples".into());
    }
    if stall {
        flags.push("stall".into());
    }
    let seconds = merged.wall.as_secs_f64();
    let usage = part.usage.usage();
    let (throughput_rps, samples_per_s) = stats::throughput(merged.completed, point.batch, seconds);
    PointResult {
        model: point.model.name().into(),
        backend: o.name.clone(),
        precision: o.precision.to_string(),
        batch_size: point.batch,
        load: point.load.label(),
        concurrency: point.load.concurrency(),
        request_rate: point.load.request_rate(),
        arrival: match point.load {
            Load::Open { arrival, .. } => Some(arrival),
            Load::Closed { .. } => None,
        },
        workers: o.info.workers,
        requests: merged.ok(),
        errors: merged.failed(),
        error_kinds: error_kinds(&merged),
        untimed_errors: part.untimed.failed(),
        untimed_error_kinds: error_kinds(&part.untimed),
        duration_s: seconds,
        throughput_rps,
        samples_per_s,
        latency_ms: latency,
        server: mean_breakdown(&part.servers),
        measurement: info,
        efficiency: Efficiency::of(samples_per_s, &usage),
        server_metrics: part.metrics.clone(),
        resources: usage,
        flags,
        window_histograms: crate::results::encode_windows(&part.samples()),
        samples: part.samples(),
    }
}

/// The windows in [`stability::WINDOWS`] consecutive groups of near-equal size, each
/// merged (fewer windows: each on its own). perf_analyzer compares single windows of
/// thousands of requests; ours are short slices of interleaved rounds, a few requests
/// each where requests are slow, and three single windows of five requests differ by more
/// than 10 % from sampling alone. Groups compare the start, middle and end of the
/// measurement, which is the drift the flag is about.
fn thirds(windows: &[&Measurement], seed: u64) -> Vec<Measurement> {
    let n = windows.len();
    let groups = stability::WINDOWS;
    if n < groups {
        return windows.iter().map(|w| (*w).clone()).collect();
    }
    (0..groups)
        .map(|g| {
            let mut m = Measurement::empty();
            for (k, w) in windows[g * n / groups..(g + 1) * n / groups]
                .iter()
                .enumerate()
            {
                m.merge(w, seed ^ k as u64);
            }
            m
        })
        .collect()
}

pub(super) async fn server_stats(o: &Opened, model: &str) -> Option<ServerStats> {
    o.backend.server_stats(model).await.ok().flatten()
}

/// Per-request server-side averages over a series, from counters read before and after.
pub(super) fn breakdown(
    before: Option<ServerStats>,
    after: Option<ServerStats>,
) -> Option<Breakdown> {
    let (b, a) = (before?, after?);
    let n = a.requests.checked_sub(b.requests).filter(|&n| n > 0)? as f64;
    let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / n / 1e6;
    Some(Breakdown {
        queue_ms: per(b.queue_ns, a.queue_ns),
        compute_input_ms: per(b.compute_input_ns, a.compute_input_ns),
        compute_infer_ms: per(b.compute_infer_ns, a.compute_infer_ns),
        compute_output_ms: per(b.compute_output_ns, a.compute_output_ns),
    })
}

/// The trials' breakdowns averaged.
fn mean_breakdown(all: &[Breakdown]) -> Option<Breakdown> {
    if all.is_empty() {
        return None;
    }
    let n = all.len() as f64;
    let avg = |f: fn(&Breakdown) -> f64| all.iter().map(f).sum::<f64>() / n;
    Some(Breakdown {
        queue_ms: avg(|b| b.queue_ms),
        compute_input_ms: avg(|b| b.compute_input_ms),
        compute_infer_ms: avg(|b| b.compute_infer_ms),
        compute_output_ms: avg(|b| b.compute_output_ms),
    })
}

/// Writes (or rewrites, after the second pass) each backend's row of the point, and
/// records a backend every request of which failed.
pub(super) fn report(
    at: &Site<'_>,
    opened: &[Opened],
    state: &mut PointState,
    rows: &mut Vec<PointResult>,
    failed: &mut Vec<Failed>,
) -> Result<(), HarnessError> {
    let (plan, point) = (at.plan, at.point);
    for (i, o) in opened.iter().enumerate() {
        if state.requests[i].is_none() && state.rows[i].is_none() {
            continue;
        }
        let part = &state.parts[i];
        if part.windows.iter().flatten().next().is_none() && state.rows[i].is_none() {
            continue;
        }
        if !failed.iter().any(|f| f.backend == o.name) {
            if let Some(failure) = all_failed(part) {
                record_failure(
                    plan,
                    at.progress,
                    failed,
                    &o.name,
                    &point_label(point),
                    failure,
                )?;
            }
        }
        let row = summarise(o, point, part, &plan.measure, plan.seed);
        match state.rows[i] {
            Some(k) => rows[k] = row,
            None => {
                state.rows[i] = Some(rows.len());
                rows.push(row);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Recorder;
    use std::time::Duration;

    /// A window of `n` requests of `ms` milliseconds each, back to back.
    fn window(n: u64, ms: u64) -> Measurement {
        let mut r = Recorder::new(1);
        for _ in 0..n {
            r.record(
                Duration::from_millis(ms),
                Ok::<(), contract::BackendError>(()),
            );
        }
        let mut m = r.finish();
        m.wall = Duration::from_millis(n * ms);
        m.completed = n;
        m
    }

    fn stable(windows: &[Measurement]) -> bool {
        let refs: Vec<&Measurement> = windows.iter().collect();
        let figs: Vec<WindowFigures> = thirds(&refs, 1)
            .iter()
            .map(|w| series::figures(w, 50.0))
            .collect();
        stability::is_stable(&figs, 0.1)
    }

    #[test]
    fn stability_compares_the_start_middle_and_end_of_the_windows() {
        // Six windows whose p50 jumps by 30 % from one to the next but evens out over
        // pairs: the thirds agree (single windows would not).
        let noisy: Vec<Measurement> = [10, 13, 10, 13, 10, 13].map(|ms| window(4, ms)).into();
        assert!(stable(&noisy));
        // A drift from 10 to 13 ms over the run: the last third is slower.
        let drift: Vec<Measurement> = [10, 10, 11, 12, 13, 13].map(|ms| window(4, ms)).into();
        assert!(!stable(&drift));
        // Three windows are compared one by one; two cannot be judged.
        assert!(stable(&[10, 10, 10].map(|ms| window(4, ms))));
        assert!(!stable(&[10, 13, 10].map(|ms| window(4, ms))));
        assert!(!stable(&[10, 10].map(|ms| window(4, ms))));
    }

    #[test]
    fn breakdown_divides_by_requests_in_the_window() {
        let b = ServerStats {
            requests: 10,
            queue_ns: 1_000_000,
            ..Default::default()
        };
        let a = ServerStats {
            requests: 20,
            queue_ns: 21_000_000,
            compute_infer_ns: 50_000_000,
            ..Default::default()
        };
        let d = breakdown(Some(b), Some(a)).unwrap();
        assert_eq!((d.queue_ms, d.compute_infer_ms), (2.0, 5.0));
        assert!(breakdown(Some(a), Some(a)).is_none());
        assert!(breakdown(None, Some(a)).is_none());
        let m = mean_breakdown(&[d, Breakdown { queue_ms: 4.0, ..d }]).unwrap();
        assert_eq!(m.queue_ms, 3.0);
    }
}
