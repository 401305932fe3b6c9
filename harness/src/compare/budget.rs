//! How the time budget is spent over the points: a first pass measures every point in
//! order with at most [`FIRST_PASS`] of the budget (each point its share of what is
//! left), so that a slow point cannot starve the ones after it; a second pass spends
//! what is left on the points whose ratios still need rounds, the cheapest per ratio
//! finished first ([`remaining`], [`next_visit`]), visiting a point again while its
//! ratios still need rounds and time is left, so the budget goes where it makes the
//! most ratios reach the target. A visit finishes the ratios of a point that are
//! cheapest together; one that needs far more rounds sits it out and waits its turn.

use std::time::Duration;

use super::measure::{Part, MIN_ROUNDS};
use super::plan::Measure;

/// Share of the budget the first pass may spend.
pub const FIRST_PASS: f64 = 0.5;

/// A second visit may run this much longer than its rounds were foreseen to take (window
/// costs vary), within what is left of the budget.
pub const SLACK: f64 = 1.25;

/// What the next visit to a point would cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Every round the visit's ratios still need, at each backend's last window cost.
    pub total: Duration,
    /// The next round, with the warm-ups a visit starts with: the least a visit costs.
    pub round: Duration,
    /// Ratios the visit finishes: those short of at most [`Cost::within`] rounds.
    pub ratios: usize,
    /// Most rounds a ratio of the visit still needs; a ratio that needs more sits the
    /// visit out ([`rounds_left`]).
    pub within: usize,
}

/// Rounds `part`'s ratio still needs (before the first stage is complete, as forecast
/// from the spread so far), within `--max-windows` of the point's `rounds` so far.
pub fn rounds_left(part: &Part, rounds: usize, cfg: &Measure) -> usize {
    let cap = cfg.max_windows.max(MIN_ROUNDS);
    let have = part.windows.iter().flatten().count();
    // Before the first stage is complete, `needed` is what the spread so far forecasts
    // it will ask for, so that a point whose rounds spread widely does not look cheap.
    let want = part.needed.unwrap_or(cfg.first_stage()).min(cap);
    want.saturating_sub(have).min(cap.saturating_sub(rounds))
}

/// Whether `part`'s ratio sits out a visit that finishes the ratios short of at most
/// `within` rounds: it needs more. That holds for a forecast too (before the first
/// stage is complete): letting such a ratio run along until its stage was complete
/// spent the time the slowest points needed, and fewer cells reached the target
/// (84, 84, 84 and 78 % in four runs, against 84, 92, 98 and 88 % without).
pub fn sits_out(part: &Part, rounds: usize, within: usize, cfg: &Measure) -> bool {
    rounds_left(part, rounds, cfg) > within
}

/// The cheapest visit per ratio to a point: of its ratios still short of rounds, those
/// that need at most some number of rounds, chosen so that the visit's cost (their
/// rounds at each backend's last window cost, the baseline's rounds, and warming up
/// again each backend it runs, a request each) per ratio finished is least. A ratio
/// whose forecast asks for far more rounds than the others (one cold window in a
/// first stage of three) then does not make the whole point look dear: the others are
/// finished first, and it competes for what is left like any point ([`sits_out`])
/// (`active`: the backends still measured; `rounds`: rounds run so far). `None` when
/// nothing is left to do: no baseline, every ratio has its rounds, or the point ran
/// `--max-windows` rounds.
pub fn remaining(
    parts: &[Part],
    base: Option<usize>,
    active: &[bool],
    rounds: usize,
    cfg: &Measure,
) -> Option<Cost> {
    let base = base.filter(|&b| active[b])?;
    // Every unfinished ratio, by the rounds it needs.
    let mut short: Vec<&Part> = parts
        .iter()
        .enumerate()
        .filter(|&(i, p)| i != base && active[i] && !p.done)
        .map(|(_, p)| p)
        .filter(|p| rounds_left(p, rounds, cfg) > 0)
        .collect();
    short.sort_by_key(|p| rounds_left(p, rounds, cfg));
    let b = &parts[base];
    let mut best: Option<Cost> = None;
    for (k, p) in short.iter().enumerate() {
        let within = rounds_left(p, rounds, cfg);
        // Ratios needing the same rounds go together: they cost no more baseline rounds.
        if short
            .get(k + 1)
            .is_some_and(|q| rounds_left(q, rounds, cfg) == within)
        {
            continue;
        }
        let (mut total, mut round) = (b.request_time, b.last_cost + b.request_time);
        for q in short.iter().filter(|q| !sits_out(q, rounds, within, cfg)) {
            total += q.last_cost * rounds_left(q, rounds, cfg) as u32 + q.request_time;
            round += q.last_cost + q.request_time;
        }
        let visit = Cost {
            total: total + b.last_cost * within as u32,
            round,
            ratios: k + 1,
            within,
        };
        let per = |c: &Cost| c.total.as_secs_f64() / c.ratios as f64;
        if best.as_ref().is_none_or(|c| per(&visit) < per(c)) {
            best = Some(visit);
        }
    }
    best
}

