//! Measuring every point: interleaved rounds, each one window of every backend in a
//! freshly shuffled order, until every ratio's interval is as narrow as asked or the
//! budget is spent; then one result per point and backend.
//!
//! The budget is spent in two passes ([`super::budget`]). The first visits every point in
//! order: each backend is warmed up (never counted), then measured in rounds until the
//! point's ratios are precise or its share of the first pass is spent (half the budget,
//! split over the points left, so time one point did not use goes to the next). The
//! second pass spends what is left on the points whose ratios still need rounds, the
//! cheapest per ratio finished first: a visit warms up again and measures on the
//! backends of the ratios it was chosen to finish (a ratio needing far more rounds than
//! the others sits it out), and a point is visited again while its ratios need more
//! rounds and time is left. Rows are
//! written after the first visit and rewritten after the second, so an interruption keeps
//! what was measured.
//!
//! The first [`Measure::trials`] rounds of a point (at least 2) are a first stage: from
//! the spread of their paired ratios ([`crate::stats::paired`], Stein's two-stage
//! procedure) each backend gets the rounds its ratio needs for an interval within
//! `--target-precision`. That count is never revised down, so that the data never stop a
//! run at a lucky moment; it grows where later rounds vary more than the first stage's
//! (the interval then takes their spread) or rounds are set aside as disturbed
//! ([`crate::stats::paired::rounds_to_target`]). A backend that has its rounds sits the
//! next ones out, and the baseline runs while any backend still needs it. A round starts only while its foreseen length
//! (the last windows of the backends in it) fits before the visit's deadline, and never
//! more than [`Measure::max_windows`] rounds run. Duration windows keep a least number of
//! requests (`--min-requests`), so where requests are slow windows are sized by requests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Prepared;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::plan::{Measure, Plan, Point};
use super::Opened;
use crate::load::Measurement;
use crate::progress::Progress;
use crate::resources::{self, gpu::Gpus, Aggregate};
use crate::results::{Breakdown, Failed, PointResult};
use support::metrics::{self, Scraper};

use super::budget;
use super::failures::record_failure;
use super::summary::{breakdown, report, server_stats};
use super::warmup::warm_all;
use super::window::{affordable, lead_in, one_window, run_lead_in, window_for};
use crate::stats::bootstrap::Statistic;
use crate::stats::paired;
use crate::HarnessError;

/// Share of late sends above which an open-loop result is flagged.
pub const LATE_LIMIT: f64 = 0.01;

/// Rounds every point runs whatever the budget: an interval needs two.
pub const MIN_ROUNDS: usize = 2;

/// One backend's part in a point.
#[derive(Default)]
pub(super) struct Part {
    /// Its window in each round (`None`: it sat that round out).
    pub(super) windows: Vec<Option<Measurement>>,
    /// Server-side breakdowns of its windows, where the backend reports them.
    pub(super) servers: Vec<Breakdown>,
    /// How long its last window took, hand-over included: the forecast of its next.
    pub(super) last_cost: Duration,
    /// Rounds its ratio needs (from the first stage's spread, and more where later rounds
    /// vary more or were set aside; before the first stage is complete, as forecast from
    /// the rounds so far: [`paired::rounds_to_target`]; `None` before 2 rounds).
    pub(super) needed: Option<usize>,
    /// It has run the rounds it needs: it sits the next rounds out.
    pub(super) done: bool,
    /// It sits out (the rest of) the present visit: its ratio needs more rounds than the
    /// ones the second pass chose to finish first ([`budget::sits_out`]).
    pub(super) parked: bool,
    /// Mean latency of its requests in its last window, or before its first, of its
    /// warm-up's last requests (zero: unknown).
    pub(super) request_time: Duration,
    /// Resource readings during its windows (scope `not-visible` when none).
    pub(super) usage: Aggregate,
    /// Growth of its server's Prometheus counters over its windows.
    pub(super) metrics: BTreeMap<String, f64>,
    /// Failures outside its windows (warm-up, open-loop lead-ins) and their longest wait.
    pub(super) untimed: Measurement,
    /// The request timeout of its windows ([`limits::window_timeout`]).
    pub(super) request_timeout: Duration,
    /// Open loop: its in-flight cap ([`limits::in_flight_cap`]).
    pub(super) max_in_flight: Option<usize>,
}

