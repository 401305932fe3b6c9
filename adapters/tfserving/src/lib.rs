//! TF Serving, measured over its REST API and over gRPC.
//!
//! Two backends, one server:
//! - `tfserving-rest` ([`rest`]): `POST /v1/models/<m>:predict` with a JSON body in
//!   TF Serving's **row** format (`{"instances": [...]}`, answered with `predictions`)
//!   or **columnar** format (`{"inputs": {...}}`, answered with `outputs`), chosen by
//!   [`Settings::rest_format`]; readiness is `GET /v1/models/<m>` (every version
//!   `AVAILABLE`) and the signature comes from `GET /v1/models/<m>/metadata`.
//! - `tfserving-grpc` ([`grpc`]): `tensorflow.serving.PredictionService/Predict` with
//!   `TensorProto` inputs (`tensor_content` bytes), `GetModelMetadata` and
//!   `ModelService/GetModelStatus`, from our own `.proto` files (`proto/`), which keep
//!   TF Serving's packages, services and field numbers.
//!
//! Both encode a batch once, in [`contract::Backend::prepare`], outside the timed region.
//! Errors the server answers are counted by kind with the server's own message: an
//! unknown model (HTTP 404, gRPC `NOT_FOUND`) is `unknown_model`, a bad input (HTTP 400,
//! gRPC `INVALID_ARGUMENT`) is `bad_input`, anything else is `server`.
//!
//! # Which server
//! TF Serving is never started by the harness (there is no binary to start on a machine
//! without Docker). The backend talks to `server_urls["tfserving-rest"]` /
//! `["tfserving-grpc"]` (from `--tfserving-url` / `--tfserving-grpc-url`, or
//! `--stack compose`), else to TF Serving's default ports on 127.0.0.1 (8501 REST,
//! 8500 gRPC). Opening checks with a short connect timeout that something listens
//! there; if nothing does, it returns [`contract::BackendError::Unavailable`] saying
//! TF Serving is not reachable at that URL and how to start it.
//!
//! # The test peer
//! `fixtures/tfserving/test_peer.py` answers the same APIs from TensorFlow in Python, for
//! tests only. It says so (HTTP header [`PEER_HEADER`], gRPC metadata of the same name);
//! when the adapter sees it, [`contract::Backend::describe`] names the engine
//! [`PEER_ENGINE`], so a result can never pass for TF Serving.
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

/// Run-wide settings only TF Serving reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Body format of `tfserving-rest` requests.
    pub rest_format: RestFormat,
}

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    rest_format: RestFormat::Row,
});

/// Sets the settings for every TF Serving backend opened from now on.
pub fn configure(settings: Settings) {
    *SETTINGS.lock().unwrap_or_else(|e| e.into_inner()) = settings;
}

fn settings() -> Settings {
    *SETTINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `tfserving-rest` at `server_urls["tfserving-rest"]`, else `127.0.0.1:8501`.
pub fn open_rest(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let format = settings().rest_format;
    let (url, mut description) = connect(opts, REST_NAME, Protocol::Http, DEFAULT_REST_URL)?;
    description
        .details
        .insert("rest_format".into(), format.name().into());
    Ok(Arc::new(rest::RestBackend::new(
        &url,
        format,
        opts.workers,
        description,
    )?))
}

/// Opens `tfserving-grpc` at `server_urls["tfserving-grpc"]`, else `127.0.0.1:8500`.
pub fn open_grpc(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let (url, description) = connect(opts, GRPC_NAME, Protocol::Grpc, DEFAULT_GRPC_URL)?;
    Ok(Arc::new(grpc::GrpcBackend::new(&url, description)?))
}

/// The URL to use (checked to accept connections) and the description.
fn connect(
    opts: &OpenOptions,
    name: &str,
    protocol: Protocol,
    default_url: &str,
) -> Result<(String, Description), BackendError> {
    for m in &opts.models {
        m.parse::<ModelId>()
            .map_err(|_| BackendError::UnknownModel(m.clone()))?;
    }
    let (url, source) = match opts.server_urls.get(name) {
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
    details.insert("models".into(), opts.models.join(","));
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
pub(crate) fn note_server(description: &Mutex<Description>, peer: Option<&str>) {
    let mut d = description.lock().unwrap_or_else(|e| e.into_inner());
    match peer {
        Some(what) => {
            d.engine = PEER_ENGINE.into();
            d.details.insert("test_peer".into(), what.to_string());
        }
        None => {
            if d.engine == PEER_ENGINE {
                return;
            }
            d.engine = "tfserving (existing server)".into();
        }
    }
}

/// A server error as a counted error of the right kind, with the server's message.
pub(crate) fn server_error(model: &str, status: &str, message: String) -> BackendError {
    match status {
        "404" | "NotFound" => {
            BackendError::UnknownModel(format!("{model} (TF Serving answered {status}: {message})"))
        }
        "400" | "InvalidArgument" => {
            BackendError::BadInput(format!("TF Serving answered {status}: {message}"))
        }
        _ => BackendError::Server {
            status: status.into(),
            message,
        },
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
        let port = contract::process::free_port().unwrap();
        let mut opts = OpenOptions {
            models: vec!["text-cnn".into()],
            fixtures_dir: fixtures::default_dir(),
            workers: 1,
            intra_threads: 1,
            device: contract::Device::Cpu,
            server_urls: Default::default(),
        };
        opts.server_urls
            .insert(REST_NAME.into(), format!("http://127.0.0.1:{port}"));
        let e = open_rest(&opts).err().unwrap();
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

    #[test]
    fn server_errors_are_counted_by_kind() {
        assert_eq!(server_error("m", "404", "x".into()).kind(), "unknown_model");
        assert_eq!(
            server_error("m", "NotFound", "x".into()).kind(),
            "unknown_model"
        );
        let e = server_error("m", "InvalidArgument", "wrong shape".into());
        assert_eq!(e.kind(), "bad_input");
        assert!(e.to_string().contains("wrong shape"), "{e}");
        assert_eq!(server_error("m", "500", "x".into()).kind(), "server");
    }
}
