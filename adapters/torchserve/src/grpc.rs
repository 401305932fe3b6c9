//! `torchserve-grpc`: TorchServe's gRPC inference API (tonic), `InferenceAPIsService`
//! `Ping` and `Predictions`.
//!
//! A request is a `PredictionsRequest` whose `input` map carries the same tensor frame
//! the REST backend posts ([`crate::codec`]) under the key `data`, which servebench's
//! handler reads as it reads a REST body; the answer's `prediction` bytes are the
//! handler's answer frame. The message is built once per batch in `prepare`. Answers
//! are read up to [`support::grpc::MAX_ANSWER_BYTES`].

use std::collections::HashMap;

use contract::{Backend, BackendError, Description, Prepared, ServedBy, Tensor};
use support::Deadlines;
use tonic::transport::Channel;

use crate::server::ManagedTorchServe;
use crate::{codec, SERVER};

/// The messages and client generated from `proto/inference.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("org.pytorch.serve.grpc.inference");
}

use proto::inference_ap_is_service_client::InferenceApIsServiceClient;
use proto::{Empty, PredictionResponse, PredictionsRequest};

/// The `input` key the frame travels under (servebench's handler reads `body` or `data`).
pub const INPUT_KEY: &str = "data";

/// A TorchServe, managed or existing, reached over gRPC (one HTTP/2 connection, requests
/// multiplexed on it).
pub struct GrpcBackend {
    client: InferenceApIsServiceClient<Channel>,
    url: String,
    deadlines: Deadlines,
    description: Description,
    /// The user's models: their requests and answers are several-tensor frames.
    user: crate::UserModels,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<ManagedTorchServe>,
}

impl GrpcBackend {
    /// Sends the requests of the models named in `user` (a user's models) as
    /// several-tensor frames, as [`crate::RestBackend::with_user_models`].
    pub fn with_user_models(mut self, user: crate::UserModels) -> Self {
        self.user = user;
        self
    }

    /// A backend talking to the gRPC inference API at `url` (such as
    /// `http://127.0.0.1:7070`), owning `server` when the harness started it. The
    /// connection is made on first use; must be called inside a tokio runtime.
    pub fn new(
        url: &str,
        description: Description,
        server: Option<ManagedTorchServe>,
    ) -> Result<GrpcBackend, BackendError> {
        let deadlines = Deadlines::default();
        let client = InferenceApIsServiceClient::new(support::grpc::channel(url, deadlines)?)
            .max_decoding_message_size(support::grpc::MAX_ANSWER_BYTES)
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcBackend {
            client,
            url: url.trim_end_matches('/').to_string(),
            deadlines,
            description,
            user: crate::UserModels::new(),
            server,
        })
    }

    /// A failed call about `model` as a counted error.
    fn status(&self, model: &str, s: tonic::Status) -> BackendError {
        let ctx = self.deadlines.context(SERVER, model);
        status_error(&self.url, ctx, &s)
    }
}

/// A failed call as a counted error, with the shared table, except that TorchServe's
/// gRPC API answers `INTERNAL` for a model it does not serve (REST: 404): its message
/// names the `ModelNotFoundException`, which counts as `unknown_model` as on REST.
pub fn status_error(
    url: &str,
    ctx: support::status::Context<'_>,
    s: &tonic::Status,
) -> BackendError {
    let not_found = s.code() == tonic::Code::Internal
        && (s.message().contains("ModelNotFoundException")
            || s.message().contains("ModelVersionNotFoundException"));
    if not_found {
        let message = s.message().lines().next().unwrap_or_default().to_string();
        return support::status::error(
            support::status::Answer::UnknownModel,
            ctx,
            &format!("{:?}", s.code()),
            message,
        );
    }
    support::grpc::status_error(url, ctx, s)
}

