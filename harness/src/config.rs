//! Settings from flags and a TOML file, validated into one [`RunConfig`].
//!
//! Flags and the config file share one struct, [`Settings`]: every field is optional,
//! flags win over the file, and [`Settings::validate`] fills in defaults and rejects bad
//! values with one sentence naming the value and what is accepted. The validated
//! [`RunConfig`] is what the run uses and what the results file repeats.

use std::path::{Path, PathBuf};

use clap::Args;
use contract::Device;
use fixtures::ModelId;
use serde::{Deserialize, Serialize};

use crate::load::{Arrival, Load};
use crate::HarnessError;

/// Every setting of `compare`, as flags or as keys of a TOML file (`--config`).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Settings {
    /// TOML file holding any of these settings (keys in snake_case); flags override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Backends to compare, comma separated [default: every backend that can run here].
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub backends: Option<Vec<String>>,

    /// Backend the ratios are computed against [default: the first one compared].
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,

    /// Backend whose outputs the others must agree with before timing [default: candle].
    #[arg(long, value_name = "NAME")]
    pub reference: Option<String>,

    /// Models to run, comma separated: text-cnn, resnet18, resnet50
    /// [default: text-cnn,resnet50; with --quick: text-cnn,resnet18].
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub models: Option<Vec<String>>,

    /// Matched worker count for every backend: in-process executors, server workers or
    /// model instances [default: 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Intra-op threads per worker [default: cores / workers, at least 1].
    #[arg(long, value_name = "N")]
    pub intra_threads: Option<usize>,

    /// Closed loop: requests in flight at once; a list sweeps, such as 1,2,4,8
    /// [default: the worker count].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub concurrency: Option<Vec<usize>>,

    /// Device for in-process engines: cpu, cuda or cuda:N [default: cpu].
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,

    /// Small-batch sizes, for every model [default: 1,2,4,8].
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    pub small_batches: Option<Vec<usize>>,

    /// Large-batch sizes for the text-CNN [default: 1,10,100,1000].
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    pub large_batches: Option<Vec<usize>>,

    /// Large-batch sizes for the ResNets [default: 1,8,32].
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    pub large_batches_resnet: Option<Vec<usize>>,

    /// Length of one measurement window, in seconds; a point is a series of windows
    /// [default: 0.25; with --quick: 0.1].
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Measure a fixed number of requests per point instead of a duration.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Least number of requests a duration window measures, however slow [default: 1].
    #[arg(long, value_name = "N")]
    pub min_requests: Option<u64>,

    /// Warm-up requests per point and trial, never counted [default: the concurrency
    /// or a tenth of a second of the request rate, at least 2, cut short after 1 s].
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,

    /// Seed of the generated weights and inputs [default: the fixtures' default seed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Absolute tolerance of the agreement check [default: 1e-3].
    #[arg(long, value_name = "X")]
    pub atol: Option<f64>,

    /// Tolerance relative to the largest reference output [default: 1e-3].
    #[arg(long, value_name = "X")]
    pub rtol: Option<f64>,

    /// Fail, instead of excluding the backend, when a backend disagrees with the reference.
    #[arg(long)]
    #[serde(default)]
    pub strict: bool,

    /// A short run (about a minute): fewer models, batch sizes and shorter windows.
    #[arg(long)]
    #[serde(default)]
    pub quick: bool,

    /// Directory of the generated fixtures [default: fixtures/generated].
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,

    /// Directory under which each run writes `<timestamp>/` [default: results].
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,

    /// Also write the JSON results to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress output on stderr.
    #[arg(long)]
    #[serde(default)]
    pub quiet: bool,

    /// Use the Flask app already serving at this URL (such as http://127.0.0.1:8000)
    /// instead of starting Gunicorn [default: start one with --workers workers].
    #[arg(long, value_name = "URL")]
    pub flask_url: Option<String>,

    /// Use the Triton server already serving KServe v2 HTTP at this URL (such as
    /// http://127.0.0.1:8000) for triton-http instead of starting one.
    #[arg(long, value_name = "URL")]
    pub triton_url: Option<String>,

    /// Use the Triton server already serving gRPC at this URL (such as
    /// http://127.0.0.1:8001) for triton-grpc instead of starting one.
    #[arg(long, value_name = "URL")]
    pub triton_grpc_url: Option<String>,

    /// Tensor encoding of triton-http bodies: json, or binary (Triton's binary tensor
    /// data extension) [default: binary].
    #[arg(long, value_name = "json|binary")]
    pub triton_http_body: Option<String>,

    /// Turn on Triton's dynamic batcher in the managed server's model configuration.
    #[arg(long)]
    #[serde(default)]
    pub dynamic_batching: bool,

    /// Use TF Serving's REST API at this URL for tfserving-rest
    /// [default: http://127.0.0.1:8501, TF Serving's own default].
    #[arg(long, value_name = "URL")]
    pub tfserving_url: Option<String>,

    /// Use TF Serving's gRPC API at this URL for tfserving-grpc
    /// [default: http://127.0.0.1:8500, TF Serving's own default].
    #[arg(long, value_name = "URL")]
    pub tfserving_grpc_url: Option<String>,

    /// JSON format of tfserving-rest requests: row ({"instances": ...}) or columnar
    /// ({"inputs": ...}) [default: row].
    #[arg(long, value_name = "row|columnar")]
    pub tfserving_format: Option<String>,

    /// Where the server backends run: local (the harness starts Flask and Triton itself)
    /// or compose (the services of docker-compose.yml, on their published ports:
    /// flask 8080, triton 8000/8001, tfserving 8501/8500; URL flags still win)
    /// [default: local].
    #[arg(long, value_name = "local|compose")]
    pub stack: Option<String>,
    // Measurement: load modes, windows, trials (issue 7).
    /// Open loop: scheduled requests per second; a list sweeps, such as 10,50,100.
    /// Latency counts from the scheduled send time. Not with --concurrency.
    #[arg(long, value_delimiter = ',', value_name = "R[,R...]")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub request_rate: Option<Vec<f64>>,

    /// Open loop: spacing of the sends, constant or poisson [default: poisson].
    #[arg(long, value_name = "constant|poisson")]
    pub arrival: Option<String>,

    /// Times the whole backend set is measured, in a shuffled, interleaved order
    /// [default: 3].
    #[arg(long, value_name = "K")]
    pub trials: Option<usize>,

    /// Windows per point and trial before giving up on stability (the result is then
    /// flagged unstable) [default: 6; with --quick: 3].
    #[arg(long, value_name = "N")]
    pub max_windows: Option<usize>,

    /// Open loop: requests in flight at most; a send due beyond it is dropped, counted
    /// and flagged (D) [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// Seconds after which a point's trial starts no new window [default: 1.5, with
    /// --quick 0.3, at least 3 windows' length].
    #[arg(long, value_name = "SECONDS")]
    pub point_budget: Option<f64>,

    /// Stability tolerance: the last 3 windows agree within this many percent
    /// [default: 10].
    #[arg(long, value_name = "PERCENT")]
    pub stability_percent: Option<f64>,

    /// Latency percentile the stability rule watches, above 0 and below 100
    /// [default: 50].
    #[arg(long, value_name = "P")]
    pub percentile: Option<f64>,

    /// Output on the terminal: table, or csv (perf_analyzer's columns) [default: table].
    #[arg(long, value_name = "table|csv")]
    pub format: Option<String>,
}

