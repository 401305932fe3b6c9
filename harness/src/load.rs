//! The closed-loop load generator.
//!
//! `concurrency` tasks each keep exactly one request in flight: send, wait for the
//! answer, send again. Each task records latencies into its own histogram (µs, three
//! significant digits), so the hot path takes no lock; the histograms are merged when
//! the window ends. One request is one [`Backend::infer`] call, timed around the call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Backend, Prepared};
use hdrhistogram::Histogram;

use crate::config::Window;

/// Largest latency a histogram holds: one hour, in µs.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What one measurement window saw.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Latencies of successful requests, µs.
    pub histogram: Histogram<u64>,
    /// Failed requests by kind ([`contract::BackendError::kind`]).
    pub errors: BTreeMap<String, u64>,
    /// One message per error kind, the first seen.
    pub error_messages: BTreeMap<String, String>,
    /// From the first send to the last answer.
    pub wall: Duration,
}

impl Measurement {
    /// Successful requests.
    pub fn ok(&self) -> u64 {
        self.histogram.len()
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A fresh latency histogram.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// Runs `request` in a closed loop at `concurrency` until `window` ends.
pub async fn closed_loop(
    backend: Arc<dyn Backend>,
    request: Arc<Prepared>,
    concurrency: usize,
    window: Window,
) -> Measurement {
    let started = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (backend, request, started) = (backend.clone(), request.clone(), started.clone());
            tokio::spawn(async move { worker(&*backend, &request, &started, window, begin).await })
        })
        .collect();
    let mut total = Measurement {
        histogram: histogram(),
        errors: BTreeMap::new(),
        error_messages: BTreeMap::new(),
        wall: Duration::ZERO,
    };
    for task in tasks {
        let part = task.await.expect("load task does not panic");
        total
            .histogram
            .add(&part.histogram)
            .expect("same bounds merge");
        for (kind, n) in part.errors {
            *total.errors.entry(kind).or_default() += n;
        }
        for (kind, msg) in part.error_messages {
            total.error_messages.entry(kind).or_insert(msg);
        }
    }
    total.wall = begin.elapsed();
    total
}

/// True while the window wants another request; claims it.
fn claim(started: &AtomicU64, window: Window, begin: Instant) -> bool {
    let n = started.fetch_add(1, Ordering::Relaxed);
    match window {
        Window::Requests(total) => n < total,
        Window::Duration {
            seconds,
            min_requests,
        } => n < min_requests || begin.elapsed().as_secs_f64() < seconds,
    }
}

async fn worker(
    backend: &dyn Backend,
    request: &Prepared,
    started: &AtomicU64,
    window: Window,
    begin: Instant,
) -> Measurement {
    let mut m = Measurement {
        histogram: histogram(),
        errors: BTreeMap::new(),
        error_messages: BTreeMap::new(),
        wall: Duration::ZERO,
    };
    while claim(started, window, begin) {
        let t0 = Instant::now();
        let result = backend.infer(request).await;
        let us = t0.elapsed().as_micros() as u64;
        match result {
            Ok(_) => m.histogram.saturating_record(us.clamp(1, MAX_LATENCY_US)),
            Err(e) => {
                let kind = e.kind().to_string();
                *m.errors.entry(kind.clone()).or_default() += 1;
                m.error_messages
                    .entry(kind)
                    .or_insert_with(|| e.to_string());
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{BackendError, Description, Protocol, Tensor};

    /// Test double (never a benchmark target): answers after a fixed sleep, and fails
    /// every third request.
    struct Sleeper {
        calls: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Backend for Sleeper {
        fn describe(&self) -> Description {
            Description {
                name: "sleeper".into(),
                engine: "test double".into(),
                protocol: Protocol::InProcess,
                device: "cpu".into(),
                workers: 1,
                intra_threads: None,
                details: Default::default(),
            }
        }
        async fn health(&self) -> Result<(), BackendError> {
            Ok(())
        }
        async fn infer(&self, _: &Prepared) -> Result<Vec<Tensor>, BackendError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.calls.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                Err(BackendError::Server {
                    status: "503".into(),
                    message: "busy".into(),
                })
            } else {
                Ok(vec![])
            }
        }
    }

    fn run(window: Window, concurrency: usize) -> Measurement {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend: Arc<dyn Backend> = Arc::new(Sleeper {
            calls: AtomicU64::new(0),
        });
        let req = Arc::new(Prepared::new("m", vec![]));
        rt.block_on(closed_loop(backend, req, concurrency, window))
    }

    #[test]
    fn request_windows_send_exactly_n_and_count_errors_by_kind() {
        let m = run(Window::Requests(30), 3);
        assert_eq!(m.ok() + m.failed(), 30);
        assert_eq!(m.errors.get("server"), Some(&10));
        assert!(m.error_messages["server"].contains("503"));
        // Every latency is at least the 5 ms the backend sleeps.
        assert!(m.histogram.min() >= 5_000, "{}", m.histogram.min());
    }

    #[test]
    fn duration_windows_honour_the_floor_on_requests() {
        let m = run(
            Window::Duration {
                seconds: 0.001,
                min_requests: 12,
            },
            2,
        );
        assert!(m.ok() + m.failed() >= 12);
        assert!(m.ok() + m.failed() <= 13);
    }
}
