//! TF Serving, measured over its REST API and over gRPC.
//!
//! Two backends, one server:
//! - `tfserving-rest` ([`rest`]): `POST /v1/models/<m>:predict` with a JSON body in
//!   TF Serving's **row** format (`{"instances": [...]}`, answered with `predictions`)
//!   or **columnar** format (`{"inputs": {...}}`, answered with `outputs`), chosen by
//!   [`Options::format`]; readiness is `GET /v1/models/<m>` (every version
//!   `AVAILABLE`) and the signature comes from `GET /v1/models/<m>/metadata`.
//! - `tfserving-grpc` ([`grpc`]): `tensorflow.serving.PredictionService/Predict` with
//!   `TensorProto` inputs (`tensor_content` bytes), `GetModelMetadata` and
//!   `ModelService/GetModelStatus`, from our own `.proto` files (`proto/`), which keep
//!   TF Serving's packages, services and field numbers.
//!
//! Both encode a batch once, in [`contract::Backend::prepare`], outside the timed region.
//! Errors the server answers are counted by kind with the server's own message, with
//! the table every server backend shares ([`support::status`]): an unknown model (HTTP
//! 404, gRPC `NOT_FOUND`) is `unknown_model`, a bad input (HTTP 400, gRPC
//! `INVALID_ARGUMENT`) is `bad_input`, anything else is `server`.
//!
//! # Which server
//! TF Serving is never started by the harness (there is no binary to start on a machine
//! without Docker). The backend talks to [`Options::url`] / [`Options::grpc_url`] (from
//! `--tfserving-url` / `--tfserving-grpc-url`, or `--stack compose`), else to TF Serving's default ports on 127.0.0.1 (8501 REST,
//! 8500 gRPC). Opening checks with a short connect timeout that something listens
//! there; if nothing does, it returns [`contract::BackendError::Unavailable`] saying
//! TF Serving is not reachable at that URL and how to start it.
//!
//! # The test peer
//! `fixtures/tfserving/test_peer.py` answers the same APIs from TensorFlow in Python, for
//! tests only. It says so (HTTP header [`PEER_HEADER`], gRPC metadata of the same name);
//! when the adapter sees it, [`contract::Backend::describe`] names the engine
//! [`PEER_ENGINE`] and sets [`contract::Description::served_by_test_peer`], so a result
//! can never pass for TF Serving.
#![deny(missing_docs)]

pub mod grpc;
pub mod json;
pub mod rest;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::{Backend, BackendError, Description, OpenOptions, Protocol};
use fixtures::ModelId;
use serde::{Deserialize, Serialize};

pub use json::RestFormat;

/// Name of the REST backend in flags and results.
pub const REST_NAME: &str = "tfserving-rest";
/// Name of the gRPC backend in flags and results.
pub const GRPC_NAME: &str = "tfserving-grpc";
/// TF Serving's default REST address (`--rest_api_port=8501`).
pub const DEFAULT_REST_URL: &str = "http://127.0.0.1:8501";
/// TF Serving's default gRPC address (`--port=8500`).
pub const DEFAULT_GRPC_URL: &str = "http://127.0.0.1:8500";
/// The header (REST) and metadata key (gRPC) with which the test peer names itself.
pub const PEER_HEADER: &str = "x-servebench-test-peer";
/// The engine a backend reports when the server is the test peer.
pub const PEER_ENGINE: &str = "servebench test peer (not TF Serving)";
/// How long opening waits for a TCP connection to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How to start TF Serving, for the `Unavailable` message.
const START_HINT: &str = "start it with `docker compose up -d tfserving` (on a host with Docker), \
     or point the harness at a running one with --tfserving-url / --tfserving-grpc-url";

/// How error messages name the server.
pub(crate) const SERVER: &str = "TF Serving";

/// What only the TF Serving backends read. With the `clap` feature, also their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", group(id = "tfserving"))]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Use TF Serving's REST API at this URL for tfserving-rest
    /// [default: http://127.0.0.1:8501, TF Serving's own default].
    #[cfg_attr(
        feature = "clap",
        arg(id = "tfserving_url", long = "tfserving-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub url: Option<String>,

    /// Use TF Serving's gRPC API at this URL for tfserving-grpc
    /// [default: http://127.0.0.1:8500, TF Serving's own default].
    #[cfg_attr(
        feature = "clap",
        arg(id = "tfserving_grpc_url", long = "tfserving-grpc-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub grpc_url: Option<String>,

    /// Scrape TF Serving's Prometheus monitoring endpoint at this URL (such as
    /// http://127.0.0.1:8501/monitoring/prometheus/metrics, which its
    /// --monitoring_config_file turns on) before and after each window.
    #[cfg_attr(
        feature = "clap",
        arg(id = "tfserving_metrics_url", long = "tfserving-metrics-url", value_name = "URL", value_parser = support::url::server_url)
    )]
    pub metrics_url: Option<String>,

    /// JSON format of tfserving-rest requests: row ({"instances": ...}) or columnar
    /// ({"inputs": ...}).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "tfserving_format",
            long = "tfserving-format",
            value_name = "TFSERVING_FORMAT",
            value_enum,
            default_value_t = RestFormat::Row
        )
    )]
    pub format: RestFormat,
}

