//! One executor's compiled models: the blocking part of the adapter.

use std::collections::HashMap;

use contract::{BackendError, DType, Engine, Tensor};
use fixtures::user::UserModel;
use fixtures::{check_input, ModelFiles, ModelId};
use openvino::{CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape};

/// Which model a compiled model runs: a fixture (one input, one output) or a user's
/// model (its declared inputs and outputs, by name).
enum Kind {
    Fixture(ModelId),
    User(UserModel),
}

/// One model compiled for the CPU, with the one infer request this executor runs it with.
struct Compiled {
    kind: Kind,
    request: InferRequest,
    // Kept alive for as long as its request.
    _model: CompiledModel,
}

/// The compiled models of one executor thread.
pub(crate) struct OvEngine {
    models: HashMap<String, Compiled>,
    // Dropped last: models and requests belong to it.
    _core: Core,
}

impl OvEngine {
    /// Compiles every model's ONNX file (the fixtures' and the user's) on a core of its
    /// own: CPU, the inference precision `hint` (`f32`, or `bf16`), one stream of
    /// `threads` inference threads.
    pub(crate) fn load(
        models: &[(ModelId, ModelFiles)],
        user: &[UserModel],
        threads: usize,
        hint: &str,
    ) -> Result<Self, BackendError> {
        let mut core =
            Core::new().map_err(|e| BackendError::Engine(format!("cannot create a core: {e}")))?;
        let cpu = DeviceType::CPU;
        let threads = threads.to_string();
        for (key, value) in [
            (RwPropertyKey::HintInferencePrecision, hint),
            (RwPropertyKey::InferenceNumThreads, threads.as_str()),
            (RwPropertyKey::NumStreams, "1"),
        ] {
            core.set_property(&cpu, &key, value).map_err(|e| {
                BackendError::Engine(format!("cannot set CPU property {}: {e}", key.as_ref()))
            })?;
        }
        let fixtures = models
            .iter()
            .map(|(id, files)| (id.name(), files.onnx.as_path(), Kind::Fixture(*id)));
        let user = user
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_path(), Kind::User(m.clone())));
        let mut compiled = HashMap::new();
        for (name, onnx, kind) in fixtures.chain(user) {
            let (request, model) = compile(&mut core, name, onnx)?;
            compiled.insert(
                name.to_string(),
                Compiled {
                    kind,
                    request,
                    _model: model,
                },
            );
        }
        Ok(OvEngine {
            models: compiled,
            _core: core,
        })
    }
}

/// Reads the ONNX file `onnx` of model `name` and compiles it for the CPU, with one
/// infer request.
fn compile(
    core: &mut Core,
    name: &str,
    onnx: &std::path::Path,
) -> Result<(InferRequest, CompiledModel), BackendError> {
    let fail = |reason: String| BackendError::ModelLoad {
        model: name.into(),
        reason,
    };
    let onnx = onnx.to_string_lossy();
    let model = core
        .read_model_from_file(&onnx, "")
        .map_err(|e| fail(format!("{onnx} is not a usable ONNX model: {e}")))?;
    let mut model = core
        .compile_model(&model, DeviceType::CPU)
        .map_err(|e| fail(format!("cannot compile {onnx} for the CPU: {e}")))?;
    let request = model
        .create_infer_request()
        .map_err(|e| fail(format!("cannot create an infer request: {e}")))?;
    Ok((request, model))
}

fn engine_err(e: openvino::InferenceError) -> BackendError {
    BackendError::Engine(e.to_string())
}

/// `input` as an OpenVINO tensor of its own element type and shape (one copy: the
/// crate offers no borrowed input).
fn to_openvino(input: &Tensor) -> Result<openvino::Tensor, BackendError> {
    let element = match input.dtype {
        DType::F32 => ElementType::F32,
        DType::I64 => ElementType::I64,
        DType::F16 => ElementType::F16,
    };
    let dims: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
    let mut tensor = openvino::Tensor::new(element, &Shape::new(&dims).map_err(engine_err)?)
        .map_err(engine_err)?;
    tensor
        .get_raw_data_mut()
        .map_err(engine_err)?
        .copy_from_slice(&input.data);
    Ok(tensor)
}

/// The dimensions of an OpenVINO tensor.
fn dims_of(tensor: &openvino::Tensor) -> Result<Vec<usize>, BackendError> {
    let shape = tensor.get_shape().map_err(engine_err)?;
    Ok(shape.get_dimensions().iter().map(|&d| d as usize).collect())
}

/// Runs a user's model: every declared input set by name, every declared output read
/// back by name, in the declared order, with its declared dtype.
fn run_user(
    m: &UserModel,
    request: &mut InferRequest,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, BackendError> {
    m.check(inputs)?;
    for t in inputs {
        request
            .set_tensor(&t.name, &to_openvino(t)?)
            .map_err(engine_err)?;
    }
    request.infer().map_err(engine_err)?;
    let mut out = Vec::with_capacity(m.outputs.len());
    for o in &m.outputs {
        let tensor = request.get_tensor(&o.name).map_err(engine_err)?;
        let bytes = tensor.get_raw_data().map_err(engine_err)?;
        // A size that does not fit the declared dtype (OpenVINO computed another type)
        // is an engine error, not a crash.
        let t = Tensor::new(&o.name, o.dtype, dims_of(&tensor)?, bytes.to_vec().into())
            .map_err(|e| BackendError::Engine(format!("output {}: {e}", o.name)))?;
        out.push(t);
    }
    Ok(out)
}

impl Engine for OvEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        let compiled = self
            .models
            .get_mut(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let request = &mut compiled.request;
        let id = match &compiled.kind {
            Kind::Fixture(id) => *id,
            Kind::User(m) => return run_user(m, request, inputs),
        };
        let input = check_input(id, inputs)?;
        request
            .set_input_tensor(&to_openvino(input)?)
            .map_err(engine_err)?;
        request.infer().map_err(engine_err)?;
        let output = request.get_output_tensor_by_index(0).map_err(engine_err)?;
        let logits = output.get_data::<f32>().map_err(engine_err)?;
        Ok(vec![Tensor::from_f32(
            fixtures::OUTPUT_NAME,
            dims_of(&output)?,
            logits,
        )])
    }
}
