//! One executor's sessions: the blocking part of the adapter.

use std::collections::HashMap;

use contract::{BackendError, DType, Engine, Tensor};
use fixtures::{check_input, ModelFiles, ModelId};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

/// The sessions of one executor thread, one per model.
pub(crate) struct OrtEngine {
    sessions: HashMap<String, (ModelId, Session)>,
}

impl OrtEngine {
    /// Loads every model's ONNX file into its own session.
    pub(crate) fn load(
        env: &Environment,
        models: &[(ModelId, ModelFiles)],
        intra_threads: usize,
    ) -> Result<Self, BackendError> {
        let mut sessions = HashMap::new();
        for (id, files) in models {
            let fail = |reason: String| BackendError::ModelLoad {
                model: id.name().into(),
                reason,
            };
            let session = build_session(env, &files.onnx, intra_threads).map_err(fail)?;
            sessions.insert(id.name().to_string(), (*id, session));
        }
        Ok(OrtEngine { sessions })
    }
}

/// A session on `onnx` with every graph optimisation, `intra_threads` intra-op threads,
/// one inter-op thread and sequential execution: the settings of every executor.
/// Public so that benchmarks can time a bare session built exactly the same way.
pub fn build_session(
    env: &Environment,
    onnx: &std::path::Path,
    intra_threads: usize,
) -> Result<Session, String> {
    Session::builder(env)
        .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::All)?))
        .and_then(|b| Ok(b.with_intra_threads(intra_threads)?))
        .and_then(|b| Ok(b.with_inter_threads(1)?))
        .and_then(|b| Ok(b.with_parallel_execution(false)?))
        .map_err(|e| format!("cannot configure a session: {e}"))?
        .commit_from_file(onnx)
        .map_err(|e| format!("{} is not a usable ONNX model: {e}", onnx.display()))
}

impl Engine for OrtEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        let (id, session) = self
            .sessions
            .get_mut(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let input = check_input(*id, inputs)?;
        let engine_err = |e: ort::Error| BackendError::Engine(e.to_string());
        let shape = input.shape.clone();
        let outputs = match input.dtype {
            DType::F32 => {
                let values = view::<f32>(&input.data);
                session.run(ort::inputs![
                    TensorRef::from_array_view((shape, &*values)).map_err(engine_err)?
                ])
            }
            DType::I64 => {
                let values = view::<i64>(&input.data);
                session.run(ort::inputs![
                    TensorRef::from_array_view((shape, &*values)).map_err(engine_err)?
                ])
            }
        }
        .map_err(engine_err)?;
        let (out_shape, logits) = outputs[0].try_extract_tensor::<f32>().map_err(engine_err)?;
        let dims = out_shape.iter().map(|&d| d as usize).collect();
        Ok(vec![Tensor::from_f32(fixtures::OUTPUT_NAME, dims, logits)])
    }
}

/// The bytes as a slice of `T`: borrowed when aligned, copied otherwise.
fn view<T: bytemuck::Pod>(bytes: &[u8]) -> std::borrow::Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(values) => std::borrow::Cow::Borrowed(values),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(bytes)),
    }
}