/// A TOML value that is one item or a list of them (`concurrency = 2` or `[1, 2]`).
fn one_or_many<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    }))
}

/// The backend type of a `NAME@LABEL` entry (`candle@a` is a `candle`).
pub fn backend_type(label: &str) -> &str {
    label.split_once('@').map_or(label, |(name, _)| name)
}

/// Terminal output of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Side-by-side tables.
    Table,
    /// perf_analyzer-compatible CSV.
    Csv,
}

/// Published ports of docker-compose.yml's services, as `--stack compose` uses them.
pub const COMPOSE_URLS: [(&str, &str); 5] = [
    ("flask", "http://127.0.0.1:8080"),
    ("triton-http", "http://127.0.0.1:8000"),
    ("triton-grpc", "http://127.0.0.1:8001"),
    ("tfserving-rest", "http://127.0.0.1:8501"),
    ("tfserving-grpc", "http://127.0.0.1:8500"),
];

/// Default absolute tolerance of the agreement check.
pub const DEFAULT_ATOL: f64 = 1e-3;
/// Default tolerance of the agreement check, relative to the largest reference output.
pub const DEFAULT_RTOL: f64 = 1e-3;

/// Small or large batches: the two tables of the classic TF Serving vs Flask study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
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

/// When a measurement window ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// After this many seconds, but not before `min_requests` requests finished.
    Duration {
        /// Length in seconds.
        seconds: f64,
        /// Floor on the number of requests.
        min_requests: u64,
    },
    /// After exactly this many requests.
    Requests(u64),
}

