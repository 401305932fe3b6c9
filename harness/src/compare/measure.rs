//! Measuring every point: trials in a shuffled, interleaved order, each a warm-up and a
//! series of windows; then one result per point and backend from the stable windows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Prepared, ServerStats};
use fixtures::ModelId;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::plan::{Measure, Plan, Point};
use super::Opened;
use crate::load::series::{self, Series, SeriesSpec};
use crate::load::{cpu, Load, Measurement, Window};
use crate::progress::Progress;
use crate::resources::{self, gpu::Gpus, Aggregate, Scope};
use crate::results::{Breakdown, ErrorCount, MeasurementInfo, PointResult};
use crate::stats::{self, Latency};
use crate::HarnessError;

/// A warm-up stops after this long (but not before one request).
const WARMUP_CAP: Duration = Duration::from_secs(1);

/// Later trials skip their warm-up when one request of the first trial's warm-up took
/// longer than this: the engine has seen the shape, and repeating it would double the
/// cost of the slowest points (text-CNN batch 1000 takes seconds a request).
const REWARM_LIMIT: Duration = Duration::from_secs(1);

/// Share of late sends above which an open-loop result is flagged.
pub const LATE_LIMIT: f64 = 0.01;

/// One backend's trial at one point.
struct Trial {
    series: Series,
    server: Option<Breakdown>,
    /// Mean latency of the warm-up requests (`None`: no warm-up ran).
    warm_mean: Option<Duration>,
    /// Resource readings during the series (`None`: not visible).
    usage: Option<Aggregate>,
}

/// Measures every planned point on every opened backend not `excluded` for its model.
pub async fn measure_all(
    plan: &Plan,
    opened: &[Opened],
    excluded: &BTreeSet<(String, String)>,
    progress: &Progress,
) -> Result<Vec<PointResult>, HarnessError> {
    let (points, cfg) = (&plan.points, &plan.measure);
    let gpus = match Gpus::open() {
        Ok(g) => Some(g),
        Err(_) => {
            progress.note(resources::gpu::NO_GPU);
            None
        }
    };
    progress.start((points.len() * opened.len() * cfg.trials) as u64);
    let mut rows = Vec::new();
    for (p, point) in points.iter().enumerate() {
        let input = fixtures::inputs::batch(point.model, point.batch, plan.seed);
        let mut requests: Vec<Option<Arc<Prepared>>> = Vec::new();
        for o in opened {
            if excluded.contains(&(point.model.name().to_string(), o.name.clone())) {
                requests.push(None);
                continue;
            }
            let prepared = o
                .backend
                .prepare(point.model.name(), vec![input.clone()])
                .map_err(|source| HarnessError::Backend {
                    backend: o.name.clone(),
                    source,
                })?;
            requests.push(Some(Arc::new(prepared)));
        }
        let mut trials: Vec<Vec<Trial>> = opened.iter().map(|_| Vec::new()).collect();
        for t in 0..cfg.trials {
            for i in trial_order(opened.len(), plan.seed, p, t) {
                let o = &opened[i];
                progress.step(&format!(
                    "{} batch {} {} on {} (trial {}/{})",
                    point.model,
                    point.batch,
                    point.load.label(),
                    o.name,
                    t + 1,
                    cfg.trials
                ));
                let Some(request) = &requests[i] else {
                    continue;
                };
                let seed = plan.seed ^ ((p as u64) << 32) ^ ((t as u64) << 16) ^ i as u64;
                let warm = trials[i]
                    .first()
                    .and_then(|t: &Trial| t.warm_mean)
                    .is_none_or(|d| d <= REWARM_LIMIT);
                let t = trial(cfg, o, point, request, seed, warm, gpus.as_ref()).await?;
                trials[i].push(t);
            }
        }
        for (o, ts) in opened.iter().zip(trials) {
            if ts.is_empty() {
                continue;
            }
            rows.push(summarise(o, point, ts, plan.seed));
        }
    }
    Ok(rows)
}

/// The order backends are measured in during trial `t` of point `p`: a seeded shuffle.
pub fn trial_order(n: usize, seed: u64, p: usize, t: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED ^ ((p as u64) << 20) ^ t as u64);
    order.shuffle(&mut rng);
    order
}

/// Warm-up (never counted), then a series of windows.
async fn trial(
    cfg: &Measure,
    o: &Opened,
    point: &Point,
    request: &Arc<Prepared>,
    seed: u64,
    warm: bool,
    gpus: Option<&Gpus>,
) -> Result<Trial, HarnessError> {
    let warm = if warm {
        warm_up(cfg, o, point.load, request).await
    } else {
        Measurement::empty()
    };
    if warm.ok() == 0 && warm.failed() > 0 {
        let (kind, msg) = warm
            .error_messages
            .iter()
            .next()
            .expect("an error was counted");
        return Err(HarnessError::NothingToMeasure(format!(
            "{} failed every warm-up request on {} batch {} ({kind}): {msg}",
            o.name, point.model, point.batch
        )));
    }
    let spec = SeriesSpec {
        window: cfg.window,
        max_windows: cfg.max_windows,
        budget: cfg.budget,
        tolerance: cfg.stability,
        percentile: cfg.percentile,
        max_in_flight: cfg.max_in_flight,
    };
    let before = server_stats(o, point.model).await;
    let loaded = o
        .info
        .loaded_memory_mb
        .map_or(0, |mb| (mb * 1024.0 * 1024.0) as u64);
    let sampler = resources::watch(&o.backend.served_by(), loaded, gpus);
    let series = series::run(&o.backend, request, point.load, spec, seed).await;
    let usage = sampler.map(|s| s.stop().1);
    let after = server_stats(o, point.model).await;
    Ok(Trial {
        series,
        server: breakdown(before, after),
        warm_mean: (warm.ok() > 0).then(|| Duration::from_micros(warm.histogram.mean() as u64)),
        usage,
    })
}

