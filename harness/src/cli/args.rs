//! The flags, as typed groups. Each group is flattened into the subcommands that take
//! it; the parser holds every rule it can say (types, ranges, value lists, conflicts and
//! requirements), so what is left for [`crate::config`] are the cross-field defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{ArgAction, Args, ValueEnum};
use contract::Device;
use fixtures::ModelId;

use crate::load::Arrival;
use crate::registry::BackendOptions;
use crate::results::Format;
use crate::stats::stability::WINDOWS;

/// Which backends and models `compare` runs, at which batch sizes.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Selection")]
pub struct Selection {
    /// Backends to compare, comma separated; NAME@LABEL opens a backend once more under
    /// another label [default: every backend that can run here].
    #[arg(long, value_delimiter = ',', value_name = "NAMES", action = ArgAction::Set,
          value_parser = backend_label)]
    pub backends: Option<Vec<String>>,

    /// Backend the ratios are computed against [default: the first one compared].
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,

    /// Models to run, comma separated [default: text-cnn,resnet50; with --quick:
    /// text-cnn,resnet18].
    #[arg(long, value_delimiter = ',', value_name = "NAMES", action = ArgAction::Set,
          value_parser = model())]
    pub models: Option<Vec<ModelId>>,

    /// Your own ONNX model: measured on every backend that runs ONNX files
    /// (onnxruntime, flask, triton; candle where candle-onnx has every operator), and
    /// on libtorch from its --torchscript.
    /// Repeatable; without --models, only these models are measured. Its inputs and
    /// outputs are read from the file; the first dimension is the batch.
    #[arg(long = "model-file", value_name = "PATH.onnx", action = ArgAction::Append,
          value_delimiter = ',')]
    pub model_files: Vec<PathBuf>,

    /// The same model as a --model-file, as TorchScript (`torch.jit.save`), for libtorch:
    /// matched by file name (net.pt goes with net.onnx). Repeatable; a --model-file
    /// model without one is not measured on libtorch.
    #[arg(long = "torchscript", value_name = "PATH.pt", action = ArgAction::Append,
          value_delimiter = ',', requires = "model_files")]
    pub torchscript: Vec<PathBuf>,

    /// The same model as a --model-file, as a TensorFlow SavedModel base path (numbered
    /// version directories), for TF Serving: matched by directory name (net/ goes with
    /// net.onnx). The run writes TF Serving's models.config for it into its results
    /// directory (tfserving.models.config). Repeatable.
    #[arg(long = "savedmodel", value_name = "DIR", action = ArgAction::Append,
          value_delimiter = ',', requires = "model_files")]
    pub savedmodel: Vec<PathBuf>,

    /// Inputs of the --model-file models: random (seeded by --seed), zero, or a file:
    /// .npy (one input), .npz (one array per input name) or perf_analyzer-style .json;
    /// sample i of a batch is row i of the file, cycling [default: random].
    #[arg(long, value_name = "SOURCE", requires = "model_files")]
    pub input_data: Option<fixtures::user::InputData>,

    /// Dimensions of one sample of a --model-file input, after the batch dimension,
    /// for its dynamic dimensions: NAME:DIMS such as tokens:128 (repeatable).
    #[arg(long = "shape", value_name = "NAME:DIMS", action = ArgAction::Append,
          value_parser = fixtures::user::parse_shape, requires = "model_files")]
    pub shapes: Vec<(String, Vec<usize>)>,

    /// Precisions to run every model at, comma separated: fp32, fp16, bf16, int8. Each
    /// backend runs those it supports natively (onnxruntime, the managed Flask app and
    /// Triton fp32/fp16/int8, openvino fp32/bf16/int8, candle fp32/fp16/bf16, libtorch
    /// fp32/bf16; the others fp32) from the same fp32 weights; every other pairing
    /// is listed as not measured. Reduced precisions are checked against the fp32
    /// reference with a tolerance of their own [default: fp32].
    #[arg(long, value_delimiter = ',', value_name = "LIST", action = ArgAction::Set,
          value_parser = precision_name)]
    pub precision: Option<Vec<contract::Precision>>,

    /// Batch size of the throughput-by-precision table; added to the small batches when
    /// --precision names more than fp32 [default: 8].
    #[arg(long, value_name = "N", value_parser = batch_size())]
    pub precision_batch: Option<usize>,

    /// Small-batch sizes, for every model [default: 1,2,4,8; with --quick: 1,4].
    #[arg(long, value_delimiter = ',', value_name = "SIZES", action = ArgAction::Set,
          value_parser = batch_size())]
    pub small_batches: Option<Vec<usize>>,

    /// Large-batch sizes for the text-CNN and --model-file models [default:
    /// 1,10,100; with --quick: 1,100].
    #[arg(long, value_delimiter = ',', value_name = "SIZES", action = ArgAction::Set,
          value_parser = batch_size())]
    pub large_batches: Option<Vec<usize>>,

    /// Large-batch sizes for the ResNets [default: 1,8; with --quick: 1,8].
    #[arg(long, value_delimiter = ',', value_name = "SIZES", action = ArgAction::Set,
          value_parser = batch_size())]
    pub large_batches_resnet: Option<Vec<usize>>,
}

