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
//! only ever widens Stein's interval), and the run goes on to the rounds that larger
//! spread asks for while its time lasts ([`rounds_to_target`], which says why that keeps
//! the 95 %). With fewer than `n0` rounds
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
    Some(rounds_for(s0, df, target).max(first_stage))
}

/// Rounds (both sides ran, those set aside included) after which the interval of
/// [`ratio_interval`] is within `target`, as far as the rounds so far tell: those of
/// [`rounds_needed`], more where the rounds run since the first stage vary more than it
/// did (the interval then takes their larger spread, which asks for more rounds), and
/// one more for each round set aside as disturbed.
///
/// Running until this many rounds keeps the interval's 95 %: for normal log-ratios the
/// mean of the rounds at any stopping time that depends only on their spreads is
/// independent of those spreads (Helmert's contrasts), so it is normal around the truth
/// whichever spread stopped the run, and the interval is never narrower than Stein's
/// from the first stage's spread. What it gives up is only time, on ratios whose rounds
/// drift.
///
/// Before the first stage is complete it is a forecast, for spending the budget only
/// ([`crate::compare`]'s second pass visits first the points cheapest to finish, and a
/// point whose rounds already spread widely is not cheap): the spread of the kept rounds
/// so far at the first stage's t quantile. No run can stop on it, since it is never under
/// `first_stage`. `None` with fewer than 2 kept rounds and no complete first stage.
pub fn rounds_to_target(
    a: &Trials,
    b: &Trials,
    s: Statistic,
    first_stage: usize,
    target: f64,
) -> Option<usize> {
    let (y, set_aside) = kept(&paired_rounds(a, b, s, usize::MAX));
    let all = (y.len() >= 2).then(|| mean_sd(&y).1);
    let (spread, df) = match first_stage_rounds(a, b, s, first_stage.max(2)) {
        Some(stage) => {
            let (s0, df) = first_stage_spread(&stage);
            (all.map_or(s0, |sd| s0.max(sd)), df)
        }
        None => (all?, first_stage.max(2) - 1),
    };
    Some(
        rounds_for(spread, df, target)
            .max(first_stage)
            .saturating_add(set_aside),
    )
}

/// Kept rounds after which an interval of spread `sd` with `df` degrees of freedom has a
/// half-width of at most `target` (relative), beside the spread between opens:
/// `(t(0.975, df) × sd)² / (asinh(target)² - opens²)`, `usize::MAX` where the spread
/// between opens alone leaves no room.
fn rounds_for(sd: f64, df: usize, target: f64) -> usize {
    // A half-width h on the log scale is sinh(h) relative to the ratio; the rounds' part
    // is what the spread between opens leaves of it.
    let room = target.asinh().powi(2) - between_opens_half_width().powi(2);
    if room <= 0.0 {
        return usize::MAX;
    }
    ((t975(df) * sd).powi(2) / room).ceil() as usize
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
mod tests;
