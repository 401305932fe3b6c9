//! The HTTP side: a [`Backend`] that speaks the Flask app's JSON API.

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, Tensor};

use crate::codec;
use crate::server::ManagedServer;

/// The encoded body of one batch, attached to a [`Prepared`] request.
struct Body(Bytes);

/// A Flask/Gunicorn server, managed or existing, reached over HTTP/1.1.
pub struct FlaskBackend {
    client: reqwest::Client,
    base: String,
    description: Description,
    // Declared last: dropped after the client, it stops a managed server.
    _server: Option<ManagedServer>,
}

impl FlaskBackend {
    /// A backend talking to `base` (such as `http://127.0.0.1:8000`), owning `server`
    /// when the harness started it. The connection pool keeps up to `connections` idle
    /// keep-alive connections (the concurrency).
    pub fn new(
        base: &str,
        connections: usize,
        description: Description,
        server: Option<ManagedServer>,
    ) -> Result<FlaskBackend, BackendError> {
        let client = contract::http::client(connections)?;
        Ok(FlaskBackend {
            client,
            base: base.trim_end_matches('/').to_string(),
            description,
            _server: server,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Bytes, BackendError> {
        let resp = req
            .send()
            .await
            .map_err(|e| contract::http::transport_error(url, e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| contract::http::transport_error(url, e))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(BackendError::Server {
                status: status.as_u16().to_string(),
                message: codec::error_message(&body),
            })
        }
    }
}

#[async_trait::async_trait]
impl Backend for FlaskBackend {
    fn describe(&self) -> Description {
        self.description.clone()
    }

    async fn health(&self) -> Result<(), BackendError> {
        let url = format!("{}/health", self.base);
        self.send(self.client.get(&url), &url).await.map(|_| ())
    }

    /// Encodes `{"instances": [...]}` once; every `infer` of this batch sends the same bytes.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let [input] = inputs.as_slice() else {
            return Err(BackendError::BadInput(format!(
                "the Flask app takes one input tensor, got {}",
                inputs.len()
            )));
        };
        let body = Body(codec::encode_instances(input)?.into());
        Ok(Prepared::new(model, inputs).with_payload(body))
    }

    /// One `POST /v1/models/<model>:predict`; the answer is parsed into logits.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let body = match request.payload::<Body>() {
            Some(b) => b.0.clone(),
            None => codec::encode_instances(request.inputs().first().ok_or_else(|| {
                BackendError::BadInput("a request needs one input tensor".into())
            })?)?
            .into(),
        };
        let url = format!("{}/v1/models/{}:predict", self.base, request.model());
        let req = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = self.send(req, &url).await?;
        Ok(vec![codec::decode_predictions(&answer, request.batch())?])
    }
}
