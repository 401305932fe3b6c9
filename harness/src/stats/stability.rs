//! perf_analyzer's stability rule: a measurement is stable when its last
//! [`WINDOWS`] windows agree within a tolerance (±10 % by default) on throughput and
//! on the stabilising latency percentile: the largest of them over the smallest is at
//! most `1 + tolerance` (perf_analyzer's `max / min > 1 + stability_threshold` test in
//! its inference profiler). Comparing each window with the mean of three instead lets
//! the extremes differ by up to twice the tolerance.

/// Windows that must agree.
pub const WINDOWS: usize = 3;

/// Throughput (requests/s) and stabilising latency (any unit) of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowFigures {
    /// Requests per second.
    pub throughput: f64,
    /// The stabilising percentile of the window's latency.
    pub latency: f64,
}

/// True when, on both figures, the largest of the last [`WINDOWS`] windows is at most
/// `1 + tolerance` (0.10 = ±10 %) times the smallest, which must be positive.
pub fn is_stable(windows: &[WindowFigures], tolerance: f64) -> bool {
    if windows.len() < WINDOWS {
        return false;
    }
    let last = &windows[windows.len() - WINDOWS..];
    let agree = |f: fn(&WindowFigures) -> f64| {
        let (min, max) = last
            .iter()
            .map(f)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        min > 0.0 && max <= (1.0 + tolerance) * min
    };
    agree(|w| w.throughput) && agree(|w| w.latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(throughput: f64, latency: f64) -> WindowFigures {
        WindowFigures {
            throughput,
            latency,
        }
    }

    #[test]
    fn three_agreeing_windows_are_stable() {
        assert!(is_stable(
            &[w(100.0, 5.0), w(105.0, 5.2), w(96.0, 4.9)],
            0.1
        ));
        // Only the last three count.
        assert!(is_stable(
            &[w(10.0, 50.0), w(100.0, 5.0), w(105.0, 5.2), w(96.0, 4.9)],
            0.1
        ));
    }

    #[test]
    fn disagreement_or_too_few_windows_is_unstable() {
        assert!(!is_stable(&[w(100.0, 5.0), w(100.0, 5.0)], 0.1));
        // Throughput: largest over smallest 1.3.
        assert!(!is_stable(
            &[w(100.0, 5.0), w(100.0, 5.0), w(130.0, 5.0)],
            0.1
        ));
        // Latency off.
        assert!(!is_stable(
            &[w(100.0, 5.0), w(100.0, 5.0), w(100.0, 6.5)],
            0.1
        ));
        // A wider tolerance accepts it.
        assert!(is_stable(
            &[w(100.0, 5.0), w(100.0, 5.0), w(100.0, 6.5)],
            0.3
        ));
        // Each within ±10 % of the mean of three (91, 100, 109) but 109 / 91 = 1.2:
        // the mean form accepted this, the max/min form does not.
        assert!(!is_stable(
            &[w(91.0, 5.0), w(100.0, 5.0), w(109.0, 5.0)],
            0.1
        ));
        assert!(!is_stable(&[w(0.0, 0.0); 3], 0.1));
    }
}
