//! A 1×1 convolution (stride 1, no padding, one group) as a batched matrix product:
//! `y[n] = W · x[n]` with `x[n]` viewed as `[C_in, H·W]` and `W` as `[C_out, C_in]`.
//!
//! Why: burn 0.22.1's flex backend runs such a conv through its convolution path, and the
//! generic backward of `conv2d` swaps the batch and channel axes of the input and the gradient
//! (copies of both activations) to get the weight gradient. As a `matmul` of reshaped views,
//! autodiff's matmul backward (`Wᵀ · g` and `Σₙ g · x[n]ᵀ`) takes the transposes as strided
//! views, which flex's gemm reads in place. Pure burn tensor operations, so it runs (and
//! differentiates) on every backend.
use burn::tensor::Tensor;

/// `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in, 1, 1]` → `[N, C_out, H, W]`.
pub fn pointwise_conv2d(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [n, c_in, h, w] = x.dims();
    let [c_out, _, _, _] = weight.dims();
    weight
        .reshape([1, c_out, c_in])
        .matmul(x.reshape([n, c_in, h * w]))
        .reshape([n, c_out, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution};

    /// Output and both gradients equal burn's `conv2d` with a 1×1 kernel (the op this replaces).
    #[test]
    fn equals_burns_one_by_one_convolution() {
        let device = Device::flex();
        device.seed(13);
        let x = Tensor::<4>::random([3, 5, 7, 6], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([4, 5, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random([3, 4, 7, 6], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| {
            let train = Device::flex().autodiff();
            let x = Tensor::<4>::from_data(x.to_data(), &train).require_grad();
            let w = Tensor::<4>::from_data(w.to_data(), &train).require_grad();
            let y = f(x.clone(), w.clone());
            let r = Tensor::<4>::from_data(r.to_data(), &train);
            let grads = (y.clone() * r).sum().backward();
            let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            [
                v(y.inner()),
                v(x.grad(&grads).unwrap()),
                v(w.grad(&grads).unwrap()),
            ]
        };
        let ours = run(&pointwise_conv2d);
        let theirs = run(&|x, w| conv2d(x, w, None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)));
        for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(ours.iter().zip(&theirs)) {
            assert_eq!(a.len(), b.len());
            for (k, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                    "{what}[{k}] {p} vs {q}"
                );
            }
        }
    }
}
