//! End to end: `harness compare --quick` through the real binary, on the real engines
//! (candle and ONNX Runtime), with its JSON checked against the published schema.

mod common;

use common::{harness, result_files, schema_errors, text};

#[test]
fn quick_compare_measures_both_backends_on_both_models() {
    let out_dir = tempfile::tempdir().unwrap();
    let json_path = out_dir.path().join("extra").join("run.json");
    let out = harness(&[
        "compare",
        "--quick",
        "--quiet",
        "--backends",
        "candle,onnxruntime",
        "--models",
        "text-cnn,resnet18",
        "--results-dir",
        out_dir.path().to_str().unwrap(),
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The terminal shows one table per model and batch class, with ratio columns.
    for title in [
        "text-cnn, small batches",
        "text-cnn, large batches",
        "resnet18, small batches",
        "resnet18, large batches",
    ] {
        assert!(stdout.contains(title), "missing {title:?} in:\n{stdout}");
    }
    assert!(stdout.contains("onnxruntime ratio"), "{stdout}");

    // The results directory and --json hold the same complete document.
    let files = result_files(out_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let extra: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(doc, extra);
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");

    // Both backends agree with the reference on both models, and were both measured.
    let agreement = doc["agreement"].as_array().unwrap();
    assert_eq!(agreement.len(), 2, "{agreement:#?}");
    for a in agreement {
        assert_eq!(a["backend"], "onnxruntime");
        assert_eq!(a["reference"], "candle");
        assert_eq!(a["passed"], true, "{a}");
        assert_eq!(a["top1_agreement"], 1.0, "{a}");
    }
    let results = doc["results"].as_array().unwrap();
    for backend in ["candle", "onnxruntime"] {
        for model in ["text-cnn", "resnet18"] {
            for class in ["small", "large"] {
                let rows: Vec<_> = results
                    .iter()
                    .filter(|r| {
                        r["backend"] == backend && r["model"] == model && r["batch_class"] == class
                    })
                    .collect();
                assert!(!rows.is_empty(), "no {backend} {model} {class} rows");
                for r in rows {
                    assert_eq!(r["errors"], 0, "{r}");
                    assert!(r["requests"].as_u64().unwrap() >= 2, "{r}");
                    let l = &r["latency_ms"];
                    let (p50, p99) = (l["p50"].as_f64().unwrap(), l["p99"].as_f64().unwrap());
                    assert!(p50 > 0.0 && p50 <= p99, "{r}");
                }
            }
        }
    }
    // Every onnxruntime point has a ratio against the baseline (candle, listed first).
    assert_eq!(doc["baseline"], "candle");
    let ratios = doc["ratios"].as_array().unwrap();
    let ort_points = results
        .iter()
        .filter(|r| r["backend"] == "onnxruntime")
        .count();
    assert_eq!(ratios.len(), ort_points);
    // The effective settings and engine versions are recorded.
    for b in doc["backends"].as_array().unwrap() {
        assert_eq!(b["workers"], 1, "{b}");
        assert!(b["intra_threads"].as_u64().unwrap() >= 1, "{b}");
    }
    let engines = &doc["system"]["engines"];
    assert!(
        engines["onnxruntime"]
            .as_str()
            .unwrap()
            .starts_with("onnxruntime 1."),
        "{engines}"
    );
    assert!(engines["candle"].as_str().unwrap().starts_with("candle "));
}
