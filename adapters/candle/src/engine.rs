//! One executor: its models, its intra-op thread pool, and the checks and conversions
//! between contract tensors and candle tensors.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use contract::{BackendError, DType, Engine, Tensor};
pub use fixtures::check_input;
use fixtures::{ModelId, OUTPUT_NAME};

use crate::load::one_line;
use crate::model::Model;

/// The engine of one executor thread: every requested model, and on the CPU the rayon
/// pool all its forward passes run in.
pub struct CandleEngine {
    models: HashMap<String, Model>,
    /// The user's models (`--model-file`), through candle-onnx.
    onnx: HashMap<String, crate::onnx::OnnxModel>,
    /// `None` on CUDA, where threads do not matter.
    pool: Option<rayon::ThreadPool>,
    device: Device,
    /// Element type of the fixture models' weights and activations (`--precision`).
    dtype: candle_core::DType,
}

impl CandleEngine {
    /// Builds executor `index`: an intra-op pool of `intra_threads` threads (CPU only)
    /// and its own copy of each model in `models`, its weights as `dtype`.
    pub fn new(
        index: usize,
        fixtures_dir: &Path,
        models: &[ModelId],
        (device, dtype): (Device, candle_core::DType),
        intra_threads: usize,
    ) -> Result<Self, BackendError> {
        let pool = match device {
            Device::Cpu => Some(crate::threads::intra_op_pool(index, intra_threads)?),
            _ => None,
        };
        let mut loaded = HashMap::new();
        for &id in models {
            loaded.insert(
                id.name().to_string(),
                Model::load(fixtures_dir, id, &device, dtype)?,
            );
        }
        Ok(CandleEngine {
            models: loaded,
            onnx: HashMap::new(),
            pool,
            device,
            dtype,
        })
    }

    /// Adds the user's models, each through candle-onnx.
    pub fn with_user_models(
        mut self,
        user: &[fixtures::user::UserModel],
    ) -> Result<Self, BackendError> {
        for m in user {
            self.onnx
                .insert(m.name.clone(), crate::onnx::OnnxModel::load(m)?);
        }
        Ok(self)
    }

    /// Size of the intra-op pool (`None` on CUDA).
    pub fn intra_threads(&self) -> Option<usize> {
        self.pool
            .as_ref()
            .map(rayon::ThreadPool::current_num_threads)
    }

    fn run(&self, model: &Model, input: &Tensor) -> Result<Vec<f32>, BackendError> {
        let engine = |e: candle_core::Error| BackendError::Engine(one_line(&e));
        let dtype = match input.dtype {
            DType::F32 => candle_core::DType::F32,
            DType::I64 => candle_core::DType::I64,
            DType::F16 => candle_core::DType::F16,
        };
        let x =
            candle_core::Tensor::from_raw_buffer(&input.data, dtype, &input.shape, &self.device)
                .map_err(engine)?;
        // Images go in at the weights' precision; token ids stay integers.
        let x = if x.dtype().is_float() && x.dtype() != self.dtype {
            x.to_dtype(self.dtype).map_err(engine)?
        } else {
            x
        };
        let y = model.forward(&x).map_err(engine)?;
        let want = [input.batch(), model.id().classes()];
        if y.dims() != want {
            return Err(BackendError::Engine(format!(
                "{} produced logits of shape {:?} instead of {want:?}",
                model.id(),
                y.dims()
            )));
        }
        // Copying to a host vector waits for the device, so outputs are really ready.
        y.flatten_all()
            .and_then(|y| y.to_dtype(candle_core::DType::F32))
            .and_then(|y| y.to_vec1::<f32>())
            .map_err(engine)
    }
}

impl Engine for CandleEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        if let Some(m) = self.onnx.get(model) {
            return match &self.pool {
                Some(pool) => pool.install(|| m.run(inputs, &self.device)),
                None => m.run(inputs, &self.device),
            };
        }
        let m = self
            .models
            .get(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let input = check_input(m.id(), inputs)?;
        let logits = match &self.pool {
            Some(pool) => pool.install(|| self.run(m, input))?,
            None => self.run(m, input)?,
        };
        Ok(vec![Tensor::from_f32(
            OUTPUT_NAME,
            vec![input.batch(), m.id().classes()],
            &logits,
        )])
    }
}
