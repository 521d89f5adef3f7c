//! Squeeze-excitation's two whole-activation steps as fused operations: the mean of every
//! `(n, c)` plane (the squeeze) and `x` scaled by one gate value per plane (the excitation),
//! each with its own backward pass, plugged into burn like [`pointwise`](super::pointwise).
//!
//! Why: burn 0.22.1 runs `x * gate` (`gate` `[N, C, 1, 1]`) as a broadcast `zip_map` on the
//! calling thread, and its backward as two more broadcast products and a sum over the spatial
//! axes: full-activation passes with the second core idle, in every SE block at the
//! expanded width (B0's second block: 16 × 96 × 112 × 112 values). In `perf` the main thread's
//! own work (`zip_map`, `binary_op`, the pool's backward) was the largest serial part of a B0
//! step. Here the scale is one parallel pass forward, and its backward one parallel pass for
//! `∂x = g · s` beside one dot product per plane for `∂s` (each only when its input is tracked); the mean's backward writes
//! `g / (H·W)` over each plane, in parallel.
//!
//! Only the CPU `flex` backend (with or without autodiff) in f32 takes this path; elsewhere
//! [`plane_mean`] and [`scale_planes`] are burn's adaptive average pool and broadcast product.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::pool::AdaptiveAvgPool2d;
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use super::flex_values::{shape, tensor, values};
use super::simd;

/// The two operations.
#[backend_extension(Flex, Autodiff)]
pub trait ChannelGateBackend: Backend {
    /// `x` `[N, C, H, W]` → `[N, C, 1, 1]`, the mean of each plane.
    fn plane_mean(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `y[n, c, h, w] = x[n, c, h, w] · s[n, c]`, `s` `[N, C, 1, 1]`.
    fn scale_planes(x: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Elements of one plane of a `[N, C, H, W]` shape.
fn plane(shape: &[usize]) -> usize {
    shape[2..].iter().product()
}

/// The mean of each `plane`-element run of `x`.
fn means(x: &[f32], plane: usize) -> Vec<f32> {
    if plane == 0 {
        return vec![0.0; 0];
    }
    x.par_chunks(plane)
        .map(|p| simd::sum_map(p, |v| v) / plane as f32)
        .collect()
}

/// The backward of [`means`]: `g[p] / plane` over each plane `p`.
fn spread(g: &[f32], plane: usize) -> Vec<f32> {
    simd::splat_new(g.len() * plane, plane, |p| g[p] / plane as f32)
}

/// `x` with plane `p` scaled by `s[p]`.
fn scaled(x: &[f32], s: &[f32], plane: usize) -> Vec<f32> {
    assert_eq!(x.len(), s.len() * plane, "scale_planes: lengths");
    simd::map_new(x, plane, |p| {
        let k = s[p];
        move |v| v * k
    })
}

/// `∂s` of [`scaled`]: `Σ g · x` over each plane (`∂x = g · s` is [`scaled`] of `g`).
fn plane_dots(g: &[f32], x: &[f32], plane: usize) -> Vec<f32> {
    assert_eq!(g.len(), x.len(), "scale_planes: gradient length");
    if plane == 0 {
        return vec![0.0; 0];
    }
    g.par_chunks(plane)
        .zip(x.par_chunks(plane))
        .map(|(g, x)| simd::dot_centred(g, x, 0.0))
        .collect()
}

impl ChannelGateBackend for Flex {
    fn plane_mean(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = shape(&x);
        tensor(means(&values(&x), plane(&s)), vec![s[0], s[1], 1, 1])
    }

    fn scale_planes(x: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self> {
        let xs = shape(&x);
        tensor(scaled(&values(&x), &values(&s), plane(&xs)), xs)
    }
}

#[derive(Debug)]
struct MeanBackward;

impl Backward<Flex, 1> for MeanBackward {
    /// The input's shape.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let dx = spread(&values(&grad), plane(&ops.state));
            grads.register::<Flex>(node.id, tensor(dx, ops.state));
        }
    }
}

#[derive(Debug)]
struct ScaleBackward;

impl Backward<Flex, 2> for ScaleBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_s] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, s_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let s = checkpointer.retrieve_node_output::<FlexTensor>(s_state);
        let g = values(&grad);
        let p = plane(&shape(&x));
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(scaled(&g, &values(&s), p), shape(&x)));
        }
        if let Some(node) = node_s {
            grads.register::<Flex>(node.id, tensor(plane_dots(&g, &values(&x), p), shape(&s)));
        }
    }
}

impl<C: CheckpointStrategy> ChannelGateBackend for Autodiff<Flex, C> {
    fn plane_mean(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MeanBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let state = shape(&x);
                prep.finish(state, Flex::plane_mean(x))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::plane_mean(x.into_primitive())),
        }
    }

    fn scale_planes(x: FloatTensor<Self>, s: FloatTensor<Self>) -> FloatTensor<Self> {
        match ScaleBackward
            .prepare::<C>([x.node(), s.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let s_state = prep.checkpoint(&s);
                let out = Flex::scale_planes(x.into_primitive(), s.into_primitive());
                prep.finish((x_state, s_state), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::scale_planes(x.into_primitive(), s.into_primitive()))
            }
        }
    }
}

