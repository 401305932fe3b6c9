//! The cross-field rules, driven through the real parser.

use super::*;
use crate::cli::{parse, Command, ParseError};

/// The settings of `harness compare ARGS`, or the one sentence that rejects them.
pub(super) fn compare(args: &[&str]) -> Result<RunConfig, String> {
    let argv = ["harness", "compare"].iter().chain(args);
    match parse(argv.copied()) {
        Ok(cli) => match cli.command {
            Command::Compare(a) => RunConfig::compare(*a).map_err(|e| e.to_string()),
            other => panic!("{other:?}"),
        },
        Err(ParseError::Clap(e)) => Err(e.to_string()),
        Err(ParseError::File(e)) => Err(e.to_string()),
    }
}

pub(super) fn ok(args: &[&str]) -> RunConfig {
    compare(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub(super) fn err(args: &[&str]) -> String {
    compare(args).expect_err("rejected")
}

#[test]
fn defaults_are_filled_in() {
    let c = ok(&[]);
    assert_eq!(c.backends, crate::registry::names());
    assert!(!c.backends_explicit);
    assert_eq!(c.models, [ModelId::TextCnn, ModelId::Resnet50]);
    assert_eq!((c.workers, c.trials, c.max_windows), (1, 5, 100));
    assert_eq!(c.loads, [Load::Closed { concurrency: 1 }]);
    assert_eq!(c.small_batches, [1, 2, 4, 8]);
    assert_eq!(c.large_batches, [1, 10, 100]);
    assert_eq!(c.large_batches_resnet, [1, 8]);
    assert_eq!((c.percentile, c.stability), (50.0, 0.1));
    // The budget is split over the ten points, and within each over the backends.
    assert_eq!((c.target_precision, c.time_budget_s), (0.05, 240.0));
    assert_eq!(c.points().len(), 10);
    assert!((c.point_budget_s - 240.0 / 10.0).abs() < 1e-9);
    assert_eq!(c.point_budget, Duration::from_secs_f64(c.point_budget_s));
    let per_backend = c.point_budget_s / c.backends.len() as f64;
    assert!((c.backend_budget_s - per_backend).abs() < 1e-9);
    assert_eq!(
        c.window,
        Window::Duration {
            seconds: 0.25,
            min_requests: 5
        }
    );
    assert_eq!(
        c.backend_options,
        crate::registry::LabelledOptions::default()
    );
    assert_eq!(
        c.record.backend_options["triton-http"]["http_body"],
        "binary"
    );
    assert_eq!(c.record.backend_options["tfserving-rest"]["format"], "row");
    assert!(!c.record.backend_options.contains_key("candle"));
    assert_eq!(c.stack, "local");
    let q = ok(&["--quick"]);
    assert_eq!(q.models, [ModelId::TextCnn, ModelId::Resnet18]);
    assert_eq!(q.small_batches, [1, 4]);
    assert_eq!((q.time_budget_s, q.points().len()), (30.0, 6));
    let p = ok(&["--target-precision", "2%", "--time-budget", "1m"]);
    assert_eq!((p.target_precision, p.time_budget_s), (0.02, 60.0));
    assert_eq!(ok(&["--target-precision=0.1"]).target_precision, 0.1);
}

#[test]
fn shared_batch_sizes_are_one_point_per_load() {
    let c = ok(&[
        "--models=text-cnn",
        "--small-batches=2,1",
        "--large-batches=1,100",
        "--concurrency=1,2",
    ]);
    let p = c.points();
    assert_eq!(p.len(), 6);
    assert_eq!(
        (p[0].batch, p[0].load),
        (1, Load::Closed { concurrency: 1 })
    );
    assert_eq!(
        (p[1].batch, p[1].load),
        (1, Load::Closed { concurrency: 2 })
    );
    assert_eq!(p.iter().filter(|p| p.batch == 1).count(), 2);
}

#[test]
fn bad_values_get_one_clear_sentence() {
    for (args, want) in [
        (
            &["--backends", "tensorrt"][..],
            "unknown backend \"tensorrt\"; known backends: candle",
        ),
        (
            &["--small-batches", "1,0"],
            "invalid value '0' for '--small-batches",
        ),
        (&["--large-batches", ""], "--large-batches"),
        (
            &["--models", "bert"],
            "[possible values: text-cnn, resnet18, resnet50]",
        ),
        (
            &["--workers", "0"],
            "invalid value '0' for '--workers <N[,N...]>': give a whole number of at least 1 (at most 256)",
        ),
        (
            &["--backends", "candle", "--baseline", "onnxruntime"],
            "not among the backends compared",
        ),
        (
            &["--requests", "10", "--duration", "1"],
            "cannot be used with",
        ),
        (&["--device", "tpu"], "cpu, cuda or cuda:N"),
        (
            &["--percentile", "0"],
            "invalid value '0' for '--percentile <P>'",
        ),
        (&["--stability-percent", "-1"], "--stability-percent"),
        (
            &["--time-budget", "0"],
            "invalid value '0' for '--time-budget",
        ),
        (
            &["--target-precision", "1.5"],
            "above 0 and below 1, such as 0.05 or 5%",
        ),
        (
            &["--target-precision", "0%"],
            "invalid value '0%' for '--target-precision",
        ),
        (&["--arrival", "poisson"], "--request-rate"),
        (
            &["--request-rate", "NaN"],
            "invalid value 'NaN' for '--request-rate",
        ),
        (&["--max-windows", "2"], "give a whole number of at least 3 (at most 1000)"),
        (&["--format", "xml"], "[possible values: table, csv]"),
        (
            &["--concurrency", "1", "--request-rate", "5"],
            "cannot be used with",
        ),
    ] {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn flags_override_the_file_booleans_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "workers = 2\nmodels = [\"resnet18\"]\nquick = true\nstrict = true\nconcurrency = 2\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let c = ok(&["--config", file, "--workers", "3"]);
    assert_eq!(c.workers, 3);
    assert_eq!(c.models, [ModelId::Resnet18]);
    assert!(c.quick && c.strict);
    assert_eq!(c.loads, [Load::Closed { concurrency: 2 }]);
    let c = ok(&["--strict=false", "--config", file, "--quick=false"]);
    assert!(!c.strict && !c.quick);
    // The README's example file.
    std::fs::write(
        &path,
        "backends = [\"candle\", \"onnxruntime\"]\nmodels = [\"text-cnn\", \"resnet18\"]\nworkers = 2\nsmall_batches = [1, 4]\nduration = 2.0\n",
    )
    .unwrap();
    let c = ok(&["--config", file]);
    assert_eq!(c.backends, ["candle", "onnxruntime"]);
    assert_eq!(c.small_batches, [1, 4]);
    assert_eq!(
        c.window,
        Window::Duration {
            seconds: 2.0,
            min_requests: 5
        }
    );
    // The precision target and the time budget, from the file too.
    std::fs::write(&path, "target_precision = 0.02\ntime_budget = \"90s\"\n").unwrap();
    let c = ok(&["--config", file]);
    assert_eq!((c.target_precision, c.time_budget_s), (0.02, 90.0));
    let c = ok(&["--config", file, "--target-precision", "3%"]);
    assert_eq!(c.target_precision, 0.03);
}

/// A backend's own table in the file: read over the flags, for that backend alone.
#[cfg(feature = "triton")]
#[test]
fn a_label_table_gives_one_backend_its_own_options() {
    use adapter_triton::HttpBody;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let file = path.to_str().unwrap();
    std::fs::write(
        &path,
        "backends = [\"triton-http@json\", \"triton-http@bin\", \"candle\"]\n\
         [\"triton-http@json\"]\ntriton_http_body = \"json\"\ndynamic_batching = true\n",
    )
    .unwrap();
    let c = ok(&["--config", file, "--triton-url", "http://127.0.0.1:9000"]);
    let (json, bin) = (
        c.backend_options.get("triton-http@json"),
        c.backend_options.get("triton-http@bin"),
    );
    assert_eq!(
        (json.triton.http_body, bin.triton.http_body),
        (HttpBody::Json, HttpBody::Binary)
    );
    assert!(json.triton.dynamic_batching && !bin.triton.dynamic_batching);
    // The flags hold for both, the table's own settings for one.
    assert_eq!(json.triton.url.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(bin.triton.url, json.triton.url);
    let recorded = &c.record.backend_options;
    assert_eq!(recorded["triton-http@json"]["http_body"], "json");
    assert_eq!(recorded["triton-http@bin"]["http_body"], "binary");
    assert!(!recorded.contains_key("candle"));
    // The table wins over the command line for its backend.
    let c = ok(&["--config", file, "--triton-http-body", "binary"]);
    assert_eq!(
        c.backend_options.get("triton-http@json").triton.http_body,
        HttpBody::Json
    );

    for (text, want) in [
        (
            "[\"triton-http@json\"]\ntriton_http_body = \"json\"\n",
            "gives options to triton-http@json, which is not among the backends run",
        ),
        (
            "backends = [\"triton-http@a\"]\n[\"triton-http@a\"]\nworkers = 2\n",
            "table [triton-http@a]: unexpected argument '--workers'",
        ),
        (
            "[\"triton-http@a\"]\ntriton_http_body = \"xml\"\n",
            "table [triton-http@a]: invalid value 'xml'",
        ),
        ("[model]\nname = 1\n", "table [model] is not a backend name"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = err(&["--config", file]);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn bad_config_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let file = path.to_str().unwrap();
    for (text, want) in [
        ("wrokers = 2\n", "wrokers"),
        ("workers = \"two\"\n", "'two' for '--workers"),
        ("workers = [\n", "unclosed array"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = err(&["--config", file]);
        assert!(
            e.contains("c.toml is not valid") && e.contains(want),
            "{text}: {e}"
        );
    }
    let e = err(&[
        "--config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert!(e.contains("cannot read config file"), "{e}");
}

#[cfg(all(
    feature = "flask",
    feature = "triton",
    feature = "tfserving",
    feature = "kserve",
    feature = "torchserve"
))]
#[test]
fn server_settings_and_the_compose_stack() {
    /// The URL each server backend is given, by backend name.
    fn server_urls(c: &RunConfig) -> std::collections::BTreeMap<&'static str, String> {
        let o = &c.backend_options.common;
        [
            ("flask", &o.flask.url),
            ("triton-http", &o.triton.url),
            ("triton-grpc", &o.triton.grpc_url),
            ("tfserving-rest", &o.tfserving.url),
            ("tfserving-grpc", &o.tfserving.grpc_url),
            ("kserve-v2-http", &o.kserve.url),
            ("kserve-v2-grpc", &o.kserve.grpc_url),
            ("torchserve-rest", &o.torchserve.url),
            ("torchserve-grpc", &o.torchserve.grpc_url),
        ]
        .into_iter()
        .filter_map(|(name, url)| Some((name, url.clone()?)))
        .collect()
    }

    let c = ok(&[
        "--triton-url",
        "http://127.0.0.1:8000/",
        "--tfserving-url=http://127.0.0.1:9501/",
        "--triton-http-body=json",
        "--dynamic-batching",
    ]);
    let triton = &c.backend_options.common.triton;
    assert_eq!(
        (triton.http_body, triton.dynamic_batching),
        (adapter_triton::HttpBody::Json, true)
    );
    assert_eq!(c.record.backend_options["triton-grpc"]["http_body"], "json");
    let urls = server_urls(&c);
    assert_eq!(urls["triton-http"], "http://127.0.0.1:8000");
    assert_eq!(urls["tfserving-rest"], "http://127.0.0.1:9501");
    assert!(!urls.contains_key("flask") && !urls.contains_key("tfserving-grpc"));
    for (args, want) in [
        (
            &["--triton-http-body", "xml"][..],
            "[possible values: json, binary]",
        ),
        (
            &["--tfserving-format", "csv"],
            "[possible values: row, columnar]",
        ),
        (&["--stack", "k8s"], "[possible values: local, compose]"),
        (
            &["--triton-grpc-url", "127.0.0.1:8001"],
            "give an http:// URL with a host and a port",
        ),
        (&["--tfserving-grpc-url", "grpc://x"], "not http://"),
        (&["--tfserving-url", "https://x:8501"], "without TLS"),
    ] {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    for bad in ["127.0.0.1:8000", "https://x", "http://", "http:// x"] {
        let e = err(&["--flask-url", bad]);
        assert!(
            e.contains("--flask-url") && e.contains("http://"),
            "{bad}: {e}"
        );
    }
    // compose: every server backend on its published port; a URL flag still wins.
    let c = ok(&[
        "--stack",
        "compose",
        "--triton-url",
        "http://127.0.0.1:9000",
    ]);
    assert_eq!(c.stack, "compose");
    let urls = server_urls(&c);
    assert_eq!(urls["flask"], "http://127.0.0.1:8080");
    assert_eq!(urls["triton-http"], "http://127.0.0.1:9000");
    assert_eq!(urls["triton-grpc"], "http://127.0.0.1:8001");
    assert_eq!(urls["tfserving-rest"], "http://127.0.0.1:8501");
    assert_eq!(urls["tfserving-grpc"], "http://127.0.0.1:8500");
    #[cfg(feature = "tfserving")]
    assert_eq!(
        c.backend_options.common.tfserving.metrics_url.as_deref(),
        Some(COMPOSE_TFSERVING_METRICS)
    );
    assert_eq!(urls["kserve-v2-http"], "http://127.0.0.1:8090");
    assert_eq!(urls["kserve-v2-grpc"], "http://127.0.0.1:8091");
    assert_eq!(urls["torchserve-rest"], "http://127.0.0.1:8180");
    assert_eq!(urls["torchserve-grpc"], "http://127.0.0.1:7070");
    let o = &c.backend_options.common;
    assert_eq!(
        o.kserve.metrics_url.as_deref(),
        Some("http://127.0.0.1:8092/metrics")
    );
}

#[test]
fn loads_from_flags_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        ok(&["--config", path.to_str().unwrap()]).record.loads
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
    let c = ok(&["--request-rate", "10,20", "--duration", "250ms"]);
    assert_eq!(c.loads.len(), 2);
    assert_eq!(c.loads[0].label(), "10/s poisson");
    assert_eq!(
        c.window,
        Window::Duration {
            seconds: 0.25,
            min_requests: 5
        }
    );
}

#[test]
fn labels_name_two_instances_of_one_backend() {
    let c = ok(&["--backends", "candle@a,candle@b", "--baseline", "candle@b"]);
    assert_eq!(c.backends, ["candle@a", "candle@b"]);
    assert_eq!(crate::registry::backend_kind("candle@a"), "candle");
    for bad in ["candle@", "@a", "candle@a b", "candle@a@b"] {
        let e = err(&["--backends", bad]);
        assert!(e.contains("NAME@LABEL"), "{bad}: {e}");
    }
    let e = err(&["--backends", "candle,candle"]);
    assert!(
        e.contains("given twice") && e.contains("candle@a,candle@b"),
        "{e}"
    );
}

#[test]
fn run_is_one_target() {
    let argv = [
        "harness",
        "run",
        "--backend",
        "candle",
        "--model",
        "resnet18",
        "--batch",
        "8",
        "--concurrency",
        "1,2",
    ];
    let Ok(cli) = parse(argv) else { panic!() };
    let Command::Run(a) = cli.command else {
        panic!()
    };
    let c = RunConfig::run(*a).unwrap();
    assert_eq!(
        (c.backends.as_slice(), c.reference.as_str()),
        (&["candle".to_string()][..], "candle")
    );
    let p = c.plan();
    assert_eq!(p.points.len(), 2);
    assert!(p
        .points
        .iter()
        .all(|p| p.batch == 8 && p.model == ModelId::Resnet18));
    assert!(p.record.large_batches.is_empty());
    let Err(ParseError::Clap(e)) = parse([
        "harness",
        "run",
        "--backend",
        "candle",
        "--model",
        "resnet18",
        "--batch",
        "8",
        "--backends",
        "x",
    ]) else {
        panic!()
    };
    assert!(e.to_string().contains("--backends"), "{e}");
}

#[test]
fn precisions_add_their_batch_and_split_the_budget() {
    let c = ok(&[
        "--quick",
        "--precision",
        "fp32,int8,int8",
        "--backends",
        "candle",
    ]);
    assert_eq!(c.precisions, [Precision::Fp32, Precision::Int8]);
    assert_eq!(c.record.precisions, ["fp32", "int8"]);
    assert_eq!(c.small_batches, [1, 4, 8]);
    assert!((c.backend_budget_s - c.point_budget_s / 2.0).abs() < 1e-9);
    assert_eq!(ok(&["--quick"]).small_batches, [1, 4]);
    let e = err(&["--precision", "fp32,int4"]);
    assert!(
        e.contains("\"int4\"") && e.contains("give fp32, fp16, bf16 or int8"),
        "{e}"
    );
}

#[test]
fn a_relative_fixtures_dir_is_made_absolute() {
    // Managed servers run elsewhere: a relative path would name another directory there.
    let c = ok(&["--fixtures-dir", "some/fixtures"]);
    assert!(c.fixtures_dir.is_absolute(), "{}", c.fixtures_dir.display());
    assert!(c.fixtures_dir.ends_with("some/fixtures"));
}
