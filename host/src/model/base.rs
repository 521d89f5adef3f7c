//! The EfficientNet-B0 stage table every variant is scaled from.
//!
//! Transcribed from timm `timm/models/efficientnet.py`, `_gen_efficientnet` (`arch_def`),
//! huggingface/pytorch-image-models commit 01419346ca79f2c5612d991d00ec80d9262fadf1; the same
//! seven stages as `_DEFAULT_BLOCKS_ARGS` in the TF reference
//! (tensorflow/tpu `models/official/efficientnet/efficientnet_builder.py`, there written
//! `r1_k3_s11_e1_i32_o16_se0.25`, …). EfficientNet-Lite uses the same table without SE
//! (`_gen_efficientnet_lite`; TF `lite/efficientnet_lite_builder.py`, `use_se=False`).
use super::block::{BlockKind, BlockSpec};

/// Stem: a 3×3 stride-2 convolution with this many output channels (before width scaling).
pub const STEM_CHANNELS: u32 = 32;
/// Stem kernel size.
pub const STEM_KERNEL: u32 = 3;
/// Stem stride.
pub const STEM_STRIDE: u32 = 2;
/// Head: a 1×1 convolution to this many channels (before width scaling) before pooling.
pub const HEAD_CHANNELS: u32 = 1280;
/// Squeeze-excitation ratio of every B-variant block, relative to the block's input channels.
pub const SE_RATIO: f64 = 0.25;

const fn stage(
    kind: BlockKind,
    repeats: u32,
    kernel: u32,
    stride: u32,
    expansion: u32,
    channels: u32,
) -> BlockSpec {
    BlockSpec {
        kind,
        repeats,
        kernel,
        stride,
        expansion,
        channels,
        se_ratio: Some(SE_RATIO),
    }
}

use BlockKind::{DepthwiseSeparable as DS, InvertedResidual as IR};

/// The seven stages of EfficientNet-B0.
#[rustfmt::skip]
pub const B0_STAGES: [BlockSpec; 7] = [
    //    kind repeats kernel stride expansion channels
    stage(DS,  1,      3,     1,     1,         16),
    stage(IR,  2,      3,     2,     6,         24),
    stage(IR,  2,      5,     2,     6,         40),
    stage(IR,  3,      3,     2,     6,         80),
    stage(IR,  3,      5,     1,     6,         112),
    stage(IR,  4,      5,     2,     6,         192),
    stage(IR,  1,      3,     1,     6,         320),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The `arch_def` of timm's `_gen_efficientnet`, verbatim.
    const TIMM_B0: [&str; 7] = [
        "ds_r1_k3_s1_e1_c16_se0.25",
        "ir_r2_k3_s2_e6_c24_se0.25",
        "ir_r2_k5_s2_e6_c40_se0.25",
        "ir_r3_k3_s2_e6_c80_se0.25",
        "ir_r3_k5_s1_e6_c112_se0.25",
        "ir_r4_k5_s2_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c320_se0.25",
    ];

    #[test]
    fn b0_prints_timm_stage_strings() {
        let printed: Vec<String> = B0_STAGES.iter().map(ToString::to_string).collect();
        assert_eq!(printed, TIMM_B0);
    }

    #[test]
    fn timm_stage_strings_parse_to_b0() {
        for (s, spec) in TIMM_B0.iter().zip(B0_STAGES) {
            assert_eq!(s.parse::<BlockSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn lite_strings_drop_se() {
        // `_gen_efficientnet_lite` arch_def, first and last stage.
        assert_eq!(B0_STAGES[0].without_se().to_string(), "ds_r1_k3_s1_e1_c16");
        assert_eq!(B0_STAGES[6].without_se().to_string(), "ir_r1_k3_s1_e6_c320");
    }
}
