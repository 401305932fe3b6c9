//! KServe v2 over HTTP/1.1, JSON or binary tensor bodies (`triton-http`,
//! `kserve-v2-http`).

use std::sync::Mutex;

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, ServedBy, ServerStats, Tensor};
use serde_json::Value;
use support::http::{HeaderValue, Request};
use support::Deadlines;

use crate::codec::{self, Encoded, HttpBody};
use crate::{Flavor, Managed};

/// A KServe v2 server, managed or existing, reached over HTTP/1.1.
pub struct HttpBackend {
    flavor: Flavor,
    client: support::http::Client,
    base: String,
    body: HttpBody,
    deadlines: Deadlines,
    description: Mutex<Description>,
    /// Appended to a model's name on the wire ([`HttpBackend::serving_as`]).
    suffix: String,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<Box<dyn Managed>>,
}

impl HttpBackend {
    /// Asks the server for every model under its name plus `suffix` (`resnet18_int8`
    /// for `resnet18`: a repository serving several precisions under one name each);
    /// results and errors keep the run's name.
    pub fn serving_as(mut self, suffix: &str) -> Self {
        self.suffix = suffix.to_string();
        self
    }

    fn wire(&self, model: &str) -> String {
        format!("{model}{}", self.suffix)
    }

    /// A backend talking to the `flavor` of server at `base` (such as
    /// `http://127.0.0.1:8000`) with `body` encoding, owning `server` when the harness
    /// started it. The pool keeps up to `connections` idle keep-alive connections.
    pub fn new(
        flavor: Flavor,
        base: &str,
        body: HttpBody,
        connections: usize,
        description: Description,
        server: Option<Box<dyn Managed>>,
    ) -> Result<HttpBackend, BackendError> {
        Self::with_deadlines(
            flavor,
            base,
            body,
            connections,
            description,
            server,
            Deadlines::default(),
        )
    }

    /// [`HttpBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        flavor: Flavor,
        base: &str,
        body: HttpBody,
        connections: usize,
        description: Description,
        server: Option<Box<dyn Managed>>,
        deadlines: Deadlines,
    ) -> Result<HttpBackend, BackendError> {
        Ok(HttpBackend {
            flavor,
            client: support::http::Client::new(connections, deadlines),
            base: base.trim_end_matches('/').to_string(),
            body,
            deadlines,
            description: Mutex::new(description),
            suffix: String::new(),
            server,
        })
    }

    /// Sends `req` about `model`; an error status is counted by kind with the server's
    /// `"error"` message. Returns the body and the binary header length, if any.
    async fn send(
        &self,
        req: Request,
        model: &str,
    ) -> Result<(Bytes, Option<usize>), BackendError> {
        let ctx = self.deadlines.context(self.flavor.server, model);
        let reply = self.client.exchange(&req, ctx).await?;
        let header_len = reply
            .headers
            .get(codec::HEADER_LENGTH)
            .and_then(|v| v.parse().ok());
        Ok((reply.body, header_len))
    }

    async fn get_json(&self, path: &str, model: &str) -> Result<Value, BackendError> {
        let url = format!("{}{path}", self.base);
        let (body, _) = self.send(Request::get(&url), model).await?;
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

    fn served_name(&self, model: &str) -> String {
        self.wire(model)
    }

    fn served_by(&self) -> ServedBy {
        match &self.server {
            Some(server) => ServedBy::ProcessGroups(vec![server.pid()]),
            None => ServedBy::NotVisible,
        }
    }

    /// `GET /v2/health/ready`, then every model's metadata (which also records the
    /// platform an existing server runs).
    async fn health(&self) -> Result<(), BackendError> {
        let url = format!("{}/v2/health/ready", self.base);
        self.send(Request::get(&url), "/v2/health/ready").await?;
        for m in &self.describe().models {
            let meta = self
                .get_json(&format!("/v2/models/{}", self.wire(m)), m)
                .await?;
            let platform = meta.get("platform").and_then(Value::as_str).unwrap_or("");
            crate::note_platform(&self.flavor, &self.description, platform);
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
        let encoded: Encoded =
            support::payload_or(request, |_, inputs| codec::encode(inputs, self.body))?;
        let url = format!(
            "{}/v2/models/{}/infer",
            self.base,
            self.wire(request.model())
        );
        let req = match encoded.header_len {
            Some(n) => Request::post(&url, "application/octet-stream", encoded.body)
                .header(codec::HEADER_LENGTH, HeaderValue::from(n)),
            None => Request::post(&url, "application/json", encoded.body),
        };
        let (body, header_len) = self.send(req, request.model()).await?;
        codec::decode(&body, header_len)
    }

    /// `GET /v2/models/<model>/stats`, for a server with Triton's statistics extension.
    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        if !self.flavor.statistics {
            return Ok(None);
        }
        let url = format!("{}/v2/models/{}/stats", self.base, self.wire(model));
        let (body, _) = self.send(Request::get(&url), model).await?;
        codec::decode_stats(&body, &self.wire(model)).map(Some)
    }
}
