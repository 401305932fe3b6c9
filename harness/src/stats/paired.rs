//! The 95 % interval of a ratio from paired rounds.
//!
//! A point is measured in rounds: each round runs one window of every backend, in a
//! freshly shuffled order, so whatever drifts on the machine (other work, clock speed,
//! caches, the order backends run in) hits both sides of a ratio within the same round.
//! Each round in which both sides ran gives one ratio of their statistics (p50 or mean
//! of the round's window); rounds are independent replicates of the comparison. The
//! ratio is the geometric mean of those per-round ratios, and its interval is Student's
//! t on their logarithms `y`: `ratio × exp(± t(0.975, df) × s / sqrt(R))`.
//!
//! **Two stages (Stein's procedure).** How many rounds a ratio gets depends on how much
//! its rounds vary, and stopping as soon as the usual interval is narrow enough favours
//! the moments when the spread happened to come out small: those intervals are too
//! narrow, and an A/A comparison excludes 1.0 more often than 5 %. So the spread that
//! sizes the run is fixed after a first stage of `n0` rounds: `s0`, the standard
//! deviation of their `y`, gives the rounds needed, [`rounds_needed`]
//! (`(t(0.975, n0 - 1) × s0 / asinh(target))²`), and the interval after `R >= n0` rounds
//! is `exp(mean y ± t(0.975, n0 - 1) × s0 / sqrt(R))`. Its mean is independent of `s0`
//! for normal `y`, so it covers with exactly 95 % however the run was sized (Stein, 1945);
//! the price is the wider t of `n0 - 1` degrees of freedom. Where the spread of all `R`
//! rounds is larger than `s0` it takes `s0`'s place: rounds of a second visit to the
//! point ([`crate::compare`]'s second pass) are not consecutive with the first stage's,
//! and the drift between the visits must show in the interval (a conservative step: it
//! only ever widens Stein's interval). With fewer than `n0` rounds
//! (the time ran out first) it is the usual t interval on all rounds.
//!
//! Why not a bootstrap over samples: samples of one window share that moment's machine
//! state, and windows of one backend opened after another share its placement and the
//! order they ran in, so resampling samples (or windows) as if independent gave intervals
//! too narrow (A/A comparisons excluded 1.0 far more often than 5 %). Resampling rounds
//! as blocks is right but its percentiles are too narrow with a handful of rounds; the
//! t quantile is exact for few rounds of roughly normal log-ratios, and its half-width
//! shrinks as `1 / sqrt(R)`, which is what a precision target needs to spend time on.
//!
//! **Disturbed rounds.** Before any of this, a round is set aside where the window of
//! either side lies far from all that side's other windows (slowed as a whole by other
//! work on the machine), at most one window in five a side ([`super::disturbed`]); the
//! first stage's spread is taken after its own disturbed rounds are set aside, judged
//! among its own windows, as it was when it sized the run.
//!
//! **Between opens.** Two opens of one backend do not run at quite the same speed for the
//! whole run: where the engine's buffers landed in memory, which addresses and hash seeds
//! a server process drew, which threads it shares cores with. That offset is fixed for a
//! run, so no round of it can see it, yet the next run (or the other backend of a
//! comparison) draws another. It goes into every interval as a second, independent term:
//! the half-width is `hypot(rounds' half-width, z × √2 × BETWEEN_OPENS)` on the log
//! scale, `√2` because both sides of a ratio are opens. [`BETWEEN_OPENS`] is measured by
//! `cargo bench -p harness --bench aa_intervals` (A/A comparisons of two opens), which
//! prints the least spread of one open at which at most 5 % of its intervals exclude 1.0
//! (0.33 % and 0.41 % in two runs of 48); without this term 6-10 % of them excluded 1.0. A precision target at or below that term alone cannot be met however
//! many rounds run: such a ratio spends its point's budget and is flagged for time.

use super::bootstrap::{statistic, Statistic, Trials};
use super::disturbed;

/// Least spread of the per-round log-ratios: latencies are whole microseconds and
/// medians of a few of them, so rounds can agree exactly where the truth still varies by
/// about this much; without it, such an interval would have no width at all.
const MIN_SPREAD: f64 = 1e-3;

