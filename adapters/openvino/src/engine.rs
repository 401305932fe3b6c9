//! One executor's compiled models: the blocking part of the adapter.

use std::collections::HashMap;

use contract::{BackendError, DType, Engine, Tensor};
use fixtures::{check_input, ModelFiles, ModelId};
use openvino::{CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape};

/// One model compiled for the CPU, with the one infer request this executor runs it with.
struct Compiled {
    id: ModelId,
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
    /// Compiles every model's ONNX file on a core of its own: CPU, the inference
    /// precision `hint` (`f32`, or `bf16`), one stream of `threads` inference threads.
    pub(crate) fn load(
        models: &[(ModelId, ModelFiles)],
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
        let mut compiled = HashMap::new();
        for (id, files) in models {
            let fail = |reason: String| BackendError::ModelLoad {
                model: id.name().into(),
                reason,
            };
            let onnx = files.onnx.to_string_lossy();
            let model = core
                .read_model_from_file(&onnx, "")
                .map_err(|e| fail(format!("{onnx} is not a usable ONNX model: {e}")))?;
            let mut model = core
                .compile_model(&model, DeviceType::CPU)
                .map_err(|e| fail(format!("cannot compile {onnx} for the CPU: {e}")))?;
            let request = model
                .create_infer_request()
                .map_err(|e| fail(format!("cannot create an infer request: {e}")))?;
            compiled.insert(
                id.name().to_string(),
                Compiled {
                    id: *id,
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

impl Engine for OvEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        let compiled = self
            .models
            .get_mut(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let input = check_input(compiled.id, inputs)?;
        let engine_err = |e: openvino::InferenceError| BackendError::Engine(e.to_string());
        let element = match input.dtype {
            DType::F32 => ElementType::F32,
            DType::I64 => ElementType::I64,
            DType::F16 => ElementType::F16,
        };
        let dims: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
        let mut tensor = openvino::Tensor::new(element, &Shape::new(&dims).map_err(engine_err)?)
            .map_err(engine_err)?;
        // The crate offers no borrowed input: one copy into OpenVINO's buffer.
        tensor
            .get_raw_data_mut()
            .map_err(engine_err)?
            .copy_from_slice(&input.data);
        let request = &mut compiled.request;
        request.set_input_tensor(&tensor).map_err(engine_err)?;
        request.infer().map_err(engine_err)?;
        let output = request.get_output_tensor_by_index(0).map_err(engine_err)?;
        let out_shape = output.get_shape().map_err(engine_err)?;
        let dims = out_shape
            .get_dimensions()
            .iter()
            .map(|&d| d as usize)
            .collect();
        let logits = output.get_data::<f32>().map_err(engine_err)?;
        Ok(vec![Tensor::from_f32(fixtures::OUTPUT_NAME, dims, logits)])
    }
}
