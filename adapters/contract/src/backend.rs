//! The [`Backend`] trait and the plain data that goes with it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{BackendError, Tensor};

/// How requests reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// A function call into an engine linked into the harness process.
    InProcess,
    /// HTTP/1.1 with a JSON or binary body.
    Http,
    /// gRPC over HTTP/2.
    Grpc,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::InProcess => "in-process",
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        })
    }
}

/// Where the model runs. Written as `cpu` or `cuda:N` in flags and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(into = "String", try_from = "String")]
pub enum Device {
    /// The host CPU.
    #[default]
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    /// Accepts `cpu`, `cuda` (device 0) and `cuda:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("device {s:?} is not valid; use cpu, cuda or cuda:N");
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What the harness asks of every backend when it opens it.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Model names to load (`text-cnn`, `resnet18`, `resnet50`).
    pub models: Vec<String>,
    /// Directory the fixtures tool generated the model files into.
    pub fixtures_dir: PathBuf,
    /// Matched worker count: executors, server workers or model instances.
    pub workers: usize,
    /// Intra-op threads per worker.
    pub intra_threads: usize,
    /// Device to run on.
    pub device: Device,
    /// Models the user brought (`--model-file`), by name: a name of `models` found
    /// here is loaded from this ONNX file instead of the fixtures.
    pub model_files: BTreeMap<String, PathBuf>,
    /// The same user's models as TorchScript (`--torchscript`), by name: what libtorch
    /// runs of a model of `model_files` (it cannot run ONNX).
    pub torchscript_files: BTreeMap<String, PathBuf>,
    /// Precision to run the models at (`--precision`): fp32 unless the harness opens
    /// a backend once more for a reduced precision. A backend that cannot run it is
    /// never opened at it: the harness lists it as not measured.
    pub precision: crate::Precision,
}

/// What a backend says about itself. Goes verbatim into the results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// Backend name as the user selects it (`candle`, `onnxruntime`, `triton-grpc`).
    pub name: String,
    /// Engine and version actually loaded, such as `onnxruntime 1.31.1`.
    pub engine: String,
    /// How requests reach the engine.
    pub protocol: Protocol,
    /// Device the model runs on.
    pub device: String,
    /// Worker count actually in effect.
    pub workers: usize,
    /// Intra-op threads per worker actually in effect, where the backend knows it.
    pub intra_threads: Option<usize>,
    /// The models the backend was opened with.
    #[serde(default)]
    pub models: Vec<String>,
    /// True when the server that answered is servebench's TF Serving test peer
    /// (`fixtures/tfserving/test_peer.py`), not a real server: its timings say nothing
    /// about the server it stands in for.
    #[serde(default)]
    pub served_by_test_peer: bool,
    /// Anything else worth recording, free-form (server URL, model variant, batching
    /// mode).
    pub details: BTreeMap<String, String>,
}

/// Where the work of serving a backend's requests happens, so its CPU and memory can be
/// watched while it is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServedBy {
    /// The harness's own process, on threads the engine owns (executor and intra-op
    /// threads, never the harness's load threads).
    InProcess,
    /// Process groups on this machine, each named by its leader's pid (a server the
    /// adapter started: Gunicorn's master and workers, tritonserver and its stubs).
    ProcessGroups(Vec<u32>),
    /// A server the harness did not start (given by URL): its resources are not visible.
    NotVisible,
}

/// Cumulative server-side counters for one model, as Triton's statistics report them.
///
/// The harness reads them before and after a measurement and divides the difference by
/// the number of requests to get per-request averages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Requests the server finished successfully.
    pub requests: u64,
    /// Time requests waited in the server's queue, in nanoseconds.
    pub queue_ns: u64,
    /// Time spent copying inputs into the engine.
    pub compute_input_ns: u64,
    /// Time spent running the model.
    pub compute_infer_ns: u64,
    /// Time spent copying outputs out of the engine.
    pub compute_output_ns: u64,
}

/// A request made ready before timing: the model, its input tensors and, optionally, a
/// backend-specific encoding (an HTTP body, a protobuf message) built once per batch.
#[derive(Clone)]
pub struct Prepared {
    model: Arc<str>,
    inputs: Arc<[Tensor]>,
    payload: Option<Arc<dyn Any + Send + Sync>>,
}