/// The one target of `harness run`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Target")]
pub struct Target {
    /// Backend to measure (NAME or NAME@LABEL).
    #[arg(long, value_name = "NAME", value_parser = backend_label)]
    pub backend: String,
    /// Model to measure.
    #[arg(long, value_name = "MODEL", value_parser = model())]
    pub model: ModelId,
    /// Samples per request.
    #[arg(long, value_name = "N", value_parser = batch_size())]
    pub batch: usize,
}

/// The engines' resources and the fixtures.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Workload")]
pub struct Workload {
    /// A short run (about a minute): fewer models, batch sizes and shorter windows.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub quick: bool,

    /// Matched worker count for every backend: in-process executors, server workers or
    /// model instances; a list (such as 1,2,4) is a worker grid: every point is measured
    /// at each count, servers restarted and engines re-opened per count [default: 1].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]", action = ArgAction::Set,
          value_parser = worker_count)]
    pub workers: Option<Vec<usize>>,

    /// Intra-op threads per worker [default: (cores - 1) / workers, at least 1: one core is left to the load generator].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, MAX_THREADS))]
    pub intra_threads: Option<usize>,

    /// Device for in-process engines: cpu, cuda or cuda:N [default: cpu].
    #[arg(long, value_name = "DEVICE", value_parser = device)]
    pub device: Option<Device>,

    /// Seed of the generated weights and inputs [default: the fixtures' default seed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Directory of the generated fixtures [default: fixtures/generated].
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
}

/// The load each point is measured under: a closed or an open loop.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Load")]
pub struct LoadArgs {
    /// Closed loop: requests in flight at once; a list sweeps, such as 1,2,4,8
    /// [default: the worker count].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]", action = ArgAction::Set,
          value_parser = whole::<usize>(1, MAX_IN_FLIGHT), conflicts_with = "request_rate")]
    pub concurrency: Option<Vec<usize>>,

    /// Open loop: scheduled requests per second; a list sweeps, such as 10,50,100.
    /// Latency counts from the scheduled send time.
    #[arg(long, value_delimiter = ',', value_name = "R[,R...]", action = ArgAction::Set,
          value_parser = rate, allow_negative_numbers = true)]
    pub request_rate: Option<Vec<f64>>,

    /// Open loop: spacing of the sends [default: poisson].
    #[arg(long, value_enum, requires = "request_rate")]
    pub arrival: Option<Arrival>,

    /// Open loop: requests in flight at most; a send due beyond it is dropped, counted
    /// and flagged D [default: 1024]. Lowered where requests are large, so requests in
    /// flight hold at most 1 GiB of input data (JSON: `max_in_flight` per row).
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, MAX_IN_FLIGHT))]
    pub max_in_flight: Option<usize>,
}

