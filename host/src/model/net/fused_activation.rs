//! SiLU (`x · sigmoid(x)`) and ReLU6 (`min(max(x, 0), 6)`) as fused operations with their own
//! backward pass, plugged into burn through its backend extension mechanism like
//! [`depthwise`](super::depthwise).
//!
//! Why: burn 0.22.1's `silu` is `x * sigmoid(x)`. Under autodiff that is a sigmoid (one `exp`
//! per element, single-threaded), a multiplication that keeps both `x` and the sigmoid for its
//! backward, and in the backward the sigmoid recomputed (a second `exp`), its derivative, two
//! products and a sum — about seven passes over every activation of B0 and three tensors kept
//! per layer. The profile of a B0 training step put `expf` and burn's element-wise loops at
//! ~20 % of the time. burn's `relu6` is `clamp(0, 6)`: two comparisons into boolean masks and
//! two masked fills, single-threaded — 41 % of a frozen-backbone Lite0 step in `perf`
//! (`mask_fill`). Here each forward is one pass and each backward one pass from the kept `x`:
//! SiLU `g · s · (1 + x · (1 − s))` with `s` recomputed; ReLU6 `g` where `0 ≤ x ≤ 6`, else 0
//! (burn's convention at the two corners: its masks are `x < 0` and `x > 6`). All split over
//! threads.
//!
//! Only the CPU `flex` backend (with or without autodiff) in f32 takes this path; elsewhere
//! [`silu`] and [`relu6`] are burn's.
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

use super::flex_values::{shape, tensor, values, values_mut};
use super::simd;

/// Elements per parallel task: large enough that scheduling is noise next to the work.
const CHUNK: usize = 1 << 14;

/// Which activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Silu,
    Relu6,
}

/// The fused activations as backend operations.
#[backend_extension(Flex, Autodiff)]
pub trait ActivationBackend: Backend {
    /// `x · sigmoid(x)`, element-wise, any shape.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `min(max(x, 0), 6)`, element-wise, any shape.
    fn fused_relu6(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl ActivationBackend for Flex {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        apply(Kind::Silu, x)
    }

    fn fused_relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        apply(Kind::Relu6, x)
    }
}

/// One activation of a flex tensor: in its own buffer when nothing else holds it (an
/// activation nobody differentiates), into a new one otherwise.
fn apply(kind: Kind, mut x: FlexTensor) -> FlexTensor {
    if let Some(v) = values_mut(&mut x) {
        forward_in_place(kind, v);
        return x;
    }
    tensor(forward(kind, &values(&x)), shape(&x))
}

#[derive(Debug)]
struct ActivationBackward(Kind);

impl Backward<Flex, 1> for ActivationBackward {
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
            let dx = backward(self.0, &values(&x), &values(&grad));
            grads.register::<Flex>(node.id, tensor(dx, shape(&x)));
        }
    }
}

/// The autodiff form of either activation: flex's forward, [`backward`] recorded when `x` is
/// tracked.
fn tracked<C: CheckpointStrategy>(
    kind: Kind,
    x: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let inner = |x: FlexTensor| apply(kind, x);
    match ActivationBackward(kind)
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, inner(x.into_primitive()))
        }
        OpsKind::UnTracked(prep) => prep.finish(inner(x.into_primitive())),
    }
}

impl<C: CheckpointStrategy> ActivationBackend for Autodiff<Flex, C> {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C>(Kind::Silu, x)
    }

    fn fused_relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C>(Kind::Relu6, x)
    }
}

/// Whether `x` takes the fused path: flex (plain or autodiff) and f32.
fn fused<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// `x · sigmoid(x)`: the fused operation on the flex backend in f32, burn's `silu` elsewhere.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x) {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(<Dispatch as ActivationBackend>::fused_silu(
        x.into_dispatch(),
    ))
}

/// `min(max(x, 0), 6)`: the fused operation on the flex backend in f32, burn's `relu6`
/// elsewhere.
pub fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x) {
        return burn::tensor::activation::relu6(x);
    }
    Tensor::from_dispatch(<Dispatch as ActivationBackend>::fused_relu6(
        x.into_dispatch(),
    ))
}

