//! The cross-field rules: from the parsed flags ([`crate::cli`]) to one [`Plan`].
//!
//! The parser already checked every single value (types, ranges, names, conflicts). What
//! is left here are the defaults that depend on other settings (`--quick`, intra-op
//! threads from the worker count, the point budget from the window, the compose stack's
//! URLs) and the rules between values (a baseline among the backends, no backend twice).
//! [`RunConfig`] is the flat result, and [`RunConfig::plan`] the plan a run follows.

mod plan;

use std::path::PathBuf;
use std::time::Duration;

use contract::Device;
use fixtures::ModelId;

use crate::cli::{spelled, Common, CompareArgs, RunArgs, Stack};
use crate::compare::backend_type;
use crate::load::{Arrival, Load, Window};
use crate::results::Format;
use crate::HarnessError;

/// Default absolute tolerance of the agreement check.
pub const DEFAULT_ATOL: f64 = 1e-3;
/// Default tolerance of the agreement check, relative to the largest reference output.
pub const DEFAULT_RTOL: f64 = 1e-3;

/// Published ports of docker-compose.yml's services, as `--stack compose` uses them.
pub const COMPOSE_URLS: [(&str, &str); 5] = [
    ("flask", "http://127.0.0.1:8080"),
    ("triton-http", "http://127.0.0.1:8000"),
    ("triton-grpc", "http://127.0.0.1:8001"),
    ("tfserving-rest", "http://127.0.0.1:8501"),
    ("tfserving-grpc", "http://127.0.0.1:8500"),
];

/// The settings of one run with every default filled in.
#[derive(Debug, Clone)]
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
    pub models: Vec<ModelId>,
    /// Matched worker count.
    pub workers: usize,
    /// Intra-op threads per worker.
    pub intra_threads: usize,
    /// Device for in-process engines.
    pub device: Device,
    /// Small batch sizes (`harness run`: its one batch size).
    pub small_batches: Vec<usize>,
    /// Large batch sizes for the text-CNN (`harness run`: none).
    pub large_batches: Vec<usize>,
    /// Large batch sizes for the ResNets (`harness run`: none).
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
    /// Load levels, each measured at every point.
    pub loads: Vec<Load>,
    /// Open loop: requests in flight at most; sends beyond are dropped and counted.
    pub max_in_flight: usize,
    /// Times the backend set is measured.
    pub trials: usize,
    /// Windows per point and trial at most.
    pub max_windows: usize,
    /// Time after which a point's trial starts no new window.
    pub point_budget: Duration,
    /// Stability tolerance, a fraction (0.1 = ±10 %).
    pub stability: f64,
    /// Stabilising latency percentile.
    pub percentile: f64,
    /// Terminal output.
    pub format: Format,
}

impl RunConfig {
    /// The settings of `harness compare`.
    pub fn compare(args: CompareArgs) -> Result<RunConfig, HarnessError> {
        let s = args.selection;
        let quick = args.common.workload.quick;
        let known = crate::registry::names();
        let backends_explicit = s.backends.is_some();
        let backends = s
            .backends
            .unwrap_or_else(|| known.iter().map(|s| s.to_string()).collect());
        if let Some(twice) = backends
            .iter()
            .find(|b| backends.iter().filter(|x| x == b).count() > 1)
        {
            return Err(HarnessError::Config(format!(
                "backend {twice:?} is given twice in --backends; to measure one backend twice give it two labels, such as {0}@a,{0}@b",
                backend_type(twice)
            )));
        }
        if let Some(b) = &s.baseline {
            if !backends.contains(b) {
                return Err(HarnessError::Config(format!(
                    "baseline {b:?} is not among the backends compared ({})",
                    backends.join(", ")
                )));
            }
        }
        let sizes = |v: Option<Vec<usize>>, normal: &[usize], short: &[usize]| {
            let mut v = dedup(v.unwrap_or_else(|| if quick { short } else { normal }.to_vec()));
            v.sort_unstable();
            v
        };
        let models = match s.models {
            Some(list) => dedup(list),
            None if quick => vec![ModelId::TextCnn, ModelId::Resnet18],
            None => vec![ModelId::TextCnn, ModelId::Resnet50],
        };
        let reference = args.common.agreement.reference.clone();
        let mut cfg =
            RunConfig::common(args.common, backends, reference.unwrap_or("candle".into()))?;
        cfg.backends_explicit = backends_explicit;
        cfg.baseline = s.baseline;
        cfg.models = models;
        cfg.small_batches = sizes(s.small_batches, &[1, 2, 4, 8], &[1, 4]);
        cfg.large_batches = sizes(s.large_batches, &[1, 10, 100, 1000], &[1, 100]);
        cfg.large_batches_resnet = sizes(s.large_batches_resnet, &[1, 8, 32], &[1, 8]);
        Ok(cfg)
    }