/// The validated configuration of one `compare` run.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// Backends requested, in order.
    pub backends: Vec<String>,
    /// True when the user named the backends (then an unavailable one is an error).
    pub backends_explicit: bool,
    /// Baseline backend for ratios (`None`: the first backend compared).
    pub baseline: Option<String>,
    /// Reference backend for the agreement check.
    pub reference: String,
    /// Models, in order.
    #[serde(serialize_with = "model_names")]
    pub models: Vec<ModelId>,
    /// Matched worker count.
    pub workers: usize,
    /// Intra-op threads per worker.
    pub intra_threads: usize,
    /// Device for in-process engines.
    pub device: Device,
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
    /// Agreement tolerances.
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
    /// No progress output.
    #[serde(skip)]
    pub quiet: bool,
    /// Existing Flask server (`None`: the harness starts Gunicorn).
    pub flask_url: Option<String>,
    /// Existing Triton HTTP endpoint (`None`: the harness starts Triton).
    pub triton_url: Option<String>,
    /// Existing Triton gRPC endpoint (`None`: the harness starts Triton).
    pub triton_grpc_url: Option<String>,
    /// `json` or `binary` bodies for triton-http.
    pub triton_http_body: String,
    /// Triton's dynamic batcher on.
    pub dynamic_batching: bool,
    /// Existing TF Serving REST endpoint (`None`: TF Serving's default port).
    pub tfserving_url: Option<String>,
    /// Existing TF Serving gRPC endpoint (`None`: TF Serving's default port).
    pub tfserving_grpc_url: Option<String>,
    /// `row` or `columnar` bodies for tfserving-rest.
    pub tfserving_format: String,
    /// `local` or `compose`: where the server backends run.
    pub stack: String,

    // Measurement (issue 7).
    /// Load levels, each measured at every point.
    pub loads: Vec<Load>,
    /// Times the backend set is measured.
    pub trials: usize,
    /// Windows per point and trial at most.
    pub max_windows: usize,
    /// Seconds after which a point's trial starts no new window.
    pub point_budget_s: f64,
    /// Open loop: requests in flight at most.
    pub max_in_flight: usize,
    /// Stability tolerance, a fraction (0.1 = ±10 %).
    pub stability: f64,
    /// Stabilising latency percentile.
    pub percentile: f64,
    /// Terminal output.
    pub format: Format,
    /// `harness run`: one backend, one model, one batch size, one table.
    #[serde(skip)]
    pub single: bool,
}

fn model_names<S: serde::Serializer>(models: &[ModelId], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(models.iter().map(|m| m.name()))
}

impl RunConfig {
    /// URLs of existing servers by backend name (`OpenOptions::server_urls`).
    pub fn server_urls(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("flask", &self.flask_url),
            ("triton-http", &self.triton_url),
            ("triton-grpc", &self.triton_grpc_url),
            ("tfserving-rest", &self.tfserving_url),
            ("tfserving-grpc", &self.tfserving_grpc_url),
        ]
        .into_iter()
        .filter_map(|(name, url)| Some((name.to_string(), url.clone()?)))
        .collect()
    }

    /// Batch sizes of `class` for `model`.
    pub fn batches(&self, model: ModelId, class: BatchClass) -> &[usize] {
        match (class, model) {
            (BatchClass::Small, _) => &self.small_batches,
            (BatchClass::Large, ModelId::TextCnn) => &self.large_batches,
            (BatchClass::Large, _) => &self.large_batches_resnet,
        }
    }
}