/// Standard deviation of `ln(latency)` from one open of a backend to another, within a
/// run's rounds invisible (see the module's text): from the A/A bench, rounded up.
pub const BETWEEN_OPENS: f64 = 0.005;

/// The normal quantile at 0.975.
const Z975: f64 = 1.959_964;

/// The log half-width of a ratio's 95 % interval that the spread between opens gives by
/// itself, with infinitely many rounds: `z × √2 ×` [`BETWEEN_OPENS`].
pub fn between_opens_half_width() -> f64 {
    Z975 * std::f64::consts::SQRT_2 * BETWEEN_OPENS
}

/// An interval `[low, high]` around `center` (a ratio of two opens, from anything but
/// rounds: the bootstrap of [`super::bootstrap`]), widened by the spread between opens
/// on each side, on the log scale.
pub fn widen_for_opens(center: f64, low: f64, high: f64) -> (f64, f64) {
    let (c, l, h, opens) = (center.ln(), low.ln(), high.ln(), between_opens_half_width());
    (
        (c - (c - l).hypot(opens)).exp(),
        (c + (h - c).hypot(opens)).exp(),
    )
}

/// A ratio and its 95 % interval from paired rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// The ratio: geometric mean of the per-round ratios.
    pub center: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Rounds in which both sides ran.
    pub rounds: usize,
    /// Of those, rounds set aside as disturbed ([`super::disturbed`]): not in the
    /// ratio or its interval.
    pub set_aside: usize,
}

impl Paired {
    /// Half-width relative to the ratio: `(high - low) / (2 center)`.
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / (2.0 * self.center)
    }
}

/// Per-round statistics of one side: `rounds[r]` is round `r`'s windows (empty when the
/// side did not run in that round), each a sample of its latencies.
fn per_round(side: &Trials, s: Statistic) -> Vec<Option<f64>> {
    side.iter()
        .map(|windows| {
            let mut pooled: Vec<u64> = windows.iter().flatten().copied().collect();
            statistic(&mut pooled, s).filter(|x| *x > 0.0)
        })
        .collect()
}

/// The log-ratios `ln(stat(a_r) / stat(b_r))` of the rounds where both sides ran.
pub fn log_ratios(a: &Trials, b: &Trials, s: Statistic) -> Vec<f64> {
    paired_rounds(a, b, s, usize::MAX)
        .into_iter()
        .map(|(y, _)| y)
        .collect()
}

/// Of the first `upto` rounds, those both sides ran in: each one's log-ratio, and whether
/// either side's window in it was slowed (or sped) as a whole, judged among that side's
/// own windows of those rounds ([`super::disturbed`]). By side, because a window is
/// disturbed, not a ratio: a baseline window slowed in one round and the backend's in
/// another are one in eight each, where their ratio has two rounds in eight off.
fn paired_rounds(a: &Trials, b: &Trials, s: Statistic, upto: usize) -> Vec<(f64, bool)> {
    let side = |t: &Trials| {
        let stats = per_round(&t[..upto.min(t.len())], s);
        let flags = side_flags(&stats);
        stats.into_iter().zip(flags)
    };
    side(a)
        .zip(side(b))
        .filter_map(|((x, fx), (y, fy))| Some(((x? / y?).ln(), fx || fy)))
        .collect()
}

/// Which rounds' windows of one side are disturbed (`false` where it did not run).
fn side_flags(stats: &[Option<f64>]) -> Vec<bool> {
    let logs: Vec<f64> = stats.iter().flatten().map(|x| x.ln()).collect();
    let mut aside = disturbed::flags(&logs).into_iter();
    stats
        .iter()
        .map(|x| x.is_some() && aside.next().unwrap_or(false))
        .collect()
}

/// The log-ratios of `rounds` that are kept (no disturbed window), and how many were
/// set aside.
fn kept(rounds: &[(f64, bool)]) -> (Vec<f64>, usize) {
    let y: Vec<f64> = rounds.iter().filter(|r| !r.1).map(|r| r.0).collect();
    let set_aside = rounds.len() - y.len();
    (y, set_aside)
}