/// The point the second pass visits next: of those whose next round fits in `left`, the
/// cheapest per unfinished ratio, so that a budget too short for every point finishes as
/// many ratios as it can (ties go to the earlier point). It is asked again after every
/// visit, with the costs as they are then: a visit that completes a point's first stage,
/// or whose later rounds spread more than that stage's, can leave its ratios needing
/// more rounds, and the point competes for the rest of the budget like any other.
pub fn next_visit(costs: &[(usize, Cost)], left: Duration) -> Option<(usize, Cost)> {
    let per_ratio = |c: &Cost| c.total.as_secs_f64() / c.ratios.max(1) as f64;
    costs
        .iter()
        .filter(|(_, c)| c.round <= left)
        .min_by(|a, b| {
            per_ratio(&a.1)
                .total_cmp(&per_ratio(&b.1))
                .then(a.0.cmp(&b.0))
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Measurement;

    fn cfg() -> Measure {
        Measure::for_tests(3, 10)
    }

    fn part(windows: usize, cost_ms: u64, needed: Option<usize>, done: bool) -> Part {
        Part {
            windows: (0..windows).map(|_| Some(Measurement::empty())).collect(),
            last_cost: Duration::from_millis(cost_ms),
            needed,
            done,
            ..Part::default()
        }
    }

    #[test]
    fn a_visit_finishes_the_ratios_that_cost_least_per_ratio() {
        // Baseline 100 ms a window. A and B (50 ms) need 2 more rounds, C (200 ms) 1,
        // D (100 ms) 27: its forecast after a cold first window. One ratio is done.
        let with_d = |d: Part| {
            vec![
                part(3, 100, None, false),
                part(3, 50, Some(5), false),
                part(3, 50, Some(5), false),
                part(3, 200, Some(4), false),
                d,
                part(3, 10, Some(3), true),
            ]
        };
        let parts = with_d(part(3, 100, Some(30), false));
        let all = [true; 6];
        let cfg3 = Measure::for_tests(3, 100);
        let c = remaining(&parts, Some(0), &all, 3, &cfg3).unwrap();
        // C alone: 300 ms for one ratio. C, A and B: 200 + 2 x 2 x 50 + 2 x 100 = 600 ms
        // for three (200 each). With D: 3,600 ms more for one more.
        assert_eq!((c.ratios, c.within), (3, 2));
        assert_eq!(c.total, Duration::from_millis(600));
        assert_eq!(c.round, Duration::from_millis(200 + 50 + 50 + 100));
        let left: Vec<usize> = parts[1..5]
            .iter()
            .map(|p| rounds_left(p, 3, &cfg3))
            .collect();
        assert_eq!(left, [2, 2, 1, 27]);
        // Capped at 10 rounds, 8 of them run: every ratio needs 2 at most, and D's
        // (200 ms more) makes the four cheaper per ratio than the three.
        let c = remaining(&parts, Some(0), &all, 8, &cfg()).unwrap();
        assert_eq!((c.ratios, c.within), (4, 2));
        assert_eq!(c.total, Duration::from_millis(800));
        // D after 2 rounds, its first stage (3) incomplete: it sits out too, on its
        // forecast (running it along until its stage was complete cost more cells
        // than it won).
        let early = with_d(part(2, 100, Some(30), false));
        let c = remaining(&early, Some(0), &all, 3, &cfg3).unwrap();
        assert_eq!(
            (c.ratios, c.within, c.total),
            (3, 2, Duration::from_millis(600))
        );
        assert!(sits_out(&early[4], 3, 2, &cfg3));
        assert!(sits_out(&parts[4], 3, 2, &cfg3));
        assert!(!sits_out(&parts[1], 3, 2, &cfg3));
        // Without D, C alone is dearest per ratio, as before.
        let mut active = all;
        active[4] = false;
        let c = remaining(&parts, Some(0), &active, 3, &cfg()).unwrap();
        assert_eq!((c.ratios, c.within), (3, 2));
    }

    #[test]
    fn a_second_visit_pays_for_warming_up_the_backends_it_runs() {
        let mut parts = vec![
            part(3, 100, None, false),
            part(3, 50, Some(4), false),
            part(3, 10, Some(3), true),
        ];
        for (p, ms) in parts.iter_mut().zip([30, 20, 1000]) {
            p.request_time = Duration::from_millis(ms);
        }
        // One round of the unfinished ratio and the baseline, and a warm-up request of
        // each (not of the finished one).
        let c = remaining(&parts, Some(0), &[true; 3], 3, &cfg()).unwrap();
        assert_eq!(c.total, Duration::from_millis(50 + 100 + 30 + 20));
        // A visit runs one round at least: its least cost has the warm-ups in it.
        assert_eq!(c.round, c.total);
    }

    #[test]
    fn nothing_is_left_without_a_baseline_or_when_every_ratio_has_its_rounds() {
        let parts = vec![part(3, 100, None, false), part(5, 50, Some(5), false)];
        assert_eq!(remaining(&parts, Some(0), &[true; 2], 5, &cfg()), None);
        assert_eq!(remaining(&parts, None, &[true; 2], 3, &cfg()), None);
        assert_eq!(remaining(&parts, Some(0), &[false, true], 3, &cfg()), None);
        assert_eq!(remaining(&parts, Some(0), &[true; 2], 10, &cfg()), None);
        // Before its first stage is complete a ratio needs the first stage's rounds.
        let parts = vec![part(2, 100, None, false), part(2, 50, None, false)];
        let c = remaining(&parts, Some(0), &[true; 2], 2, &cfg()).unwrap();
        assert_eq!(c.total, Duration::from_millis(50 + 100));
    }

    #[test]
    fn the_second_pass_visits_the_cheapest_point_per_ratio_whose_round_fits() {
        let cost = |ms: u64, ratios: usize| Cost {
            total: Duration::from_millis(ms),
            round: Duration::from_millis(ms / 4),
            ratios,
            within: 4,
        };
        // Point 0: 9 s for 3 ratios (3 s each); point 1: 1 s for 1; point 2: 10 s for 5.
        let costs = [(0, cost(9000, 3)), (1, cost(1000, 1)), (2, cost(10000, 5))];
        let left = Duration::from_secs(60);
        let next = |costs: &[(usize, Cost)], left| next_visit(costs, left).map(|(p, _)| p);
        assert_eq!(next_visit(&costs, left), Some(costs[1]));
        assert_eq!(next(&costs, left), Some(1));
        assert_eq!(next(&costs[..1], left), Some(0));
        assert_eq!(next(&[costs[0], costs[2]], left), Some(2));
        // Equal cost per ratio: the earlier point.
        assert_eq!(
            next(&[(4, cost(2000, 1)), (3, cost(4000, 2))], left),
            Some(3)
        );
        // Point 2's round (2.5 s) does not fit in 2.4 s; point 0's (2.25 s) does.
        let left = Duration::from_millis(2400);
        assert_eq!(next(&[costs[0], costs[2]], left), Some(0));
        assert_eq!(next(&costs, Duration::from_millis(200)), None);
        assert_eq!(next(&[], left), None);
    }
}
