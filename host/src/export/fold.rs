//! BatchNorm folded into the convolution before it, with the evaluation-mode (running)
//! statistics: `W' = W · γ / √(σ² + ε)` per output channel, `b' = β − μ · γ / √(σ² + ε)`
//! (plus the conv's own bias, scaled, when it has one). Computed in f64, stored as f32.
use anyhow::Context;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// A convolution ready for ONNX: weight `[out, in / groups, kh, kw]` and a bias per output.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldedConv {
    /// Row-major weight values.
    pub weight: Vec<f32>,
    /// Weight shape.
    pub dims: [usize; 4],
    /// Bias, one per output channel.
    pub bias: Vec<f32>,
}

/// A tensor's values as f32, in row-major order.
pub fn values<const D: usize>(t: Tensor<D>) -> anyhow::Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("reading a parameter as f32")
}

/// The conv as it stands (bias zero when it has none).
pub fn plain(conv: &Conv2d) -> anyhow::Result<FoldedConv> {
    let dims = conv.weight.dims();
    let bias = match &conv.bias {
        Some(b) => values(b.val())?,
        None => vec![0.0; dims[0]],
    };
    Ok(FoldedConv {
        weight: values(conv.weight.val())?,
        dims,
        bias,
    })
}

/// `bn(conv(x))` as one conv, with `bn`'s running statistics and ε.
pub fn fold(conv: &Conv2d, bn: &BatchNorm) -> anyhow::Result<FoldedConv> {
    let FoldedConv { weight, dims, bias } = plain(conv)?;
    let gamma = values(bn.gamma.val())?;
    let beta = values(bn.beta.val())?;
    let mean = values(bn.running_mean.value())?;
    let var = values(bn.running_var.value())?;
    let out = dims[0];
    anyhow::ensure!(
        [gamma.len(), beta.len(), mean.len(), var.len()] == [out; 4],
        "BatchNorm over {} channels after a conv with {out} outputs",
        gamma.len()
    );
    let per_out = weight.len() / out;
    let mut folded_w = Vec::with_capacity(weight.len());
    let mut folded_b = Vec::with_capacity(out);
    for o in 0..out {
        let scale = f64::from(gamma[o]) / (f64::from(var[o]) + bn.epsilon).sqrt();
        folded_w.extend(
            weight[o * per_out..(o + 1) * per_out]
                .iter()
                .map(|&w| (f64::from(w) * scale) as f32),
        );
        let b = f64::from(beta[o]) + (f64::from(bias[o]) - f64::from(mean[o])) * scale;
        folded_b.push(b as f32);
    }
    Ok(FoldedConv {
        weight: folded_w,
        dims,
        bias: folded_b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::net::Padding;
    use crate::model::net::conv_bn::ConvBnConfig;
    use burn::module::RunningState;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, TensorData};

    /// A 3×3 stride-2 conv → BN with random statistics, against the folded conv run by burn
    /// itself (same padding): the two agree to float rounding.
    #[test]
    fn folded_conv_equals_conv_then_batchnorm() {
        let device = Device::flex();
        device.seed(11);
        let mut cb = ConvBnConfig::new(4, 6, 3, Padding::TfSame, None)
            .with_stride(2)
            .init(&device);
        let rand =
            |lo: f64, hi: f64| Tensor::<1>::random([6], Distribution::Uniform(lo, hi), &device);
        cb.bn.gamma = cb.bn.gamma.map(|_| rand(0.5, 1.5));
        cb.bn.beta = cb.bn.beta.map(|_| rand(-1.0, 1.0));
        cb.bn.running_mean = RunningState::new(rand(-0.5, 0.5));
        cb.bn.running_var = RunningState::new(rand(0.2, 3.0));
        let folded = fold(&cb.conv, &cb.bn).unwrap();
        let mut conv = Conv2dConfig::new([4, 6], [3, 3])
            .with_stride([2, 2])
            .with_padding(Padding::TfSame.config(3))
            .init(&device);
        conv.weight = conv.weight.map(|_| {
            Tensor::from_data(TensorData::new(folded.weight.clone(), folded.dims), &device)
        });
        conv.bias = conv
            .bias
            .map(|b| b.map(|_| Tensor::from_floats(folded.bias.as_slice(), &device)));
        let x = Tensor::<4>::random([2, 4, 9, 8], Distribution::Default, &device);
        let diff: f32 = (cb.forward(x.clone()) - conv.forward(x))
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-5, "max |Δ| = {diff}");
        // The statistics were not the identity: folding changed the bias.
        assert!(
            folded.bias.iter().any(|b| b.abs() > 0.05),
            "{:?}",
            folded.bias
        );
    }

    /// Hand-worked: w = 2, γ = 3, β = 1, μ = 0.5, σ² = 4 − ε → scale 1.5, w' = 3, b' = 0.25.
    #[test]
    fn hand_worked_scalar() {
        let device = Device::flex();
        let mut cb = ConvBnConfig::new(1, 1, 1, Padding::TfSame, None).init(&device);
        cb.conv.weight = cb
            .conv
            .weight
            .map(|_| Tensor::from_data(TensorData::new(vec![2.0f32], [1, 1, 1, 1]), &device));
        cb.bn.gamma = cb.bn.gamma.map(|_| Tensor::from_floats([3.0], &device));
        cb.bn.beta = cb.bn.beta.map(|_| Tensor::from_floats([1.0], &device));
        cb.bn.running_mean = RunningState::new(Tensor::from_floats([0.5], &device));
        let var = 4.0 - cb.bn.epsilon as f32;
        cb.bn.running_var = RunningState::new(Tensor::from_floats([var], &device));
        let f = fold(&cb.conv, &cb.bn).unwrap();
        assert!((f.weight[0] - 3.0).abs() < 1e-6, "{f:?}");
        assert!((f.bias[0] - 0.25).abs() < 1e-6, "{f:?}");
    }
}
