//! Triton Inference Server, measured over KServe v2 HTTP and gRPC.
//!
//! Two backends, one server: `triton-http` ([`http`]: JSON tensors or Triton's binary
//! tensor data extension, chosen by [`Options::http_body`]) and `triton-grpc`
//! ([`grpc`]: `ModelInfer` with `raw_input_contents`). Both are the shared KServe v2
//! client of `adapter-kserve` with Triton's [`FLAVOR`]. Both encode a batch once, in
//! [`contract::Backend::prepare`], outside the timed region, and both read Triton's own
//! per-model statistics ([`contract::Backend::server_stats`]) so the harness can split
//! client latency into queue, compute input / infer / output and the remainder
//! (network + protocol), as `perf_analyzer` does.
//!
//! # Which server
//! - With a URL ([`Options::url`] / [`Options::grpc_url`], from `--triton-url` /
//!   `--triton-grpc-url`) the backend uses that server and starts nothing. It serves
//!   whatever variant that server was given (on a GPU host, the `onnxruntime_onnx`
//!   repository); the platform its metadata reports is recorded. At a reduced
//!   precision it is asked for `<model>_<precision>` (`resnet18_int8`), the entry
//!   `fixtures triton` writes for a conversion in a repository serving every precision.
//! - Without one, each backend starts its own `tritonserver` ([`server`]) from the
//!   `nvidia-pytriton` wheel on loopback ports it picks, with a model repository of the
//!   **Python-backend variant**: `model.py` running onnxruntime (Python) on the same
//!   `model.onnx` (the wheel has no other backend). `instance_group` count = the matched
//!   worker count, onnxruntime intra-op threads = the matched thread count, dynamic
//!   batching as [`Options::dynamic_batching`] says. Two backends in one run start two
//!   servers, one after the other (each is stopped when its backend is dropped).
//!
//! # Options
//! What only Triton reads travels in [`Options`], passed to each open: two labels of one
//! backend (`triton-http@a`, `triton-http@b`) may carry different options. With the
//! `clap` feature the struct is also the flags (`--triton-url`, `--triton-http-body`,
//! ...). [`contract::OpenOptions`] stays the same for every backend.
//!
//! # Errors
//! Errors Triton answers are counted with the table every server backend shares
//! ([`support::status`]): HTTP 404 / `NOT_FOUND` is `unknown_model`, 400 /
//! `INVALID_ARGUMENT` (Triton's answer to a wrong shape) is `bad_input`, anything else
//! `server`, each with Triton's own message.
//!
//! # Test hook
//! When `SERVEBENCH_TRITON_PID_FILE` is set, the pids of a managed server's process group
//! (`tritonserver` and its Python stubs) are written there once it is ready.
#![deny(missing_docs)]

pub mod server;

pub use adapter_kserve::{codec, grpc, http};

use std::collections::BTreeMap;
use std::sync::Arc;

use adapter_kserve::{Flavor, Managed};
use contract::{Backend, BackendError, Description, Device, OpenOptions, Protocol};
use fixtures::ModelId;
use serde::{Deserialize, Serialize};

pub use codec::HttpBody;
use server::{Install, ManagedTriton, ServerConfig};

/// Name of the HTTP backend in flags and results.
pub const HTTP_NAME: &str = "triton-http";
/// Name of the gRPC backend in flags and results.
pub const GRPC_NAME: &str = "triton-grpc";
/// Environment variable naming a file that receives a managed server's pids.
pub const PID_FILE_ENV: &str = "SERVEBENCH_TRITON_PID_FILE";
/// Triton as a KServe v2 server: named `Triton` in messages, with its statistics
/// extension.
pub const FLAVOR: Flavor = Flavor {
    server: "Triton",
    engine: "triton",
    statistics: true,
};

/// What only the Triton backends read. With the `clap` feature, also their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "triton"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Use the Triton server already serving KServe v2 HTTP at this URL (such as
    /// http://127.0.0.1:8000) for triton-http instead of starting one.
    #[cfg_attr(
        feature = "clap",
        arg(id = "triton_url", long = "triton-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub url: Option<String>,

    /// Use the Triton server already serving gRPC at this URL (such as
    /// http://127.0.0.1:8001) for triton-grpc instead of starting one.
    #[cfg_attr(
        feature = "clap",
        arg(id = "triton_grpc_url", long = "triton-grpc-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub grpc_url: Option<String>,

    /// Scrape this Prometheus metrics endpoint of a Triton given by URL (such as
    /// http://127.0.0.1:8002/metrics) before and after each window; a managed server's
    /// metrics port is scraped without it.
    #[cfg_attr(
        feature = "clap",
        arg(id = "triton_metrics_url", long = "triton-metrics-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub metrics_url: Option<String>,

    /// Tensor encoding of triton-http bodies: json, or binary (Triton's binary tensor
    /// data extension).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "triton_http_body",
            long = "triton-http-body",
            value_name = "TRITON_HTTP_BODY",
            value_enum,
            default_value_t = HttpBody::Binary
        )
    )]
    pub http_body: HttpBody,

    /// Turn on Triton's dynamic batcher in the managed server's model configuration.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "dynamic_batching",
            long = "dynamic-batching",
            action = clap::ArgAction::Set,
            num_args = 0..=1,
            require_equals = true,
            default_value_t = false,
            default_missing_value = "true",
            value_name = "BOOL"
        )
    )]
    pub dynamic_batching: bool,
}

