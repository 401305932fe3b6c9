//! One fixture model: its `tch::nn` layers and the `VarStore` that owns their weights.

use std::path::Path;

use contract::BackendError;
use fixtures::{ModelFiles, ModelId, TEXT_CNN};
use tch::nn::{Module, VarStore};
use tch::Tensor;

use crate::resnet::Resnet;
use crate::text_cnn::TextCnn;

/// A fixture model ready to run.
#[derive(Debug)]
pub struct Model {
    id: ModelId,
    net: Net,
    _store: VarStore,
}

#[derive(Debug)]
enum Net {
    TextCnn(TextCnn),
    Resnet(Box<Resnet>),
}

impl Model {
    /// Builds `id` on `device` and fills it from `<fixtures_dir>/<model>/model.safetensors`.
    pub fn load(
        fixtures_dir: &Path,
        id: ModelId,
        device: tch::Device,
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
        store.freeze();
        Ok(Model {
            id,
            net,
            _store: store,
        })
    }

    /// Which fixture model this is.
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Logits `[B, classes]` for an input on the model's device. Call under
    /// `tch::no_grad`.
    pub fn forward(&self, input: &Tensor) -> Tensor {
        match &self.net {
            Net::TextCnn(m) => m.forward(input),
            Net::Resnet(m) => m.forward(input),
        }
    }
}
