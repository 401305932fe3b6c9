//! ONNX Runtime, embedded in the harness process through the `ort` crate.
//!
//! # Design
//! - **No download at build time.** `ort` is built with `load-dynamic`: the shared
//!   library is found at run time ([`library`]): `ORT_DYLIB_PATH`, else the
//!   `onnxruntime` wheel in the project's Python environment. That is the very library
//!   the Flask app and Triton's Python backend use, so the three run the same engine.
//!   When it cannot be found the backend is *unavailable* with the reason and the
//!   command that fixes it; it never fails the build and never falls back silently.
//! - **One session per executor.** `Session::run` takes `&mut self`, so each of the N
//!   executor threads of [`contract::BlockingPool`] owns its own sessions, one per model,
//!   each limited to the configured intra-op threads (inter-op 1, sequential execution).
//! - **The shared input check.** A request is checked by [`fixtures::check_input`]
//!   (name, dtype, shape, token ids inside the vocabulary) before ONNX Runtime sees it,
//!   so it is rejected with the same `bad_input` message as by every in-process engine.
//! - **Precision.** fp16 and int8 run the conversions of the same `model.onnx` that
//!   `fixtures/precision/convert.py` writes beside it (float32 inputs and outputs kept),
//!   chosen by [`fixtures::onnx_models`]; bf16 is not offered on the CPU provider.
//! - **Execution provider.** CPU by default; CUDA or TensorRT with [`Options::provider`]
//!   (`--ort-provider`) when the loaded library is a GPU build ([`provider`]). A provider
//!   the library lacks makes the backend unavailable with one sentence; one that fails
//!   to start fails the model load. Never a silent fall-back to the CPU.
//! - **Zero-copy inputs.** Input bytes are viewed in place as `f32`/`i64` when aligned
//!   (they practically always are); outputs are copied once into host tensors.
#![deny(missing_docs)]

mod engine;
mod library;
pub mod provider;

pub use engine::build_session;
pub use library::{find_library, load as load_library, Library};
pub use provider::{Options, Provider};

use std::sync::Arc;

use contract::{
    Backend, BackendError, BlockingPool, Description, EngineBackend, OpenOptions, Precision,
    Protocol,
};

/// Backend name in flags and results.
pub const NAME: &str = "onnxruntime";

/// Opens ONNX Runtime on its CPU execution provider with `opts.workers` executors, each
/// loading every requested model.
pub fn open(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    open_with(opts, &Options::default())
}

/// Opens ONNX Runtime on the execution provider of `options`, with `opts.workers`
/// executors, each loading every requested model.
pub fn open_with(opts: &OpenOptions, options: &Options) -> Result<Arc<dyn Backend>, BackendError> {
    if opts.precision == Precision::Bf16 {
        return Err(BackendError::Unavailable {
            backend: NAME.into(),
            reason: "ONNX Runtime's CPU execution provider has no bf16 kernels for these models"
                .into(),
            fix: "compare bf16 on openvino (or candle), fp16 and int8 on onnxruntime".into(),
        });
    }
    let lib = library::load()?;
    let device = provider::check(options.provider, opts.device, &lib.path)?;
    let (models, user) = fixtures::onnx_models_and_user(opts)?;
    let threads = opts.intra_threads.max(1);
    let env = lib.environment.clone();
    let eps = options.provider.dispatch(device);
    let pool = BlockingPool::start(NAME, opts.workers, move |_| {
        engine::OrtEngine::load(&env, &models, &user, threads, &eps)
    })?;
    let description = Description {
        name: NAME.into(),
        engine: format!("onnxruntime {}", lib.version),
        protocol: Protocol::InProcess,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: Some(threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details: [
            ("library".to_string(), lib.path.display().to_string()),
            (
                "execution_provider".to_string(),
                options.provider.ort_name().to_string(),
            ),
            ("inter_op_threads".to_string(), "1".to_string()),
            ("precision".to_string(), opts.precision.to_string()),
        ]
        .into_iter()
        .collect(),
    };
    Ok(Arc::new(EngineBackend::new(pool, description)))
}
