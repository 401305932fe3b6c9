//! Latency summaries and ratios.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency figures of one point, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest request.
    pub max: f64,
}

impl Latency {
    /// Summarises a histogram of µs values; `None` when it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
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
    fn summarises_known_values() {
        let mut h = crate::load::histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap(); // 1 ms .. 1000 ms
        }
        let l = Latency::from_histogram(&h).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(close(l.mean, 500.5), "{l:?}");
        assert!(close(l.p50, 500.0), "{l:?}");
        assert!(close(l.p90, 900.0), "{l:?}");
        assert!(close(l.p95, 950.0), "{l:?}");
        assert!(close(l.p99, 990.0), "{l:?}");
        assert!(close(l.max, 1000.0), "{l:?}");
        assert!(Latency::from_histogram(&crate::load::histogram()).is_none());
    }

    #[test]
    fn ratios_and_throughput() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(throughput(50, 8, 2.0), (25.0, 200.0));
        assert_eq!(throughput(5, 1, 0.0), (0.0, 0.0));
    }
}