/// Whether `x` takes the fused path: flex (plain or autodiff) and f32.
fn fused<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// `[N, C, H, W]` → `[N, C, 1, 1]`, each plane's mean: the fused operation on flex in f32,
/// `pool` (a global adaptive average pool) elsewhere.
pub fn plane_mean(pool: &AdaptiveAvgPool2d, x: Tensor<4>) -> Tensor<4> {
    if !fused(&x) {
        return pool.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as ChannelGateBackend>::plane_mean(
        x.into_dispatch(),
    ))
}

/// `x` `[N, C, H, W]` with each plane scaled by its value in `s` `[N, C, 1, 1]`: the fused
/// operation on flex in f32, burn's broadcast product elsewhere.
pub fn scale_planes(x: Tensor<4>, s: Tensor<4>) -> Tensor<4> {
    if !(fused(&x) && s.dtype() == DType::F32) {
        return x * s;
    }
    Tensor::from_dispatch(<Dispatch as ChannelGateBackend>::scale_planes(
        x.into_dispatch(),
        s.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::AdaptiveAvgPool2dConfig;
    use burn::tensor::Distribution;

    /// `y`, `∂x`, `∂s` of `loss = Σ r · f(x, s)` on an autodiff flex device.
    fn outputs(
        f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
        x: &Tensor<4>,
        s: &Tensor<4>,
        r: &Tensor<4>,
    ) -> [Vec<f32>; 3] {
        let train = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(x.to_data(), &train).require_grad();
        let s = Tensor::<4>::from_data(s.to_data(), &train).require_grad();
        let y = f(x.clone(), s.clone());
        let r = Tensor::<4>::from_data(r.to_data(), &train);
        let grads = (y.clone() * r).sum().backward();
        let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        [
            v(y.inner()),
            v(x.grad(&grads).unwrap()),
            v(s.grad(&grads).unwrap()),
        ]
    }

    /// Squeeze-excitation's data flow, `x · (mean(x) + s)` (so `x` reaches the output through
    /// both operations and their gradients add): output, `∂x` and `∂s` equal burn's adaptive
    /// average pool and broadcast product (the ops these replace), on planes of 7 × 9 (not a
    /// multiple of any vector width) and of 1 × 1.
    #[test]
    fn equal_burns_pool_and_broadcast_product() {
        let pool = AdaptiveAvgPool2dConfig::new([1, 1]).init();
        for [h, w] in [[7, 9], [1, 1]] {
            let device = Device::flex();
            device.seed(21);
            let x = Tensor::<4>::random([3, 4, h, w], Distribution::Normal(0.5, 2.0), &device);
            let s = Tensor::<4>::random([3, 4, 1, 1], Distribution::Normal(0.0, 1.0), &device);
            let r = Tensor::<4>::random([3, 4, h, w], Distribution::Normal(0.0, 1.0), &device);
            let ours = outputs(
                &|x, s| scale_planes(x.clone(), plane_mean(&pool, x) + s),
                &x,
                &s,
                &r,
            );
            let theirs = outputs(&|x, s| x.clone() * (pool.forward(x) + s), &x, &s, &r);
            for (what, (a, b)) in ["y", "dx", "ds"].iter().zip(ours.iter().zip(&theirs)) {
                assert_eq!(a.len(), b.len());
                for (k, (p, q)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "{h}×{w}: {what}[{k}] {p} vs {q}"
                    );
                }
            }
        }
    }

    /// By hand: planes [1, 2, 3, 4] and [−1, 0, 1, 2] (means 2.5 and 0.5), scales 2 and −1;
    /// with g = 1 everywhere, ∂x = the plane's scale, ∂s = the plane's sum, and the mean's
    /// backward spreads [4, 8] as [1, 1, 1, 1, 2, 2, 2, 2].
    #[test]
    fn by_hand() {
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0];
        assert_eq!(means(&x, 4), vec![2.5, 0.5]);
        assert_eq!(
            scaled(&x, &[2.0, -1.0], 4),
            vec![2.0, 4.0, 6.0, 8.0, 1.0, 0.0, -1.0, -2.0]
        );
        let dx = scaled(&[1.0; 8], &[2.0, -1.0], 4);
        assert_eq!(dx, vec![2.0, 2.0, 2.0, 2.0, -1.0, -1.0, -1.0, -1.0]);
        assert_eq!(plane_dots(&[1.0; 8], &x, 4), vec![10.0, 2.0]);
        assert_eq!(
            spread(&[4.0, 8.0], 4),
            vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
        );
    }
}
