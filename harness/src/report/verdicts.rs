//! One paragraph under the ratio tables that says how decisive the run was: how many
//! ratios reached the precision target and, for those that did not, what would finish
//! them. A ratio out of time (`T`) needs more rounds; at the spread its rounds showed
//! ([`Ratio::rounds_to_target`]) and each backend's window length at its point, those
//! rounds cost a known time, so the paragraph says what `--time-budget` would have let
//! them reach the target, or that none would (more rounds than `--max-windows`). A
//! ratio flagged unstable (`U`) had its rounds; its later rounds varied more than its
//! first, which more time cures less than a quieter machine.
//!
//! The estimate counts measuring time only (windows), not the warm-ups and hand-overs
//! around them, and rests on spreads from few rounds: it is a guide to the next run's
//! budget, labelled "about", not a promise.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::results::{Miss, PointResult, Ratio, Results};

/// What finishing the ratios out of time would take.
#[derive(Debug, Default, PartialEq)]
struct Shortfall {
    /// Ratios out of time whose rounds fit within `--max-windows`.
    finishable: usize,
    /// Ratios out of time that need more rounds than `--max-windows` allows.
    beyond_cap: usize,
    /// Ratios out of time with fewer than 2 rounds: too few to size.
    too_few: usize,
    /// Measuring time the finishable ones need, seconds.
    seconds: f64,
}

/// The run's settings the paragraph speaks of.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// `--target-precision` (0.05 is ±5 %).
    target: f64,
    /// `--max-windows`: most rounds a point runs.
    max_windows: usize,
    /// `--time-budget`, seconds.
    budget_s: f64,
}

/// The paragraph: `None` when the run has no ratios.
pub fn verdict_summary(results: &Results) -> Option<String> {
    let c = &results.config;
    let settings = Settings {
        target: c.target_precision,
        max_windows: c.max_windows,
        budget_s: c.time_budget_s,
    };
    // The mean window length of `backend` at `r`'s point.
    let window = |r: &Ratio, backend: &str| {
        results
            .results
            .iter()
            .find(|p| {
                p.backend == backend
                    && p.model == r.model
                    && p.batch_size == r.batch_size
                    && p.load == r.load
                    && p.workers == r.workers
            })
            .map_or(0.0, window_seconds)
    };
    summary(&results.ratios, settings, window)
}

/// [`verdict_summary`] of `ratios`, `window(r, backend)` the length of `backend`'s
/// windows at `r`'s point, seconds.
fn summary(ratios: &[Ratio], c: Settings, window: impl Fn(&Ratio, &str) -> f64) -> Option<String> {
    if ratios.is_empty() {
        return None;
    }
    let met = ratios.iter().filter(|r| r.target_met).count();
    let mut widths: Vec<f64> = ratios.iter().map(|r| r.half_width).collect();
    widths.sort_by(f64::total_cmp);
    let median = widths[widths.len() / 2];
    let mut text = format!(
        "Precision: {met} of {} ratios within ±{} (--target-precision); the median ratio's interval ±{}.",
        ratios.len(),
        percent(c.target),
        percent(median)
    );
    let out_of_time = count(ratios, Miss::Time);
    if out_of_time > 0 {
        let s = shortfall(ratios, c.max_windows, window);
        text.push_str(&format!(" Out of time (T): {out_of_time}."));
        if s.finishable > 0 {
            let more = whole_seconds(s.seconds);
            let budget = whole_seconds(c.budget_s + s.seconds);
            text.push_str(&format!(
                " At the spread of their rounds, {} of them need about {} more measuring (a --time-budget of about {}, \
                 warm-ups not counted).",
                s.finishable,
                humantime::format_duration(more),
                humantime::format_duration(budget)
            ));
        }
        if s.beyond_cap > 0 {
            text.push_str(&format!(
                " {} need more rounds than --max-windows ({}) allows: no budget finishes them at this spread.",
                s.beyond_cap, c.max_windows
            ));
        }
        if s.too_few > 0 {
            text.push_str(&format!(
                " {} ran fewer than 2 rounds, too few to size.",
                s.too_few
            ));
        }
    }
    let unstable = count(ratios, Miss::Unstable);
    if unstable > 0 {
        text.push_str(&format!(
            " Unstable (U): {unstable}, whose later rounds varied more than their first; a quieter machine helps \
             them more than time."
        ));
    }
    Some(text)
}

fn count(ratios: &[Ratio], why: Miss) -> usize {
    ratios.iter().filter(|r| r.missed == Some(why)).count()
}

/// `4.2 %`, `12 %`.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// Whole seconds, rounded up, so a small shortfall never reads as none.
fn whole_seconds(seconds: f64) -> Duration {
    Duration::from_secs(seconds.max(0.0).ceil().min(u32::MAX as f64) as u64)
}

/// The rounds the ratios out of time still need, point by point, at each backend's
/// window length there (`window`, as for [`summary`]): each such ratio's backend runs
/// its own missing rounds, and the baseline as many as the ratio that needs most (its
/// rounds pair with every ratio of the point).
fn shortfall(
    ratios: &[Ratio],
    max_windows: usize,
    window: impl Fn(&Ratio, &str) -> f64,
) -> Shortfall {
    let mut s = Shortfall::default();
    // Per point (model, batch, load, workers): the baseline's window and most rounds.
    let mut base_rounds: BTreeMap<(&str, usize, &str, usize), (f64, usize)> = BTreeMap::new();
    for r in ratios.iter().filter(|r| r.missed == Some(Miss::Time)) {
        let missing = match r.rounds_to_target {
            Some(n) if n <= max_windows => n.saturating_sub(r.rounds),
            Some(_) => {
                s.beyond_cap += 1;
                continue;
            }
            None => {
                s.too_few += 1;
                continue;
            }
        };
        s.finishable += 1;
        s.seconds += missing as f64 * window(r, &r.backend);
        let key = (r.model.as_str(), r.batch_size, r.load.as_str(), r.workers);
        let e = base_rounds
            .entry(key)
            .or_insert((window(r, &r.baseline), 0));
        e.1 = e.1.max(missing);
    }
    s.seconds += base_rounds
        .values()
        .map(|(w, n)| w * *n as f64)
        .sum::<f64>();
    s
}

