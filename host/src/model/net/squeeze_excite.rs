//! Squeeze-and-excitation: a per-channel gate computed from the globally pooled input
//! (Hu et al. 2018; timm `SqueezeExcite` in `_efficientnet_blocks.py`).
//!
//! Global average pool → 1×1 conv with bias to the bottleneck → activation → 1×1 conv with
//! bias back → sigmoid → multiply the input. The pool is burn's [`AdaptiveAvgPool2d`] rather
//! than a `mean` over the spatial axes because burn's ONNX export cannot write `mean_dim`.
//! Only B0–B7 have SE; Lite drops it.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use super::channel_gate::{plane_mean, scale_planes};
use crate::model::arch::Activation;

/// The SE gate of one block.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// Global average pool to 1×1.
    pub pool: AdaptiveAvgPool2d,
    /// 1×1 conv, `channels` → `reduced`, with bias (timm `conv_reduce`).
    pub reduce: Conv2d,
    /// 1×1 conv, `reduced` → `channels`, with bias (timm `conv_expand`).
    pub expand: Conv2d,
    /// Nonlinearity between the two convs (the network's).
    #[module(skip)]
    pub activation: Activation,
}

impl SqueezeExcite {
    /// A gate over `channels` with a `reduced`-channel bottleneck. Weights get PyTorch's
    /// `Conv2d` default (Kaiming uniform, gain 1/√3, over fan-in), biases likewise.
    pub fn new(channels: usize, reduced: usize, activation: Activation, device: &Device) -> Self {
        SqueezeExcite {
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            reduce: Conv2dConfig::new([channels, reduced], [1, 1]).init(device),
            expand: Conv2dConfig::new([reduced, channels], [1, 1]).init(device),
            activation,
        }
    }

    /// `[N, C, H, W]` → the same, each channel scaled by its gate in (0, 1).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = plane_mean(&self.pool, x.clone());
        let s = self.activation.forward(self.reduce.forward(s));
        let gate = sigmoid(self.expand.forward(s));
        scale_planes(x, gate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    // torch 2.15, timm 1.0.31:
    //   from timm.models._efficientnet_blocks import SqueezeExcite
    //   se = SqueezeExcite(2, rd_channels=1, act_layer=nn.SiLU)
    //   se.conv_reduce.weight[:] = tensor([1., -2.]).reshape(1, 2, 1, 1); se.conv_reduce.bias[:] = .5
    //   se.conv_expand.weight[:] = tensor([3., -1.]).reshape(2, 1, 1, 1)
    //   se.conv_expand.bias[:] = tensor([0., 1.])
    //   x = tensor([1., 2., 3., 4., -1., 0., 1., 2.]).reshape(1, 2, 2, 2)
    //   se(x).flatten()
    //     -> [0.9949574, 1.9899148, 2.984872, 3.9798295, -0.3183003, 0.0, 0.3183003, 0.6366006]
    // (pooled [2.5, 0.5] → reduce 2.0 → SiLU 1.7616 → expand [5.2848, −0.7616] → sigmoid)
    #[test]
    fn matches_timm() {
        let device = Device::flex();
        let mut se = SqueezeExcite::new(2, 1, Activation::Silu, &device);
        let set = |v: Vec<f32>, shape: [usize; 4]| {
            move |t: Tensor<4>| Tensor::from_data(TensorData::new(v, shape), &t.device())
        };
        se.reduce.weight = se.reduce.weight.map(set(vec![1.0, -2.0], [1, 2, 1, 1]));
        se.expand.weight = se.expand.weight.map(set(vec![3.0, -1.0], [2, 1, 1, 1]));
        let bias = |v: Vec<f32>| move |t: Tensor<1>| Tensor::from_floats(v.as_slice(), &t.device());
        se.reduce.bias = se.reduce.bias.map(|b| b.map(bias(vec![0.5])));
        se.expand.bias = se.expand.bias.map(|b| b.map(bias(vec![0.0, 1.0])));
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0],
                [1, 2, 2, 2],
            ),
            &device,
        );
        let y: Vec<f32> = se.forward(x).into_data().try_into_vec_as::<f32>().unwrap();
        let expected = [
            0.9949574, 1.9899148, 2.984872, 3.9798295, -0.3183003, 0.0, 0.3183003, 0.6366006,
        ];
        for (g, e) in y.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{y:?}");
        }
    }
}
