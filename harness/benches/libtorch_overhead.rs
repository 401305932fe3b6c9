//! The harness's own cost on libtorch, in process (needs `--features libtorch`).
//!
//! The text-CNN at batch 1, timed two ways with the same model, weights and threads:
//! `bare`, a loop on this thread that builds the input tensor, calls the `tch::nn`
//! model's `forward` under `no_grad` and copies the logits to a host vector; and through
//! the harness (see `common`), which adds the adapter's input check. Target: p50 ratio
//! <= 1.03.

mod common;
mod criterion_main;

use adapter_libtorch::tch;
use criterion::{criterion_group, Criterion};
use fixtures::ModelId;

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

fn overhead(c: &mut Criterion) {
    let (dir, input, threads) = common::text_cnn_batch_1();
    let model = ModelId::TextCnn;

    adapter_libtorch::threads::configure(threads);
    let net =
        adapter_libtorch::Model::load(&dir, model, tch::Device::Cpu, Default::default()).unwrap();
    let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
    let classes = model.classes();
    let data = input.data.clone();
    let bare_call = move || {
        tch::no_grad(|| {
            let x = tch::Tensor::from_data_size(&data, &shape, tch::Kind::Int64);
            let y = net.forward(&x);
            let mut out = vec![0f32; classes];
            y.copy_data(&mut out, classes);
            out
        })
    };

    let backend = adapter_libtorch::open(&common::options(&dir, threads)).unwrap();
    common::bare_against_harness(
        c,
        "text-cnn batch 1, libtorch",
        "bare forward",
        bare_call,
        backend,
        input,
    );
}

criterion_group!(benches, overhead);

fn main() {
    criterion_main::run(&[benches]);
}