impl Settings {
    /// Reads the `--config` file, if any, and lets the flags override it.
    pub fn with_file(self) -> Result<Settings, HarnessError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            HarnessError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let file: Settings = toml::from_str(&text).map_err(|e| {
            HarnessError::Config(format!(
                "config file {} is not valid: {}",
                path.display(),
                e.message()
            ))
        })?;
        Ok(self.over(file))
    }

    /// `self` where set, else `file`.
    fn over(self, file: Settings) -> Settings {
        Settings {
            config: self.config,
            backends: self.backends.or(file.backends),
            baseline: self.baseline.or(file.baseline),
            reference: self.reference.or(file.reference),
            models: self.models.or(file.models),
            workers: self.workers.or(file.workers),
            intra_threads: self.intra_threads.or(file.intra_threads),
            concurrency: self.concurrency.or(file.concurrency),
            request_rate: self.request_rate.or(file.request_rate),
            arrival: self.arrival.or(file.arrival),
            trials: self.trials.or(file.trials),
            max_windows: self.max_windows.or(file.max_windows),
            max_in_flight: self.max_in_flight.or(file.max_in_flight),
            point_budget: self.point_budget.or(file.point_budget),
            stability_percent: self.stability_percent.or(file.stability_percent),
            percentile: self.percentile.or(file.percentile),
            format: self.format.or(file.format),
            device: self.device.or(file.device),
            small_batches: self.small_batches.or(file.small_batches),
            large_batches: self.large_batches.or(file.large_batches),
            large_batches_resnet: self.large_batches_resnet.or(file.large_batches_resnet),
            duration: self.duration.or(file.duration),
            requests: self.requests.or(file.requests),
            min_requests: self.min_requests.or(file.min_requests),
            warmup: self.warmup.or(file.warmup),
            seed: self.seed.or(file.seed),
            atol: self.atol.or(file.atol),
            rtol: self.rtol.or(file.rtol),
            strict: self.strict || file.strict,
            quick: self.quick || file.quick,
            fixtures_dir: self.fixtures_dir.or(file.fixtures_dir),
            results_dir: self.results_dir.or(file.results_dir),
            json: self.json.or(file.json),
            quiet: self.quiet || file.quiet,
            flask_url: self.flask_url.or(file.flask_url),
            triton_url: self.triton_url.or(file.triton_url),
            triton_grpc_url: self.triton_grpc_url.or(file.triton_grpc_url),
            triton_http_body: self.triton_http_body.or(file.triton_http_body),
            dynamic_batching: self.dynamic_batching || file.dynamic_batching,
            tfserving_url: self.tfserving_url.or(file.tfserving_url),
            tfserving_grpc_url: self.tfserving_grpc_url.or(file.tfserving_grpc_url),
            tfserving_format: self.tfserving_format.or(file.tfserving_format),
            stack: self.stack.or(file.stack),
        }
    }

    /// Fills in defaults and checks every value. `known` lists the backend names the
    /// harness knows.
    pub fn validate(mut self, known: &[&str]) -> Result<RunConfig, HarnessError> {
        let quick = self.quick;
        let stack = match self.stack.as_deref() {
            None | Some("local") => "local",
            Some("compose") => {
                // The compose services' published ports, unless a URL flag says otherwise.
                let compose = |name: &str| {
                    COMPOSE_URLS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, u)| u.to_string())
                };
                self.flask_url = self.flask_url.or_else(|| compose("flask"));
                self.triton_url = self.triton_url.or_else(|| compose("triton-http"));
                self.triton_grpc_url = self.triton_grpc_url.or_else(|| compose("triton-grpc"));
                self.tfserving_url = self.tfserving_url.or_else(|| compose("tfserving-rest"));
                self.tfserving_grpc_url = self
                    .tfserving_grpc_url
                    .or_else(|| compose("tfserving-grpc"));
                "compose"
            }
            Some(other) => {
                return Err(HarnessError::Config(format!(
                    "--stack {other:?} is not valid; use local or compose"
                )))
            }
        };
        let bad = |msg: String| Err(HarnessError::Config(msg));

        let check_backend = |name: &str, what: &str| -> Result<(), HarnessError> {
            if known.contains(&name) {
                Ok(())
            } else {
                Err(HarnessError::Config(format!(
                    "unknown {what} {name:?}; known backends: {}",
                    known.join(", ")
                )))
            }
        };
        let backends_explicit = self.backends.is_some();
        let backends = match self.backends {
            Some(list) => {
                if list.is_empty() || list.iter().any(|b| b.trim().is_empty()) {
                    return bad(format!(
                        "--backends needs at least one name; known backends: {}",
                        known.join(", ")
                    ));
                }
                for b in &list {
                    check_label(b, known)?;
                }
                if let Some(twice) = list
                    .iter()
                    .find(|b| list.iter().filter(|x| x == b).count() > 1)
                {
                    return bad(format!(
                        "backend {twice:?} is given twice in --backends; to measure one backend twice give it two labels, such as {0}@a,{0}@b",
                        backend_type(twice)
                    ));
                }
                list
            }
            None => known.iter().map(|s| s.to_string()).collect(),
        };
        if let Some(b) = &self.baseline {
            check_backend(backend_type(b), "baseline")?;
            if !backends.contains(b) {
                return bad(format!(
                    "baseline {b:?} is not among the backends compared ({})",
                    backends.join(", ")
                ));
            }
        }
        let reference = self.reference.unwrap_or_else(|| "candle".into());
        check_backend(backend_type(&reference), "reference backend")?;

        let models = match self.models {
            Some(list) if list.is_empty() => {
                return bad("--models needs at least one of text-cnn, resnet18, resnet50".into())
            }
            Some(list) => dedup(
                list.iter()
                    .map(|m| m.parse::<ModelId>().map_err(HarnessError::Config))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None if quick => vec![ModelId::TextCnn, ModelId::Resnet18],
            None => vec![ModelId::TextCnn, ModelId::Resnet50],
        };

        let workers = positive(self.workers.unwrap_or(1), "--workers")?;
        let intra_threads = positive(
            self.intra_threads
                .unwrap_or_else(|| contract::default_intra_threads(workers)),
            "--intra-threads",
        )?;
        let device = match self.device {
            Some(d) => d.parse::<Device>().map_err(HarnessError::Config)?,
            None => Device::Cpu,
        };

        let sizes = |v: Option<Vec<usize>>, flag: &str, normal: &[usize], short: &[usize]| {
            let v = v.unwrap_or_else(|| if quick { short } else { normal }.to_vec());
            batch_sizes(v, flag)
        };
        let small_batches = sizes(
            self.small_batches,
            "--small-batches",
            &[1, 2, 4, 8],
            &[1, 4],
        )?;
        let large_batches = sizes(
            self.large_batches,
            "--large-batches",
            &[1, 10, 100, 1000],
            &[1, 100],
        )?;
        let large_batches_resnet = sizes(
            self.large_batches_resnet,
            "--large-batches-resnet",
            &[1, 8, 32],
            &[1, 8],
        )?;

        let min_requests = self.min_requests.unwrap_or(1);
        if min_requests == 0 {
            return bad("--min-requests must be at least 1".into());
        }
        let window = match (self.requests, self.duration) {
            (Some(_), Some(_)) => {
                return bad("give either --requests or --duration, not both".into())
            }
            (Some(0), _) => return bad("--requests must be at least 1".into()),
            (Some(n), None) => Window::Requests(n),
            (None, d) => {
                let seconds = d.unwrap_or(if quick { 0.1 } else { 0.25 });
                if !(seconds.is_finite() && seconds > 0.0) {
                    return bad(format!(
                        "--duration {seconds} is not valid; give a positive number of seconds"
                    ));
                }
                Window::Duration {
                    seconds,
                    min_requests,
                }
            }
        };
        let loads = loads(self.concurrency, self.request_rate, self.arrival, workers)?;
        let trials = self.trials.unwrap_or(3);
        if trials == 0 {
            return bad("--trials must be at least 1".into());
        }
        let max_windows = self.max_windows.unwrap_or(if quick { 3 } else { 6 });
        if max_windows < crate::stats::stability::WINDOWS {
            return bad(format!(
                "--max-windows {max_windows} is too few; give at least {} (stability compares the last {} windows)",
                crate::stats::stability::WINDOWS,
                crate::stats::stability::WINDOWS
            ));
        }
        let max_in_flight = match self.max_in_flight {
            Some(0) => return bad("--max-in-flight must be at least 1".into()),
            n => n.unwrap_or(crate::load::DEFAULT_MAX_IN_FLIGHT),
        };
        let point_budget_s = match (self.point_budget, window) {
            (Some(b), _) if !(b.is_finite() && b > 0.0) => {
                return bad(format!(
                    "--point-budget {b} is not valid; give a positive number of seconds"
                ))
            }
            (Some(b), _) => b,
            (None, Window::Duration { seconds, .. }) => {
                (if quick { 0.3f64 } else { 1.5 }).max(3.0 * seconds)
            }
            (None, Window::Requests(_)) => 3600.0,
        };
        let stability = match self.stability_percent {
            Some(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
                return bad(format!(
                "--stability-percent {p} is not valid; give a percentage above 0 and at most 100"
            ))
            }
            Some(p) => p / 100.0,
            None => 0.10,
        };
        let percentile = match self.percentile {
            Some(p) if !(p.is_finite() && p > 0.0 && p < 100.0) => {
                return bad(format!(
                    "--percentile {p} is not valid; give a latency percentile above 0 and below 100, such as 50 or 99"
                ))
            }
            Some(p) => p,
            None => 50.0,
        };
        let format = match self.format.as_deref() {
            None | Some("table") => Format::Table,
            Some("csv") => Format::Csv,
            Some(other) => {
                return bad(format!("--format {other:?} is not valid; use table or csv"))
            }
        };

        let atol = tolerance(self.atol.unwrap_or(DEFAULT_ATOL), "--atol")?;
        let rtol = tolerance(self.rtol.unwrap_or(DEFAULT_RTOL), "--rtol")?;

        Ok(RunConfig {
            backends,
            backends_explicit,
            baseline: self.baseline,
            reference,
            models,
            workers,
            intra_threads,
            device,
            small_batches,
            large_batches,
            large_batches_resnet,
            window,
            warmup: self.warmup,
            seed: self.seed.unwrap_or(fixtures::DEFAULT_SEED),
            atol,
            rtol,
            strict: self.strict,
            quick,
            fixtures_dir: self.fixtures_dir.unwrap_or_else(fixtures::default_dir),
            results_dir: self
                .results_dir
                .unwrap_or_else(|| Path::new("results").to_path_buf()),
            json: self.json,
            quiet: self.quiet,
            flask_url: self
                .flask_url
                .map(|u| server_url(u, "--flask-url", "8000"))
                .transpose()?,
            triton_url: self
                .triton_url
                .map(|u| server_url(u, "--triton-url", "8000"))
                .transpose()?,
            triton_grpc_url: self
                .triton_grpc_url
                .map(|u| server_url(u, "--triton-grpc-url", "8001"))
                .transpose()?,
            triton_http_body: match self.triton_http_body.as_deref() {
                None | Some("binary") => "binary".into(),
                Some("json") => "json".into(),
                Some(other) => {
                    return bad(format!(
                        "--triton-http-body {other:?} is not valid; use json or binary"
                    ))
                }
            },
            dynamic_batching: self.dynamic_batching,
            tfserving_url: self
                .tfserving_url
                .map(|u| server_url(u, "--tfserving-url", "8501"))
                .transpose()?,
            tfserving_grpc_url: self
                .tfserving_grpc_url
                .map(|u| server_url(u, "--tfserving-grpc-url", "8500"))
                .transpose()?,
            tfserving_format: match self.tfserving_format.as_deref() {
                None | Some("row") => "row".into(),
                Some("columnar") => "columnar".into(),
                Some(other) => {
                    return bad(format!(
                        "--tfserving-format {other:?} is not valid; use row or columnar"
                    ))
                }
            },
            stack: stack.into(),
            loads,
            trials,
            max_windows,
            point_budget_s,
            max_in_flight,
            stability,
            percentile,
            format,
            single: false,
        })
    }
}

