//! One executor's sessions: the blocking part of the adapter.

use std::collections::HashMap;

use contract::{BackendError, DType, Engine, Tensor};
use fixtures::user::UserModel;
use fixtures::{check_input, ModelFiles, ModelId};
use ort::environment::Environment;
use ort::ep::ExecutionProviderDispatch;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

/// Which model a session runs: a fixture (one input, one output) or a user's model
/// (its declared inputs and outputs).
enum Kind {
    Fixture(ModelId),
    User(UserModel),
}

/// The sessions of one executor thread, one per model.
pub(crate) struct OrtEngine {
    sessions: HashMap<String, (Kind, Session)>,
}

impl OrtEngine {
    /// Loads every model's ONNX file into its own session.
    pub(crate) fn load(
        env: &Environment,
        models: &[(ModelId, ModelFiles)],
        user: &[UserModel],
        intra_threads: usize,
        providers: &[ExecutionProviderDispatch],
    ) -> Result<Self, BackendError> {
        let mut sessions = HashMap::new();
        for (id, files) in models {
            let fail = |reason: String| BackendError::ModelLoad {
                model: id.name().into(),
                reason,
            };
            let session = session_on(env, &files.onnx, intra_threads, providers).map_err(fail)?;
            sessions.insert(id.name().to_string(), (Kind::Fixture(*id), session));
        }
        for m in user {
            let session = session_on(env, &m.path, intra_threads, providers).map_err(|reason| {
                BackendError::ModelLoad {
                    model: m.name.clone(),
                    reason,
                }
            })?;
            sessions.insert(m.name.clone(), (Kind::User(m.clone()), session));
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
    session_on(env, onnx, intra_threads, &[])
}

/// [`build_session`] on `providers` (none: the CPU provider), each of which fails the
/// session if it cannot be registered.
fn session_on(
    env: &Environment,
    onnx: &std::path::Path,
    intra_threads: usize,
    providers: &[ExecutionProviderDispatch],
) -> Result<Session, String> {
    Session::builder(env)
        .and_then(|b| Ok(b.with_execution_providers(providers)?))
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
        let (kind, session) = self
            .sessions
            .get_mut(model)
            .ok_or_else(|| BackendError::UnknownModel(model.into()))?;
        let id = match kind {
            Kind::Fixture(id) => *id,
            Kind::User(m) => return run_user(m, session, inputs),
        };
        let input = check_input(id, inputs)?;
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
            DType::F16 => return Err(BackendError::BadInput("fixtures take no f16".into())),
        }
        .map_err(engine_err)?;
        let (out_shape, logits) = outputs[0].try_extract_tensor::<f32>().map_err(engine_err)?;
        let dims = out_shape.iter().map(|&d| d as usize).collect();
        Ok(vec![Tensor::from_f32(fixtures::OUTPUT_NAME, dims, logits)])
    }
}

/// Runs a user's model: every declared input by name, every declared output back, in
/// the declared order, with its own dtype.
fn run_user(
    m: &UserModel,
    session: &mut Session,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, BackendError> {
    m.check(inputs)?;
    let engine_err = |e: ort::Error| BackendError::Engine(e.to_string());
    let f32s: Vec<_> = inputs.iter().map(|t| view::<f32>(&t.data)).collect();
    let i64s: Vec<_> = inputs.iter().map(|t| view::<i64>(&t.data)).collect();
    let f16s: Vec<_> = inputs.iter().map(|t| view::<half::f16>(&t.data)).collect();
    let mut feed: Vec<(String, ort::session::SessionInputValue<'_>)> = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        let shape = t.shape.clone();
        let value: ort::session::SessionInputValue<'_> = match t.dtype {
            DType::F32 => TensorRef::from_array_view((shape, &*f32s[i]))
                .map_err(engine_err)?
                .into(),
            DType::I64 => TensorRef::from_array_view((shape, &*i64s[i]))
                .map_err(engine_err)?
                .into(),
            DType::F16 => TensorRef::from_array_view((shape, &*f16s[i]))
                .map_err(engine_err)?
                .into(),
        };
        feed.push((t.name.clone(), value));
    }
    let outputs = session.run(feed).map_err(engine_err)?;
    let mut out = Vec::with_capacity(m.outputs.len());
    for o in &m.outputs {
        let v = &outputs[o.name.as_str()];
        let tensor = match o.dtype {
            DType::F32 => {
                let (s, d) = v.try_extract_tensor::<f32>().map_err(engine_err)?;
                Tensor::from_f32(&o.name, dims(s), d)
            }
            DType::I64 => {
                let (s, d) = v.try_extract_tensor::<i64>().map_err(engine_err)?;
                Tensor::from_i64(&o.name, dims(s), d)
            }
            DType::F16 => {
                let (s, d) = v.try_extract_tensor::<half::f16>().map_err(engine_err)?;
                let bytes: Vec<u8> = d.iter().flat_map(|x| x.to_le_bytes()).collect();
                Tensor::new(&o.name, DType::F16, dims(s), bytes.into())?
            }
        };
        out.push(tensor);
    }
    Ok(out)
}

fn dims(shape: &ort::value::Shape) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

/// The bytes as a slice of `T`: borrowed when aligned, copied otherwise.
fn view<T: bytemuck::Pod>(bytes: &[u8]) -> std::borrow::Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(values) => std::borrow::Cow::Borrowed(values),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(bytes)),
    }
}
