//! TorchServe, measured over its REST inference API (`torchserve-rest`) and its gRPC
//! inference API (`torchserve-grpc`, [`grpc`]).
//!
//! REST: `POST /predictions/<model>` with servebench's binary tensor frame ([`codec`]),
//! which servebench's handler (`fixtures/torchserve/handler.py`) decodes and answers with
//! the logits (a user's model: its several inputs and outputs, named, in one frame). gRPC: `InferenceAPIsService/Predictions` carrying the same frame in its
//! `input` map, answered with the same frame in `prediction`. The body or message is
//! built once per batch in `prepare`, outside the timed region. The model is the
//! fixtures' **TorchScript** (`<fixtures>/torchserve/<model>/model.pt`, traced by
//! `fixtures/torchserve/export_torchscript.py` from the same safetensors weights), run
//! by torch on the CPU.
//!
//! A user's model (`--model-file` with `--torchscript`) runs from the user's TorchScript:
//! the managed server's model directory holds it beside a small `servebench.json` (the
//! inputs and outputs the model's ONNX file declares, [`server::model_description`]),
//! which the handler checks requests against and names its answers by.
//!
//! # Which server
//! - With [`Options::url`] (`--torchserve-url`) / [`Options::grpc_url`]
//!   (`--torchserve-grpc-url`) the backend uses that server's inference API (it must
//!   serve the same handler) and starts nothing.
//! - Without one each backend starts its own TorchServe ([`server`]) on loopback ports
//!   it picks, `--workers` workers per model, and stops its whole process group at the
//!   end.
//!
//! # Errors
//! The table every server backend shares ([`support::status`]): 404 / `NOT_FOUND`
//! (TorchServe's `ModelNotFoundException`) is `unknown_model`, 400 / `INVALID_ARGUMENT`
//! (the handler's answer to a frame that does not fit the model) `bad_input`, anything
//! else `server`.
//!
//! # Test hook
//! When `SERVEBENCH_TORCHSERVE_PID_FILE` is set, the pids of a managed server's process
//! group are written there once it is ready.
#![deny(missing_docs)]

pub mod codec;
pub mod grpc;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use contract::{
    Backend, BackendError, Description, Device, OpenOptions, Prepared, Protocol, ServedBy, Tensor,
};
use fixtures::ModelId;
use serde::{Deserialize, Serialize};
use support::http::Request;
use support::Deadlines;

use server::{Install, ManagedTorchServe, ServerConfig};

/// Name of the REST backend in flags and results.
pub const NAME: &str = "torchserve-rest";
/// Name of the gRPC backend in flags and results.
pub const GRPC_NAME: &str = "torchserve-grpc";
/// Environment variable naming a file that receives a managed server's pids.
pub const PID_FILE_ENV: &str = "SERVEBENCH_TORCHSERVE_PID_FILE";
const SERVER: &str = "TorchServe";

/// What only the TorchServe backends read. With the `clap` feature, also their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "torchserve"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Use the TorchServe already serving its inference API at this URL (such as
    /// http://127.0.0.1:8080, with servebench's handler) for torchserve-rest instead of
    /// starting one.
    #[cfg_attr(
        feature = "clap",
        arg(id = "torchserve_url", long = "torchserve-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub url: Option<String>,

    /// Use the TorchServe already serving its gRPC inference API at this URL (such as
    /// http://127.0.0.1:7070, with servebench's handler) for torchserve-grpc instead of
    /// starting one.
    #[cfg_attr(
        feature = "clap",
        arg(id = "torchserve_grpc_url", long = "torchserve-grpc-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub grpc_url: Option<String>,
}

/// Opens `torchserve-rest`: the server at `options.url`, else a managed one.
pub fn open_rest(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, server, description, user) = connect(
        opts,
        NAME,
        Protocol::Http,
        options.url.as_deref(),
        ManagedTorchServe::url,
    )?;
    Ok(Arc::new(
        RestBackend::new(&url, opts.workers, description, server)?.with_user_models(user),
    ))
}

/// Opens `torchserve-grpc`: the server at `options.grpc_url`, else a managed one.
pub fn open_grpc(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, server, description, user) = connect(
        opts,
        GRPC_NAME,
        Protocol::Grpc,
        options.grpc_url.as_deref(),
        ManagedTorchServe::grpc_url,
    )?;
    Ok(Arc::new(
        grpc::GrpcBackend::new(&url, description, server)?.with_user_models(user),
    ))
}

/// The names of the user's models a backend serves.
pub type UserModels = BTreeSet<String>;

type Connected = (String, Option<ManagedTorchServe>, Description, UserModels);

