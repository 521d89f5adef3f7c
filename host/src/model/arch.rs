//! The fully expanded architecture of one variant: every block's channels, kernel, stride,
//! squeeze-excitation width and drop-connect rate, plus stem, head and classifier.
//!
//! This is what a trainer builds layers from and what the parameter count is checked on. The
//! rules follow timm (`timm/models/efficientnet.py` `EfficientNet.__init__`,
//! `_efficientnet_builder.py` `EfficientNetBuilder`, `_efficientnet_blocks.py`), which
//! reproduces the TF reference (`efficientnet_model.py`):
//!
//! - stem: 3×3 stride-2 conv (no bias) → BN → act, [`STEM_CHANNELS`] scaled by width (Lite:
//!   not scaled);
//! - `ds` block: depthwise k×k → BN → act → SE → 1×1 projection → BN;
//! - `ir` block: 1×1 expansion to `mid = make_divisible(in · e)` → BN → act → depthwise k×k
//!   → BN → act → SE → 1×1 projection → BN;
//! - SE: global pool → 1×1 conv (bias) to `round(mid · ratio / e)` (= a quarter of the
//!   block's *input* channels; timm `se_from_exp=False`) → act → 1×1 conv (bias) → sigmoid;
//! - residual (with drop-connect) when stride is 1 and in = out channels;
//! - head: 1×1 conv (no bias) to [`HEAD_CHANNELS`] scaled by width (Lite: 1280) → BN → act
//!   → global average pool → dropout → linear classifier.
use super::base::{B0_STAGES, HEAD_CHANNELS, STEM_CHANNELS, STEM_KERNEL, STEM_STRIDE};
use super::block::{BlockKind, BlockSpec};
use super::scaling::{Family, Variant, make_divisible, round_channels, round_repeats};

/// BatchNorm epsilon of the TF reference (`batch_norm_epsilon=1e-3`; timm
/// `BN_EPS_TF_DEFAULT`). timm's own `efficientnet_*` models use PyTorch's 1e-5; we train the
/// reference's way.
pub const BN_EPS: f64 = 1e-3;
/// BatchNorm momentum in the PyTorch convention (weight of the new batch): 1 − the TF
/// reference's decay 0.99 (timm `BN_MOMENTUM_TF_DEFAULT`).
pub const BN_MOMENTUM: f64 = 0.01;
/// Drop-connect (stochastic depth) rate of the last block; block `i` of `n` gets
/// `DROP_CONNECT · i / n` (TF `survival_prob=0.8`; timm `drop_path_rate` in
/// `EfficientNetBuilder._make_block`).
pub const DROP_CONNECT: f64 = 0.2;

/// The nonlinearity used throughout the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// x · sigmoid(x) (swish), B0–B7.
    Silu,
    /// min(max(x, 0), 6), Lite0–4 (quantises well).
    Relu6,
}

impl Activation {
    /// Lower-case name (`silu`, `relu6`).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Relu6 => "relu6",
        }
    }
}

/// One block after scaling and expansion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    /// Index of the stage (0–6) the block belongs to.
    pub stage: usize,
    /// Block type.
    pub kind: BlockKind,
    /// Input channels.
    pub in_channels: u32,
    /// Channels of the depthwise convolution (`in` for `ds`, expanded for `ir`).
    pub mid_channels: u32,
    /// Output channels.
    pub out_channels: u32,
    /// Depthwise kernel size.
    pub kernel: u32,
    /// Depthwise stride.
    pub stride: u32,
    /// Channels of the squeeze-excitation bottleneck; `None`: no SE.
    pub se_channels: Option<u32>,
    /// Whether the block adds its input back (stride 1 and in = out).
    pub residual: bool,
    /// Drop-connect rate on the residual branch (meaningful only when `residual`).
    pub drop_connect: f64,
}

impl Block {
    /// Trainable parameters: conv weights (no bias), BN γ and β, SE convs with bias.
    pub fn trainable_parameters(&self) -> u64 {
        let (i, m, o, k) = (
            u64::from(self.in_channels),
            u64::from(self.mid_channels),
            u64::from(self.out_channels),
            u64::from(self.kernel),
        );
        let expand = match self.kind {
            BlockKind::DepthwiseSeparable => 0,
            BlockKind::InvertedResidual => i * m + 2 * m,
        };
        let depthwise = m * k * k + 2 * m;
        let se = self.se_channels.map_or(0, |r| {
            let r = u64::from(r);
            (m * r + r) + (r * m + m)
        });
        let project = m * o + 2 * o;
        expand + depthwise + se + project
    }
}

