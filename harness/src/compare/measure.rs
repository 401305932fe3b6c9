//! Measuring every point: interleaved rounds, each one window of every backend in a
//! freshly shuffled order, until every ratio's interval is as narrow as asked or the
//! point's share of the time budget is spent; then one result per point and backend.
//!
//! The budget is split over the points up front (`--time-budget` / points); a point
//! that reaches its target early leaves the rest to the points after it. Within a
//! point, every backend is warmed up once (never counted), then measured in rounds.
//! After [`Measure::trials`] rounds (at least 2) each ratio's interval is computed from
//! the paired rounds ([`crate::stats::paired`]); a backend whose interval is within
//! `--precision` sits the next rounds out, and the baseline runs while any backend still
//! needs it. A round starts only while its foreseen length (the last windows of the
//! backends in it) fits before the point's deadline, and never more than
//! [`Measure::max_windows`] rounds run. Duration windows keep a least number of
//! requests (`--min-requests`), so where requests are slow windows are sized by
//! requests.

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
use crate::load::schedule::Schedule;
use crate::load::series;
use crate::load::{closed_loop, cpu, Load, Measurement, OpenLoop, OpenSpec, Window};
use crate::progress::Progress;
use crate::resources::{self, gpu::Gpus, Aggregate};
use crate::results::{Breakdown, ErrorCount, Failed, MeasurementInfo, PointResult};
use crate::stats::bootstrap::Statistic;
use crate::stats::stability::{self, WindowFigures};
use crate::stats::{self, paired, Latency};
use crate::HarnessError;

/// A warm-up stops after this long (but not before one request).
const WARMUP_CAP: Duration = Duration::from_secs(1);

/// Share of late sends above which an open-loop result is flagged.
pub const LATE_LIMIT: f64 = 0.01;

/// Rounds every point runs whatever the budget: an interval needs two.
pub const MIN_ROUNDS: usize = 2;

/// One backend's part in a point.
#[derive(Default)]
struct Part {
    /// Its window in each round (`None`: it sat that round out).
    windows: Vec<Option<Measurement>>,
    /// Server-side breakdowns of its windows, where the backend reports them.
    servers: Vec<Breakdown>,
    /// How long its last window took, hand-over included: the forecast of its next.
    last_cost: Duration,
    /// Its ratio's interval is within the target: it sits the next rounds out.
    done: bool,
    /// Mean latency of its warm-up requests (zero: unknown).
    request_time: Duration,
    /// Resource readings during its windows (scope `not-visible` when none).
    usage: Aggregate,
}

impl Part {
    /// Latency samples by round (empty where it sat the round out), for the intervals.
    fn samples(&self) -> Vec<Vec<Vec<u64>>> {
        self.windows
            .iter()
            .map(|w| w.iter().map(|m| m.samples.clone()).collect())
            .collect()
    }
}

