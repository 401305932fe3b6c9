//! `compare --precision`: the text-CNN at fp32, fp16, bf16 and int8 on ONNX Runtime,
//! OpenVINO and libtorch, and on the managed Flask app and Triton, end to end, with
//! agreement per precision against the fp32 reference and the throughput-by-precision
//! table; bad precision values.
//!
//! The test writes its own fixtures directory (the text-CNN's files and their fp16 and
//! int8 conversions by fixtures/precision/convert.py, about 2 s), so it does not depend
//! on what scripts/setup left in fixtures/generated.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixtures_dir, harness, result_files, schema_errors, text, unwrapped, widest_line};

/// A fixtures directory holding the text-CNN and its conversions.
fn text_cnn_fixtures(dir: &Path) {
    let src = fixtures_dir();
    // Generates the shared fixtures if a fresh clone has none yet.
    fixtures::ensure(&src, &[fixtures::ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    std::fs::create_dir_all(dir.join("text-cnn")).unwrap();
    std::fs::copy(src.join("manifest.json"), dir.join("manifest.json")).unwrap();
    for f in ["model.onnx", "model.safetensors"] {
        std::fs::copy(src.join("text-cnn").join(f), dir.join("text-cnn").join(f)).unwrap();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("SERVEBENCH_VENV").map_or(root.join(".venv"), Into::into);
    let python = venv.join("bin/python3");
    let script = root.join("fixtures/precision/convert.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--fixtures-dir",
            dir.to_str().unwrap(),
            "--models",
            "text-cnn",
        ])
        .output()
        .expect("the project's Python runs");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "convert.py failed: {stdout}\n{stderr}"
    );
}

/// `compare` of the text-CNN on `backends` at `precisions`, short windows, against
/// the fixtures in `fx`, results under `results`.
fn compare(fx: &Path, results: &Path, backends: &str, precisions: &str) -> Output {
    compare_with(fx, results, backends, precisions, &[])
}

/// [`compare`] with `extra` flags.
fn compare_with(
    fx: &Path,
    results: &Path,
    backends: &str,
    precisions: &str,
    extra: &[&str],
) -> Output {
    let reference = backends.split(',').next().unwrap();
    let mut args = vec![
        "compare",
        "--quiet",
        "--models",
        "text-cnn",
        "--backends",
        backends,
        "--reference",
        reference,
        "--precision",
        precisions,
        "--small-batches",
        "8",
        "--large-batches",
        "8",
        "--duration",
        "20ms",
        "--trials",
        "2",
        "--time-budget",
        "6s",
        "--fixtures-dir",
        fx.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    harness(&args)
}

/// [`compare`], which must succeed: its results document (valid against the schema)
/// and stdout.
fn compare_ok(
    fx: &Path,
    results: &Path,
    backends: &str,
    precisions: &str,
) -> (serde_json::Value, String) {
    let out = compare(fx, results, backends, precisions);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(result_files(results).pop().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    (doc, stdout)
}

/// The agreement row of `backend` in `doc`: at `precision`, against `reference`, passed,
/// with its tolerance printed.
fn agreed(doc: &serde_json::Value, backend: &str, precision: &str, reference: &str) {
    let a = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["backend"] == backend)
        .unwrap_or_else(|| panic!("no agreement row for {backend}: {}", doc["agreement"]));
    assert_eq!(a["precision"], precision);
    assert_eq!(a["reference"], reference);
    assert!(a["passed"].as_bool().unwrap(), "{a}");
    assert!(a["top1_agreement"].as_f64().unwrap() >= 0.5, "{a}");
    assert!(a["tolerance"].as_str().unwrap().starts_with("atol "), "{a}");
}

#[test]
fn every_precision_runs_where_it_is_native_and_agrees_with_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fixtures");
    text_cnn_fixtures(&fx);
    let results = dir.path().join("results");
    let (doc, stdout) = compare_ok(
        &fx,
        &results,
        "onnxruntime,openvino,libtorch",
        "fp32,fp16,bf16,int8",
    );
    assert_eq!(
        doc["config"]["precisions"],
        serde_json::json!(["fp32", "fp16", "bf16", "int8"])
    );

    // Measured: what each engine runs natively, each row with its precision.
    let mut rows: Vec<(String, String)> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["backend"].as_str().unwrap().into(),
                r["precision"].as_str().unwrap().into(),
            )
        })
        .collect();
    rows.sort();
    rows.dedup();
    let want = [
        ("libtorch", "fp32"),
        ("libtorch@bf16", "bf16"),
        ("onnxruntime", "fp32"),
        ("onnxruntime@fp16", "fp16"),
        ("onnxruntime@int8", "int8"),
        ("openvino", "fp32"),
        ("openvino@bf16", "bf16"),
        ("openvino@int8", "int8"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(b, p)| (b.to_string(), p.to_string()))
        .collect();
    assert_eq!(rows, want, "{stdout}");

    // Not measured, with the reason: bf16 on ONNX Runtime, fp16 on OpenVINO and libtorch.
    let not: Vec<String> = doc["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}: {}",
                u["backend"].as_str().unwrap(),
                u["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        not.iter()
            .any(|u| u.starts_with("onnxruntime@bf16: ") && u.contains("bf16")),
        "{not:?}"
    );
    assert!(
        not.iter()
            .any(|u| u.starts_with("openvino@fp16: ") && u.contains("fp16")),
        "{not:?}"
    );
    assert!(
        not.iter()
            .any(|u| u.starts_with("libtorch@int8: ") && u.contains("fp32/bf16")),
        "{not:?}"
    );

    // Agreement per precision, against the fp32 reference, each with its tolerance.
    for (backend, precision) in want.iter().filter(|(b, _)| b != "onnxruntime") {
        agreed(&doc, backend, precision, "onnxruntime");
    }

    // The reduced precisions against fp32 of the same backend, with intervals.
    let ratios = doc["precision_ratios"].as_array().unwrap();
    for (backend, _) in want.iter().filter(|(b, _)| b.contains('@')) {
        let r = ratios
            .iter()
            .find(|r| r["backend"] == backend.as_str())
            .unwrap();
        let base = backend.split('@').next().unwrap();
        assert_eq!(r["baseline"], base);
        assert!(r["mean_ci_low"].as_f64().unwrap() <= r["mean_ratio"].as_f64().unwrap());
    }

    let page = unwrapped(&stdout);
    assert!(
        page.contains("Throughput by precision: samples/s at batch 8"),
        "{stdout}"
    );
    assert!(
        page.contains("onnxruntime(int8)") && page.contains("openvino(bf16)"),
        "{stdout}"
    );
    assert!(page.contains("Tolerance by precision"), "{stdout}");
    let page: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("Results: "))
        .collect();
    assert!(widest_line(&page.join("\n")) <= 120, "{stdout}");
    let report =
        std::fs::read_to_string(result_files(&results)[0].with_file_name("report.md")).unwrap();
    assert!(report.contains("## Throughput by precision"), "{report}");
}

