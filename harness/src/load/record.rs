//! What one window saw, and the per-task recorder that fills it without locks.

use std::collections::BTreeMap;
use std::time::Duration;

use contract::BackendError;
use hdrhistogram::Histogram;

/// Largest latency a histogram holds: one hour, in µs.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Raw latency samples kept per window (a uniform reservoir beyond that), for the
/// bootstrap. Percentiles come from the histogram, which holds every sample.
pub const SAMPLE_CAP: usize = 2048;

/// How many of the slowest latencies each window keeps exactly (slowest 1st..50th).
pub const SLOWEST_KEPT: usize = 50;

/// Largest send lag a lag histogram holds: ten seconds, in ns.
pub const MAX_LAG_NS: u64 = 10_000_000_000;

/// A fresh latency histogram.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// A fresh send-lag histogram: ns, two significant digits (small: one per window).
pub fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LAG_NS, 2).expect("constant bounds are valid")
}

/// What one measurement window saw.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Latencies of successful requests, µs.
    pub histogram: Histogram<u64>,
    /// Up to [`SAMPLE_CAP`] latencies (µs), a uniform sample of the window's.
    pub samples: Vec<u64>,
    /// The [`SLOWEST_KEPT`] largest latencies (µs), slowest first.
    pub slowest: Vec<u64>,
    /// Failed requests by kind ([`contract::BackendError::kind`]).
    pub errors: BTreeMap<String, u64>,
    /// One message per error kind, the first seen.
    pub error_messages: BTreeMap<String, String>,
    /// Closed loop: from the first send to the last answer. Open loop: the window's
    /// slice of the arrival process, from its start to the next window's.
    pub wall: Duration,
    /// Successful answers that came back during the window, whichever window sent them
    /// (closed loop: every successful request); throughput counts these.
    pub completed: u64,
    /// Open loop: sends made (closed loop: requests started).
    pub sends: u64,
    /// Open loop: sends not made because [`super::open::OpenSpec::max_in_flight`]
    /// requests were already in flight.
    pub dropped: u64,
    /// Open loop: each send's lag behind its schedule, ns.
    pub lag: Histogram<u64>,
    /// Open loop: time the sender thread spent handing requests over (not waiting).
    pub sender_busy: Duration,
    /// Open loop: sends that started more than [`super::LATE_AFTER`] behind schedule.
    pub late: u64,
    /// Open loop: largest lag of a send behind its schedule.
    pub max_lag: Duration,
    /// Open loop: summed lag of the sends behind their schedule.
    pub total_lag: Duration,
    /// CPU time of the harness's async worker threads during the window, seconds
    /// (`None` where it cannot be read).
    pub client_cpu_s: Option<f64>,
    /// Async worker threads the client ran on.
    pub client_threads: usize,
    /// Longest any request of the window waited for its outcome (an answer or an
    /// error): a stall shows here even when the request then failed.
    pub longest_wait: Duration,
}

impl Default for Measurement {
    fn default() -> Self {
        Measurement::empty()
    }
}

impl Measurement {
    /// An empty window.
    pub fn empty() -> Measurement {
        Measurement {
            histogram: histogram(),
            samples: Vec::new(),
            slowest: Vec::new(),
            errors: BTreeMap::new(),
            error_messages: BTreeMap::new(),
            wall: Duration::ZERO,
            completed: 0,
            sends: 0,
            dropped: 0,
            lag: lag_histogram(),
            sender_busy: Duration::ZERO,
            late: 0,
            max_lag: Duration::ZERO,
            total_lag: Duration::ZERO,
            client_cpu_s: None,
            client_threads: 0,
            longest_wait: Duration::ZERO,
        }
    }

    /// Successful requests.
    pub fn ok(&self) -> u64 {
        self.histogram.len()
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful answers per second ([`Measurement::completed`] over the wall time).
    pub fn throughput(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            self.completed as f64 / s
        } else {
            0.0
        }
    }

