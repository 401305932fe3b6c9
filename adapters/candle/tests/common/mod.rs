//! Shared by the integration tests: generated fixtures and a backend opener.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use contract::{Backend, BackendError, Device, OpenOptions, Tensor};
use fixtures::ModelId;

/// The fixtures of every model, generated once into cargo's scratch directory for
/// integration tests (`target/tmp`), so that runs after the first reuse them.
pub fn fixtures_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adapter-candle-fixtures");
        fixtures::ensure(&dir, &ModelId::ALL, fixtures::DEFAULT_SEED).expect("fixtures generate");
        dir
    })
}

/// Options for `models` from `dir` on the CPU.
pub fn options(dir: &Path, models: &[&str], workers: usize, intra_threads: usize) -> OpenOptions {
    OpenOptions {
        models: models.iter().map(|m| m.to_string()).collect(),
        fixtures_dir: dir.to_path_buf(),
        workers,
        intra_threads,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

/// Opens candle on the generated fixtures.
pub fn open(models: &[&str], workers: usize, intra_threads: usize) -> Arc<dyn Backend> {
    adapter_candle::open(&options(fixtures_dir(), models, workers, intra_threads))
        .expect("candle opens")
}

/// The error `open` gives (it must fail).
pub fn open_error(opts: &OpenOptions) -> BackendError {
    match adapter_candle::open(opts) {
        Ok(_) => panic!("open succeeded with {opts:?}"),
        Err(e) => e,
    }
}

/// One inference of `input` on `model`, returning the logits.
pub async fn infer(backend: &dyn Backend, model: ModelId, input: Tensor) -> Tensor {
    let request = backend.prepare(model.name(), vec![input]).unwrap();
    let mut out = backend.infer(&request).await.expect("inference succeeds");
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// Index of the largest value of each row of `[rows, classes]` logits.
pub fn top1(logits: &Tensor) -> Vec<usize> {
    let classes = logits.shape[1];
    logits
        .to_f32()
        .unwrap()
        .chunks(classes)
        .map(|row| {
            (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap()
        })
        .collect()
}
