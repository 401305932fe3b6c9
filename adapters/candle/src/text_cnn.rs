//! The Kim (2014) style text-CNN in candle-nn.
//!
//! ids `[B, L]` → embedding `[B, L, E]` → transpose `[B, E, L]` → for each kernel size
//! `k`: conv1d (stride 1, no padding) + bias → ReLU → max over time `[B, F]` → concat
//! in order → `[B, 3F]` → linear → logits `[B, classes]`.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, Embedding, Linear};
use contract::BackendError;
use fixtures::TextCnnSpec;

use crate::load::Weights;

/// The text-CNN with its weights.
#[derive(Debug, Clone)]
pub struct TextCnn {
    spec: TextCnnSpec,
    embedding: Embedding,
    convs: Vec<Conv1d>,
    fc: Linear,
}

impl TextCnn {
    /// Builds the network described by `spec` from `embedding.weight`,
    /// `convs.{i}.{weight,bias}` and `fc.{weight,bias}`.
    pub fn load(w: &Weights, spec: &TextCnnSpec) -> std::result::Result<Self, BackendError> {
        let embedding = Embedding::new(
            w.get("embedding.weight", &[spec.vocab, spec.embed])?,
            spec.embed,
        );
        let convs = spec
            .kernels
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let weight = w.get(&format!("convs.{i}.weight"), &[spec.filters, spec.embed, k])?;
                let bias = w.get(&format!("convs.{i}.bias"), &[spec.filters])?;
                Ok(Conv1d::new(weight, Some(bias), Conv1dConfig::default()))
            })
            .collect::<std::result::Result<_, BackendError>>()?;
        let features = spec.filters * spec.kernels.len();
        let fc = Linear::new(
            w.get("fc.weight", &[spec.classes, features])?,
            Some(w.get("fc.bias", &[spec.classes])?),
        );
        Ok(TextCnn {
            spec: *spec,
            embedding,
            convs,
            fc,
        })
    }

    /// The architecture constants.
    pub fn spec(&self) -> &TextCnnSpec {
        &self.spec
    }

    /// Logits `[B, classes]` for token ids `[B, L]` (u32 or i64, each below the
    /// vocabulary size, `L` at least the largest kernel).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.embedding.forward(ids)?.transpose(1, 2)?;
        let pooled = self
            .convs
            .iter()
            .map(|conv| conv.forward(&x)?.relu()?.max(D::Minus1))
            .collect::<Result<Vec<_>>>()?;
        self.fc.forward(&Tensor::cat(&pooled, 1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    const TINY: TextCnnSpec = TextCnnSpec {
        vocab: 11,
        seq_len: 9,
        embed: 4,
        kernels: [2, 3, 4],
        filters: 3,
        classes: 5,
    };

    /// A tiny model with random weights, plus those weights as plain vectors.
    fn tiny() -> (TextCnn, HashMap<String, Vec<f32>>) {
        let dev = Device::Cpu;
        let s = TINY;
        let mut shapes: Vec<(String, Vec<usize>)> =
            vec![("embedding.weight".into(), vec![s.vocab, s.embed])];
        for (i, k) in s.kernels.iter().enumerate() {
            shapes.push((format!("convs.{i}.weight"), vec![s.filters, s.embed, *k]));
            shapes.push((format!("convs.{i}.bias"), vec![s.filters]));
        }
        shapes.push(("fc.weight".into(), vec![s.classes, 3 * s.filters]));
        shapes.push(("fc.bias".into(), vec![s.classes]));
        let tensors: HashMap<String, Tensor> = shapes
            .into_iter()
            .map(|(n, shape)| (n, Tensor::randn(0f32, 1.0, shape, &dev).unwrap()))
            .collect();
        let values = tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let w = Weights::open("text-cnn", &path, &dev).unwrap();
        (TextCnn::load(&w, &s).unwrap(), values)
    }

    /// The definition, with plain loops.
    fn naive(w: &HashMap<String, Vec<f32>>, ids: &[u32]) -> Vec<f32> {
        let s = TINY;
        let emb = &w["embedding.weight"];
        let mut features = Vec::new();
        for (i, &k) in s.kernels.iter().enumerate() {
            let (cw, cb) = (
                &w[&format!("convs.{i}.weight")],
                &w[&format!("convs.{i}.bias")],
            );
            for f in 0..s.filters {
                let mut best = f32::NEG_INFINITY;
                for t in 0..=ids.len() - k {
                    let mut acc = cb[f];
                    for c in 0..s.embed {
                        for j in 0..k {
                            acc += cw[(f * s.embed + c) * k + j]
                                * emb[ids[t + j] as usize * s.embed + c];
                        }
                    }
                    best = best.max(acc.max(0.0));
                }
                features.push(best);
            }
        }
        (0..s.classes)
            .map(|o| {
                w["fc.bias"][o]
                    + features
                        .iter()
                        .enumerate()
                        .map(|(j, x)| w["fc.weight"][o * features.len() + j] * x)
                        .sum::<f32>()
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_on_a_tiny_model() {
        let (model, w) = tiny();
        let ids: Vec<u32> = (0..2 * TINY.seq_len)
            .map(|i| (i * 7 % TINY.vocab) as u32)
            .collect();
        let x = Tensor::from_slice(&ids, (2, TINY.seq_len), &Device::Cpu).unwrap();
        let got = model.forward(&x).unwrap();
        assert_eq!(got.dims(), &[2, TINY.classes]);
        assert_eq!(got.dtype(), DType::F32);
        for (b, row) in got.to_vec2::<f32>().unwrap().iter().enumerate() {
            let want = naive(&w, &ids[b * TINY.seq_len..][..TINY.seq_len]);
            for (g, e) in row.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{row:?} vs {want:?}"
                );
            }
        }
    }
}
