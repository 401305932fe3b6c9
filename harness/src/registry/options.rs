//! The options of the server backends: one typed struct per adapter crate (its flags and
//! its table in a config file), and the set each backend label of a run is opened with.

use serde::{Deserialize, Serialize};

#[allow(unused_imports)] // which names are used depends on the cargo features
use super::{
    backend_kind, FLASK, KSERVE_GRPC, KSERVE_HTTP, TFSERVING_GRPC, TFSERVING_REST, TORCHSERVE_GRPC,
    TORCHSERVE_REST, TRITON_GRPC, TRITON_HTTP,
};

/// What each server backend reads beyond [`OpenOptions`]: one typed options struct per
/// adapter crate, present when its cargo feature is on. As flags (`clap::Args`) it is
/// every adapter's flags, flattened; in a file, one table per adapter (`[triton]`, ...).
/// Two labels of one backend (`triton-http@a`, `triton-http@b`) may be opened with
/// different `BackendOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct BackendOptions {
    /// `onnxruntime` (in process, always built).
    #[command(flatten)]
    pub onnxruntime: adapter_onnxruntime::Options,
    /// `flask`.
    #[cfg(feature = "flask")]
    #[command(flatten)]
    pub flask: adapter_flask::Options,
    /// `triton-http` and `triton-grpc`.
    #[cfg(feature = "triton")]
    #[command(flatten)]
    pub triton: adapter_triton::Options,
    /// `kserve-v2-http` and `kserve-v2-grpc`.
    #[cfg(feature = "kserve")]
    #[command(flatten)]
    pub kserve: adapter_kserve::Options,
    /// `torchserve-rest` and `torchserve-grpc`.
    #[cfg(feature = "torchserve")]
    #[command(flatten)]
    pub torchserve: adapter_torchserve::Options,
    /// `tfserving-rest` and `tfserving-grpc`.
    #[cfg(feature = "tfserving")]
    #[command(flatten)]
    pub tfserving: adapter_tfserving::Options,
}

impl BackendOptions {
    /// The part of these options that backend `name` (`NAME` or `NAME@LABEL`) reads, as
    /// it is recorded in `results.json`; `None` for a backend that reads none (the
    /// other in-process engines).
    pub fn part(&self, name: &str) -> Option<serde_json::Value> {
        let part = match backend_kind(name) {
            adapter_onnxruntime::NAME => serde_json::to_value(&self.onnxruntime),
            #[cfg(feature = "flask")]
            FLASK => serde_json::to_value(&self.flask),
            #[cfg(feature = "triton")]
            TRITON_HTTP | TRITON_GRPC => serde_json::to_value(&self.triton),
            #[cfg(feature = "kserve")]
            KSERVE_HTTP | KSERVE_GRPC => serde_json::to_value(&self.kserve),
            #[cfg(feature = "torchserve")]
            TORCHSERVE_REST | TORCHSERVE_GRPC => serde_json::to_value(&self.torchserve),
            #[cfg(feature = "tfserving")]
            TFSERVING_REST | TFSERVING_GRPC => serde_json::to_value(&self.tfserving),
            _ => return None,
        };
        part.ok()
    }
}

/// The options every backend of a run is opened with: one set for all, and a set of its
/// own for each backend name given one (a `["triton-http@json"]` table in the config
/// file), so that two labels of one backend can be compared with different options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledOptions {
    /// What every backend without a set of its own reads.
    pub common: BackendOptions,
    /// Sets of their own, by backend name (`NAME` or `NAME@LABEL`).
    pub own: std::collections::BTreeMap<String, BackendOptions>,
}

impl LabelledOptions {
    /// The options backend `name` is opened with.
    pub fn get(&self, name: &str) -> &BackendOptions {
        self.own.get(name).unwrap_or(&self.common)
    }
}
