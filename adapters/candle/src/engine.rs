//! One executor: its models, its intra-op thread pool, and the checks and conversions
//! between contract tensors and candle tensors.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use contract::{BackendError, DType, Engine, Tensor};
use fixtures::{ModelId, INPUT_NAME, OUTPUT_NAME, TEXT_CNN};

use crate::load::one_line;
use crate::model::Model;

/// The engine of one executor thread: every requested model, and on the CPU the rayon
/// pool all its forward passes run in.
pub struct CandleEngine {
    models: HashMap<String, Model>,
    /// `None` on CUDA, where threads do not matter.
    pool: Option<rayon::ThreadPool>,
    device: Device,
}

impl CandleEngine {
    /// Builds executor `index`: an intra-op pool of `intra_threads` threads (CPU only)
    /// and its own copy of each model in `models`.
    pub fn new(
        index: usize,
        fixtures_dir: &Path,
        models: &[ModelId],
        device: Device,
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
                Model::load(fixtures_dir, id, &device)?,
            );
        }
        Ok(CandleEngine {
            models: loaded,
            pool,
            device,
        })
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
        };
        let x =
            candle_core::Tensor::from_raw_buffer(&input.data, dtype, &input.shape, &self.device)
                .map_err(engine)?;
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
            .and_then(|y| y.to_vec1::<f32>())
            .map_err(engine)
    }
}

impl Engine for CandleEngine {
    fn infer(&mut self, model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
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

/// The single input tensor, checked against the model's input name, dtype and shape,
/// and for the text-CNN, the token id range.
pub fn check_input(model: ModelId, inputs: &[Tensor]) -> Result<&Tensor, BackendError> {
    let [input] = inputs else {
        return Err(BackendError::BadInput(format!(
            "{model} takes exactly one input tensor ({INPUT_NAME}), got {}",
            inputs.len()
        )));
    };
    let item = model.item_shape();
    let expected = format!(
        "{INPUT_NAME} {} [batch, {}] with batch >= 1",
        model.input_dtype(),
        item.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let fits = input.name == INPUT_NAME
        && input.dtype == model.input_dtype()
        && input.shape.len() == item.len() + 1
        && input.shape[1..] == item[..]
        && input.batch() >= 1;
    if !fits {
        return Err(BackendError::BadInput(format!(
            "{model} takes {expected}, got {} {} {:?}",
            input.name, input.dtype, input.shape
        )));
    }
    if model == ModelId::TextCnn {
        let vocab = TEXT_CNN.vocab as i64;
        if let Some((i, id)) = input
            .data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .enumerate()
            .find(|(_, id)| !(0..vocab).contains(id))
        {
            return Err(BackendError::BadInput(format!(
                "token id {id} at position {i} of {INPUT_NAME} is outside the vocabulary 0..{vocab}"
            )));
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(model: ModelId, inputs: &[Tensor]) -> String {
        let e = check_input(model, inputs).unwrap_err();
        assert_eq!(e.kind(), "bad_input");
        e.to_string()
    }

    #[test]
    fn accepts_the_fixture_inputs() {
        for (model, batch) in [(ModelId::TextCnn, 3), (ModelId::Resnet18, 1)] {
            let t = fixtures::inputs::batch(model, batch, 1);
            assert!(check_input(model, std::slice::from_ref(&t)).is_ok());
        }
    }

    #[test]
    fn rejects_wrong_name_dtype_shape_count_and_ids() {
        let ids = |shape: Vec<usize>, v: i64| {
            let n = shape.iter().product();
            Tensor::from_i64(INPUT_NAME, shape, &vec![v; n])
        };
        let e = bad(ModelId::TextCnn, &[ids(vec![2, 599], 1)]);
        assert!(
            e.contains("text-cnn takes input i64 [batch, 600]") && e.contains("[2, 599]"),
            "{e}"
        );
        let e = bad(ModelId::TextCnn, &[ids(vec![0, 600], 1)]);
        assert!(e.contains("batch >= 1"), "{e}");
        let e = bad(ModelId::TextCnn, &[ids(vec![600], 1)]);
        assert!(e.contains("[600]"), "{e}");
        let mut renamed = ids(vec![1, 600], 1);
        renamed.name = "tokens".into();
        assert!(bad(ModelId::TextCnn, &[renamed]).contains("got tokens"));
        let floats = Tensor::from_f32(INPUT_NAME, vec![1, 600], &[0.0; 600]);
        assert!(bad(ModelId::TextCnn, &[floats]).contains("got input f32"));
        let e = bad(ModelId::TextCnn, &[ids(vec![1, 600], 5000)]);
        assert!(e.contains("token id 5000 at position 0"), "{e}");
        assert!(bad(ModelId::TextCnn, &[ids(vec![1, 600], -1)]).contains("token id -1"));
        assert!(bad(ModelId::TextCnn, &[]).contains("exactly one input"));

        let image = Tensor::from_f32(INPUT_NAME, vec![1, 224, 224, 3], &vec![0.0; 224 * 224 * 3]);
        let e = bad(ModelId::Resnet50, &[image]);
        assert!(
            e.contains("resnet50 takes input f32 [batch, 3, 224, 224]"),
            "{e}"
        );
    }
}
