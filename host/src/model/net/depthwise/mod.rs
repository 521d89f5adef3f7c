//! Depthwise convolution with fovea's own forward and backward passes, plugged into burn
//! through its backend extension mechanism (`#[backend_extension]`, a custom autodiff
//! [`Backward`] step).
//!
//! Why: burn 0.22.1's generic backward of a grouped convolution computes the weight gradient
//! with a loop over the groups — for a depthwise conv one dense convolution per channel, each
//! slicing the input and the gradient and writing its slice of the result back — and the input
//! gradient as a grouped transposed convolution. Its depthwise forward path accumulates tap by
//! tap in memory and goes scalar at stride 2. All three come from [`kernel`]
//! ([`shared::depthwise`], which the device also runs).
//!
//! Only the CPU `flex` backend (with or without autodiff) takes this path; on any other device
//! [`depthwise_conv2d`] is burn's own `conv2d`, so the GPU features build and behave as before.
pub use shared::depthwise as kernel;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor};

use self::kernel::Geometry;
use super::flex_values::{shape, tensor, values};

/// The depthwise convolution as a backend operation (no bias: every EfficientNet depthwise conv
/// is followed by a BatchNorm).
#[backend_extension(Flex, Autodiff)]
pub trait DepthwiseBackend: Backend {
    /// `x` `[N, C, H, W]`, `weight` `[C, 1, kh, kw]`, `options.groups == C`, dilation 1.
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl DepthwiseBackend for Flex {
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, &options)
    }
}

/// [`kernel::forward`] on flex tensors.
fn forward(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let (xs, ws) = (shape(x), shape(weight));
    let out = |size: usize, k: usize, axis: usize| {
        let (before, after) = options.padding[axis];
        (size + before + after)
            .checked_sub(k)
            .map_or(0, |span| span / options.stride[axis] + 1)
    };
    let (oh, ow) = (out(xs[2], ws[2], 0), out(xs[3], ws[3], 1));
    let geo = geometry(&xs, &ws, &[xs[0], xs[1], oh, ow], options);
    tensor(
        kernel::forward(&values(x), &values(weight), &geo),
        vec![xs[0], xs[1], oh, ow],
    )
}

/// The autodiff step: forward and backward both call [`kernel`].
#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let geo = geometry(&shape(&x), &shape(&weight), &shape(&grad), &options);
        let grad = values(&grad);
        if let Some(node) = node_x {
            let dx = kernel::input_grad(&values(&weight), &grad, &geo);
            grads.register::<Flex>(node.id, tensor(dx, shape(&x)));
        }
        if let Some(node) = node_weight {
            let dw = kernel::weight_grad(&values(&x), &grad, &geo);
            grads.register::<Flex>(node.id, tensor(dw, shape(&weight)));
        }
    }
}

impl<C: CheckpointStrategy> DepthwiseBackend for Autodiff<Flex, C> {
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match DepthwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = forward(&x.into_primitive(), &weight.into_primitive(), &options);
                prep.finish((x_state, weight_state, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                &x.into_primitive(),
                &weight.into_primitive(),
                &options,
            )),
        }
    }
}

/// A depthwise convolution of `x` `[N, C, H, W]` with `weight` `[C, 1, kh, kw]`
/// (`options.groups == C`). On the flex backend (plain or autodiff) and in f32 through
/// [`DepthwiseBackend`]; elsewhere, or with dilation, burn's `conv2d`.
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
    let [_, channels, _, _] = x.dims();
    let [out_channels, per_group, _, _] = weight.dims();
    let canonical = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && options.groups == channels
        && out_channels == channels
        && per_group == 1
        && options.dilation == [1, 1];
    if !canonical || x.device().inner() != Device::flex() {
        return conv2d(x, weight, None, options);
    }
    Tensor::from_dispatch(<Dispatch as DepthwiseBackend>::depthwise_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ))
}

