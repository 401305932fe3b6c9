//! `triton-http`: KServe v2 over HTTP/1.1, JSON or binary tensor bodies.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, ServerStats, Tensor};
use serde_json::Value;

use crate::codec::{self, Encoded, HttpBody};
use crate::server::ManagedTriton;

/// How long one request may take (large ResNet batches on a small CPU take seconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A Triton server, managed or existing, reached over HTTP/1.1.
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    body: HttpBody,
    description: Mutex<Description>,
    // Declared last: dropped after the client, it stops a managed server.
    _server: Option<ManagedTriton>,
}

impl HttpBackend {
    /// A backend talking to `base` (such as `http://127.0.0.1:8000`) with `body`
    /// encoding, owning `server` when the harness started it. The pool keeps up to
    /// `connections` idle keep-alive connections.
    pub fn new(
        base: &str,
        body: HttpBody,
        connections: usize,
        description: Description,
        server: Option<ManagedTriton>,
    ) -> Result<HttpBackend, BackendError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| BackendError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpBackend {
            client,
            base: base.trim_end_matches('/').to_string(),
            body,
            description: Mutex::new(description),
            _server: server,
        })
    }

    /// Sends `req`; a non-2xx answer becomes [`BackendError::Server`] with Triton's
    /// `"error"` message. Returns the body and the binary header length, if any.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(Bytes, Option<usize>), BackendError> {
        let resp = req.send().await.map_err(|e| transport(url, e))?;
        let status = resp.status();
        let header_len = resp
            .headers()
            .get(codec::HEADER_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = resp.bytes().await.map_err(|e| transport(url, e))?;
        if status.is_success() {
            Ok((body, header_len))
        } else {
            Err(BackendError::Server {
                status: status.as_u16().to_string(),
                message: codec::error_message(&body),
            })
        }
    }

    async fn get_json(&self, path: &str) -> Result<Value, BackendError> {
        let url = format!("{}{path}", self.base);
        let (body, _) = self.send(self.client.get(&url), &url).await?;
        serde_json::from_slice(&body)
            .map_err(|e| BackendError::Protocol(format!("{url} did not answer JSON: {e}")))
    }
}

fn transport(url: &str, e: reqwest::Error) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout(REQUEST_TIMEOUT.as_millis() as u64);
    }
    // reqwest's own message is generic; the cause (connection refused, reset) is below.
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    BackendError::Transport(format!("{url}: {cause}"))
}

#[async_trait::async_trait]
impl Backend for HttpBackend {
    fn describe(&self) -> Description {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `GET /v2/health/ready`, then every model's metadata (which also records the
    /// platform an existing server runs).
    async fn health(&self) -> Result<(), BackendError> {
        let url = format!("{}/v2/health/ready", self.base);
        self.send(self.client.get(&url), &url).await?;
        let models: Vec<String> = {
            let d = self.describe();
            d.details
                .get("models")
                .map(|m| m.split(',').map(str::to_string).collect())
                .unwrap_or_default()
        };
        for m in models.iter().filter(|m| !m.is_empty()) {
            let meta = self.get_json(&format!("/v2/models/{m}")).await?;
            let platform = meta.get("platform").and_then(Value::as_str).unwrap_or("");
            crate::note_platform(&self.description, platform);
        }
        Ok(())
    }

    /// Encodes the batch once (JSON or binary); every `infer` sends the same bytes.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let encoded = codec::encode(&inputs, self.body)?;
        Ok(Prepared::new(model, inputs).with_payload(encoded))
    }

    /// One `POST /v2/models/<model>/infer`.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let encoded = match request.payload::<Encoded>() {
            Some(e) => e.clone(),
            None => codec::encode(request.inputs(), self.body)?,
        };
        let url = format!("{}/v2/models/{}/infer", self.base, request.model());
        let mut req = self.client.post(&url);
        req = match encoded.header_len {
            Some(n) => req
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(codec::HEADER_LENGTH, n),
            None => req.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        let (body, header_len) = self.send(req.body(encoded.body), &url).await?;
        codec::decode(&body, header_len)
    }

    /// `GET /v2/models/<model>/stats`.
    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        let url = format!("{}/v2/models/{model}/stats", self.base);
        let (body, _) = self.send(self.client.get(&url), &url).await?;
        codec::decode_stats(&body, model).map(Some)
    }
}
