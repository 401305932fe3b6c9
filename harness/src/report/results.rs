//! The JSON results document. Its published schema is `results/schema.json`.

use std::collections::BTreeMap;

use contract::Description;
use serde::{Deserialize, Serialize};

use crate::agreement::Agreement;
use crate::config::{BatchClass, RunConfig};
use crate::report::System;
use crate::stats::Latency;

/// Version of the results format; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one `compare` run found.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the harness.
    pub servebench_version: String,
    /// RFC 3339 time the run started.
    pub started_at: String,
    /// RFC 3339 time the run finished.
    pub finished_at: String,
    /// The validated configuration.
    pub config: RunConfig,
    /// The machine and the engines' versions.
    pub system: System,
    /// Every backend measured, as it described itself.
    pub backends: Vec<BackendInfo>,
    /// The backend ratios are computed against.
    pub baseline: String,
    /// Backends that could not run here, and why.
    pub unavailable: Vec<Unavailable>,
    /// Agreement of every backend with the reference, per model.
    pub agreement: Vec<Agreement>,
    /// One row per model × batch class × batch size × backend.
    pub results: Vec<PointResult>,
    /// Each backend against the baseline, per point.
    pub ratios: Vec<Ratio>,
}

/// A backend as measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendInfo {
    /// What the backend says about itself.
    #[serde(flatten)]
    pub description: Description,
    /// From opening until ready (model load, server start), in milliseconds.
    pub cold_start_ms: f64,
}

/// A backend that could not run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unavailable {
    /// Backend name.
    pub backend: String,
    /// The reason, with the command that makes it run.
    pub reason: String,
}

/// Failed requests of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Kind of failure ([`contract::BackendError::kind`]).
    pub kind: String,
    /// How many.
    pub count: u64,
    /// The first message seen.
    pub example: String,
}

/// Server-side time per request, in milliseconds (backends that report it).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Breakdown {
    /// Waiting in the server's queue.
    pub queue_ms: f64,
    /// Copying inputs into the engine.
    pub compute_input_ms: f64,
    /// Running the model.
    pub compute_infer_ms: f64,
    /// Copying outputs out.
    pub compute_output_ms: f64,
}

/// One measured point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// Model name.
    pub model: String,
    /// Backend name.
    pub backend: String,
    /// Small or large batches.
    pub batch_class: BatchClass,
    /// Samples per request.
    pub batch_size: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Matched worker count.
    pub workers: usize,
    /// Successful requests measured.
    pub requests: u64,
    /// Failed requests measured.
    pub errors: u64,
    /// Failed requests by kind.
    pub error_kinds: Vec<ErrorCount>,
    /// Length of the measurement window, seconds.
    pub duration_s: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Samples per second.
    pub samples_per_s: f64,
    /// Latency of successful requests; `None` if every request failed.
    pub latency_ms: Option<Latency>,
    /// Server-side breakdown, where the backend reports one.
    pub server: Option<Breakdown>,
}

/// A backend against the baseline at one point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    /// Model name.
    pub model: String,
    /// Small or large batches.
    pub batch_class: BatchClass,
    /// Samples per request.
    pub batch_size: usize,
    /// Backend compared.
    pub backend: String,
    /// Baseline backend.
    pub baseline: String,
    /// `p50(backend) / p50(baseline)`.
    pub p50_ratio: f64,
    /// `mean(backend) / mean(baseline)`.
    pub mean_ratio: f64,
}

impl Results {
    /// Engine versions by backend, for `system.engines`.
    pub fn engines(backends: &[BackendInfo]) -> BTreeMap<String, String> {
        backends
            .iter()
            .map(|b| (b.description.name.clone(), b.description.engine.clone()))
            .collect()
    }
}