/// How long each point is measured, and when its figures are trusted.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Measurement")]
pub struct MeasureArgs {
    /// Length of one measurement window, in seconds (or such as 250ms); a point is a
    /// series of windows [default: 0.25; with --quick: 0.1].
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "requests", allow_negative_numbers = true)]
    pub duration: Option<Duration>,

    /// Measure a fixed number of requests per window instead of a duration.
    #[arg(long, value_name = "N", value_parser = whole::<u64>(1, MAX_REQUESTS))]
    pub requests: Option<u64>,

    /// Least number of requests a duration window measures, however slow, so that no
    /// window's percentile rests on a handful of samples [default: 5].
    #[arg(long, value_name = "N", value_parser = whole::<u64>(1, MAX_REQUESTS))]
    pub min_requests: Option<u64>,

    /// Warm-up requests per point and backend, never counted [default: the concurrency
    /// or a tenth of a second of the request rate, at least 2, cut short after 1 s].
    #[arg(long, value_name = "N", value_parser = whole::<u64>(0, MAX_WARMUP))]
    pub warmup: Option<u64>,

    /// Least rounds per point before the intervals are checked; a round measures one
    /// window of every backend, in a freshly shuffled order [default: 5].
    #[arg(long, value_name = "K", value_parser = whole::<usize>(1, MAX_TRIALS))]
    pub trials: Option<usize>,

    /// Rounds per point at most, even where an interval is still wider than
    /// --target-precision; the stability rule compares a backend's last 3 windows
    /// [default: 100].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(WINDOWS as u64, MAX_WINDOWS))]
    pub max_windows: Option<usize>,

    /// Target half-width of each ratio's 95 % interval, relative to the ratio: 0.05 (or
    /// 5%) is ±5 %. A point keeps adding rounds for the backends whose interval is wider
    /// until its share of --time-budget is spent [default: 0.05].
    #[arg(long, value_name = "P", value_parser = precision, allow_negative_numbers = true)]
    pub target_precision: Option<f64>,

    /// Time all points may spend measuring (warm-ups included; opening backends and the
    /// agreement check not), such as 240s or 3m. A first pass over every point spends at
    /// most half of it (each point its share of what is left), a second the rest on the
    /// points whose ratios still need rounds, cheapest first. The paragraph under the
    /// ratio tables says what budget would have finished the ratios that ran out of time
    /// [default: 240s, with --quick 30s: derived so that the default
    /// compare over the six local backends finishes within 5 min (1 min with --quick) on
    /// an idle 2-core machine, after about 40 s (20 s) of server start-up, agreement
    /// checks and rounds that run past their share].
    #[arg(long, value_name = "DURATION", value_parser = seconds, allow_negative_numbers = true)]
    pub time_budget: Option<Duration>,

    /// Stability tolerance: the last 3 windows agree within this many percent
    /// [default: 10].
    #[arg(long, value_name = "PERCENT", value_parser = percent, allow_negative_numbers = true)]
    pub stability_percent: Option<f64>,

    /// Latency percentile the stability rule watches, above 0 and below 100
    /// [default: 50].
    #[arg(long, value_name = "P", value_parser = percentile, allow_negative_numbers = true)]
    pub percentile: Option<f64>,

    /// Longest one request may take, in seconds (or such as 500ms), before it counts as
    /// a `timeout` error; a backend whose requests all fail is marked failed and the
    /// run goes on with the others [default: 30]. Relative to each point's expected
    /// latency: once a point's warm-up has answered, its windows cut a request at
    /// min(this, max(2 s, 20 x the warm-up's mean latency)) (JSON: `request_timeout_ms`).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, allow_negative_numbers = true)]
    pub request_timeout: Option<Duration>,

    /// Stop the whole run at the first backend that fails (it cannot be opened, or stops
    /// answering), instead of marking it failed and measuring the others.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub fail_fast: bool,
}

/// The agreement check before any timing.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Agreement")]
pub struct AgreementArgs {
    /// Backend whose outputs the others must agree with before timing [default: candle].
    #[arg(long, value_name = "NAME", value_parser = backend_label)]
    pub reference: Option<String>,

    /// Absolute tolerance of the agreement check [default: 1e-3].
    #[arg(long, value_name = "X", value_parser = tolerance, allow_negative_numbers = true)]
    pub atol: Option<f64>,

