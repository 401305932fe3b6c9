//! Each backend against the baseline, point by point, with bootstrap 95 % intervals.

use std::collections::BTreeMap;

use super::measure::MIN_ROUNDS;
use crate::results::{Miss, PointResult, Ratio};
use crate::stats::bootstrap::{self, Interval, Statistic};
use crate::stats::{self, paired};

/// Every backend's p50 and mean against the baseline's at the same point (model, batch
/// size and load), one ratio per point, each with a 95 % interval from the rounds both
/// ran in ([`crate::stats::paired`], whose first `first_stage` rounds fixed how many
/// rounds it got): the ratio is then the geometric mean of the per-round ratios. With
/// fewer than two such rounds, the ratio of the pooled figures with an interval from a
/// bootstrap of the samples ([`crate::stats::bootstrap`]), which misses the drift between
/// rounds; `seed` makes those reproducible.
/// Each cell's achieved half-width is compared with `target_precision` (the run's target).
pub fn ratios(
    results: &[PointResult],
    baseline: &str,
    seed: u64,
    first_stage: usize,
    target_precision: f64,
) -> Vec<Ratio> {
    let base: BTreeMap<(&str, usize, &str), &PointResult> = results
        .iter()
        .filter(|r| r.backend == baseline && r.latency_ms.is_some())
        .map(|r| ((r.model.as_str(), r.batch_size, r.load.as_str()), r))
        .collect();
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.backend != baseline)
        .filter_map(|(i, r)| {
            let b = base.get(&(r.model.as_str(), r.batch_size, r.load.as_str()))?;
            let (l, bl) = (r.latency_ms.as_ref()?, b.latency_ms.as_ref()?);
            let seed = seed ^ (i as u64).wrapping_mul(0x9E37_79B9);
            let pooled = (stats::ratio(l.p50, bl.p50)?, stats::ratio(l.mean, bl.mean)?);
            let (p50_ratio, p50, rounds, set_aside) =
                interval(r, b, Statistic::P50, pooled.0, first_stage, seed)?;
            let (mean_ratio, mean, _, _) =
                interval(r, b, Statistic::Mean, pooled.1, first_stage, seed + 1)?;
            let achieved = (p50.high - p50.low) / (2.0 * p50_ratio);
            let target_met = rounds >= MIN_ROUNDS && achieved <= target_precision;
            // Time ran out where the ratio did not get the rounds its first stage asked
            // for; otherwise its rounds varied more than that stage foresaw (and what
            // they asked for since did not fit).
            let needed = paired::rounds_needed(
                &r.samples,
                &b.samples,
                Statistic::P50,
                first_stage,
                target_precision,
            );
            let short = needed.is_none_or(|n| rounds < n);
            // What the measuring loop asked for last (its forecast, or its growth where
            // later rounds spread more): what more time would have been spent on.
            let to_target = paired::rounds_to_target(
                &r.samples,
                &b.samples,
                Statistic::P50,
                first_stage,
                target_precision,
            );
            Some(Ratio {
                model: r.model.clone(),
                batch_size: r.batch_size,
                load: r.load.clone(),
                backend: r.backend.clone(),
                workers: r.workers,
                baseline: baseline.to_string(),
                p50_ratio,
                ci_low: p50.low,
                ci_high: p50.high,
                clear_difference: !p50.contains(1.0),
                mean_ratio,
                mean_ci_low: mean.low,
                mean_ci_high: mean.high,
                half_width: achieved,
                target_met,
                missed: (!target_met).then_some(if short { Miss::Time } else { Miss::Unstable }),
                rounds,
                set_aside_rounds: set_aside,
                rounds_to_target: to_target,
            })
        })
        .collect()
}

