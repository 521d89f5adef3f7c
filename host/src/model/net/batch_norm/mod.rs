//! BatchNorm's forward and backward, in training and in evaluation mode, as fused operations,
//! plugged into burn through its backend extension mechanism like
//! [`depthwise`](super::depthwise); [`forward`] stands in for `BatchNorm::forward` and keeps its
//! behaviour (running statistics, frozen layers).
//!
//! Why: see [`kernel`] — burn's generic training path copies the activation four times
//! (transposes) and makes about a dozen passes over it per layer and step; its evaluation path
//! (every layer of a frozen backbone, validation) makes four broadcast passes where one
//! per-channel `x a + b` does. Only the CPU `flex` backend in f32 takes these paths; every other
//! device uses burn's `BatchNorm`.
pub mod kernel;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::{DType, Device, Tensor};

use self::kernel::{Extent, Layer};
use super::flex_values::{shape, tensor, values, values_mut};
use crate::model::arch::Activation;

/// The two fused operations.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormBackend: Backend {
    /// Per-channel mean and biased variance of `x` `[N, C, …]` as one `[2, C]` tensor; never
    /// differentiated (the gradient of [`batch_norm_train`](Self::batch_norm_train) accounts
    /// for the statistics' dependence on `x`).
    fn batch_norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `act(γ (x − μ) / √(σ² + ε) + β)` with `stats` from
    /// [`batch_norm_stats`](Self::batch_norm_stats) of the same `x` and `act` the layer's
    /// activation (`None`: none).
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self>;

    /// The same normalization with `stats` the layer's running statistics, constants: the
    /// evaluation-mode BatchNorm (a frozen layer, validation, inference), whose gradient
    /// treats the statistics as fixed.
    fn batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self>;
}

fn extent(x: &FlexTensor) -> Extent {
    let s = shape(x);
    Extent {
        n: s[0],
        c: s[1],
        plane: s[2..].iter().product(),
    }
}

/// `act(γ (x − μ) / √(σ² + ε) + β)` on flex tensors, `stats` = `[μ; σ²]`: in `x`'s own buffer
/// when nothing else holds it (a layer nobody differentiates), into a new one otherwise.
fn normalize(
    mut x: FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    stats: &FlexTensor,
    epsilon: f64,
    act: Option<Activation>,
) -> FlexTensor {
    let e = extent(&x);
    let (gamma, beta, stats) = (values(gamma), values(beta), values(stats));
    let layer = Layer {
        gamma: &gamma,
        beta: &beta,
        stats: &stats,
        eps: epsilon,
        act,
    };
    if let Some(v) = values_mut(&mut x) {
        kernel::forward_in_place(v, &layer, &e);
        return x;
    }
    let y = kernel::forward(&values(&x), &layer, &e);
    tensor(y, shape(&x))
}

impl BatchNormBackend for Flex {
    fn batch_norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let e = extent(&x);
        tensor(kernel::stats(&values(&x), &e), vec![2, e.c])
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self> {
        normalize(x, &gamma, &beta, &stats, epsilon, activation)
    }

    fn batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self> {
        normalize(x, &gamma, &beta, &stats, epsilon, activation)
    }
}

/// The backward step of either mode: training (the statistics depend on `x`) or evaluation
/// (they are constants), with the layer's activation folded in.
#[derive(Debug)]
struct BatchNormBackward {
    training: bool,
    activation: Option<Activation>,
}

/// What [`BatchNormBackward`] keeps: the input, γ and β (to recompute the activation's input),
/// the statistics (a constant) and ε.
type State = (NodeId, NodeId, NodeId, FlexTensor, f64);

impl Backward<Flex, 3> for BatchNormBackward {
    type State = State;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, beta_state, stats, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FlexTensor>(gamma_state);
        let beta = checkpointer.retrieve_node_output::<FlexTensor>(beta_state);
        let gradients = if self.training {
            kernel::backward
        } else {
            kernel::backward_eval
        };
        let (gamma_v, beta_v, stats_v) = (values(&gamma), values(&beta), values(&stats));
        let layer = Layer {
            gamma: &gamma_v,
            beta: &beta_v,
            stats: &stats_v,
            eps: epsilon,
            act: self.activation,
        };
        let (dx, dgamma, dbeta) = gradients(&values(&x), &values(&grad), &layer, &extent(&x));
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, shape(&x)));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(dgamma, shape(&gamma)));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(dbeta, shape(&gamma)));
        }
    }
}

