//! candle, embedded in the harness process: the pure-Rust backend, always built.
//!
//! # Design
//! - **Native models, canonical weights.** The three fixture models are written with
//!   candle-nn layers ([`TextCnn`], [`Resnet`]) and read the canonical safetensors file
//!   the fixtures tool writes (`<fixtures>/<model>/model.safetensors`, PyTorch
//!   `state_dict` names), not the ONNX export: candle is the reference implementation
//!   the others are checked against. ResNet batch norms are folded into their
//!   convolutions at load time (see [`resnet`]), as ONNX Runtime does with the same
//!   weights.
//! - **One engine per executor.** [`open`] starts `workers` executor threads through
//!   [`contract::BlockingPool`]; each builds its own [`CandleEngine`] holding its own copy
//!   of every requested model, like a server worker process would.
//! - **A real intra-op thread limit.** Each executor runs its forward passes inside its
//!   own rayon pool of `intra_threads` threads, and candle's process-wide element-wise
//!   thread pool is switched off, because a rayon pool cannot limit it. The [`threads`]
//!   module records what candle 0.11 does with threads and why this is enough;
//!   `tests/threads.rs` checks it against per-thread CPU time.
//! - **Errors are data.** A missing, truncated or corrupt file, or a missing or
//!   misshapen tensor, is a [`contract::BackendError::ModelLoad`] naming model, file and
//!   problem; a bad request is `BadInput`; nothing here panics on user input.
//! - **CUDA behind a feature.** `--device cuda:N` needs the `cuda` feature (candle's
//!   CUDA backend, which needs the CUDA toolkit to build); without it, [`open`] says so
//!   and names the feature.
#![deny(missing_docs)]

mod device;
mod engine;
mod load;
mod model;
pub mod onnx;
pub mod resnet;
mod text_cnn;
pub mod threads;

pub use device::CUDA_FEATURE;
pub use engine::{check_input, CandleEngine};
pub use load::Weights;
pub use model::Model;
pub use resnet::Resnet;
pub use text_cnn::TextCnn;

use std::sync::Arc;

use contract::{
    Backend, BackendError, BlockingPool, Description, EngineBackend, OpenOptions, Protocol,
};
use fixtures::ModelId;

/// Backend name in flags and results.
pub const NAME: &str = "candle";

/// The candle-core version this crate is compiled against.
pub const CANDLE_VERSION: &str = env!("SERVEBENCH_CANDLE_VERSION");

/// Opens candle with `opts.workers` executors, each holding every model in
/// `opts.models` and running on `opts.intra_threads` threads.
pub fn open(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    device::check(opts.device)?;
    let (fixed, user) = fixtures::user_models(opts)?;
    // An operator candle-onnx lacks makes candle unavailable before any thread starts.
    for m in &user {
        onnx::OnnxModel::load(m)?;
    }
    let models: Vec<ModelId> = fixed
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|_| BackendError::UnknownModel(name.clone()))
        })
        .collect::<Result<_, _>>()?;
    let dtype = match opts.precision {
        contract::Precision::Fp32 => candle_core::DType::F32,
        contract::Precision::Fp16 => candle_core::DType::F16,
        contract::Precision::Bf16 => candle_core::DType::BF16,
        contract::Precision::Int8 => {
            return Err(BackendError::Unavailable {
                backend: NAME.into(),
                reason: "candle has no int8 kernels for these models".into(),
                fix: "compare int8 on onnxruntime or openvino".into(),
            })
        }
    };
    let threads = opts.intra_threads.max(1);
    let elementwise_helpers = threads::quiet_barrier_pool();
    let (dir, device) = (opts.fixtures_dir.clone(), opts.device);
    let pool = BlockingPool::start(NAME, opts.workers, move |i| {
        CandleEngine::new(i, &dir, &models, (device::open(device)?, dtype), threads)?
            .with_user_models(&user)
    })?;
    let cpu = opts.device == contract::Device::Cpu;
    let mut details = std::collections::BTreeMap::new();
    details.insert(
        "weights".into(),
        "model.safetensors, one copy per executor; ResNet batch norms folded into convolutions"
            .to_string(),
    );
    if cpu {
        details.insert("gemm_split".into(), threads::gemm_split().to_string());
        details.insert(
            "elementwise_helper_threads".into(),
            elementwise_helpers.to_string(),
        );
    }
    let description = Description {
        name: NAME.into(),
        engine: format!("candle {CANDLE_VERSION}"),
        protocol: Protocol::InProcess,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: cpu.then_some(threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    Ok(Arc::new(EngineBackend::new(pool, description)))
}
