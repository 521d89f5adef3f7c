//! SiLU (`x · sigmoid(x)`) as one fused operation with its own backward pass, plugged into burn
//! through its backend extension mechanism like [`depthwise`](super::depthwise).
//!
//! Why: burn 0.22.1's `silu` is `x * sigmoid(x)`. Under autodiff that is a sigmoid (one
//! `exp` per element, single-threaded), a multiplication that keeps both `x` and the sigmoid for
//! its backward, and in the backward the sigmoid recomputed (a second `exp`), its derivative, two
//! products and a sum — about seven passes over every activation of B0 and three tensors kept
//! per layer. The profile of a B0 training step put `expf` and burn's element-wise loops at ~20 %
//! of the time. Here the forward is one pass, `x / (1 + e^{−x})`, and the backward one pass,
//! `g · s · (1 + x · (1 − s))` with `s` recomputed from the kept `x`; both split over threads.
//!
//! Only the CPU `flex` backend (with or without autodiff) in f32 takes this path; elsewhere
//! [`silu`] is burn's.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use super::flex_values::{shape, tensor, values};

/// Elements per parallel task: large enough that scheduling is noise next to the work.
const CHUNK: usize = 1 << 14;

/// The fused SiLU as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait SiluBackend: Backend {
    /// `x · sigmoid(x)`, element-wise, any shape.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SiluBackend for Flex {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tensor(forward(&values(&x)), shape(&x))
    }
}

#[derive(Debug)]
struct SiluBackward;

impl Backward<Flex, 1> for SiluBackward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FlexTensor>(ops.state);
        if let Some(node) = node_x {
            let dx = backward(&values(&x), &values(&grad));
            grads.register::<Flex>(node.id, tensor(dx, shape(&x)));
        }
    }
}

impl<C: CheckpointStrategy> SiluBackend for Autodiff<Flex, C> {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SiluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                let out = Flex::fused_silu(x.into_primitive());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_silu(x.into_primitive())),
        }
    }
}

/// `x · sigmoid(x)`: the fused operation on the flex backend in f32, burn's `silu` elsewhere.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() != DType::F32 || x.device().inner() != Device::flex() {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(<Dispatch as SiluBackend>::fused_silu(x.into_dispatch()))
}

/// `x / (1 + e^{−x})` per element. Far negative `x` gives `e^{−x} = ∞` and a signed zero, as
/// the limit; NaN stays NaN.
fn forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x / (1.0 + (-x).exp());
            }
        });
    y
}

/// `∂L/∂x = g · s · (1 + x · (1 − s))`, `s = sigmoid(x)`.
fn backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.len(), "silu: gradient length");
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(dx, (x, g))| {
            for ((d, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                let s = 1.0 / (1.0 + (-x).exp());
                *d = g * s * (1.0 + x * (1.0 - s));
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    // Hand-computed in f64 (python3):
    //   import math; s = lambda v: 1 / (1 + math.exp(-v))
    //   xs = [-100., -8., -1., 0., .5, 3., 7., 30.]; g = [1, 1, 1, 1, 1, 1, 1, 2]
    //   [round(v * s(v), 7) for v in xs]
    //     -> [-0.0, -0.0026828, -0.2689414, 0.0, 0.3112297, 2.8577224, 6.9936226, 30.0]
    //   [round(gg * s(v) * (1 + v * (1 - s(v))), 7) for v, gg in zip(xs, g)]
    //     -> [-0.0, -0.0023466, 0.0723295, 0.5, 0.7399612, 1.0881041, 1.0054605, 2.0]
    // (the values agree with torch's F.silu in activation.rs's test.)
    #[test]
    fn values_and_gradients_match_torch() {
        let x = [-100.0, -8.0, -1.0, 0.0, 0.5, 3.0, 7.0, 30.0];
        let g = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0];
        let y_ref = [
            0.0, -0.0026828, -0.2689414, 0.0, 0.3112297, 2.8577224, 6.993623, 30.0,
        ];
        let dx_ref = [
            0.0, -0.0023466, 0.0723295, 0.5, 0.7399612, 1.0881041, 1.0054605, 2.0,
        ];
        for (got, want) in forward(&x).iter().zip(y_ref) {
            assert!(
                (got - want).abs() < 2e-6 * (1.0 + want.abs()),
                "y {got} vs {want}"
            );
        }
        for (got, want) in backward(&x, &g).iter().zip(dx_ref) {
            assert!(
                (got - want).abs() < 2e-6 * (1.0 + want.abs()),
                "dx {got} vs {want}"
            );
        }
        assert!(forward(&[f32::NAN])[0].is_nan());
    }

    /// On autodiff flex, output and input gradient equal burn's unfused `silu` (the op this
    /// replaces) over a tensor larger than one parallel chunk, with a random upstream gradient.
    #[test]
    fn equals_burns_silu_forward_and_backward() {
        let device = Device::flex();
        device.seed(3);
        let x = Tensor::<4>::random([2, 5, 41, 43], Distribution::Normal(0.0, 4.0), &device);
        let r = Tensor::<4>::random([2, 5, 41, 43], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<4>) -> Tensor<4>| {
            let train = Device::flex().autodiff();
            let x = Tensor::<4>::from_data(x.to_data(), &train).require_grad();
            let y = f(x.clone());
            let r = Tensor::<4>::from_data(r.to_data(), &train);
            let grads = (y.clone() * r).sum().backward();
            let vec = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            (vec(y.inner()), vec(x.grad(&grads).unwrap()))
        };
        let (y, dx) = run(silu::<4>);
        let (y_ref, dx_ref) = run(burn::tensor::activation::silu::<4>);
        assert!(y.len() > CHUNK);
        for (k, (a, b)) in y.iter().zip(&y_ref).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "y[{k}] {a} vs {b}");
        }
        for (k, (a, b)) in dx.iter().zip(&dx_ref).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "dx[{k}] {a} vs {b}"
            );
        }
    }

    /// Central finite differences in f64 of `Σ silu(x) · r` against the analytic gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f32> = (0..41).map(|i| -10.0 + 0.5 * i as f32).collect();
        let r: Vec<f32> = (0..41).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let dx = backward(&x, &r);
        let f = |v: f64| v / (1.0 + (-v).exp());
        for i in 0..x.len() {
            let (v, h) = (f64::from(x[i]), 1e-4);
            let fd = f64::from(r[i]) * (f(v + h) - f(v - h)) / (2.0 * h);
            assert!(
                (fd - f64::from(dx[i])).abs() < 1e-5,
                "x {}: fd {fd} vs {}",
                x[i],
                dx[i]
            );
        }
    }
}
