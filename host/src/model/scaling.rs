//! The EfficientNet variants and their compound-scaling table (width, depth, resolution,
//! dropout), with the channel and repeat rounding rules.
//!
//! The table is the released one, hard-coded: the paper's α=1.2, β=1.1, γ=1.15 powers were
//! rounded by hand (B3 is 300 px, not 224·1.15³≈341), so evaluating the formula would not
//! reproduce the published models. Sources:
//! - B0–B7: tensorflow/tpu `models/official/efficientnet/efficientnet_builder.py`,
//!   `efficientnet_params` (commit b0b4d4bb75433590ecdaf6bd70f15f2389c66517), repeated in the
//!   docstring of timm `_gen_efficientnet` (timm/models/efficientnet.py);
//! - Lite0–4: tensorflow/tpu `models/official/efficientnet/lite/efficientnet_lite_builder.py`,
//!   `efficientnet_lite_params` (commit 22d5cab9cb59c1255589ac4401e5f3a47c01787a), repeated in
//!   timm `_gen_efficientnet_lite`.
//!
//! [`Variant`] is the only place that knows a variant by name; everything else asks it for
//! its [`Scaling`] and [`Family`].
use std::fmt;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// An EfficientNet variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// EfficientNet-B0, 224 px, 5.3 M parameters.
    B0,
    /// EfficientNet-B1, 240 px.
    B1,
    /// EfficientNet-B2, 260 px.
    B2,
    /// EfficientNet-B3, 300 px.
    B3,
    /// EfficientNet-B4, 380 px.
    B4,
    /// EfficientNet-B5, 456 px.
    B5,
    /// EfficientNet-B6, 528 px.
    B6,
    /// EfficientNet-B7, 600 px, 66.3 M parameters.
    B7,
    /// EfficientNet-Lite0 (no SE, ReLU6; for integer edge inference), 224 px.
    Lite0,
    /// EfficientNet-Lite1, 240 px.
    Lite1,
    /// EfficientNet-Lite2, 260 px.
    Lite2,
    /// EfficientNet-Lite3, 280 px.
    Lite3,
    /// EfficientNet-Lite4, 300 px.
    Lite4,
}

/// The two families, which differ in more than the scaling coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// B0–B7: squeeze-excitation, SiLU (swish), stem and head scaled with width.
    EfficientNet,
    /// Lite0–4: no squeeze-excitation, ReLU6, stem (32) and head (1280) fixed, and the first
    /// and last stages keep their B0 depth (TF `fix_head_stem=True`; timm `fix_stem=True`,
    /// `num_features=1280`, `decode_arch_def(..., fix_first_last=True)`).
    Lite,
}

/// Compound-scaling coefficients of one variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaling {
    /// Channel (width) multiplier.
    pub width: f64,
    /// Repeat (depth) multiplier.
    pub depth: f64,
    /// Input resolution in pixels (square).
    pub resolution: u32,
    /// Dropout rate before the classifier.
    pub dropout: f64,
}

const fn scaling(width: f64, depth: f64, resolution: u32, dropout: f64) -> Scaling {
    Scaling {
        width,
        depth,
        resolution,
        dropout,
    }
}

impl Variant {
    /// The variant's family and scaling coefficients: the released table.
    #[rustfmt::skip]
    pub const fn params(self) -> (Family, Scaling) {
        use Family::{EfficientNet as B, Lite as L};
        match self {
            //                         width depth  res  dropout
            Variant::B0    => (B, scaling(1.0, 1.0, 224, 0.2)),
            Variant::B1    => (B, scaling(1.0, 1.1, 240, 0.2)),
            Variant::B2    => (B, scaling(1.1, 1.2, 260, 0.3)),
            Variant::B3    => (B, scaling(1.2, 1.4, 300, 0.3)),
            Variant::B4    => (B, scaling(1.4, 1.8, 380, 0.4)),
            Variant::B5    => (B, scaling(1.6, 2.2, 456, 0.4)),
            Variant::B6    => (B, scaling(1.8, 2.6, 528, 0.5)),
            Variant::B7    => (B, scaling(2.0, 3.1, 600, 0.5)),
            Variant::Lite0 => (L, scaling(1.0, 1.0, 224, 0.2)),
            Variant::Lite1 => (L, scaling(1.0, 1.1, 240, 0.2)),
            Variant::Lite2 => (L, scaling(1.1, 1.2, 260, 0.3)),
            Variant::Lite3 => (L, scaling(1.2, 1.4, 280, 0.3)),
            Variant::Lite4 => (L, scaling(1.4, 1.8, 300, 0.3)),
        }
    }

    /// The variant's family.
    pub const fn family(self) -> Family {
        self.params().0
    }

    /// The variant's scaling coefficients.
    pub const fn scaling(self) -> Scaling {
        self.params().1
    }

    /// timm's model name (`efficientnet_b0`, `efficientnet_lite0`).
    pub fn timm_name(self) -> String {
        format!("efficientnet_{self}")
    }
}