/// Checks one `--backends` entry: a known backend, optionally `@LABEL`.
fn check_label(entry: &str, known: &[&str]) -> Result<(), HarnessError> {
    let (name, label) = match entry.split_once('@') {
        Some((n, l)) => (n, Some(l)),
        None => (entry, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if label.is_some_and(|l| !label_ok(l)) || name.is_empty() {
        return Err(HarnessError::Config(format!(
            "backend {entry:?} is not valid; give NAME or NAME@LABEL, where LABEL is letters, digits, - or _ (such as candle@a)"
        )));
    }
    if !known.contains(&name) {
        return Err(HarnessError::Config(format!(
            "unknown backend {name:?}; known backends: {}",
            known.join(", ")
        )));
    }
    Ok(())
}

/// The load levels: a closed-loop concurrency sweep or an open-loop rate sweep.
fn loads(
    concurrency: Option<Vec<usize>>,
    rates: Option<Vec<f64>>,
    arrival: Option<String>,
    workers: usize,
) -> Result<Vec<Load>, HarnessError> {
    let bad = |msg: String| Err(HarnessError::Config(msg));
    let arrival = arrival
        .map(|a| a.parse::<Arrival>())
        .transpose()
        .map_err(HarnessError::Config)?;
    match (concurrency, rates) {
        (Some(_), Some(_)) => bad(
            "give either --concurrency (closed loop) or --request-rate (open loop), not both"
                .into(),
        ),
        (c, None) => {
            if arrival.is_some() {
                return bad("--arrival applies to an open loop; give --request-rate too".into());
            }
            let list = c.unwrap_or_else(|| vec![workers]);
            if list.is_empty() {
                return bad("--concurrency needs at least one number of requests in flight".into());
            }
            if list.contains(&0) {
                return bad("--concurrency must be at least 1".into());
            }
            Ok(dedup(list)
                .into_iter()
                .map(|concurrency| Load::Closed { concurrency })
                .collect())
        }
        (None, Some(rates)) => {
            if rates.is_empty() {
                return bad("--request-rate needs at least one rate (requests per second)".into());
            }
            if let Some(r) = rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
                return bad(format!(
                    "--request-rate {r} is not valid; give requests per second above 0, such as 50 or 10,50,100"
                ));
            }
            Ok(dedup(rates)
                .into_iter()
                .map(|request_rate| Load::Open {
                    request_rate,
                    arrival: arrival.unwrap_or(Arrival::Poisson),
                })
                .collect())
        }
    }
}

/// An `http://` URL, without a trailing slash.
fn server_url(url: String, flag: &str, port: &str) -> Result<String, HarnessError> {
    let rest = url.strip_prefix("http://").unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(HarnessError::Config(format!(
            "{flag} {url:?} is not valid; give an http:// URL such as http://127.0.0.1:{port}"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn dedup<T: PartialEq>(list: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(list.len());
    for x in list {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn positive(n: usize, flag: &str) -> Result<usize, HarnessError> {
    if n == 0 {
        Err(HarnessError::Config(format!("{flag} must be at least 1")))
    } else {
        Ok(n)
    }
}

fn batch_sizes(v: Vec<usize>, flag: &str) -> Result<Vec<usize>, HarnessError> {
    if v.is_empty() {
        return Err(HarnessError::Config(format!(
            "{flag} needs at least one batch size (whole numbers from 1 to 4096)"
        )));
    }
    if let Some(bad) = v.iter().find(|&&b| b == 0 || b > 4096) {
        return Err(HarnessError::Config(format!(
            "batch size {bad} in {flag} is not valid; use whole numbers from 1 to 4096"
        )));
    }
    let mut v = dedup(v);
    v.sort_unstable();
    Ok(v)
}

fn tolerance(x: f64, flag: &str) -> Result<f64, HarnessError> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(HarnessError::Config(format!(
            "{flag} {x} is not valid; give a non-negative number"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["candle", "onnxruntime"];

    fn err(s: Settings) -> String {
        s.validate(KNOWN).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_filled_in() {
        let c = Settings::default().validate(KNOWN).unwrap();
        assert_eq!(c.backends, ["candle", "onnxruntime"]);
        assert!(!c.backends_explicit);
        assert_eq!(c.models, [ModelId::TextCnn, ModelId::Resnet50]);
        assert_eq!(c.workers, 1);
        assert_eq!(c.loads, [Load::Closed { concurrency: 1 }]);
        assert_eq!(c.trials, 3);
        assert_eq!(c.small_batches, [1, 2, 4, 8]);
        assert_eq!(
            c.batches(ModelId::TextCnn, BatchClass::Large),
            [1, 10, 100, 1000]
        );
        assert_eq!(c.batches(ModelId::Resnet50, BatchClass::Large), [1, 8, 32]);
        let q = Settings {
            quick: true,
            ..Default::default()
        }
        .validate(KNOWN)
        .unwrap();
        assert_eq!(q.models, [ModelId::TextCnn, ModelId::Resnet18]);
    }

    #[test]
    fn bad_values_get_one_clear_sentence() {
        let e = err(Settings {
            backends: Some(vec!["tensorrt".into()]),
            ..Default::default()
        });
        assert!(
            e.contains("unknown backend \"tensorrt\"") && e.contains("candle, onnxruntime"),
            "{e}"
        );
        let e = err(Settings {
            small_batches: Some(vec![1, 0]),
            ..Default::default()
        });
        assert!(e.contains("batch size 0 in --small-batches"), "{e}");
        let e = err(Settings {
            large_batches: Some(vec![]),
            ..Default::default()
        });
        assert!(
            e.contains("--large-batches needs at least one batch size"),
            "{e}"
        );
        let e = err(Settings {
            models: Some(vec!["bert".into()]),
            ..Default::default()
        });
        assert!(e.contains("unknown model \"bert\""), "{e}");
        let e = err(Settings {
            workers: Some(0),
            ..Default::default()
        });
        assert!(e.contains("--workers must be at least 1"), "{e}");
        let e = err(Settings {
            baseline: Some("onnxruntime".into()),
            backends: Some(vec!["candle".into()]),
            ..Default::default()
        });
        assert!(e.contains("not among the backends compared"), "{e}");
        let e = err(Settings {
            requests: Some(10),
            duration: Some(1.0),
            ..Default::default()
        });
        assert!(e.contains("either --requests or --duration"), "{e}");
        let e = err(Settings {
            device: Some("tpu".into()),
            ..Default::default()
        });
        assert!(e.contains("cpu, cuda or cuda:N"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "workers = 2\nmodels = [\"resnet18\"]\nquick = true\n",
        )
        .unwrap();
        let s = Settings {
            config: Some(path),
            workers: Some(3),
            ..Default::default()
        }
        .with_file()
        .unwrap();
        let c = s.validate(KNOWN).unwrap();
        assert_eq!(c.workers, 3);
        assert_eq!(c.models, [ModelId::Resnet18]);
        assert!(c.quick);
    }

    #[test]
    fn bad_config_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "wrokers = 2\n").unwrap();
        let e = Settings {
            config: Some(path.clone()),
            ..Default::default()
        }
        .with_file()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("c.toml is not valid") && e.contains("wrokers"),
            "{e}"
        );
        let e = Settings {
            config: Some(dir.path().join("missing.toml")),
            ..Default::default()
        }
        .with_file()
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot read config file"), "{e}");
    }

    #[test]
    fn triton_settings_are_checked() {
        let c = Settings {
            triton_url: Some("http://127.0.0.1:8000/".into()),
            triton_grpc_url: Some("http://127.0.0.1:8001".into()),
            ..Default::default()
        }
        .validate(KNOWN)
        .unwrap();
        assert_eq!(c.triton_http_body, "binary");
        assert!(!c.dynamic_batching);
        let urls = c.server_urls();
        assert_eq!(urls["triton-http"], "http://127.0.0.1:8000");
        assert_eq!(urls["triton-grpc"], "http://127.0.0.1:8001");
        assert!(!urls.contains_key("flask"));
        let e = err(Settings {
            triton_http_body: Some("xml".into()),
            ..Default::default()
        });
        assert!(
            e.contains("--triton-http-body \"xml\"") && e.contains("json or binary"),
            "{e}"
        );
        let e = err(Settings {
            triton_grpc_url: Some("127.0.0.1:8001".into()),
            ..Default::default()
        });
        assert!(
            e.contains("--triton-grpc-url") && e.contains("http://127.0.0.1:8001"),
            "{e}"
        );
    }

    #[test]
    fn tfserving_settings_and_the_compose_stack_are_checked() {
        let c = Settings {
            tfserving_url: Some("http://127.0.0.1:9501/".into()),
            ..Default::default()
        }
        .validate(&["candle"])
        .unwrap();
        assert_eq!(c.tfserving_format, "row");
        assert_eq!(c.stack, "local");
        let urls = c.server_urls();
        assert_eq!(urls["tfserving-rest"], "http://127.0.0.1:9501");
        assert!(!urls.contains_key("tfserving-grpc") && !urls.contains_key("flask"));
        let e = err(Settings {
            tfserving_format: Some("csv".into()),
            ..Default::default()
        });
        assert!(
            e.contains("--tfserving-format \"csv\"") && e.contains("row or columnar"),
            "{e}"
        );
        let e = err(Settings {
            tfserving_grpc_url: Some("grpc://x".into()),
            ..Default::default()
        });
        assert!(e.contains("--tfserving-grpc-url"), "{e}");
        let e = err(Settings {
            stack: Some("k8s".into()),
            ..Default::default()
        });
        assert!(
            e.contains("--stack \"k8s\"") && e.contains("local or compose"),
            "{e}"
        );

        // compose: every server backend on its published port; a URL flag still wins.
        let c = Settings {
            stack: Some("compose".into()),
            triton_url: Some("http://127.0.0.1:9000".into()),
            ..Default::default()
        }
        .validate(&["candle"])
        .unwrap();
        assert_eq!(c.stack, "compose");
        let urls = c.server_urls();
        assert_eq!(urls["flask"], "http://127.0.0.1:8080");
        assert_eq!(urls["triton-http"], "http://127.0.0.1:9000");
        assert_eq!(urls["triton-grpc"], "http://127.0.0.1:8001");
        assert_eq!(urls["tfserving-rest"], "http://127.0.0.1:8501");
        assert_eq!(urls["tfserving-grpc"], "http://127.0.0.1:8500");
    }

    #[test]
    fn flask_url_must_be_http() {
        let with = |url: &str| {
            Settings {
                flask_url: Some(url.into()),
                ..Settings::default()
            }
            .validate(KNOWN)
        };
        assert_eq!(
            with("http://127.0.0.1:8000/").unwrap().flask_url.as_deref(),
            Some("http://127.0.0.1:8000")
        );
        for bad in ["127.0.0.1:8000", "https://x", "http://", "http:// x"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(
                e.contains("--flask-url") && e.contains("http://"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn load_settings_parse_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Settings {
                config: Some(path.clone()),
                ..Default::default()
            }
            .with_file()
            .unwrap()
            .validate(KNOWN)
            .unwrap()
            .loads
        };
        assert_eq!(load("concurrency = 2\n"), [Load::Closed { concurrency: 2 }]);
        assert_eq!(
            load("concurrency = [1, 2]\n"),
            [
                Load::Closed { concurrency: 1 },
                Load::Closed { concurrency: 2 }
            ]
        );
        assert_eq!(
            load("request_rate = 50.0\narrival = \"constant\"\n"),
            [Load::Open {
                request_rate: 50.0,
                arrival: Arrival::Constant
            }]
        );
        let c = Settings {
            request_rate: Some(vec![10.0, 20.0]),
            ..Default::default()
        }
        .validate(KNOWN)
        .unwrap();
        assert_eq!(c.loads.len(), 2);
        assert_eq!(c.loads[0].request_rate(), Some(10.0));
        assert_eq!(c.loads[0].label(), "10/s poisson");
    }

    #[test]
    fn labels_name_two_instances_of_one_backend() {
        let c = Settings {
            backends: Some(vec!["candle@a".into(), "candle@b".into()]),
            baseline: Some("candle@b".into()),
            ..Default::default()
        }
        .validate(KNOWN)
        .unwrap();
        assert_eq!(c.backends, ["candle@a", "candle@b"]);
        assert_eq!(backend_type("candle@a"), "candle");
        assert_eq!(backend_type("onnxruntime"), "onnxruntime");
        for bad in ["candle@", "@a", "candle@a b", "candle@a@b"] {
            let e = err(Settings {
                backends: Some(vec![bad.into()]),
                ..Default::default()
            });
            assert!(e.contains("NAME@LABEL"), "{bad}: {e}");
        }
        let e = err(Settings {
            backends: Some(vec!["candle".into(), "candle".into()]),
            ..Default::default()
        });
        assert!(
            e.contains("given twice") && e.contains("candle@a,candle@b"),
            "{e}"
        );
    }

    #[test]
    fn measurement_settings_are_checked() {
        let c = Settings::default().validate(KNOWN).unwrap();
        assert_eq!((c.max_windows, c.percentile, c.stability), (6, 50.0, 0.1));
        assert_eq!(c.point_budget_s, 1.5);
        for (s, want) in [
            (
                Settings {
                    percentile: Some(0.0),
                    ..Default::default()
                },
                "--percentile 0 is not valid",
            ),
            (
                Settings {
                    stability_percent: Some(-1.0),
                    ..Default::default()
                },
                "--stability-percent -1",
            ),
            (
                Settings {
                    point_budget: Some(0.0),
                    ..Default::default()
                },
                "--point-budget 0",
            ),
            (
                Settings {
                    arrival: Some("poisson".into()),
                    ..Default::default()
                },
                "--arrival applies to an open loop",
            ),
            (
                Settings {
                    request_rate: Some(vec![f64::NAN]),
                    ..Default::default()
                },
                "--request-rate NaN is not valid",
            ),
        ] {
            let e = err(s);
            assert!(e.contains(want), "{e}");
        }
    }
}
