//! TEST DOUBLES, never benchmark targets, and the queueing theory they must follow.
//!
//! [`NoOp`] answers at once: the cost of the harness alone. [`FifoServer`] is a server
//! of known, deterministic service time with ONE FIFO worker. Shared by the open-loop
//! benches (`open_loop_rate`, `open_loop_lag`), `benches/queueing.rs` (the validation
//! table) and `tests/queueing.rs` (the wide-tolerance check). [`FifoServer`] is an in-process [`Backend`] whose `infer`
//! queues a job to a single worker thread; the worker holds each job for exactly the
//! service time `D` (a coarse sleep, then a spin: [`clock::wait_until`]) and answers,
//! in arrival order. Under the open loop that is a D/D/1 queue (constant arrivals) or
//! an M/D/1 queue (Poisson arrivals), whose mean sojourn is Pollaczek-Khinchine's
//! `W = D + rho D / (2 (1 - rho))`; [`simulate`] gives every request's sojourn for a
//! given list of arrival times (Lindley's recursion), for the percentiles. The double
//! also logs each job's service as the queue saw it ([`FifoServer::services`]: `D` plus
//! what a busy machine added), so a test can feed the same queue model the service
//! times that really happened ([`simulate_each`]) and keep its tolerance meaningful on
//! a loaded machine.
#![allow(dead_code)]

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use contract::{Backend, BackendError, Description, Prepared, Protocol, Tensor};
use harness::load::schedule::Schedule;
use harness::load::{self, clock, Arrival, Measurement, OpenLoop, OpenSpec};
use tokio::sync::oneshot;

/// The description of a test double.
fn describe(name: &str, engine: &str) -> Description {
    Description {
        name: name.into(),
        engine: engine.into(),
        protocol: Protocol::InProcess,
        device: "cpu".into(),
        workers: 1,
        intra_threads: None,
        models: vec![],
        served_by_test_peer: false,
        details: Default::default(),
    }
}

/// A test double that does nothing: the cost of the harness alone.
pub struct NoOp;

#[async_trait::async_trait]
impl Backend for NoOp {
    fn describe(&self) -> Description {
        describe("no-op", "test double: answers at once")
    }
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn infer(&self, _: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        Ok(vec![])
    }
}

