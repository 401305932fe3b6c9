//! `triton-grpc`: KServe v2 over gRPC (tonic), tensors in `raw_input_contents`.

use std::sync::Mutex;
use std::time::Duration;

use contract::{Backend, BackendError, Description, Prepared, ServerStats, Tensor};
use tonic::transport::{Channel, Endpoint};

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

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A Triton server, managed or existing, reached over gRPC (one HTTP/2 connection,
/// requests multiplexed on it).
pub struct GrpcBackend {
    client: GrpcInferenceServiceClient<Channel>,
    url: String,
    description: Mutex<Description>,
    // Declared last: dropped after the client, it stops a managed server.
    _server: Option<ManagedTriton>,
}

impl GrpcBackend {
    /// A backend talking to `url` (such as `http://127.0.0.1:8001`). The connection is
    /// made on first use.
    pub fn new(
        url: &str,
        description: Description,
        server: Option<ManagedTriton>,
    ) -> Result<GrpcBackend, BackendError> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| BackendError::Transport(format!("{url} is not a gRPC URL: {e}")))?
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5));
        let client = GrpcInferenceServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcBackend {
            client,
            url: url.to_string(),
            description: Mutex::new(description),
            _server: server,
        })
    }

    fn status(&self, s: tonic::Status) -> BackendError {
        status_error(&self.url, s)
    }
}

/// A gRPC status as a counted error: no answer at all is a transport error, anything
/// else is the server's status name and message.
fn status_error(url: &str, s: tonic::Status) -> BackendError {
    match s.code() {
        tonic::Code::Unavailable => BackendError::Transport(format!("{url}: {}", cause(&s))),
        tonic::Code::DeadlineExceeded if s.message().contains("Timeout expired") => {
            BackendError::Timeout(REQUEST_TIMEOUT.as_millis() as u64)
        }
        code => BackendError::Server {
            status: format!("{code:?}"),
            message: s.message().to_string(),
        },
    }
}

/// The innermost cause of a status (connection refused, ...), or its message.
fn cause(s: &tonic::Status) -> String {
    let mut cause = s.message().to_string();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    cause
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

    /// `ServerReady`, then every model's `ModelMetadata`.
    async fn health(&self) -> Result<(), BackendError> {
        let mut c = self.client.clone();
        let ready = c
            .server_ready(ServerReadyRequest {})
            .await
            .map_err(|s| self.status(s))?
            .into_inner()
            .ready;
        if !ready {
            return Err(BackendError::Server {
                status: "not ready".into(),
                message: format!("{} says it is not ready", self.url),
            });
        }
        for m in &self.describe().models() {
            let meta = c
                .model_metadata(ModelMetadataRequest {
                    name: m.to_string(),
                    version: String::new(),
                })
                .await
                .map_err(|s| self.status(s))?
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
        let message = match request.payload::<ModelInferRequest>() {
            Some(m) => m.clone(),
            None => encode(request.model(), request.inputs()),
        };
        let resp = self
            .client
            .clone()
            .model_infer(message)
            .await
            .map_err(|s| self.status(s))?;
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
            .map_err(|s| self.status(s))?
            .into_inner();
        let mut s = ServerStats::default();
        for m in resp.model_stats.iter().filter(|m| m.name == model) {
            let Some(i) = &m.inference_stats else {
                continue;
            };
            let ns = |d: &Option<proto::StatisticDuration>| d.as_ref().map_or(0, |d| d.ns);
            s.requests += i.success.as_ref().map_or(0, |d| d.count);
            s.queue_ns += ns(&i.queue);
            s.compute_input_ns += ns(&i.compute_input);
            s.compute_infer_ns += ns(&i.compute_infer);
            s.compute_output_ns += ns(&i.compute_output);
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

    #[test]
    fn statuses_become_counted_errors() {
        let e = status_error("u", tonic::Status::invalid_argument("unexpected shape"));
        assert_eq!(e.kind(), "server");
        assert!(
            e.to_string().contains("InvalidArgument: unexpected shape"),
            "{e}"
        );
        let e = status_error("u", tonic::Status::unavailable("tcp connect error"));
        assert_eq!(e.kind(), "transport");
    }
}
