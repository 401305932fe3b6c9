//! The default terminal page of a six-backend `compare` fits 120 columns (a test of
//! `report`, here because its settings come from the real parser, which sits above it).

use crate::agreement::Agreement;
use crate::cli::{parse, Command};
use crate::config::RunConfig;
use crate::report::{page, run_page, Layout, WIDTH};
use crate::results::{
    BackendInfo, BatchClass, Breakdown, MeasurementInfo, PointResult, Ratio, Results, Unavailable,
};
use crate::stats::Latency;

const SIX: [&str; 6] = [
    "candle",
    "onnxruntime",
    "flask",
    "triton-http",
    "triton-grpc",
    "tfserving-grpc",
];

/// A `compare` of six backends at two loads with the widest figures each column
/// can hold: four-digit latencies, five-digit throughputs, every flag, ratio
/// intervals three digits wide, server-side breakdowns, a long unavailable reason.
fn six_backends() -> Results {
    six_backends_at("2")
}

/// [`six_backends`] at each count of the worker list `workers` (such as `1,2`).
pub(super) fn six_backends_at(workers: &str) -> Results {
    let argv = [
        "harness",
        "compare",
        "--backends",
        "candle,onnxruntime,flask,triton-http,triton-grpc,tfserving-grpc",
        "--request-rate",
        "1000.5,20",
        "--arrival",
        "poisson",
        "--workers",
        workers,
    ];
    let Command::Compare(args) = parse(argv).expect("parses").command else {
        panic!("compare");
    };
    let cfg = RunConfig::compare(*args).expect("valid settings");
    let record = cfg.plan().record;
    let mut h = crate::load::histogram();
    for us in [1_234_000u64, 2_345_000, 9_876_000] {
        h.record(us).unwrap();
    }
    let latency = Latency::from_histogram(&h, &[9_876_000, 2_345_000]).unwrap();
    let flags: Vec<String> = crate::report::FLAGS
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect();
    let mut results = Vec::new();
    let mut ratios = Vec::new();
    for n in record.grid() {
        for model in &record.models {
            for class in [BatchClass::Small, BatchClass::Large] {
                for &batch in record.batches(model, class) {
                    for load in record.loads.iter().map(|l| l.label()) {
                        for b in SIX {
                            results.push(PointResult {
                                model: model.clone(),
                                backend: b.to_string(),
                                precision: "fp32".into(),
                                batch_size: batch,
                                load: load.clone(),
                                concurrency: None,
                                request_rate: None,
                                arrival: None,
                                workers: n,
                                requests: 123_456,
                                errors: 12_345,
                                error_kinds: vec![],
                                untimed_errors: 67_890,
                                untimed_error_kinds: vec![],
                                duration_s: 12.3,
                                throughput_rps: 12_345.6,
                                samples_per_s: 12_345.6,
                                latency_ms: Some(latency.clone()),
                                server: b.starts_with("triton").then_some(Breakdown {
                                    queue_ms: 1234.5,
                                    compute_input_ms: 1234.5,
                                    compute_infer_ms: 1234.5,
                                    compute_output_ms: 1234.5,
                                }),
                                measurement: MeasurementInfo {
                                    total_requests: 1_234_567,
                                    total_wall_s: 123.45,
                                    ..Default::default()
                                },
                                resources: crate::results::Usage {
                                    scope: crate::results::Scope::ProcessGroup,
                                    cpu_cores: Some(12.34),
                                    peak_memory_mb: Some(123_456.7),
                                    gpu_util_pct: Some(99.9),
                                    gpu_memory_mb: Some(81_920.0),
                                    gpu_power_w: Some(700.0),
                                    readings: 1000,
                                },
                                server_metrics: Default::default(),
                                efficiency: crate::results::Efficiency {
                                    samples_per_s_per_core: Some(12_345.6),
                                    samples_per_s_per_gpu_watt: Some(1_234.5),
                                },
                                flags: flags.clone(),
                                window_histograms: vec![],
                                samples: vec![],
                            });
                            if b != SIX[0] {
                                ratios.push(Ratio {
                                    model: model.clone(),
                                    batch_size: batch,
                                    load: load.clone(),
                                    backend: b.to_string(),
                                    workers: n,
                                    baseline: SIX[0].to_string(),
                                    p50_ratio: 123.45,
                                    ci_low: 100.01,
                                    ci_high: 999.99,
                                    clear_difference: false,
                                    mean_ratio: 123.45,
                                    mean_ci_low: 100.01,
                                    mean_ci_high: 999.99,
                                    half_width: 4.0,
                                    target_met: false,
                                    missed: Some(crate::results::Miss::Unstable),
                                    rounds: 2,
                                    set_aside_rounds: 0,
                                    rounds_to_target: Some(usize::MAX),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    Results {
        schema_version: crate::results::SCHEMA_VERSION,
        servebench_version: "0".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:00:00Z".into(),
        system: crate::results::System::probe(Default::default()),
        backends: record
            .grid()
            .into_iter()
            .flat_map(|n| SIX.iter().map(move |b| (n, b)))
            .map(|(n, b)| BackendInfo {
                name: b.to_string(),
                engine: "engine 1.0".into(),
                protocol: "http".into(),
                device: "cpu".into(),
                workers: n,
                intra_threads: Some(1),
                details: Default::default(),
                test_peer: *b == "tfserving-grpc",
                cold_start_ms: 1234.0,
                first_request_ms: Some(12_345.6),
                loaded_memory_mb: Some(123_456.7),
                precision: "fp32".into(),
            })
            .collect(),
        baseline: SIX[0].to_string(),
        unavailable: vec![Unavailable {
            backend: "libtorch".into(),
            reason: "not compiled in; build with --features libtorch (needs torch in .venv: scripts/setup), then run harness compare again with it".repeat(2),
        }],
        agreement: SIX
            .iter()
            .map(|b| Agreement {
                model: "resnet18".into(),
                backend: b.to_string(),
                reference: "tfserving-grpc".into(),
                max_abs_diff: 1.23e-4,
                max_rel_diff: 1.23e-4,
                top1_agreement: 1.0,
                passed: false,
                precision: "fp32".into(),
                tolerance: String::new(),
            })
            .collect(),
        results,
        ratios,
        precision_ratios: vec![],
        config: record,
        failed: vec![],
        interrupted: None,
    }
}

#[test]
fn the_default_page_fits_120_columns_with_six_backends() {
    let results = six_backends();
    for (what, text) in [
        ("compare", page(&results, Layout::Narrow)),
        ("run", run_page(&results, false)),
    ] {
        let widest = text.lines().max_by_key(|l| l.chars().count()).unwrap();
        assert!(
            widest.chars().count() <= WIDTH,
            "{what}: {} columns: {widest}\n{text}",
            widest.chars().count()
        );
    }
    // The agreement heading names the reference the rows were checked against, not
    // the configured one that did not run (here candle).
    let text = page(&results, Layout::Narrow);
    assert!(text.contains("Agreement with tfserving-grpc"), "{text}");
    assert!(!text.contains("Agreement with candle"), "{text}");
    // The wide layout is what it was: side by side, far wider.
    let wide = page(&results, Layout::Wide);
    assert!(wide.lines().any(|l| l.chars().count() > 200));
}

#[test]
fn a_worker_grid_fits_120_columns_and_shows_every_count() {
    let results = six_backends_at("1,2");
    let text = page(&results, Layout::Narrow);
    let widest = text.lines().max_by_key(|l| l.chars().count()).unwrap();
    assert!(
        widest.chars().count() <= WIDTH,
        "{} columns: {widest}\n{text}",
        widest.chars().count()
    );
    for needle in [
        "With 1 workers (worker grid 1, 2):",
        "With 2 workers (worker grid 1, 2):",
        "text-cnn, worker grid: CPU %",
        "text-cnn, worker grid: latency in ms",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // Each count's ratio table has each backend once: rows of one count only.
    let one = text.split("With 1 workers").nth(1).unwrap();
    let (one, two) = one.split_once("With 2 workers").unwrap();
    let two = two.split("Cold start").next().unwrap();
    let rows = |t: &str| t.matches("│ onnxruntime ").count();
    assert!(rows(one) > 0 && rows(one) == rows(two), "{text}");
    // One table, every column, in report.md and with --wide.
    let md = page(&results, Layout::Markdown);
    assert!(md.contains("## Worker grid"), "{md}");
    let head = md
        .lines()
        .find(|l| l.starts_with("| model ") && l.contains("per core"))
        .expect("the grid's header");
    for col in [
        "workers",
        "batch",
        "CPU %",
        "MiB",
        "GPU %",
        "GPU MiB",
        "samples/s",
        "per W",
        "requests",
        "mean",
        "p50",
        "p80",
        "p90",
        "p99",
        "time s",
        "qps",
    ] {
        assert!(head.contains(col), "{col}: {head}");
    }
}

#[test]
fn every_backend_has_its_row_and_ratio() {
    let text = page(&six_backends(), Layout::Narrow);
    for b in SIX {
        assert!(text.contains(&format!("│ {b} ")), "{b}: {text}");
    }
    assert!(text.contains("baseline"));
    assert!(text.contains("123.45 [100.01, 999.99] ~"), "{text}");
}
