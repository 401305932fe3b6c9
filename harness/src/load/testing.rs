//! Test double (never a benchmark target): a backend that answers after a fixed sleep
//! and, optionally, fails every n-th request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contract::{Backend, BackendError, Description, Prepared, Protocol, Tensor};

/// A test double that sleeps on the async runtime instead of computing.
pub struct Sleeper {
    /// How long each request takes.
    pub delay: Duration,
    /// Every n-th request fails with a 503 (`None`: never).
    pub fail_every: Option<u64>,
    /// Sleep on the thread (blocking the runtime, as a CPU-bound client would) instead
    /// of on the async timer.
    pub blocking: bool,
    /// The first requests take these instead of `delay`, in order (a cold start).
    pub cold: Vec<Duration>,
    /// Requests seen.
    pub calls: AtomicU64,
}

impl Sleeper {
    /// A test double whose requests take `delay` and never fail.
    pub fn new(delay: Duration) -> Sleeper {
        Sleeper {
            delay,
            fail_every: None,
            blocking: false,
            cold: Vec::new(),
            calls: AtomicU64::new(0),
        }
    }
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
            models: vec![],
            served_by_test_peer: false,
            details: Default::default(),
        }
    }
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn infer(&self, _: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = self.cold.get(n as usize - 1).copied().unwrap_or(self.delay);
        if self.blocking {
            std::thread::sleep(delay);
        } else {
            tokio::time::sleep(delay).await;
        }
        match self.fail_every {
            Some(k) if n % k == 0 => Err(BackendError::Server {
                status: "503".into(),
                message: "busy".into(),
            }),
            _ => Ok(vec![]),
        }
    }
}
