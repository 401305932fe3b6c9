//! Triton Inference Server, measured over KServe v2 HTTP and gRPC.
//!
//! Two backends, one server: `triton-http` ([`http`]: JSON tensors or Triton's binary
//! tensor data extension, chosen by [`Settings::http_body`]) and `triton-grpc`
//! ([`grpc`]: `ModelInfer` with `raw_input_contents`). Both encode a batch once, in
//! [`contract::Backend::prepare`], outside the timed region, and both read Triton's own
//! per-model statistics ([`contract::Backend::server_stats`]) so the harness can split
//! client latency into queue, compute input / infer / output and the remainder
//! (network + protocol), as `perf_analyzer` does.
//!
//! # Which server
//! - With a URL (`server_urls["triton-http"]` / `["triton-grpc"]`, from `--triton-url` /
//!   `--triton-grpc-url`) the backend uses that server and starts nothing. It serves
//!   whatever variant that server was given (on a GPU host, the `onnxruntime_onnx`
//!   repository); the platform its metadata reports is recorded.
//! - Without one, each backend starts its own `tritonserver` ([`server`]) from the
//!   `nvidia-pytriton` wheel on loopback ports it picks, with a model repository of the
//!   **Python-backend variant**: `model.py` running onnxruntime (Python) on the same
//!   `model.onnx` (the wheel has no other backend). `instance_group` count = the matched
//!   worker count, onnxruntime intra-op threads = the matched thread count, dynamic
//!   batching as [`Settings::dynamic_batching`] says. Two backends in one run start two
//!   servers, one after the other (each is stopped when its backend is dropped).
//!
//! # Settings
//! The harness's flags that only Triton reads (`--triton-http-body`,
//! `--dynamic-batching`) reach the adapter through [`configure`], once per run, before
//! any backend is opened; [`contract::OpenOptions`] stays the same for every backend.
//!
//! # Test hook
//! When `SERVEBENCH_TRITON_PID_FILE` is set, the pids of a managed server's process group
//! (`tritonserver` and its Python stubs) are written there once it is ready.
#![deny(missing_docs)]

pub mod codec;
pub mod grpc;
pub mod http;
pub mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use contract::{Backend, BackendError, Description, Device, OpenOptions, Protocol};
use fixtures::ModelId;

pub use codec::HttpBody;
use server::{Install, ManagedTriton, ServerConfig};

/// Name of the HTTP backend in flags and results.
pub const HTTP_NAME: &str = "triton-http";
/// Name of the gRPC backend in flags and results.
pub const GRPC_NAME: &str = "triton-grpc";
/// Environment variable naming a file that receives a managed server's pids.
pub const PID_FILE_ENV: &str = "SERVEBENCH_TRITON_PID_FILE";

/// Run-wide settings only Triton reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Tensor encoding of `triton-http` bodies.
    pub http_body: HttpBody,
    /// Triton's dynamic batcher on (managed server only).
    pub dynamic_batching: bool,
}

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    http_body: HttpBody::Binary,
    dynamic_batching: false,
});

/// Sets the settings for every Triton backend opened from now on.
pub fn configure(settings: Settings) {
    *SETTINGS.lock().unwrap_or_else(|e| e.into_inner()) = settings;
}

fn settings() -> Settings {
    *SETTINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `triton-http`: the server at `opts.server_urls["triton-http"]`, else a managed one.
pub fn open_http(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let s = settings();
    let (url, server, mut description) =
        connect(opts, HTTP_NAME, Protocol::Http, |t| t.http_url())?;
    description
        .details
        .insert("http_body".into(), s.http_body.name().into());
    Ok(Arc::new(http::HttpBackend::new(
        &url,
        s.http_body,
        opts.workers,
        description,
        server,
    )?))
}

/// Opens `triton-grpc`: the server at `opts.server_urls["triton-grpc"]`, else a managed one.
pub fn open_grpc(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, server, description) = connect(opts, GRPC_NAME, Protocol::Grpc, |t| t.grpc_url())?;
    Ok(Arc::new(grpc::GrpcBackend::new(&url, description, server)?))
}

