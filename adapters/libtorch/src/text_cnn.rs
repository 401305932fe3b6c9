//! The Kim (2014) style text-CNN in `tch::nn`, with the fixture's `state_dict` names.
//!
//! ids `[B, L]` → embedding `[B, L, E]` → transpose `[B, E, L]` → for each kernel size
//! `k`: conv1d (stride 1, no padding) + bias → ReLU → max over time `[B, F]` → concat
//! in order → `[B, 3F]` → linear → logits `[B, classes]`.

use fixtures::TextCnnSpec;
use tch::nn::{self, Module};
use tch::Tensor;

/// The text-CNN's layers; their variables are named `embedding.weight`,
/// `convs.{i}.{weight,bias}` and `fc.{weight,bias}` under the store's root.
#[derive(Debug)]
pub struct TextCnn {
    embedding: nn::Embedding,
    convs: Vec<nn::Conv1D>,
    fc: nn::Linear,
}

impl TextCnn {
    /// Creates the layers of `spec` under `p` (weights are filled in by [`crate::load`]).
    pub fn new(p: &nn::Path, spec: &TextCnnSpec) -> Self {
        let i = |n: usize| n as i64;
        let embedding = nn::embedding(
            p / "embedding",
            i(spec.vocab),
            i(spec.embed),
            Default::default(),
        );
        let convs = spec
            .kernels
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                nn::conv1d(
                    p / "convs" / j,
                    i(spec.embed),
                    i(spec.filters),
                    i(k),
                    Default::default(),
                )
            })
            .collect();
        let features = spec.filters * spec.kernels.len();
        let fc = nn::linear(p / "fc", i(features), i(spec.classes), Default::default());
        TextCnn {
            embedding,
            convs,
            fc,
        }
    }
}

impl Module for TextCnn {
    fn forward(&self, ids: &Tensor) -> Tensor {
        let x = ids.apply(&self.embedding).transpose(1, 2);
        let pooled: Vec<Tensor> = self
            .convs
            .iter()
            .map(|conv| x.apply(conv).relu().amax([-1i64], false))
            .collect();
        Tensor::cat(&pooled, 1).apply(&self.fc)
    }
}