impl Part {
    /// Latency samples by round (empty where it sat the round out), for the intervals.
    pub(super) fn samples(&self) -> Vec<Vec<Vec<u64>>> {
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
    let scraper = opened
        .iter()
        .any(|o| o.metrics_url.is_some())
        .then(Scraper::new)
        .transpose()
        .map_err(|source| HarnessError::Backend {
            backend: "metrics".into(),
            source,
        })?;
    progress.start(points.len() as u64);
    let base = opened.iter().position(|o| o.name == baseline);
    let begin = Instant::now();
    let site = |p: usize, deadline: Instant| Site {
        plan,
        p,
        point: &points[p],
        base,
        deadline,
        gpus: gpus.as_ref(),
        progress,
        begin,
        scraper: scraper.as_ref(),
    };
    // First pass: every point in order, warmed up and measured until its ratios are
    // precise or its share of the first pass is spent.
    let mut states: Vec<PointState> = Vec::with_capacity(points.len());
    for (p, point) in points.iter().enumerate() {
        let left = cfg.time_budget.saturating_sub(begin.elapsed());
        let share = left.mul_f64(budget::FIRST_PASS) / (points.len() - p) as u32;
        progress.step(&point_label(point));
        let mut requests: Vec<Option<Arc<Prepared>>> = Vec::new();
        let inputs = point.model.inputs(point.batch, plan.seed);
        for o in opened {
            if excluded.contains(&(point.model.name().to_string(), o.name.clone()))
                || failed.iter().any(|f| f.backend == o.name)
            {
                requests.push(None);
                continue;
            }
            let prepared = o
                .backend
                .prepare(point.model.name(), inputs.clone())
                .map_err(|source| HarnessError::Backend {
                    backend: o.name.clone(),
                    source,
                })?;
            requests.push(Some(Arc::new(prepared)));
        }
        let mut state = PointState::new(requests);
        visit(
            &site(p, Instant::now() + share),
            opened,
            &mut state,
            rows,
            failed,
        )
        .await?;
        states.push(state);
    }
    // Second pass: what is left of the budget goes to the points whose ratios still need
    // rounds, the cheapest per unfinished ratio first, each re-warmed before its rounds,
    // and visited again while its ratios still need rounds (a visit that ran none is
    // not repeated).
    let mut stalled = vec![false; states.len()];
    loop {
        for state in states.iter_mut() {
            for (i, o) in opened.iter().enumerate() {
                if failed.iter().any(|f| f.backend == o.name) {
                    state.requests[i] = None;
                }
            }
        }
        let costs: Vec<(usize, budget::Cost)> = states
            .iter()
            .enumerate()
            .filter(|&(p, _)| !stalled[p])
            .filter_map(|(p, s)| {
                let cost = budget::remaining(&s.parts, base, &s.active(), s.rounds, cfg)?;
                Some((p, cost))
            })
            .collect();
        let left = cfg.time_budget.saturating_sub(begin.elapsed());
        let Some((p, cost)) = budget::next_visit(&costs, left) else {
            break;
        };
        let state = &mut states[p];
        progress.step(&format!("{} (again)", point_label(&points[p])));
        let deadline = Instant::now() + cost.total.mul_f64(budget::SLACK).min(left);
        let before = state.rounds;
        state.within = Some(cost.within);
        park(&mut state.parts, base, state.within, before, cfg);
        visit(&site(p, deadline), opened, state, rows, failed).await?;
        state.within = None;
        park(&mut state.parts, base, None, state.rounds, cfg);
        stalled[p] = state.rounds == before;
    }
    Ok(())
}

/// One visit to a point: warm-ups (failures recorded), rounds until its deadline or
/// its ratios are precise, then its rows written (or rewritten).
async fn visit(
    at: &Site<'_>,
    opened: &[Opened],
    state: &mut PointState,
    rows: &mut Vec<PointResult>,
    failed: &mut Vec<Failed>,
) -> Result<(), HarnessError> {
    for (i, failure) in warm_all(at, opened, state).await {
        let place = point_label(at.point);
        record_failure(
            at.plan,
            at.progress,
            failed,
            &opened[i].name,
            &place,
            failure,
        )?;
    }
    run_rounds(at, opened, state).await;
    report(at, opened, state, rows, failed)
}

/// "text-cnn batch 1 c=1".
pub(super) fn point_label(point: &Point) -> String {
    format!(
        "{} batch {} {}",
        point.model,
        point.batch,
        point.load.label()
    )
}

/// One point's state between the passes.
pub(super) struct PointState {
    /// Each backend's prepared request (`None`: not measured here, or it failed).
    pub(super) requests: Vec<Option<Arc<Prepared>>>,
    /// Each backend's windows and readings so far.
    pub(super) parts: Vec<Part>,
    /// Where each backend's row is in the results.
    pub(super) rows: Vec<Option<usize>>,
    /// Rounds run so far.
    pub(super) rounds: usize,
    /// The present visit finishes the ratios short of at most this many rounds; the
    /// others sit it out ([`budget::sits_out`]). `None`: every ratio runs (first pass).
    pub(super) within: Option<usize>,
}

/// Marks the parts that sit out a visit finishing the ratios short of at most `within`
/// rounds (none when `None`), after `rounds` rounds.
fn park(
    parts: &mut [Part],
    base: Option<usize>,
    within: Option<usize>,
    rounds: usize,
    cfg: &Measure,
) {
    for (i, part) in parts.iter_mut().enumerate() {
        part.parked =
            Some(i) != base && within.is_some_and(|w| budget::sits_out(part, rounds, w, cfg));
    }
}

impl PointState {
    fn new(requests: Vec<Option<Arc<Prepared>>>) -> PointState {
        let n = requests.len();
        PointState {
            requests,
            parts: (0..n).map(|_| Part::default()).collect(),
            rows: vec![None; n],
            rounds: 0,
            within: None,
        }
    }