/// A variant expanded for a given number of classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// The variant.
    pub variant: Variant,
    /// Classifier outputs.
    pub classes: u32,
    /// Input resolution in pixels.
    pub resolution: u32,
    /// Nonlinearity.
    pub activation: Activation,
    /// Stem output channels.
    pub stem_channels: u32,
    /// The seven stages after width and depth scaling, as block strings.
    pub stages: Vec<BlockSpec>,
    /// Every block in order.
    pub blocks: Vec<Block>,
    /// Head (final 1×1 conv) channels, the classifier's input.
    pub head_channels: u32,
    /// Dropout before the classifier.
    pub dropout: f64,
}

impl Architecture {
    /// Expand `variant` with a `classes`-way classifier.
    pub fn new(variant: Variant, classes: u32) -> Self {
        let family = variant.family();
        let scaling = variant.scaling();
        let lite = family == Family::Lite;
        let (activation, stem_channels, head_channels) = if lite {
            (Activation::Relu6, STEM_CHANNELS, HEAD_CHANNELS)
        } else {
            (
                Activation::Silu,
                round_channels(STEM_CHANNELS, scaling.width),
                round_channels(HEAD_CHANNELS, scaling.width),
            )
        };
        let last = B0_STAGES.len() - 1;
        let stages: Vec<BlockSpec> = B0_STAGES
            .iter()
            .enumerate()
            .map(|(i, base)| {
                let fixed_depth = lite && (i == 0 || i == last);
                let spec = BlockSpec {
                    repeats: if fixed_depth {
                        base.repeats
                    } else {
                        round_repeats(base.repeats, scaling.depth)
                    },
                    channels: round_channels(base.channels, scaling.width),
                    ..*base
                };
                if lite { spec.without_se() } else { spec }
            })
            .collect();

        let total: u32 = stages.iter().map(|s| s.repeats).sum();
        let mut blocks = Vec::with_capacity(total as usize);
        let mut in_channels = stem_channels;
        for (stage, spec) in stages.iter().enumerate() {
            for repeat in 0..spec.repeats {
                let index = blocks.len();
                let stride = if repeat == 0 { spec.stride } else { 1 };
                let e = f64::from(spec.expansion);
                let mid_channels = match spec.kind {
                    BlockKind::DepthwiseSeparable => in_channels,
                    BlockKind::InvertedResidual => make_divisible(f64::from(in_channels) * e),
                };
                // Python's round() rounds half to even.
                let se_channels = spec
                    .se_ratio
                    .map(|ratio| (f64::from(mid_channels) * (ratio / e)).round_ties_even() as u32);
                blocks.push(Block {
                    stage,
                    kind: spec.kind,
                    in_channels,
                    mid_channels,
                    out_channels: spec.channels,
                    kernel: spec.kernel,
                    stride,
                    se_channels,
                    residual: stride == 1 && in_channels == spec.channels,
                    drop_connect: DROP_CONNECT * index as f64 / f64::from(total),
                });
                in_channels = spec.channels;
            }
        }

        Architecture {
            variant,
            classes,
            resolution: scaling.resolution,
            activation,
            stem_channels,
            stages,
            blocks,
            head_channels,
            dropout: scaling.dropout,
        }
    }

    /// Channels entering the head: the last block's output.
    pub fn feature_channels(&self) -> u32 {
        self.blocks
            .last()
            .map_or(self.stem_channels, |b| b.out_channels)
    }

    /// Trainable parameters (conv and linear weights and biases, BN γ and β; not BN running
    /// statistics), as `sum(p.numel() for p in model.parameters() if p.requires_grad)`.
    pub fn trainable_parameters(&self) -> u64 {
        let stem = {
            let s = u64::from(self.stem_channels);
            3 * s * u64::from(STEM_KERNEL * STEM_KERNEL) + 2 * s
        };
        let blocks: u64 = self.blocks.iter().map(Block::trainable_parameters).sum();
        let h = u64::from(self.head_channels);
        let head = u64::from(self.feature_channels()) * h + 2 * h;
        let classifier = h * u64::from(self.classes) + u64::from(self.classes);
        stem + blocks + head + classifier
    }

