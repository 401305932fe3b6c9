//! The settings a run used, as recorded in `results.json` (`config`).
//!
//! A plain record, not the harness's run configuration: the CLI and its cross-field
//! rules live above the results model and fill this in; readers of a results file (the
//! report, a diff) get the effective values without the parser.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::load::{Load, Window};

/// Terminal output of a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Side-by-side tables.
    #[default]
    Table,
    /// perf_analyzer-compatible CSV.
    Csv,
}

/// Small or large batches: the two tables of the classic TF Serving vs Flask study. A
/// class is a view over the rows: those whose batch size is in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BatchClass {
    /// Latency-bound: 1, 2, 4, 8.
    Small,
    /// Throughput-bound: up to 1000 for the text-CNN.
    Large,
}

impl std::fmt::Display for BatchClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BatchClass::Small => "small",
            BatchClass::Large => "large",
        })
    }
}

/// The effective settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    /// Backends requested, in order (`NAME` or `NAME@LABEL`).
    pub backends: Vec<String>,
    /// The user named the backends (then an unavailable one is an error).
    pub backends_explicit: bool,
    /// Baseline backend for ratios (`None`: the first backend compared).
    pub baseline: Option<String>,
    /// Reference backend for the agreement check.
    pub reference: String,
    /// Models, in order.
    pub models: Vec<String>,
    /// The user's models among them (`--model-file`): name to ONNX file.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub model_files: std::collections::BTreeMap<String, String>,
    /// The same models as TorchScript (`--torchscript`), which libtorch runs: name to
    /// `.pt` file.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub torchscript_files: std::collections::BTreeMap<String, String>,
    /// The same models as SavedModel base paths (`--savedmodel`), which the run's
    /// `tfserving.models.config` lists for TF Serving: name to directory.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub savedmodel_dirs: std::collections::BTreeMap<String, String>,
    /// Where the user's models' inputs came from (`--input-data`): random, zero or a
    /// file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_data: Option<String>,
    /// Sample shapes given for the user's models' inputs (`--shape`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub shapes: std::collections::BTreeMap<String, Vec<usize>>,
    /// Precisions every model runs at (`--precision`), fp32 unless given.
    #[serde(default = "fp32_only")]
    pub precisions: Vec<String>,
    /// Batch size of the throughput-by-precision table (`--precision-batch`).
    #[serde(default = "default_precision_batch")]
    pub precision_batch: usize,
    /// Matched worker count (in a worker grid, the first count).
    pub workers: usize,
    /// Every worker count measured (`--workers 1,2,4`), in order: a grid measures every
    /// point at each count, with servers restarted and engines re-opened per count,
    /// and each row of `results` names its count (`workers`). One count is a run as
    /// without a list.
    #[serde(default)]
    pub worker_counts: Vec<usize>,
    /// Intra-op threads per worker.
    pub intra_threads: usize,
    /// Device for in-process engines (`cpu`, `cuda:N`).
    pub device: String,
    /// Small batch sizes.
    pub small_batches: Vec<usize>,
    /// Large batch sizes for the text-CNN.
    pub large_batches: Vec<usize>,
    /// Large batch sizes for the ResNets.
    pub large_batches_resnet: Vec<usize>,
    /// Measurement window.
    pub window: Window,
    /// Warm-up requests per point and trial (`None`: from the load).
    pub warmup: Option<u64>,
    /// Seed of weights and inputs.
    pub seed: u64,
    /// Absolute tolerance of the agreement check.
    pub atol: f64,
    /// Agreement tolerance relative to the reference's largest output.
    pub rtol: f64,
    /// Disagreement is an error.
    pub strict: bool,
    /// Short run.
    pub quick: bool,
    /// Fixture directory.
    pub fixtures_dir: PathBuf,
    /// Results directory.
    pub results_dir: PathBuf,
    /// Extra JSON output path.
    pub json: Option<PathBuf>,
    /// What each server backend of the run was opened with (its URL, body encoding,
    /// ...), by backend name, as its adapter spells its options.
    pub backend_options: std::collections::BTreeMap<String, serde_json::Value>,
    /// `local` or `compose`: where the server backends run.
    pub stack: String,
    /// Load levels, each measured at every batch size.
    pub loads: Vec<Load>,
    /// Open loop: requests in flight at most; a send due beyond it was dropped.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Least rounds per point (each one window of every backend, shuffled) before the
    /// intervals are checked.
    pub trials: usize,
    /// Rounds per point at most.
    pub max_windows: usize,
    /// Target half-width of each ratio's 95 % interval, relative (0.05 = ±5 %).
    pub target_precision: f64,
    /// Seconds all points may spend measuring (warm-ups included).
    pub time_budget_s: f64,
    /// Each point's share of the time budget, seconds, split up front (a point may also
    /// spend what the points before it left unused).
    pub point_budget_s: f64,
    /// Each backend's share of a point's budget, seconds.
    pub backend_budget_s: f64,
    /// Stability tolerance, a fraction (0.1 = ±10 %).
    pub stability: f64,
    /// Stabilising latency percentile.
    pub percentile: f64,
    /// Terminal output.
    pub format: Format,
    /// Longest one request could take before it counted as a timeout, in seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: f64,
    /// Whether the first failing backend stopped the run.
    #[serde(default)]
    pub fail_fast: bool,
}

fn fp32_only() -> Vec<String> {
    vec!["fp32".into()]
}

fn default_precision_batch() -> usize {
    8
}

impl RunRecord {
    /// The worker counts of the run: `worker_counts`, or `workers` for results written
    /// before grids existed.
    pub fn grid(&self) -> Vec<usize> {
        if self.worker_counts.is_empty() {
            vec![self.workers]
        } else {
            self.worker_counts.clone()
        }
    }

    /// Batch sizes of the `class` table of `model` (empty for an unknown model).
    pub fn batches(&self, model: &str, class: BatchClass) -> &[usize] {
        match (class, model) {
            (BatchClass::Small, _) => &self.small_batches,
            (BatchClass::Large, m) if m == fixtures::ModelId::TextCnn.name() => &self.large_batches,
            // A user's model (`--model-file`) takes the general large-batch list.
            (BatchClass::Large, m) if m.parse::<fixtures::ModelId>().is_err() => {
                &self.large_batches
            }
            (BatchClass::Large, _) => &self.large_batches_resnet,
        }
    }
}

/// `request_timeout_s` of results written before it existed: the default.
fn default_request_timeout() -> f64 {
    crate::load::deadline::DEFAULT_REQUEST_TIMEOUT.as_secs_f64()
}

/// `max_in_flight` of results written before it existed: the default.
fn default_max_in_flight() -> usize {
    crate::load::DEFAULT_MAX_IN_FLIGHT
}
