//! Bootstrap confidence intervals for the ratio of two backends' latency statistics.
//!
//! Each side is a list of trials, each a list of its reported windows, each holding a
//! uniform sample of its latencies ([`crate::load::SAMPLE_CAP`] at most). One bootstrap
//! replicate resamples each side in three stages, all with replacement: draw as many
//! trials as it has; within each drawn trial, as many windows as it has; within each
//! drawn window, as many samples as it has. The statistic (p50 or mean) of the pooled
//! draw of one side over the other's is one replicate of the ratio; the 2.5th and 97.5th
//! percentiles of [`ITERATIONS`] replicates are the 95 % interval.
//!
//! Windows of one trial run back to back and share that moment's machine state, so they
//! are not independent: pooling them as if they were made intervals too narrow (an A/A
//! comparison of one backend against itself excluded 1.0 in one run of three). Drawing
//! whole trials first carries the drift between trials into the interval; the nested
//! stages make it conservative, which is the safe side for "no clear difference".

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap replicates per interval: a 95 % interval's ends are the 50th smallest and
/// the 50th largest of 2000, so each tail rests on 50 replicates (400 left 10 each,
/// and ends that moved by a few per cent from one seed to the next).
pub const ITERATIONS: usize = 2000;

/// The statistic a ratio compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// The median.
    P50,
    /// The arithmetic mean.
    Mean,
}

/// A two-sided 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// 2.5th percentile of the replicates.
    pub low: f64,
    /// 97.5th percentile of the replicates.
    pub high: f64,
}

impl Interval {
    /// True when `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The statistic of `v` (reordered in place).
pub fn statistic(v: &mut [u64], s: Statistic) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    Some(match s {
        Statistic::Mean => v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64,
        Statistic::P50 => {
            // The same rank as the histogram's quantile: the smallest value with at
            // least half of the samples at or below it.
            let k = (v.len() - 1) / 2;
            *v.select_nth_unstable(k).1 as f64
        }
    })
}

/// The trials of `side` with their empty windows, and then empty trials, left out.
fn nonempty(side: &Trials) -> Vec<Vec<&Vec<u64>>> {
    side.iter()
        .map(|t| t.iter().filter(|w| !w.is_empty()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Latency samples of one side: trials, of windows, of samples (µs).
pub type Trials = [Vec<Vec<u64>>];

/// 95 % interval of `stat(a) / stat(b)`; `None` when either side has no samples.
pub fn ratio_interval(a: &Trials, b: &Trials, s: Statistic, seed: u64) -> Option<Interval> {
    let (a, b) = (nonempty(a), nonempty(b));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = Vec::new();
    let mut replicates = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let x = replicate(&a, s, &mut rng, &mut buf)?;
        let y = replicate(&b, s, &mut rng, &mut buf)?;
        if y > 0.0 {
            replicates.push(x / y);
        }
    }
    if replicates.is_empty() {
        return None;
    }
    replicates.sort_by(f64::total_cmp);
    let at = |q: f64| replicates[((replicates.len() - 1) as f64 * q).round() as usize];
    Some(Interval {
        low: at(0.025),
        high: at(0.975),
    })
}

/// One three-stage resample of `trials` (trials, windows, samples), and its statistic.
fn replicate(
    trials: &[Vec<&Vec<u64>>],
    s: Statistic,
    rng: &mut ChaCha8Rng,
    buf: &mut Vec<u64>,
) -> Option<f64> {
    buf.clear();
    for _ in 0..trials.len() {
        let windows = &trials[rng.random_range(0..trials.len())];
        for _ in 0..windows.len() {
            let w = windows[rng.random_range(0..windows.len())];
            buf.extend((0..w.len()).map(|_| w[rng.random_range(0..w.len())]));
        }
    }
    statistic(buf, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log-normal-ish latencies (µs) around `scale`: 3 trials of `windows` windows of `n`.
    fn side(rng: &mut ChaCha8Rng, scale: f64, windows: usize, n: usize) -> Vec<Vec<Vec<u64>>> {
        (0..3)
            .map(|_| side_windows(rng, scale, windows, n))
            .collect()
    }

    fn side_windows(rng: &mut ChaCha8Rng, scale: f64, windows: usize, n: usize) -> Vec<Vec<u64>> {
        (0..windows)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        // Sum of uniforms: roughly normal, then exponentiated: skewed.
                        let z: f64 = (0..4).map(|_| rng.random::<f64>() - 0.5).sum::<f64>();
                        (scale * (0.5 * z).exp()) as u64
                    })
                    .collect()
            })
            .collect()
    }

    fn coverage(true_ratio: f64, s: Statistic) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let reps = 40;
        let (mut covered, mut excludes_one) = (0, 0);
        for i in 0..reps {
            let a = side(&mut rng, 1000.0 * true_ratio, 2, 100);
            let b = side(&mut rng, 1000.0, 2, 100);
            let ci = ratio_interval(&a, &b, s, i).unwrap();
            assert!(ci.low <= ci.high);
            covered += ci.contains(true_ratio) as u32;
            excludes_one += (!ci.contains(1.0)) as u32;
        }
        (
            covered as f64 / reps as f64,
            excludes_one as f64 / reps as f64,
        )
    }

    #[test]
    fn intervals_cover_the_true_ratio() {
        // Nominal 95 %; resampling windows too makes it a little conservative.
        let (cov, false_alarms) = coverage(1.0, Statistic::P50);
        assert!(cov >= 0.9, "p50 coverage {cov}");
        assert!(false_alarms <= 0.1, "{false_alarms}");
        let (cov, _) = coverage(1.0, Statistic::Mean);
        assert!(cov >= 0.9, "mean coverage {cov}");
        // A real 30 % difference is covered and told apart from 1.0.
        let (cov, power) = coverage(1.3, Statistic::P50);
        assert!(cov >= 0.9, "coverage at 1.3: {cov}");
        assert!(power >= 0.9, "1.3 told from 1.0 in only {power}");
    }

    #[test]
    fn statistics_and_empty_sides() {
        assert_eq!(statistic(&mut [5, 1, 3], Statistic::P50), Some(3.0));
        assert_eq!(statistic(&mut [4, 1, 3, 2], Statistic::P50), Some(2.0));
        assert_eq!(statistic(&mut [1, 2], Statistic::Mean), Some(1.5));
        assert_eq!(statistic(&mut [], Statistic::Mean), None);
        assert!(ratio_interval(&[vec![vec![1]]], &[vec![vec![]]], Statistic::P50, 0).is_none());
        // Identical constant sides: the interval is exactly 1.
        let w = vec![vec![vec![7u64; 20]; 3]; 3];
        let ci = ratio_interval(&w, &w, Statistic::P50, 1).unwrap();
        assert_eq!((ci.low, ci.high), (1.0, 1.0));
    }
}
