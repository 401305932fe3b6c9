//! The measuring half shared by the overhead benches: one engine, two ways of calling it.
//!
//! `bare_call` runs the engine directly on the bench thread; the backend runs the same
//! model through the harness (the async runtime, `load::closed_loop`, the blocking pool's
//! executor thread and its channels). Criterion reports both; afterwards both p50s are
//! taken the same way (one histogram sample per call) in alternating chunks of calls, so
//! a change in the machine's load hits both sides alike, and their ratio is printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Backend, Device, OpenOptions};
use criterion::Criterion;
use fixtures::ModelId;
use harness::load;
use harness::load::Window;

/// Calls behind each p50.
const CALLS_FOR_P50: u64 = 3000;
/// Calls per side before switching to the other.
const CHUNK: u64 = 100;

/// The text-CNN fixtures (generated if absent), its batch-1 input and the thread count
/// both sides use: the in-process default for one worker.
pub fn text_cnn_batch_1() -> (std::path::PathBuf, contract::Tensor, usize) {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).expect("fixtures");
    let input = fixtures::inputs::batch(ModelId::TextCnn, 1, fixtures::DEFAULT_SEED);
    (dir, input, contract::default_intra_threads(1))
}

/// ONNX Runtime's `Session::run` on the text-CNN at batch 1, called directly on the
/// caller's thread with the session settings and threads the `onnxruntime` backend uses:
/// the bare engine loop the harness is measured against.
#[allow(dead_code)] // not every bench that shares this module uses it
pub fn bare_onnxruntime_call(
    dir: &std::path::Path,
    input: &contract::Tensor,
    threads: usize,
) -> impl FnMut() -> Vec<f32> {
    use ort::value::TensorRef;
    let ids = input.to_i64().unwrap();
    let shape = input.shape.clone();
    let lib = adapter_onnxruntime::load_library().expect("ONNX Runtime (run scripts/setup)");
    let mut session = adapter_onnxruntime::build_session(
        &lib.environment,
        &fixtures::ModelFiles::new(dir, ModelId::TextCnn).onnx,
        threads,
    )
    .unwrap();
    move || {
        let _environment = &lib;
        let out = session
            .run(ort::inputs![TensorRef::from_array_view((
                shape.clone(),
                &ids[..]
            ))
            .unwrap()])
            .unwrap();
        let (_, logits) = out[0].try_extract_tensor::<f32>().unwrap();
        logits.to_vec()
    }
}

/// Options that open the text-CNN with one worker of `threads` threads.
pub fn options(dir: &std::path::Path, threads: usize) -> OpenOptions {
    OpenOptions {
        models: vec![ModelId::TextCnn.name().into()],
        fixtures_dir: dir.to_path_buf(),
        workers: 1,
        intra_threads: threads,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

/// Benchmarks `bare_call` against `backend` on `input`, under `group` / `bare_name`.
pub fn bare_against_harness<T>(
    c: &mut Criterion,
    group: &str,
    bare_name: &str,
    mut bare_call: impl FnMut() -> T,
    backend: Arc<dyn Backend>,
    input: contract::Tensor,
) {
    let request = Arc::new(
        backend
            .prepare(ModelId::TextCnn.name(), vec![input])
            .expect("the request prepares"),
    );
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let through_harness = |n: u64| {
        rt.block_on(load::closed_loop(
            backend.clone(),
            request.clone(),
            1,
            Window::Requests(n),
        ))
    };

    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function(bare_name, |b| b.iter(&mut bare_call));
    g.bench_function("through the harness", |b| {
        b.iter_custom(|n| {
            let t0 = Instant::now();
            through_harness(n);
            t0.elapsed()
        })
    });
    g.finish();

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
        "{group}: p50 over {CALLS_FOR_P50} calls each: bare {b50} us, through the harness {h50} us, ratio {:.3} (target <= 1.03)",
        h50 as f64 / b50 as f64
    );
}