/// `r`'s statistic over `b`'s, its 95 % interval, the paired rounds behind it and how
/// many of them were set aside as disturbed ([`crate::stats::disturbed`]): from
/// the paired rounds where there are two or more, else `pooled` with a bootstrap of the
/// samples (0 or 1 rounds). Either way the interval has the spread between two opens of a
/// backend in it ([`crate::stats::paired`]'s text).
fn interval(
    r: &PointResult,
    b: &PointResult,
    s: Statistic,
    pooled: f64,
    first_stage: usize,
    seed: u64,
) -> Option<(f64, Interval, usize, usize)> {
    match paired::ratio_interval(&r.samples, &b.samples, s, first_stage) {
        Some(p) => Some((
            p.center,
            Interval {
                low: p.low,
                high: p.high,
            },
            p.rounds,
            p.set_aside,
        )),
        None => {
            let rounds = paired::log_ratios(&r.samples, &b.samples, s).len();
            let i = bootstrap::ratio_interval(&r.samples, &b.samples, s, seed)?;
            let (low, high) = paired::widen_for_opens(pooled, i.low, i.high);
            Some((pooled, Interval { low, high }, rounds, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::MeasurementInfo;
    use crate::stats::Latency;

    fn point(backend: &str, batch: usize, scale: u64) -> PointResult {
        // Three rounds of one window of latencies 1..=100 times `scale` µs, plus a
        // round-to-round wobble.
        let samples: Vec<Vec<Vec<u64>>> = (0..3)
            .map(|r| vec![(1..=100u64).map(|x| x * scale + r * x % 3).collect()])
            .collect();
        let mut h = crate::load::histogram();
        for w in samples.iter().flatten() {
            for &x in w {
                h.record(x).unwrap();
            }
        }
        PointResult {
            model: "text-cnn".into(),
            backend: backend.into(),
            precision: "fp32".into(),
            batch_size: batch,
            load: "c=1".into(),
            concurrency: Some(1),
            request_rate: None,
            arrival: None,
            workers: 1,
            requests: 300,
            errors: 0,
            error_kinds: vec![],
            untimed_errors: 0,
            untimed_error_kinds: vec![],
            duration_s: 1.0,
            throughput_rps: 300.0,
            samples_per_s: 300.0,
            latency_ms: Latency::from_histogram(&h, &[]),
            server: None,
            measurement: MeasurementInfo::default(),
            resources: Default::default(),
            efficiency: Default::default(),
            server_metrics: Default::default(),
            flags: vec![],
            window_histograms: vec![],
            samples,
        }
    }

    #[test]
    fn ratios_pair_each_point_with_the_baseline_and_carry_intervals() {
        let rows = vec![
            point("a", 1, 10),
            point("b", 1, 20),
            point("a", 8, 10),
            point("b", 8, 10),
            point("b", 16, 5), // no baseline at 16: no ratio
        ];
        let r = ratios(&rows, "a", 1, 3, 0.05);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].batch_size, 1);
        assert!((r[0].p50_ratio - 2.0).abs() < 0.01, "{:?}", r[0]);
        assert!(r[0].ci_low <= r[0].p50_ratio && r[0].p50_ratio <= r[0].ci_high);
        assert!(r[0].ci_low > 1.9 && r[0].ci_high < 2.1, "{:?}", r[0]);
        assert!(r[0].clear_difference, "{:?}", r[0]);
        assert!((r[0].mean_ratio - 2.0).abs() < 0.01);
        assert_eq!(r[1].batch_size, 8);
        assert!(r[1].ci_low <= 1.0 && 1.0 <= r[1].ci_high, "{:?}", r[1]);
        assert!(!r[1].clear_difference);
        assert!(r.iter().all(|x| x.backend == "b" && x.baseline == "a"));
        // Three rounds of a steady ratio: well within ±5 %. The rows were not stable.
        assert!(r[0].target_met && r[0].half_width < 0.05, "{:?}", r[0]);
        assert_eq!((r[0].rounds, r[0].missed), (3, None));
        // A target the first stage's spread cannot reach in the rounds run: time.
        let r = ratios(&rows, "a", 1, 3, 1e-9);
        assert_eq!(r[0].missed, Some(Miss::Time));
    }

    #[test]
    fn a_ratio_whose_later_rounds_drift_misses_as_unstable_with_a_wider_interval() {
        // Three steady rounds, then three that wander by ±30 %: the first stage asked
        // for three rounds, six ran, and the interval takes the spread of all six.
        let scales = [100, 100, 100, 130, 70, 125];
        let mut b = point("b", 1, 100);
        b.samples = scales
            .iter()
            .map(|&k| vec![(1..=100u64).map(|x| x * k).collect()])
            .collect();
        let mut a = point("a", 1, 100);
        a.samples = (0..6)
            .map(|_| vec![(1..=100u64).map(|x| x * 100).collect()])
            .collect();
        let r = ratios(&[a, b], "a", 1, 3, 0.05);
        assert_eq!(r[0].rounds, 6);
        assert!(r[0].half_width > 0.1, "{:?}", r[0]);
        assert!(r[0].ci_low < 1.0 && r[0].ci_high > 1.0, "{:?}", r[0]);
        assert_eq!(r[0].missed, Some(Miss::Unstable));
    }
}
