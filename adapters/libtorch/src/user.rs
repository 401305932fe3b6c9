//! A user's model as TorchScript (`--torchscript`): the same model as its `--model-file`,
//! whose ONNX file declares the inputs and outputs the requests are checked against.

use std::path::Path;

use contract::{BackendError, DType, Tensor};
use fixtures::user::UserModel;
use tch::{CModule, IValue, Kind};

use crate::load::one_line;

/// A loaded TorchScript module and the declaration of its model.
pub struct UserNet {
    spec: UserModel,
    module: CModule,
}

fn kind(dtype: DType) -> Kind {
    match dtype {
        DType::F32 => Kind::Float,
        DType::I64 => Kind::Int64,
        DType::F16 => Kind::Half,
    }
}

impl UserNet {
    /// Loads `path` on `device` in eval mode for the model `spec` declares.
    pub fn load(spec: UserModel, path: &Path, device: tch::Device) -> Result<Self, BackendError> {
        let mut module =
            CModule::load_on_device(path, device).map_err(|e| BackendError::ModelLoad {
                model: spec.name.clone(),
                reason: format!(
                    "libtorch cannot load {} as TorchScript: {}",
                    path.display(),
                    one_line(&e)
                ),
            })?;
        module.set_eval();
        Ok(UserNet { spec, module })
    }

    /// Runs the module on checked `inputs` (positional, in the declared order); its
    /// outputs (one tensor, or a tuple or list of them) are the declared outputs in
    /// order, each cast to its declared dtype and copied to host memory.
    pub fn run(&self, inputs: &[Tensor], device: tch::Device) -> Result<Vec<Tensor>, BackendError> {
        self.spec.check(inputs)?;
        let engine = |e: tch::TchError| BackendError::Engine(one_line(&e));
        tch::no_grad(|| {
            let args = inputs
                .iter()
                .map(|t| {
                    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
                    tch::Tensor::f_from_data_size(&t.data, &shape, kind(t.dtype))
                        .and_then(|x| x.f_to_device(device))
                        .map(IValue::Tensor)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(engine)?;
            let got = match self.module.forward_is(&args).map_err(engine)? {
                IValue::Tensor(t) => vec![t],
                IValue::Tuple(v) | IValue::GenericList(v) => v
                    .into_iter()
                    .map(|i| match i {
                        IValue::Tensor(t) => Ok(t),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|()| self.not_tensors())?,
                IValue::TensorList(v) => v,
                _ => return Err(self.not_tensors()),
            };
            if got.len() != self.spec.outputs.len() {
                return Err(BackendError::Engine(format!(
                    "the TorchScript of {} returned {} tensors where its ONNX file declares {} \
                     outputs",
                    self.spec.name,
                    got.len(),
                    self.spec.outputs.len()
                )));
            }
            crate::device::synchronize(device);
            got.iter()
                .zip(&self.spec.outputs)
                .map(|(t, o)| {
                    let t = t
                        .f_to_device(tch::Device::Cpu)
                        .and_then(|t| t.f_to_kind(kind(o.dtype)))
                        .and_then(|t| t.f_contiguous())
                        .map_err(engine)?;
                    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                    let numel = shape.iter().product::<usize>();
                    let mut bytes = vec![0u8; numel * o.dtype.size()];
                    t.f_copy_data_u8(&mut bytes, numel).map_err(engine)?;
                    Tensor::new(&o.name, o.dtype, shape, bytes.into())
                })
                .collect()
        })
    }

    fn not_tensors(&self) -> BackendError {
        BackendError::Engine(format!(
            "the TorchScript of {} returned something other than tensors",
            self.spec.name
        ))
    }
}