/// Mean and standard deviation (at least [`MIN_SPREAD`]) of `y` (2 values or more).
fn mean_sd(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt().max(MIN_SPREAD))
}

/// `stat(a) / stat(b)` and its 95 % interval from the rounds both sides ran in (`a[r]`,
/// `b[r]`: round `r`'s windows), the spread fixed by the first `first_stage` of them
/// (see the module's text; 0 or 1: the usual t interval); `None` with fewer than 2 rounds.
pub fn ratio_interval(a: &Trials, b: &Trials, s: Statistic, first_stage: usize) -> Option<Paired> {
    interval_of(
        &paired_rounds(a, b, s, usize::MAX),
        first_stage_rounds(a, b, s, first_stage).as_deref(),
        between_opens_half_width(),
    )
}

/// The interval of [`ratio_interval`] from the paired rounds `all` and those of the
/// first stage as it saw them (`None`: no complete first stage), with `opens` (a log
/// half-width) for the spread between opens.
fn interval_of(all: &[(f64, bool)], first: Option<&[(f64, bool)]>, opens: f64) -> Option<Paired> {
    if all.len() < 2 {
        return None;
    }
    let (y, set_aside) = kept(all);
    let n = y.len();
    let (mean, sd) = mean_sd(&y);
    let h_rounds = match first.map(first_stage_spread) {
        // The larger of the first stage's spread and that of every round: rounds run later
        // (a second visit to the point, minutes on) may drift apart more than the first
        // stage's consecutive ones, and that spread must widen the interval.
        Some((s0, df)) => t975(df) * s0.max(sd) / (n as f64).sqrt(),
        None => t975(n - 1) * sd / (n as f64).sqrt(),
    };
    let h = h_rounds.hypot(opens);
    Some(Paired {
        center: mean.exp(),
        low: (mean - h).exp(),
        high: (mean + h).exp(),
        rounds: all.len(),
        set_aside,
    })
}

/// The first `first_stage` paired rounds as the first stage saw them (windows judged
/// among those rounds' only, as when the stage sized the run); `None` before they are
/// complete, or for a first stage under 2 rounds.
fn first_stage_rounds(
    a: &Trials,
    b: &Trials,
    s: Statistic,
    first_stage: usize,
) -> Option<Vec<(f64, bool)>> {
    if first_stage < 2 {
        return None;
    }
    let mut paired = 0;
    let upto = per_round(a, s)
        .iter()
        .zip(per_round(b, s))
        .position(|(x, y)| {
            paired += usize::from(x.is_some() && y.is_some());
            paired == first_stage
        })?;
    Some(paired_rounds(a, b, s, upto + 1))
}

/// The spread of a first stage's rounds once its disturbed rounds are set aside, and its
/// degrees of freedom.
fn first_stage_spread(stage: &[(f64, bool)]) -> (f64, usize) {
    let (y, _) = kept(stage);
    (mean_sd(&y).1, y.len() - 1)
}

/// Rounds (both sides ran) after which the interval of [`ratio_interval`] with
/// `first_stage` rounds has a half-width of at most `target` (relative): fixed by the
/// spread of the first stage alone, and by the room the spread between opens leaves
/// (`usize::MAX` where it leaves none). `None` until the first stage is complete.
pub fn rounds_needed(
    a: &Trials,
    b: &Trials,
    s: Statistic,
    first_stage: usize,
    target: f64,
) -> Option<usize> {
    let (s0, df) = first_stage_spread(&first_stage_rounds(a, b, s, first_stage.max(2))?);
    // A half-width h on the log scale is sinh(h) relative to the ratio; the rounds' part
    // is what the spread between opens leaves of it.
    let room = target.asinh().powi(2) - between_opens_half_width().powi(2);
    if room <= 0.0 {
        return Some(usize::MAX);
    }
    let n = (t975(df) * s0).powi(2) / room;
    Some((n.ceil() as usize).max(first_stage))
}

