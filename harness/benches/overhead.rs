//! The harness's own cost on ONNX Runtime, in process.
//!
//! The text-CNN at batch 1, timed two ways with the same session settings and threads:
//! `bare`, a loop calling `Session::run` directly on this thread, and through the
//! harness (see `common`). Target: p50 ratio <= 1.03.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use fixtures::{ModelFiles, ModelId};
use ort::value::TensorRef;

fn overhead(c: &mut Criterion) {
    let (dir, input, threads) = common::text_cnn_batch_1();
    let ids = input.to_i64().unwrap();
    let shape = input.shape.clone();

    let lib = adapter_onnxruntime::load_library().expect("ONNX Runtime (run scripts/setup)");
    let mut session = adapter_onnxruntime::build_session(
        &lib.environment,
        &ModelFiles::new(&dir, ModelId::TextCnn).onnx,
        threads,
    )
    .unwrap();
    let bare_call = move || {
        let out = session
            .run(ort::inputs![TensorRef::from_array_view((
                shape.clone(),
                &ids[..]
            ))
            .unwrap()])
            .unwrap();
        let (_, logits) = out[0].try_extract_tensor::<f32>().unwrap();
        logits.to_vec()
    };

    let backend = adapter_onnxruntime::open(&common::options(&dir, threads)).unwrap();
    common::bare_against_harness(
        c,
        "text-cnn batch 1, onnxruntime",
        "bare session.run",
        bare_call,
        backend,
        input,
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