/// The command-line name (`b0`, `lite0`), as clap derives it.
impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every variant has a value: none is `#[value(skip)]`.
        let value = self.to_possible_value().expect("variant has a clap name");
        f.write_str(value.get_name())
    }
}

/// Channel divisor: every scaled channel count is a multiple of this.
pub const CHANNEL_DIVISOR: u32 = 8;

/// Round `v` to the nearest multiple of [`CHANNEL_DIVISOR`] (at least one divisor), going up
/// a step when rounding would lose more than 10 %.
///
/// timm `timm/layers/helpers.py` `make_divisible(v, divisor=8, min_value=None,
/// round_limit=.9)`; TF `efficientnet_model.py` `round_filters`.
pub fn make_divisible(v: f64) -> u32 {
    let d = CHANNEL_DIVISOR;
    // int(v + d / 2) // d * d, truncating like Python's int() for positive v.
    let mut rounded = ((v + f64::from(d) / 2.0) as u32 / d * d).max(d);
    if f64::from(rounded) < 0.9 * v {
        rounded += d;
    }
    rounded
}

/// Scale a channel count by the width multiplier: timm `round_channels(channels, multiplier)`.
pub fn round_channels(channels: u32, width: f64) -> u32 {
    make_divisible(f64::from(channels) * width)
}

/// Scale a stage's repeats by the depth multiplier, rounding up: timm `_scale_stage_depth`
/// with `depth_trunc='ceil'`; TF `round_repeats`.
pub fn round_repeats(repeats: u32, depth: f64) -> u32 {
    (f64::from(repeats) * depth).ceil() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_reference() {
        // B0 (1.0, 1.0, 224, 0.2) … B7 (2.0, 3.1, 600, 0.5); Lite4 (1.4, 1.8, 300, 0.3).
        assert_eq!(Variant::B0.scaling(), scaling(1.0, 1.0, 224, 0.2));
        assert_eq!(Variant::B7.scaling(), scaling(2.0, 3.1, 600, 0.5));
        assert_eq!(Variant::Lite0.scaling(), scaling(1.0, 1.0, 224, 0.2));
        assert_eq!(Variant::Lite4.scaling(), scaling(1.4, 1.8, 300, 0.3));
        let lite = Variant::value_variants()
            .iter()
            .filter(|v| v.family() == Family::Lite);
        assert_eq!(lite.count(), 5);
    }

    #[test]
    fn resolutions_are_not_the_formula() {
        // γ = 1.15: φ = 3 would give 224·1.15³ ≈ 341, the release says 300.
        let formula = 224.0 * 1.15f64.powi(3);
        assert!((formula - 340.7).abs() < 0.1);
        assert_eq!(Variant::B3.scaling().resolution, 300);
    }

    #[test]
    fn names_match_clap() {
        for &v in Variant::value_variants() {
            assert_eq!(Variant::from_str(&v.to_string(), false), Ok(v));
        }
        assert_eq!(Variant::Lite3.to_string(), "lite3");
        assert_eq!(Variant::B4.timm_name(), "efficientnet_b4");
        assert_eq!(Variant::value_variants().len(), 13);
    }

    #[test]
    fn round_channels_matches_timm() {
        // python -c "from timm.models._efficientnet_builder import round_channels as r;
        //   print([r(c, m) for c, m in [(32, 1.1), (16, 1.1), (24, 1.2), (40, 1.4), (112, 1.8),
        //   (1280, 1.8), (320, 2.0), (16, 1.8), (32, 1.4), (12, 1.0), (3, 1.0), (19, 1.0)]])"
        // [32, 16, 32, 56, 200, 2304, 640, 32, 48, 16, 8, 24]
        let cases = [
            (32, 1.1, 32),
            (16, 1.1, 16),
            (24, 1.2, 32),
            (40, 1.4, 56),
            (112, 1.8, 200),
            (1280, 1.8, 2304),
            (320, 2.0, 640),
            (16, 1.8, 32),
            (32, 1.4, 48),
            (12, 1.0, 16),
            (3, 1.0, 8),
            (19, 1.0, 24),
        ];
        for (c, m, want) in cases {
            assert_eq!(round_channels(c, m), want, "round_channels({c}, {m})");
        }
    }

    #[test]
    fn round_channels_never_loses_more_than_ten_percent() {
        for c in 1..2000u32 {
            for w in [1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0] {
                let v = f64::from(c) * w;
                let r = round_channels(c, w);
                assert_eq!(r % CHANNEL_DIVISOR, 0);
                assert!(f64::from(r) >= 0.9 * v, "round_channels({c}, {w}) = {r}");
            }
        }
    }

    #[test]
    fn round_repeats_is_ceil() {
        // math.ceil(3 * 1.1) = 4, math.ceil(4 * 3.1) = 13, math.ceil(1 * 1.0) = 1
        assert_eq!(round_repeats(3, 1.1), 4);
        assert_eq!(round_repeats(4, 3.1), 13);
        assert_eq!(round_repeats(1, 1.0), 1);
        assert_eq!(round_repeats(2, 1.2), 3);
    }
}