/// One activation per element.
fn forward(kind: Kind, x: &[f32]) -> Vec<f32> {
    match kind {
        Kind::Silu => simd::map_new(x, CHUNK, |_| silu_value),
        Kind::Relu6 => simd::map_new(x, CHUNK, |_| relu6_value),
    }
}

/// [`forward`] overwriting `x`.
fn forward_in_place(kind: Kind, x: &mut [f32]) {
    x.par_chunks_mut(CHUNK).for_each(|x| match kind {
        Kind::Silu => simd::map_in_place(x, silu_value),
        Kind::Relu6 => simd::map_in_place(x, relu6_value),
    });
}

/// `∂L/∂x` of one activation from `x` and `g = ∂L/∂y`.
fn backward(kind: Kind, x: &[f32], g: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.len(), "activation: gradient length");
    match kind {
        Kind::Silu => simd::zip_map_new(x, g, CHUNK, |_| silu_grad),
        Kind::Relu6 => simd::zip_map_new(x, g, CHUNK, |_| relu6_grad),
    }
}

/// An activation as two scalar functions, for kernels that apply it inside another pass
/// ([`batch_norm`](super::batch_norm::kernel) normalizes and activates in one): the value at
/// the pre-activation `z`, and `∂L/∂z` from `z` and `g = ∂L/∂y`. The same functions as this
/// file's own passes, so a fused layer computes exactly what the two separate ones do.
pub(super) trait Scalar: Copy + Send + Sync {
    /// Whether this is the identity ([`Linear`]), so a kernel can skip the pass.
    const IDENTITY: bool = false;
    /// `y(z)`.
    fn value(z: f32) -> f32;
    /// `∂L/∂z` from `z` and `g`.
    fn grad(z: f32, g: f32) -> f32;
}

/// No activation: `y = z`.
#[derive(Clone, Copy)]
pub(super) struct Linear;

/// [`silu`] as a [`Scalar`].
#[derive(Clone, Copy)]
pub(super) struct Silu;

/// [`relu6`] as a [`Scalar`].
#[derive(Clone, Copy)]
pub(super) struct Relu6;

impl Scalar for Linear {
    const IDENTITY: bool = true;

    #[inline(always)]
    fn value(z: f32) -> f32 {
        z
    }

    #[inline(always)]
    fn grad(_: f32, g: f32) -> f32 {
        g
    }
}

impl Scalar for Silu {
    #[inline(always)]
    fn value(z: f32) -> f32 {
        silu_value(z)
    }

    #[inline(always)]
    fn grad(z: f32, g: f32) -> f32 {
        silu_grad(z, g)
    }
}

impl Scalar for Relu6 {
    #[inline(always)]
    fn value(z: f32) -> f32 {
        relu6_value(z)
    }

    #[inline(always)]
    fn grad(z: f32, g: f32) -> f32 {
        relu6_grad(z, g)
    }
}

