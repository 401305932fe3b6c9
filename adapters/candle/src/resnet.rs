//! ResNet-18 and ResNet-50 v1.5 in candle-nn, from torchvision `state_dict` names.
//!
//! Stem: conv 7x7 stride 2 padding 3, BN, ReLU, max pool 3x3 stride 2 padding 1. Then
//! four stages of basic blocks (ResNet-18, `[2, 2, 2, 2]`) or bottleneck blocks
//! (ResNet-50, `[3, 4, 6, 3]`, v1.5: the stride sits on the 3x3 `conv2`), a projection
//! shortcut `downsample.{0,1}` (1x1 conv + BN) on each stage's first block where the
//! shape changes, global average pooling and `fc`.
//!
//! # Batch norm is folded into the convolutions
//! Every convolution here is followed by an eval-mode batch norm, an affine map per
//! channel: `y = (x - mean) * gamma / sqrt(var + eps) + beta`. At load time each BN is
//! folded into the convolution before it (weights scaled per output channel, a bias
//! added), computed in f64 and rounded once to f32 ([`fold_batch_norm`]). This is the
//! same transformation ONNX Runtime applies to the ONNX export of these weights; it
//! leaves the function unchanged up to rounding and saves candle four full passes over
//! every activation (`candle_nn::BatchNorm` evaluates sub, div, mul, add).
//!
//! # Max pool padding
//! candle's `max_pool2d` has no padding argument, so the stem pads explicitly with
//! zeros, one pixel per side, before a 3x3 stride-2 pool ([`max_pool_3x3_s2_p1`]).
//! PyTorch pads with -inf. The two agree here because the pool's input comes straight
//! from a ReLU: every value is >= 0, and every window holds at least one real value
//! (with padding 1 and a 3x3 window, each window covers its own centre pixel), so a
//! zero from the padding can never exceed the window's maximum of real values.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use contract::BackendError;
use fixtures::{ResnetDepth, BN_EPS, RESNET_CLASSES};

use crate::load::Weights;

/// A ResNet with its (BN-folded) weights.
#[derive(Debug, Clone)]
pub struct Resnet {
    depth: ResnetDepth,
    stem: Conv2d,
    blocks: Vec<Block>,
    fc: Linear,
}

/// One residual block: the branch's convolutions (ReLU after all but the last) and
/// the projection shortcut, if any.
#[derive(Debug, Clone)]
struct Block {
    branch: Vec<Conv2d>,
    downsample: Option<Conv2d>,
}

impl Resnet {
    /// Builds a ResNet of `depth` from torchvision `state_dict` tensors.
    pub fn load(w: &Weights, depth: ResnetDepth) -> std::result::Result<Self, BackendError> {
        let stem = conv_bn(w, "conv1", "bn1", 3, 64, 7, 2)?;
        let mut blocks = Vec::new();
        let mut in_c = 64;
        for (stage, &count) in depth.blocks().iter().enumerate() {
            let width = 64 << stage;
            let out_c = width * depth.expansion();
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let n = format!("layer{}.{b}", stage + 1);
                let cb = |i: usize, ci, co, k, s| {
                    conv_bn(
                        w,
                        &format!("{n}.conv{i}"),
                        &format!("{n}.bn{i}"),
                        ci,
                        co,
                        k,
                        s,
                    )
                };
                let branch = if depth.bottleneck() {
                    vec![
                        cb(1, in_c, width, 1, 1)?,
                        cb(2, width, width, 3, stride)?,
                        cb(3, width, out_c, 1, 1)?,
                    ]
                } else {
                    vec![cb(1, in_c, width, 3, stride)?, cb(2, width, width, 3, 1)?]
                };
                let downsample = if stride != 1 || in_c != out_c {
                    let (conv, bn) = (format!("{n}.downsample.0"), format!("{n}.downsample.1"));
                    Some(conv_bn(w, &conv, &bn, in_c, out_c, 1, stride)?)
                } else {
                    None
                };
                blocks.push(Block { branch, downsample });
                in_c = out_c;
            }
        }
        let fc = Linear::new(
            w.get("fc.weight", &[RESNET_CLASSES, in_c])?,
            Some(w.get("fc.bias", &[RESNET_CLASSES])?),
        );
        Ok(Resnet {
            depth,
            stem,
            blocks,
            fc,
        })
    }

    /// The depth (18 or 50).
    pub fn depth(&self) -> ResnetDepth {
        self.depth
    }

    /// Logits `[B, 1000]` for normalised images `[B, 3, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward(x)?.relu()?;
        let mut x = max_pool_3x3_s2_p1(&x)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.fc.forward(&x.mean((2, 3))?)
    }
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.branch.len() - 1;
        let mut y = x.clone();
        for (i, conv) in self.branch.iter().enumerate() {
            y = conv.forward(&y)?;
            if i < last {
                y = y.relu()?;
            }
        }
        let shortcut = match &self.downsample {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }
}

/// Max pooling 3x3, stride 2, padding 1, for inputs that are all >= 0 (see the module
/// docs for why zero padding is exact then).
pub fn max_pool_3x3_s2_p1(x: &Tensor) -> Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 2)
}