/// Opens `tfserving-rest` at `options.url`, else `127.0.0.1:8501`.
pub fn open_rest(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, mut description) = connect(
        opts,
        REST_NAME,
        Protocol::Http,
        options.url.as_deref(),
        DEFAULT_REST_URL,
    )?;
    metrics(&mut description, options);
    description
        .details
        .insert("rest_format".into(), options.format.name().into());
    Ok(Arc::new(rest::RestBackend::new(
        &url,
        options.format,
        opts.workers,
        description,
    )?))
}

/// Opens `tfserving-grpc` at `options.grpc_url`, else `127.0.0.1:8500`.
pub fn open_grpc(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, mut description) = connect(
        opts,
        GRPC_NAME,
        Protocol::Grpc,
        options.grpc_url.as_deref(),
        DEFAULT_GRPC_URL,
    )?;
    metrics(&mut description, options);
    Ok(Arc::new(grpc::GrpcBackend::new(&url, description)?))
}

/// Records the monitoring endpoint, where one is given, as the harness's scrapes find it
/// ([`Backend::metrics_url`]).
fn metrics(description: &mut Description, options: &Options) {
    if let Some(m) = &options.metrics_url {
        description
            .details
            .insert("metrics_url".into(), m.trim_end_matches('/').to_string());
    }
}

/// The URL to use (checked to accept connections) and the description.
fn connect(
    opts: &OpenOptions,
    name: &str,
    protocol: Protocol,
    given_url: Option<&str>,
    default_url: &str,
) -> Result<(String, Description), BackendError> {
    for m in &opts.models {
        m.parse::<ModelId>()
            .map_err(|_| BackendError::UnknownModel(m.clone()))?;
    }
    let (url, source) = match given_url {
        Some(u) => (u.trim_end_matches('/').to_string(), "given"),
        None => (default_url.to_string(), "default port"),
    };
    reachable(&url).map_err(|reason| BackendError::Unavailable {
        backend: name.into(),
        reason: format!("TF Serving is not reachable at {url} ({reason})"),
        fix: START_HINT.into(),
    })?;
    let mut details = BTreeMap::new();
    details.insert("api".into(), "TF Serving".into());
    details.insert("url".into(), url.clone());
    details.insert("server".into(), format!("existing ({source})"));
    let description = Description {
        name: name.into(),
        engine: "tfserving (existing server)".into(),
        protocol,
        device: opts.device.to_string(),
        // The server's own configuration decides its threads; the harness matches the
        // worker count on its side (connections, concurrency) and records it here.
        workers: opts.workers,
        intra_threads: None,
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    Ok((url, description))
}

/// `Ok` when a TCP connection to the URL's host and port opens within
/// [`CONNECT_TIMEOUT`].
pub fn reachable(url: &str) -> Result<(), String> {
    let addrs = socket_addrs(url)?;
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The addresses of an `http://host:port[/...]` URL (port 80 when absent).
fn socket_addrs(url: &str) -> Result<Vec<SocketAddr>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .map(|a| a.collect())
        .map_err(|e| format!("cannot resolve {authority}: {e}"))
}

/// Records what the server said about itself: the test peer is labelled as such.
pub(crate) fn note_server(description: &Mutex<Description>, peer: bool) {
    let mut d = description.lock().unwrap_or_else(|e| e.into_inner());
    if peer {
        d.engine = PEER_ENGINE.into();
        d.served_by_test_peer = true;
    } else if !d.served_by_test_peer {
        d.engine = "tfserving (existing server)".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_to_socket_addresses() {
        let a = socket_addrs("http://127.0.0.1:8501").unwrap();
        assert_eq!(a[0].port(), 8501);
        assert_eq!(socket_addrs("http://127.0.0.1/x").unwrap()[0].port(), 80);
        assert!(socket_addrs("ftp://x").is_err());
        assert!(socket_addrs("http:///x").is_err());
    }

    #[test]
    fn an_unreachable_server_is_unavailable_with_the_fix() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let opts = OpenOptions {
            models: vec!["text-cnn".into()],
            fixtures_dir: fixtures::default_dir(),
            workers: 1,
            intra_threads: 1,
            device: contract::Device::Cpu,
            model_files: Default::default(),
            torchscript_files: Default::default(),
            precision: Default::default(),
        };
        let options = Options {
            url: Some(format!("http://127.0.0.1:{port}")),
            ..Options::default()
        };
        let e = open_rest(&opts, &options).err().unwrap();
        assert_eq!(e.kind(), "unavailable");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "TF Serving is not reachable at http://127.0.0.1:{port}"
            )) && msg.contains("docker compose up -d tfserving")
                && msg.contains("--tfserving-url"),
            "{msg}"
        );
    }
}