/// Student's t quantile at 0.975 for `df` degrees of freedom (at least 1).
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            // Cornish-Fisher expansion around the normal quantile.
            let (z, v) = (1.959_964_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * v)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `rounds` rounds of one window of `n` skewed latencies around `scale`, each round
    /// scaled by a drift both sides share (`drift[r]`).
    fn side(rng: &mut ChaCha8Rng, scale: f64, drift: &[f64], n: usize) -> Vec<Vec<Vec<u64>>> {
        drift
            .iter()
            .map(|d| {
                vec![(0..n)
                    .map(|_| {
                        let z: f64 = (0..4).map(|_| rng.random::<f64>() - 0.5).sum();
                        (scale * d * (0.5 * z).exp()) as u64
                    })
                    .collect()]
            })
            .collect()
    }

    /// Share of intervals excluding 1.0 and share covering `truth`, over 200 runs.
    fn rates(truth: f64, rounds: usize) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut excl, mut cover) = (0, 0);
        for _ in 0..200 {
            // Drift of ±30 % from round to round, shared by both sides.
            let drift: Vec<f64> = (0..rounds)
                .map(|_| 0.7 + 0.6 * rng.random::<f64>())
                .collect();
            let a = side(&mut rng, 1000.0 * truth, &drift, 40);
            let b = side(&mut rng, 1000.0, &drift, 40);
            let ci = ratio_interval(&a, &b, Statistic::P50, 0).unwrap();
            excl += (ci.low > 1.0 || ci.high < 1.0) as u32;
            cover += (ci.low <= truth && truth <= ci.high) as u32;
        }
        (excl as f64 / 200.0, cover as f64 / 200.0)
    }

    #[test]
    fn a_a_intervals_exclude_one_about_five_percent_of_the_time() {
        // Drift shared within a round cancels: the nominal rate holds with few rounds.
        let (fp, _) = rates(1.0, 4);
        assert!(fp <= 0.09, "false positives {fp}");
        let (_, cover) = rates(1.2, 6);
        assert!(cover >= 0.9, "coverage {cover}");
        // A 20 % difference is told apart.
        let (power, _) = rates(1.2, 6);
        assert!(power >= 0.9, "power {power}");
    }

    #[test]
    fn rounds_one_side_skipped_are_not_paired() {
        let a = vec![vec![vec![10u64]], vec![], vec![vec![12]], vec![vec![11]]];
        let b = vec![vec![vec![10u64]], vec![vec![99]], vec![vec![12]], vec![]];
        assert_eq!(log_ratios(&a, &b, Statistic::P50).len(), 2);
        let y = log_ratios(&a, &b, Statistic::P50);
        let ci = interval_of(&plain(&y), None, 0.0).unwrap();
        // Both rounds agree exactly: the interval keeps the least spread's width.
        assert_eq!((ci.center, ci.rounds), (1.0, 2));
        assert!(
            ci.low < 1.0 && ci.high > 1.0 && ci.half_width() < 0.01,
            "{ci:?}"
        );
        // The spread between opens stays, however well the rounds agree.
        let ci = ratio_interval(&a, &b, Statistic::P50, 0).unwrap();
        let opens = between_opens_half_width().sinh();
        assert!(ci.half_width() >= opens, "{ci:?}");
        assert!(ratio_interval(&a[..1], &b[..1], Statistic::P50, 0).is_none());
        assert_eq!(t975(1), 12.706);
        assert!((t975(100) - 1.984).abs() < 0.002, "{}", t975(100));
    }

    /// Log-ratios of rounds with no window disturbed.
    fn plain(y: &[f64]) -> Vec<(f64, bool)> {
        y.iter().map(|&v| (v, false)).collect()
    }

    /// One round of each side whose p50 ratio is `exp(y)`.
    fn round(y: f64) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
        (vec![vec![(1e6 * y.exp()) as u64]], vec![vec![1_000_000]])
    }

    /// Share of A/A intervals excluding 1.0 when each run is sized from its own data:
    /// `stein` with the two-stage rule, otherwise by stopping as soon as the usual
    /// interval is within the target (the rule this replaced).
    fn sequential_false_positives(stein: bool) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (first, target, cap, runs) = (5, 0.05, 60, 2000);
        let mut excluded = 0;
        for run in 0..runs {
            // Round-to-round spread from 2 % to 20 %, as on a quiet or a busy machine.
            let sigma = 0.02 + 0.18 * (run % 10) as f64 / 9.0;
            let (mut a, mut b) = (vec![], vec![]);
            loop {
                // Normal deviates by Box-Muller.
                let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let (x, y) = round(sigma * z);
                a.push(x);
                b.push(y);
                let n = a.len();
                let stop = if stein {
                    rounds_needed(&a, &b, Statistic::P50, first, target).is_some_and(|k| n >= k)
                } else {
                    n >= first
                        && ratio_interval(&a, &b, Statistic::P50, 0)
                            .is_some_and(|ci| ci.half_width() <= target)
                };
                if stop || n >= cap {
                    break;
                }
            }
            let ci = ratio_interval(&a, &b, Statistic::P50, if stein { first } else { 0 }).unwrap();
            excluded += (ci.low > 1.0 || ci.high < 1.0) as u32;
        }
        excluded as f64 / runs as f64
    }

    #[test]
    fn two_stage_intervals_hold_their_95_percent_when_the_data_size_the_run() {
        // Stopping on the usual interval's width undercovers; the two stages do not.
        let naive = sequential_false_positives(false);
        let stein = sequential_false_positives(true);
        eprintln!("A/A false positives over 2000 runs: naive stopping {naive}, two stages {stein}");
        assert!(stein <= 0.065, "two-stage A/A false positives {stein}");
        assert!(naive > stein, "naive {naive}, two-stage {stein}");
    }

    /// A/A runs sized by the two stages on a busy machine: quiet rounds (2 % spread), of
    /// which one in ten has one side's window slowed as a whole by 30-60 %. The share of
    /// intervals excluding 1.0, and the share that reached a ±5 % target within 60
    /// rounds.
    fn busy_machine_runs() -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let (first, target, cap, runs) = (5, 0.05, 60, 2000);
        let (mut excluded, mut met) = (0, 0);
        for _ in 0..runs {
            let (mut a, mut b) = (vec![], vec![]);
            loop {
                let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let mut y = 0.02 * z;
                if rng.random::<f64>() < 0.1 {
                    let slowed = (1.3 + 0.3 * rng.random::<f64>()).ln();
                    y += if rng.random::<bool>() {
                        slowed
                    } else {
                        -slowed
                    };
                }
                let (x, w) = round(y);
                a.push(x);
                b.push(w);
                let n = a.len();
                let stop =
                    rounds_needed(&a, &b, Statistic::P50, first, target).is_some_and(|k| n >= k);
                if stop || n >= cap {
                    break;
                }
            }
            let ci = ratio_interval(&a, &b, Statistic::P50, first).unwrap();
            excluded += (ci.low > 1.0 || ci.high < 1.0) as u32;
            met += (ci.half_width() <= target) as u32;
        }
        (excluded as f64 / runs as f64, met as f64 / runs as f64)
    }

    /// The busy run's onnxruntime/candle text-CNN batch-1 rounds: candle's window slowed in
    /// round 4, onnxruntime's in round 5. Two of eight ratios are off, but each side has
    /// one disturbed window in eight (in five, in the first stage): both rounds are set
    /// aside, in the first stage too.
    #[test]
    fn a_disturbed_window_on_either_side_sets_its_round_aside() {
        let windows = |ms: &[f64]| -> Vec<Vec<Vec<u64>>> {
            ms.iter().map(|m| vec![vec![(m * 1000.0) as u64]]).collect()
        };
        let candle = windows(&[2.71, 2.74, 2.70, 3.29, 2.81, 2.69, 2.82, 2.75]);
        let onnx = windows(&[1.11, 1.13, 1.14, 1.12, 1.43, 1.19, 1.16, 1.17]);
        let ci = ratio_interval(&onnx, &candle, Statistic::P50, 5).unwrap();
        assert_eq!((ci.rounds, ci.set_aside), (8, 2), "{ci:?}");
        assert!(ci.half_width() < 0.06, "{ci:?}");
        let first = first_stage_rounds(&onnx, &candle, Statistic::P50, 5).unwrap();
        // Both fall in the first stage of five: one window of each side.
        assert_eq!(first.iter().filter(|r| r.1).count(), 2, "{first:?}");
        // Taken as spread, the two rounds ask for far more rounds than the others.
        let y = log_ratios(&onnx, &candle, Statistic::P50);
        let plain_ci = interval_of(
            &plain(&y),
            Some(&plain(&y[..5])),
            between_opens_half_width(),
        );
        assert!(plain_ci.unwrap().half_width() > 0.1);
    }

    #[test]
    fn rounds_slowed_as_a_whole_neither_widen_nor_bias_the_interval() {
        let (fp, met) = busy_machine_runs();
        eprintln!("busy machine A/A: false positives {fp}, at a ±5 % target {met}");
        assert!(fp <= 0.065, "false positives {fp}");
        // Taken as spread, one such round in a first stage of five asks for about 100
        // rounds: 40 % of the runs would miss the target.
        assert!(met >= 0.85, "at target {met}");
    }

    #[test]
    fn rounds_needed_follow_the_first_stage_spread() {
        type Side = Vec<Vec<Vec<u64>>>;
        let rounds = |ys: &[f64]| -> (Side, Side) { ys.iter().map(|&y| round(y)).unzip() };
        let (a, b) = rounds(&[0.1, -0.1, 0.1, -0.1]);
        assert_eq!(rounds_needed(&a, &b, Statistic::P50, 5, 0.05), None);
        let (a, b) = rounds(&[0.1, -0.1, 0.1, -0.1, 0.0]);
        // s0 = 0.1, t(4) = 2.776: (2.776 × 0.1)² / (asinh(0.05)² - opens²) rounds, which
        // is 30.8 without the spread between opens.
        let room = 0.05f64.asinh().powi(2) - between_opens_half_width().powi(2);
        let n = ((2.776f64 * 0.1).powi(2) / room).ceil() as usize;
        assert!(n >= 31, "{n}");
        assert_eq!(rounds_needed(&a, &b, Statistic::P50, 5, 0.05), Some(n));
        // After them, the interval is within the target.
        let ys: Vec<f64> = (0..n).map(|i| [0.1, -0.1, 0.1, -0.1, 0.0][i % 5]).collect();
        let (a, b) = rounds(&ys);
        let ci = ratio_interval(&a, &b, Statistic::P50, 5).unwrap();
        assert!(ci.half_width() <= 0.05 && ci.half_width() > 0.045, "{ci:?}");
        // A quiet first stage asks for no more than the first stage.
        let (a, b) = rounds(&[0.001; 5]);
        assert_eq!(rounds_needed(&a, &b, Statistic::P50, 5, 0.05), Some(5));
        // A target the spread between opens alone exceeds: no number of rounds meets it.
        let below = (0.9 * between_opens_half_width()).sinh();
        assert_eq!(
            rounds_needed(&a, &b, Statistic::P50, 5, below),
            Some(usize::MAX)
        );
    }

    /// Share of A/A intervals excluding 1.0 over 2000 runs of `rounds` rounds whose
    /// backends were each opened anew, at an offset of [`BETWEEN_OPENS`] (one standard
    /// deviation of ln latency) that holds for the whole run: with the spread between
    /// opens in the interval (`opens`) or without.
    fn false_positives_across_opens(rounds: usize, opens: bool) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut normal = move || {
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let runs = 2000;
        let mut excluded = 0;
        for _ in 0..runs {
            let offset = BETWEEN_OPENS * (normal() - normal());
            let y: Vec<f64> = (0..rounds).map(|_| offset + 0.02 * normal()).collect();
            let h = if opens {
                between_opens_half_width()
            } else {
                0.0
            };
            let ci = interval_of(&plain(&y), Some(&plain(&y[..5])), h).unwrap();
            excluded += (ci.low > 1.0 || ci.high < 1.0) as u32;
        }
        excluded as f64 / runs as f64
    }

    #[test]
    fn intervals_with_the_spread_between_opens_hold_their_95_percent_across_opens() {
        // Many quiet rounds: the offset between the two opens dominates.
        let with = false_positives_across_opens(30, true);
        let without = false_positives_across_opens(30, false);
        eprintln!("A/A across opens: {with} with the spread between opens, {without} without");
        assert!(with <= 0.065, "with the spread between opens: {with}");
        assert!(without > 0.1, "without it: {without}");
    }
}
