//! Convolution padding: TensorFlow "SAME" (asymmetric when the stride is 2) or symmetric.
//!
//! The ImageNet weights we import come from TF-trained models (EfficientNet-Lite,
//! `tf_efficientnet_*`), whose convolutions pad the TF way: the output is `ceil(in / s)`,
//! the total padding `max((ceil(in / s) − 1)·s + k − in, 0)`, with `total / 2` before (top,
//! left) and the rest after. For a 3×3 stride-2 conv on an even size that is 0 before and 1
//! after, which symmetric padding cannot express; efficientnet_pytorch's
//! `Conv2dStaticSamePadding` and timm's `Conv2dSame` reproduce it. burn's
//! [`PaddingConfig2d::Same`] computes exactly this split per forward pass (odd remainder at
//! the end), so TF padding costs no extra pad op; the tests below hold it to the formula.
//!
//! timm's own `efficientnet_*` models pad symmetrically (`k / 2` on every side), which agrees
//! with TF whenever the stride is 1, and with stride 2 only on odd sizes.
use burn::nn::PaddingConfig2d;

/// How every convolution of a network pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// TensorFlow "SAME": output `ceil(in / stride)`, asymmetric when needed.
    TfSame,
    /// `kernel / 2` on every side (PyTorch / timm `efficientnet_*`).
    Symmetric,
}

impl Padding {
    /// [`Padding::TfSame`] when `same_padding`, else [`Padding::Symmetric`].
    pub const fn from_same(same_padding: bool) -> Self {
        if same_padding {
            Padding::TfSame
        } else {
            Padding::Symmetric
        }
    }

    /// The burn padding of a `kernel`×`kernel` convolution.
    pub fn config(self, kernel: usize) -> PaddingConfig2d {
        match self {
            Padding::TfSame => PaddingConfig2d::Same,
            Padding::Symmetric => {
                let p = kernel / 2;
                PaddingConfig2d::Explicit(p, p, p, p)
            }
        }
    }
}

/// The `(before, after)` padding per axis (height, width) that burn's `Conv2d` applies for
/// `config` on an `size` input (burn computes this in a crate-private helper; the depthwise path
/// builds its own `ConvOptions` and must pad exactly as the module would).
pub fn pairs(
    config: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    match *config {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Same => [0, 1].map(|a| {
            let out = size[a].div_ceil(stride[a]);
            let total = (out.saturating_sub(1) * stride[a] + kernel[a]).saturating_sub(size[a]);
            (total / 2, total - total / 2)
        }),
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::ops::PadMode;
    use burn::tensor::{Device, Distribution, Tensor};

    /// TF's rule for one axis: (before, after).
    fn tf_same(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
        let out = size.div_ceil(stride);
        let total = ((out - 1) * stride + kernel).saturating_sub(size);
        (total / 2, total - total / 2)
    }

    #[test]
    fn tf_rule_examples() {
        // 3×3 stride 2: even sizes pad only after, odd sizes both sides.
        assert_eq!(tf_same(224, 3, 2), (0, 1));
        assert_eq!(tf_same(17, 3, 2), (1, 1));
        // 5×5 stride 2 on 28 (B0's stage 3 input at 224): 1 before, 2 after.
        assert_eq!(tf_same(28, 5, 2), (1, 2));
        // Stride 1 is always symmetric: k / 2 each side.
        assert_eq!(tf_same(15, 5, 1), (2, 2));
    }

    /// burn's `Same` equals an explicit TF pad followed by an unpadded conv, on odd and even
    /// sizes, kernels 3 and 5, strides 1 and 2.
    #[test]
    fn burn_same_is_the_tf_rule() {
        let device = Device::flex();
        for (h, w) in [(16, 17), (15, 14)] {
            for (k, s) in [(3, 2), (5, 2), (3, 1), (5, 1)] {
                let same = Conv2dConfig::new([2, 3], [k, k])
                    .with_stride([s, s])
                    .with_padding(Padding::TfSame.config(k))
                    .init(&device);
                let mut valid = Conv2dConfig::new([2, 3], [k, k])
                    .with_stride([s, s])
                    .init(&device);
                valid.weight = same.weight.clone();
                valid.bias = same.bias.clone();
                let x = Tensor::<4>::random([1, 2, h, w], Distribution::Default, &device);
                let (top, bottom) = tf_same(h, k, s);
                let (left, right) = tf_same(w, k, s);
                let padded = x.clone().pad(
                    [(0, 0), (0, 0), (top, bottom), (left, right)],
                    PadMode::Constant(0.0),
                );
                let expected = valid.forward(padded);
                let got = same.forward(x);
                assert_eq!(got.dims(), [1, 3, h.div_ceil(s), w.div_ceil(s)]);
                let diff: f32 = (got - expected).abs().max().into_scalar();
                assert!(diff < 1e-6, "{h}×{w} k{k} s{s}: {diff}");
            }
        }
    }

    #[test]
    fn pairs_follow_the_tf_rule_and_explicit_order() {
        for (size, k, s) in [(224, 3, 2), (17, 3, 2), (28, 5, 2), (15, 5, 1), (1, 5, 2)] {
            let [h, w] = pairs(&PaddingConfig2d::Same, [size, size + 1], [k, k], [s, s]);
            assert_eq!(h, tf_same(size, k, s), "{size} k{k} s{s}");
            assert_eq!(w, tf_same(size + 1, k, s), "{} k{k} s{s}", size + 1);
        }
        // burn's Explicit is (top, left, bottom, right).
        assert_eq!(
            pairs(
                &PaddingConfig2d::Explicit(1, 2, 3, 4),
                [9, 9],
                [3, 3],
                [1, 1]
            ),
            [(1, 3), (2, 4)]
        );
        assert_eq!(
            pairs(&PaddingConfig2d::Valid, [9, 9], [3, 3], [2, 2]),
            [(0, 0); 2]
        );
    }

    #[test]
    fn symmetric_pads_half_the_kernel() {
        assert_eq!(
            Padding::Symmetric.config(5),
            PaddingConfig2d::Explicit(2, 2, 2, 2)
        );
        assert_eq!(Padding::from_same(true), Padding::TfSame);
    }
}