/// The managed servers at int8: the Flask app and Triton's Python backend load
/// model.int8.onnx (a server each per precision), agreeing with the Flask app at fp32.
#[test]
fn managed_servers_serve_the_conversions() {
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fixtures");
    text_cnn_fixtures(&fx);
    let results = dir.path().join("results");
    let (doc, _) = compare_ok(&fx, &results, "flask,triton-http", "fp32,int8");
    for backend in ["flask@int8", "triton-http@int8"] {
        agreed(&doc, backend, "int8", "flask");
        let b = doc["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == backend)
            .unwrap_or_else(|| panic!("{backend} not opened: {}", doc["unavailable"]));
        assert_eq!(b["details"]["precision"], "int8", "{b}");
    }
    let triton = &doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "triton-http@int8")
        .unwrap()["details"]["variant"];
    assert!(
        triton.as_str().unwrap().contains("model.int8.onnx"),
        "{triton}"
    );
    // Both fp32 and int8 rows were measured on both servers.
    let rows: std::collections::BTreeSet<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows.into_iter().collect::<Vec<_>>(),
        ["flask", "flask@int8", "triton-http", "triton-http@int8"]
    );
}

/// A Triton given by URL serving every precision at once (the compose stack's layout:
/// `text-cnn_int8` beside `text-cnn`): `triton-http@int8` asks for `text-cnn_int8`,
/// whose statistics and Prometheus metrics (labelled `text-cnn_int8`) time its
/// requests, and agrees with fp32 within int8's tolerance.
#[test]
fn a_triton_given_by_url_is_asked_for_the_conversion_by_its_name() {
    use adapter_triton::server::{Install, ManagedTriton, ServerConfig, READY_TIMEOUT};
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fixtures");
    text_cnn_fixtures(&fx);
    let server = ManagedTriton::start(&ServerConfig {
        install: Install::find().expect("nvidia-pytriton in .venv-triton: run scripts/setup"),
        fixtures_dir: fx.clone(),
        models: vec![fixtures::ModelId::TextCnn],
        user_models: vec![],
        instances: 1,
        intra_threads: 1,
        dynamic_batching: false,
        precision: Default::default(),
        conversions: true,
        ready_timeout: READY_TIMEOUT,
    })
    .unwrap();
    let results = dir.path().join("results");
    let (url, metrics) = (server.http_url(), server.metrics_url());
    let out = compare_with(
        &fx,
        &results,
        "triton-http",
        "fp32,int8",
        &["--triton-url", &url, "--triton-metrics-url", &metrics],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(result_files(&results).pop().unwrap()).unwrap(),
    )
    .unwrap();
    agreed(&doc, "triton-http@int8", "int8", "triton-http");
    let a = doc["agreement"][0]["max_abs_diff"].as_f64().unwrap();
    assert!(a > 0.0, "int8 answered exactly fp32's logits: {doc}");
    // Triton's statistics and metrics of the model each backend asked for:
    // text-cnn_int8's compute time and request count for triton-http@int8's rows.
    for backend in ["triton-http", "triton-http@int8"] {
        let row = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["backend"] == backend)
            .unwrap_or_else(|| panic!("no row of {backend}: {stdout}"));
        assert!(
            row["server"]["compute_infer_ms"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        let m = &row["server_metrics"];
        assert!(
            m["nv_inference_request_success"].as_f64().unwrap_or(0.0) > 0.0
                && m["nv_inference_compute_infer_duration_us"]
                    .as_f64()
                    .unwrap_or(0.0)
                    > 0.0,
            "{backend}'s metrics are missing: {row}"
        );
    }
    drop(server);
}

#[test]
fn a_bad_precision_is_one_sentence_and_a_failure() {
    for bad in ["int4", "fp32,", "FP64"] {
        let out = harness(&["compare", "--precision", bad, "--backends", "candle"]);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{bad}: {stdout}\n{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains("--precision"),
            "{bad}: {stderr}"
        );
        assert!(
            stderr.contains("give fp32, fp16, bf16 or int8"),
            "{bad}: {stderr}"
        );
    }
    // The config file's key is read the same way.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("servebench.toml");
    std::fs::write(&file, "precision = [\"fp32\", \"int3\"]\n").unwrap();
    let out = harness(&[
        "compare",
        "--config",
        file.to_str().unwrap(),
        "--backends",
        "candle",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("int3") && stderr.contains("give fp32, fp16, bf16 or int8"),
        "{stderr}"
    );
}
