//! The two EfficientNet blocks, `ds` (depthwise-separable) and `ir` (inverted residual,
//! MBConv), with squeeze-excitation, residual and drop-connect (timm
//! `DepthwiseSeparableConv` and `InvertedResidual`).
//!
//! - `ds`: depthwise k×k → BN → act → (SE) → 1×1 projection → BN;
//! - `ir`: 1×1 expansion → BN → act → depthwise k×k → BN → act → (SE) → 1×1 projection → BN;
//! - residual (stride 1, in = out): the branch, dropped per sample with the block's
//!   drop-connect rate p and scaled by 1 / (1 − p) when kept, is added to the input. Drop-connect
//!   (stochastic depth; timm `drop_path`) acts only in training: on an autodiff device with the
//!   block's training flag set, as burn's `Dropout` does.
//!
//! Fields are in timm's `state_dict` order, so weights can be matched tensor by tensor.
use burn::module::{Flag, Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

use super::conv_bn::{ConvBn, ConvBnConfig};
use super::padding::Padding;
use super::squeeze_excite::SqueezeExcite;
use crate::model::arch::{Activation, Block};
use crate::model::block::BlockKind;

/// One `ds` or `ir` block.
#[derive(Module, Debug)]
pub struct MbConv {
    /// 1×1 expansion to the mid channels (`ir` only; timm `conv_pw`, `bn1`).
    pub expand: Option<ConvBn>,
    /// Depthwise k×k conv carrying the block's stride (timm `conv_dw`).
    pub depthwise: ConvBn,
    /// Squeeze-excitation on the mid channels (B0–B7).
    pub se: Option<SqueezeExcite>,
    /// 1×1 linear projection to the output channels (timm `conv_pw` / `conv_pwl`).
    pub project: ConvBn,
    /// Whether the input is added back.
    pub residual: bool,
    /// Probability of dropping the residual branch of a sample in training.
    pub drop_connect: f64,
    /// Whether drop-connect is active (cleared by `freeze`, like `Dropout`'s).
    pub training: Param<Flag>,
}

impl MbConv {
    /// Build `block` with the network's activation and padding, scaling its drop-connect rate
    /// by `drop_connect_scale` (1 for the spec's rates, 0 to disable).
    pub fn new(
        block: &Block,
        activation: Activation,
        padding: Padding,
        drop_connect_scale: f64,
        device: &Device,
    ) -> Self {
        let (i, m, o) = (
            block.in_channels as usize,
            block.mid_channels as usize,
            block.out_channels as usize,
        );
        let expand = match block.kind {
            BlockKind::DepthwiseSeparable => None,
            BlockKind::InvertedResidual => {
                Some(ConvBnConfig::new(i, m, 1, padding, Some(activation)).init(device))
            }
        };
        let depthwise = ConvBnConfig::depthwise(
            m,
            block.kernel as usize,
            block.stride as usize,
            padding,
            activation,
        )
        .init(device);
        let se = block
            .se_channels
            .map(|r| SqueezeExcite::new(m, r as usize, activation, device));
        let project = ConvBnConfig::new(m, o, 1, padding, None).init(device);
        MbConv {
            expand,
            depthwise,
            se,
            project,
            residual: block.residual,
            drop_connect: if block.residual {
                block.drop_connect * drop_connect_scale
            } else {
                0.0
            },
            training: Param::from_bool(true),
        }
    }

    /// `[N, in, H, W]` → `[N, out, H / stride, W / stride]` (rounded up with TF padding).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(expand) = &self.expand {
            h = expand.forward(h);
        }
        h = self.depthwise.forward(h);
        if let Some(se) = &self.se {
            h = se.forward(h);
        }
        h = self.project.forward(h);
        if !self.residual {
            return h;
        }
        self.drop_path(h) + x
    }

    /// Zero the branch of whole samples with probability `drop_connect`, scale the kept ones
    /// by 1 / keep; identity outside training.
    fn drop_path(&self, h: Tensor<4>) -> Tensor<4> {
        let p = self.drop_connect;
        if p == 0.0 || !self.training.is_enabled() || !h.device().is_autodiff() {
            return h;
        }
        let keep = 1.0 - p;
        let [n, _, _, _] = h.dims();
        let mask = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &h.device());
        h * mask.div_scalar(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::net::trainable_parameters;
    use crate::model::{Architecture, Variant};

    #[test]
    fn builds_the_spec_block() {
        let device = Device::flex();
        let b0 = Architecture::new(Variant::B0, 10);
        // blocks[0]: ds 32 → 16, SE 8; blocks[1]: ir 16 → 96 → 24, k3 s2, SE 4.
        let ds = MbConv::new(&b0.blocks[0], b0.activation, Padding::TfSame, 1.0, &device);
        assert!(ds.expand.is_none());
        assert_eq!(ds.se.as_ref().unwrap().reduce.weight.dims(), [8, 32, 1, 1]);
        let ir = MbConv::new(&b0.blocks[1], b0.activation, Padding::TfSame, 1.0, &device);
        assert_eq!(
            ir.expand.as_ref().unwrap().conv.weight.dims(),
            [96, 16, 1, 1]
        );
        assert_eq!(ir.depthwise.conv.weight.dims(), [96, 1, 3, 3]);
        assert_eq!(ir.depthwise.conv.groups, 96);
        assert_eq!(ir.project.conv.weight.dims(), [24, 96, 1, 1]);
        let x = Tensor::<4>::zeros([1, 16, 15, 16], &device);
        assert_eq!(ir.forward(x).dims(), [1, 24, 8, 8]);
        // blocks[2]: the stage's second block, residual with rate 0.2 · 2 / 16.
        let res = MbConv::new(&b0.blocks[2], b0.activation, Padding::TfSame, 1.0, &device);
        assert!(res.residual);
        assert!((res.drop_connect - 0.025).abs() < 1e-12);
        assert_eq!(
            trainable_parameters(&res),
            b0.blocks[2].trainable_parameters()
        );
    }

    /// In training each sample's branch is either dropped (output = input) or kept and scaled
    /// by 1 / keep; in evaluation it is always kept unscaled.
    #[test]
    fn drop_connect_drops_whole_samples_in_training_only() {
        let device = Device::flex();
        device.seed(7);
        let lite = Architecture::new(Variant::Lite0, 10);
        let block = lite.blocks[2]; // ir 24 → 24, residual
        assert!(block.residual);
        let dropping = MbConv::new(
            &block,
            lite.activation,
            Padding::TfSame,
            0.5 / block.drop_connect,
            &device,
        );
        assert!((dropping.drop_connect - 0.5).abs() < 1e-12);
        let n = 64;
        let x = Tensor::<4>::random([n, 24, 6, 6], Distribution::Default, &device);

        // Train mode, twice on the same batch: with p = 0.5, and with p = 0 for the branch.
        let train = dropping.clone().train();
        let mut kept_branch = train.clone();
        kept_branch.drop_connect = 0.0;
        let xa = Tensor::<4>::from_data(x.to_data(), &device.autodiff());
        let y = train.forward(xa.clone()) - xa.clone();
        let branch = kept_branch.forward(xa.clone()) - xa;
        let mut dropped = 0;
        for s in 0..n {
            let ys = y.clone().slice(s..s + 1);
            let bs = branch.clone().slice(s..s + 1);
            let zero: f32 = ys.clone().abs().max().into_scalar();
            let scaled: f32 = (ys - bs.mul_scalar(2.0)).abs().max().into_scalar();
            assert!(zero < 1e-6 || scaled < 1e-4, "sample {s}: {zero} {scaled}");
            dropped += usize::from(zero < 1e-6);
        }
        // Binomial(64, 0.5): 16..=48 has probability > 0.9999.
        assert!((16..=48).contains(&dropped), "{dropped} of {n} dropped");

        // Eval: the same as without drop-connect.
        let mut no_drop = dropping.clone();
        no_drop.drop_connect = 0.0;
        let a = dropping.valid().forward(x.clone());
        let b = no_drop.valid().forward(x);
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
    }
}