/// The URL to talk to, the managed server if one was started, and the description.
fn connect(
    opts: &OpenOptions,
    name: &str,
    protocol: Protocol,
    url_of: impl Fn(&ManagedTriton) -> String,
) -> Result<(String, Option<ManagedTriton>, Description), BackendError> {
    let models = opts
        .models
        .iter()
        .map(|m| {
            m.parse::<ModelId>()
                .map_err(|_| BackendError::UnknownModel(m.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut details = BTreeMap::new();
    details.insert("api".to_string(), "KServe v2".to_string());
    details.insert("models".to_string(), opts.models.join(","));
    if let Some(url) = opts.server_urls.get(name) {
        details.insert("url".into(), url.clone());
        details.insert("server".into(), "existing".into());
        let description = Description {
            name: name.into(),
            engine: "triton (existing server)".into(),
            protocol,
            device: opts.device.to_string(),
            workers: opts.workers,
            intra_threads: None,
            details,
        };
        return Ok((url.trim_end_matches('/').to_string(), None, description));
    }
    if let Device::Cuda(_) = opts.device {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "the bundled Triton runs the Python backend on the CPU only".into(),
            fix: "use --device cpu, or a GPU Triton with --triton-url / --triton-grpc-url".into(),
        });
    }
    let install = Install::find().map_err(|e| rename(e, name))?;
    let s = settings();
    let cfg = ServerConfig {
        install,
        fixtures_dir: opts.fixtures_dir.clone(),
        models,
        instances: opts.workers.max(1),
        intra_threads: opts.intra_threads.max(1),
        dynamic_batching: s.dynamic_batching,
        ready_timeout: server::READY_TIMEOUT,
    };
    let triton = ManagedTriton::start(&cfg).map_err(|e| rename(e, name))?;
    write_pid_file(&triton);
    let url = url_of(&triton);
    details.insert("url".into(), url.clone());
    details.insert("server".into(), "managed".into());
    details.insert(
        "variant".into(),
        "python backend (model.py running onnxruntime on model.onnx)".into(),
    );
    details.insert("instance_group".into(), cfg.instances.to_string());
    details.insert(
        "dynamic_batching".into(),
        if cfg.dynamic_batching { "on" } else { "off" }.into(),
    );
    let description = Description {
        name: name.into(),
        engine: format!(
            "triton 2.51 (nvidia-pytriton {})",
            wheel_version(&cfg.install)
        ),
        protocol,
        device: opts.device.to_string(),
        workers: cfg.instances,
        intra_threads: Some(cfg.intra_threads),
        details,
    };
    Ok((url, Some(triton), description))
}

/// An `Unavailable` error from the server module, named after the backend opened.
fn rename(e: BackendError, name: &str) -> BackendError {
    match e {
        BackendError::Unavailable { reason, fix, .. } => BackendError::Unavailable {
            backend: name.into(),
            reason,
            fix,
        },
        other => other,
    }
}

fn write_pid_file(server: &ManagedTriton) {
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        let pids: Vec<String> = server.group_pids().iter().map(u32::to_string).collect();
        // Several servers in one run (http and grpc) append to the same file.
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{}", pids.join(" "));
        }
    }
}

fn wheel_version(install: &Install) -> String {
    std::fs::read_dir(&install.site_packages)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix("nvidia_pytriton-")?
                .strip_suffix(".dist-info")
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}

/// Records what an existing server reported in its metadata (platform, version).
pub(crate) fn note_platform(description: &Mutex<Description>, platform: &str) {
    let mut d = description.lock().unwrap_or_else(|e| e.into_inner());
    if d.details.get("server").map(String::as_str) == Some("existing") && !platform.is_empty() {
        d.details.insert("variant".into(), platform.to_string());
        d.engine = format!("triton (existing server, platform {platform})");
    }
}
