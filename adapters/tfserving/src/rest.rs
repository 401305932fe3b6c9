//! `tfserving-rest`: TF Serving's REST API over HTTP/1.1, row or columnar JSON bodies.

use std::sync::Mutex;

use bytes::Bytes;
use contract::{Backend, BackendError, Description, Prepared, Tensor};
use serde_json::Value;
use support::http::Request;
use support::Deadlines;

use crate::json::{self, RestFormat};

/// A prepared request body (encoded once per batch, in `prepare`).
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

/// A TF Serving server reached over its REST API.
pub struct RestBackend {
    client: support::http::Client,
    base: String,
    format: RestFormat,
    deadlines: Deadlines,
    description: Mutex<Description>,
}

impl RestBackend {
    /// A backend talking to `base` (such as `http://127.0.0.1:8501`) in `format`; the
    /// pool keeps up to `connections` idle keep-alive connections.
    pub fn new(
        base: &str,
        format: RestFormat,
        connections: usize,
        description: Description,
    ) -> Result<RestBackend, BackendError> {
        Self::with_deadlines(base, format, connections, description, Deadlines::default())
    }

    /// [`RestBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        base: &str,
        format: RestFormat,
        connections: usize,
        description: Description,
        deadlines: Deadlines,
    ) -> Result<RestBackend, BackendError> {
        Ok(RestBackend {
            client: support::http::Client::new(connections, deadlines),
            base: base.trim_end_matches('/').to_string(),
            format,
            deadlines,
            description: Mutex::new(description),
        })
    }

    /// Sends `req` about `model`; an error status is counted by kind with TF Serving's
    /// `"error"` message. Returns the body and whether the test peer answered.
    async fn send(&self, req: Request, model: &str) -> Result<(Bytes, bool), BackendError> {
        let ctx = self.deadlines.context(crate::SERVER, model);
        let reply = self.client.exchange(&req, ctx).await?;
        let peer = reply.headers.contains_key(crate::PEER_HEADER);
        Ok((reply.body, peer))
    }

    async fn get_json(&self, path: &str, model: &str) -> Result<(Value, bool), BackendError> {
        let url = format!("{}{path}", self.base);
        let (body, peer) = self.send(Request::get(&url), model).await?;
        let v = serde_json::from_slice(&body)
            .map_err(|e| BackendError::Protocol(format!("{url} did not answer JSON: {e}")))?;
        Ok((v, peer))
    }
}

/// Checks a `GET /v1/models/<m>` answer: some version is `AVAILABLE`.
pub fn check_status(model: &str, v: &Value) -> Result<(), BackendError> {
    let versions = v
        .get("model_version_status")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            BackendError::Protocol(format!("the status of {model} has no model_version_status"))
        })?;
    if versions
        .iter()
        .any(|s| s.get("state").and_then(Value::as_str) == Some("AVAILABLE"))
    {
        Ok(())
    } else {
        Err(BackendError::Server {
            status: "not ready".into(),
            message: format!("no version of {model} is AVAILABLE: {v}"),
        })
    }
}

/// Checks a `GET /v1/models/<m>/metadata` answer: the `serving_default` signature
/// takes `input` and gives `logits`, like every other backend.
pub fn check_signature(model: &str, v: &Value) -> Result<(), BackendError> {
    let sig = v
        .pointer("/metadata/signature_def/signature_def")
        .and_then(|s| s.get(json::SIGNATURE))
        .ok_or_else(|| {
            BackendError::Protocol(format!(
                "the metadata of {model} has no {} signature",
                json::SIGNATURE
            ))
        })?;
    let has = |side: &str, name: &str| sig.get(side).and_then(|s| s.get(name)).is_some();
    if has("inputs", fixtures::INPUT_NAME) && has("outputs", fixtures::OUTPUT_NAME) {
        Ok(())
    } else {
        Err(BackendError::ModelLoad {
            model: model.into(),
            reason: format!(
                "its {} signature does not take {:?} and give {:?}: {sig}",
                json::SIGNATURE,
                fixtures::INPUT_NAME,
                fixtures::OUTPUT_NAME
            ),
        })
    }
}

#[async_trait::async_trait]
impl Backend for RestBackend {
    fn describe(&self) -> Description {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For every model: `GET /v1/models/<m>` (a version is `AVAILABLE`) and
    /// `GET /v1/models/<m>/metadata` (the signature fits).
    async fn health(&self) -> Result<(), BackendError> {
        for m in &self.describe().models {
            let (status, peer) = self.get_json(&format!("/v1/models/{m}"), m).await?;
            crate::note_server(&self.description, peer);
            check_status(m, &status)?;
            let (meta, _) = self
                .get_json(&format!("/v1/models/{m}/metadata"), m)
                .await?;
            check_signature(m, &meta)?;
        }
        Ok(())
    }

    /// Encodes the batch once; every `infer` sends the same bytes.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let body = json::encode(&inputs, self.format)?;
        Ok(Prepared::new(model, inputs).with_payload(Body(body)))
    }

    /// One `POST /v1/models/<model>:predict`.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let Body(body) = support::payload_or(request, |_, inputs| {
            json::encode(inputs, self.format).map(Body)
        })?;
        let url = format!("{}/v1/models/{}:predict", self.base, request.model());
        let req = Request::post(&url, "application/json", body);
        let (body, _) = self.send(req, request.model()).await?;
        json::decode(&body, fixtures::OUTPUT_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_and_signature_are_checked() {
        let ok = json!({"model_version_status": [{"version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]});
        check_status("m", &ok).unwrap();
        let loading = json!({"model_version_status": [{"version": "1", "state": "LOADING"}]});
        assert!(check_status("m", &loading)
            .unwrap_err()
            .to_string()
            .contains("LOADING"));
        let meta = json!({"model_spec": {"name": "m"}, "metadata": {"signature_def": {
            "signature_def": {"serving_default": {
                "inputs": {"input": {"dtype": "DT_FLOAT"}},
                "outputs": {"logits": {"dtype": "DT_FLOAT"}},
                "method_name": "tensorflow/serving/predict"}}}}});
        check_signature("m", &meta).unwrap();
        let other = json!({"metadata": {"signature_def": {"signature_def": {"serving_default": {
            "inputs": {"x": {}}, "outputs": {"logits": {}}}}}}});
        assert_eq!(
            check_signature("m", &other).unwrap_err().kind(),
            "model_load"
        );
    }
}
