//! The 95 % interval of a ratio from paired rounds.
//!
//! A point is measured in rounds: each round runs one window of every backend, in a
//! freshly shuffled order, so whatever drifts on the machine (other work, clock speed,
//! caches, the order backends run in) hits both sides of a ratio within the same round.
//! Each round in which both sides ran gives one ratio of their statistics (p50 or mean
//! of the round's window); rounds are independent replicates of the comparison. The
//! interval is Student's t on the logarithms of those per-round ratios, centred on the
//! ratio of the pooled figures:
//! `ratio × exp(± t(0.975, R - 1) × sd(log r) / sqrt(R))`.
//!
//! Why not a bootstrap over samples: samples of one window share that moment's machine
//! state, and windows of one backend opened after another share its placement and the
//! order they ran in, so resampling samples (or windows) as if independent gave intervals
//! too narrow (A/A comparisons excluded 1.0 far more often than 5 %). Resampling rounds
//! as blocks is right but its percentiles are too narrow with a handful of rounds; the
//! t quantile is exact for few rounds of roughly normal log-ratios, and its half-width
//! shrinks as `1 / sqrt(R)`, which is what a precision target needs to spend time on.

use super::bootstrap::{statistic, Statistic, Trials};

/// A ratio's 95 % interval from paired rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Rounds in which both sides ran.
    pub rounds: usize,
}

impl Paired {
    /// Half-width relative to `center`: `(high - low) / (2 center)`.
    pub fn precision(&self, center: f64) -> f64 {
        (self.high - self.low) / (2.0 * center)
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
    per_round(a, s)
        .into_iter()
        .zip(per_round(b, s))
        .filter_map(|(x, y)| Some((x? / y?).ln()))
        .collect()
}

/// The 95 % interval around `center` of `stat(a) / stat(b)` from the rounds both sides
/// ran in (`a[r]`, `b[r]`: round `r`'s windows); `None` with fewer than 2 such rounds.
pub fn ratio_interval(a: &Trials, b: &Trials, s: Statistic, center: f64) -> Option<Paired> {
    let y = log_ratios(a, b, s);
    let n = y.len();
    if n < 2 || center.is_nan() || center <= 0.0 {
        return None;
    }
    let mean = y.iter().sum::<f64>() / n as f64;
    let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let h = t975(n - 1) * (var / n as f64).sqrt();
    Some(Paired {
        low: center * (-h).exp(),
        high: center * h.exp(),
        rounds: n,
    })
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
            let ci = ratio_interval(&a, &b, Statistic::P50, truth).unwrap();
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
        let ci = ratio_interval(&a, &b, Statistic::P50, 1.0).unwrap();
        assert_eq!((ci.low, ci.high, ci.rounds), (1.0, 1.0, 2));
        assert!(ratio_interval(&a[..1], &b[..1], Statistic::P50, 1.0).is_none());
        assert_eq!(t975(1), 12.706);
        assert!((t975(100) - 1.984).abs() < 0.002, "{}", t975(100));
    }
}
