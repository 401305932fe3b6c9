//! ResNet-18 and ResNet-50 v1.5 in `tch::nn`, with torchvision's `state_dict` names.
//!
//! Stem: conv 7x7 stride 2 padding 3 (`conv1`), BN (`bn1`), ReLU, max pool 3x3 stride 2
//! padding 1. Then four stages `layer1..4` of basic blocks (ResNet-18, `[2, 2, 2, 2]`)
//! or bottleneck blocks (ResNet-50, `[3, 4, 6, 3]`, v1.5: the stride sits on the 3x3
//! `conv2`), a projection shortcut `downsample.{0,1}` (1x1 conv + BN) on each stage's
//! first block where the shape changes, global average pooling and `fc`.
//!
//! Batch norms are libtorch's own, in eval mode (running statistics, eps
//! [`fixtures::BN_EPS`]), exactly as torchvision runs them: nothing is folded, so this
//! backend also checks the reference's folding.

use fixtures::{ResnetDepth, BN_EPS, RESNET_CLASSES};
use tch::nn::{self, Module};
use tch::Tensor;

/// A ResNet's layers.
#[derive(Debug)]
pub struct Resnet {
    stem: ConvBn,
    blocks: Vec<Block>,
    fc: nn::Linear,
}

/// A bias-free convolution followed by an eval-mode batch norm.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

/// One residual block: the branch (ReLU after all but the last) and the shortcut.
#[derive(Debug)]
struct Block {
    branch: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Resnet {
    /// Creates the layers of a ResNet of `depth` under `p`.
    pub fn new(p: &nn::Path, depth: ResnetDepth) -> Self {
        let stem = conv_bn(p, "conv1", "bn1", 3, 64, 7, 2);
        let mut blocks = Vec::new();
        let mut in_c = 64;
        for (stage, &count) in depth.blocks().iter().enumerate() {
            let width = 64 << stage;
            let out_c = width * depth.expansion() as i64;
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let n = p / format!("layer{}", stage + 1) / b;
                let cb = |i: usize, ci, co, k, s| {
                    conv_bn(&n, &format!("conv{i}"), &format!("bn{i}"), ci, co, k, s)
                };
                let branch = if depth.bottleneck() {
                    vec![
                        cb(1, in_c, width, 1, 1),
                        cb(2, width, width, 3, stride),
                        cb(3, width, out_c, 1, 1),
                    ]
                } else {
                    vec![cb(1, in_c, width, 3, stride), cb(2, width, width, 3, 1)]
                };
                let downsample = (stride != 1 || in_c != out_c)
                    .then(|| conv_bn(&(&n / "downsample"), "0", "1", in_c, out_c, 1, stride));
                blocks.push(Block { branch, downsample });
                in_c = out_c;
            }
        }
        let fc = nn::linear(p / "fc", in_c, RESNET_CLASSES as i64, Default::default());
        Resnet { stem, blocks, fc }
    }
}

impl Module for Resnet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = self
            .stem
            .forward(x)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in &self.blocks {
            x = block.forward(&x);
        }
        // Global average pooling in the activations' own kind (f32, or bf16 at bf16).
        let kind = x.kind();
        x.mean_dim(&[2i64, 3][..], false, kind).apply(&self.fc)
    }
}

impl ConvBn {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, false)
    }
}

impl Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.branch.len() - 1;
        let mut y = x.shallow_clone();
        for (i, cb) in self.branch.iter().enumerate() {
            y = cb.forward(&y);
            if i < last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some(cb) => cb.forward(x),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// `conv` (`k x k`, padding `k / 2` as in torchvision, no bias) and batch norm `bn`.
fn conv_bn(
    p: &nn::Path,
    conv: &str,
    bn: &str,
    in_c: i64,
    out_c: i64,
    k: i64,
    stride: i64,
) -> ConvBn {
    let config = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ..Default::default()
    };
    let bn_config = nn::BatchNormConfig {
        eps: f64::from(BN_EPS),
        ..Default::default()
    };
    ConvBn {
        conv: nn::conv2d(p / conv, in_c, out_c, k, config),
        bn: nn::batch_norm2d(p / bn, out_c, bn_config),
    }
}