    /// The settings of `harness run`: one backend, one model, one batch size.
    pub fn run(args: RunArgs) -> Result<RunConfig, HarnessError> {
        let t = args.target;
        let reference = args.common.agreement.reference.clone();
        let mut cfg = RunConfig::common(
            args.common,
            vec![t.backend.clone()],
            reference.unwrap_or(t.backend),
        )?;
        cfg.backends_explicit = true;
        cfg.models = vec![t.model];
        cfg.small_batches = vec![t.batch];
        Ok(cfg)
    }

    /// Every setting `compare` and `run` share; the selection is left empty.
    fn common(
        c: Common,
        backends: Vec<String>,
        reference: String,
    ) -> Result<RunConfig, HarnessError> {
        let (w, m, o, srv) = (c.workload, c.measure, c.output, c.servers);
        let quick = w.quick;
        let workers = w.workers.unwrap_or(1);
        let window = match m.requests {
            Some(n) => Window::Requests(n),
            None => Window::Duration {
                seconds: m
                    .duration
                    .map_or(if quick { 0.1 } else { 0.25 }, |d| d.as_secs_f64()),
                min_requests: m.min_requests.unwrap_or(1),
            },
        };
        let point_budget = match (m.point_budget, window) {
            (Some(b), _) => b,
            (None, Window::Duration { seconds, .. }) => {
                Duration::from_secs_f64((if quick { 0.3f64 } else { 1.5 }).max(3.0 * seconds))
            }
            (None, Window::Requests(_)) => Duration::from_secs(3600),
        };
        // The compose services' published ports, unless a URL flag says otherwise.
        let compose = |url: Option<String>, name: &str| {
            url.or_else(|| {
                (srv.stack == Stack::Compose).then(|| {
                    COMPOSE_URLS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, u)| u.to_string())
                })?
            })
        };
        Ok(RunConfig {
            backends,
            backends_explicit: false,
            baseline: None,
            reference,
            models: vec![],
            workers,
            intra_threads: w
                .intra_threads
                .unwrap_or_else(|| contract::default_intra_threads(workers)),
            device: w.device.unwrap_or_default(),
            small_batches: vec![],
            large_batches: vec![],
            large_batches_resnet: vec![],
            window,
            warmup: m.warmup,
            seed: w.seed.unwrap_or(fixtures::DEFAULT_SEED),
            atol: c.agreement.atol.unwrap_or(DEFAULT_ATOL),
            rtol: c.agreement.rtol.unwrap_or(DEFAULT_RTOL),
            strict: c.agreement.strict,
            quick,
            fixtures_dir: w.fixtures_dir.unwrap_or_else(fixtures::default_dir),
            results_dir: o.results_dir.unwrap_or_else(|| PathBuf::from("results")),
            json: o.json,
            quiet: o.quiet,
            flask_url: compose(srv.flask_url, "flask"),
            triton_url: compose(srv.triton_url, "triton-http"),
            triton_grpc_url: compose(srv.triton_grpc_url, "triton-grpc"),
            triton_http_body: spelled(&srv.triton_http_body),
            dynamic_batching: srv.dynamic_batching,
            tfserving_url: compose(srv.tfserving_url, "tfserving-rest"),
            tfserving_grpc_url: compose(srv.tfserving_grpc_url, "tfserving-grpc"),
            tfserving_format: spelled(&srv.tfserving_format),
            stack: spelled(&srv.stack),
            loads: loads(
                c.load.concurrency,
                c.load.request_rate,
                c.load.arrival,
                workers,
            ),
            max_in_flight: c
                .load
                .max_in_flight
                .unwrap_or(crate::load::DEFAULT_MAX_IN_FLIGHT),
            trials: m.trials.unwrap_or(3),
            max_windows: m.max_windows.unwrap_or(if quick { 3 } else { 6 }),
            point_budget,
            stability: m.stability_percent.unwrap_or(10.0) / 100.0,
            percentile: m.percentile.unwrap_or(50.0),
            format: o.format,
        })
    }

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
}

/// The load levels: a closed-loop concurrency sweep (by default at the worker count)
/// or an open-loop rate sweep; the parser already keeps the two apart.
fn loads(
    concurrency: Option<Vec<usize>>,
    rates: Option<Vec<f64>>,
    arrival: Option<Arrival>,
    workers: usize,
) -> Vec<Load> {
    match rates {
        Some(rates) => dedup(rates)
            .into_iter()
            .map(|request_rate| Load::Open {
                request_rate,
                arrival: arrival.unwrap_or(Arrival::Poisson),
            })
            .collect(),
        None => dedup(concurrency.unwrap_or_else(|| vec![workers]))
            .into_iter()
            .map(|concurrency| Load::Closed { concurrency })
            .collect(),
    }
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

#[cfg(test)]
mod tests;
