//! Statistics: latency summaries, the stability rule, bootstrap confidence intervals.
//!
//! - [`latency`]: percentiles from the merged HDR histogram (every sample, 3 significant
//!   digits), the slowest requests exactly (each window keeps its 50 slowest), and the
//!   sample-count check of each percentile against MLPerf LoadGen's early-stopping
//!   minimum.
//! - [`stability`]: perf_analyzer's rule: on throughput and on the stabilising latency
//!   percentile, the largest of the last 3 windows is within 10 % of the smallest.
//! - [`bootstrap`]: a 95 % interval for the ratio of two backends' p50 (or mean),
//!   resampling windows and then samples within them.
//! - [`paired`]: the 95 % interval of a ratio from paired rounds (Stein's two stages),
//!   after [`disturbed`] has set aside the rare rounds slowed as a whole.

pub mod bootstrap;
pub mod disturbed;
pub mod latency;
pub mod paired;
pub mod stability;

pub use latency::{min_samples_for, Latency};

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

/// `value / baseline`, or `None` when the baseline is not positive.
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

/// Requests per second and samples per second of `requests` requests of `batch`
/// samples finished in `seconds`.
pub fn throughput(requests: u64, batch: usize, seconds: f64) -> (f64, f64) {
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let rps = requests as f64 / seconds;
    (rps, rps * batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_throughput() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(throughput(50, 8, 2.0), (25.0, 200.0));
        assert_eq!(throughput(5, 1, 0.0), (0.0, 0.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
