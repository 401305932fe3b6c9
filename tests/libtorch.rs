//! End to end with libtorch compiled in (`--features libtorch`): the real binary
//! compares libtorch beside candle and ONNX Runtime, starts without `LD_LIBRARY_PATH`,
//! and reports damaged model files in one sentence.

mod common;

use std::path::Path;
use std::process::Command;

use common::{harness, has_ratio_row, result_files, schema_errors, text};
use fixtures::{ModelFiles, ModelId};

#[test]
fn quick_compare_puts_libtorch_beside_candle_and_onnxruntime() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "compare",
        "--quick",
        "--time-budget",
        "10s",
        // One request a window at least, as before: the slowest points (candle
        // at large batches, seconds a request in a debug build) keep the suite short.
        "--min-requests",
        "1",
        "--quiet",
        "--backends",
        "candle,onnxruntime,libtorch",
        "--models",
        "text-cnn,resnet18",
        "--results-dir",
        out_dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for title in [
        "text-cnn, small batches",
        "text-cnn, large batches",
        "resnet18, small batches",
        "resnet18, large batches",
    ] {
        assert!(stdout.contains(title), "missing {title:?} in:\n{stdout}");
    }
    assert!(has_ratio_row(&stdout, "libtorch"), "{stdout}");

    let files = result_files(out_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");

    let agreement: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["backend"] == "libtorch")
        .collect();
    assert_eq!(agreement.len(), 2, "{doc:#}");
    for a in agreement {
        assert_eq!(a["reference"], "candle");
        assert_eq!(a["passed"], true, "{a}");
        assert_eq!(a["top1_agreement"], 1.0, "{a}");
    }
    let results = doc["results"].as_array().unwrap();
    for model in ["text-cnn", "resnet18"] {
        let large = if model == "text-cnn" {
            "large_batches"
        } else {
            "large_batches_resnet"
        };
        for class in ["small_batches", large] {
            // A table is a view: the rows whose batch size is in its list.
            let batches = doc["config"][class].as_array().unwrap();
            let rows: Vec<_> = results
                .iter()
                .filter(|r| {
                    r["backend"] == "libtorch"
                        && r["model"] == model
                        && batches.contains(&r["batch_size"])
                })
                .collect();
            assert!(!rows.is_empty(), "no libtorch {model} {class} rows");
            for r in rows {
                assert_eq!(r["errors"], 0, "{r}");
                assert!(r["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{r}");
            }
        }
    }
    let libtorch_points = results
        .iter()
        .filter(|r| r["backend"] == "libtorch")
        .count();
    let libtorch_ratios = doc["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.to_string().contains("\"libtorch\""))
        .count();
    assert_eq!(libtorch_ratios, libtorch_points, "{:#}", doc["ratios"]);

    let backend = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "libtorch")
        .unwrap();
    assert_eq!(backend["workers"], 1, "{backend}");
    assert!(backend["intra_threads"].as_u64().unwrap() >= 1, "{backend}");
    let engine = doc["system"]["engines"]["libtorch"].as_str().unwrap();
    assert!(
        engine.starts_with("libtorch 2.13.0") && engine.contains("tch 0.26.0"),
        "{engine}"
    );
}

#[test]
fn the_binary_finds_its_libtorch_without_ld_library_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("backends")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("libtorch")).unwrap();
    assert!(line.contains("available: libtorch 2.13.0"), "{stdout}");
}

/// Runs `compare` on a damaged private copy of the text-CNN fixtures with libtorch
/// alone; checks that it failed cleanly and returns stderr.
fn fails_on(damage: fn(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    fixtures::ensure(dir.path(), &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    damage(&ModelFiles::new(dir.path(), ModelId::TextCnn).safetensors);
    let results = tempfile::tempdir().unwrap();
    let out = harness(&[
        "compare",
        "--quiet",
        "--results-dir",
        results.path().to_str().unwrap(),
        "--fixtures-dir",
        dir.path().to_str().unwrap(),
        "--models",
        "text-cnn",
        "--backends",
        "libtorch",
        "--reference",
        "libtorch",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error_lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(result_files(results.path()).is_empty());
    stderr
}

#[test]
fn damaged_safetensors_are_load_errors_naming_the_file() {
    let e = fails_on(|p| std::fs::remove_file(p).unwrap());
    assert!(
        e.contains("model.safetensors") && e.contains("missing"),
        "{e}"
    );
    // Same size, garbled header: the fixtures' SHA-256 check at start names the file
    // before any engine loads it.
    let e = fails_on(|p| {
        let mut bytes = std::fs::read(p).unwrap();
        for (i, b) in bytes.iter_mut().take(64).enumerate() {
            *b = 0xA5 ^ i as u8;
        }
        std::fs::write(p, &bytes).unwrap();
    });
    assert!(
        e.contains("model.safetensors has sha256") && e.contains("but the manifest records"),
        "{e}"
    );
}
