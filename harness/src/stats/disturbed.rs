//! Windows disturbed as a whole, whose rounds are set aside before a ratio's interval is
//! taken.
//!
//! On a shared machine, other work now and then slows everything that runs for a second
//! or so. A window that falls in such a stretch is slowed as a whole: in the default
//! `compare` on a busy 2-core machine, candle's text-CNN batch-1 windows had p50s of
//! 2.54-2.73 ms and one of 4.23 ms; libtorch's batch-4 windows 5.2-5.4 ms and two, in
//! consecutive rounds, 7.1 ms. Rounds pair the backends so that slow stretches hit both
//! sides of a ratio, but a stretch shorter than a round hits one window only, and that
//! round's ratio is off by 30-60 % where the others agree within a few per cent. The
//! t interval of [`super::paired`] takes such a round as spread: one of them in a first
//! stage of five asked for ten times the rounds the others needed, more than a point's
//! budget holds, and the ratio missed its target.
//!
//! A window is taken as disturbed when its statistic (p50 or mean, on the log scale) lies
//! further from the median of its backend's windows in the point than both [`MADS`]
//! robust standard deviations (1.4826 × the median absolute deviation) and [`FLOOR`],
//! and only while such windows are few: at most one in [`MOST_ONE_IN`], else none is (a
//! backend that is slow in many rounds is slow, and that is spread the interval must
//! show). With fewer than [`MOST_ONE_IN`] windows none is. A round with a disturbed
//! window on either side of a ratio is set aside ([`super::paired`]): judged by side,
//! because it is a window that is disturbed, so a baseline window slowed in one round and
//! the backend's in another are one in eight each, where their ratio has two rounds of
//! eight off. On a quiet machine no window comes near the floor, so nothing changes
//! there; `cargo bench -p harness --bench aa_intervals` checks that the intervals still
//! hold their 95 %. The rounds set aside are counted in each ratio's record.

use super::median;

/// Least distance from the median, on the log scale (about 16 %), at which a window is
/// disturbed: far beyond the window-to-window spread of a quiet machine (1-3 %), well
/// within what a slowed window does (30-60 %).
pub const FLOOR: f64 = 0.15;

/// Robust standard deviations from the median at which a window is disturbed (where the
/// windows vary more than [`FLOOR`] allows for).
pub const MADS: f64 = 5.0;

/// At most one window in this many is disturbed; fewer windows than this, none.
pub const MOST_ONE_IN: usize = 5;

/// Which of one side's window statistics `y` (logs) are disturbed (`true`), by the rule
/// of the module's text.
pub fn flags(y: &[f64]) -> Vec<bool> {
    let none = vec![false; y.len()];
    if y.len() < MOST_ONE_IN {
        return none;
    }
    let center = median(y);
    let deviations: Vec<f64> = y.iter().map(|v| (v - center).abs()).collect();
    let mad = median(&deviations);
    let limit = (MADS * 1.4826 * mad).max(FLOOR);
    let far: Vec<bool> = y.iter().map(|v| (v - center).abs() > limit).collect();
    if far.iter().filter(|&&f| f).count() > y.len() / MOST_ONE_IN {
        return none;
    }
    far
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_slowed_as_a_whole_is_disturbed() {
        // candle's text-CNN batch-1 windows of the busy run.
        let p50: [f64; 7] = [2.61, 4.23, 2.73, 2.56, 2.55, 2.59, 2.54];
        let y: Vec<f64> = p50.iter().map(|p| p.ln()).collect();
        assert_eq!(
            flags(&y),
            vec![false, true, false, false, false, false, false]
        );
    }

    #[test]
    fn quiet_spread_and_many_slow_windows_are_not_disturbed() {
        // A few per cent either way: nothing near the floor.
        let y = [0.03, -0.04, 0.01, 0.05, -0.02, 0.0, -0.05, 0.02];
        assert!(flags(&y).iter().all(|&a| !a));
        // Two of six windows far off: more than one in five, so spread, not disturbance.
        let y = [0.0, 0.01, 0.4, -0.01, 0.42, 0.02];
        assert!(flags(&y).iter().all(|&a| !a));
        // One in ten far off, with ten windows: disturbed.
        let y = [0.0, 0.01, 0.4, -0.01, 0.02, 0.0, 0.01, -0.02, 0.0, 0.01];
        assert_eq!(flags(&y).iter().filter(|&&a| a).count(), 1);
        // Too few windows to tell.
        assert!(flags(&[0.0, 0.01, 0.9, 0.0]).iter().all(|&a| !a));
        // Widely spread windows: the limit follows their spread, not the floor.
        let y = [0.3, -0.3, 0.25, -0.2, 0.1, -0.35, 0.5];
        assert!(flags(&y).iter().all(|&a| !a));
    }
}