/// The URL to talk to, the managed server if one was started, the description and the
/// names of the user's models.
fn connect(
    opts: &OpenOptions,
    name: &str,
    protocol: Protocol,
    given_url: Option<&str>,
    url_of: fn(&ManagedTorchServe) -> String,
) -> Result<Connected, BackendError> {
    let (fixed, user) = fixtures::user_models(opts)?;
    let names: UserModels = user.iter().map(|m| m.name.clone()).collect();
    let models = fixed
        .iter()
        .map(|m| {
            m.parse::<ModelId>()
                .map_err(|_| BackendError::UnknownModel(m.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut details = BTreeMap::new();
    let api = match protocol {
        Protocol::Grpc => "TorchServe gRPC",
        _ => "TorchServe REST",
    };
    details.insert("api".to_string(), api.to_string());
    details.insert("body".to_string(), "servebench tensor frame".to_string());
    let mut description = Description {
        name: name.into(),
        engine: "torchserve (existing server)".into(),
        protocol,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: None,
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    if let Some(url) = given_url {
        description.details.insert("url".into(), url.to_string());
        description
            .details
            .insert("server".into(), "existing".into());
        return Ok((url.to_string(), None, description, names));
    }
    if let Device::Cuda(_) = opts.device {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "the managed TorchServe runs on the CPU only here".into(),
            fix: "use --device cpu, or a GPU TorchServe with --torchserve-url / \
                  --torchserve-grpc-url"
                .into(),
        });
    }
    let user_models = fixtures::with_torchscripts(opts, user, name, "TorchServe")?;
    let install = Install::find().map_err(|e| adapter_kserve::rename(e, name))?;
    let cfg = ServerConfig {
        install,
        fixtures_dir: opts.fixtures_dir.clone(),
        models,
        user_models,
        workers: opts.workers.max(1),
        intra_threads: opts.intra_threads.max(1),
        ready_timeout: server::READY_TIMEOUT,
    };
    let server = ManagedTorchServe::start(&cfg).map_err(|e| adapter_kserve::rename(e, name))?;
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        support::process::append_pids(std::path::Path::new(&path), &server.group_pids());
    }
    let url = url_of(&server);
    let d = &mut description.details;
    d.insert("url".into(), url.clone());
    d.insert("server".into(), "managed".into());
    let variant = if names.is_empty() {
        "TorchScript (model.pt) in servebench's handler"
    } else {
        "TorchScript (model.pt, a user's from --torchscript) in servebench's handler"
    };
    d.insert("variant".into(), variant.into());
    d.insert("workers_per_model".into(), cfg.workers.to_string());
    description.engine = format!("torchserve {}", cfg.install.version);
    description.workers = cfg.workers;
    description.intra_threads = Some(cfg.intra_threads);
    Ok((url, Some(server), description, names))
}

/// A TorchServe, managed or existing, reached over its REST inference API.
pub struct RestBackend {
    client: support::http::Client,
    base: String,
    deadlines: Deadlines,
    description: Description,
    /// The user's models: their requests and answers are several-tensor frames.
    user: UserModels,
    // Declared last: dropped after the client, it stops a managed server.
    server: Option<ManagedTorchServe>,
}

impl RestBackend {
    /// Sends the requests of the models named in `user` (a user's models) as
    /// several-tensor frames, the tensors named.
    pub fn with_user_models(mut self, user: UserModels) -> Self {
        self.user = user;
        self
    }

    /// A backend talking to `base` (such as `http://127.0.0.1:8080`), owning `server`
    /// when the harness started it; up to `connections` idle keep-alive connections.
    pub fn new(
        base: &str,
        connections: usize,
        description: Description,
        server: Option<ManagedTorchServe>,
    ) -> Result<RestBackend, BackendError> {
        let deadlines = Deadlines::default();
        Ok(RestBackend {
            client: support::http::Client::new(connections, deadlines),
            base: base.trim_end_matches('/').to_string(),
            deadlines,
            description,
            user: UserModels::new(),
            server,
        })
    }
}

#[async_trait::async_trait]
impl Backend for RestBackend {
    fn describe(&self) -> Description {
        self.description.clone()
    }

    fn served_by(&self) -> ServedBy {
        served_by(self.server.as_ref())
    }

    /// `GET /ping` must say Healthy.
    async fn health(&self) -> Result<(), BackendError> {
        let url = format!("{}/ping", self.base);
        let ctx = self.deadlines.context(SERVER, "/ping");
        let reply = self.client.exchange(&Request::get(&url), ctx).await?;
        if String::from_utf8_lossy(&reply.body).contains("Healthy") {
            Ok(())
        } else {
            Err(BackendError::Server {
                status: "not healthy".into(),
                message: format!("{url} answered {}", String::from_utf8_lossy(&reply.body)),
            })
        }
    }

    /// Encodes the batch's frame once; every `infer` sends the same bytes.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        let frame = frame_of(&inputs, self.user.contains(model))?;
        Ok(Prepared::new(model, inputs).with_payload(frame))
    }

    /// One `POST /predictions/<model>`.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError> {
        let user = self.user.contains(request.model());
        let body: bytes::Bytes = support::payload_or(request, |_, inputs| frame_of(inputs, user))?;
        let url = format!("{}/predictions/{}", self.base, request.model());
        let req = Request::post(&url, "application/octet-stream", body);
        let ctx = self.deadlines.context(SERVER, request.model());
        let reply = self.client.exchange(&req, ctx).await?;
        codec::decode_any(&reply.body, fixtures::OUTPUT_NAME)
    }
}

/// What serves a backend's requests: its managed server's process group, or a server
/// given by URL (not visible).
fn served_by(server: Option<&ManagedTorchServe>) -> ServedBy {
    match server {
        Some(server) => ServedBy::ProcessGroups(vec![server.pid()]),
        None => ServedBy::NotVisible,
    }
}

/// The frame of a request: a user's model's inputs, named (`user`), or a fixture's one
/// input.
fn frame_of(inputs: &[Tensor], user: bool) -> Result<bytes::Bytes, BackendError> {
    match inputs {
        _ if user => Ok(codec::encode_named(inputs)),
        [input] => Ok(codec::encode(input)),
        _ => Err(BackendError::BadInput(format!(
            "TorchServe's handler takes one input tensor, got {}",
            inputs.len()
        ))),
    }
}