    /// How busy the client was, as a fraction of the wall time (1.0: saturated): the
    /// async worker threads' CPU per thread, or the open loop's sender thread's hand-off
    /// time (its waiting excluded), whichever is higher.
    pub fn client_load(&self) -> Option<f64> {
        let cpu = self.client_cpu_s?;
        let s = self.wall.as_secs_f64();
        let workers =
            (s > 0.0 && self.client_threads > 0).then(|| cpu / (s * self.client_threads as f64))?;
        Some(workers.max(self.sender_busy.as_secs_f64() / s))
    }

    /// Open loop: mean lag of a send behind its schedule.
    pub fn mean_lag(&self) -> Duration {
        match u32::try_from(self.sends) {
            Ok(n) if n > 0 => self.total_lag / n,
            _ => Duration::ZERO,
        }
    }

    /// Adds `other` (a window of the same series, or another task's part): counts add,
    /// samples are pooled in proportion to the requests behind them, walls add.
    pub fn merge(&mut self, other: &Measurement, seed: u64) {
        let (n_self, n_other) = (self.ok(), other.ok());
        self.samples = pool(&self.samples, n_self, &other.samples, n_other, seed);
        self.histogram
            .add(&other.histogram)
            .expect("same bounds merge");
        self.slowest = top(self.slowest.iter().chain(&other.slowest).copied());
        self.merge_errors(other);
        self.wall += other.wall;
        self.completed += other.completed;
        self.sends += other.sends;
        self.dropped += other.dropped;
        self.lag.add(&other.lag).expect("same bounds merge");
        self.sender_busy += other.sender_busy;
        self.late += other.late;
        self.max_lag = self.max_lag.max(other.max_lag);
        self.total_lag += other.total_lag;
        self.client_cpu_s = match (self.client_cpu_s, other.client_cpu_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.client_threads = self.client_threads.max(other.client_threads);
    }

    /// Adds only the failures of `other` and its longest wait: for requests that happened
    /// outside the reported windows (warm-up, an open loop's lead-in), counted but not
    /// timed.
    pub fn merge_errors(&mut self, other: &Measurement) {
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        for (kind, msg) in &other.error_messages {
            self.error_messages
                .entry(kind.clone())
                .or_insert_with(|| msg.clone());
        }
        self.longest_wait = self.longest_wait.max(other.longest_wait);
    }
}

/// The [`SLOWEST_KEPT`] largest values, largest first.
fn top(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.truncate(SLOWEST_KEPT);
    v
}

/// Pools two uniform samples standing for `na` and `nb` values into one of at most
/// [`SAMPLE_CAP`], each side contributing in proportion to the values behind it.
fn pool(a: &[u64], na: u64, b: &[u64], nb: u64, seed: u64) -> Vec<u64> {
    if a.len() + b.len() <= SAMPLE_CAP {
        return a.iter().chain(b).copied().collect();
    }
    let total = (na + nb).max(1) as f64;
    let take_a = ((SAMPLE_CAP as f64 * na as f64 / total).round() as usize).min(a.len());
    let take_b = (SAMPLE_CAP - take_a).min(b.len());
    let mut rng = SplitMix(seed);
    let mut out = subsample(a, take_a, &mut rng);
    out.extend(subsample(b, take_b, &mut rng));
    out
}

/// `k` values of `v` without replacement.
fn subsample(v: &[u64], k: usize, rng: &mut SplitMix) -> Vec<u64> {
    let mut v = v.to_vec();
    for i in 0..k.min(v.len()) {
        let j = i + (rng.next() % (v.len() - i) as u64) as usize;
        v.swap(i, j);
    }
    v.truncate(k);
    v
}

/// A tiny deterministic generator for reservoir decisions (not for statistics).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One task's recorder: no lock, merged into the window's [`Measurement`] at the end.
pub struct Recorder {
    m: Measurement,
    rng: SplitMix,
    seen: u64,
}

impl Recorder {
    /// An empty recorder; `seed` drives its reservoir.
    pub fn new(seed: u64) -> Recorder {
        Recorder {
            m: Measurement::empty(),
            rng: SplitMix(seed),
            seen: 0,
        }
    }

