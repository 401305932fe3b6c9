//! The plan of a run: what to open, what to check, what to measure, built once by the
//! CLI layer ([`crate::config`]) and only read here.

use std::time::Duration;

use contract::OpenOptions;
use fixtures::ModelId;

use crate::load::{Load, Window};
use crate::results::RunRecord;

/// A model of a run: one of the fixtures, or a user's ONNX model (`--model-file`) with
/// the inputs it runs on (`--input-data`, `--shape`).
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// A fixture model.
    Fixture(ModelId),
    /// A user's model and its inputs.
    User(std::sync::Arc<fixtures::user::UserWorkload>),
}

impl Model {
    /// Name in flags and results.
    pub fn name(&self) -> &str {
        match self {
            Model::Fixture(m) => m.name(),
            Model::User(w) => w.name(),
        }
    }

    /// One request's inputs: `batch` samples drawn with `seed`.
    pub fn inputs(&self, batch: usize, seed: u64) -> Vec<contract::Tensor> {
        match self {
            Model::Fixture(m) => vec![fixtures::inputs::batch(*m, batch, seed)],
            Model::User(w) => w.batch_from(0, batch, seed),
        }
    }
}

impl PartialEq<ModelId> for Model {
    fn eq(&self, other: &ModelId) -> bool {
        matches!(self, Model::Fixture(m) if m == other)
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One point: a model at a batch size under one load. Measured once per backend, it
/// is one row of the results, whichever tables (small, large batches) show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Model.
    pub model: Model,
    /// Samples per request.
    pub batch: usize,
    /// Load level.
    pub load: Load,
}

/// The agreement check before timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Backend whose outputs the others must agree with.
    pub reference: String,
    /// The user named the reference (`--reference`); without it a run of user models
    /// takes the first backend opened.
    pub reference_explicit: bool,
    /// Absolute tolerance.
    pub atol: f64,
    /// Tolerance relative to the largest reference output.
    pub rtol: f64,
    /// A disagreement fails the run instead of excluding the backend.
    pub strict: bool,
}

/// How each point is measured: in rounds, each one window of every backend in a
/// shuffled order, until every ratio's interval is within `target_precision` or the point's
/// share of `time_budget` is spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// Least rounds per point before the intervals are checked.
    pub trials: usize,
    /// One measurement window (a duration window is cut to the backend's budget
    /// over `trials`; it still measures its least number of requests).
    pub window: Window,
    /// Rounds per point at most.
    pub max_windows: usize,
    /// Target half-width of each ratio's 95 % interval, relative.
    pub target_precision: f64,
    /// Time every point together may spend (warm-ups included).
    pub time_budget: Duration,
    /// Each backend's share of a point's budget, as split up front.
    pub backend_budget: Duration,
    /// Stability tolerance, a fraction (0.1 = ±10 %).
    pub stability: f64,
    /// Stabilising latency percentile, 0..100.
    pub percentile: f64,
    /// Warm-up requests per point and trial (`None`: from the load).
    pub warmup: Option<u64>,
    /// Open loop: requests in flight at most; sends beyond are dropped and counted.
    pub max_in_flight: usize,
    /// Longest one request may take (`--request-timeout`); a point's windows may cut
    /// requests sooner once its warm-up has answered ([`super::limits`]).
    pub request_timeout: Duration,
}

impl Measure {
    /// Settings for unit tests: 3 trials, 0.1 s windows of at least 5 requests, at most
    /// `max_windows` rounds, a 30 s budget of 2 s a backend.
    #[cfg(test)]
    pub(super) fn for_tests(trials: usize, max_windows: usize) -> Measure {
        Measure {
            trials,
            window: Window::Duration {
                seconds: 0.1,
                min_requests: 5,
            },
            max_windows,
            target_precision: 0.05,
            time_budget: Duration::from_secs(30),
            backend_budget: Duration::from_secs(2),
            stability: 0.1,
            percentile: 50.0,
            warmup: None,
            max_in_flight: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Rounds of the first stage: every backend runs in them, and their spread fixes how
    /// many rounds each ratio gets ([`crate::stats::paired`]).
    pub fn first_stage(&self) -> usize {
        self.trials.max(super::measure::MIN_ROUNDS)
    }
}

/// Everything a run does, decided before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Backends to open, in order: a backend type or `NAME@LABEL`.
    pub backends: Vec<String>,
    /// The user named the backends: one that cannot run is an error, not a skip.
    pub backends_explicit: bool,
    /// Precisions each backend is opened at (fp32 first when given): a backend at a
    /// reduced precision is one more backend of the run, named
    /// [`crate::precision::instance`].
    pub precisions: Vec<contract::Precision>,
    /// Baseline of the ratios (`None`: the first backend opened).
    pub baseline: Option<String>,
    /// Models to load and check.
    pub models: Vec<Model>,
    /// How every backend is opened (models, fixtures, workers, threads, device).
    pub open: OpenOptions,
    /// What each server backend reads beyond that (its URL, body encoding, ...), for
    /// all backends and for the names given options of their own.
    pub backend_options: crate::registry::LabelledOptions,
    /// Seed of the inputs, the trial order and the bootstrap.
    pub seed: u64,
    /// The agreement check.
    pub check: Check,
    /// The points to measure, in order, each once.
    pub points: Vec<Point>,
    /// How each point is measured.
    pub measure: Measure,
    /// Longest one request may take (`--request-timeout`).
    pub request_timeout: Duration,
    /// The first failing backend stops the run (`--fail-fast`).
    pub fail_fast: bool,
    /// No progress output.
    pub quiet: bool,
    /// The settings, as the results file records them.
    pub record: RunRecord,
}
