//! One measured point of one backend, and one backend against the baseline at a point.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::load::Arrival;
use crate::resources::Usage;
use crate::stats::Latency;

/// Failed requests of one kind.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorCount {
    /// Kind of failure ([`contract::BackendError::kind`]).
    pub kind: String,
    /// How many.
    pub count: u64,
    /// The first message seen.
    pub example: String,
}

/// Server-side time per request, in milliseconds (backends that report it).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
pub struct Breakdown {
    /// Waiting in the server's queue.
    pub queue_ms: f64,
    /// Copying inputs into the engine.
    pub compute_input_ms: f64,
    /// Running the model.
    pub compute_infer_ms: f64,
    /// Copying outputs out.
    pub compute_output_ms: f64,
}

/// One measured point.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PointResult {
    /// Model name.
    pub model: String,
    /// Backend name.
    pub backend: String,
    /// Precision the backend ran the model at (`--precision`).
    #[serde(default = "super::fp32")]
    pub precision: String,
    /// Samples per request.
    pub batch_size: usize,
    /// Load level, as the tables label it (`c=2`, `50/s poisson`).
    pub load: String,
    /// Closed loop: requests in flight (`None` in an open loop).
    pub concurrency: Option<usize>,
    /// Open loop: scheduled requests per second (`None` in a closed loop).
    pub request_rate: Option<f64>,
    /// Open loop: spacing of the sends.
    pub arrival: Option<Arrival>,
    /// Matched worker count.
    pub workers: usize,
    /// Successful requests in the reported windows (every round's): the samples behind
    /// the percentiles.
    pub requests: u64,
    /// Failed requests in the reported windows.
    pub errors: u64,
    /// Failed requests by kind.
    pub error_kinds: Vec<ErrorCount>,
    /// Failed requests outside the reported windows, counted where they happened but
    /// not timed: the point's warm-up and, in an open loop, each round's lead-in window
    /// (its answers are not timed). The tables show `errors + untimed_errors` beside the
    /// cell.
    #[serde(default)]
    pub untimed_errors: u64,
    /// Those failed requests by kind.
    #[serde(default)]
    pub untimed_error_kinds: Vec<ErrorCount>,
    /// Summed length of the reported windows, seconds.
    pub duration_s: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Samples per second.
    pub samples_per_s: f64,
    /// Latency of successful requests; `None` if every request failed.
    pub latency_ms: Option<Latency>,
    /// Server-side breakdown, where the backend reports one.
    pub server: Option<Breakdown>,
    /// How the figures were obtained: trials, windows, stability, client health.
    pub measurement: MeasurementInfo,
    /// CPU, memory and GPU use of what served the requests, sampled at 20 Hz during the
    /// measured series (GPU fields are `null` without a GPU; every figure is `null` for a
    /// server given by URL, whose resources are not visible).
    #[serde(default)]
    pub resources: Usage,
    /// Growth of the server's Prometheus counters for this model over the measured
    /// windows (scraped before and after each), by metric name, such as Triton's
    /// `nv_inference_count` or `nv_inference_queue_duration_us`; empty where the server
    /// has no metrics endpoint.
    #[serde(default)]
    pub server_metrics: std::collections::BTreeMap<String, f64>,
    /// What the throughput cost: samples per second per CPU core used and per GPU watt.
    #[serde(default)]
    pub efficiency: Efficiency,
    /// Short flags for tables: `unstable`, `client-bound`, `late-sends`, `dropped-sends`,
    /// `few-samples`, `stall`.
    pub flags: Vec<String>,
    /// Latency samples of each round's window, for `harness diff`: per round, per window
    /// (none when the backend sat the round out), base64 of HDR histogram's V2
    /// serialisation of the window's sample (µs, three significant digits).
    #[serde(default)]
    pub window_histograms: Vec<Vec<String>>,
    /// Latency samples (µs) by round (`samples[r]`: round `r`'s window, empty when the
    /// backend sat it out), for the intervals; not written.
    #[serde(skip)]
    pub samples: Vec<Vec<Vec<u64>>>,
}