    /// Tolerance relative to the largest reference output [default: 1e-3].
    #[arg(long, value_name = "X", value_parser = tolerance, allow_negative_numbers = true)]
    pub rtol: Option<f64>,

    /// Fail, instead of excluding the backend, when a backend disagrees with the
    /// reference (`--strict=false` undoes a config file's `strict = true`).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub strict: bool,
}

/// Where and how the results go.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// TOML file holding any of these settings (keys in snake_case), read as flags
    /// placed before the command line's own: flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output on the terminal: table, or csv (perf_analyzer's columns).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Directory under which each run writes `<timestamp>/` [default: results].
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,

    /// Also write the JSON results to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress output on stderr.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub quiet: bool,

    /// Terminal tables side by side, one column group per backend, and every tail
    /// percentile (as report.md has them), however wide; by default the terminal tables
    /// have one row per backend and fit 120 columns.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub wide: bool,
}

/// Where the server backends run, and how they are spoken to: `--stack`, then every
/// adapter's own flags ([`BackendOptions`], flattened from the adapter crates).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Servers")]
pub struct ServerArgs {
    /// Where the server backends run: local (the harness starts Flask and Triton itself)
    /// or compose (the services of docker-compose.yml, on their published ports:
    /// flask 8080, triton 8000/8001, tfserving 8501/8500, and triton-http@tensorrt-fp32 /
    /// @tensorrt-fp16 on 8010 / 8020, the TensorRT Tritons; URL flags still win).
    #[arg(long, value_enum, default_value_t = Stack::Local)]
    pub stack: Stack,

    /// Every server adapter's flags, for every backend.
    #[command(flatten)]
    pub options: BackendOptions,

    /// Options of their own for some backend names (`NAME@LABEL` tables of the config
    /// file), each over the flags above.
    #[arg(skip)]
    pub own: BTreeMap<String, BackendOptions>,
}

/// Where the server backends run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Stack {
    /// The harness starts Flask and Triton itself.
    #[default]
    Local,
    /// The services of docker-compose.yml, on their published ports.
    Compose,
}

/// The name of a [`ValueEnum`] value, as the flags spell it.
pub fn spelled<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A whole number, at least `min` and at most `max` (what the harness can do: larger
/// values would exhaust memory or threads, not measure anything).
fn whole<T>(min: u64, max: u64) -> impl TypedValueParser<Value = T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    clap::value_parser!(u64).try_map(move |n| {
        if n < min {
            return Err(format!(
                "give a whole number of at least {min} (at most {max})"
            ));
        }
        if n > max {
            return Err(format!(
                "give a whole number of at most {max} (at least {min})"
            ));
        }
        T::try_from(n).map_err(|_| format!("{n} is too large"))
    })
}

/// Most workers (executors, server workers, model instances).
pub const MAX_WORKERS: u64 = 256;
/// Most intra-op threads per worker.
pub const MAX_THREADS: u64 = 1024;
/// Most requests in flight (closed loop) or outstanding (open loop).
pub const MAX_IN_FLIGHT: u64 = 65_536;
/// Most requests per window, or least per duration window.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Most warm-up requests.
pub const MAX_WARMUP: u64 = 100_000;
/// Most trials.
pub const MAX_TRIALS: u64 = 100;
/// Most windows per point and trial.
pub const MAX_WINDOWS: u64 = 1000;
/// Shortest and longest length of time a flag takes (a window, a budget, a timeout).
pub const SECONDS_RANGE: (f64, f64) = (0.001, 86_400.0);
/// Lowest and highest open-loop rate, requests per second.
pub const RATE_RANGE: (f64, f64) = (0.01, 100_000.0);

/// A worker count, 1 to [`MAX_WORKERS`]; one item of a `--workers` list.
fn worker_count(s: &str) -> Result<usize, String> {
    let n: u64 = s.trim().parse().map_err(|_| {
        format!("give whole numbers of workers from 1 to {MAX_WORKERS}, such as 2 or 1,2,4")
    })?;
    if (1..=MAX_WORKERS).contains(&n) {
        Ok(n as usize)
    } else if n < 1 {
        Err(format!(
            "give a whole number of at least 1 (at most {MAX_WORKERS})"
        ))
    } else {
        Err(format!(
            "give a whole number of at most {MAX_WORKERS} (at least 1)"
        ))
    }
}