/// Either mode's autodiff form: flex's forward, [`BatchNormBackward`] recorded when anything is
/// tracked.
fn tracked<C: CheckpointStrategy>(
    step: BatchNormBackward,
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: FloatTensor<Autodiff<Flex, C>>,
    beta: FloatTensor<Autodiff<Flex, C>>,
    stats: FloatTensor<Autodiff<Flex, C>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let stats = stats.into_primitive();
    let act = step.activation;
    match step
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let gamma_state = prep.checkpoint(&gamma);
            let beta_state = prep.checkpoint(&beta);
            let out = normalize(
                x.into_primitive(),
                &gamma.into_primitive(),
                &beta.into_primitive(),
                &stats,
                epsilon,
                act,
            );
            prep.finish((x_state, gamma_state, beta_state, stats, epsilon), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(normalize(
            x.into_primitive(),
            &gamma.into_primitive(),
            &beta.into_primitive(),
            &stats,
            epsilon,
            act,
        )),
    }
}

impl<C: CheckpointStrategy> BatchNormBackend for Autodiff<Flex, C> {
    fn batch_norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // A constant: not tracked, whatever `x` is.
        <Self as AutodiffBackend>::from_inner(Flex::batch_norm_stats(x.into_primitive()))
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self> {
        let step = BatchNormBackward {
            training: true,
            activation,
        };
        tracked::<C>(step, x, gamma, beta, stats, epsilon)
    }

    fn batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        activation: Option<Activation>,
    ) -> FloatTensor<Self> {
        let step = BatchNormBackward {
            training: false,
            activation,
        };
        tracked::<C>(step, x, gamma, beta, stats, epsilon)
    }
}

