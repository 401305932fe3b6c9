//! One backend's window of one round: how large it is (by time, but never fewer
//! requests than a slow backend's share of the point can pay for) and how it runs (a
//! closed loop, or an open loop's lead-in window followed by the counted one).

use std::sync::Arc;
use std::time::Duration;

use contract::{Backend, Prepared};

use super::measure::MIN_ROUNDS;
use super::plan::Measure;
use super::Opened;
use crate::load::deadline::Deadline;
use crate::load::schedule::Schedule;
use crate::load::{closed_loop, Load, Measurement, OpenLoop, OpenSpec, Window};

/// The window each backend runs: a duration window no longer than its share of the
/// point over the least number of rounds (its least number of requests still holds).
pub(super) fn window_for(cfg: &Measure) -> Window {
    match cfg.window {
        Window::Duration {
            seconds,
            min_requests,
        } => {
            let share = cfg.backend_budget.as_secs_f64() / cfg.trials.max(MIN_ROUNDS) as f64;
            Window::Duration {
                seconds: if share > 0.0 {
                    seconds.min(share)
                } else {
                    seconds
                },
                min_requests,
            }
        }
        w @ Window::Requests(_) => w,
    }
}

/// Least requests in a window however short the budget. One: where a single request
/// takes seconds (candle's ResNet-50 at batch 32 took 8 s), a window of two cost a
/// backend 32 s over the 2 rounds of a first visit, and the two largest points of the
/// default `compare` took 120 of its 200 s; a request that long averages its own noise,
/// and the rounds (not the requests within one) carry the interval.
pub const FLOOR_REQUESTS: u64 = 1;

/// `window` for a backend whose requests take `request_time`: where its share of the
/// point cannot pay for [`MIN_ROUNDS`] windows of `--min-requests` requests, fewer
/// requests a window (at least [`FLOOR_REQUESTS`]), so a slow point keeps to its budget
/// instead of spending that of the points after it.
pub(super) fn affordable(
    window: Window,
    request_time: Duration,
    load: Load,
    cfg: &Measure,
) -> Window {
    let Window::Duration {
        seconds,
        min_requests,
    } = window
    else {
        return window;
    };
    let per_request = request_time.as_secs_f64() / load.concurrency().unwrap_or(1) as f64;
    let share = cfg.backend_budget.as_secs_f64() / MIN_ROUNDS as f64;
    let fits = if per_request > 0.0 {
        (share / per_request).floor() as u64
    } else {
        min_requests
    };
    Window::Duration {
        seconds,
        min_requests: min_requests.min(fits.max(FLOOR_REQUESTS)),
    }
}

/// Requests a closed-loop window runs uncounted before it counts: two per slot where they
/// cost at most a quarter of the window, none where requests are slow. In a round the
/// backend sat idle while the others ran, and its first requests after that wake parked
/// threads and refill cold caches: a 0.1 s window of 25 requests whose first few pay for
/// that moves its p50 from one round to the next (the default `compare`'s text-CNN ratios
/// varied by 20 % and more between rounds).
pub(super) fn lead_in(window: Window, request_time: Duration, load: Load) -> u64 {
    let (Window::Duration { seconds, .. }, Load::Closed { concurrency }) = (window, load) else {
        return 0;
    };
    let lead = 2 * concurrency as u64;
    // Requests of one slot run one after another; the slots run side by side.
    let cost = request_time.as_secs_f64() * 2.0;
    if request_time.is_zero() || cost > seconds / 4.0 {
        0
    } else {
        lead
    }
}

/// The closed-loop lead-in of [`lead_in`]: `lead` requests, uncounted (returned for
/// their failures), run before the window's server counters and resources are read, so
/// that neither counts them. `None` for no lead-in.
pub(super) async fn run_lead_in(
    o: &Opened,
    load: Load,
    request: &Arc<Prepared>,
    lead: u64,
    timeout: Duration,
) -> Option<Measurement> {
    let (Load::Closed { concurrency }, true) = (load, lead > 0) else {
        return None;
    };
    let backend: Arc<dyn Backend> = Deadline::wrap(o.backend.clone(), timeout);
    let w = Window::Requests(lead);
    Some(closed_loop(backend, request.clone(), concurrency, w).await)
}

/// One backend's window of one round, each request cut at `timeout` and, in an open
/// loop, at most `max_in_flight` in flight. A closed loop runs it on its own; an open
/// loop starts an arrival process, lets one window of it pass uncounted (so the
/// backend's queue reaches its steady state: returned second, for its failures), counts
/// the next, and drains.
pub(super) async fn one_window(
    o: &Opened,
    load: Load,
    request: &Arc<Prepared>,
    window: Window,
    seed: u64,
    (timeout, max_in_flight): (Duration, Option<usize>),
) -> (Measurement, Option<Measurement>) {
    // The backend is already wrapped in `--request-timeout`; a shorter limit wraps it
    // again for this window.
    let backend: Arc<dyn Backend> = Deadline::wrap(o.backend.clone(), timeout);
    match load {
        Load::Closed { concurrency } => (
            closed_loop(backend, request.clone(), concurrency, window).await,
            None,
        ),
        Load::Open {
            request_rate,
            arrival,
        } => {
            let spec = OpenSpec {
                window,
                max_windows: Some(2),
                max_in_flight: max_in_flight.unwrap_or(1).max(1),
            };
            let schedule = Schedule::new(request_rate, arrival, seed);
            let mut lp = OpenLoop::start(backend, request.clone(), schedule, spec);
            let lead_in = lp.next_window().await;
            let m = lp.next_window().await.unwrap_or_else(Measurement::empty);
            lp.finish().await;
            (m, lead_in)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_requests_get_fewer_per_window_when_the_budget_is_short() {
        let cfg = Measure::for_tests(5, 100);
        let closed = Load::Closed { concurrency: 1 };
        let min =
            |t_ms: u64| match affordable(cfg.window, Duration::from_millis(t_ms), closed, &cfg) {
                Window::Duration { min_requests, .. } => min_requests,
                Window::Requests(_) => unreachable!(),
            };
        // 1 s a round for this backend: 5 requests of 10 ms fit, 250 ms ones only 4.
        assert_eq!((min(10), min(250), min(0)), (5, 4, 5));
        // However slow, 1 a window.
        assert_eq!(min(5000), FLOOR_REQUESTS);
    }

    #[test]
    fn fast_closed_loop_windows_get_a_lead_in_and_slow_ones_none() {
        let w = Window::Duration {
            seconds: 0.25,
            min_requests: 5,
        };
        let c = |n| Load::Closed { concurrency: n };
        let ms = Duration::from_millis;
        // Two per slot while they cost at most a quarter of the window (2 x 30 ms < 62 ms).
        assert_eq!(lead_in(w, ms(4), c(1)), 2);
        assert_eq!(lead_in(w, ms(30), c(4)), 8);
        assert_eq!(lead_in(w, ms(40), c(1)), 0);
        // Unknown request time, windows of a request count, open loops (they have their own).
        assert_eq!(lead_in(w, Duration::ZERO, c(1)), 0);
        assert_eq!(lead_in(Window::Requests(100), ms(1), c(1)), 0);
        let open = Load::Open {
            request_rate: 100.0,
            arrival: crate::load::Arrival::Constant,
        };
        assert_eq!(lead_in(w, ms(1), open), 0);
    }
}
