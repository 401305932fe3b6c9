//! The harness's own cost on libtorch, in process (needs `--features libtorch`).
//!
//! libtorch on the text-CNN at batch 1, timed two ways with the same model, weights
//! and threads:
//! - `bare`: a loop on this thread that builds the input tensor, calls the `tch::nn`
//!   model's `forward` under `no_grad` and copies the logits to a host vector;
//! - `harness`: `Backend::infer` through the closed-loop generator, i.e. the async
//!   runtime, the executor thread of the blocking pool and its channels, plus the
//!   adapter's input check.
//!
//! Criterion reports both; afterwards the bench prints both p50s, taken the same way
//! (one histogram sample per call), and their ratio. Target: ratio <= 1.03.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_libtorch::tch;
use contract::{Device, OpenOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use fixtures::ModelId;
use harness::config::Window;
use harness::load;

const CALLS_FOR_P50: u64 = 3000;

fn overhead(c: &mut Criterion) {
    let dir = fixtures::default_dir();
    let model = ModelId::TextCnn;
    fixtures::ensure(&dir, &[model], fixtures::DEFAULT_SEED).expect("fixtures");
    let threads = contract::default_intra_threads(1);
    let input = fixtures::inputs::batch(model, 1, fixtures::DEFAULT_SEED);

    adapter_libtorch::threads::configure(threads);
    let net = adapter_libtorch::Model::load(&dir, model, tch::Device::Cpu).unwrap();
    let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
    let classes = model.classes();
    let bare_call = || {
        tch::no_grad(|| {
            let x = tch::Tensor::from_data_size(&input.data, &shape, tch::Kind::Int64);
            let y = net.forward(&x);
            let mut out = vec![0f32; classes];
            y.copy_data(&mut out, classes);
            out
        })
    };

    let backend = adapter_libtorch::open(&OpenOptions {
        models: vec![model.name().into()],
        fixtures_dir: dir.clone(),
        workers: 1,
        intra_threads: threads,
        device: Device::Cpu,
        server_urls: Default::default(),
    })
    .unwrap();
    let request = Arc::new(
        backend
            .prepare(
                model.name(),
                vec![fixtures::inputs::batch(model, 1, fixtures::DEFAULT_SEED)],
            )
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let through_harness = |n: u64| {
        rt.block_on(load::closed_loop(
            backend.clone(),
            request.clone(),
            1,
            Window::Requests(n),
        ))
    };

    let mut group = c.benchmark_group("text-cnn batch 1, libtorch");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bare forward", |b| b.iter(bare_call));
    group.bench_function("through the harness", |b| {
        b.iter_custom(|n| {
            let t0 = Instant::now();
            through_harness(n);
            t0.elapsed()
        })
    });
    group.finish();

    // p50s taken the same way for both: one histogram sample per call.
    let mut bare = load::histogram();
    for _ in 0..CALLS_FOR_P50 {
        let t0 = Instant::now();
        bare_call();
        bare.saturating_record(t0.elapsed().as_micros() as u64);
    }
    let harness = through_harness(CALLS_FOR_P50).histogram;
    let (b50, h50) = (bare.value_at_quantile(0.5), harness.value_at_quantile(0.5));
    eprintln!(
        "p50 over {CALLS_FOR_P50} calls: bare {b50} us, through the harness {h50} us, ratio {:.3} (target <= 1.03)",
        h50 as f64 / b50 as f64
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
