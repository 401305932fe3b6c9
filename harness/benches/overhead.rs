//! The harness's own cost on ONNX Runtime, in process.
//!
//! The text-CNN at batch 1, timed two ways with the same session settings and threads:
//! `bare`, a loop calling `Session::run` directly on this thread, and through the
//! harness (see `common`). Target: p50 ratio <= 1.03.

mod common;
mod criterion_main;

use criterion::{criterion_group, Criterion};

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

fn overhead(c: &mut Criterion) {
    let (dir, input, threads) = common::text_cnn_batch_1();
    let bare_call = common::bare_onnxruntime_call(&dir, &input, threads);

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

fn main() {
    criterion_main::run(&[benches]);
}
