//! `triton-grpc`: KServe v2 over gRPC (tonic), tensors in `raw_input_contents`.

use std::sync::Mutex;

use contract::{Backend, BackendError, Description, Prepared, ServedBy, ServerStats, Tensor};
use support::Deadlines;
use tonic::transport::Channel;

use crate::codec;
use crate::server::ManagedTriton;

/// The messages and client generated from `proto/grpc_service.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use proto::{ModelInferRequest, ModelMetadataRequest, ModelStatisticsRequest, ServerReadyRequest};

/// A Triton server, managed or existing, reached over gRPC (one HTTP/2 connection,
/// requests multiplexed on it).
pub struct GrpcBackend {
    client: GrpcInferenceServiceClient<Channel>,
    url: String,
    deadlines: Deadlines,
    description: Mutex<Description>,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<ManagedTriton>,
}

impl GrpcBackend {
    /// A backend talking to `url` (such as `http://127.0.0.1:8001`). The connection is
    /// made on first use.
    pub fn new(
        url: &str,
        description: Description,
        server: Option<ManagedTriton>,
    ) -> Result<GrpcBackend, BackendError> {
        Self::with_deadlines(url, description, server, Deadlines::default())
    }

    /// [`GrpcBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        url: &str,
        description: Description,
        server: Option<ManagedTriton>,
        deadlines: Deadlines,
    ) -> Result<GrpcBackend, BackendError> {
        let client = GrpcInferenceServiceClient::new(support::grpc::channel(url, deadlines)?)
            .max_decoding_message_size(support::grpc::MAX_ANSWER_BYTES)
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcBackend {
            client,
            url: url.to_string(),
            deadlines,
            description: Mutex::new(description),
            server,
        })
    }

    /// A failed call about `model` as a counted error.
    fn status(&self, model: &str, s: tonic::Status) -> BackendError {
        let ctx = self.deadlines.context(crate::SERVER, model);
        support::grpc::status_error(&self.url, ctx, &s)
    }
}

/// The request message for `inputs`, built once per batch.
pub fn encode(model: &str, inputs: &[Tensor]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_string(),
        inputs: inputs
            .iter()
            .map(|t| InferInputTensor {
                name: t.name.clone(),
                datatype: t.dtype.kserve_name().to_string(),
                shape: t.shape.iter().map(|&d| d as i64).collect(),
            })
            .collect(),
        outputs: Vec::<InferRequestedOutputTensor>::new(),
        raw_input_contents: inputs.iter().map(|t| t.data.clone()).collect(),
        ..Default::default()
    }
}

/// The output tensors of a response (one `raw_output_contents` entry per output).
pub fn decode(resp: proto::ModelInferResponse) -> Result<Vec<Tensor>, BackendError> {
    if resp.raw_output_contents.len() != resp.outputs.len() {
        return Err(BackendError::Protocol(format!(
            "{} outputs but {} raw_output_contents",
            resp.outputs.len(),
            resp.raw_output_contents.len()
        )));
    }
    resp.outputs
        .into_iter()
        .zip(resp.raw_output_contents)
        .map(|(o, data)| {
            let shape = o
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    BackendError::Protocol(format!("output {} has a negative dimension", o.name))
                })?;
            Tensor::new(o.name, codec::dtype(&o.datatype)?, shape, data)
                .map_err(|e| BackendError::Protocol(format!("output does not fit its shape: {e}")))
        })
        .collect()
}

#[async_trait::async_trait]
impl Backend for GrpcBackend {
    fn describe(&self) -> Description {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn served_by(&self) -> ServedBy {
        match &self.server {
            Some(server) => ServedBy::ProcessGroups(vec![server.pid()]),
            None => ServedBy::NotVisible,
        }
    }

    /// `ServerReady`, then every model's `ModelMetadata`.
    async fn health(&self) -> Result<(), BackendError> {
        let mut c = self.client.clone();
        let ready = c
            .server_ready(ServerReadyRequest {})
            .await
            .map_err(|s| self.status("", s))?
            .into_inner()
            .ready;
        if !ready {
            return Err(BackendError::Server {
                status: "not ready".into(),
                message: format!("{} says it is not ready", self.url),
            });
        }
        for m in &self.describe().models {
            let meta = c
                .model_metadata(ModelMetadataRequest {
                    name: m.to_string(),
                    version: String::new(),
                })
                .await
                .map_err(|s| self.status(m, s))?
                .into_inner();
            crate::note_platform(&self.description, &meta.platform);
        }
        Ok(())
    }

    /// Builds the `ModelInferRequest` once; every `infer` sends a cheap clone of it (the
    /// tensor bytes are shared).
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let message = encode(model, &inputs);
        Ok(Prepared::new(model, inputs).with_payload(message))
    }

    /// One `ModelInfer` call.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let message: ModelInferRequest = support::payload_or(request, |m, inputs| {
            Ok::<_, BackendError>(encode(m, inputs))
        })?;
        let resp = self
            .client
            .clone()
            .model_infer(message)
            .await
            .map_err(|s| self.status(request.model(), s))?;
        decode(resp.into_inner())
    }

    /// `ModelStatistics` for the model, summed over its versions.
    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        let resp = self
            .client
            .clone()
            .model_statistics(ModelStatisticsRequest {
                name: model.to_string(),
                version: String::new(),
            })
            .await
            .map_err(|s| self.status(model, s))?
            .into_inner();
        let mut s = ServerStats::default();
        for m in resp.model_stats.iter().filter(|m| m.name == model) {
            let Some(i) = &m.inference_stats else {
                continue;
            };
            let ns = |d: &Option<proto::StatisticDuration>| d.as_ref().map_or(0, |d| d.ns);
            s.requests = s
                .requests
                .saturating_add(i.success.as_ref().map_or(0, |d| d.count));
            s.queue_ns = s.queue_ns.saturating_add(ns(&i.queue));
            s.compute_input_ns = s.compute_input_ns.saturating_add(ns(&i.compute_input));
            s.compute_infer_ns = s.compute_infer_ns.saturating_add(ns(&i.compute_infer));
            s.compute_output_ns = s.compute_output_ns.saturating_add(ns(&i.compute_output));
        }
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn requests_carry_raw_bytes_and_responses_decode() {
        let t = Tensor::from_i64("input", vec![1, 2], &[3, 4]);
        let m = encode("text-cnn", std::slice::from_ref(&t));
        assert_eq!(m.inputs[0].shape, vec![1, 2]);
        assert_eq!(m.inputs[0].datatype, "INT64");
        assert_eq!(m.raw_input_contents[0], t.data);

        let logits = Tensor::from_f32("logits", vec![1, 2], &[0.5, 1.5]);
        let resp = proto::ModelInferResponse {
            outputs: vec![proto::model_infer_response::InferOutputTensor {
                name: "logits".into(),
                datatype: "FP32".into(),
                shape: vec![1, 2],
            }],
            raw_output_contents: vec![logits.data.clone()],
            ..Default::default()
        };
        assert_eq!(decode(resp).unwrap(), vec![logits]);
        let bad = proto::ModelInferResponse {
            outputs: vec![],
            raw_output_contents: vec![Bytes::new()],
            ..Default::default()
        };
        assert_eq!(decode(bad).unwrap_err().kind(), "protocol");
    }
}