/// Throughput per unit of what it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Efficiency {
    /// Samples per second per CPU core used (`samples_per_s / resources.cpu_cores`);
    /// `null` where the CPU is not visible or none was used.
    pub samples_per_s_per_core: Option<f64>,
    /// Samples per second per GPU watt (`samples_per_s / resources.gpu_power_w`); `null`
    /// without a GPU or where it does not report its power.
    pub samples_per_s_per_gpu_watt: Option<f64>,
}

impl Efficiency {
    /// `samples_per_s` over the cores and watts of `usage`.
    pub fn of(samples_per_s: f64, usage: &Usage) -> Efficiency {
        let per = |x: Option<f64>| x.filter(|&x| x > 0.0).map(|x| samples_per_s / x);
        Efficiency {
            samples_per_s_per_core: per(usage.cpu_cores),
            samples_per_s_per_gpu_watt: per(usage.gpu_power_w),
        }
    }
}

/// How a point's figures were obtained.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct MeasurementInfo {
    /// Rounds the backend ran in (one window each).
    pub trials: usize,
    /// 1 when the backend's last 3 windows agreed (the stability rule), else 0.
    pub stable_trials: usize,
    /// The backend's last 3 windows agreed.
    pub stable: bool,
    /// Windows run (one per round).
    pub windows: usize,
    /// Windows whose samples the figures merge: every one.
    pub reported_windows: usize,
    /// Requests (successful and failed) in every window; warm-up excluded.
    pub total_requests: u64,
    /// Wall time of every window, seconds.
    pub total_wall_s: f64,
    /// Sends made (open loop) or requests started (closed loop).
    pub sends: u64,
    /// Open loop: sends that started more than 1 ms behind schedule.
    pub late_sends: u64,
    /// `late_sends / sends`.
    pub late_fraction: f64,
    /// Open loop: mean lag of a send behind schedule, ms.
    pub mean_lag_ms: f64,
    /// Open loop: largest lag of a send behind schedule, ms.
    pub max_lag_ms: f64,
    /// Open loop: 99th percentile of a send's lag behind schedule, ms.
    #[serde(default)]
    pub p99_lag_ms: f64,
    /// Open loop: sends not made because `--max-in-flight` requests were in flight.
    #[serde(default)]
    pub dropped_sends: u64,
    /// Busiest trial's client CPU per async worker thread, as a fraction of wall time
    /// (`None` where it cannot be read).
    pub client_cpu: Option<f64>,
    /// The load generator's threads were saturated (CPU of the async workers, hand-off
    /// time of the open loop's sender): the figures may describe the client rather than
    /// the backend. Lateness alone is `late-sends`.
    pub client_bound: bool,
    /// Longest any request of the point (warm-up included) waited for its answer or its
    /// error, ms. Past [`crate::results::STALL_FACTOR`] times the point's p50 and
    /// [`crate::results::STALL_FLOOR_MS`], the row is flagged `stall`.
    #[serde(default)]
    pub longest_wait_ms: f64,
    /// The request timeout the point's windows ran with, ms: `--request-timeout`, or
    /// less once the warm-up showed how long a request takes (see `--help`).
    #[serde(default)]
    pub request_timeout_ms: u64,
    /// Open loop: the cap on requests in flight the point ran with (`--max-in-flight`,
    /// or fewer where the requests are large: `--max-in-flight-bytes`); `null` in a
    /// closed loop.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

/// A request waiting this many times a point's p50 without an answer is a stall...
pub const STALL_FACTOR: f64 = 10.0;

/// ... when it also waited at least this long (ms): a fast backend's hiccup is not one.
pub const STALL_FLOOR_MS: f64 = 1000.0;

/// True when a point whose p50 is `p50_ms` (`None`: no request answered) saw a request
/// wait `longest_ms`: longer than [`STALL_FACTOR`] × p50 and [`STALL_FLOOR_MS`]. With no
/// answer at all, any wait past the floor is one.
pub fn is_stall(longest_ms: f64, p50_ms: Option<f64>) -> bool {
    longest_ms >= STALL_FLOOR_MS && p50_ms.is_none_or(|p| longest_ms > STALL_FACTOR * p)
}

