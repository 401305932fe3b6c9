//! A deadline on every call to a backend, whatever its protocol.
//!
//! Each adapter's client has deadlines of its own (long ones: a batch of 1000 images on a
//! slow server takes minutes), and an in-process engine has none. [`Deadline`] wraps any
//! backend so that no request waits longer than `--request-timeout` and no readiness
//! check longer than [`HEALTH_TIMEOUT`]: a server that accepts and never answers fails
//! its requests as `timeout`, within the deadline, for every protocol alike.

use std::sync::Arc;
use std::time::Duration;

use contract::{Backend, BackendError, Description, Prepared, ServedBy, ServerStats, Tensor};

/// Longest a readiness check may take once a backend is open.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A backend whose every call ends by its deadline.
pub struct Deadline {
    inner: Arc<dyn Backend>,
    request: Duration,
}

impl Deadline {
    /// `inner` with requests cut at `request`.
    pub fn wrap(inner: Arc<dyn Backend>, request: Duration) -> Arc<dyn Backend> {
        Arc::new(Deadline { inner, request })
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
        within(self.request, self.inner.infer(request)).await
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
        let e = b.infer(&Prepared::new("m", vec![])).await.unwrap_err();
        assert_eq!(e.kind(), "timeout");
        assert_eq!(e.to_string(), "request timed out after 20 ms");
        assert_eq!(b.health().await.unwrap_err().kind(), "timeout");
        // Every method of the trait is passed through, those with defaults included.
        assert_eq!(b.served_by(), ServedBy::ProcessGroups(vec![42]));
    }
}