/// The kernels' geometry from the input, weight and output-gradient shapes.
fn geometry(x: &[usize], w: &[usize], g: &[usize], options: &ConvOptions<2>) -> Geometry {
    Geometry {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        kh: w[2],
        kw: w[3],
        oh: g[2],
        ow: g[3],
        sh: options.stride[0],
        sw: options.stride[1],
        ph: options.padding[0].0,
        pw: options.padding[1].0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    /// `loss = Σ y · r` for a fixed random `r` (so the upstream gradient is `r`, not ones);
    /// returns `y` and the gradients of `x` and `w`.
    fn run(
        op: impl Fn(Tensor<4>, Tensor<4>, ConvOptions<2>) -> Tensor<4>,
        x: &Tensor<4>,
        w: &Tensor<4>,
        r: &Tensor<4>,
        options: &ConvOptions<2>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(x.to_data(), &device).require_grad();
        let w = Tensor::<4>::from_data(w.to_data(), &device).require_grad();
        let y = op(x.clone(), w.clone(), options.clone());
        let r = Tensor::<4>::from_data(r.to_data(), &device);
        let grads = (y.clone() * r).sum().backward();
        let vec = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        (
            vec(y.inner()),
            vec(x.grad(&grads).unwrap()),
            vec(w.grad(&grads).unwrap()),
        )
    }

    fn burn_conv(x: Tensor<4>, w: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
        conv2d(x, w, None, options)
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (k, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                (p - q).abs() <= 1e-4 * (1.0 + q.abs()),
                "{what}[{k}]: {p} vs {q}"
            );
        }
    }

    /// Output, input gradient and weight gradient equal burn's own grouped `conv2d` (the op this
    /// replaces) on EfficientNet's depthwise geometries: k3/k5, stride 1/2, TF "SAME" (asymmetric
    /// at stride 2 on even sizes) and symmetric padding, odd and even sizes.
    #[test]
    fn gradients_equal_burns_grouped_convolution() {
        let device = Device::flex();
        device.seed(7);
        for (h, w, k, s, same) in [
            (16, 16, 3, 2, true),
            (15, 17, 5, 2, true),
            (14, 14, 5, 1, true),
            (16, 16, 3, 2, false),
            (9, 9, 3, 1, false),
        ] {
            let c = 6;
            let padding = if same {
                padding_pairs_same(h, w, k, s)
            } else {
                [(k / 2, k / 2); 2]
            };
            let options = ConvOptions::new_with_padding([s, s], padding, [1, 1], c);
            let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let wt = Tensor::<4>::random([c, 1, k, k], Distribution::Normal(0.0, 1.0), &device);
            let oh = (h + padding[0].0 + padding[0].1 - k) / s + 1;
            let ow = (w + padding[1].0 + padding[1].1 - k) / s + 1;
            let r = Tensor::<4>::random([2, c, oh, ow], Distribution::Normal(0.0, 1.0), &device);
            let ours = run(depthwise_conv2d, &x, &wt, &r, &options);
            let theirs = run(burn_conv, &x, &wt, &r, &options);
            let case = format!("{h}×{w} k{k} s{s} same={same}");
            close(&ours.0, &theirs.0, &format!("{case} y"));
            close(&ours.1, &theirs.1, &format!("{case} dx"));
            close(&ours.2, &theirs.2, &format!("{case} dw"));
        }
    }

    fn padding_pairs_same(h: usize, w: usize, k: usize, s: usize) -> [(usize, usize); 2] {
        super::super::padding::pairs(&burn::nn::PaddingConfig2d::Same, [h, w], [k, k], [s, s])
    }

    /// Central finite differences of `loss = Σ y · r` against the analytic gradients, every
    /// element of `x` and `w`, on a small stride-2 TF-padded case. The loss is linear in each
    /// argument, so the differences are exact up to f32 rounding.
    #[test]
    fn gradients_match_finite_differences() {
        let device = Device::flex();
        device.seed(11);
        let (c, h, w, k, s) = (3, 6, 7, 3, 2);
        let options =
            ConvOptions::new_with_padding([s, s], padding_pairs_same(h, w, k, s), [1, 1], c);
        let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random([c, 1, k, k], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random([2, c, 3, 4], Distribution::Normal(0.0, 1.0), &device);
        let (_, dx, dw) = run(depthwise_conv2d, &x, &wt, &r, &options);
        let loss = |x: &[f32], wv: &[f32]| -> f64 {
            let xt = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [2, c, h, w]), &device);
            let wt = Tensor::<4>::from_data(TensorData::new(wv.to_vec(), [c, 1, k, k]), &device);
            let y = depthwise_conv2d(xt, wt, options.clone());
            f64::from((y * r.clone()).sum().into_scalar::<f32>())
        };
        let xv = x.to_data().try_to_vec::<f32>().unwrap();
        let wv = wt.to_data().try_to_vec::<f32>().unwrap();
        let eps = 0.05f32;
        for i in 0..xv.len() {
            let (mut p, mut m) = (xv.clone(), xv.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (loss(&p, &wv) - loss(&m, &wv)) / f64::from(2.0 * eps);
            assert!(
                (fd - f64::from(dx[i])).abs() < 2e-3,
                "dx[{i}]: fd {fd} vs {}",
                dx[i]
            );
        }
        for i in 0..wv.len() {
            let (mut p, mut m) = (wv.clone(), wv.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (loss(&xv, &p) - loss(&xv, &m)) / f64::from(2.0 * eps);
            assert!(
                (fd - f64::from(dw[i])).abs() < 2e-3,
                "dw[{i}]: fd {fd} vs {}",
                dw[i]
            );
        }
    }
}