#[inline(always)]
fn relu6_value(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

/// `g` where `0 ≤ x ≤ 6`, else 0.
#[inline(always)]
fn relu6_grad(x: f32, g: f32) -> f32 {
    if (0.0..=6.0).contains(&x) { g } else { 0.0 }
}

/// `x / (1 + e^{−x})` with [`simd::exp`] (within 4 ulps of the exact value, tested). Far
/// negative `x` gives `e^{−x} = ∞` and a signed zero, as the limit; NaN stays NaN.
#[inline(always)]
fn silu_value(x: f32) -> f32 {
    x / (1.0 + simd::exp(-x))
}

/// `g · s · (1 + x · (1 − s))`, `s = sigmoid(x)`.
#[inline(always)]
fn silu_grad(x: f32, g: f32) -> f32 {
    let s = 1.0 / (1.0 + simd::exp(-x));
    g * s * (1.0 + x * (1.0 - s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

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
        for (got, want) in forward(Kind::Silu, &x).iter().zip(y_ref) {
            assert!(
                (got - want).abs() < 2e-6 * (1.0 + want.abs()),
                "y {got} vs {want}"
            );
        }
        for (got, want) in backward(Kind::Silu, &x, &g).iter().zip(dx_ref) {
            assert!(
                (got - want).abs() < 2e-6 * (1.0 + want.abs()),
                "dx {got} vs {want}"
            );
        }
        assert!(forward(Kind::Silu, &[f32::NAN])[0].is_nan());
    }

    /// On autodiff flex, output and input gradient equal burn's `silu` and `relu6` (the ops
    /// these replace) over a tensor larger than one parallel chunk, with a random upstream gradient.
    #[test]
    fn equal_burns_activations_forward_and_backward() {
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
        type Op = fn(Tensor<4>) -> Tensor<4>;
        let pairs: [(&str, Op, Op); 2] = [
            ("silu", silu::<4>, burn::tensor::activation::silu::<4>),
            ("relu6", relu6::<4>, burn::tensor::activation::relu6::<4>),
        ];
        for (name, ours, theirs) in pairs {
            let (y, dx) = run(ours);
            let (y_ref, dx_ref) = run(theirs);
            assert!(y.len() > CHUNK);
            for (k, (a, b)) in y.iter().zip(&y_ref).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{name} y[{k}] {a} vs {b}"
                );
            }
            for (k, (a, b)) in dx.iter().zip(&dx_ref).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{name} dx[{k}] {a} vs {b}"
                );
            }
        }
    }

    /// The in-place path touches only a buffer nobody else holds: an input still referenced
    /// (a clone kept by the caller, or saved by autodiff for a tracked backward) keeps its
    /// values, and the in-place result equals the fresh one. The plain and the untracked
    /// autodiff device take the in-place path when the input is not shared.
    #[test]
    fn in_place_only_when_the_buffer_is_not_shared() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<2>::from_floats([[-2.0, 0.5, 3.0, 9.0]], &device);
            let before = x.to_data();
            let shared = relu6(x.clone());
            assert_eq!(x.to_data(), before, "input kept on {device:?}");
            let alone = relu6(x.clone() * 1.0);
            let expected = TensorData::from([[0.0f32, 0.5, 3.0, 6.0]]);
            assert_eq!(shared.to_data(), expected);
            assert_eq!(alone.to_data(), expected);
        }
        let mut alone = tensor(vec![-1.0, 7.0], vec![2]);
        let ptr = values(&alone).as_ptr();
        assert!(values_mut(&mut alone).is_some());
        let y = apply(Kind::Relu6, alone);
        assert_eq!(values(&y).as_ptr(), ptr, "reused the buffer");
        assert_eq!(&*values(&y), &[0.0, 6.0]);
        let mut shared = tensor(vec![-1.0, 7.0], vec![2]);
        let _keep = shared.clone();
        assert!(values_mut(&mut shared).is_none());
    }

    /// ReLU6 by hand, the corners included (gradient passes at exactly 0 and 6, as burn's).
    #[test]
    fn relu6_by_hand() {
        let x = [-1.0, 0.0, 3.0, 6.0, 7.0];
        assert_eq!(forward(Kind::Relu6, &x), vec![0.0, 0.0, 3.0, 6.0, 6.0]);
        let dx = backward(Kind::Relu6, &x, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(dx, vec![0.0, 2.0, 3.0, 4.0, 0.0]);
    }

    /// The eight-lane SiLU against f64 over [−30, 30] in steps of 1/128: within 4 f32 ulps
    /// (relative 4.8e-7) where the value is not tiny, 1e-12 absolute where it is.
    #[test]
    fn silu_is_within_four_ulps_of_f64() {
        let x: Vec<f32> = (-3840..=3840).map(|i| i as f32 / 128.0).collect();
        let y = forward(Kind::Silu, &x);
        for (&x, &y) in x.iter().zip(&y) {
            let v = f64::from(x);
            let want = v / (1.0 + (-v).exp());
            let err = (f64::from(y) - want).abs();
            assert!(
                err <= 4.8e-7 * want.abs() || err < 1e-12,
                "silu({x}) = {y} vs {want}"
            );
        }
    }

    /// Central finite differences in f64 of `Σ silu(x) · r` against the analytic gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f32> = (0..41).map(|i| -10.0 + 0.5 * i as f32).collect();
        let r: Vec<f32> = (0..41).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let dx = backward(Kind::Silu, &x, &r);
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