    /// Which backends are still measured here.
    fn active(&self) -> Vec<bool> {
        self.requests.iter().map(Option::is_some).collect()
    }
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

/// Where a point is measured: the plan, its index, the baseline's index, its deadline.
pub(super) struct Site<'a> {
    pub(super) plan: &'a Plan,
    pub(super) p: usize,
    pub(super) point: &'a Point,
    pub(super) base: Option<usize>,
    pub(super) deadline: Instant,
    /// The machine's GPUs, sampled with each window (`None`: no NVIDIA GPU visible).
    pub(super) gpus: Option<&'a Gpus>,
    /// Where the run says what it is measuring.
    pub(super) progress: &'a Progress,
    /// When measuring began: the time budget counts from there.
    pub(super) begin: Instant,
    /// Reads the servers' metrics endpoints (`None`: no backend has one).
    pub(super) scraper: Option<&'a Scraper>,
}

impl Site<'_> {
    /// `o`'s server's counters for the point's model (labelled with the name the server
    /// serves it under, `text-cnn_int8` for a conversion), where it has a metrics
    /// endpoint that answers.
    pub(super) async fn counters(&self, o: &Opened) -> Option<BTreeMap<String, f64>> {
        let (scraper, url) = (self.scraper?, o.metrics_url.as_deref()?);
        let served = o.backend.served_name(self.point.model.name());
        scraper.counters(url, &served).await.ok()
    }

    /// Says that `backend` is being measured, with the time left in the budget.
    pub(super) fn announce(&self, backend: &str) {
        let left = self
            .plan
            .measure
            .time_budget
            .saturating_sub(self.begin.elapsed());
        self.progress.at(backend, left);
    }
}

