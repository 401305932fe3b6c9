//! A deadline on every call to a backend, whatever its protocol.
//!
//! Each adapter's client has deadlines of its own (long ones: a batch of 1000 images on a
//! slow server takes minutes), and an in-process engine has none. [`Deadline`] wraps any
//! backend so that no request waits longer than `--request-timeout` and no readiness
//! check longer than [`HEALTH_TIMEOUT`]: a server that accepts and never answers fails
//! its requests as `timeout`, within the deadline, for every protocol alike.
//!
//! A request's deadline costs no timer of its own: [`Deadline`] keeps a pool of
//! [`LazyTimer`]s (module `support::timer`), checked out for a request and back after
//! it, each re-armed only when it fires before the current request's deadline. A timer
//! belongs to the runtime it was polled in (the open loop runs its own), so the pool
//! hands out only timers of the calling runtime.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::{Backend, BackendError, Description, Prepared, ServedBy, ServerStats, Tensor};
use support::timer::{deadline_after, LazyTimer};
use tokio::runtime::{Handle, Id};
use tokio::time::Instant;

/// Longest a readiness check may take once a backend is open.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most idle timers the pool keeps (one per request in flight is needed).
const MAX_IDLE_TIMERS: usize = 4096;

/// A backend whose every call ends by its deadline.
pub struct Deadline {
    inner: Arc<dyn Backend>,
    request: Duration,
    /// Idle request timers, with the runtime each belongs to.
    timers: Mutex<Vec<(Id, LazyTimer)>>,
}

impl Deadline {
    /// `inner` with requests cut at `request`.
    pub fn wrap(inner: Arc<dyn Backend>, request: Duration) -> Arc<dyn Backend> {
        Arc::new(Deadline {
            inner,
            request,
            timers: Mutex::new(Vec::new()),
        })
    }

    /// An idle timer of runtime `rt`, else a new one armed at `deadline`.
    fn checkout(&self, rt: Id, deadline: Instant) -> LazyTimer {
        let mut idle = self.timers.lock().unwrap_or_else(|e| e.into_inner());
        match idle.iter().rposition(|(id, _)| *id == rt) {
            Some(i) => idle.swap_remove(i).1,
            None => LazyTimer::new(deadline),
        }
    }

    fn checkin(&self, rt: Id, timer: LazyTimer) {
        let mut idle = self.timers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_TIMERS {
            idle.push((rt, timer));
        }
    }
}

async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout(limit.as_millis() as u64)),
    }
}

#[async_trait::async_trait]
impl Backend for Deadline {
    fn describe(&self) -> Description {
        self.inner.describe()
    }

    async fn health(&self) -> Result<(), BackendError> {
        within(HEALTH_TIMEOUT.min(self.request), self.inner.health()).await
    }

    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        self.inner.prepare(model, inputs)
    }

    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let rt = Handle::current().id();
        let deadline = deadline_after(Instant::now(), self.request);
        let mut timer = self.checkout(rt, deadline);
        let answer = timer.within(deadline, self.inner.infer(request)).await;
        self.checkin(rt, timer);
        answer.unwrap_or(Err(BackendError::Timeout(self.request.as_millis() as u64)))
    }

    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        within(self.request, self.inner.server_stats(model)).await
    }

    fn served_by(&self) -> ServedBy {
        self.inner.served_by()
    }

    fn served_name(&self, model: &str) -> String {
        self.inner.served_name(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test double: a server that accepts and never answers, in process group 42.
    struct Hung;

    #[async_trait::async_trait]
    impl Backend for Hung {
        fn describe(&self) -> Description {
            unimplemented!()
        }
        fn served_by(&self) -> ServedBy {
            ServedBy::ProcessGroups(vec![42])
        }
        async fn health(&self) -> Result<(), BackendError> {
            std::future::pending().await
        }
        async fn infer(&self, _: &Prepared) -> Result<Vec<Tensor>, BackendError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_backend_that_never_answers_times_out() {
        let b = Deadline::wrap(Arc::new(Hung), Duration::from_millis(20));
        // Twice: the second request reuses the first one's timer, which has fired.
        for _ in 0..2 {
            let e = b.infer(&Prepared::new("m", vec![])).await.unwrap_err();
            assert_eq!(e.kind(), "timeout");
            assert_eq!(e.to_string(), "request timed out after 20 ms");
        }
        assert_eq!(b.health().await.unwrap_err().kind(), "timeout");
        // Every method of the trait is passed through, those with defaults included.
        assert_eq!(b.served_by(), ServedBy::ProcessGroups(vec![42]));
    }

    #[test]
    fn a_timer_that_fired_early_is_no_timeout_and_stays_with_its_runtime() {
        use crate::load::testing::Sleeper;
        let b = Deadline::wrap(
            Arc::new(Sleeper::new(Duration::from_millis(60))),
            Duration::from_millis(200),
        );
        let req = Prepared::new("m", vec![]);
        for _ in 0..2 {
            // A runtime of its own each time: the first one's timer is not polled in the
            // second (its runtime is gone).
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                // The first request arms the pooled timer 200 ms on; the second starts
                // 180 ms later and ends after the timer fired, well before its deadline.
                b.infer(&req).await.unwrap();
                tokio::time::sleep(Duration::from_millis(120)).await;
                b.infer(&req).await.unwrap();
            });
        }
    }
}
