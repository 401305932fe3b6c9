//! `tfserving-grpc`: TF Serving's gRPC API (tonic), tensors as `TensorProto`
//! `tensor_content` bytes.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use contract::{Backend, BackendError, DType, Description, Prepared, Tensor};
use prost::Message;
use support::Deadlines;
use tonic::transport::Channel;

/// The messages and clients generated from `proto/`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    /// Package `tensorflow`.
    pub mod tensorflow {
        tonic::include_proto!("tensorflow");
        /// Package `tensorflow.serving`.
        pub mod serving {
            tonic::include_proto!("tensorflow.serving");
        }
    }
}

use proto::tensorflow::serving::model_service_client::ModelServiceClient;
use proto::tensorflow::serving::model_version_status::State;
use proto::tensorflow::serving::prediction_service_client::PredictionServiceClient;
use proto::tensorflow::serving::{
    GetModelMetadataRequest, GetModelStatusRequest, ModelSpec, PredictRequest, PredictResponse,
    SignatureDefMap,
};
use proto::tensorflow::tensor_shape_proto::Dim;
use proto::tensorflow::{DataType, TensorProto, TensorShapeProto};

/// A TF Serving server reached over gRPC (one HTTP/2 connection, requests multiplexed).
pub struct GrpcBackend {
    predict: PredictionServiceClient<Channel>,
    models: ModelServiceClient<Channel>,
    url: String,
    deadlines: Deadlines,
    description: Mutex<Description>,
}

impl GrpcBackend {
    /// A backend talking to `url` (such as `http://127.0.0.1:8500`). The connection is
    /// made on first use.
    pub fn new(url: &str, description: Description) -> Result<GrpcBackend, BackendError> {
        Self::with_deadlines(url, description, Deadlines::default())
    }

    /// [`GrpcBackend::new`] with the client's own `deadlines`.
    pub fn with_deadlines(
        url: &str,
        description: Description,
        deadlines: Deadlines,
    ) -> Result<GrpcBackend, BackendError> {
        let channel = support::grpc::channel(url, deadlines)?;
        Ok(GrpcBackend {
            predict: PredictionServiceClient::new(channel.clone())
                .max_decoding_message_size(support::grpc::MAX_ANSWER_BYTES)
                .max_encoding_message_size(usize::MAX),
            models: ModelServiceClient::new(channel),
            url: url.to_string(),
            deadlines,
            description: Mutex::new(description),
        })
    }

    /// A failed call about `model` as a counted error.
    fn status(&self, model: &str, s: tonic::Status) -> BackendError {
        let ctx = self.deadlines.context(crate::SERVER, model);
        support::grpc::status_error(&self.url, ctx, &s)
    }
}

fn spec(model: &str) -> Option<ModelSpec> {
    Some(ModelSpec {
        name: model.to_string(),
        signature_name: crate::json::SIGNATURE.to_string(),
        version_choice: None,
    })
}

/// The `TensorProto` of a tensor: dtype, shape and the raw bytes.
pub fn tensor_proto(t: &Tensor) -> TensorProto {
    TensorProto {
        dtype: match t.dtype {
            DType::F32 => DataType::DtFloat,
            DType::I64 => DataType::DtInt64,
            DType::F16 => DataType::DtHalf,
        } as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: t
                .shape
                .iter()
                .map(|&d| Dim {
                    size: d as i64,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        tensor_content: t.data.clone(),
        ..Default::default()
    }
}

/// The request message for `inputs`, built once per batch.
pub fn encode(model: &str, inputs: &[Tensor]) -> PredictRequest {
    PredictRequest {
        model_spec: spec(model),
        inputs: inputs
            .iter()
            .map(|t| (t.name.clone(), tensor_proto(t)))
            .collect::<HashMap<_, _>>(),
        output_filter: vec![],
    }
}

/// A `TensorProto` as a tensor: `tensor_content` bytes, or the typed `*_val` fields
/// (a single value stands for the whole tensor, as TensorFlow reads it).
pub fn from_proto(name: &str, p: TensorProto) -> Result<Tensor, BackendError> {
    let bad = |why: String| BackendError::Protocol(format!("output {name}: {why}"));
    let shape = p
        .tensor_shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| usize::try_from(d.size))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|_| bad("negative dimension".into()))?
        .unwrap_or_default();
    let dtype = match DataType::try_from(p.dtype) {
        Ok(DataType::DtFloat) => DType::F32,
        Ok(DataType::DtInt64) => DType::I64,
        _ => return Err(bad(format!("unsupported dtype {}", p.dtype))),
    };
    // Checked before a single value is expanded: a hostile answer may declare any shape.
    let n = contract::byte_size(&shape, dtype).ok_or_else(|| {
        bad(format!(
            "shape {shape:?} is larger than {} bytes",
            contract::MAX_TENSOR_BYTES
        ))
    })? / dtype.size();
    let data: Bytes = if !p.tensor_content.is_empty() {
        p.tensor_content
    } else {
        match dtype {
            DType::F32 => expand(&p.float_val, n, f32::to_le_bytes)
                .ok_or_else(|| bad(format!("{} float_val for {n} values", p.float_val.len())))?,
            DType::I64 => expand(&p.int64_val, n, i64::to_le_bytes)
                .ok_or_else(|| bad(format!("{} int64_val for {n} values", p.int64_val.len())))?,
            // Not produced above: this decoder reads DT_FLOAT and DT_INT64 only.
            DType::F16 => return Err(bad("unsupported dtype DT_HALF".into())),
        }
    };
    Tensor::new(name, dtype, shape, data).map_err(|e| bad(e.to_string()))
}

