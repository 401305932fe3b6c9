//! One executor: its models on its device, and the conversions between contract
//! tensors and libtorch tensors.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use contract::{BackendError, DType, Engine, Tensor};
use fixtures::{check_input, ModelId, OUTPUT_NAME};
use tch::Kind;

use crate::load::one_line;
use crate::model::Model;

/// The engine of one executor thread: every requested model, on one device.
pub struct TorchEngine {
    models: HashMap<String, Model>,
    user: HashMap<String, crate::user::UserNet>,
    device: tch::Device,
}

impl TorchEngine {
    /// Builds an executor's own copy of each model in `models` on `device` at
    /// `precision` (fp32 or bf16), after
    /// setting libtorch's threads for this thread ([`crate::threads::configure`]).
    pub fn new(
        fixtures_dir: &Path,
        models: &[ModelId],
        device: tch::Device,
        intra_threads: usize,
        precision: contract::Precision,
    ) -> Result<Self, BackendError> {
        crate::threads::configure(intra_threads);
        let mut loaded = HashMap::new();
        for &id in models {
            loaded.insert(
                id.name().to_string(),
                Model::load(fixtures_dir, id, device, precision)?,
            );
        }
        Ok(TorchEngine {
            models: loaded,
            user: HashMap::new(),
            device,
        })
    }

    /// Adds the user's models (`--torchscript`): each declaration with its TorchScript file.
    pub fn with_user(
        mut self,
        user: &[(fixtures::user::UserModel, std::path::PathBuf)],
    ) -> Result<Self, BackendError> {
        for (spec, path) in user {
            let net = crate::user::UserNet::load(spec.clone(), path, self.device)?;
            self.user.insert(spec.name.clone(), net);
        }
        Ok(self)
    }

    /// Runs `model` on a checked `input`; returns the logits in host memory.
    fn run(&self, model: &Model, input: &Tensor) -> Result<Vec<f32>, tch::TchError> {
        let kind = match input.dtype {
            DType::F32 => Kind::Float,
            DType::I64 => Kind::Int64,
            DType::F16 => Kind::Half,
        };
        let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
        tch::no_grad(|| {
            let x = tch::Tensor::f_from_data_size(&input.data, &shape, kind)?
                .f_to_device(self.device)?;
            let y = model.forward(&x);
            crate::device::synchronize(self.device);
            let want = [input.batch() as i64, model.id().classes() as i64];
            if y.size() != want {
                return Err(tch::TchError::Shape(format!(
                    "{} produced logits of shape {:?} instead of {want:?}",
                    model.id(),
                    y.size()
                )));
            }
            let y = y.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
            let mut out = vec![0f32; input.batch() * model.id().classes()];
            let n = out.len();
            y.f_copy_data(&mut out, n)?;
            Ok(out)
        })
    }
}

impl Engine for TorchEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        if let Some(net) = self.user.get(model) {
            let device = self.device;
            return catch_unwind(AssertUnwindSafe(|| net.run(inputs, device)))
                .map_err(|_| BackendError::Engine("libtorch failed".into()))?;
        }
        let m = self
            .models
            .get(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let input = check_input(m.id(), inputs)?;
        // tch's infallible ops panic on a libtorch error (out of memory, say): that is a
        // failed request, not a dead executor.
        let logits = catch_unwind(AssertUnwindSafe(|| self.run(m, input)))
            .map_err(|panic| {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "libtorch failed".into());
                BackendError::Engine(text.lines().next().unwrap_or_default().to_string())
            })?
            .map_err(|e| BackendError::Engine(one_line(&e)))?;
        Ok(vec![Tensor::from_f32(
            OUTPUT_NAME,
            vec![input.batch(), m.id().classes()],
            &logits,
        )])
    }
}
