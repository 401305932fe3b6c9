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

/// A warm-up stops after this long (but not before one request)...
const WARMUP_CAP: Duration = Duration::from_secs(1);

/// ...except the first at a point, which goes on while its requests still get faster,
/// up to this long: candle's first text-CNN batch-100 requests took 1.4 s, 0.66 s, then
/// 0.49 s, and a point measured from the second had its first rounds' windows slowed
/// two- and threefold.
const SETTLE_CAP: Duration = Duration::from_secs(6);

/// Still getting faster: a chunk of warm-up requests whose mean latency is under this
/// share of the chunk's before it.
const FASTER: f64 = 0.9;

/// What a warm-up gave: its requests, and how long one takes once warm (its last
/// chunk's mean; zero when none answered).
pub(super) struct Warm {
    pub(super) requests: Measurement,
    pub(super) request_time: Duration,
}

/// Warm-up requests under the point's load, in chunks (the concurrency of a closed loop,
/// all of them in an open loop): `--warmup` of them, or by default the concurrency
/// (closed loop) or a tenth of a second of sends (open loop), at least 2; cut short after
/// [`WARMUP_CAP`], but never fewer than one. The first warm-up at a point (`settle`) runs
/// two chunks at least and goes on while the last chunk was [`FASTER`] than the one
/// before, up to [`SETTLE_CAP`].
pub(super) async fn warm_up(
    cfg: &Measure,
    o: &Opened,
    load: Load,
    request: &Arc<Prepared>,
    settle: bool,
) -> Warm {
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
    // Mean latency (µs) of the chunks before the last and of the last that answered.
    let (mut before, mut last): (Option<f64>, Option<f64>) = (None, None);
    loop {
        // A backend that has not answered yet is not warming: it fails.
        let warming = settle
            && match (before, last) {
                (Some(b), Some(l)) => l < FASTER * b,
                (None, Some(_)) => true,
                (_, None) => false,
            };
        let elapsed = begin.elapsed();
        let more = if done == 0 {
            true
        } else if warming {
            elapsed < SETTLE_CAP
        } else {
            done < count && elapsed < WARMUP_CAP
        };
        if !more {
            break;
        }
        let n = if done < count {
            chunk.min(count - done)
        } else {
            chunk
        };
        let m = series::window(
            &o.backend,
            request,
            load,
            &mut schedule,
            Window::Requests(n),
        )
        .await;
        if m.ok() > 0 {
            (before, last) = (last, Some(m.histogram.mean()));
        }
        total.merge(&m, done);
        done += n;
    }
    Warm {
        requests: total,
        request_time: Duration::from_micros(last.unwrap_or(0.0) as u64),
    }
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
        let Warm {
            requests: warm,
            request_time,
        } = warm_up(cfg, o, point.load, request, !again).await;
        let part = &mut state.parts[i];
        part.untimed.merge_errors(&warm);
        if !again {
            if warm.ok() > 0 {
                part.request_time = request_time;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::Sleeper;

    /// The warm-up of a test double (never a benchmark target) whose first requests take
    /// 120, 60 and 50 ms, the rest 48 ms, at a closed loop of 1.
    fn warm(settle: bool) -> Warm {
        let ms = Duration::from_millis;
        let double = Sleeper {
            cold: vec![ms(120), ms(60), ms(50)],
            ..Sleeper::new(ms(48))
        };
        let o = Opened::new("double", Arc::new(double), 0.0);
        let request = Arc::new(Prepared::new("m", vec![]));
        let load = Load::Closed { concurrency: 1 };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(warm_up(
            &Measure::for_tests(3, 10),
            &o,
            load,
            &request,
            settle,
        ))
    }

    #[test]
    fn a_first_warm_up_goes_on_while_requests_get_faster() {
        // 120, 60 (faster), 50 (faster), 48 ms (within 10 % of 50): four requests, and
        // a request takes the last one's time.
        let w = warm(true);
        assert_eq!(w.requests.ok(), 4);
        let ms = w.request_time.as_secs_f64() * 1e3;
        assert!((48.0..55.0).contains(&ms), "{ms} ms");
        // A backend that never answers is not warming: its count and no more.
        let failing = Sleeper {
            fail_every: Some(1),
            ..Sleeper::new(Duration::from_millis(1))
        };
        let o = Opened::new("failing", Arc::new(failing), 0.0);
        let request = Arc::new(Prepared::new("m", vec![]));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let load = Load::Closed { concurrency: 1 };
        let cfg = Measure::for_tests(3, 10);
        let w = rt.block_on(warm_up(&cfg, &o, load, &request, true));
        assert_eq!((w.requests.ok(), w.requests.failed()), (0, 2));
        // A later warm-up runs its count (2), the last still slow.
        let w = warm(false);
        assert_eq!(w.requests.ok(), 2);
        let ms = w.request_time.as_secs_f64() * 1e3;
        assert!((60.0..70.0).contains(&ms), "{ms} ms");
    }
}
