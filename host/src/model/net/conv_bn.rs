//! Convolution (no bias) → BatchNorm → optional activation: the unit every EfficientNet layer
//! but the squeeze-excitation and the classifier is made of (timm `ConvBnAct`).
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use super::batch_norm;
use super::depthwise::depthwise_conv2d;
use super::padding::{self, Padding};
use super::pointwise::pointwise_conv2d;
use crate::model::arch::{Activation, BN_EPS, BN_MOMENTUM};

/// What to build: channels, kernel, stride, groups, padding and activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvBnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Convolution groups; `in_channels` for a depthwise conv.
    pub groups: usize,
    /// Padding rule.
    pub padding: Padding,
    /// Nonlinearity after the BatchNorm; `None` for the linear projection of a block.
    pub activation: Option<Activation>,
}

impl ConvBnConfig {
    /// A dense `kernel`×`kernel` conv with stride 1.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: Padding,
        activation: Option<Activation>,
    ) -> Self {
        ConvBnConfig {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            groups: 1,
            padding,
            activation,
        }
    }

    /// A depthwise conv over `channels` (one filter per channel).
    pub fn depthwise(
        channels: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        activation: Activation,
    ) -> Self {
        ConvBnConfig {
            stride,
            groups: channels,
            ..Self::new(channels, channels, kernel, padding, Some(activation))
        }
    }

    /// The same with another stride.
    pub fn with_stride(self, stride: usize) -> Self {
        ConvBnConfig { stride, ..self }
    }

    /// Build with the TF reference's initialisation: conv weights normal with std
    /// `sqrt(2 / fan_out)`, fan_out = k²·out / groups (timm `_init_weight_goog`); BN γ = 1,
    /// β = 0, eps [`BN_EPS`], momentum [`BN_MOMENTUM`].
    pub fn init(&self, device: &Device) -> ConvBn {
        let conv = Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_groups(self.groups)
            .with_padding(self.padding.config(self.kernel))
            .with_bias(false)
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            })
            .init(device);
        let bn = BatchNormConfig::new(self.out_channels)
            .with_epsilon(BN_EPS)
            .with_momentum(BN_MOMENTUM)
            .init(device);
        ConvBn {
            conv,
            bn,
            activation: self.activation,
        }
    }
}

/// Conv → BN → activation. BN uses batch statistics (and updates its running ones) on an
/// autodiff device, running statistics otherwise ([`Module::valid`]).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution, without bias (the BN's β replaces it).
    pub conv: Conv2d,
    /// BatchNorm over the output channels.
    pub bn: BatchNorm,
    /// Nonlinearity, if any.
    #[module(skip)]
    pub activation: Option<Activation>,
}

