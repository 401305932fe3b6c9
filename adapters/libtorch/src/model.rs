//! One fixture model: its `tch::nn` layers and the `VarStore` that owns their weights.

use std::path::Path;

use contract::BackendError;
use contract::Precision;
use fixtures::{ModelFiles, ModelId, TEXT_CNN};
use tch::nn::{Module, VarStore};
use tch::{Kind, Tensor};

use crate::resnet::Resnet;
use crate::text_cnn::TextCnn;

/// A fixture model ready to run.
#[derive(Debug)]
pub struct Model {
    id: ModelId,
    net: Net,
    kind: Kind,
    _store: VarStore,
}

#[derive(Debug)]
enum Net {
    TextCnn(TextCnn),
    Resnet(Box<Resnet>),
}

impl Model {
    /// Builds `id` on `device` and fills it from `<fixtures_dir>/<model>/model.safetensors`;
    /// at bf16 the weights are then rounded to bfloat16 and the model runs in it.
    pub fn load(
        fixtures_dir: &Path,
        id: ModelId,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self, BackendError> {
        let mut store = VarStore::new(device);
        let net = {
            let root = store.root();
            match id.resnet() {
                None => Net::TextCnn(TextCnn::new(&root, &TEXT_CNN)),
                Some(depth) => Net::Resnet(Box::new(Resnet::new(&root, depth))),
            }
        };
        crate::load::load(
            id.name(),
            &ModelFiles::new(fixtures_dir, id).safetensors,
            &store,
        )?;
        let kind = match precision {
            Precision::Bf16 => {
                store.bfloat16();
                Kind::BFloat16
            }
            _ => Kind::Float,
        };
        store.freeze();
        Ok(Model {
            id,
            net,
            kind,
            _store: store,
        })
    }

    /// Which fixture model this is.
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Logits `[B, classes]` (f32) for an input on the model's device: a float input
    /// is cast to the model's kind first (bf16 at that precision). Call under
    /// `tch::no_grad`.
    pub fn forward(&self, input: &Tensor) -> Tensor {
        let cast;
        let input = if input.is_floating_point() && input.kind() != self.kind {
            cast = input.to_kind(self.kind);
            &cast
        } else {
            input
        };
        let y = match &self.net {
            Net::TextCnn(m) => m.forward(input),
            Net::Resnet(m) => m.forward(input),
        };
        y.to_kind(Kind::Float)
    }
}