/// A row's mean window length, seconds (0 without windows).
fn window_seconds(p: &PointResult) -> f64 {
    let m = &p.measurement;
    if m.windows == 0 {
        0.0
    } else {
        m.total_wall_s / m.windows as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Settings = Settings {
        target: 0.05,
        max_windows: 100,
        budget_s: 240.0,
    };

    /// Windows of 0.25 s at batch 1 and 2 s at batch 8, whatever the backend.
    fn window(r: &Ratio, _backend: &str) -> f64 {
        if r.batch_size == 1 {
            0.25
        } else {
            2.0
        }
    }

    /// `backend` against baseline `a` at text-cnn `batch`, c=1, after `rounds` rounds of
    /// the `needed`: out of time below them, unstable at or past them.
    fn ratio(backend: &str, batch: usize, half_width: f64, rounds: usize, needed: usize) -> Ratio {
        let target_met = half_width <= SETTINGS.target;
        Ratio {
            model: "text-cnn".into(),
            batch_size: batch,
            load: "c=1".into(),
            backend: backend.into(),
            workers: 1,
            baseline: "a".into(),
            p50_ratio: 1.0,
            ci_low: 1.0 - half_width,
            ci_high: 1.0 + half_width,
            clear_difference: false,
            mean_ratio: 1.0,
            mean_ci_low: 1.0 - half_width,
            mean_ci_high: 1.0 + half_width,
            half_width,
            target_met,
            missed: (!target_met).then_some(if rounds < needed {
                Miss::Time
            } else {
                Miss::Unstable
            }),
            rounds,
            set_aside_rounds: 0,
            rounds_to_target: Some(needed),
        }
    }

    /// The shortfall of `ratios` and their paragraph.
    fn judged(ratios: &[Ratio]) -> (Shortfall, String) {
        let s = shortfall(ratios, SETTINGS.max_windows, window);
        (s, summary(ratios, SETTINGS, window).expect("ratios"))
    }

    #[test]
    fn the_time_out_of_time_ratios_need_is_their_missing_rounds_at_their_window_lengths() {
        // Batch 1: b needs 6 more rounds, c 2 more: b 6 x 0.25 + c 2 x 0.25 + a 6 x 0.25.
        // Batch 8: c needs 10 more: c 10 x 2 + a 10 x 2; b needs 500 rounds, beyond
        // --max-windows.
        let ratios = [
            ratio("b", 1, 0.09, 4, 10),
            ratio("c", 1, 0.07, 4, 6),
            ratio("b", 8, 0.30, 4, 500),
            ratio("c", 8, 0.08, 4, 14),
        ];
        let (s, text) = judged(&ratios);
        assert_eq!((s.finishable, s.beyond_cap), (3, 1));
        assert!((s.seconds - (3.5 + 40.0)).abs() < 1e-9, "{s:?}");
        assert_eq!(
            text,
            "Precision: 0 of 4 ratios within ±5.0 % (--target-precision); the median ratio's interval ±9.0 %. \
             Out of time (T): 4. At the spread of their rounds, 3 of them need about 44s more measuring (a \
             --time-budget of about 4m 44s, warm-ups not counted). 1 need more rounds than --max-windows (100) \
             allows: no budget finishes them at this spread."
        );
        // A ratio whose spread leaves no room at all (`usize::MAX`) is beyond any budget
        // too; one of fewer than 2 rounds (`None`) cannot be sized.
        let mut one_round = ratio("b", 1, 0.5, 1, 10);
        one_round.rounds_to_target = None;
        let mut no_room = ratio("c", 1, 0.5, 4, 10);
        no_room.rounds_to_target = Some(usize::MAX);
        let (s, text) = judged(&[one_round, no_room]);
        assert_eq!((s.finishable, s.beyond_cap, s.too_few), (0, 1, 1));
        assert_eq!(s.seconds, 0.0);
        assert!(
            text.ends_with(
                "Out of time (T): 2. 1 need more rounds than --max-windows (100) allows: no \
             budget finishes them at this spread. 1 ran fewer than 2 rounds, too few to size."
            ),
            "{text}"
        );
    }

    #[test]
    fn met_and_unstable_ratios_need_no_time_and_say_so() {
        let ratios = [
            ratio("b", 1, 0.03, 5, 5),
            ratio("c", 1, 0.04, 6, 5),
            ratio("b", 8, 0.12, 9, 9),
        ];
        let (s, text) = judged(&ratios);
        assert_eq!(s, Shortfall::default());
        assert_eq!(
            text,
            "Precision: 2 of 3 ratios within ±5.0 % (--target-precision); the median ratio's interval ±4.0 %. \
             Unstable (U): 1, whose later rounds varied more than their first; a quieter machine helps them more \
             than time."
        );
        assert_eq!(summary(&[], SETTINGS, window), None);
    }
}
