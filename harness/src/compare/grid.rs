//! A worker grid (`--workers 1,2,4`): the whole comparison once per worker count, each
//! with its own plan (servers restarted and engines re-opened at that count, its share
//! of the time budget), merged into one set of results whose rows name their count.
//!
//! Each count is a complete [`compare`]: its backends are opened, checked for agreement
//! and dropped (servers stopped) before the next count opens them again, so no two
//! counts' servers share the machine. A stop signal ends the grid after the count it
//! came in, with what was measured; so does a count that fails as a whole (its servers
//! do not start at that count, say): its backends are recorded as failed there, and the
//! earlier counts' results are written (the run exits as partial).

use crate::compare::{compare, Plan};
use crate::error::Stop;
use crate::results::{Failed, Results, RunRecord, System};
use crate::HarnessError;

/// Runs every plan of `plans` (one per worker count, in order) and merges their
/// results under `record`, the settings of the whole run. One plan is [`compare`].
pub async fn grid(
    plans: Vec<Plan>,
    record: RunRecord,
    stop: Stop,
) -> Result<Results, HarnessError> {
    let counts = plans.len();
    if counts == 1 {
        let plan = plans.into_iter().next().expect("one plan");
        return compare(plan, stop).await;
    }
    let quiet = plans[0].quiet;
    let mut merged: Option<Results> = None;
    for (i, plan) in plans.into_iter().enumerate() {
        let workers = plan.open.workers;
        if !quiet {
            // Between two counts' progress bars, each cleared when its count ends.
            eprintln!("worker grid: {workers} workers ({} of {counts})", i + 1);
        }
        let backends = plan.backends.clone();
        let mut part = match (compare(plan, stop.clone()).await, merged.as_mut()) {
            (Ok(part), _) => part,
            (Err(e), None) => return Err(e),
            // A later count that cannot run keeps what the earlier ones measured: the
            // count is a failure of each of its backends, and the grid ends there.
            (Err(e), Some(all)) => {
                fail_count(all, &backends, workers, e);
                break;
            }
        };
        for f in &mut part.failed {
            f.at = format!("{workers} workers, {}", f.at);
        }
        // Rows carry the grid's count even where a server given by URL describes its
        // own (what it runs is not the harness's to change).
        part.results.iter_mut().for_each(|r| r.workers = workers);
        part.ratios.iter_mut().for_each(|r| r.workers = workers);
        let stopped = part.interrupted.is_some();
        merged = Some(match merged {
            None => part,
            Some(all) => merge(all, part),
        });
        if stopped {
            break;
        }
    }
    let mut all = merged.expect("at least one worker count");
    all.config = record;
    Ok(all)
}

/// Records that the count of `workers` failed with `e` before it measured anything:
/// each of its `backends` failed there (an interruption is recorded as one).
pub(crate) fn fail_count(all: &mut Results, backends: &[String], workers: usize, e: HarnessError) {
    if let HarnessError::Interrupted(signal) = e {
        all.interrupted = Some(signal.to_string());
        return;
    }
    let reason = e.to_string();
    all.failed.extend(backends.iter().map(|b| Failed {
        backend: b.clone(),
        at: format!("{workers} workers"),
        reason: reason.clone(),
        error_kinds: vec![],
    }));
}

/// `later`'s rows, ratios, backends and failures after `all`'s.
fn merge(mut all: Results, later: Results) -> Results {
    all.finished_at = later.finished_at;
    all.backends.extend(later.backends);
    for u in later.unavailable {
        if !all.unavailable.iter().any(|x| x.backend == u.backend) {
            all.unavailable.push(u);
        }
    }
    // One agreement row per model and backend: the worst of the counts.
    for a in later.agreement {
        match all
            .agreement
            .iter_mut()
            .find(|x| x.model == a.model && x.backend == a.backend)
        {
            Some(x) if a.max_abs_diff > x.max_abs_diff || !a.passed => *x = a,
            Some(_) => {}
            None => all.agreement.push(a),
        }
    }
    all.results.extend(later.results);
    all.ratios.extend(later.ratios);
    all.failed.extend(later.failed);
    all.interrupted = all.interrupted.or(later.interrupted);
    all.system = System {
        engines: Results::engines(&all.backends),
        ..later.system
    };
    all
}