/// A bias-free convolution `conv` (`k x k`, padding `k / 2` as in torchvision) followed
/// by the eval-mode batch norm `bn`, as one convolution with a bias.
fn conv_bn(
    w: &Weights,
    conv: &str,
    bn: &str,
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
) -> std::result::Result<Conv2d, BackendError> {
    let weight = w.get(&format!("{conv}.weight"), &[out_c, in_c, k, k])?;
    let [gamma, beta, mean, var] = ["weight", "bias", "running_mean", "running_var"]
        .map(|p| w.get(&format!("{bn}.{p}"), &[out_c]));
    let (weight, bias) =
        fold_batch_norm(&weight, &gamma?, &beta?, &mean?, &var?, BN_EPS).map_err(|e| {
            w.fail(format!(
                "cannot fold {bn} into {conv}: {}",
                crate::load::one_line(&e)
            ))
        })?;
    let config = Conv2dConfig {
        padding: k / 2,
        stride,
        ..Default::default()
    };
    Ok(Conv2d::new(weight, Some(bias), config))
}

/// Folds an eval-mode batch norm into the convolution before it: returns the weight
/// `[O, C, kh, kw]` scaled by `gamma / sqrt(var + eps)` per output channel and the bias
/// `beta - mean * gamma / sqrt(var + eps)`, computed in f64 and rounded once to the
/// weight's element type (f32, or f16/bf16 with `--precision`).
pub fn fold_batch_norm(
    weight: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor)> {
    let f64 = |t: &Tensor| t.to_dtype(DType::F64);
    let scale = f64(gamma)?.div(&(f64(var)? + f64::from(eps))?.sqrt()?)?;
    let out_c = scale.dims1()?;
    let folded = f64(weight)?.broadcast_mul(&scale.reshape((out_c, 1, 1, 1))?)?;
    let bias = (f64(beta)? - f64(mean)?.mul(&scale)?)?;
    let dtype = weight.dtype();
    Ok((folded.to_dtype(dtype)?, bias.to_dtype(dtype)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, ModuleT};

    #[test]
    fn folded_batch_norm_equals_conv_then_batch_norm() {
        let dev = Device::Cpu;
        let (o, c, k) = (4, 3, 3);
        let x = Tensor::randn(0f32, 1.0, (2, c, 7, 6), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap();
        let gamma = Tensor::new(&[0.5f32, 1.5, -0.7, 1.0], &dev).unwrap();
        let beta = Tensor::new(&[0.1f32, -0.2, 0.3, 0.0], &dev).unwrap();
        let mean = Tensor::new(&[0.2f32, -1.0, 0.0, 3.0], &dev).unwrap();
        let var = Tensor::new(&[0.5f32, 2.0, 1e-3, 4.0], &dev).unwrap();

        let bn = candle_nn::BatchNorm::new(
            o,
            mean.clone(),
            var.clone(),
            gamma.clone(),
            beta.clone(),
            1e-5,
        )
        .unwrap();
        let reference = bn
            .forward_t(&x.conv2d(&w, 1, 2, 1, 1).unwrap(), false)
            .unwrap();

        let (fw, fb) = fold_batch_norm(&w, &gamma, &beta, &mean, &var, 1e-5).unwrap();
        let config = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let folded = Conv2d::new(fw, Some(fb), config).forward(&x).unwrap();

        assert_eq!(folded.dims(), reference.dims());
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (got, want) = (values(&folded), values(&reference));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * scale, "{g} vs {e} at scale {scale}");
        }
    }

    #[test]
    fn batch_norm_by_hand() {
        // One channel, 1x1 kernel of weight 2: y = (2x - mean) * gamma / sqrt(var + eps) + beta.
        let dev = Device::Cpu;
        let one = |v: f32| Tensor::new(&[v], &dev).unwrap();
        let w = Tensor::new(&[[[[2.0f32]]]], &dev).unwrap();
        let (fw, fb) =
            fold_batch_norm(&w, &one(3.0), &one(0.5), &one(1.0), &one(4.0), 0.0).unwrap();
        let x = Tensor::new(&[[[[1.0f32, -2.0]]]], &dev).unwrap();
        let y = Conv2d::new(fw, Some(fb), Conv2dConfig::default())
            .forward(&x)
            .unwrap();
        // (2 - 1) * 3 / 2 + 0.5 = 2.0 and (-4 - 1) * 1.5 + 0.5 = -7.0
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2.0, -7.0]
        );
    }

    #[test]
    fn max_pool_pads_like_pytorch_on_relu_outputs() {
        let dev = Device::Cpu;
        // 0..16 as a 4x4 image: PyTorch's MaxPool2d(3, 2, 1) gives [[5, 7], [13, 15]].
        let x = Tensor::arange(0f32, 16.0, &dev)
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap();
        let y = max_pool_3x3_s2_p1(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5.0, 7.0, 13.0, 15.0]
        );
        // All zeros except one corner: windows touching only padding and zeros give 0,
        // exactly what -inf padding gives for non-negative inputs.
        let mut v = vec![0f32; 25];
        v[24] = 3.0;
        let x = Tensor::from_vec(v, (1, 1, 5, 5), &dev).unwrap();
        let y = max_pool_3x3_s2_p1(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 3, 3]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]
        );
        // 112x112 (the stem's output) pools to 56x56 as in torchvision.
        let x = Tensor::zeros((1, 2, 112, 112), DType::F32, &dev).unwrap();
        assert_eq!(max_pool_3x3_s2_p1(&x).unwrap().dims(), &[1, 2, 56, 56]);
    }
}