/// Rounds until every interval is within the target, or out of rounds or time: the
/// first stage's rounds for every backend, then those each ratio needs.
async fn run_rounds(at: &Site<'_>, opened: &[Opened], state: &mut PointState) {
    let (plan, point, cfg) = (at.plan, at.point, &at.plan.measure);
    let window = window_for(cfg);
    let base_runs = at.base.is_some_and(|b| state.requests[b].is_some());
    let parts = &mut state.parts;
    let first = state.rounds;
    while state.rounds < cfg.max_windows.max(MIN_ROUNDS) {
        let round = state.rounds;
        // A ratio whose count grew past the visit's (later rounds spread more) sits out the rest.
        park(parts, at.base, state.within, round, cfg);
        let active: Vec<usize> = (0..opened.len())
            .filter(|&i| state.requests[i].is_some())
            .filter(|&i| !parts[i].parked)
            .filter(|&i| round < cfg.first_stage() || needed(i, at.base, parts))
            .collect();
        if active.is_empty() {
            break;
        }
        let foreseen: Duration = active.iter().map(|&i| parts[i].last_cost).sum();
        // A first visit runs at least the rounds an interval needs; a second, at least one.
        let least = if first == 0 { MIN_ROUNDS } else { first + 1 };
        if round >= least && Instant::now() + foreseen > at.deadline {
            break;
        }
        for i in round_order(opened.len(), plan.seed, at.p, round) {
            let (o, Some(request)) = (&opened[i], &state.requests[i]) else {
                continue;
            };
            if !active.contains(&i) {
                continue;
            }
            let seed = plan.seed ^ ((at.p as u64) << 32) ^ ((round as u64) << 16) ^ i as u64;
            at.announce(&o.name);
            let t0 = Instant::now();
            let timeout = parts[i].request_timeout;
            // Sized from the backend's latest request time: its last window's, or before
            // its first, its warm-up's last requests'.
            let window = affordable(window, parts[i].request_time, point.load, cfg);
            let lead = lead_in(window, parts[i].request_time, point.load);
            if let Some(warm) = run_lead_in(o, point.load, request, lead, timeout).await {
                parts[i].untimed.merge_errors(&warm);
            }
            let before = server_stats(o, point.model.name()).await;
            let counted = at.counters(o).await;
            let loaded = o
                .info
                .loaded_memory_mb
                .map_or(0, |mb| (mb * 1024.0 * 1024.0) as u64);
            let sampler = resources::watch(&o.backend.served_by(), loaded, at.gpus);
            let limits = (timeout, parts[i].max_in_flight);
            let (m, lead_in) = one_window(o, point.load, request, window, seed, limits).await;
            let usage = sampler.map(|s| s.stop().1);
            let after = server_stats(o, point.model.name()).await;
            let part = &mut parts[i];
            if let (Some(b), Some(a)) = (counted, at.counters(o).await) {
                for (k, d) in metrics::deltas(&b, &a) {
                    *part.metrics.entry(k).or_insert(0.0) += d;
                }
            }
            if let Some(lead_in) = lead_in {
                part.untimed.merge_errors(&lead_in);
            }
            if let Some(u) = usage {
                part.usage.merge(&u);
            }
            part.servers.extend(breakdown(before, after));
            part.last_cost = t0.elapsed();
            if m.ok() > 0 {
                part.request_time = Duration::from_micros(m.histogram.mean() as u64);
            }
            part.windows.resize_with(round + 1, || None);
            part.windows[round] = Some(m);
        }
        state.rounds += 1;
        let base_samples = at.base.filter(|_| base_runs).map(|b| parts[b].samples());
        for (i, part) in parts.iter_mut().enumerate() {
            if Some(i) == at.base {
                continue;
            }
            // Without a baseline there is no ratio to make precise.
            let Some(b) = &base_samples else {
                part.done = round + 1 >= cfg.first_stage();
                continue;
            };
            let a = part.samples();
            // Before the first stage is complete, a forecast (never under the first stage,
            // so no backend is done before it).
            part.needed = paired::rounds_to_target(
                &a,
                b,
                Statistic::P50,
                cfg.first_stage(),
                cfg.target_precision,
            );
            let rounds = paired::log_ratios(&a, b, Statistic::P50).len();
            part.done = part.needed.is_some_and(|n| rounds >= n);
        }
    }
}

/// A backend runs in a round while its ratio needs it: it has not yet run the rounds its
/// ratio needs and does not sit the visit out, or (the baseline) another such has not.
pub(super) fn needed(i: usize, base: Option<usize>, parts: &[Part]) -> bool {
    let short = |p: &Part| !p.done && !p.parked;
    if Some(i) == base {
        parts
            .iter()
            .enumerate()
            .any(|(k, p)| Some(k) != base && short(p))
    } else {
        short(&parts[i])
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_parked_ratio_sits_the_visit_out_and_the_baseline_runs_only_for_the_others() {
        let part = |done: bool, parked: bool| Part {
            done,
            parked,
            ..Part::default()
        };
        let parts = vec![part(false, false), part(false, true), part(true, false)];
        assert!(!needed(1, Some(0), &parts), "parked");
        assert!(!needed(2, Some(0), &parts), "done");
        assert!(!needed(0, Some(0), &parts), "nobody needs the baseline");
        let parts = vec![part(false, false), part(false, true), part(false, false)];
        assert!(needed(2, Some(0), &parts));
        assert!(
            needed(0, Some(0), &parts),
            "the baseline runs for backend 2"
        );
    }
}
