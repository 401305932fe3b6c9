//! libtorch, embedded in the harness process through the `tch` crate.
//!
//! # Design
//! - **Current libtorch, from the project's Python environment.** `tch 0.26` is built
//!   against the `torch==2.13.0` wheel that `scripts/setup` installs into `.venv`
//!   (`LIBTORCH_USE_PYTORCH=1`); the same build runs on CUDA where there is a GPU. The
//!   build records the library directory and gives every binary an rpath to it, and
//!   [`open`] checks that the libtorch really loaded is that one ([`library`]) and
//!   reports its version. The crate is behind the harness feature `libtorch`.
//! - **Native models, canonical weights.** The three fixture models are `tch::nn`
//!   layers ([`TextCnn`], [`Resnet`]) named like the PyTorch `state_dict` in
//!   `<fixtures>/<model>/model.safetensors`, filled from that file with exact name,
//!   shape and dtype checks ([`load`]): the very tensors candle reads. Batch norm is
//!   libtorch's eval-mode `BatchNorm2d`.
//! - **One engine per executor.** [`open`] starts `workers` executor threads through
//!   [`contract::BlockingPool`]; each sets libtorch's threads ([`threads`]) and builds
//!   its own [`TorchEngine`] with its own copy of every model.
//! - **Precision.** fp32, or bf16 (`--precision bf16`): the same f32 weights rounded to
//!   bfloat16 once loaded (`VarStore::bfloat16`), images cast to bf16 on the way in and
//!   the logits back to f32 on the way out, so a request is the same bytes at both.
//! - **A user's model as TorchScript.** A `--model-file` model runs here from its
//!   `--torchscript` file (`tch::CModule`, eval mode): positional inputs in the order
//!   its ONNX file declares, checked against that declaration, and its outputs (a
//!   tensor, or a tuple or list of them) taken as the declared outputs in order.
//! - **Honest clock.** Inference runs under `no_grad`; on CUDA the engine synchronises
//!   the device, and outputs are always copied to host memory before `infer` returns.
//! - **Errors are data.** Missing or malformed model files are
//!   [`contract::BackendError::ModelLoad`] naming the file; a bad request is `BadInput`
//!   (the shared [`fixtures::check_input`]); a libtorch failure is `Engine`.
#![deny(missing_docs)]

mod device;
mod engine;
pub mod library;
mod load;
mod model;
mod resnet;
mod text_cnn;
pub mod threads;
mod user;

pub use engine::TorchEngine;
pub use load::load as load_weights;
pub use model::Model;
pub use resnet::Resnet;
pub use tch;
pub use text_cnn::TextCnn;

use std::sync::Arc;

use contract::{
    Backend, BackendError, BlockingPool, Description, EngineBackend, OpenOptions, Precision,
    Protocol,
};
use fixtures::ModelId;

/// Backend name in flags and results.
pub const NAME: &str = "libtorch";

/// The `tch` version this crate is compiled against.
pub const TCH_VERSION: &str = env!("SERVEBENCH_TCH_VERSION");

/// Opens libtorch with `opts.workers` executors, each holding every model in
/// `opts.models` and running on `opts.intra_threads` intra-op threads.
pub fn open(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    if !matches!(opts.precision, Precision::Fp32 | Precision::Bf16) {
        return Err(BackendError::Unavailable {
            backend: NAME.into(),
            reason: format!(
                "{} not measured: this adapter runs the models at fp32 and bf16",
                opts.precision
            ),
            fix: "compare bf16 on libtorch; fp16 and int8 on onnxruntime".into(),
        });
    }
    let lib = library::check()?;
    let device = device::resolve(opts.device)?;
    let (fixed, user) = fixtures::user_models(opts)?;
    let user = fixtures::with_torchscripts(opts, user, NAME, "libtorch")?;
    let models: Vec<ModelId> = fixed
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|_| BackendError::UnknownModel(name.clone()))
        })
        .collect::<Result<_, _>>()?;
    let threads = opts.intra_threads.max(1);
    // Executors set their own threads too; this sets the process-wide value first and
    // reads back what libtorch reports.
    let (intra, inter) = threads::configure(threads);
    let dir = opts.fixtures_dir.clone();
    let precision = opts.precision;
    let pool = BlockingPool::start(NAME, opts.workers, move |_| {
        TorchEngine::new(&dir, &models, device, threads, precision)?.with_user(&user)
    })?;
    let details = [
        ("library", lib.dir.display().to_string()),
        (
            "weights",
            "model.safetensors into tch::nn layers, one copy per executor; eval-mode batch norm"
                .to_string(),
        ),
        ("intra_op_threads_reported", intra.to_string()),
        ("inter_op_threads", inter.to_string()),
        ("cuda_devices", tch::Cuda::device_count().to_string()),
        ("precision", opts.precision.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let description = Description {
        name: NAME.into(),
        engine: format!("libtorch {} (tch {TCH_VERSION})", lib.version),
        protocol: Protocol::InProcess,
        device: opts.device.to_string(),
        workers: opts.workers,
        intra_threads: (device == tch::Device::Cpu).then_some(threads),
        models: opts.models.clone(),
        served_by_test_peer: false,
        details,
    };
    Ok(Arc::new(EngineBackend::new(pool, description)))
}
