//! The HTTP client every HTTP backend (Flask, Triton over HTTP, TF Serving's REST API)
//! builds, one request-answer exchange, and how its failures become [`BackendError`]s:
//! one place, so the backends differ only in their protocol, never in how they connect
//! or count errors. Behind the `http` feature.

use bytes::Bytes;
use contract::BackendError;
use reqwest::header::HeaderMap;

use crate::status::{self, Context};
use crate::Deadlines;

/// Idle keep-alive connections a client keeps per server at least.
///
/// A request in flight holds a connection; when it returns, the pool keeps that
/// connection only while fewer than this many are idle, and closes it otherwise. The
/// harness has as many requests in flight as its concurrency (closed loop) or up to its
/// in-flight cap (open loop), which a backend is not told when it is opened: a pool
/// sized by `--workers` (2 by default) closed all but 2 connections after each request
/// at `--concurrency 64`, so later requests paid a new TCP handshake. An idle
/// connection costs one socket and no traffic, so the pool keeps up to this many.
pub const POOL_IDLE_CONNECTIONS: usize = 1024;

/// A client keeping up to `connections` (at least [`POOL_IDLE_CONNECTIONS`]) idle
/// keep-alive connections to the server, ignoring proxy settings: servers are on
/// loopback or a URL the user gave.
pub fn client(connections: usize, deadlines: Deadlines) -> Result<reqwest::Client, BackendError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(POOL_IDLE_CONNECTIONS))
        .timeout(deadlines.request)
        .connect_timeout(deadlines.connect)
        .no_proxy()
        .build()
        .map_err(|e| BackendError::Transport(format!("cannot build the HTTP client: {e}")))
}

/// A failed exchange with `url`: the client's deadline passed (`timeout`, carrying
/// `deadline_ms`), or a transport error naming the innermost cause (reqwest's own
/// message is generic; "connection refused" is further down).
pub fn transport_error(url: &str, e: reqwest::Error, deadline_ms: u64) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout(deadline_ms);
    }
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    BackendError::Transport(format!("{url}: {cause}"))
}

/// A successful answer: its headers and its whole body.
#[derive(Debug)]
pub struct Reply {
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
}

/// Sends `req` to `url` and reads the whole answer. A 2xx is a [`Reply`]; any other
/// status is the counted error of [`status::http_error`] with the server's message
/// ([`error_message`]); no answer is [`transport_error`].
pub async fn exchange(
    req: reqwest::RequestBuilder,
    url: &str,
    ctx: Context<'_>,
) -> Result<Reply, BackendError> {
    let failed = |e| transport_error(url, e, ctx.deadline_ms);
    let resp = req.send().await.map_err(failed)?;
    let code = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(failed)?;
    if code.is_success() {
        Ok(Reply { headers, body })
    } else {
        Err(status::http_error(ctx, code.as_u16(), error_message(&body)))
    }
}

/// The message of an error body: `{"error": "..."}` as Flask, Triton, TF Serving and
/// MLServer write it, or `{"message": "..."}` as TorchServe does, else the body's first
/// line (at most 200 characters).
pub fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(body) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(m)) = doc.get(key) {
                return m.clone();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty body)".into()
    } else {
        line.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_the_url_and_the_cause() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v2/health/ready");
        let e = client(1, Deadlines::default())
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap_err();
        let e = transport_error(&url, e, 1);
        assert_eq!(e.kind(), "transport");
        let msg = e.to_string();
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
    }

    #[test]
    fn error_bodies() {
        assert_eq!(error_message(br#"{"error": "bad shape"}"#), "bad shape");
        assert_eq!(
            error_message(br#"{"code": 404, "message": "Model not found: m"}"#),
            "Model not found: m"
        );
        assert_eq!(error_message(b"Not Found\nmore"), "Not Found");
        assert_eq!(error_message(br#"{"other": 1}"#), r#"{"other": 1}"#);
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(&[b'x'; 300]).len(), 200);
    }
}
