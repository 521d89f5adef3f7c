//! A 1×1 convolution (stride 1, no padding, one group) as a batched matrix product:
//! `y[n] = W · x[n]` with `x[n]` viewed as `[C_in, H·W]` and `W` as `[C_out, C_in]`.
//!
//! Why: burn 0.22.1's flex backend runs such a conv through its convolution path, and the
//! generic backward of `conv2d` swaps the batch and channel axes of the input and the gradient
//! (copies of both activations) to get the weight gradient. On the flex backend in f32 it is a
//! backend extension with its own backward, the three products on [`gemm`](super::gemm)
//! (`W · x[n]`, `Wᵀ · g[n]`, `Σₙ g[n] · x[n]ᵀ`, transposes read in place), so no output goes
//! through flex's zero-then-copy allocation. Elsewhere it is a `matmul` of reshaped views,
//! whose autodiff backward takes the transposes as strided views as well.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};

use super::flex_values::{shape, tensor, values};
use super::gemm::{Matrix, batched_new, product};

/// The 1×1 convolution as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait PointwiseBackend: Backend {
    /// `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in, 1, 1]` → `[N, C_out, H, W]`.
    fn pointwise_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `(N, C_in, H·W, C_out)` of an input and a weight.
fn dims(x: &FlexTensor, weight: &FlexTensor) -> (usize, usize, usize, usize) {
    let (xs, ws) = (shape(x), shape(weight));
    (xs[0], xs[1], xs[2] * xs[3], ws[0])
}

impl PointwiseBackend for Flex {
    fn pointwise_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        forward(&x, &weight)
    }
}

/// `y[n] = W · x[n]`.
fn forward(x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
    let (n, c_in, hw, c_out) = dims(x, weight);
    let (xv, wv) = (values(x), values(weight));
    let w = Matrix::new(&wv, c_out, c_in);
    let y = batched_new(n, c_out, hw, |s| {
        (w, Matrix::new(&xv[s * c_in * hw..][..c_in * hw], c_in, hw))
    });
    let xs = shape(x);
    tensor(y, vec![n, c_out, xs[2], xs[3]])
}

#[derive(Debug)]
struct PointwiseBackward;

impl Backward<Flex, 2> for PointwiseBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let (n, c_in, hw, c_out) = dims(&x, &weight);
        let g = values(&grad);
        let sample_g = |s: usize| Matrix::new(&g[s * c_out * hw..][..c_out * hw], c_out, hw);
        if let Some(node) = node_x {
            // ∂x[n] = Wᵀ · g[n]
            let wv = values(&weight);
            let wt = Matrix::new(&wv, c_out, c_in).t();
            let dx = batched_new(n, c_in, hw, |s| (wt, sample_g(s)));
            grads.register::<Flex>(node.id, tensor(dx, shape(&x)));
        }
        if let Some(node) = node_weight {
            // ∂W = Σₙ g[n] · x[n]ᵀ, accumulated sample by sample.
            let xv = values(&x);
            let mut dw = vec![0.0f32; c_out * c_in];
            for s in 0..n {
                let xs = Matrix::new(&xv[s * c_in * hw..][..c_in * hw], c_in, hw);
                product(&mut dw, sample_g(s), xs.t(), s > 0, true);
            }
            grads.register::<Flex>(node.id, tensor(dw, shape(&weight)));
        }
    }
}

impl<C: CheckpointStrategy> PointwiseBackend for Autodiff<Flex, C> {
    fn pointwise_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match PointwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = forward(&x.into_primitive(), &weight.into_primitive());
                prep.finish((x_state, weight_state), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(&x.into_primitive(), &weight.into_primitive()))
            }
        }
    }
}

/// `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in, 1, 1]` → `[N, C_out, H, W]`: the backend
/// operation on flex in f32, a `matmul` of reshaped views elsewhere.
pub fn pointwise_conv2d(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let flex_f32 = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && x.device().inner() == Device::flex();
    if flex_f32 {
        return Tensor::from_dispatch(<Dispatch as PointwiseBackend>::pointwise_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
        ));
    }
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
        // A batch of 3 (split over samples) and of 1 (each product split over threads).
        for batch in [3, 1] {
            compare_with_burn(batch);
        }
    }

    fn compare_with_burn(batch: usize) {
        let device = Device::flex();
        device.seed(13);
        let x = Tensor::<4>::random([batch, 5, 7, 6], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([4, 5, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random([batch, 4, 7, 6], Distribution::Normal(0.0, 1.0), &device);
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
                    "batch {batch}: {what}[{k}] {p} vs {q}"
                );
            }
        }
    }
}
