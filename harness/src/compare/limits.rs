//! Limits a point's windows run with, set from what its warm-up showed: the request
//! timeout relative to the point's expected latency, and the open loop's cap on
//! requests in flight relative to the request's size.

use std::time::Duration;

use contract::Prepared;

/// Once a point's warm-up has answered, a request of its windows may take this many
/// times the warm-up's last requests' mean latency ...
pub const TIMEOUT_FACTOR: u32 = 20;

/// ... but never less than this (a fast backend's hiccup is not a failure).
pub const TIMEOUT_FLOOR: Duration = Duration::from_secs(2);

/// Bytes of request data the open loop keeps in flight at most: the in-flight cap is
/// lowered to `IN_FLIGHT_BYTES / request bytes` (at least 1) where requests are large,
/// so a high rate on a slow backend cannot grow memory by a request's encoding per
/// queued send.
pub const IN_FLIGHT_BYTES: usize = 1 << 30;

/// The request timeout of a point's windows: `min(limit, max(TIMEOUT_FLOOR,
/// TIMEOUT_FACTOR × warm_mean))`, or `limit` when no warm-up request answered
/// (`warm_mean` zero).
pub fn window_timeout(limit: Duration, warm_mean: Duration) -> Duration {
    if warm_mean.is_zero() {
        return limit;
    }
    let relative = warm_mean
        .checked_mul(TIMEOUT_FACTOR)
        .unwrap_or(limit)
        .max(TIMEOUT_FLOOR);
    relative.min(limit)
}

/// The open loop's in-flight cap for `request`: `max_in_flight`, lowered so the
/// requests in flight hold at most [`IN_FLIGHT_BYTES`] of input data.
pub fn in_flight_cap(max_in_flight: usize, request: &Prepared) -> usize {
    let bytes: usize = request.inputs().iter().map(|t| t.data.len()).sum();
    let by_size = IN_FLIGHT_BYTES.checked_div(bytes).unwrap_or(usize::MAX);
    max_in_flight.min(by_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::Tensor;

    #[test]
    fn the_timeout_follows_the_warm_up_within_the_flag() {
        let limit = Duration::from_secs(30);
        let ms = Duration::from_millis;
        assert_eq!(window_timeout(limit, Duration::ZERO), limit);
        assert_eq!(window_timeout(limit, ms(1)), TIMEOUT_FLOOR);
        assert_eq!(window_timeout(limit, ms(500)), Duration::from_secs(10));
        assert_eq!(window_timeout(limit, ms(5000)), limit);
        assert_eq!(window_timeout(ms(100), ms(1)), ms(100));
        assert_eq!(window_timeout(limit, Duration::MAX), limit);
    }

    #[test]
    fn large_requests_lower_the_in_flight_cap() {
        let small = Prepared::new("m", vec![Tensor::from_i64("ids", vec![1, 4], &[1; 4])]);
        assert_eq!(in_flight_cap(1024, &small), 1024);
        // 64 MiB a request: 16 fit in 1 GiB.
        let big = Tensor::new(
            "x",
            contract::DType::F32,
            vec![16, 1 << 20],
            vec![0u8; 64 << 20].into(),
        )
        .unwrap();
        assert_eq!(in_flight_cap(1024, &Prepared::new("m", vec![big])), 16);
        assert_eq!(in_flight_cap(1, &Prepared::new("m", vec![])), 1);
    }
}