/// A batch size: 1 to 4096 samples.
fn batch_size() -> impl TypedValueParser<Value = usize> {
    clap::value_parser!(u64).try_map(|n| {
        if (1..=4096).contains(&n) {
            Ok(n as usize)
        } else {
            Err("batch sizes are whole numbers from 1 to 4096")
        }
    })
}

/// A model of the fixtures.
fn model() -> impl TypedValueParser<Value = ModelId> {
    clap::builder::PossibleValuesParser::new(ModelId::ALL.map(|m| m.name()))
        .map(|s| s.parse::<ModelId>().expect("a listed model"))
}

/// `NAME` or `NAME@LABEL` of a backend the harness knows.
fn backend_label(entry: &str) -> Result<String, String> {
    let known = crate::registry::names();
    let (name, label) = match entry.split_once('@') {
        Some((n, l)) => (n, Some(l)),
        None => (entry, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.trim().is_empty() || label.is_some_and(|l| !label_ok(l)) {
        return Err(format!(
            "backend {entry:?} is not valid; give NAME or NAME@LABEL, where LABEL is letters, digits, - or _ (such as candle@a)"
        ));
    }
    if !known.contains(&name) {
        return Err(format!(
            "unknown backend {name:?}; known backends: {}",
            known.join(", ")
        ));
    }
    Ok(entry.to_string())
}

fn precision_name(s: &str) -> Result<contract::Precision, String> {
    s.parse()
}

fn device(s: &str) -> Result<Device, String> {
    s.parse()
}

/// A positive length of time: seconds (`0.25`) or with a unit (`250ms`), within
/// [`SECONDS_RANGE`].
fn seconds(s: &str) -> Result<Duration, String> {
    let (lo, hi) = SECONDS_RANGE;
    let range = format!("from {lo} to {hi}");
    let d = match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Duration::try_from_secs_f64(x).ok(),
        Ok(_) => Some(Duration::ZERO),
        Err(_) => Some(humantime::parse_duration(s).map_err(|_| {
            format!(
                "give a positive number of seconds ({range}), such as 0.25, or a length such as 250ms"
            )
        })?),
    };
    match d {
        Some(d) if d.is_zero() => Err(format!(
            "give a positive number of seconds ({range}), such as 0.25"
        )),
        Some(d) if (lo..=hi).contains(&d.as_secs_f64()) => Ok(d),
        _ => Err(format!("give a number of seconds {range}, such as 0.25")),
    }
}

fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| "give a number".to_string())
}

fn rate(s: &str) -> Result<f64, String> {
    let r = number(s)?;
    let (lo, hi) = RATE_RANGE;
    if (lo..=hi).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "give requests per second from {lo} to {hi}, such as 50 or 10,50,100"
        ))
    }
}

/// A percentage above 0 and at most 100.
pub fn percent(s: &str) -> Result<f64, String> {
    let p = number(s)?;
    if p > 0.0 && p <= 100.0 {
        Ok(p)
    } else {
        Err("give a percentage above 0 and at most 100".into())
    }
}

/// A relative precision above 0 and below 1: `0.05` or `5%`.
fn precision(s: &str) -> Result<f64, String> {
    let (text, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p, 100.0),
        None => (s.trim(), 1.0),
    };
    match number(text).map(|x| x / scale) {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err("give a relative half-width above 0 and below 1, such as 0.05 or 5%".into()),
    }
}

fn percentile(s: &str) -> Result<f64, String> {
    let p = number(s)?;
    if p > 0.0 && p < 100.0 {
        Ok(p)
    } else {
        Err("give a latency percentile above 0 and below 100, such as 50 or 99".into())
    }
}

fn tolerance(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x >= 0.0 {
        Ok(x)
    } else {
        Err("give a non-negative number".into())
    }
}
