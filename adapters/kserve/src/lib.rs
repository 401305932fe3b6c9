//! The KServe v2 protocol (the open inference protocol), one client for every v2 server.
//!
//! Triton, MLServer, KServe's own model server and others speak the same protocol:
//! `GET /v2/health/ready`, `GET /v2/models/<m>`, `POST /v2/models/<m>/infer` over HTTP
//! (JSON tensors, or Triton's binary tensor data extension), and the
//! `inference.GRPCInferenceService` over gRPC. This crate holds that client once
//! ([`codec`], [`http`], [`grpc`]); what differs between servers is a [`Flavor`]: how
//! messages name the server, and whether it has Triton's statistics extension.
//! `adapter-triton` builds its two backends from it.
//!
//! The crate's own backends are `kserve-v2-http` and `kserve-v2-grpc`:
//! - with a URL ([`Options::url`] / [`Options::grpc_url`], from `--kserve-url` /
//!   `--kserve-grpc-url`) they talk to that server, whatever it is, and start nothing;
//! - without one, each starts its own **MLServer** ([`mlserver`]) from `.venv-mlserver`
//!   on loopback ports it picks, with servebench's small custom runtime
//!   (`fixtures/mlserver/servebench_runtime.py`) running the same `model.onnx` with
//!   onnxruntime, `parallel_workers` = the matched worker count; a user's model
//!   (`--model-file`) runs from its own file, its model settings written from it.
//!
//! # Errors
//! Errors the server answers are counted with the table every server backend shares
//! ([`support::status`]): HTTP 404 / `NOT_FOUND` is `unknown_model`, 400 /
//! `INVALID_ARGUMENT` is `bad_input`, anything else `server`, each with the server's
//! own message.
//!
//! # Test hook
//! When `SERVEBENCH_MLSERVER_PID_FILE` is set, the pids of a managed MLServer's process
//! group are written there once it is ready.
#![deny(missing_docs)]

pub mod codec;
pub mod grpc;
pub mod http;
pub mod mlserver;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use contract::{Backend, BackendError, Description, Device, OpenOptions, Protocol};
use fixtures::ModelId;
use serde::{Deserialize, Serialize};

pub use codec::HttpBody;

/// Name of the HTTP backend in flags and results.
pub const HTTP_NAME: &str = "kserve-v2-http";
/// Name of the gRPC backend in flags and results.
pub const GRPC_NAME: &str = "kserve-v2-grpc";
/// Environment variable naming a file that receives a managed MLServer's pids.
pub const PID_FILE_ENV: &str = "SERVEBENCH_MLSERVER_PID_FILE";

/// What kind of v2 server is at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// How error messages name the server (`Triton`, `MLServer`).
    pub server: &'static str,
    /// How the engine of an existing server is named once its metadata names a
    /// platform (`triton` gives `triton (existing server, platform P)`).
    pub engine: &'static str,
    /// Triton's statistics extension (`/v2/models/<m>/stats`, `ModelStatistics`): read
    /// for the server-side breakdown when true.
    pub statistics: bool,
}

/// A v2 server given by URL: nothing known beyond the core protocol.
pub const ANY_SERVER: Flavor = Flavor {
    server: "the KServe v2 server",
    engine: "kserve v2",
    statistics: false,
};

/// The managed MLServer.
pub const MLSERVER: Flavor = Flavor {
    server: "MLServer",
    engine: "mlserver",
    statistics: false,
};

/// A server the harness started: stopped when dropped, measured by its process group.
pub trait Managed: Send + Sync + std::fmt::Debug {
    /// Id of the server's process group (the pid of its first process).
    fn pid(&self) -> u32;
}

/// What only the `kserve-v2-*` backends read. With the `clap` feature, also their flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "kserve"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Use the KServe v2 server (MLServer, KServe, Triton, ...) already serving HTTP at
    /// this URL (such as http://127.0.0.1:8080) for kserve-v2-http instead of starting
    /// MLServer.
    #[cfg_attr(
        feature = "clap",
        arg(id = "kserve_url", long = "kserve-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub url: Option<String>,

    /// Use the KServe v2 server already serving gRPC at this URL (such as
    /// http://127.0.0.1:8081) for kserve-v2-grpc instead of starting MLServer.
    #[cfg_attr(
        feature = "clap",
        arg(id = "kserve_grpc_url", long = "kserve-grpc-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub grpc_url: Option<String>,

    /// Tensor encoding of kserve-v2-http bodies: json (every v2 server), or binary
    /// (Triton's binary tensor data extension, which MLServer does not read).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "kserve_http_body",
            long = "kserve-http-body",
            value_name = "KSERVE_HTTP_BODY",
            value_enum,
            default_value_t = HttpBody::Json
        )
    )]
    pub http_body: HttpBody,

    /// The Prometheus metrics endpoint (such as http://127.0.0.1:8082/metrics) of the
    /// server given by --kserve-url / --kserve-grpc-url, scraped around each window for
    /// the server-metrics table (a managed MLServer's is known without it).
    #[cfg_attr(
        feature = "clap",
        arg(id = "kserve_metrics_url", long = "kserve-metrics-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub metrics_url: Option<String>,
}

