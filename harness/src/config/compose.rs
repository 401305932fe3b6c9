//! `--stack compose`: the published ports of docker-compose.yml's services, as the URLs of
//! the server backends that no flag or file gave one; the TensorRT Tritons by label
//! (`triton-http@tensorrt-fp16`).

use std::collections::BTreeMap;

use crate::cli::Stack;
use crate::registry::{BackendOptions, LabelledOptions};

/// Published ports of docker-compose.yml's services, as `--stack compose` uses them.
pub const COMPOSE_URLS: [(&str, &str); 9] = [
    ("flask", "http://127.0.0.1:8080"),
    ("triton-http", "http://127.0.0.1:8000"),
    ("triton-grpc", "http://127.0.0.1:8001"),
    ("tfserving-rest", "http://127.0.0.1:8501"),
    ("tfserving-grpc", "http://127.0.0.1:8500"),
    ("kserve-v2-http", "http://127.0.0.1:8090"),
    ("kserve-v2-grpc", "http://127.0.0.1:8091"),
    ("torchserve-rest", "http://127.0.0.1:8180"),
    ("torchserve-grpc", "http://127.0.0.1:7070"),
];

/// Triton's published metrics port in docker-compose.yml, scraped with `--stack compose`.
pub const COMPOSE_TRITON_METRICS: &str = "http://127.0.0.1:8002/metrics";

/// TF Serving's monitoring endpoint in docker-compose.yml (on its REST port, turned on
/// by `fixtures/tfserving/monitoring.config`), scraped with `--stack compose`.
pub const COMPOSE_TFSERVING_METRICS: &str = "http://127.0.0.1:8501/monitoring/prometheus/metrics";

/// MLServer's published metrics port in docker-compose.yml (the `kserve-v2-*` backends'
/// server there), scraped with `--stack compose`.
pub const COMPOSE_MLSERVER_METRICS: &str = "http://127.0.0.1:8092/metrics";

/// A Triton of the compose stack that `triton-http@LABEL` / `triton-grpc@LABEL` reach
/// with `--stack compose` (profile `tensorrt` of docker-compose.yml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComposeTriton {
    /// The backend label, such as `tensorrt-fp16`.
    pub label: &'static str,
    /// The compose service.
    pub service: &'static str,
    /// Its published HTTP port, as a URL.
    pub http: &'static str,
    /// Its published gRPC port, as a URL.
    pub grpc: &'static str,
    /// Its published metrics endpoint.
    pub metrics: &'static str,
}

/// The Tritons with ONNX Runtime's TensorRT accelerator, by label: the same models and
/// names as `triton`, built by TensorRT in fp32 or fp16 (fp32 inputs and outputs).
pub const COMPOSE_TRITON_LABELS: [ComposeTriton; 2] = [
    ComposeTriton {
        label: "tensorrt-fp32",
        service: "triton-tensorrt-fp32",
        http: "http://127.0.0.1:8010",
        grpc: "http://127.0.0.1:8011",
        metrics: "http://127.0.0.1:8012/metrics",
    },
    ComposeTriton {
        label: "tensorrt-fp16",
        service: "triton-tensorrt-fp16",
        http: "http://127.0.0.1:8020",
        grpc: "http://127.0.0.1:8021",
        metrics: "http://127.0.0.1:8022/metrics",
    },
];

/// The labelled Triton that backend `name` reaches in the compose stack, if any.
pub fn compose_triton(name: &str) -> Option<&'static ComposeTriton> {
    let (kind, label) = name.split_once('@')?;
    if !matches!(kind, "triton-http" | "triton-grpc") {
        return None;
    }
    COMPOSE_TRITON_LABELS.iter().find(|t| t.label == label)
}

/// The options of every backend of a run: `common` for all, `own` for the names given
/// a table of their own; in the compose stack, each with the URLs of its service, and a
/// set of its own for each labelled Triton of [`COMPOSE_TRITON_LABELS`] among `backends`.
pub(super) fn labelled(
    common: BackendOptions,
    mut own: BTreeMap<String, BackendOptions>,
    stack: Stack,
    backends: &[String],
) -> LabelledOptions {
    if stack == Stack::Compose {
        for b in backends.iter().filter(|b| compose_triton(b).is_some()) {
            own.entry(b.clone()).or_insert_with(|| common.clone());
        }
    }
    LabelledOptions {
        own: own
            .into_iter()
            .map(|(name, o)| {
                let o = compose_urls(o, stack, &name);
                (name, o)
            })
            .collect(),
        common: compose_urls(common, stack, ""),
    }
}

/// `options` of backend `name` with the compose services' published ports as the URLs
/// no flag gave, when the servers run in the compose stack.
fn compose_urls(mut o: BackendOptions, stack: Stack, name: &str) -> BackendOptions {
    if stack != Stack::Compose {
        return o;
    }
    #[cfg(feature = "triton")]
    if let Some(t) = compose_triton(name) {
        o.triton.url = o.triton.url.or_else(|| Some(t.http.into()));
        o.triton.grpc_url = o.triton.grpc_url.or_else(|| Some(t.grpc.into()));
        o.triton.metrics_url = o.triton.metrics_url.or_else(|| Some(t.metrics.into()));
    }
    let _ = name;
    let url = |name: &str| {
        COMPOSE_URLS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.to_string())
    };
    #[cfg(feature = "flask")]
    {
        o.flask.url = o.flask.url.or_else(|| url("flask"));
    }
    #[cfg(feature = "triton")]
    {
        o.triton.url = o.triton.url.or_else(|| url("triton-http"));
        o.triton.grpc_url = o.triton.grpc_url.or_else(|| url("triton-grpc"));
        o.triton.metrics_url = o
            .triton
            .metrics_url
            .or_else(|| Some(COMPOSE_TRITON_METRICS.to_string()));
    }
    #[cfg(feature = "tfserving")]
    {
        o.tfserving.url = o.tfserving.url.or_else(|| url("tfserving-rest"));
        o.tfserving.grpc_url = o.tfserving.grpc_url.or_else(|| url("tfserving-grpc"));
        o.tfserving.metrics_url = o
            .tfserving
            .metrics_url
            .or_else(|| Some(COMPOSE_TFSERVING_METRICS.to_string()));
    }
    #[cfg(feature = "kserve")]
    {
        o.kserve.url = o.kserve.url.or_else(|| url("kserve-v2-http"));
        o.kserve.grpc_url = o.kserve.grpc_url.or_else(|| url("kserve-v2-grpc"));
        o.kserve.metrics_url = o
            .kserve
            .metrics_url
            .or_else(|| Some(COMPOSE_MLSERVER_METRICS.to_string()));
    }
    #[cfg(feature = "torchserve")]
    {
        o.torchserve.url = o.torchserve.url.or_else(|| url("torchserve-rest"));
        o.torchserve.grpc_url = o.torchserve.grpc_url.or_else(|| url("torchserve-grpc"));
    }
    let _ = url;
    o
}
