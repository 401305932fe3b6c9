//! Worker grids (`--workers 1,2,4`): one plan per count, and one count as before.

use super::tests::{err, ok};
use super::*;

#[test]
fn a_list_of_workers_is_one_plan_per_count() {
    let c = ok(&["--workers", "1,2", "--time-budget", "20s"]);
    assert_eq!((c.workers, c.worker_counts.clone()), (1, vec![1, 2]));
    // The load follows each count; the record has both.
    assert_eq!(
        c.loads,
        [
            Load::Closed { concurrency: 1 },
            Load::Closed { concurrency: 2 }
        ]
    );
    let plans = c.plans();
    assert_eq!(plans.len(), 2);
    for (plan, n) in plans.iter().zip([1, 2]) {
        assert_eq!(plan.open.workers, n);
        assert_eq!(plan.record.worker_counts, [n]);
        assert_eq!(plan.record.loads, [Load::Closed { concurrency: n }]);
        assert_eq!(plan.open.intra_threads, contract::default_intra_threads(n));
        // Each count has half the budget.
        assert_eq!(plan.measure.time_budget, Duration::from_secs(10));
    }
    // The record's per-point share is a count's.
    assert_eq!(c.point_budget_s, plans[0].record.point_budget_s);
    // A load or thread count given holds for every count; repeats count once.
    let c = ok(&[
        "--workers",
        "2,1,2",
        "--concurrency",
        "4",
        "--intra-threads",
        "1",
    ]);
    assert_eq!(c.worker_counts, [2, 1]);
    for plan in c.plans() {
        assert_eq!(plan.record.loads, [Load::Closed { concurrency: 4 }]);
        assert_eq!(plan.open.intra_threads, 1);
    }
}

#[test]
fn one_count_is_a_run_as_before() {
    let c = ok(&["--workers", "2"]);
    assert_eq!((c.workers, c.worker_counts.clone()), (2, vec![2]));
    let plans = c.plans();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].record, c.plan().record);
    assert_eq!(plans[0].record.time_budget_s, 240.0);
}

#[test]
fn the_config_file_takes_a_list_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "workers = [1, 4]\n").unwrap();
    let c = ok(&["--config", path.to_str().unwrap()]);
    assert_eq!(c.worker_counts, [1, 4]);
    // The command line wins.
    let c = ok(&["--config", path.to_str().unwrap(), "--workers", "3"]);
    assert_eq!(c.worker_counts, [3]);
}

#[test]
fn bad_worker_lists_are_one_sentence() {
    let e = err(&["--workers", "1,x"]);
    assert!(
        e.contains("invalid value 'x' for '--workers <N[,N...]>': give whole numbers of workers from 1 to 256, such as 2 or 1,2,4"),
        "{e}"
    );
    let e = err(&["--workers", "1,0"]);
    assert!(e.contains("give a whole number of at least 1"), "{e}");
}

/// report.html (a layer below) is checked here, where the six-backend fixture lives.
#[test]
fn a_worker_grid_has_its_table_and_one_run_none() {
    let grid = super::page_width::six_backends_at("1,2");
    let page = crate::report::html(&grid);
    assert!(page.contains("<h2>Worker grid</h2>"), "no grid table");
    let table = &page[page.find("<table class=\"grid\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    // A row per point, backend and count: the header, then every result row.
    assert_eq!(table.matches("<tr>").count(), 1 + grid.results.len());
    assert!(table.contains("<td class=\"l\">1</td>") && table.contains("<td class=\"l\">2</td>"));
    let one = super::page_width::six_backends_at("2");
    assert!(!crate::report::html(&one).contains("Worker grid"));
}

#[test]
fn a_count_that_fails_as_a_whole_keeps_the_earlier_counts() {
    // What the grid does when a later count cannot run: the results of the counts
    // before it stay, and that count's backends are failed there (a partial run).
    let mut all = super::page_width::six_backends_at("1");
    let rows = all.results.len();
    assert!(rows > 0 && all.failed.is_empty());
    let backends = ["candle".to_string(), "flask".to_string()];
    let e = HarnessError::NothingToMeasure("no backend opened".into());
    crate::compare::fail_count(&mut all, &backends, 2, e);
    assert_eq!(all.results.len(), rows);
    let failed: Vec<_> = all.failed.iter().map(|f| (&*f.backend, &*f.at)).collect();
    assert_eq!(failed, [("candle", "2 workers"), ("flask", "2 workers")]);
    assert!(all.failed[0].reason.contains("no backend opened"));
    assert!(all.partial());
    // A stop signal during that count is an interruption, not a failure.
    let mut all = super::page_width::six_backends_at("1");
    let e = HarnessError::Interrupted(crate::error::Signal::Int);
    crate::compare::fail_count(&mut all, &backends, 2, e);
    assert!(all.failed.is_empty() && all.interrupted.is_some());
}
