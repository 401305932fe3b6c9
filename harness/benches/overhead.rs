//! The harness's own cost, in process.
//!
//! ONNX Runtime on the text-CNN at batch 1, timed two ways with the same session
//! settings and threads:
//! - `bare`: a loop calling `Session::run` directly on this thread;
//! - `harness`: `Backend::infer` through the closed-loop generator, i.e. the async
//!   runtime, the executor thread of the blocking pool and its channels.
//!
//! Criterion reports both; afterwards the bench prints both p50s, taken the same way
//! (one histogram sample per call, alternating chunks of calls), and their ratio. Target: ratio <= 1.03.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Device, OpenOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use fixtures::{ModelFiles, ModelId};
use harness::config::Window;
use harness::load;
use ort::value::TensorRef;

const CALLS_FOR_P50: u64 = 3000;
/// Calls per side before switching to the other.
const CHUNK: u64 = 100;

fn overhead(c: &mut Criterion) {
    let dir = fixtures::default_dir();
    let model = ModelId::TextCnn;
    fixtures::ensure(&dir, &[model], fixtures::DEFAULT_SEED).expect("fixtures");
    let threads = contract::default_intra_threads(1);
    let input = fixtures::inputs::batch(model, 1, fixtures::DEFAULT_SEED);
    let ids = input.to_i64().unwrap();

    let lib = adapter_onnxruntime::load_library().expect("ONNX Runtime (run scripts/setup)");
    let mut session = adapter_onnxruntime::build_session(
        &lib.environment,
        &ModelFiles::new(&dir, model).onnx,
        threads,
    )
    .unwrap();
    let mut bare_call = move || {
        let out = session
            .run(ort::inputs![TensorRef::from_array_view((
                input.shape.clone(),
                &ids[..]
            ))
            .unwrap()])
            .unwrap();
        let (_, logits) = out[0].try_extract_tensor::<f32>().unwrap();
        logits.to_vec()
    };

    let backend = adapter_onnxruntime::open(&OpenOptions {
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

    let mut group = c.benchmark_group("text-cnn batch 1, onnxruntime");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bare session.run", |b| b.iter(&mut bare_call));
    group.bench_function("through the harness", |b| {
        b.iter_custom(|n| {
            let t0 = Instant::now();
            through_harness(n);
            t0.elapsed()
        })
    });
    group.finish();

    // p50s taken the same way for both: one histogram sample per call, in alternating
    // chunks, so that a change in the machine's load hits both sides alike.
    let mut bare = load::histogram();
    let mut harness = load::histogram();
    for _ in 0..CALLS_FOR_P50 / CHUNK {
        for _ in 0..CHUNK {
            let t0 = Instant::now();
            bare_call();
            bare.saturating_record(t0.elapsed().as_micros() as u64);
        }
        harness
            .add(through_harness(CHUNK).histogram)
            .expect("same bounds");
    }
    let (b50, h50) = (bare.value_at_quantile(0.5), harness.value_at_quantile(0.5));
    eprintln!(
        "p50 over {CALLS_FOR_P50} calls each: bare {b50} us, through the harness {h50} us, ratio {:.3} (target <= 1.03)",
        h50 as f64 / b50 as f64
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
