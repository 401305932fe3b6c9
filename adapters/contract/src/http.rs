//! The HTTP client every HTTP backend (Flask, Triton over HTTP, TF Serving's REST API)
//! builds, and how its failures become [`BackendError`]s: one place, so the backends
//! differ only in their protocol, never in how they connect. Behind the `http` feature.

use std::time::Duration;

use crate::BackendError;

/// Longest a single request may take before it counts as a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client keeping up to `connections` idle connections to the server (one per request
/// the harness keeps in flight), ignoring proxy settings: servers are on loopback or a
/// URL the user gave.
pub fn client(connections: usize) -> Result<reqwest::Client, BackendError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(1))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| BackendError::Transport(format!("cannot build the HTTP client: {e}")))
}

/// A failed exchange with `url`: a timeout, or a transport error naming the innermost
/// cause (reqwest's own message is generic; "connection refused" is further down).
pub fn transport_error(url: &str, e: reqwest::Error) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout(REQUEST_TIMEOUT.as_millis() as u64);
    }
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    BackendError::Transport(format!("{url}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_the_url_and_the_cause() {
        // A port just freed: nothing listens there.
        let port = crate::process::free_port().unwrap();
        let url = format!("http://127.0.0.1:{port}/v2/health/ready");
        let e = client(1).unwrap().get(&url).send().await.unwrap_err();
        let e = transport_error(&url, e);
        assert_eq!(e.kind(), "transport");
        let msg = e.to_string();
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
    }
}
