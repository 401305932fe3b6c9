//! Latency summaries of a point: percentiles, slowest requests, sample counts.

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Confidence MLPerf LoadGen's early stopping asks of a tail percentile.
const EARLY_STOPPING_CONFIDENCE: f64 = 0.99;

/// Latency figures of one point, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 80th percentile.
    pub p80: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest request (exact; the other figures have 3 significant digits).
    pub max: f64,
    /// The 1st, 10th, 20th and 50th slowest requests (`None` with fewer requests).
    pub slowest: Slowest,
    /// Samples behind every percentile (successful requests merged).
    pub samples: u64,
    /// Percentiles drawn from fewer samples than MLPerf LoadGen's early-stopping minimum
    /// for them (such as `p99` under 459 samples).
    pub few_samples: Vec<String>,
}

/// The slowest requests, by rank, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Slowest {
    /// The slowest.
    pub n1: Option<f64>,
    /// The 10th slowest.
    pub n10: Option<f64>,
    /// The 20th slowest.
    pub n20: Option<f64>,
    /// The 50th slowest.
    pub n50: Option<f64>,
}

/// The percentiles reported, by name.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p80", 0.80),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
];

/// Least samples for the `q` quantile (0..1) to be backed by early stopping with no
/// sample over it: the smallest `n` with `q^n <= 1 - 0.99` (459 for the 99th).
pub fn min_samples_for(q: f64) -> u64 {
    ((1.0 - EARLY_STOPPING_CONFIDENCE).ln() / q.ln()).ceil() as u64
}

impl Latency {
    /// Summarises a histogram of µs values and the slowest latencies (µs, slowest
    /// first); `None` when the histogram is empty.
    pub fn from_histogram(h: &Histogram<u64>, slowest: &[u64]) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let rank = |n: usize| slowest.get(n - 1).map(|&us| ms(us));
        let samples = h.len();
        Some(Latency {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p80: ms(h.value_at_quantile(0.80)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            // Exact where the window kept its slowest requests.
            max: slowest.first().map_or(ms(h.max()), |&us| ms(us)),
            slowest: Slowest {
                n1: rank(1),
                n10: rank(10),
                n20: rank(20),
                n50: rank(50),
            },
            samples,
            few_samples: PERCENTILES
                .iter()
                .filter(|(_, q)| samples < min_samples_for(*q))
                .map(|(name, _)| name.to_string())
                .collect(),
        })
    }

    /// The percentile named `p` (0..100) where it is one of the reported ones.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        [
            (50.0, self.p50),
            (80.0, self.p80),
            (90.0, self.p90),
            (95.0, self.p95),
            (99.0, self.p99),
        ]
        .iter()
        .find(|(q, _)| *q == p)
        .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> Histogram<u64> {
        Histogram::new(3).unwrap()
    }

    #[test]
    fn summarises_known_values() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap(); // 1 ms .. 1000 ms
        }
        let slowest: Vec<u64> = (951..=1000u64).rev().map(|x| x * 1000).collect();
        let l = Latency::from_histogram(&h, &slowest).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(close(l.mean, 500.5), "{l:?}");
        assert!(close(l.p50, 500.0), "{l:?}");
        assert!(close(l.p80, 800.0), "{l:?}");
        assert!(close(l.p90, 900.0), "{l:?}");
        assert!(close(l.p95, 950.0), "{l:?}");
        assert!(close(l.p99, 990.0), "{l:?}");
        assert!(close(l.max, 1000.0), "{l:?}");
        assert_eq!(l.slowest.n1, Some(1000.0));
        assert_eq!(l.slowest.n10, Some(991.0));
        assert_eq!(l.slowest.n50, Some(951.0));
        assert_eq!(l.samples, 1000);
        assert!(Latency::from_histogram(&histogram(), &[]).is_none());
    }

    #[test]
    fn percentiles_from_too_few_samples_are_flagged() {
        assert_eq!(min_samples_for(0.99), 459);
        assert_eq!(min_samples_for(0.50), 7);
        let with = |n: u64| {
            let mut h = histogram();
            for i in 0..n {
                h.record(1000 + i).unwrap();
            }
            Latency::from_histogram(&h, &[]).unwrap()
        };
        assert_eq!(with(458).few_samples, ["p99"]);
        assert!(with(459).few_samples.is_empty());
        assert_eq!(with(30).few_samples, ["p90", "p95", "p99"]);
        assert_eq!(with(3).few_samples.len(), 5);
        // Fewer than 10 requests: no 10th slowest.
        assert_eq!(with(3).slowest.n10, None);
    }
}
