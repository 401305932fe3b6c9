//! Conformance: every backend that can run here gives the reference's outputs on all
//! three fixture models, with the tolerance `compare` uses by default.
//!
//! Backends are taken from the harness's registry, so a new adapter joins this suite
//! by its registration line. A backend that is unavailable on this machine is named in
//! the output and skipped, except those this repository's set-up always provides
//! (candle, ONNX Runtime, Flask/Gunicorn and Triton over HTTP and gRPC, which start their
//! own servers on loopback, and libtorch in a build with its feature): for those,
//! unavailability fails the test.

use std::sync::Arc;

use contract::{Backend, Device, OpenOptions};
use fixtures::ModelId;
use harness::config::{DEFAULT_ATOL, DEFAULT_RTOL};
use harness::{agreement, registry};

const REFERENCE: &str = "candle";
#[cfg(not(servebench_libtorch))]
const ALWAYS_AVAILABLE: &[&str] = &[
    "candle",
    "onnxruntime",
    "flask",
    "triton-http",
    "triton-grpc",
];
#[cfg(servebench_libtorch)]
const ALWAYS_AVAILABLE: &[&str] = &[
    "candle",
    "onnxruntime",
    "flask",
    "triton-http",
    "triton-grpc",
    "libtorch",
];
const BATCH: usize = 3;

fn open(name: &str) -> Result<Arc<dyn Backend>, contract::BackendError> {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &ModelId::ALL, fixtures::DEFAULT_SEED).expect("fixtures generate");
    let common = OpenOptions {
        models: ModelId::ALL.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: dir,
        workers: 1,
        intra_threads: contract::default_intra_threads(1),
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    };
    registry::open(name, &common, &registry::BackendOptions::default())
}

async fn logits(backend: &dyn Backend, model: ModelId) -> Vec<f32> {
    let input = fixtures::inputs::batch(model, BATCH, 7);
    let request = backend.prepare(model.name(), vec![input]).unwrap();
    let out = backend.infer(&request).await.unwrap();
    assert_eq!(out[0].shape, vec![BATCH, model.classes()], "{model}");
    out[0].to_f32().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_available_backend_agrees_with_the_reference_on_every_model() {
    let reference = open(REFERENCE).expect("the reference always opens");
    let mut checked = Vec::new();
    for name in registry::names().into_iter().filter(|&n| n != REFERENCE) {
        let backend = match open(name) {
            Ok(b) => b,
            Err(e) if !ALWAYS_AVAILABLE.contains(&name) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
            Err(e) => panic!("{name} must be available after scripts/setup: {e}"),
        };
        for model in ModelId::ALL {
            let want = logits(&*reference, model).await;
            let got = logits(&*backend, model).await;
            let (abs, rel, top1, passed) =
                agreement::compare(&got, &want, model.classes(), DEFAULT_ATOL, DEFAULT_RTOL)
                    .unwrap();
            eprintln!("{name} vs {REFERENCE} on {model}: max abs {abs:.2e}, max rel {rel:.2e}, top-1 {top1}");
            assert!(passed, "{name} on {model}: max abs diff {abs} (rel {rel})");
            assert_eq!(top1, 1.0, "{name} on {model}");
            checked.push((name, model));
        }
    }
    for name in ALWAYS_AVAILABLE.iter().filter(|&&n| n != REFERENCE) {
        let models = checked.iter().filter(|(n, _)| n == name).count();
        assert_eq!(models, ModelId::ALL.len(), "{name}: {checked:?}");
    }
}