impl Default for Options {
    /// No URLs (a managed MLServer), JSON bodies.
    fn default() -> Self {
        Options {
            url: None,
            grpc_url: None,
            http_body: HttpBody::Json,
            metrics_url: None,
        }
    }
}

/// Opens `kserve-v2-http`: the server at `options.url`, else a managed MLServer.
pub fn open_http(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let body = match (&options.url, options.http_body) {
        // MLServer reads JSON bodies only.
        (None, _) => HttpBody::Json,
        (Some(_), body) => body,
    };
    let (flavor, url, server, mut description) = connect(
        opts,
        options,
        HTTP_NAME,
        Protocol::Http,
        options.url.as_deref(),
        mlserver::ManagedMlServer::http_url,
    )?;
    description
        .details
        .insert("http_body".into(), body.name().into());
    Ok(Arc::new(http::HttpBackend::new(
        flavor,
        &url,
        body,
        opts.workers,
        description,
        server,
    )?))
}

/// Opens `kserve-v2-grpc`: the server at `options.grpc_url`, else a managed MLServer.
pub fn open_grpc(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (flavor, url, server, description) = connect(
        opts,
        options,
        GRPC_NAME,
        Protocol::Grpc,
        options.grpc_url.as_deref(),
        mlserver::ManagedMlServer::grpc_url,
    )?;
    Ok(Arc::new(grpc::GrpcBackend::new(
        flavor,
        &url,
        description,
        server,
    )?))
}

type Connected = (Flavor, String, Option<Box<dyn Managed>>, Description);

/// The flavor and URL to talk to, the managed server if one was started, and the
/// description.
fn connect(
    opts: &OpenOptions,
    options: &Options,
    name: &str,
    protocol: Protocol,
    given_url: Option<&str>,
    url_of: impl Fn(&mlserver::ManagedMlServer) -> String,
) -> Result<Connected, BackendError> {
    let (fixed, user_models) = fixtures::user_models(opts)?;
    let models = fixed
        .iter()
        .map(|m| {
            m.parse::<ModelId>()
                .map_err(|_| BackendError::UnknownModel(m.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut details = BTreeMap::new();
    details.insert("api".to_string(), "KServe v2".to_string());
    let mut description = Description {
        name: name.into(),
        engine: String::new(),
        protocol,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: None,
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    if let Some(url) = given_url {
        description.engine = format!("{} (existing server)", ANY_SERVER.engine);
        description.details.insert("url".into(), url.to_string());
        description
            .details
            .insert("server".into(), "existing".into());
        if let Some(m) = &options.metrics_url {
            description.details.insert("metrics_url".into(), m.clone());
        }
        let url = url.trim_end_matches('/').to_string();
        return Ok((ANY_SERVER, url, None, description));
    }
    if let Device::Cuda(_) = opts.device {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "the managed MLServer runs onnxruntime on the CPU only".into(),
            fix: "use --device cpu, or a GPU v2 server with --kserve-url / --kserve-grpc-url"
                .into(),
        });
    }
    let install = mlserver::Install::find().map_err(|e| rename(e, name))?;
    let cfg = mlserver::ServerConfig {
        install,
        fixtures_dir: opts.fixtures_dir.clone(),
        models,
        user_models,
        workers: opts.workers.max(1),
        intra_threads: opts.intra_threads.max(1),
        ready_timeout: mlserver::READY_TIMEOUT,
    };
    let server = mlserver::ManagedMlServer::start(&cfg).map_err(|e| rename(e, name))?;
    write_pid_file(&server.group_pids());
    let url = url_of(&server);
    let d = &mut description.details;
    d.insert("url".into(), url.clone());
    d.insert("server".into(), "managed".into());
    d.insert("metrics_url".into(), server.metrics_url());
    d.insert(
        "variant".into(),
        "custom runtime (servebench_runtime.py running onnxruntime on model.onnx)".into(),
    );
    d.insert("parallel_workers".into(), cfg.workers.to_string());
    description.engine = format!("mlserver {}", cfg.install.version);
    description.workers = cfg.workers;
    description.intra_threads = Some(cfg.intra_threads);
    Ok((MLSERVER, url, Some(Box::new(server)), description))
}

/// An `Unavailable` error from a server module, named after the backend opened.
pub fn rename(e: BackendError, name: &str) -> BackendError {
    match e {
        BackendError::Unavailable { reason, fix, .. } => BackendError::Unavailable {
            backend: name.into(),
            reason,
            fix,
        },
        other => other,
    }
}

/// Appends a managed server's pids, one line per server, to the file the test hook
/// `PID_FILE_ENV` names (several servers of one run append to the same file).
fn write_pid_file(pids: &[u32]) {
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        support::process::append_pids(std::path::Path::new(&path), pids);
    }
}

/// Records what an existing server reported in its metadata (platform).
pub(crate) fn note_platform(flavor: &Flavor, description: &Mutex<Description>, platform: &str) {
    let mut d = description.lock().unwrap_or_else(|e| e.into_inner());
    if d.details.get("server").map(String::as_str) == Some("existing") && !platform.is_empty() {
        d.details.insert("variant".into(), platform.to_string());
        d.engine = format!("{} (existing server, platform {platform})", flavor.engine);
    }
}
