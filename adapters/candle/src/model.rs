//! One fixture model, loaded from its canonical safetensors file.

use std::path::Path;

use candle_core::{Device, Tensor};
use contract::BackendError;
use fixtures::{ModelFiles, ModelId, TEXT_CNN};

use crate::load::Weights;
use crate::resnet::Resnet;
use crate::text_cnn::TextCnn;

/// A fixture model ready to run.
#[derive(Debug, Clone)]
pub enum Model {
    /// The text-CNN.
    TextCnn(TextCnn),
    /// ResNet-18 or ResNet-50.
    Resnet(Resnet),
}

impl Model {
    /// Loads `id` from `<fixtures_dir>/<model>/model.safetensors` onto `device`, its
    /// weights as `dtype` (f32, or f16/bf16 for `--precision`).
    ///
    /// Also calls [`crate::threads::quiet_barrier_pool`], so that the model's element-wise
    /// ops run on whatever thread runs the forward pass.
    pub fn load(
        fixtures_dir: &Path,
        id: ModelId,
        device: &Device,
        dtype: candle_core::DType,
    ) -> Result<Self, BackendError> {
        crate::threads::quiet_barrier_pool();
        let files = ModelFiles::new(fixtures_dir, id);
        let w = Weights::open(id.name(), &files.safetensors, device)?.with_dtype(dtype);
        Ok(match id.resnet() {
            None => Model::TextCnn(TextCnn::load(&w, &TEXT_CNN)?),
            Some(depth) => Model::Resnet(Resnet::load(&w, depth)?),
        })
    }

    /// Which fixture model this is.
    pub fn id(&self) -> ModelId {
        match self {
            Model::TextCnn(_) => ModelId::TextCnn,
            Model::Resnet(r) => match r.depth() {
                fixtures::ResnetDepth::R18 => ModelId::Resnet18,
                fixtures::ResnetDepth::R50 => ModelId::Resnet50,
            },
        }
    }

    /// Logits `[B, classes]` for a candle input (`[B, 600]` ids, or `[B, 3, 224, 224]`
    /// images). Runs on the calling thread and the rayon pool it is in.
    pub fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Model::TextCnn(m) => m.forward(input),
            Model::Resnet(m) => m.forward(input),
        }
    }
}