/// Measures every planned point on every opened backend not `excluded` for its model,
/// pushing each point's rows to `rows` as soon as the point is done (so what was
/// measured survives an interruption). A backend that fails (not one warm-up request
/// answered, or every request of its windows failed) is recorded in `failed` and not
/// measured after that point; with `--fail-fast` the failure is the run's error.
pub async fn measure_all(
    plan: &Plan,
    opened: &[Opened],
    baseline: &str,
    excluded: &BTreeSet<(String, String)>,
    progress: &Progress,
    rows: &mut Vec<PointResult>,
    failed: &mut Vec<Failed>,
) -> Result<(), HarnessError> {
    let (points, cfg) = (&plan.points, &plan.measure);
    let gpus = match Gpus::open() {
        Ok(g) => Some(g),
        Err(_) => {
            progress.note(resources::gpu::NO_GPU);
            None
        }
    };
    progress.start(points.len() as u64);
    let base = opened.iter().position(|o| o.name == baseline);
    let begin = Instant::now();
    for (p, point) in points.iter().enumerate() {
        // This point's share of what is left: time earlier points did not use goes on.
        let left = cfg.time_budget.saturating_sub(begin.elapsed());
        let deadline = Instant::now() + left / (points.len() - p) as u32;
        progress.step(&format!(
            "{} batch {} {}",
            point.model,
            point.batch,
            point.load.label()
        ));
        let input = fixtures::inputs::batch(point.model, point.batch, plan.seed);
        let mut requests: Vec<Option<Arc<Prepared>>> = Vec::new();
        for o in opened {
            if excluded.contains(&(point.model.name().to_string(), o.name.clone()))
                || failed.iter().any(|f| f.backend == o.name)
            {
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
        let at = Site {
            plan,
            p,
            point,
            base,
            deadline,
            gpus: gpus.as_ref(),
        };
        let place = format!(
            "{} batch {} {}",
            point.model,
            point.batch,
            point.load.label()
        );
        let (parts, warm_failures) = measure_point(&at, opened, &mut requests).await;
        for (i, failure) in warm_failures {
            record_failure(plan, progress, failed, &opened[i].name, &place, failure)?;
        }
        for ((o, part), request) in opened.iter().zip(parts).zip(&requests) {
            if request.is_none() {
                continue;
            }
            if let Some(failure) = all_failed(&part) {
                record_failure(plan, progress, failed, &o.name, &place, failure)?;
            }
            rows.push(summarise(o, point, part, cfg, plan.seed));
        }
    }
    Ok(())
}

/// [`measure_all`] with nothing excluded and no progress output: for benches that
/// measure backends opened by hand (test doubles). A failing backend is an error.
pub async fn measure_quietly(
    plan: &Plan,
    opened: &[Opened],
    baseline: &str,
) -> Result<Vec<PointResult>, HarnessError> {
    let progress = Progress::new(true);
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    measure_all(
        plan,
        opened,
        baseline,
        &BTreeSet::new(),
        &progress,
        &mut rows,
        &mut failed,
    )
    .await?;
    match failed.first() {
        Some(f) => Err(HarnessError::NothingToMeasure(format!(
            "{} failed on {}: {}",
            f.backend, f.at, f.reason
        ))),
        None => Ok(rows),
    }
}

/// Why a backend failed at a point: one sentence, and its errors by kind.
struct Failure {
    reason: String,
    error_kinds: Vec<ErrorCount>,
}

fn error_kinds(m: &Measurement) -> Vec<ErrorCount> {
    m.errors
        .iter()
        .map(|(kind, &count)| ErrorCount {
            kind: kind.clone(),
            count,
            example: m.error_messages.get(kind).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A failure when not one request of the backend's windows was answered.
fn all_failed(part: &Part) -> Option<Failure> {
    let mut merged = Measurement::empty();
    for (k, w) in part.windows.iter().flatten().enumerate() {
        merged.merge(w, k as u64);
    }
    if merged.ok() > 0 || merged.failed() == 0 {
        return None;
    }
    let (kind, msg) = merged.error_messages.iter().next()?;
    Some(Failure {
        reason: format!("every request failed ({kind}): {msg}"),
        error_kinds: error_kinds(&merged),
    })
}

fn record_failure(
    plan: &Plan,
    progress: &Progress,
    failed: &mut Vec<Failed>,
    backend: &str,
    at: &str,
    f: Failure,
) -> Result<(), HarnessError> {
    if plan.fail_fast {
        return Err(HarnessError::NothingToMeasure(format!(
            "{backend} failed on {at}: {}",
            f.reason
        )));
    }
    progress.note(&format!(
        "{backend} failed on {at}: {}; measuring the others",
        f.reason
    ));
    failed.push(Failed {
        backend: backend.to_string(),
        at: at.to_string(),
        reason: f.reason,
        error_kinds: f.error_kinds,
    });
    Ok(())
}

/// Where a point is measured: the plan, its index, the baseline's index, its deadline.
struct Site<'a> {
    plan: &'a Plan,
    p: usize,
    point: &'a Point,
    base: Option<usize>,
    deadline: Instant,
    /// The machine's GPUs, sampled with each window (`None`: no NVIDIA GPU visible).
    gpus: Option<&'a Gpus>,
}

/// Warm-ups, then rounds until every interval is within the target, or out of rounds
/// or time. A backend whose warm-up gets no answer is left out of the point (its
/// request set to `None`) and returned with why.
async fn measure_point(
    at: &Site<'_>,
    opened: &[Opened],
    requests: &mut [Option<Arc<Prepared>>],
) -> (Vec<Part>, Vec<(usize, Failure)>) {
    let (plan, point, cfg) = (at.plan, at.point, &at.plan.measure);
    let mut parts: Vec<Part> = opened.iter().map(|_| Part::default()).collect();
    let mut failures = Vec::new();
    for i in round_order(opened.len(), plan.seed, at.p, usize::MAX) {
        let (o, Some(request)) = (&opened[i], &requests[i]) else {
            continue;
        };
        let warm = warm_up(cfg, o, point.load, request).await;
        if warm.ok() > 0 {
            parts[i].request_time = Duration::from_micros(warm.histogram.mean() as u64);
        }
        if warm.ok() == 0 && warm.failed() > 0 {
            if let Some((kind, msg)) = warm.error_messages.iter().next() {
                failures.push((
                    i,
                    Failure {
                        reason: format!("every warm-up request failed ({kind}): {msg}"),
                        error_kinds: error_kinds(&warm),
                    },
                ));
            }
            requests[i] = None;
        }
    }
    let window = window_for(cfg);
    let windows: Vec<Window> = parts
        .iter()
        .map(|part| affordable(window, part.request_time, point.load, cfg))
        .collect();
    let base_runs = at.base.is_some_and(|b| requests[b].is_some());
    for round in 0..cfg.max_windows.max(MIN_ROUNDS) {
        let active: Vec<usize> = (0..opened.len())
            .filter(|&i| requests[i].is_some())
            .filter(|&i| round < MIN_ROUNDS.max(cfg.trials) || needed(i, at.base, &parts))
            .collect();
        if active.is_empty() {
            break;
        }
        let foreseen: Duration = active.iter().map(|&i| parts[i].last_cost).sum();
        if round >= MIN_ROUNDS && Instant::now() + foreseen > at.deadline {
            break;
        }
        for i in round_order(opened.len(), plan.seed, at.p, round) {
            let (o, Some(request)) = (&opened[i], &requests[i]) else {
                continue;
            };
            if !active.contains(&i) {
                continue;
            }
            let seed = plan.seed ^ ((at.p as u64) << 32) ^ ((round as u64) << 16) ^ i as u64;
            let t0 = Instant::now();
            let before = server_stats(o, point.model).await;
            let loaded = o
                .info
                .loaded_memory_mb
                .map_or(0, |mb| (mb * 1024.0 * 1024.0) as u64);
            let sampler = resources::watch(&o.backend.served_by(), loaded, at.gpus);
            let m = one_window(cfg, o, point.load, request, windows[i], seed).await;
            let usage = sampler.map(|s| s.stop().1);
            let after = server_stats(o, point.model).await;
            let part = &mut parts[i];
            if let Some(u) = usage {
                part.usage.merge(&u);
            }
            part.servers.extend(breakdown(before, after));
            part.last_cost = t0.elapsed();
            part.windows.resize_with(round + 1, || None);
            part.windows[round] = Some(m);
        }
        if round + 1 >= MIN_ROUNDS.max(cfg.trials) {
            let base_samples = at.base.filter(|_| base_runs).map(|b| parts[b].samples());
            for (i, part) in parts.iter_mut().enumerate() {
                if Some(i) == at.base {
                    continue;
                }
                // Without a baseline there is no ratio to make precise.
                part.done = base_samples.as_ref().is_none_or(|b| {
                    paired::ratio_interval(&part.samples(), b, Statistic::P50, 1.0)
                        .is_some_and(|ci| ci.precision(1.0) <= cfg.precision)
                });
            }
        }
    }
    (parts, failures)
}

/// A backend runs in a round while its ratio needs it: its own interval is still too
/// wide, or (the baseline) any other's is.
fn needed(i: usize, base: Option<usize>, parts: &[Part]) -> bool {
    if Some(i) == base {
        parts
            .iter()
            .enumerate()
            .any(|(k, p)| Some(k) != base && !p.done)
    } else {
        !parts[i].done
    }
}

/// The window each backend runs: a duration window no longer than its share of the
/// point over the least number of rounds (its least number of requests still holds).
fn window_for(cfg: &Measure) -> Window {
    match cfg.window {
        Window::Duration {
            seconds,
            min_requests,
        } => {
            let share = cfg.backend_budget.as_secs_f64() / cfg.trials.max(MIN_ROUNDS) as f64;
            Window::Duration {
                seconds: if share > 0.0 {
                    seconds.min(share)
                } else {
                    seconds
                },
                min_requests,
            }
        }
        w @ Window::Requests(_) => w,
    }
}

/// Least requests in a window however short the budget, so that no row's figures rest
/// on a request or two a round.
pub const FLOOR_REQUESTS: u64 = 2;

/// `window` for a backend whose requests take `request_time`: where its share of the
/// point cannot pay for [`MIN_ROUNDS`] windows of `--min-requests` requests, fewer
/// requests a window (at least [`FLOOR_REQUESTS`]), so a slow point keeps to its budget
/// instead of spending that of the points after it.
fn affordable(window: Window, request_time: Duration, load: Load, cfg: &Measure) -> Window {
    let Window::Duration {
        seconds,
        min_requests,
    } = window
    else {
        return window;
    };
    let per_request = request_time.as_secs_f64() / load.concurrency().unwrap_or(1) as f64;
    let share = cfg.backend_budget.as_secs_f64() / MIN_ROUNDS as f64;
    let fits = if per_request > 0.0 {
        (share / per_request).floor() as u64
    } else {
        min_requests
    };
    Window::Duration {
        seconds,
        min_requests: min_requests.min(fits.max(FLOOR_REQUESTS)),
    }
}

/// One backend's window of one round. A closed loop runs it on its own; an open loop
/// starts an arrival process, lets one window of it pass uncounted (so the backend's
/// queue reaches its steady state), counts the next, and drains.
async fn one_window(
    cfg: &Measure,
    o: &Opened,
    load: Load,
    request: &Arc<Prepared>,
    window: Window,
    seed: u64,
) -> Measurement {
    match load {
        Load::Closed { concurrency } => {
            closed_loop(o.backend.clone(), request.clone(), concurrency, window).await
        }
        Load::Open {
            request_rate,
            arrival,
        } => {
            let spec = OpenSpec {
                window,
                max_windows: Some(2),
                max_in_flight: cfg.max_in_flight,
            };
            let schedule = Schedule::new(request_rate, arrival, seed);
            let mut lp = OpenLoop::start(o.backend.clone(), request.clone(), schedule, spec);
            let _lead_in = lp.next_window().await;
            let m = lp.next_window().await.unwrap_or_else(Measurement::empty);
            lp.finish().await;
            m
        }
    }
}

/// The order backends are measured in during round `r` of point `p`: a seeded shuffle
/// (`usize::MAX`: the warm-ups' order).
pub fn round_order(n: usize, seed: u64, p: usize, r: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED ^ ((p as u64) << 20) ^ r as u64);
    order.shuffle(&mut rng);
    order
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

/// One result from every window of a backend at a point.
fn summarise(o: &Opened, point: &Point, part: Part, cfg: &Measure, seed: u64) -> PointResult {
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
    // perf_analyzer's rule on the backend's last windows (of the last rounds it ran).
    let figs: Vec<WindowFigures> = windows
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
        server: mean_breakdown(&part.servers),
        measurement: info,
        resources: part.usage.usage(),
        flags,
        window_histograms: crate::results::encode_windows(&part.samples()),
        samples: part.samples(),
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
    fn slow_requests_get_fewer_per_window_when_the_budget_is_short() {
        let cfg = Measure {
            trials: 5,
            window: Window::Duration {
                seconds: 0.1,
                min_requests: 5,
            },
            max_windows: 100,
            precision: 0.05,
            time_budget: Duration::from_secs(30),
            backend_budget: Duration::from_secs(2),
            stability: 0.1,
            percentile: 50.0,
            warmup: None,
            max_in_flight: 1024,
        };
        let closed = Load::Closed { concurrency: 1 };
        let min =
            |t_ms: u64| match affordable(cfg.window, Duration::from_millis(t_ms), closed, &cfg) {
                Window::Duration { min_requests, .. } => min_requests,
                Window::Requests(_) => unreachable!(),
            };
        // 1 s a round for this backend: 5 requests of 10 ms fit, 250 ms ones only 4.
        assert_eq!((min(10), min(250), min(0)), (5, 4, 5));
        // However slow, 2 a window.
        assert_eq!(min(5000), FLOOR_REQUESTS);
    }

    #[test]
    fn round_orders_are_seeded_shuffles() {
        let a = round_order(6, 1, 0, 0);
        assert_eq!(a, round_order(6, 1, 0, 0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        // Different rounds get different orders (for some of the first few).
        assert!((1..5).any(|t| round_order(6, 1, 0, t) != a));
    }
}
