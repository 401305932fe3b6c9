//! `triton-http`: KServe v2 over HTTP/1.1, JSON or binary tensor bodies.

use std::sync::Mutex;

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, ServerStats, Tensor};
use serde_json::Value;

use crate::codec::{self, Encoded, HttpBody};
use crate::server::ManagedTriton;

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
        let client = contract::http::client(connections)?;
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
        let resp = req
            .send()
            .await
            .map_err(|e| contract::http::transport_error(url, e))?;
        let status = resp.status();
        let header_len = resp
            .headers()
            .get(codec::HEADER_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = resp
            .bytes()
            .await
            .map_err(|e| contract::http::transport_error(url, e))?;
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
        for m in &self.describe().models() {
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