/// The harness's runtime: multi-threaded, `workers` threads (`None`: one per core),
/// named as the harness names them (so their CPU counts as the client's).
pub fn runtime(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.thread_name(load::cpu::CLIENT_THREAD_NAME)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Every window of an open loop on `schedule` under `spec` (it must bound the windows),
/// merged; then the drain.
pub fn open_windows(
    rt: &tokio::runtime::Runtime,
    backend: &Arc<dyn Backend>,
    request: &Arc<Prepared>,
    schedule: Schedule,
    spec: OpenSpec,
) -> Measurement {
    assert!(spec.max_windows.is_some(), "a bounded open loop");
    rt.block_on(async {
        let mut lp = OpenLoop::start(backend.clone(), request.clone(), schedule, spec);
        let mut all = Measurement::empty();
        let mut k = 0;
        while let Some(m) = lp.next_window().await {
            all.merge(&m, k);
            k += 1;
        }
        lp.finish().await;
        all
    })
}

/// A job: where to answer, and when it was queued.
type Job = (oneshot::Sender<()>, Instant);

/// A test double: one FIFO worker that holds every request for exactly `service`.
pub struct FifoServer {
    jobs: mpsc::Sender<Job>,
    /// Each job's service as the queue saw it, in arrival order.
    served: Arc<Mutex<Vec<Duration>>>,
    service: Duration,
}

impl FifoServer {
    /// Starts the worker thread; it ends when the server is dropped.
    pub fn new(service: Duration) -> FifoServer {
        let (tx, rx) = mpsc::channel::<Job>();
        let served = Arc::new(Mutex::new(Vec::new()));
        let log = served.clone();
        std::thread::Builder::new()
            .name("fifo-double".into())
            .spawn(move || {
                clock::tighten_timer_slack();
                clock::raise_priority();
                let never = AtomicBool::new(false);
                let mut last_end: Option<Instant> = None;
                while let Ok((reply, queued)) = rx.recv() {
                    let start = Instant::now();
                    clock::wait_until(start + service, clock::SPIN_BEFORE, &never);
                    let end = Instant::now();
                    // From when the job could have started (queued, or the one before
                    // it left) to when it left: the service time plus whatever the
                    // machine added (waking the worker, preempting it).
                    let from = last_end.map_or(queued, |e| e.max(queued));
                    last_end = Some(end);
                    log.lock().expect("not poisoned").push(end - from);
                    let _ = reply.send(());
                }
            })
            .expect("a thread");
        FifoServer {
            jobs: tx,
            served,
            service,
        }
    }

    /// The nominal service time.
    pub fn service(&self) -> Duration {
        self.service
    }

    /// Every job's service so far as the queue saw it (seconds), in arrival order:
    /// the nominal time plus what a loaded machine added.
    pub fn services(&self) -> Vec<f64> {
        let log = self.served.lock().expect("not poisoned");
        log.iter().map(Duration::as_secs_f64).collect()
    }

    /// Mean of [`FifoServer::services`].
    pub fn mean_service(&self) -> Duration {
        let s = self.services();
        Duration::from_secs_f64(s.iter().sum::<f64>() / s.len().max(1) as f64)
    }
}

#[async_trait::async_trait]
impl Backend for FifoServer {
    fn describe(&self) -> Description {
        describe(
            "fifo-double",
            "test double: one FIFO worker, fixed service time",
        )
    }
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn infer(&self, _: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((tx, Instant::now()))
            .map_err(|_| BackendError::WorkersGone)?;
        rx.await.map_err(|_| BackendError::WorkersGone)?;
        Ok(vec![])
    }
}

/// Pollaczek-Khinchine: mean sojourn (wait + service) of an M/D/1 queue.
pub fn pk_mean(service: f64, rho: f64) -> f64 {
    service + rho * service / (2.0 * (1.0 - rho))
}

/// The first `n` send offsets (seconds) of the open loop's schedule for `seed`: the
/// arrivals the harness makes.
pub fn arrivals(rate: f64, arrival: Arrival, seed: u64, n: usize) -> Vec<f64> {
    let mut s = Schedule::new(rate, arrival, seed);
    (0..n).map(|_| s.next_offset()).collect()
}

/// Discrete-event simulation of one FIFO server of fixed `service` time: the sojourn of
/// each arrival.
pub fn simulate(arrivals: &[f64], service: f64) -> Vec<f64> {
    simulate_each(arrivals, &vec![service; arrivals.len()])
}

/// Discrete-event simulation of one FIFO server where arrival `i` needs `services[i]`:
/// the sojourn of each (Lindley's recursion: a job starts when it arrives or when the
/// one before it leaves, whichever is later).
pub fn simulate_each(arrivals: &[f64], services: &[f64]) -> Vec<f64> {
    let mut free = f64::NEG_INFINITY;
    arrivals
        .iter()
        .zip(services)
        .map(|(&a, &s)| {
            free = free.max(a) + s;
            free - a
        })
        .collect()
}

/// Mean, p50 and p90 of `values`.
pub fn summary(values: &[f64]) -> [f64; 3] {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    [v.iter().sum::<f64>() / v.len() as f64, q(0.5), q(0.9)]
}

/// Mean, p50 and p90 of a latency histogram (µs), in seconds.
pub fn measured(h: &hdrhistogram::Histogram<u64>) -> [f64; 3] {
    [
        h.mean() / 1e6,
        h.value_at_quantile(0.5) as f64 / 1e6,
        h.value_at_quantile(0.9) as f64 / 1e6,
    ]
}
