//! End to end with OpenVINO (`--features openvino`, on by default) against the real
//! engine of the `openvino` wheel that `scripts/setup` installs: agreement with candle on
//! every fixture model, a quick compare beside candle, and bad requests counted by kind.
//!
//! OpenVINO is one of the backends the set-up always provides: without its wheel these
//! tests fail with the command that installs it, they never skip.

mod common;
mod error_kinds;

use std::sync::Arc;

use common::{harness, has_ratio_row, result_files, schema_errors, text};
use contract::{Backend, Device, OpenOptions, Tensor};
use error_kinds::assert_kind;
use fixtures::ModelId;
use harness::config::{DEFAULT_ATOL, DEFAULT_RTOL};
use harness::{agreement, registry};

/// Fails the test, with the fix, when the wheel is not installed.
fn require_openvino() {
    if let Err(e) = adapter_openvino::find_library() {
        panic!(
            "these tests need the openvino wheel that `scripts/setup` installs into .venv \
             (or set {} to its openvino/libs directory): {e}",
            adapter_openvino::LIBS_ENV
        );
    }
}

fn open(name: &str, models: &[ModelId]) -> Arc<dyn Backend> {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, models, fixtures::DEFAULT_SEED).expect("fixtures generate");
    let common = OpenOptions {
        models: models.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: dir,
        workers: 1,
        intra_threads: contract::default_intra_threads(1),
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    };
    registry::open(name, &common, &registry::BackendOptions::default())
        .unwrap_or_else(|e| panic!("{name} must open: {e}"))
}

async fn logits(backend: &dyn Backend, model: ModelId) -> Vec<f32> {
    let input = fixtures::inputs::batch(model, 3, 7);
    let request = backend.prepare(model.name(), vec![input]).unwrap();
    let out = backend.infer(&request).await.unwrap();
    assert_eq!(out[0].shape, vec![3, model.classes()], "{model}");
    out[0].to_f32().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openvino_agrees_with_candle_on_every_model_in_f32() {
    require_openvino();
    let candle = open("candle", &ModelId::ALL);
    let openvino = open(registry::OPENVINO, &ModelId::ALL);
    let d = openvino.describe();
    assert!(d.engine.starts_with("openvino 2026.4.1"), "{d:?}");
    assert_eq!(d.details["inference_precision"], "f32", "{d:?}");
    for model in ModelId::ALL {
        let want = logits(&*candle, model).await;
        let got = logits(&*openvino, model).await;
        let (abs, rel, top1, passed) =
            agreement::compare(&got, &want, model.classes(), DEFAULT_ATOL, DEFAULT_RTOL).unwrap();
        println!(
            "openvino vs candle on {model}: max abs {abs:.2e}, max rel {rel:.2e}, top-1 {top1}"
        );
        assert!(passed, "{model}: max abs diff {abs} (rel {rel})");
        assert_eq!(top1, 1.0, "{model}");
        // bf16 would be ~1e-2 off: f32 inference precision is what makes this hold.
        assert!(
            abs < 1e-3,
            "{model}: max abs diff {abs}: not computed in f32?"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_counted_by_kind() {
    require_openvino();
    let backend = open(registry::OPENVINO, &[ModelId::TextCnn]);
    let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 7);

    let request = backend.prepare("resnet18", vec![good.clone()]).unwrap();
    assert_kind(
        "openvino",
        "unknown model",
        "model not loaded",
        backend.infer(&request).await,
    );

    let values: Vec<f32> = vec![0.0; 2 * 3];
    let wrong = Tensor::from_f32(fixtures::INPUT_NAME, vec![2, 3], &values);
    let request = backend.prepare("text-cnn", vec![wrong]).unwrap();
    assert_kind(
        "openvino",
        "wrong shape",
        "f32 [2, 3]",
        backend.infer(&request).await,
    );

    // The backend still answers after both failures.
    let request = backend.prepare("text-cnn", vec![good]).unwrap();
    let out = backend.infer(&request).await.unwrap();
    assert_eq!(out[0].shape, vec![2, ModelId::TextCnn.classes()]);
}

#[test]
fn quick_compare_puts_openvino_beside_candle() {
    require_openvino();
    let out_dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "compare",
        "--quick",
        "--time-budget",
        "10s",
        // One request a window at least: candle's large text-CNN batches take seconds
        // a request in a debug build; this keeps the test short.
        "--min-requests",
        "1",
        "--quiet",
        "--backends",
        "candle,openvino",
        "--models",
        "text-cnn",
        "--results-dir",
        out_dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(has_ratio_row(&stdout, "openvino"), "{stdout}");

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
        .filter(|a| a["backend"] == "openvino")
        .collect();
    assert_eq!(agreement.len(), 1, "{doc:#}");
    assert_eq!(agreement[0]["passed"], true, "{}", agreement[0]);
    let rows: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == "openvino")
        .collect();
    assert!(!rows.is_empty(), "no openvino rows");
    for r in rows {
        assert_eq!(r["errors"], 0, "{r}");
    }
    let engine = doc["system"]["engines"]["openvino"].as_str().unwrap();
    assert!(engine.starts_with("openvino 2026.4.1"), "{engine}");
}

#[test]
fn harness_backends_lists_openvino() {
    require_openvino();
    let out = harness(&["backends"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("openvino"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("available: openvino 2026.4.1"), "{stdout}");
}
