//! OpenVINO, embedded in the harness process through the `openvino` crate.
//!
//! # Design
//! - **No native library at build time.** The crate is built with `runtime-linking`: the
//!   C library is found at run time ([`library`]): `SERVEBENCH_OPENVINO_LIBS`, else the
//!   `openvino` wheel's `openvino/libs` directory in the project's Python environment
//!   (`scripts/setup` installs it). When it cannot be found the backend is *unavailable*
//!   with the reason and the command that fixes it; it never fails the build.
//! - **Same model, same arithmetic.** Every executor compiles the fixture's `model.onnx`
//!   (the file ONNX Runtime runs) for the CPU with `INFERENCE_PRECISION_HINT=f32`: on CPUs
//!   with bf16 support OpenVINO would otherwise compute in bf16 (max abs diff 0.022 against
//!   candle), which fails agreement and compares a different computation. With
//!   `--precision bf16` the hint is `bf16`; with `int8` the quantised `model.int8.onnx`.
//! - **One infer request per executor.** Each of the N executor threads of
//!   [`contract::BlockingPool`] owns its own core, compiled models and one infer request
//!   per model, with one stream and the configured number of inference threads.
//! - **The shared input check.** A request is checked by [`fixtures::check_input`] before
//!   OpenVINO sees it, so it is rejected with the same `bad_input` message as by every
//!   in-process engine.
//! - **A user's model** (`--model-file`) is read from its own ONNX file: its declared
//!   inputs are set by name (f32, f16 or i64, dynamic dimensions given by the request's
//!   shape) and its declared outputs read back by name, in the file's order, checked by
//!   [`fixtures::user::UserModel::check`] first as on onnxruntime.
#![deny(missing_docs)]

mod engine;
mod library;

pub use library::{find_library, load as load_library, Library, LIBS_ENV};

use std::sync::Arc;

use contract::{
    Backend, BackendError, BlockingPool, Description, Device, EngineBackend, OpenOptions,
    Precision, Protocol,
};

/// Backend name in flags and results.
pub const NAME: &str = "openvino";

/// Opens OpenVINO with `opts.workers` executors, each compiling every requested model.
pub fn open(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    if let Device::Cuda(_) = opts.device {
        return Err(BackendError::Unavailable {
            backend: NAME.into(),
            reason: "this build runs OpenVINO on the CPU device only".into(),
            fix: "use --device cpu".into(),
        });
    }
    // bf16 is OpenVINO's own inference precision on model.onnx; int8 is the quantised
    // model.int8.onnx (its QDQ/integer operators run as int8), computed at f32 between.
    let hint = match opts.precision {
        Precision::Fp32 | Precision::Int8 => "f32",
        Precision::Bf16 => "bf16",
        Precision::Fp16 => {
            return Err(BackendError::Unavailable {
                backend: NAME.into(),
                reason: "OpenVINO on the CPU computes in f32 or bf16, not fp16".into(),
                fix: "compare fp16 on onnxruntime, bf16 on openvino".into(),
            })
        }
    };
    let lib = library::load()?;
    let (models, user) = fixtures::onnx_models_and_user(opts)?;
    let threads = opts.intra_threads.max(1);
    let pool = BlockingPool::start(NAME, opts.workers, move |_| {
        engine::OvEngine::load(&models, &user, threads, hint)
    })?;
    let description = Description {
        name: NAME.into(),
        engine: format!("openvino {}", lib.version),
        protocol: Protocol::InProcess,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: Some(threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details: [
            ("library".to_string(), lib.path.display().to_string()),
            ("device".to_string(), "CPU".to_string()),
            ("inference_precision".to_string(), hint.to_string()),
            ("precision".to_string(), opts.precision.to_string()),
            ("streams".to_string(), "1".to_string()),
        ]
        .into_iter()
        .collect(),
    };
    Ok(Arc::new(EngineBackend::new(pool, description)))
}
