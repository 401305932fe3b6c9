//! The warm-up of a backend at a point: never counted, but its answers set the point's
//! limits ([`super::limits`]) and its failures are counted as untimed errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Prepared;

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