/// Opens `triton-http`: the server at `options.url`, else a managed one.
pub fn open_http(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, server, mut description) = connect(
        opts,
        options,
        HTTP_NAME,
        Protocol::Http,
        options.url.as_deref(),
        |t| t.http_url(),
    )?;
    description
        .details
        .insert("http_body".into(), options.http_body.name().into());
    let suffix = suffix(opts, &server);
    Ok(Arc::new(
        http::HttpBackend::new(
            FLAVOR,
            &url,
            options.http_body,
            opts.workers,
            description,
            server,
        )?
        .serving_as(&suffix),
    ))
}

/// Opens `triton-grpc`: the server at `options.grpc_url`, else a managed one.
pub fn open_grpc(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, server, description) = connect(
        opts,
        options,
        GRPC_NAME,
        Protocol::Grpc,
        options.grpc_url.as_deref(),
        |t| t.grpc_url(),
    )?;
    let suffix = suffix(opts, &server);
    Ok(Arc::new(
        grpc::GrpcBackend::new(FLAVOR, &url, description, server)?.serving_as(&suffix),
    ))
}

/// What a model's name gets on the wire: nothing from a managed server (its repository
/// is written for the run's precision under the models' own names); from a server given
/// by URL at a reduced precision, `_<precision>` (`resnet18_int8`), the name
/// `fixtures triton` gives a conversion in a repository serving every precision.
fn suffix(opts: &OpenOptions, server: &Option<Box<dyn Managed>>) -> String {
    match (server, opts.precision) {
        (Some(_), _) | (None, contract::Precision::Fp32) => String::new(),
        (None, p) => fixtures::triton::served_name("", p),
    }
}

/// What [`connect`] gives.
type Connected = (String, Option<Box<dyn Managed>>, Description);

/// The URL to talk to, the managed server if one was started, and the description.
fn connect(
    opts: &OpenOptions,
    options: &Options,
    name: &str,
    protocol: Protocol,
    given_url: Option<&str>,
    url_of: impl Fn(&ManagedTriton) -> String,
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
    if let Some(url) = given_url {
        if opts.precision != contract::Precision::Fp32 {
            // A repository serving every precision (the compose stack's).
            let example = fixtures::triton::served_name("<model>", opts.precision);
            details.insert("served_as".into(), example);
        }
        details.insert("url".into(), url.to_string());
        details.insert("server".into(), "existing".into());
        if let Some(m) = &options.metrics_url {
            details.insert("metrics_url".into(), m.clone());
        }
        let description = Description {
            name: name.into(),
            engine: "triton (existing server)".into(),
            protocol,
            device: opts.device.to_string(),
            workers: opts.workers,
            intra_threads: None,
            models: opts.models.clone(),
            served_by_test_peer: false,
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
    let install = Install::find().map_err(|e| adapter_kserve::rename(e, name))?;
    let cfg = ServerConfig {
        install,
        fixtures_dir: opts.fixtures_dir.clone(),
        models,
        user_models,
        instances: opts.workers.max(1),
        intra_threads: opts.intra_threads.max(1),
        dynamic_batching: options.dynamic_batching,
        precision: opts.precision,
        conversions: false,
        ready_timeout: server::READY_TIMEOUT,
    };
    let triton = ManagedTriton::start(&cfg).map_err(|e| adapter_kserve::rename(e, name))?;
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        support::process::append_pids(std::path::Path::new(&path), &triton.group_pids());
    }
    let url = url_of(&triton);
    details.insert("url".into(), url.clone());
    details.insert("server".into(), "managed".into());
    details.insert("metrics_url".into(), triton.metrics_url());
    let file = opts.precision.onnx_file().unwrap_or("model.onnx");
    details.insert(
        "variant".into(),
        format!("python backend (model.py running onnxruntime on {file})"),
    );
    details.insert("precision".into(), opts.precision.to_string());
    details.insert("instance_group".into(), cfg.instances.to_string());
    details.insert(
        "dynamic_batching".into(),
        if cfg.dynamic_batching { "on" } else { "off" }.into(),
    );
    let description = Description {
        name: name.into(),
        engine: format!(
            "triton 2.51 (nvidia-pytriton {})",
            support::pyenv::dist_version(&server::venv(), "nvidia_pytriton-")
                .unwrap_or_else(|| "?".into())
        ),
        protocol,
        device: opts.device.to_string(),
        workers: cfg.instances,
        intra_threads: Some(cfg.intra_threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    Ok((url, Some(Box::new(triton)), description))
}
