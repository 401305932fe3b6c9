//! [`crate::compare::measure`] on test doubles (never benchmark targets): backends that
//! sleep. Here, not beside it, because a plan is built from flags, and only this layer
//! may read them.

use std::sync::Arc;
use std::time::Duration;

use super::RunConfig;
use crate::cli::{parse, Command};
use crate::compare::measure::measure_quietly;
use crate::compare::{Opened, Plan};
use crate::load::testing::Sleeper;
use crate::load::Load;

/// A plan of one point (text-CNN batch 1, closed loop of 1, two backends) with `budget`
/// in all and windows of 20 ms (at least 5 requests, as affordable).
fn plan(budget: &str) -> Plan {
    let argv = [
        "harness",
        "compare",
        "--backends",
        "candle,onnxruntime",
        "--models",
        "text-cnn",
        "--small-batches",
        "1",
        "--large-batches",
        "1",
        "--duration",
        "0.02",
        "--time-budget",
        budget,
    ];
    let Ok(Command::Compare(args)) = parse(argv).map(|c| c.command) else {
        panic!("the test's flags parse");
    };
    let mut plan = RunConfig::compare(*args).expect("valid settings").plan();
    plan.points.truncate(1);
    plan.points[0].load = Load::Closed { concurrency: 1 };
    plan
}

#[test]
fn windows_are_sized_from_the_last_window_s_request_time() {
    // The backend's warm-up requests take 600 ms (not getting faster, so the warm-up
    // ends after two), the rest 40 ms, longer than a window's 20 ms: its windows are
    // sized by requests. Its share of the point (1 s over 2 backends, 0.25 s a window)
    // pays for one request at the warm-up's pace and for the 5 of --min-requests at the
    // windows': after its first window, its windows take 5.
    let plan = plan("1s");
    let cold = Sleeper {
        cold: vec![Duration::from_millis(600); 2],
        ..Sleeper::new(Duration::from_millis(40))
    };
    let backends = [
        Opened::new(
            "base",
            Arc::new(Sleeper::new(Duration::from_millis(5))),
            0.0,
        ),
        Opened::new("cold", Arc::new(cold), 0.0),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = rt
        .block_on(measure_quietly(&plan, &backends, "base"))
        .expect("test doubles answer");
    let row = rows.iter().find(|r| r.backend == "cold").expect("its row");
    let windows = row.measurement.windows as u64;
    assert_eq!(plan.measure.backend_budget, Duration::from_millis(500));
    assert!(windows >= 2, "{windows} windows");
    // 1 request in the first window, 5 in each after it.
    assert_eq!(row.requests, 1 + 5 * (windows - 1), "{windows} windows");
}
