//! perf_analyzer's stability rule: a measurement is stable when its last
//! [`WINDOWS`] windows agree within a tolerance (±10 % by default) on throughput and
//! on the stabilising latency percentile, each window against their mean.

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

/// True when the last [`WINDOWS`] windows are within `tolerance` (0.10 = ±10 %) of
/// their mean on both figures.
pub fn is_stable(windows: &[WindowFigures], tolerance: f64) -> bool {
    if windows.len() < WINDOWS {
        return false;
    }
    let last = &windows[windows.len() - WINDOWS..];
    let agree = |f: fn(&WindowFigures) -> f64| {
        let mean = last.iter().map(f).sum::<f64>() / WINDOWS as f64;
        mean > 0.0 && last.iter().all(|w| (f(w) - mean).abs() <= tolerance * mean)
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
        // Throughput off by more than 10 % of the mean.
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
            0.25
        ));
        assert!(!is_stable(&[w(0.0, 0.0); 3], 0.1));
    }
}
