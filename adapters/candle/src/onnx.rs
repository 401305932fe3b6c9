//! A user's ONNX model (`--model-file`) on candle, through `candle-onnx`.
//!
//! `candle-onnx` evaluates the graph node by node (`simple_eval`) with candle's own
//! kernels. Its operator coverage is partial, so a model is checked when the backend
//! is opened: an operator it lacks makes candle *unavailable* for the run, with the
//! operator named ("not measured: operator Softplus not supported"), never a failed
//! request or a crash.

use std::collections::HashMap;

use candle_core::Device;
use contract::{BackendError, DType, Tensor};
use fixtures::user::UserModel;

use crate::load::one_line;
use crate::NAME;

/// The operators `candle_onnx::simple_eval` of candle-onnx 0.11.1 (the version the
/// workspace pins) implements, from its `eval.rs`.
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "CumSum",
    "Div",
    "Dropout",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Gelu",
    "Gemm",
    "Greater",
    "GreaterOrEqual",
    "HardSwish",
    "Identity",
    "If",
    "LSTM",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "RNN",
    "Range",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "ScatterND",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// A user's model, decoded for candle-onnx.
pub struct OnnxModel {
    spec: UserModel,
    proto: candle_onnx::onnx::ModelProto,
}

impl OnnxModel {
    /// Reads `spec`'s file; a graph with an operator candle-onnx lacks is unavailable.
    pub fn load(spec: &UserModel) -> Result<OnnxModel, BackendError> {
        if let Some(op) = spec
            .operators
            .iter()
            .find(|op| !SUPPORTED_OPERATORS.contains(&op.as_str()))
        {
            return Err(BackendError::Unavailable {
                backend: NAME.into(),
                reason: format!(
                    "operator {op} of model {} is not supported by candle-onnx {}",
                    spec.name,
                    crate::CANDLE_VERSION
                ),
                fix: "measure this model on onnxruntime, openvino, flask or triton".into(),
            });
        }
        let proto = candle_onnx::read_file(&spec.path).map_err(|e| BackendError::ModelLoad {
            model: spec.name.clone(),
            reason: one_line(&e),
        })?;
        Ok(OnnxModel {
            spec: spec.clone(),
            proto,
        })
    }

    /// Runs the graph on `inputs` (checked against the declared inputs) and returns the
    /// declared outputs in order, in host memory.
    pub fn run(&self, inputs: &[Tensor], device: &Device) -> Result<Vec<Tensor>, BackendError> {
        self.spec.check(inputs)?;
        let engine = |e: candle_core::Error| BackendError::Engine(one_line(&e));
        let mut feed = HashMap::new();
        for t in inputs {
            let x = candle_core::Tensor::from_raw_buffer(&t.data, dtype(t.dtype), &t.shape, device)
                .map_err(engine)?;
            feed.insert(t.name.clone(), x);
        }
        let mut values = candle_onnx::simple_eval(&self.proto, feed).map_err(engine)?;
        let mut out = Vec::with_capacity(self.spec.outputs.len());
        for o in &self.spec.outputs {
            let v = values.remove(&o.name).ok_or_else(|| {
                BackendError::Engine(format!("candle-onnx computed no output {}", o.name))
            })?;
            let shape = v.dims().to_vec();
            let v = v
                .to_dtype(dtype(o.dtype))
                .and_then(|v| v.flatten_all())
                .map_err(engine)?;
            out.push(match o.dtype {
                DType::F32 => {
                    Tensor::from_f32(&o.name, shape, &v.to_vec1::<f32>().map_err(engine)?)
                }
                DType::I64 => {
                    Tensor::from_i64(&o.name, shape, &v.to_vec1::<i64>().map_err(engine)?)
                }
                DType::F16 => {
                    let bytes: Vec<u8> = v
                        .to_vec1::<half::f16>()
                        .map_err(engine)?
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect();
                    Tensor::new(&o.name, DType::F16, shape, bytes.into())?
                }
            });
        }
        Ok(out)
    }
}

fn dtype(d: DType) -> candle_core::DType {
    match d {
        DType::F32 => candle_core::DType::F32,
        DType::I64 => candle_core::DType::I64,
        DType::F16 => candle_core::DType::F16,
    }
}