impl ConvBn {
    /// `[N, in, H, W]` → `[N, out, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let conv = &self.conv;
        let x = if conv.groups > 1 {
            self.depthwise(x)
        } else if self.is_pointwise(&x) {
            pointwise_conv2d(x, conv.weight.val())
        } else {
            conv.forward(x)
        };
        batch_norm::forward(&self.bn, x, self.activation)
    }

    /// A 1×1, stride-1, unpadded conv without bias (every expansion, projection and head conv
    /// of EfficientNet): [`pointwise_conv2d`] computes it.
    fn is_pointwise(&self, x: &Tensor<4>) -> bool {
        let conv = &self.conv;
        let [_, _, h, w] = x.dims();
        conv.kernel_size == [1, 1]
            && conv.stride == [1, 1]
            && conv.dilation == [1, 1]
            && conv.bias.is_none()
            && padding::pairs(&conv.padding, [h, w], [1, 1], [1, 1]) == [(0, 0); 2]
    }

    /// The grouped (depthwise) conv through [`depthwise_conv2d`], padded exactly as
    /// `Conv2d::forward` pads.
    fn depthwise(&self, x: Tensor<4>) -> Tensor<4> {
        let conv = &self.conv;
        let [_, _, h, w] = x.dims();
        let padding = padding::pairs(&conv.padding, [h, w], conv.kernel_size, conv.stride);
        let options =
            ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
        depthwise_conv2d(x, conv.weight.val(), options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::RunningState;
    use burn::tensor::TensorData;

    /// 1×1 conv 2 → 2 with weights [[1, 2], [−1, 0.5]], BN γ = [2, 1], β = [0.5, 0],
    /// running mean [1, 0], running var [4, 1], ReLU6.
    fn fixed(device: &Device) -> ConvBn {
        let mut m =
            ConvBnConfig::new(2, 2, 1, Padding::TfSame, Some(Activation::Relu6)).init(device);
        m.conv.weight = m.conv.weight.map(|w| {
            let data = TensorData::new(vec![1.0f32, 2.0, -1.0, 0.5], [2, 2, 1, 1]);
            Tensor::from_data(data, &w.device())
        });
        let set = |v: [f32; 2]| move |t: Tensor<1>| Tensor::from_floats(v, &t.device());
        m.bn.gamma = m.bn.gamma.map(set([2.0, 1.0]));
        m.bn.beta = m.bn.beta.map(set([0.5, 0.0]));
        m.bn.running_mean = RunningState::new(Tensor::from_floats([1.0, 0.0], device));
        m.bn.running_var = RunningState::new(Tensor::from_floats([4.0, 1.0], device));
        m
    }

    fn input(device: &Device) -> Tensor<4> {
        let data = TensorData::new(
            vec![3.0f32, -1.0, 2.0, 0.5, 0.5, 1.0, -2.0, 1.5],
            [2, 2, 1, 2],
        );
        Tensor::from_data(data, device)
    }

    fn assert_close(got: Tensor<1>, expected: &[f32], what: &str) {
        let got: Vec<f32> = got.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(got.len(), expected.len(), "{what}");
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{what}: {got:?} vs {expected:?}");
        }
    }

    // torch 2.15:
    //   conv = nn.Conv2d(2, 2, 1, bias=False); conv.weight[:] = tensor([[1, 2], [-1, .5]])[..., None, None]
    //   bn = nn.BatchNorm2d(2, eps=1e-3, momentum=0.01)
    //   bn.weight[:] = tensor([2., 1]); bn.bias[:] = tensor([.5, 0])
    //   bn.running_mean[:] = tensor([1., 0]); bn.running_var[:] = tensor([4., 1])
    //   x = tensor([3., -1., 2., .5, .5, 1., -2., 1.5]).reshape(2, 2, 1, 2)
    //   bn.eval(); F.relu6(bn(conv(x))).flatten()
    //     -> [6.0, 0.0, 0.0, 1.2493755, 0.0, 3.4996252, 0.0, 0.0]
    //   bn.train(); F.relu6(bn(conv(x))).flatten()
    //     -> [3.0788407, 0.0, 0.0, 1.4920832, 0.0, 1.5692754, 0.0, 0.2984166]
    //   bn.running_mean -> [1.00875, -0.00625]; bn.running_var -> [4.170625, 1.0110416]
    #[test]
    fn eval_uses_running_statistics() {
        let device = Device::flex();
        let y = fixed(&device).forward(input(&device)).flatten(0, 3);
        let expected = [6.0, 0.0, 0.0, 1.2493755, 0.0, 3.4996252, 0.0, 0.0];
        assert_close(y, &expected, "eval output");
    }

    #[test]
    fn train_uses_batch_statistics_and_updates_running_ones() {
        let device = Device::flex();
        let m = fixed(&device).train();
        let y = m.forward(input(&device.autodiff())).flatten(0, 3);
        let expected = [
            3.0788407, 0.0, 0.0, 1.4920832, 0.0, 1.5692754, 0.0, 0.2984166,
        ];
        assert_close(y, &expected, "train output");
        assert_close(
            m.bn.running_mean.value_sync(),
            &[1.00875, -0.00625],
            "running mean",
        );
        // burn updates the running variance with the biased batch variance (15.796875 and
        // 1.578125 here); PyTorch uses the unbiased one (×4/3: 21.0625, 2.1041667), hence
        // its [4.170625, 1.0110416]. 0.99·4 + 0.01·15.796875 = 4.1179688.
        assert_close(
            m.bn.running_var.value_sync(),
            &[4.117969, 1.0057813],
            "running var",
        );
    }
}