    /// Records the outcome of one request that took `latency`.
    pub fn record<T>(&mut self, latency: Duration, result: Result<T, BackendError>) {
        self.m.longest_wait = self.m.longest_wait.max(latency);
        match result {
            Ok(_) => {
                let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
                self.m.histogram.saturating_record(us);
                self.seen += 1;
                if self.m.samples.len() < SAMPLE_CAP {
                    self.m.samples.push(us);
                } else {
                    let j = self.rng.next() % self.seen;
                    if (j as usize) < SAMPLE_CAP {
                        self.m.samples[j as usize] = us;
                    }
                }
                let s = &mut self.m.slowest;
                if s.len() < SLOWEST_KEPT || us > *s.last().expect("full") {
                    let at = s.partition_point(|&x| x >= us);
                    s.insert(at, us);
                    s.truncate(SLOWEST_KEPT);
                }
            }
            Err(e) => {
                let kind = e.kind().to_string();
                *self.m.errors.entry(kind.clone()).or_default() += 1;
                self.m
                    .error_messages
                    .entry(kind)
                    .or_insert_with(|| e.to_string());
            }
        }
    }

    /// Records a send's lag behind its schedule (open loop).
    pub fn send(&mut self, lag: Duration) {
        self.m.sends += 1;
        let ns = (lag.as_nanos() as u64).min(MAX_LAG_NS);
        self.m.lag.saturating_record(ns);
        self.m.total_lag += lag;
        self.m.max_lag = self.m.max_lag.max(lag);
        if lag > super::LATE_AFTER {
            self.m.late += 1;
        }
    }

    /// The recorded measurement (its wall time still zero).
    pub fn finish(self) -> Measurement {
        self.m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_the_slowest_and_a_bounded_sample() {
        let mut r = Recorder::new(1);
        for us in 1..=10_000u64 {
            r.record::<()>(Duration::from_micros(us), Ok(()));
        }
        let m = r.finish();
        assert_eq!(m.ok(), 10_000);
        assert_eq!(m.samples.len(), SAMPLE_CAP);
        assert_eq!(m.slowest.len(), SLOWEST_KEPT);
        assert_eq!(m.slowest[0], 10_000);
        assert_eq!(m.slowest[49], 9_951);
        // The reservoir is spread over the whole window, not its start.
        let mean = m.samples.iter().sum::<u64>() as f64 / m.samples.len() as f64;
        assert!((mean - 5000.0).abs() < 400.0, "{mean}");
    }

    #[test]
    fn failures_count_their_wait_and_merge_without_samples() {
        let mut r = Recorder::new(1);
        r.record::<()>(Duration::from_millis(3), Ok(()));
        r.record::<()>(Duration::from_secs(2), Err(BackendError::Timeout(2000)));
        let warm = r.finish();
        assert_eq!(warm.longest_wait, Duration::from_secs(2));
        let mut untimed = Measurement::default();
        untimed.merge_errors(&warm);
        assert_eq!((untimed.ok(), untimed.failed()), (0, 1));
        assert_eq!(untimed.longest_wait, Duration::from_secs(2));
        assert!(untimed.error_messages["timeout"].contains("2000 ms"));
    }

    #[test]
    fn merging_pools_in_proportion() {
        let mut a = Recorder::new(1);
        let mut b = Recorder::new(2);
        for _ in 0..9000 {
            a.record::<()>(Duration::from_micros(100), Ok(()));
        }
        for _ in 0..3000 {
            b.record::<()>(Duration::from_micros(900), Ok(()));
        }
        let mut m = a.finish();
        m.merge(&b.finish(), 3);
        assert_eq!(m.ok(), 12_000);
        assert_eq!(m.samples.len(), SAMPLE_CAP);
        let slow = m.samples.iter().filter(|&&x| x == 900).count() as f64;
        assert!((slow / SAMPLE_CAP as f64 - 0.25).abs() < 0.02, "{slow}");
        assert_eq!(m.slowest[0], 900);
    }
}