/// A backend against the baseline at one point.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Ratio {
    /// Model name.
    pub model: String,
    /// Samples per request.
    pub batch_size: usize,
    /// Load level (`c=2`, `50/s poisson`).
    pub load: String,
    /// Backend compared.
    pub backend: String,
    /// Worker count both ran with (a worker grid has one ratio per count).
    #[serde(default = "one")]
    pub workers: usize,
    /// Baseline backend.
    pub baseline: String,
    /// `p50(backend) / p50(baseline)`.
    pub p50_ratio: f64,
    /// Lower end of the p50 ratio's 95 % interval (paired rounds; see `rounds`).
    pub ci_low: f64,
    /// Upper end of the p50 ratio's 95 % interval.
    pub ci_high: f64,
    /// The p50 interval excludes 1.0: a clear difference.
    pub clear_difference: bool,
    /// `mean(backend) / mean(baseline)`.
    pub mean_ratio: f64,
    /// Lower end of the mean ratio's 95 % interval.
    pub mean_ci_low: f64,
    /// Upper end of the mean ratio's 95 % interval.
    pub mean_ci_high: f64,
    /// Achieved half-width of the p50 ratio's interval, relative to the ratio
    /// (`(ci_high - ci_low) / (2 p50_ratio)`; 0.05 is ±5 %).
    #[serde(default)]
    pub half_width: f64,
    /// The half-width is within the run's target (`config.target_precision`).
    #[serde(default)]
    pub target_met: bool,
    /// Why the target was missed: `time` (the point's budget or rounds ran out first)
    /// or `unstable` (the windows of the backend or of the baseline never agreed, by the
    /// stability rule); `null` when it was met.
    #[serde(default)]
    pub missed: Option<Miss>,
    /// Rounds both backends ran in: the replicates behind the interval (with fewer than
    /// 2, the interval is a bootstrap of the samples and misses the drift between
    /// rounds).
    #[serde(default)]
    pub rounds: usize,
    /// Of `rounds`, those set aside as disturbed: a round in which either backend's
    /// window lay far from all its other windows at the point (slowed as a whole by other
    /// work on the machine), left out of the ratio and its interval; at most one window
    /// in five of each backend.
    #[serde(default)]
    pub set_aside_rounds: usize,
    /// Rounds the interval needs for the target, as the measuring loop last reckoned
    /// them: from the first stage's spread (or the larger spread of all rounds), or
    /// before that stage was complete, forecast from the rounds so far (`stats::paired::
    /// rounds_to_target`); `null` with fewer than 2 rounds, and more than any run can
    /// give where the spread between opens alone is wider than the target. Above
    /// `rounds` where time ran out: what more time would have been spent on.
    #[serde(default)]
    pub rounds_to_target: Option<usize>,
}

/// `workers` of ratios written before worker grids existed.
fn one() -> usize {
    1
}

/// Why a ratio's interval missed the precision target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Miss {
    /// The point's share of the time budget, or its rounds, ran out first.
    Time,
    /// The ratio ran the rounds its first stage asked for, but its rounds varied more
    /// than that stage foresaw (drift between rounds, or between visits to the point),
    /// and the time or the rounds ran out before the rounds that spread asks for.
    Unstable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_divides_by_what_was_seen() {
        let usage = Usage {
            cpu_cores: Some(2.0),
            gpu_power_w: Some(50.0),
            ..Default::default()
        };
        let e = Efficiency::of(100.0, &usage);
        assert_eq!(e.samples_per_s_per_core, Some(50.0));
        assert_eq!(e.samples_per_s_per_gpu_watt, Some(2.0));
        let none = Efficiency::of(100.0, &Usage::default());
        assert_eq!(none, Efficiency::default());
        let idle = Usage {
            cpu_cores: Some(0.0),
            ..Default::default()
        };
        assert_eq!(Efficiency::of(100.0, &idle).samples_per_s_per_core, None);
    }

    #[test]
    fn a_stall_is_long_against_the_p50_and_the_floor() {
        // A 15 s freeze of a 5 ms backend; a 1.5 s request of a 1 s one is not.
        assert!(is_stall(15_000.0, Some(5.0)));
        assert!(!is_stall(1_500.0, Some(1_000.0)));
        // A fast backend's 50 ms hiccup is under the floor.
        assert!(!is_stall(50.0, Some(1.0)));
        // Nothing answered: any wait past the floor.
        assert!(is_stall(1_000.0, None));
        assert!(!is_stall(999.0, None));
    }
}
