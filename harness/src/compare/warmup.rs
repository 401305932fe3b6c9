//! The warm-up of a backend at a point: never counted, but its answers set the point's
//! limits ([`super::limits`]) and its failures are counted as untimed errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Prepared;

use super::failures::{error_kinds, Failure};
use super::limits;
use super::measure::{needed, round_order, PointState, Site};
use super::plan::Measure;
use super::Opened;
use crate::load::{series, Load, Measurement, Window};

/// A warm-up stops after this long (but not before one request).
const WARMUP_CAP: Duration = Duration::from_secs(1);

/// Warm-up requests under the point's load: `--warmup` of them, or by default the
/// concurrency (closed loop) or a tenth of a second of sends (open loop), at least 2;
/// cut short after [`WARMUP_CAP`], but never fewer than one.
pub(super) async fn warm_up(
    cfg: &Measure,
    o: &Opened,
    load: Load,
    request: &Arc<Prepared>,
) -> Measurement {
    let count = cfg.warmup.unwrap_or(match load {
        Load::Closed { concurrency } => (concurrency as u64).max(2),
        Load::Open { request_rate, .. } => ((request_rate * 0.1).ceil() as u64).max(2),
    });
    let chunk = match load {
        Load::Closed { concurrency } => concurrency as u64,
        Load::Open { .. } => count,
    }
    .clamp(1, count.max(1));
    let begin = Instant::now();
    let mut total = Measurement::empty();
    let mut schedule = None;
    let mut done = 0;
    while done < count && (done == 0 || begin.elapsed() < WARMUP_CAP) {
        let n = chunk.min(count - done);
        let m = series::window(
            &o.backend,
            request,
            load,
            &mut schedule,
            Window::Requests(n),
        )
        .await;
        total.merge(&m, done);
        done += n;
    }
    total
}

/// Warms up every backend still measured at the point (again, on a second visit). A
/// backend whose warm-up gets no answer is left out of the point (its request set to
/// `None`) and returned with why.
pub(super) async fn warm_all(
    at: &Site<'_>,
    opened: &[Opened],
    state: &mut PointState,
) -> Vec<(usize, Failure)> {
    let (point, cfg) = (at.point, &at.plan.measure);
    let mut failures = Vec::new();
    let again = state.rounds > 0;
    for i in round_order(opened.len(), at.plan.seed, at.p, usize::MAX) {
        let (o, Some(request)) = (&opened[i], &state.requests[i]) else {
            continue;
        };
        // On a second visit only the backends that still run rounds are warmed up.
        if again && !needed(i, at.base, &state.parts) {
            continue;
        }
        at.announce(&o.name);
        let warm = warm_up(cfg, o, point.load, request).await;
        let part = &mut state.parts[i];
        part.untimed.merge_errors(&warm);
        if !again {
            if warm.ok() > 0 {
                part.request_time = Duration::from_micros(warm.histogram.mean() as u64);
            }
            part.request_timeout = limits::window_timeout(cfg.request_timeout, part.request_time);
            if let Load::Open { .. } = point.load {
                part.max_in_flight = Some(limits::in_flight_cap(cfg.max_in_flight, request));
            }
        }
        if warm.ok() == 0 && warm.failed() > 0 {
            if let Some((kind, msg)) = warm.error_messages.iter().next() {
                failures.push((
                    i,
                    Failure {
                        reason: format!("every warm-up request failed ({kind}): {msg}"),
                        error_kinds: error_kinds(&warm),
                    },
                ));
            }
            state.requests[i] = None;
        }
    }
    failures
}
