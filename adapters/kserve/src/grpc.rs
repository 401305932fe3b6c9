//! KServe v2 over gRPC (tonic), tensors in `raw_input_contents` (`triton-grpc`,
//! `kserve-v2-grpc`). Outputs are read from `raw_output_contents` (Triton) or from each
//! output's typed `contents` (MLServer and other v2 servers).

use std::sync::Mutex;

use bytes::Bytes;
use contract::{
    Backend, BackendError, DType, Description, Prepared, ServedBy, ServerStats, Tensor,
};
use support::Deadlines;
use tonic::transport::Channel;

use crate::codec;
use crate::{Flavor, Managed};

/// The messages and client generated from `proto/grpc_service.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use proto::{ModelInferRequest, ModelMetadataRequest, ModelStatisticsRequest, ServerReadyRequest};

/// A KServe v2 server, managed or existing, reached over gRPC (one HTTP/2 connection,
/// requests multiplexed on it).
pub struct GrpcBackend {
    flavor: Flavor,
    client: GrpcInferenceServiceClient<Channel>,
    url: String,
    deadlines: Deadlines,
    description: Mutex<Description>,
    /// Appended to a model's name on the wire ([`GrpcBackend::serving_as`]).
    suffix: String,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<Box<dyn Managed>>,
}

impl GrpcBackend {
    /// Asks the server for every model under its name plus `suffix`, as
    /// [`crate::http::HttpBackend::serving_as`].
    pub fn serving_as(mut self, suffix: &str) -> Self {
        self.suffix = suffix.to_string();
        self
    }

    fn wire(&self, model: &str) -> String {
        format!("{model}{}", self.suffix)
    }

    /// A backend talking to the `flavor` of server at `url` (such as
    /// `http://127.0.0.1:8001`). The connection is made on first use.
    pub fn new(
        flavor: Flavor,
        url: &str,
        description: Description,
        server: Option<Box<dyn Managed>>,
    ) -> Result<GrpcBackend, BackendError> {
        Self::with_deadlines(flavor, url, description, server, Deadlines::default())
    }

    /// [`GrpcBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        flavor: Flavor,
        url: &str,
        description: Description,
        server: Option<Box<dyn Managed>>,
        deadlines: Deadlines,
    ) -> Result<GrpcBackend, BackendError> {
        let client = GrpcInferenceServiceClient::new(support::grpc::channel(url, deadlines)?)
            .max_decoding_message_size(support::grpc::MAX_ANSWER_BYTES)
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcBackend {
            flavor,
            client,
            url: url.to_string(),
            deadlines,
            description: Mutex::new(description),
            suffix: String::new(),
            server,
        })
    }

    /// A failed call about `model` as a counted error.
    fn status(&self, model: &str, s: tonic::Status) -> BackendError {
        let ctx = self.deadlines.context(self.flavor.server, model);
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

/// The output tensors of a response: one `raw_output_contents` entry per output
/// (Triton), or, when there are none, each output's typed `contents`.
pub fn decode(resp: proto::ModelInferResponse) -> Result<Vec<Tensor>, BackendError> {
    let raw = !resp.raw_output_contents.is_empty();
    if raw && resp.raw_output_contents.len() != resp.outputs.len() {
        return Err(BackendError::Protocol(format!(
            "{} outputs but {} raw_output_contents",
            resp.outputs.len(),
            resp.raw_output_contents.len()
        )));
    }
    let mut raw_contents = resp.raw_output_contents.into_iter();
    resp.outputs
        .into_iter()
        .map(|o| {
            let shape = o
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    BackendError::Protocol(format!("output {} has a negative dimension", o.name))
                })?;
            let dtype = codec::dtype(&o.datatype)?;
            let data = match raw_contents.next() {
                Some(bytes) => bytes,
                None => typed_contents(dtype, o.contents.unwrap_or_default()),
            };
            Tensor::new(o.name, dtype, shape, data)
                .map_err(|e| BackendError::Protocol(format!("output does not fit its shape: {e}")))
        })
        .collect()
}

/// The little-endian bytes of an output's typed `contents` field of `dtype`.
fn typed_contents(dtype: DType, c: proto::InferTensorContents) -> Bytes {
    match dtype {
        DType::F32 => c
            .fp32_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        DType::I64 => c
            .int64_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        // The v2 protocol has no typed field for FP16: only raw contents carry it, so
        // an answer without them does not fit its shape (and says so).
        DType::F16 => Bytes::new(),
    }
}

#[async_trait::async_trait]
impl Backend for GrpcBackend {
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
                    name: self.wire(m),
                    version: String::new(),
                })
                .await
                .map_err(|s| self.status(m, s))?
                .into_inner();
            crate::note_platform(&self.flavor, &self.description, &meta.platform);
        }
        Ok(())
    }

    /// Builds the `ModelInferRequest` once; every `infer` sends a cheap clone of it (the
    /// tensor bytes are shared).
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let message = encode(&self.wire(model), &inputs);
        Ok(Prepared::new(model, inputs).with_payload(message))
    }

    /// One `ModelInfer` call.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let message: ModelInferRequest = support::payload_or(request, |m, inputs| {
            Ok::<_, BackendError>(encode(&self.wire(m), inputs))
        })?;
        let resp = self
            .client
            .clone()
            .model_infer(message)
            .await
            .map_err(|s| self.status(request.model(), s))?;
        decode(resp.into_inner())
    }

    /// `ModelStatistics` for the model, summed over its versions, for a server with
    /// Triton's statistics extension.
    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        if !self.flavor.statistics {
            return Ok(None);
        }
        let resp = self
            .client
            .clone()
            .model_statistics(ModelStatisticsRequest {
                name: self.wire(model),
                version: String::new(),
            })
            .await
            .map_err(|s| self.status(model, s))?
            .into_inner();
        let mut s = ServerStats::default();
        let wire = self.wire(model);
        for m in resp.model_stats.iter().filter(|m| m.name == wire) {
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
                contents: None,
            }],
            raw_output_contents: vec![logits.data.clone()],
            ..Default::default()
        };
        assert_eq!(decode(resp).unwrap(), vec![logits.clone()]);
        let bad = proto::ModelInferResponse {
            outputs: vec![],
            raw_output_contents: vec![Bytes::new()],
            ..Default::default()
        };
        assert_eq!(decode(bad).unwrap_err().kind(), "protocol");

        // MLServer answers with typed contents instead of raw bytes.
        let typed = proto::ModelInferResponse {
            outputs: vec![proto::model_infer_response::InferOutputTensor {
                name: "logits".into(),
                datatype: "FP32".into(),
                shape: vec![1, 2],
                contents: Some(proto::InferTensorContents {
                    fp32_contents: vec![0.5, 1.5],
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        assert_eq!(decode(typed).unwrap(), vec![logits]);
        let short = proto::ModelInferResponse {
            outputs: vec![proto::model_infer_response::InferOutputTensor {
                name: "logits".into(),
                datatype: "FP32".into(),
                shape: vec![1, 2],
                contents: Some(proto::InferTensorContents {
                    fp32_contents: vec![0.5],
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let e = decode(short).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        assert!(e.to_string().contains("does not fit its shape"), "{e}");
    }
}
