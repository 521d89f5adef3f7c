//! The network's nonlinearity on tensors: SiLU (B0–B7) and ReLU6 (Lite0–4).
//!
//! [`Activation`] is part of the spec ([`arch`](crate::model::arch)); this file gives it a
//! forward pass so layers store the spec's enum rather than a second, burn-side copy.
use super::fused_activation::{relu6, silu};
use burn::tensor::Tensor;

use crate::model::arch::Activation;

impl Activation {
    /// Apply the nonlinearity element-wise: x · sigmoid(x) or min(max(x, 0), 6), both fused
    /// ([`silu`], [`relu6`]).
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Silu => silu(x),
            Activation::Relu6 => relu6(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    // torch 2.15:
    //   x = torch.tensor([-8.0, -1.0, 0.0, 0.5, 3.0, 7.0])
    //   F.silu(x)  -> [-0.0026828, -0.2689414, 0.0, 0.3112297, 2.8577225, 6.993623]
    //   F.relu6(x) -> [0.0, 0.0, 0.0, 0.5, 3.0, 6.0]
    #[test]
    fn matches_torch() {
        let device = Device::flex();
        let x = || Tensor::<1>::from_floats([-8.0, -1.0, 0.0, 0.5, 3.0, 7.0], &device);
        let silu: Vec<f32> = Activation::Silu
            .forward(x())
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let expected = [-0.0026828, -0.2689414, 0.0, 0.3112297, 2.8577225, 6.993623];
        for (got, want) in silu.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "silu {got} vs {want}");
        }
        let relu6: Vec<f32> = Activation::Relu6
            .forward(x())
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(relu6, [0.0, 0.0, 0.0, 0.5, 3.0, 6.0]);
    }
}
