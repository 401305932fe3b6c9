//! The HTTP side: a [`Backend`] that speaks the Flask app's JSON API.

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, ServedBy, Tensor};
use support::http::Request;
use support::Deadlines;

use crate::codec;
use crate::server::ManagedServer;

/// How error messages name the server.
const SERVER: &str = "the Flask app";

/// A Flask/Gunicorn server, managed or existing, reached over HTTP/1.1.
pub struct FlaskBackend {
    client: support::http::Client,
    base: String,
    deadlines: Deadlines,
    description: Description,
    /// The declared outputs of each user model (`--model-file`), by model name: those
    /// travel in TF Serving's columnar form, every input and output by name.
    user_outputs: std::collections::HashMap<String, Vec<(String, contract::DType)>>,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<ManagedServer>,
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
        Self::with_deadlines(base, connections, description, server, Deadlines::default())
    }

    /// [`FlaskBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        base: &str,
        connections: usize,
        description: Description,
        server: Option<ManagedServer>,
        deadlines: Deadlines,
    ) -> Result<FlaskBackend, BackendError> {
        Ok(FlaskBackend {
            client: support::http::Client::new(connections, deadlines),
            base: base.trim_end_matches('/').to_string(),
            deadlines,
            description,
            server,
            user_outputs: Default::default(),
        })
    }

    /// Serves the user's `models` too: their requests and answers are columnar.
    pub fn with_user_models(mut self, models: &[fixtures::user::UserModel]) -> Self {
        for m in models {
            let outputs = m
                .outputs
                .iter()
                .map(|o| (o.name.clone(), o.dtype))
                .collect();
            self.user_outputs.insert(m.name.clone(), outputs);
        }
        self
    }

    /// The whole `POST /v1/models/<model>:predict` of `inputs`: URL, head and body,
    /// encoded once.
    fn encode(&self, model: &str, inputs: &[Tensor]) -> Result<Request, BackendError> {
        let body: Bytes = if self.user_outputs.contains_key(model) {
            codec::encode_columnar(inputs)?.into()
        } else {
            encode(inputs)?.into()
        };
        let url = format!("{}/v1/models/{model}:predict", self.base);
        Ok(Request::post(&url, "application/json", body))
    }

    async fn send(&self, req: &Request, model: &str) -> Result<Bytes, BackendError> {
        let ctx = self.deadlines.context(SERVER, model);
        Ok(self.client.exchange(req, ctx).await?.body)
    }
}

fn encode(inputs: &[Tensor]) -> Result<Vec<u8>, BackendError> {
    let [input] = inputs else {
        return Err(BackendError::BadInput(format!(
            "the Flask app takes one input tensor, got {}",
            inputs.len()
        )));
    };
    codec::encode_instances(input)
}

#[async_trait::async_trait]
impl Backend for FlaskBackend {
    fn describe(&self) -> Description {
        self.description.clone()
    }

    fn served_by(&self) -> ServedBy {
        match &self.server {
            Some(server) => ServedBy::ProcessGroups(vec![server.pid()]),
            None => ServedBy::NotVisible,
        }
    }

    async fn health(&self) -> Result<(), BackendError> {
        let url = format!("{}/health", self.base);
        self.send(&Request::get(&url), "/health").await.map(|_| ())
    }

    /// Encodes the whole request once, `{"instances": [...]}` and its head; every `infer`
    /// of this batch sends the same bytes, and builds nothing.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let req = self.encode(model, &inputs)?;
        Ok(Prepared::new(model, inputs).with_payload(req))
    }

    /// One `POST /v1/models/<model>:predict`; the answer is parsed into logits.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let built;
        let req = match request.payload::<Request>() {
            Some(req) => req,
            None => {
                built = self.encode(request.model(), request.inputs())?;
                &built
            }
        };
        let answer = self.send(req, request.model()).await?;
        if let Some(outputs) = self.user_outputs.get(request.model()) {
            return codec::decode_columnar(&answer, outputs);
        }
        Ok(vec![codec::decode_predictions(&answer, request.batch())?])
    }
}
