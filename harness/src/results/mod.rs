//! The results model: what `results.json` holds, as types that serialise **and**
//! deserialise, so a results file can be read back (by a `diff`, a re-render, a test).
//!
//! It sits above [`crate::load`] and [`crate::stats`] (it stores their loads, windows and
//! latency figures) and below everything that produces or prints results. It holds no
//! run configuration type: [`RunRecord`] is a plain, serialisable record of the settings
//! a run used. The published schema, `results/schema.json`, is generated from these
//! types ([`schema`]); a test checks that the committed file equals the generated one.

mod point;
mod record;
mod system;
mod windows;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::agreement::Agreement;
pub use crate::resources::{Scope, Usage};
pub use point::{
    is_stall, Breakdown, Efficiency, ErrorCount, MeasurementInfo, Miss, PointResult, Ratio,
    STALL_FACTOR, STALL_FLOOR_MS,
};
pub use record::{BatchClass, Format, RunRecord};
pub use system::System;
pub use windows::{decode_windows, encode_windows};

/// Version of the results format; bumped on incompatible changes.
/// 3: one row and one ratio per point (no `batch_class`), backends as typed records.
pub const SCHEMA_VERSION: u32 = 3;

/// Samples per request in the agreement check (the first request after ready).
pub const AGREEMENT_BATCH: usize = 4;

/// Everything one `compare` (or `run`) found.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "servebench compare results",
    description = "One `harness compare` (or `harness run`) result: the settings it used, the machine, every backend measured, the agreement check, one row per measured point (model x batch size x load x backend, merged over trials and their stable windows; the small- and large-batch tables select rows by the batch lists of `config`), and one ratio per point against the baseline with bootstrap 95 % intervals. Latencies are milliseconds. Generated from the harness's types: `cargo run -p harness -- schema`."
)]
pub struct Results {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the harness.
    pub servebench_version: String,
    /// RFC 3339 time the run started.
    pub started_at: String,
    /// RFC 3339 time the run finished.
    pub finished_at: String,
    /// The settings the run used.
    pub config: RunRecord,
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
    /// One row per model × batch size × load × backend.
    pub results: Vec<PointResult>,
    /// Each backend against the baseline, one per point.
    pub ratios: Vec<Ratio>,
    /// Each backend at a reduced precision (`--precision`) against the same backend at
    /// fp32, point by point (`baseline` is the fp32 backend); latency ratios, so the
    /// throughput ratio is `1 / mean_ratio`.
    #[serde(default)]
    pub precision_ratios: Vec<Ratio>,
    /// Backends that failed during the run (could not be opened, or stopped answering):
    /// measured up to that point, not after.
    #[serde(default)]
    pub failed: Vec<Failed>,
    /// The run was stopped by a signal (the signal's name): what was measured until
    /// then is here, the rest is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// A backend that failed during the run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Failed {
    /// Backend name in the run.
    pub backend: String,
    /// Where it failed: `open`, `agreement on <model>`, or the point (such as
    /// `text-cnn batch 4 c=1`); nothing was measured on it after.
    pub at: String,
    /// Why, as one sentence.
    pub reason: String,
    /// The failed requests of that stage by kind, with an example message.
    pub error_kinds: Vec<ErrorCount>,
}

impl Results {
    /// True when the run was interrupted or some backend failed: a partial result.
    pub fn partial(&self) -> bool {
        self.interrupted.is_some() || !self.failed.is_empty()
    }
}

/// A backend as measured: what it said about itself, and its cold start.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BackendInfo {
    /// Its name in the run: the backend type, or `NAME@LABEL`.
    pub name: String,
    /// Engine and version actually loaded, such as `onnxruntime 1.31.1`.
    pub engine: String,
    /// How requests reach the engine: `in-process`, `http` or `grpc`.
    pub protocol: String,
    /// Device the model runs on.
    pub device: String,
    /// Worker count actually in effect.
    pub workers: usize,
    /// Intra-op threads per worker actually in effect, where the backend knows it.
    pub intra_threads: Option<usize>,
    /// Anything else the backend recorded (server URL, model variant, batching mode).
    pub details: std::collections::BTreeMap<String, String>,
    /// It answered from servebench's test peer, not the real server: its timings say
    /// nothing about that server.
    #[serde(default)]
    pub test_peer: bool,
    /// From opening until ready (model load, server start), in milliseconds.
    pub cold_start_ms: f64,
    /// Latency of the first request after ready (the agreement check's first request:
    /// batch [`AGREEMENT_BATCH`] of the first model),
    /// ms; `None` where it failed or was not made.
    #[serde(default)]
    pub first_request_ms: Option<f64>,
    /// Resident memory once ready, MiB: a managed server's process group, or what
    /// opening an in-process engine added to the harness process; `None` where not
    /// visible.
    #[serde(default)]
    pub loaded_memory_mb: Option<f64>,
    /// Precision it runs the models at (`--precision`).
    #[serde(default = "fp32")]
    pub precision: String,
}

/// The precision of files written before `--precision` existed.
pub(crate) fn fp32() -> String {
    "fp32".into()
}

/// A backend that could not run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Unavailable {
    /// Backend name.
    pub backend: String,
    /// The reason, with the command that makes it run.
    pub reason: String,
}

impl Results {
    /// Engine versions by backend, for `system.engines`.
    pub fn engines(backends: &[BackendInfo]) -> std::collections::BTreeMap<String, String> {
        backends
            .iter()
            .map(|b| (b.name.clone(), b.engine.clone()))
            .collect()
    }

    /// The rows of `model` in the `class` table: those whose batch size is in that
    /// class's list. A batch size in both lists is one row, shown in both tables.
    pub fn rows_in<'a>(
        &'a self,
        model: &'a str,
        class: BatchClass,
    ) -> impl Iterator<Item = &'a PointResult> + 'a {
        let batches = self.config.batches(model, class);
        self.results
            .iter()
            .filter(move |r| r.model == model && batches.contains(&r.batch_size))
    }

    /// The part of a worker grid measured at `workers`: its rows, ratios and backends,
    /// its load levels, and `config.workers` set to the count; the agreement check,
    /// the backends not measured and the failures stay whole.
    pub fn at_workers(&self, workers: usize) -> Results {
        let mut part = self.clone();
        part.results.retain(|r| r.workers == workers);
        part.ratios.retain(|r| r.workers == workers);
        part.backends.retain(|b| b.workers == workers);
        let measured: Vec<&str> = part.results.iter().map(|r| r.load.as_str()).collect();
        part.config
            .loads
            .retain(|l| measured.contains(&l.label().as_str()));
        part.config.workers = workers;
        part.config.worker_counts = vec![workers];
        part
    }

    /// The row of one point and backend.
    pub fn row(
        &self,
        model: &str,
        batch: usize,
        load: &str,
        backend: &str,
    ) -> Option<&PointResult> {
        self.results.iter().find(|r| {
            r.model == model && r.batch_size == batch && r.load == load && r.backend == backend
        })
    }

    /// The ratio of one point and backend.
    pub fn ratio(&self, model: &str, batch: usize, load: &str, backend: &str) -> Option<&Ratio> {
        self.ratios.iter().find(|r| {
            r.model == model && r.batch_size == batch && r.load == load && r.backend == backend
        })
    }
}

/// The JSON schema of `results.json`, as `results/schema.json` publishes it.
/// It describes what the harness writes: every field it always writes is required.
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<Results>()).expect("schema");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://servebench.invalid/results/schema.json".into(),
        );
    }
    schema
}

#[cfg(test)]
mod tests;
