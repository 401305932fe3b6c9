//! The libtorch backend through the contract: describe, infer on every fixture model,
//! bad requests and missing model files. Agreement with the reference backend is
//! checked by the workspace's conformance test (`tests/agreement.rs`).

use contract::{Device, OpenOptions, Tensor};
use fixtures::{ModelId, INPUT_NAME};

fn options(models: &[ModelId], dir: std::path::PathBuf, workers: usize) -> OpenOptions {
    OpenOptions {
        models: models.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: dir,
        workers,
        intra_threads: 1,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_every_fixture_model_from_two_executors() {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &ModelId::ALL, fixtures::DEFAULT_SEED).unwrap();
    let backend = adapter_libtorch::open(&options(&ModelId::ALL, dir, 2)).unwrap();
    let d = backend.describe();
    assert_eq!(
        (d.name.as_str(), d.workers, d.intra_threads),
        ("libtorch", 2, Some(1))
    );
    assert!(
        d.engine.starts_with("libtorch 2.13.0") && d.engine.contains("(tch 0.26.0)"),
        "{d:?}"
    );
    assert_eq!(d.details["inter_op_threads"], "1", "{d:?}");
    backend.health().await.unwrap();
    for model in ModelId::ALL {
        let request = backend
            .prepare(model.name(), vec![fixtures::inputs::batch(model, 2, 3)])
            .unwrap();
        let out = backend.infer(&request).await.unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].shape, vec![2, model.classes()], "{model}");
        let logits = out[0].to_f32().unwrap();
        assert!(logits.iter().all(|v| v.is_finite()), "{model}");
        // The same sample gives the same logits at batch 1 and batch 2.
        let single = backend
            .prepare(model.name(), vec![fixtures::inputs::batch(model, 1, 3)])
            .unwrap();
        let one = backend.infer(&single).await.unwrap()[0].to_f32().unwrap();
        for (a, b) in one.iter().zip(&logits) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{model}: {a} vs {b}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_bad_input_and_the_executor_survives() {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    let backend = adapter_libtorch::open(&options(&[ModelId::TextCnn], dir, 1)).unwrap();
    let wrong = Tensor::from_i64(INPUT_NAME, vec![1, 599], &[1; 599]);
    let out_of_vocab = Tensor::from_i64(INPUT_NAME, vec![1, 600], &[5000; 600]);
    for input in [wrong, out_of_vocab] {
        let request = backend.prepare("text-cnn", vec![input]).unwrap();
        let e = backend.infer(&request).await.unwrap_err();
        assert_eq!(e.kind(), "bad_input", "{e}");
    }
    let request = backend
        .prepare(
            "resnet18",
            vec![fixtures::inputs::batch(ModelId::TextCnn, 1, 1)],
        )
        .unwrap();
    assert_eq!(
        backend.infer(&request).await.unwrap_err().kind(),
        "unknown_model"
    );
    let ok = backend
        .prepare(
            "text-cnn",
            vec![fixtures::inputs::batch(ModelId::TextCnn, 1, 1)],
        )
        .unwrap();
    backend.infer(&ok).await.unwrap();
}

#[test]
fn a_missing_model_file_fails_open_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = adapter_libtorch::open(&options(&[ModelId::Resnet18], dir.path().into(), 1))
        .err()
        .unwrap();
    assert_eq!(e.kind(), "model_load");
    let text = e.to_string();
    assert!(
        text.contains("resnet18") && text.contains("model.safetensors"),
        "{text}"
    );
}