/// The bytes of `n` values from `v`: all `n` of them, or one standing for every value.
fn expand<T: Copy, const W: usize>(v: &[T], n: usize, le: fn(T) -> [u8; W]) -> Option<Bytes> {
    let one = match v.len() {
        len if len == n => return Some(v.iter().flat_map(|&x| le(x)).collect::<Vec<u8>>().into()),
        1 => le(v[0]),
        _ => return None,
    };
    Some(one.repeat(n).into())
}

/// The output tensors of a response, sorted by name (the fixtures have one, `logits`).
pub fn decode(resp: PredictResponse) -> Result<Vec<Tensor>, BackendError> {
    let mut outputs: Vec<(String, TensorProto)> = resp.outputs.into_iter().collect();
    outputs.sort_by(|a, b| a.0.cmp(&b.0));
    outputs
        .into_iter()
        .map(|(name, p)| from_proto(&name, p))
        .collect()
}

/// True when the answer carries the test peer's metadata key.
fn peer_of(meta: &tonic::metadata::MetadataMap) -> bool {
    meta.contains_key(crate::PEER_HEADER)
}

#[async_trait::async_trait]
impl Backend for GrpcBackend {
    fn describe(&self) -> Description {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For every model: `GetModelStatus` (a version is `AVAILABLE`) and
    /// `GetModelMetadata` (the `serving_default` signature takes `input`, gives `logits`).
    async fn health(&self) -> Result<(), BackendError> {
        for m in &self.describe().models {
            let resp = self
                .models
                .clone()
                .get_model_status(GetModelStatusRequest {
                    model_spec: spec(m).map(|s| ModelSpec {
                        signature_name: String::new(),
                        ..s
                    }),
                })
                .await
                .map_err(|s| self.status(m, s))?;
            crate::note_server(&self.description, peer_of(resp.metadata()));
            let versions = resp.into_inner().model_version_status;
            if !versions.iter().any(|v| v.state == State::Available as i32) {
                return Err(BackendError::Server {
                    status: "not ready".into(),
                    message: format!("no version of {m} is AVAILABLE ({versions:?})"),
                });
            }
            let meta = self
                .predict
                .clone()
                .get_model_metadata(GetModelMetadataRequest {
                    model_spec: spec(m),
                    metadata_field: vec!["signature_def".into()],
                })
                .await
                .map_err(|s| self.status(m, s))?
                .into_inner();
            check_signature(m, &meta.metadata)?;
        }
        Ok(())
    }

    /// Builds the `PredictRequest` once; every `infer` sends a cheap clone of it (the
    /// tensor bytes are shared).
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let message = encode(model, &inputs);
        Ok(Prepared::new(model, inputs).with_payload(message))
    }

    /// One `Predict` call.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let message: PredictRequest = support::payload_or(request, |m, inputs| {
            Ok::<_, BackendError>(encode(m, inputs))
        })?;
        let resp = self
            .predict
            .clone()
            .predict(message)
            .await
            .map_err(|s| self.status(request.model(), s))?;
        decode(resp.into_inner())
    }
}

/// Checks `metadata["signature_def"]` of `GetModelMetadata`: the `serving_default`
/// signature takes `input` and gives `logits`.
pub fn check_signature(
    model: &str,
    metadata: &HashMap<String, prost_types::Any>,
) -> Result<(), BackendError> {
    let any = metadata.get("signature_def").ok_or_else(|| {
        BackendError::Protocol(format!("the metadata of {model} has no signature_def"))
    })?;
    let map = SignatureDefMap::decode(any.value.as_slice()).map_err(|e| {
        BackendError::Protocol(format!("the signature_def of {model} does not decode: {e}"))
    })?;
    let sig = map
        .signature_def
        .get(crate::json::SIGNATURE)
        .ok_or_else(|| {
            BackendError::Protocol(format!(
                "the metadata of {model} has no {} signature",
                crate::json::SIGNATURE
            ))
        })?;
    if sig.inputs.contains_key(fixtures::INPUT_NAME)
        && sig.outputs.contains_key(fixtures::OUTPUT_NAME)
    {
        Ok(())
    } else {
        Err(BackendError::ModelLoad {
            model: model.into(),
            reason: format!(
                "its {} signature does not take {:?} and give {:?}",
                crate::json::SIGNATURE,
                fixtures::INPUT_NAME,
                fixtures::OUTPUT_NAME
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_raw_bytes_and_responses_decode() {
        let t = Tensor::from_i64("input", vec![1, 2], &[3, 4]);
        let m = encode("text-cnn", std::slice::from_ref(&t));
        let p = &m.inputs["input"];
        assert_eq!(p.dtype, DataType::DtInt64 as i32);
        assert_eq!(p.tensor_content, t.data);
        assert_eq!(
            m.model_spec.as_ref().unwrap().signature_name,
            "serving_default"
        );

        let logits = Tensor::from_f32("logits", vec![1, 2], &[0.5, 1.5]);
        let mut resp = PredictResponse::default();
        resp.outputs.insert("logits".into(), tensor_proto(&logits));
        assert_eq!(decode(resp).unwrap(), vec![logits.clone()]);
        // float_val instead of tensor_content, as some servers answer.
        let typed = TensorProto {
            float_val: vec![0.5, 1.5],
            tensor_content: Bytes::new(),
            ..tensor_proto(&logits)
        };
        assert_eq!(from_proto("logits", typed).unwrap(), logits);
        let short = TensorProto {
            float_val: vec![0.5, 1.5, 2.0],
            tensor_content: Bytes::new(),
            ..tensor_proto(&logits)
        };
        assert_eq!(from_proto("logits", short).unwrap_err().kind(), "protocol");
    }
}