/// The request message for `inputs`: their frame under [`INPUT_KEY`] (a fixture's one
/// input, or a user's model's inputs named when `user`).
pub fn encode(
    model: &str,
    inputs: &[Tensor],
    user: bool,
) -> Result<PredictionsRequest, BackendError> {
    let frame = crate::frame_of(inputs, user)?;
    Ok(PredictionsRequest {
        model_name: model.to_string(),
        model_version: String::new(),
        input: HashMap::from([(INPUT_KEY.to_string(), frame)]),
    })
}

/// The outputs of an answer: its `prediction` is one frame, of a fixture's logits or
/// of a user's model's outputs.
pub fn decode(resp: PredictionResponse) -> Result<Vec<Tensor>, BackendError> {
    codec::decode_any(&resp.prediction, fixtures::OUTPUT_NAME)
}

#[async_trait::async_trait]
impl Backend for GrpcBackend {
    fn describe(&self) -> Description {
        self.description.clone()
    }

    fn served_by(&self) -> ServedBy {
        crate::served_by(self.server.as_ref())
    }

    /// `Ping` must say Healthy.
    async fn health(&self) -> Result<(), BackendError> {
        let health = self
            .client
            .clone()
            .ping(Empty {})
            .await
            .map_err(|s| self.status("", s))?
            .into_inner()
            .health;
        if health.contains("Healthy") {
            Ok(())
        } else {
            Err(BackendError::Server {
                status: "not healthy".into(),
                message: format!("{} answered Ping with {health}", self.url),
            })
        }
    }

    /// Builds the `PredictionsRequest` once; every `infer` sends a cheap clone of it (the
    /// frame's bytes are shared).
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let message = encode(model, &inputs, self.user.contains(model))?;
        Ok(Prepared::new(model, inputs).with_payload(message))
    }

    /// One `Predictions` call.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let user = self.user.contains(request.model());
        let message: PredictionsRequest =
            support::payload_or(request, |model, inputs| encode(model, inputs, user))?;
        let resp = self
            .client
            .clone()
            .predictions(message)
            .await
            .map_err(|s| self.status(request.model(), s))?;
        decode(resp.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_rest_frame_and_answers_decode() {
        let ids = Tensor::from_i64("input", vec![1, 3], &[1, 2, 3]);
        let m = encode("text-cnn", std::slice::from_ref(&ids), false).unwrap();
        assert_eq!(m.model_name, "text-cnn");
        assert_eq!(m.model_version, "");
        assert_eq!(m.input.len(), 1);
        assert_eq!(m.input[INPUT_KEY], codec::encode(&ids));
        let two = [ids.clone(), ids];
        assert_eq!(encode("m", &two, false).unwrap_err().kind(), "bad_input");
        let user = encode("m", &two, true).unwrap();
        assert_eq!(user.input[INPUT_KEY], codec::encode_named(&two));

        let logits = Tensor::from_f32("logits", vec![1, 2], &[0.5, -1.5]);
        let answer = PredictionResponse {
            prediction: codec::encode(&logits),
        };
        assert_eq!(decode(answer).unwrap(), vec![logits]);
        let e = decode(PredictionResponse::default()).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        assert!(e.to_string().contains("TorchServe's answer"), "{e}");
    }

    #[test]
    fn a_model_torchserve_does_not_serve_is_unknown_though_it_says_internal() {
        let ctx = support::status::Context {
            server: SERVER,
            model: "resnet18",
            deadline_ms: 1,
        };
        let missing = tonic::Status::internal(
            "Model not found: resnet18\norg.pytorch.serve.archive.model.ModelNotFoundException",
        );
        let e = status_error("u", ctx, &missing);
        assert_eq!(e.kind(), "unknown_model");
        assert!(
            e.to_string()
                .contains("TorchServe answered Internal: Model not found: resnet18"),
            "{e}"
        );
        let other = tonic::Status::internal("worker died");
        assert_eq!(status_error("u", ctx, &other).kind(), "server");
    }
}