    /// Spatial size of the final feature map (before pooling): the input divided by the
    /// network's total stride of 32, rounded up ("same" padding).
    pub fn feature_size(&self) -> u32 {
        let stride = STEM_STRIDE * self.stages.iter().map(|s| s.stride).product::<u32>();
        self.resolution.div_ceil(stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference counts, timm 1.0.31 / torch 2.15 (CPU):
    //
    //   import timm
    //   for n in [f'efficientnet_b{i}' for i in range(8)] + [f'efficientnet_lite{i}' for i in range(5)]:
    //       for k in (1000, 5):
    //           m = timm.create_model(n, pretrained=False, num_classes=k)
    //           print(n, k, sum(p.numel() for p in m.parameters() if p.requires_grad))
    //
    // (the tf_efficientnet_* ports differ only in padding and BN eps, not in parameters).
    const TIMM_COUNTS: [(Variant, u64, u64); 13] = [
        (Variant::B0, 5_288_548, 4_013_953),
        (Variant::B1, 7_794_184, 6_519_589),
        (Variant::B2, 9_109_994, 7_708_039),
        (Variant::B3, 12_233_232, 10_703_917),
        (Variant::B4, 19_341_616, 17_557_581),
        (Variant::B5, 30_389_784, 28_351_029),
        (Variant::B6, 43_040_704, 40_747_229),
        (Variant::B7, 66_347_960, 63_799_765),
        (Variant::Lite0, 4_652_008, 3_377_413),
        (Variant::Lite1, 5_416_680, 4_142_085),
        (Variant::Lite2, 6_092_072, 4_817_477),
        (Variant::Lite3, 8_197_096, 6_922_501),
        (Variant::Lite4, 13_006_568, 11_731_973),
    ];

    #[test]
    fn parameter_counts_match_timm() {
        for (variant, thousand, five) in TIMM_COUNTS {
            let got = Architecture::new(variant, 1000).trainable_parameters();
            assert_eq!(got, thousand, "{variant} with 1000 classes");
            let got = Architecture::new(variant, 5).trainable_parameters();
            assert_eq!(got, five, "{variant} with 5 classes");
        }
    }

    // m = timm.create_model(n, drop_path_rate=0.2)
    // print(m.conv_stem.out_channels, m.conv_head.out_channels, [len(s) for s in m.blocks],
    //       [s[-1].conv_pwl.out_channels if hasattr(s[-1], 'conv_pwl')
    //        else s[-1].conv_pw.out_channels for s in m.blocks])
    // efficientnet_b0 32 1280 [1, 2, 2, 3, 3, 4, 1] [16, 24, 40, 80, 112, 192, 320]
    // efficientnet_b7 64 2560 [4, 7, 7, 10, 10, 13, 4] [32, 48, 80, 160, 224, 384, 640]
    // efficientnet_lite4 32 1280 [1, 4, 4, 6, 6, 8, 1] [24, 32, 56, 112, 160, 272, 448]
    #[test]
    fn stages_match_timm() {
        let check = |v: Variant, stem, head, repeats: [u32; 7], channels: [u32; 7]| {
            let a = Architecture::new(v, 1000);
            assert_eq!((a.stem_channels, a.head_channels), (stem, head), "{v}");
            let r: Vec<u32> = a.stages.iter().map(|s| s.repeats).collect();
            let c: Vec<u32> = a.stages.iter().map(|s| s.channels).collect();
            assert_eq!(r, repeats, "{v}");
            assert_eq!(c, channels, "{v}");
        };
        check(
            Variant::B0,
            32,
            1280,
            [1, 2, 2, 3, 3, 4, 1],
            [16, 24, 40, 80, 112, 192, 320],
        );
        check(
            Variant::B7,
            64,
            2560,
            [4, 7, 7, 10, 10, 13, 4],
            [32, 48, 80, 160, 224, 384, 640],
        );
        check(
            Variant::Lite4,
            32,
            1280,
            [1, 4, 4, 6, 6, 8, 1],
            [24, 32, 56, 112, 160, 272, 448],
        );
    }

    // bl = [b for s in m.blocks for b in s]
    // b0:    bl[0].se.conv_reduce = Conv2d(32, 8); bl[1]: Conv2d(96, 4), drop 0.0125;
    //        bl[-1]: conv_pw 192 -> 1152, SE Conv2d(1152, 48), drop 0.1875, no skip, SiLU
    // b7:    bl[0].se.conv_reduce = Conv2d(64, 16); bl[1] (ds, 32 -> 32): Conv2d(32, 8), skip
    // lite4: bl[-1]: conv_pw 272 -> 1632, no SE, ReLU6
    // [b.drop_path.drop_prob for b in (bl[1], bl[-1])]:
    //   b0 [0.0125, 0.1875]; lite4 (30 blocks) [0.006666666666666667, 0.19333333333333336]
    #[test]
    fn blocks_match_timm() {
        let b0 = Architecture::new(Variant::B0, 1000);
        assert_eq!(b0.blocks.len(), 16);
        assert_eq!(b0.activation, Activation::Silu);
        let first = b0.blocks[0];
        assert_eq!(first.kind, BlockKind::DepthwiseSeparable);
        assert_eq!(
            (first.in_channels, first.mid_channels, first.out_channels),
            (32, 32, 16)
        );
        assert_eq!(first.se_channels, Some(8));
        assert!(!first.residual);
        assert_eq!(first.drop_connect, 0.0);
        let second = b0.blocks[1];
        assert_eq!(
            (second.mid_channels, second.se_channels, second.stride),
            (96, Some(4), 2)
        );
        assert!((second.drop_connect - 0.0125).abs() < 1e-12);
        let last = *b0.blocks.last().unwrap();
        assert_eq!(
            (last.in_channels, last.mid_channels, last.out_channels),
            (192, 1152, 320)
        );
        assert_eq!(
            (last.kernel, last.stride, last.se_channels),
            (3, 1, Some(48))
        );
        assert!(!last.residual);
        assert!((last.drop_connect - 0.1875).abs() < 1e-12);
        // Residual blocks: the later repeats of each stage.
        assert_eq!(b0.blocks.iter().filter(|b| b.residual).count(), 16 - 7);

        let b7 = Architecture::new(Variant::B7, 1000);
        assert_eq!(b7.blocks[0].se_channels, Some(16));
        let ds = b7.blocks[1];
        assert_eq!(
            (ds.kind, ds.in_channels, ds.out_channels),
            (BlockKind::DepthwiseSeparable, 32, 32)
        );
        assert_eq!(ds.se_channels, Some(8));
        assert!(ds.residual);

        let lite4 = Architecture::new(Variant::Lite4, 1000);
        assert_eq!(lite4.activation, Activation::Relu6);
        assert!(lite4.blocks.iter().all(|b| b.se_channels.is_none()));
        let last = *lite4.blocks.last().unwrap();
        assert_eq!((last.in_channels, last.mid_channels), (272, 1632));
        assert_eq!(lite4.blocks.len(), 30);
        assert!((last.drop_connect - 0.19333333333333336).abs() < 1e-12);
    }

    #[test]
    fn resolution_dropout_and_feature_size() {
        let b0 = Architecture::new(Variant::B0, 2);
        assert_eq!(
            (b0.resolution, b0.dropout, b0.feature_size()),
            (224, 0.2, 7)
        );
        let b7 = Architecture::new(Variant::B7, 2);
        // timm default_cfgs: efficientnet_b7 input (3, 600, 600), pool_size (19, 19).
        assert_eq!(
            (b7.resolution, b7.dropout, b7.feature_size()),
            (600, 0.5, 19)
        );
        let lite3 = Architecture::new(Variant::Lite3, 2);
        assert_eq!((lite3.resolution, lite3.dropout), (280, 0.3));
    }

    #[test]
    fn lite_stage_strings_have_no_se() {
        let a = Architecture::new(Variant::Lite0, 1000);
        let s: Vec<String> = a.stages.iter().map(ToString::to_string).collect();
        assert_eq!(s[0], "ds_r1_k3_s1_e1_c16");
        assert_eq!(s[6], "ir_r1_k3_s1_e6_c320");
    }
}