/// Warm-up requests under the point's load: `--warmup` of them, or by default the
/// concurrency (closed loop) or a tenth of a second of sends (open loop), at least 2;
/// cut short after [`WARMUP_CAP`], but never fewer than one.
async fn warm_up(cfg: &Measure, o: &Opened, load: Load, request: &Arc<Prepared>) -> Measurement {
    let count = cfg.warmup.unwrap_or(match load {
        Load::Closed { concurrency } => (concurrency as u64).max(2),
        Load::Open { request_rate, .. } => ((request_rate * 0.1).ceil() as u64).max(2),
    });
    let chunk = match load {
        Load::Closed { concurrency } => concurrency as u64,
        Load::Open { .. } => count,
    }
    .clamp(1, count.max(1));
    let begin = Instant::now();
    let mut total = Measurement::empty();
    let mut schedule = None;
    let mut done = 0;
    while done < count && (done == 0 || begin.elapsed() < WARMUP_CAP) {
        let n = chunk.min(count - done);
        let m = series::window(
            &o.backend,
            request,
            load,
            &mut schedule,
            Window::Requests(n),
        )
        .await;
        total.merge(&m, done);
        done += n;
    }
    total
}

/// One result from every trial's reported windows.
fn summarise(o: &Opened, point: &Point, trials: Vec<Trial>, seed: u64) -> PointResult {
    let mut merged = Measurement::empty();
    let mut samples = Vec::new();
    let mut info = MeasurementInfo {
        trials: trials.len(),
        ..Default::default()
    };
    let (mut sends, mut late, mut lag) = (0u64, 0u64, Duration::ZERO);
    let (mut max_lag, mut lags, mut dropped) = (Duration::ZERO, crate::load::lag_histogram(), 0);
    let mut client_cpu: Option<f64> = None;
    for (t, trial) in trials.iter().enumerate() {
        let s = &trial.series;
        info.stable_trials += s.stable as usize;
        info.windows += s.windows.len();
        for w in &s.windows {
            info.total_requests += w.ok() + w.failed();
            info.total_wall_s += w.wall.as_secs_f64();
            sends += w.sends;
            late += w.late;
            lag += w.total_lag;
            max_lag = max_lag.max(w.max_lag);
            lags.add(&w.lag).expect("same bounds");
            dropped += w.dropped;
        }
        let mut this_trial = Measurement::empty();
        let mut trial_samples = Vec::new();
        for (k, w) in s.reported().iter().enumerate() {
            this_trial.merge(w, seed ^ (t * 64 + k) as u64);
            trial_samples.push(w.samples.clone());
        }
        samples.push(trial_samples);
        if let Some(load) = this_trial.client_load() {
            client_cpu = Some(client_cpu.map_or(load, |c: f64| c.max(load)));
        }
        info.reported_windows += s.reported().len();
        merged.merge(&this_trial, seed ^ t as u64);
    }
    info.stable = info.stable_trials == info.trials;
    info.sends = sends;
    info.late_sends = late;
    info.late_fraction = if sends > 0 {
        late as f64 / sends as f64
    } else {
        0.0
    };
    let open = matches!(point.load, Load::Open { .. });
    if open && sends > 0 {
        info.mean_lag_ms = lag.as_secs_f64() * 1000.0 / sends as f64;
        info.max_lag_ms = max_lag.as_secs_f64() * 1000.0;
        // The histogram rounds up within its precision; the exact maximum bounds it.
        info.p99_lag_ms = (lags.value_at_quantile(0.99) as f64 / 1e6).min(info.max_lag_ms);
    }
    info.dropped_sends = dropped;
    info.client_cpu = client_cpu;
    let late_flag = info.late_fraction > LATE_LIMIT;
    info.client_bound = client_cpu.is_some_and(|c| c > cpu::SATURATED);

    let latency = Latency::from_histogram(&merged.histogram, &merged.slowest);
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
    let seconds = merged.wall.as_secs_f64();
    let (throughput_rps, samples_per_s) = stats::throughput(merged.completed, point.batch, seconds);
    let servers: Vec<Breakdown> = trials.iter().filter_map(|t| t.server).collect();
    let mut usage = Aggregate::new(Scope::NotVisible);
    for u in trials.iter().filter_map(|t| t.usage.as_ref()) {
        usage.merge(u);
    }
    PointResult {
        model: point.model.name().into(),
        backend: o.name.clone(),
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
        error_kinds: merged
            .errors
            .iter()
            .map(|(kind, &count)| ErrorCount {
                kind: kind.clone(),
                count,
                example: merged.error_messages.get(kind).cloned().unwrap_or_default(),
            })
            .collect(),
        duration_s: seconds,
        throughput_rps,
        samples_per_s,
        latency_ms: latency,
        server: mean_breakdown(&servers),
        measurement: info,
        resources: usage.usage(),
        flags,
        window_histograms: crate::results::encode_windows(&samples),
        samples,
    }
}

async fn server_stats(o: &Opened, model: ModelId) -> Option<ServerStats> {
    o.backend.server_stats(model.name()).await.ok().flatten()
}

/// Per-request server-side averages over a series, from counters read before and after.
fn breakdown(before: Option<ServerStats>, after: Option<ServerStats>) -> Option<Breakdown> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn trial_orders_are_seeded_shuffles() {
        let a = trial_order(6, 1, 0, 0);
        assert_eq!(a, trial_order(6, 1, 0, 0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        // Different trials get different orders (for some of the first few).
        assert!((1..5).any(|t| trial_order(6, 1, 0, t) != a));
    }
}