impl Prepared {
    /// A request carrying only tensors.
    pub fn new(model: &str, inputs: Vec<Tensor>) -> Self {
        Prepared {
            model: model.into(),
            inputs: inputs.into(),
            payload: None,
        }
    }

    /// Attaches a backend-specific encoding of the same request.
    pub fn with_payload<T: Any + Send + Sync>(mut self, payload: T) -> Self {
        self.payload = Some(Arc::new(payload));
        self
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The input tensors.
    pub fn inputs(&self) -> &[Tensor] {
        &self.inputs
    }

    /// Shared handle to the input tensors (cheap to clone).
    pub fn inputs_arc(&self) -> Arc<[Tensor]> {
        self.inputs.clone()
    }

    /// Batch size: the first dimension of the first input.
    pub fn batch(&self) -> usize {
        self.inputs.first().map(Tensor::batch).unwrap_or(0)
    }

    /// The encoding attached by [`Prepared::with_payload`], if it has type `T`.
    pub fn payload<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.payload.as_deref().and_then(|p| p.downcast_ref())
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("model", &self.model)
            .field("batch", &self.batch())
            .field("payload", &self.payload.is_some())
            .finish()
    }
}

/// A way of serving a model, measured by the harness.
///
/// Implementations are shared as `Arc<dyn Backend>` between the harness's load
/// workers, so every method takes `&self` and may be called concurrently.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Name, engine version, protocol, device and the worker/thread configuration
    /// actually in effect. Cheap; called once per run.
    fn describe(&self) -> Description;

    /// Resolves `Ok` when the backend is ready to serve every model it was opened with.
    /// For a server this is its readiness endpoint; for an in-process engine, that its
    /// workers are alive.
    async fn health(&self) -> Result<(), BackendError>;

    /// Turns a batch into a request, outside the timed region. Adapters that send bytes
    /// over a wire encode them here, once per batch. The default keeps the tensors.
    fn prepare(&self, model: &str, inputs: Vec<Tensor>) -> Result<Prepared, BackendError> {
        Ok(Prepared::new(model, inputs))
    }

    /// Runs one inference: **one request**. The harness's clock runs from just before
    /// this call until the returned future resolves. Resolves only when every output
    /// tensor is in host memory (a GPU backend synchronises first). Outputs come back
    /// in the order the model declares them.
    async fn infer(&self, request: &Prepared) -> Result<Vec<Tensor>, BackendError>;

    /// Cumulative server-side timing counters for `model`, for backends whose server
    /// reports them. `Ok(None)` (the default) means the backend has none.
    async fn server_stats(&self, model: &str) -> Result<Option<ServerStats>, BackendError> {
        let _ = model;
        Ok(None)
    }

    /// The name the server serves `model` under: what its statistics and metrics label
    /// the model's requests with. The default is `model` itself; a server given by URL
    /// that holds a reduced precision's conversion beside the fp32 model serves it
    /// under another name (`text-cnn_int8`), and its adapter says so here. Results keep
    /// the run's name.
    fn served_name(&self, model: &str) -> String {
        model.to_string()
    }

    /// The server's Prometheus metrics endpoint, scraped by the harness before and after
    /// each window (its counters' growth is reported per point). The default is the
    /// `metrics_url` entry of [`Description::details`], which an adapter records when
    /// its server has such an endpoint; `None` without one.
    fn metrics_url(&self) -> Option<String> {
        self.describe().details.get("metrics_url").cloned()
    }

    /// What serves the requests, for resource sampling. The default follows the
    /// protocol: in-process engines run in the harness's process; a server is not
    /// visible unless its adapter started it and says which process group it runs in.
    fn served_by(&self) -> ServedBy {
        match self.describe().protocol {
            Protocol::InProcess => ServedBy::InProcess,
            Protocol::Http | Protocol::Grpc => ServedBy::NotVisible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        assert!("gpu"
            .parse::<Device>()
            .unwrap_err()
            .contains("cpu, cuda or cuda:N"));
        assert!("cuda:x".parse::<Device>().is_err());
    }

    #[test]
    fn prepared_payload_downcasts() {
        let p = Prepared::new("m", vec![Tensor::from_f32("x", vec![2, 1], &[1.0, 2.0])])
            .with_payload(String::from("body"));
        assert_eq!(p.batch(), 2);
        assert_eq!(p.payload::<String>().map(String::as_str), Some("body"));
        assert!(p.payload::<u32>().is_none());
    }
}