/// `bn.forward(x)`, fused on flex/f32 in both modes. Same rule as burn for which mode applies
/// (training on an autodiff device with the layer's training flag set, evaluation otherwise),
/// same running-statistics update in training (`running ← (1 − momentum) · running +
/// momentum · batch`, biased variance); evaluation normalizes with the running statistics in
/// one pass where burn's `batch_norm` makes four. `act`, the activation that follows
/// (`None`: none), is applied in the same pass and its gradient folded into BatchNorm's, so
/// the pre-activation tensor is never stored.
pub fn forward(bn: &BatchNorm, x: Tensor<4>, act: Option<Activation>) -> Tensor<4> {
    let device = x.device();
    if x.dtype() != DType::F32 || device.clone().inner() != Device::flex() {
        let y = bn.forward(x);
        return match act {
            Some(act) => act.forward(y),
            None => y,
        };
    }
    if !(device.is_autodiff() && bn.training.is_enabled()) {
        let stats = Tensor::stack::<2>(
            vec![
                bn.running_mean.value().to_device(&device),
                bn.running_var.value().to_device(&device),
            ],
            0,
        )
        .detach();
        return Tensor::<4>::from_dispatch(<Dispatch as BatchNormBackend>::batch_norm_eval(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            stats.into_dispatch(),
            bn.epsilon,
            act,
        ));
    }
    let [_, channels, _, _] = x.dims();
    let stats = Tensor::<2>::from_dispatch(<Dispatch as BatchNormBackend>::batch_norm_stats(
        x.clone().into_dispatch(),
    ));
    let out = Tensor::<4>::from_dispatch(<Dispatch as BatchNormBackend>::batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        stats.clone().into_dispatch(),
        bn.epsilon,
        act,
    ));
    let stats = stats.detach();
    let mean = stats.clone().narrow(0, 0, 1).reshape([channels]);
    let var = stats.narrow(0, 1, 1).reshape([channels]);
    let m = bn.momentum;
    let running_mean = bn
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(mean.mul_scalar(m));
    let running_var = bn
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(var.mul_scalar(m));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Param, RunningState};
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    /// `y`, `∂x`, `∂γ`, `∂β` of `loss = Σ y · r` through `bn` then `act` (on an autodiff flex
    /// device), and the running mean and variance after it; `fused` picks [`forward`] or
    /// burn's own `BatchNorm` followed by burn's own activation.
    fn outputs(
        bn: &BatchNorm,
        x: &Tensor<4>,
        r: &Tensor<4>,
        act: Option<Activation>,
        fused: bool,
    ) -> [Vec<f32>; 6] {
        let train = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(x.to_data(), &train).require_grad();
        let y = if fused {
            forward(bn, x.clone(), act)
        } else {
            burns(bn, x.clone(), act)
        };
        let r = Tensor::<4>::from_data(r.to_data(), &train);
        let grads = (y.clone() * r).sum().backward();
        let v = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        let v4 = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        [
            v4(y.inner()),
            v4(x.grad(&grads).unwrap()),
            v(bn.gamma.grad(&grads).unwrap()),
            v(bn.beta.grad(&grads).unwrap()),
            v(bn.running_mean.value().inner()),
            v(bn.running_var.value().inner()),
        ]
    }

    /// burn's `BatchNorm` then burn's activation: the ops [`forward`] replaces.
    fn burns(bn: &BatchNorm, x: Tensor<4>, act: Option<Activation>) -> Tensor<4> {
        let y = bn.forward(x);
        match act {
            Some(Activation::Silu) => burn::tensor::activation::silu(y),
            Some(Activation::Relu6) => burn::tensor::activation::relu6(y),
            None => y,
        }
    }

    /// Every activation the fused op takes.
    const ACTIVATIONS: [Option<Activation>; 3] =
        [None, Some(Activation::Silu), Some(Activation::Relu6)];

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (k, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                (p - q).abs() <= 2e-5 * (1.0 + q.abs()),
                "{what}[{k}] {p} vs {q}"
            );
        }
    }

    /// Output, running statistics and the gradients of input, γ and β equal burn's own
    /// `BatchNorm` in training mode followed by burn's activation (the ops this replaces), for
    /// no activation, SiLU and ReLU6, on an odd-sized NCHW activation with non-trivial γ, β,
    /// running statistics and upstream gradient.
    #[test]
    fn equals_burns_batch_norm_in_training() {
        let device = Device::flex();
        device.seed(5);
        let x = Tensor::<4>::random([3, 4, 7, 9], Distribution::Normal(1.5, 2.0), &device);
        let r = Tensor::<4>::random([3, 4, 7, 9], Distribution::Normal(0.0, 1.0), &device);
        let gamma = Tensor::<1>::random([4], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<1>::random([4], Distribution::Normal(0.0, 0.5), &device);
        let run = |act: Option<Activation>, fused: bool| {
            let train = Device::flex().autodiff();
            let mut bn = BatchNormConfig::new(4)
                .with_epsilon(1e-3)
                .with_momentum(0.1)
                .init(&train);
            bn.gamma = Param::from_tensor(Tensor::from_data(gamma.to_data(), &train));
            bn.beta = Param::from_tensor(Tensor::from_data(beta.to_data(), &train));
            bn.running_mean
                .update(Tensor::from_floats([0.5, -0.5, 1.0, 0.0], &train));
            outputs(&bn, &x, &r, act, fused)
        };
        for act in ACTIVATIONS {
            let (ours, theirs) = (run(act, true), run(act, false));
            let names = ["y", "dx", "dγ", "dβ", "running mean", "running var"];
            for ((a, b), what) in ours.iter().zip(&theirs).zip(names) {
                close(a, b, &format!("{act:?} {what}"));
            }
        }
    }

    /// Evaluation mode (the layer's training flag cleared, as a frozen backbone has it, on an
    /// autodiff device so gradients still flow, as Grad-CAM needs): output and the gradients of
    /// input, γ and β equal burn's own `BatchNorm` inference path; the running statistics are
    /// left alone. And on a plain device (validation) the output equals burn's too. Each with
    /// no activation, SiLU and ReLU6 after the normalization.
    #[test]
    fn equals_burns_batch_norm_in_evaluation() {
        let device = Device::flex();
        device.seed(9);
        let x = Tensor::<4>::random([2, 3, 5, 6], Distribution::Normal(0.5, 2.0), &device);
        let r = Tensor::<4>::random([2, 3, 5, 6], Distribution::Normal(0.0, 1.0), &device);
        let layer = |device: &Device| {
            let mut bn = BatchNormConfig::new(3).with_epsilon(1e-3).init(device);
            bn.gamma = Param::from_tensor(Tensor::from_floats([1.5, -0.5, 2.0], device));
            bn.beta = Param::from_tensor(Tensor::from_floats([0.1, 0.7, -0.3], device));
            bn.running_mean = RunningState::new(Tensor::from_floats([0.5, -0.5, 1.0], device));
            bn.running_var = RunningState::new(Tensor::from_floats([2.0, 0.25, 4.0], device));
            bn.training = Param::from_bool(false);
            bn
        };
        let v4 = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        for act in ACTIVATIONS {
            let run = |fused: bool| outputs(&layer(&Device::flex().autodiff()), &x, &r, act, fused);
            let (ours, theirs) = (run(true), run(false));
            for ((a, b), what) in ours.iter().zip(&theirs).zip(["y", "dx", "dγ", "dβ"]) {
                close(a, b, &format!("{act:?} {what}"));
            }
            assert_eq!(ours[4], vec![0.5, -0.5, 1.0], "running mean untouched");
            assert_eq!(ours[5], vec![2.0, 0.25, 4.0], "running var untouched");
            // Not the identity: a check that the layer did normalize.
            assert!((ours[0][0] - v4(x.clone())[0]).abs() > 1e-3);
            let bn = layer(&device);
            close(
                &v4(forward(&bn, x.clone(), act)),
                &v4(burns(&bn, x.clone(), act)),
                &format!("{act:?} y (plain device)"),
            );
        }
    }
}
