//! Running blocking engines off the async runtime.
//!
//! [`BlockingPool`] owns N OS threads. Each thread builds its own engine instance (so an
//! engine type need not be `Send`), then takes jobs from one shared channel until the
//! pool is dropped. A job carries a one-shot reply channel the async caller awaits, so
//! the tokio runtime never blocks on inference. N is the matched worker count: with
//! `--workers 2` an in-process engine has exactly two executors, like a server with two
//! worker processes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use crate::{Backend, BackendError, Description, Prepared, Tensor};

/// A blocking inference engine, one instance per executor thread.
pub trait Engine: 'static {
    /// Runs `model` on `inputs` and returns its outputs in host memory.
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError>;
}

struct Job {
    model: Arc<str>,
    inputs: Arc<[Tensor]>,
    reply: oneshot::Sender<Result<Vec<Tensor>, BackendError>>,
}

/// N executor threads, each owning one engine instance, fed by one channel.
pub struct BlockingPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    alive: Arc<AtomicUsize>,
    workers: usize,
}

impl BlockingPool {
    /// Starts `workers` threads named `<name>-<i>`; thread `i` builds its engine with
    /// `make(i)`. Returns once every engine is built, or the first build error (after
    /// stopping the threads that did start).
    pub fn start<E, F>(name: &str, workers: usize, make: F) -> Result<Self, BackendError>
    where
        E: Engine,
        F: Fn(usize) -> Result<E, BackendError> + Send + Sync + 'static,
    {
        let workers = workers.max(1);
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let make = Arc::new(make);
        let alive = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (make, queue, ready, alive) =
                (make.clone(), queue.clone(), ready_tx.clone(), alive.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || executor(i, &*make, queue, ready, alive));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let _ = ready_tx.send(Err(BackendError::Engine(format!(
                        "cannot start executor thread {i}: {e}"
                    ))));
                }
            }
        }
        drop(ready_tx);
        let pool = BlockingPool {
            jobs: Some(jobs),
            threads,
            alive,
            workers,
        };
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                // Returning drops `pool`, which stops the threads that did start.
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(BackendError::WorkersGone),
            }
        }
        Ok(pool)
    }

    /// Number of executor threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// True while every executor thread is running.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst) == self.workers && self.jobs.is_some()
    }

    /// Queues one inference and waits for it without blocking the async runtime.
    pub async fn run(
        &self,
        model: Arc<str>,
        inputs: Arc<[Tensor]>,
    ) -> Result<Vec<Tensor>, BackendError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(BackendError::WorkersGone)?;
        jobs.send(Job {
            model,
            inputs,
            reply,
        })
        .map_err(|_| BackendError::WorkersGone)?;
        answer.await.map_err(|_| BackendError::WorkersGone)?
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        // Closing the channel ends every executor loop once its current job is done.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn executor<E: Engine>(
    index: usize,
    make: &(dyn Fn(usize) -> Result<E, BackendError> + Send + Sync),
    queue: Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), BackendError>>,
    alive: Arc<AtomicUsize>,
) {
    let built = catch_unwind(AssertUnwindSafe(|| make(index)))
        .unwrap_or_else(|p| Err(BackendError::Engine(panic_message(&*p))));
    let mut engine = match built {
        Ok(engine) => engine,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    alive.fetch_add(1, Ordering::SeqCst);
    let _ = ready.send(Ok(()));
    drop(ready);
    while let Ok(job) = queue.recv() {
        let out = catch_unwind(AssertUnwindSafe(|| engine.infer(&job.model, &job.inputs)))
            .unwrap_or_else(|p| Err(BackendError::Engine(panic_message(&*p))));
        let _ = job.reply.send(out);
    }
    alive.fetch_sub(1, Ordering::SeqCst);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("the engine panicked: {text}")
}

/// A [`Backend`] made of a [`BlockingPool`]: the whole adapter for an in-process engine
/// is an [`Engine`] implementation plus a [`Description`].
pub struct EngineBackend {
    pool: BlockingPool,
    description: Description,
}

impl EngineBackend {
    /// Wraps a started pool. `description.workers` is set from the pool.
    pub fn new(pool: BlockingPool, mut description: Description) -> Self {
        description.workers = pool.workers();
        EngineBackend { pool, description }
    }
}

#[async_trait::async_trait]
impl Backend for EngineBackend {
    fn describe(&self) -> Description {
        self.description.clone()
    }

    async fn health(&self) -> Result<(), BackendError> {
        if self.pool.is_alive() {
            Ok(())
        } else {
            Err(BackendError::WorkersGone)
        }
    }

    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        self.pool
            .run(request.model().into(), request.inputs_arc())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test engine: doubles its input and names the executor thread in its output.
    struct Doubler;

    impl Engine for Doubler {
        fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
            if model == "boom" {
                panic!("asked to explode");
            }
            let v: Vec<f32> = inputs[0].to_f32()?.iter().map(|x| x * 2.0).collect();
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            Ok(vec![Tensor::from_f32(thread, inputs[0].shape.clone(), &v)])
        }
    }

    fn input() -> Arc<[Tensor]> {
        vec![Tensor::from_f32("x", vec![2], &[1.0, 2.0])].into()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_on_executor_threads_and_survives_panics() {
        let pool = Arc::new(BlockingPool::start("exec", 2, |_| Ok(Doubler)).unwrap());
        assert!(pool.is_alive());
        assert_eq!(pool.workers(), 2);
        let out = pool.run("m".into(), input()).await.unwrap();
        assert_eq!(out[0].to_f32().unwrap(), vec![2.0, 4.0]);

        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let calls: Vec<_> = (0..4)
                .map(|_| {
                    let p = pool.clone();
                    tokio::spawn(async move { p.run("m".into(), input()).await })
                })
                .collect();
            for c in calls {
                seen.insert(c.await.unwrap().unwrap()[0].name.clone());
            }
        }
        assert!(
            seen.iter().all(|n| n == "exec-0" || n == "exec-1"),
            "{seen:?}"
        );

        let err = pool.run("boom".into(), input()).await.unwrap_err();
        assert!(err.to_string().contains("asked to explode"), "{err}");
        // The executor that caught the panic still serves.
        assert!(pool.is_alive());
        assert!(pool.run("m".into(), input()).await.is_ok());
    }

    #[test]
    fn build_errors_are_returned_and_threads_stopped() {
        let err = BlockingPool::start("t", 3, |i| {
            if i == 1 {
                Err(BackendError::ModelLoad {
                    model: "m".into(),
                    reason: "file missing".into(),
                })
            } else {
                Ok(Doubler)
            }
        })
        .err()
        .expect("start must fail");
        assert_eq!(err.kind(), "model_load");
    }
}
