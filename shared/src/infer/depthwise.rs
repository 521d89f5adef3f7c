//! fovea's depthwise convolution inside tract: an op running [`crate::depthwise`] (the kernel
//! the host trains with) and [`replace`], the model patch that puts it in place of tract's
//! depthwise `Conv` nodes before tract optimizes the model.
//!
//! Why: tract 0.23.9 runs EfficientNet's depthwise layers with a zone walk per plane whose
//! stride-2 and border zones are scalar (`perf` of B0 at 224 px, one thread: 41 % of the run in
//! its `DepthWise` op). The shared kernel stages each plane zero-padded (split into column
//! phases at stride 2) and keeps register blocks across all taps, at any stride.
//!
//! The values are tract's: each output starts from the channel's bias and adds one rounded
//! product per tap in row-major kernel order, as tract's op does (no fused multiply-add), so a
//! patched model's outputs equal the unpatched model's (tested below on single convs and an
//! MBConv chain; the exported B0 and Lite0 were compared by hand, docs/PERFORMANCE.md).
//! Threads follow tract's executor: one thread under the default single-thread executor, the
//! executor's rayon pool under `Executor::multithread`.
//!
//! Channels-last input: where [`ChannelsLast`] runs on intrinsics (x86_64 with AVX-512 or AVX2) and
//! the model has no uint8 activations, the op asks tract's `ChangeAxes` pass for its input with the
//! channels last (`suggested_axis_changes`, as tract's own depthwise `Conv` does where tract-linalg
//! has a channel-inner kernel). The pass carries the move back through the activation to the
//! expansion's `EinSum`, which absorbs it (its product then writes `[H, W, C]`,
//! [`super::pointwise`]); the op reads that and writes planes, so the rest of the graph keeps its
//! layout, and no plane is staged (`cargo bench -p fovea-shared --bench depthwise`, B0's layers:
//! 2.02–2.04 ms on the CHW path, 1.45–1.46 channels-last in and planes out). A depthwise conv whose
//! input is another's output (planes) or the stem's (the model's input is locked) stays CHW. The
//! values are the same either way ([`ChannelsLast`] is bit for bit the CHW kernel).
use std::sync::Arc;

use crate::depthwise::{ChannelsLast, Geometry, Prepared, Spread, forward_prepared_into};
use tract_core::internal::*;
use tract_core::ops::cnn::Conv;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::quant::QuantizeLinearU8;
use tract_core::optim::{Optimizer, OptimizerSession, TypedPass};
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::activation::Activation;
use super::conv_patch::{ConvParts, first_covered, replace_convs};

/// A depthwise convolution with constant weights and bias, NCHW or CHW, dilation 1.
#[derive(Debug, Clone)]
pub struct Depthwise {
    /// Whether the tensors carry the batch axis (NCHW) or not (CHW, batch 1: tract drops the
    /// axis of a batch-1 model while it declutters).
    batched: bool,
    /// The layer: geometry, weights `[c, kh, kw]` and bias `[c]`, arranged for the kernel once,
    /// at load.
    layer: Arc<Prepared>,
    /// Applied to each plane as it is written ([`super::activation::fuse`]).
    activation: Option<Activation>,
    /// The channels-last form of the layer, when the input is `[n, h, w, c]` (`[h, w, c]`).
    last: Option<Arc<ChannelsLast>>,
    /// Whether the op asks for a channels-last input (set by [`declutter`] in models without
    /// quantized activations).
    may_move: bool,
}

impl PartialEq for Depthwise {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.layer.geometry() == other.layer.geometry()
            && self.batched == other.batched
            && bits(self.layer.weights()) == bits(other.layer.weights())
            && self.layer.bias().map(bits) == other.layer.bias().map(bits)
            && self.activation == other.activation
            && self.last.is_some() == other.last.is_some()
            && self.may_move == other.may_move
    }
}

impl Eq for Depthwise {}

impl Op for Depthwise {
    fn name(&self) -> StaticName {
        "FoveaDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?}, then {:?}",
            self.layer.geometry(),
            self.activation
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let g = self.layer.geometry();
        // The output tensor is allocated by tract (its alignment) and written in place: going
        // through a Vec and `Tensor::from` copied every output once more.
        // SAFETY: `forward_into` writes every element before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.shape(g.oh, g.ow, false))? };
        let len = y.len();
        // SAFETY: the tensor holds `len` f32s in one plain allocation; as `MaybeUninit<f32>`
        // (f32's layout) they may be written before they are initialized.
        let out =
            unsafe { std::slice::from_raw_parts_mut(y.as_ptr_mut_unchecked::<f32>().cast(), len) };
        let act = self.activation;
        let then = |p: &mut [f32]| {
            if let Some(a) = act {
                a.apply(p)
            }
        };
        let mut run = |spread| match &self.last {
            Some(last) => last.forward_into_planes(x, out, spread, self.relu6()),
            None => forward_prepared_into(x, &self.layer, spread, out, &then),
        };
        match current_tract_executor() {
            Executor::SingleThread => run(Spread::Serial),
            Executor::MultiThread(pool) => pool.install(|| run(Spread::Rayon)),
            _ => run(Spread::Rayon),
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl Depthwise {
    /// Whether the channels-last kernel clamps the outputs in registers: the op's activation
    /// is ReLU6.
    pub(super) fn relu6(&self) -> bool {
        match self.activation {
            Some(Activation::Relu6) => true,
            None => false,
        }
    }

    /// This op with `activation` applied to its outputs.
    pub fn with_activation(&self, activation: Activation) -> Self {
        Depthwise {
            activation: Some(activation),
            ..self.clone()
        }
    }

    /// The channels-last form of the layer, if the op reads its input channels-last (then
    /// one image: tract's declutter moves the channels of a batch-1 model's only).
    pub(super) fn channels_last(&self) -> Option<&ChannelsLast> {
        self.last.as_deref()
    }

    /// The layer's weights and bias, as the plane path runs them.
    pub(super) fn layer(&self) -> &Prepared {
        &self.layer
    }

    /// What the op applies to its outputs.
    pub(super) fn activation(&self) -> Option<Activation> {
        self.activation
    }

    /// The output's shape.
    pub(super) fn output_shape(&self) -> Vec<usize> {
        let g = self.layer.geometry();
        self.shape(g.oh, g.ow, false)
    }

    /// The input's (`h`, `w`, `input`) or output's (`oh`, `ow`) shape: only the input is ever
    /// channels-last.
    fn shape(&self, h: usize, w: usize, input: bool) -> Vec<usize> {
        let g = self.layer.geometry();
        match (self.batched, input && self.last.is_some()) {
            (true, false) => vec![g.n, g.c, h, w],
            (false, false) => vec![g.c, h, w],
            (true, true) => vec![g.n, h, w, g.c],
            (false, true) => vec![h, w, g.c],
        }
    }

    /// The move of the channel axis that turns this op's layout into the other one.
    fn layout_move(&self) -> AxisOp {
        let (c, last) = if self.batched { (1, 3) } else { (0, 2) };
        if self.last.is_some() {
            AxisOp::Move(last, c)
        } else {
            AxisOp::Move(c, last)
        }
    }
}

impl TypedOp for Depthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let g = self.layer.geometry();
        let expected = self.shape(g.h, g.w, true);
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&expected[..]),
            "FoveaDepthwise expects f32 {expected:?}, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(self.shape(g.oh, g.ow, false))))
    }

    /// Takes the changes tract's declutter makes to a batch-1 model's depthwise convs when
    /// fovea's op stands in for them ([`declutter`]): dropping the batch axis, as tract's `Conv`
    /// does, and the channels-last input this op asks for ([`Self::suggested_axis_changes`]),
    /// its output staying in planes. Any other change is refused.
    fn change_axes(
        &self,
        _model: &TypedModel,
        _node: &TypedNode,
        io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        rule_if!(matches!(io, InOut::In(0) | InOut::Out(0)));
        let layout = io == InOut::In(0) && *change == self.layout_move();
        let op = if layout {
            Depthwise {
                last: match self.last {
                    Some(_) => None,
                    None => {
                        let g = self.layer.geometry();
                        Some(Arc::new(ChannelsLast::new(
                            self.layer.weights(),
                            self.layer.bias(),
                            g,
                        )))
                    }
                },
                ..self.clone()
            }
        } else {
            rule_if!(self.batched && self.layer.geometry().n == 1);
            rule_if!(*change == AxisOp::Rm(0));
            Depthwise {
                batched: false,
                ..self.clone()
            }
        };
        Ok(Some(AxisChangeConsequence {
            substitute_op: Some(Box::new(op)),
            wire_changes: if layout {
                tvec!((InOut::In(0), change.clone()))
            } else {
                tvec!(
                    (InOut::In(0), change.clone()),
                    (InOut::Out(0), change.clone())
                )
            },
        }))
    }

    /// Asks tract's `ChangeAxes` pass for a channels-last input, as tract's own depthwise `Conv`
    /// does where it has a channel-inner kernel, wherever [`ChannelsLast`] runs the layer on
    /// intrinsics (x86_64 with AVX-512 or AVX2; elsewhere its portable loop is unmeasured and the
    /// layout stays). The pass moves the channels back to the expansion before, whose product
    /// writes them last ([`super::pointwise`]); this op's output stays in planes. Not in a
    /// `compute`-form model (uint8 activations): there the move passed through the quantize ops and
    /// left 15 of Lite0's 32 integer 1×1 convs to fp32 (`int8_pointwise.rs` reads CHW only; `edge
    /// bench`, one thread, 7.4 → 9.8 ms).
    fn suggested_axis_changes(&self) -> TractResult<TVec<(InOut, AxisOp)>> {
        let g = self.layer.geometry();
        if !self.may_move || self.last.is_some() || g.c < 16 || !ChannelsLast::has_simd(g) {
            return Ok(tvec!());
        }
        Ok(tvec!((InOut::In(0), self.layout_move())))
    }

    as_op!();
}

/// Declutters `model` as tract's `into_decluttered` does, with [`PlaceDepthwise`] run just before
/// tract's `ChangeAxes` pass, so that no depthwise `Conv` fovea covers is left for that pass.
///
/// Why: tract-core 0.23.9's depthwise `Conv` asks `ChangeAxes` for a channels-last input
/// (`Conv::suggested_axis_changes`) wherever tract-linalg has a channel-inner depthwise kernel:
/// on aarch64, not on x86. Decluttered by tract alone, an aarch64 board's B0 and Lite0 came out
/// channels-last, where fovea's ops (CHW) are not placed: 1 of 16 depthwise convs at 224 px
/// (x86: 16 of 16). Replaced here, the convs ask for a channels-last input only where
/// [`ChannelsLast`] runs them on intrinsics (x86_64 with AVX-512) and the model has no uint8
/// activations, and fovea's ops take the moved layout (the module's doc).
pub fn declutter(model: &mut TypedModel) -> TractResult<()> {
    let quantized = model.nodes().iter().any(|n| {
        n.op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<QuantizeLinearU8>())
    });
    let mut optimizer = Optimizer::declutter();
    let at = optimizer
        .passes
        .iter()
        .position(|p| format!("{p:?}") == "ChangeAxes")
        // A tract that renamed the pass: placed last, the layout may move again on aarch64;
        // `fovea_declutter_places_the_op_and_leaves_no_axis_move` under qemu-aarch64 and
        // scripts/build-edge-arm.sh's `compute` tolerance would fail on it.
        .unwrap_or(optimizer.passes.len());
    optimizer.add_pass(
        at,
        Box::new(PlaceDepthwise {
            may_move: !quantized,
        }),
    );
    optimizer.optimize(model)
}

/// The declutter pass placing [`Depthwise`]: each step replaces the first depthwise `Conv` it
/// covers ([`replace`]'s rule).
#[derive(Clone, Debug)]
pub struct PlaceDepthwise {
    /// Whether the placed ops may ask for a channels-last input.
    may_move: bool,
}

impl TypedPass for PlaceDepthwise {
    fn reset(&mut self) -> TractResult<()> {
        Ok(())
    }

    fn next(
        &mut self,
        _session: &mut OptimizerSession,
        model: &TypedModel,
    ) -> TractResult<Option<TypedModelPatch>> {
        let may_move = self.may_move;
        first_covered(model, |m: &TypedModel, n: &TypedNode, c: &Conv| {
            Ok(covered(m, n, c)?.map(|d| Depthwise { may_move, ..d }))
        })
    }
}

/// Replaces every depthwise `Conv` of `model` that [`Depthwise`] covers (f32, NCHW or CHW, a
/// concrete input shape, group = input = output channels, dilation 1, constant kernel and
/// bias) with it; returns how many. Others (quantized, dilated, symbolic shapes) stay tract's.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    replace_convs(model, covered)
}

/// The [`Depthwise`] equal to `conv` at `node`, if it covers it.
fn covered(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Depthwise>> {
    let Some(parts) = ConvParts::of(model, node, conv)? else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let c = conv.input_channels();
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    let chw = parts.chw;
    if conv.group != c
        || conv.output_channels() != c
        || c < 2
        || chw[0] != c
        || parts.kernel.shape() != [c, 1, kh, kw]
    {
        return Ok(None);
    }
    let Some(bias) = parts.bias_per_channel(c)? else {
        return Ok(None);
    };
    let pads = spec.computed_padding(&chw[1..]);
    let geo = Geometry {
        n: parts.n,
        c,
        h: chw[1],
        w: chw[2],
        kh,
        kw,
        oh: pads[0].convoluted,
        ow: pads[1].convoluted,
        sh: spec.stride(0),
        sw: spec.stride(1),
        ph: pads[0].pad_before,
        pw: pads[1].pad_before,
    };
    let weights = parts.kernel.try_as_plain_ram()?.as_slice::<f32>()?;
    Ok(Some(Depthwise {
        batched: parts.batched,
        layer: Arc::new(Prepared::new(weights, Some(&bias), &geo)),
        activation: None,
        last: None,
        may_move: false,
    }))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::infer::pointwise::tests::{f32s, on_threads, run_tensor};
    use tract_core::ops::cnn::{KernelFormat, PaddingSpec, PoolSpec};
    use tract_core::ops::math::mul;
    use tract_core::ops::nn::DataFormat;
    use tract_core::ops::nn::sigmoid;

    /// Deterministic values in [-1, 1) (a 32-bit LCG), `seed` picking the sequence.
    pub(in crate::infer) fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// One depthwise conv: `(channels, h, w, kernel side, stride, padding before, after, batched)`.
    pub(in crate::infer) type Case = (usize, usize, usize, usize, usize, usize, usize, bool);

    /// Wires tract's depthwise `Conv` of `case` on `x` in `model`; returns its output.
    pub(in crate::infer) fn wire_depthwise(
        model: &mut TypedModel,
        x: OutletId,
        case: Case,
        seed: u32,
    ) -> OutletId {
        let (c, _, _, k, s, before, after, batched) = case;
        let shape = ConvShape {
            c_in: c,
            c_out: c,
            group: c,
            k,
            stride: s,
            pads: (before, after),
            batched,
        };
        wire_conv(model, x, shape, &format!("dw{seed}"), seed)
    }

    /// A square 2-D `Conv` with explicit padding, for [`wire_conv`].
    pub(in crate::infer) struct ConvShape {
        pub c_in: usize,
        pub c_out: usize,
        pub group: usize,
        pub k: usize,
        pub stride: usize,
        /// Padding before and after, on both axes.
        pub pads: (usize, usize),
        pub batched: bool,
    }

    /// Wires tract's `Conv` of `shape` named `name` on `x` in `model`, weights and bias from
    /// `seed` ([`values`]); returns its output.
    pub(in crate::infer) fn wire_conv(
        model: &mut TypedModel,
        x: OutletId,
        shape: ConvShape,
        name: &str,
        seed: u32,
    ) -> OutletId {
        let ConvShape {
            c_in,
            c_out,
            group,
            k,
            stride,
            pads: (before, after),
            batched,
        } = shape;
        let per_group = c_in / group;
        let kernel = tract_ndarray::ArrayD::from_shape_vec(
            vec![c_out, per_group, k, k],
            values(c_out * per_group * k * k, seed),
        )
        .unwrap()
        .into_tensor();
        let kernel = model.add_const(format!("{name}.k"), kernel).unwrap();
        let bias = model
            .add_const(format!("{name}.b"), tensor1(&values(c_out, seed + 1)))
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: if batched {
                    DataFormat::NCHW
                } else {
                    DataFormat::CHW
                },
                kernel_shape: tvec![k, k],
                padding: PaddingSpec::Explicit(tvec![before, before], tvec![after, after]),
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: c_in,
                output_channels: c_out,
            },
            kernel_fmt: KernelFormat::OIHW,
            group,
            q_params: None,
        };
        model.wire_node(name, conv, &[x, kernel, bias]).unwrap()[0]
    }

    /// Wires tract's 1×1 `Conv` (`i` → `o` channels, NCHW, with a bias) on `x` in `model`;
    /// returns its output.
    pub(in crate::infer) fn wire_pointwise(
        model: &mut TypedModel,
        x: OutletId,
        i: usize,
        o: usize,
        seed: u32,
    ) -> OutletId {
        let k = tract_ndarray::ArrayD::from_shape_vec(vec![o, i, 1, 1], values(o * i, seed))
            .unwrap()
            .into_tensor();
        let k = model.add_const(format!("pw{seed}.k"), k).unwrap();
        let b = model
            .add_const(format!("pw{seed}.b"), tensor1(&values(o, seed + 1)))
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![1, 1],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: i,
                output_channels: o,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        model
            .wire_node(format!("pw{seed}"), conv, &[x, k, b])
            .unwrap()[0]
    }

    /// Runs `model` on `input` optimized as tract makes it, and with [`replace`] first; returns
    /// both outputs, the op names of each optimized model and how many convs were replaced.
    fn both(model: TypedModel, input: &Tensor) -> [(Tensor, Vec<String>); 2] {
        let tract = run_tensor(model.clone(), input);
        let mut patched = model;
        replace(&mut patched).unwrap();
        [tract, run_tensor(patched, input)]
    }

    /// Asserts equal shapes and values (`==`: a zero's sign may differ, see
    /// `crate::depthwise::forward_with`).
    fn assert_same(what: &str, a: &Tensor, b: &Tensor) {
        assert_eq!(a.shape(), b.shape(), "{what}: shapes");
        let (a, b) = (f32s(a), f32s(b));
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "{what}: {differ} of {} values differ", a.len());
    }

    /// The depthwise conv of `case` (weights and bias as [`wire_depthwise`] makes them from
    /// `seed`) on the CHW values `x`, by hand: each output is the bias, then one rounded f32
    /// product added per tap in row-major kernel order (no fused multiply-add: Rust does not
    /// contract `a * b + c`), as tract's x86 kernel and fovea's compute it. Also returns each
    /// output's magnitude `|b| + Σ|w·x|`, for a rounding bound.
    fn by_hand(case: Case, seed: u32, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (c, h, w, k, s, before, after, _) = case;
        let weights = values(c * k * k, seed);
        let bias = values(c, seed + 1);
        let (oh, ow) = (
            (h + before + after - k) / s + 1,
            (w + before + after - k) / s + 1,
        );
        let (mut y, mut mag) = (Vec::new(), Vec::new());
        for ch in 0..c {
            for r in 0..oh {
                for q in 0..ow {
                    let (mut v, mut m) = (bias[ch], bias[ch].abs());
                    for i in 0..k {
                        for j in 0..k {
                            let (yy, xx) = (
                                (r * s + i) as isize - before as isize,
                                (q * s + j) as isize - before as isize,
                            );
                            if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let p = weights[(ch * k + i) * k + j]
                                * x[(ch * h + yy as usize) * w + xx as usize];
                            v += p;
                            m += p.abs();
                        }
                    }
                    y.push(v);
                    mag.push(m);
                }
            }
        }
        (y, mag)
    }

    /// Asserts `a` within `bound(i)` of `b` at each value `i`.
    fn assert_close(what: &str, a: &[f32], b: &[f32], bound: impl Fn(usize) -> f32) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= bound(i),
                "{what}: value {i}: {x} vs {y}, bound {}",
                bound(i)
            );
        }
    }

    /// A chain's outputs against tract's: equal on x86 (tract's kernels there round each
    /// product, as fovea's do); elsewhere within 1e-5 of the largest output, because tract's
    /// aarch64 kernels fuse multiply-adds (seen under qemu-aarch64: 70 of 1 144 values of a
    /// single 3×3 conv one rounding apart).
    fn assert_as_tract(what: &str, tract: &Tensor, ours: &Tensor) {
        if cfg!(target_arch = "x86_64") {
            assert_same(what, tract, ours);
        } else {
            assert_eq!(tract.shape(), ours.shape(), "{what}: shapes");
            let (t, o) = (f32s(tract), f32s(ours));
            let top = t.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_close(what, &o, &t, |_| 1e-5 * top);
        }
    }

    // The geometries of EfficientNet's depthwise layers and their edges: 3×3 and 5×5, stride 1
    // and 2, TF "same" (0 before, 1 after) and symmetric padding, planes narrower than 8 and
    // wider than 64 (each register block of the kernel), odd sides, with and without the batch
    // axis. Outputs of at most 8 columns run the kernel's small-plane path (channels in the
    // vector lanes, blocks of 16): B0's last stage (7×7 under 5×5, stride 1) with a partial
    // channel block, and more channels than one block holds.
    const CASES: [Case; 9] = [
        (20, 7, 7, 5, 1, 2, 2, false),
        (8, 13, 11, 3, 1, 1, 1, true),
        (16, 30, 30, 3, 2, 0, 1, false),
        (24, 17, 17, 5, 2, 1, 2, false),
        (32, 14, 14, 5, 1, 2, 2, true),
        (4, 7, 9, 3, 2, 1, 1, true),
        (40, 5, 5, 3, 1, 1, 1, false),
        (3, 40, 70, 3, 1, 1, 1, true),
        (6, 9, 33, 5, 2, 2, 2, false),
    ];

    #[test]
    fn equals_tracts_depthwise_op_value_for_value() {
        for (i, case) in CASES.into_iter().enumerate() {
            let (c, h, w, .., batched) = case;
            let shape = if batched {
                vec![1, c, h, w]
            } else {
                vec![c, h, w]
            };
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact(&shape)).unwrap();
            let y = wire_depthwise(&mut model, x, case, 10 + i as u32);
            model.select_output_outlets(&[y]).unwrap();
            let input = tract_ndarray::ArrayD::from_shape_vec(shape, values(c * h * w, i as u32))
                .unwrap()
                .into_tensor();
            for threads in [1, 2] {
                let [(tract, tract_ops), (ours, our_ops)] =
                    on_threads(threads, || both(model.clone(), &input));
                let what = format!("{case:?}, {threads} threads");
                assert!(
                    tract_ops.iter().any(|n| n == "DepthWiseConv"),
                    "{what}: {tract_ops:?}"
                );
                assert!(
                    our_ops.iter().any(|n| n == "FoveaDepthwise"),
                    "{what}: {our_ops:?}"
                );
                assert!(
                    !our_ops.iter().any(|n| n == "DepthWiseConv"),
                    "{what}: {our_ops:?}"
                );
                let x = f32s(&input);
                let (hand, mag) = by_hand(case, 10 + i as u32, &x);
                let ours_v = f32s(&ours);
                let differ = ours_v.iter().zip(&hand).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differ, 0,
                    "{what}: {differ} values differ from the hand sums"
                );
                // tract's own op: the same rounding on x86; elsewhere one rounding per tap
                // at most (aarch64's kernels fuse multiply-adds).
                let taps = (case.3 * case.3 + 1) as f32;
                assert_close(&what, &f32s(&tract), &hand, |i| {
                    if cfg!(target_arch = "x86_64") {
                        0.0
                    } else {
                        taps * f32::EPSILON * mag[i]
                    }
                });
            }
        }
    }

    /// An MBConv-shaped chain on a batch-1 NCHW input (tract drops the batch axis while it
    /// declutters): 1×1 expand, SiLU, depthwise 3×3 stride 2, SiLU, depthwise 5×5 stride 1, 1×1
    /// project (7 channels, 10×10); and an input for it.
    fn mbconv_chain() -> (TypedModel, Tensor) {
        mbconv_chain_with(false)
    }

    /// fovea's depthwise ops in `model`, in node order.
    fn fovea_ops(model: &TypedModel) -> Vec<&Depthwise> {
        model
            .nodes()
            .iter()
            .filter_map(|n| n.op_as::<Depthwise>())
            .collect()
    }

    /// [`mbconv_chain`], with a `compute`-form uint8 quantize → dequantize pair of the first
    /// depthwise conv's input when `quantized`.
    fn mbconv_chain_with(quantized: bool) -> (TypedModel, Tensor) {
        let (cin, c, side) = (5, 24, 20);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, cin, side, side]))
            .unwrap();
        let silu = |model: &mut TypedModel, x: OutletId, seed: u32| {
            let s = model
                .wire_node(format!("sig{seed}"), sigmoid(), &[x])
                .unwrap()[0];
            model
                .wire_node(format!("silu{seed}"), mul(), &[x, s])
                .unwrap()[0]
        };
        let e = wire_pointwise(&mut model, x, cin, c, 1);
        let mut e = silu(&mut model, e, 2);
        if quantized {
            let q = tract_core::ops::quant::quantize_linear_u8(16.0, 37);
            let u = model.wire_node("q", q, &[e]).unwrap()[0];
            let dq = tract_core::ops::quant::DequantizeLinearF32::new(0.0625, 37);
            e = model.wire_node("dq", dq, &[u]).unwrap()[0];
        }
        let d = wire_depthwise(&mut model, e, (c, side, side, 3, 2, 0, 1, true), 3);
        let d = silu(&mut model, d, 4);
        let d = wire_depthwise(&mut model, d, (c, 10, 10, 5, 1, 2, 2, true), 5);
        let y = wire_pointwise(&mut model, d, c, 7, 6);
        model.select_output_outlets(&[y]).unwrap();
        let input = tract_ndarray::ArrayD::from_shape_vec(
            vec![1, cin, side, side],
            values(cin * side * side, 99),
        )
        .unwrap()
        .into_tensor();
        (model, input)
    }

    /// Both depthwise convs of the chain, decluttered by tract, are replaced and the outputs
    /// equal tract's — where tract-linalg has no channel-inner depthwise kernel (x86). Where it
    /// has one (aarch64) tract's declutter moves the chain's channels last and [`replace`] finds
    /// nothing to take: why the loader uses [`declutter`].
    #[test]
    fn a_chain_with_pointwise_convs_and_silu_equals_tract() {
        let (model, input) = mbconv_chain();
        let mut decluttered = model.clone().into_decluttered().unwrap();
        let replaced = replace(&mut decluttered).unwrap();
        if tract_linalg::routines::depthwise_c_f32().is_some() {
            assert_eq!(replaced, 0);
            return;
        }
        assert_eq!(replaced, 2);
        let [(tract, _), (ours, our_ops)] = both(model.into_decluttered().unwrap(), &input);
        assert_eq!(our_ops.iter().filter(|n| *n == "FoveaDepthwise").count(), 2);
        assert_eq!(tract.shape(), [1, 7, 10, 10]);
        assert_as_tract("chain", &tract, &ours);
    }

    /// [`declutter`] leaves the chain with fovea's two depthwise ops, the batch axis dropped
    /// from them (their `change_axes`), no depthwise `Conv` and no `AxisOp` move left (on
    /// aarch64 tract's own declutter moves the channels last, where fovea's CHW ops are not
    /// placed); the outputs equal tract's. (Where fovea's op asks for a channels-last input,
    /// the pass absorbs the move into the expansion:
    /// `the_loader_runs_the_expansion_and_first_depthwise_channels_last`.)
    #[test]
    fn fovea_declutter_places_the_op_and_leaves_no_axis_move() {
        let (model, input) = mbconv_chain();
        let mut ours = model.clone();
        declutter(&mut ours).unwrap();
        let placed = fovea_ops(&ours);
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|d| !d.batched));
        for node in ours.nodes() {
            assert!(
                node.op_as::<Conv>().is_none_or(|c| c.group <= 1),
                "a depthwise Conv is left: {node}"
            );
            assert!(
                !matches!(node.op_as::<AxisOp>(), Some(AxisOp::Move(..))),
                "an axis moved: {node}"
            );
        }
        let [(tract, _), _] = both(model.into_decluttered().unwrap(), &input);
        let [(ours, _), _] = both(ours, &input);
        assert_eq!(tract.shape(), [1, 7, 10, 10]);
        assert_as_tract("chain", &tract, &ours);
    }

    /// Where [`ChannelsLast`] runs on intrinsics (x86_64 with AVX-512 or AVX2), the declutter turns
    /// the chain's first depthwise conv channels-last on its input: tract's `ChangeAxes` carries
    /// the move through the SiLU to the expansion `EinSum`, which fovea's 1×1 op then takes with a
    /// channels-last output (`out_last`), and the depthwise op hands planes on; the second
    /// depthwise conv (its input the first's output, planes) stays CHW. Elsewhere nothing moves,
    /// nor in a model with uint8 activations. The outputs equal tract's own within 1e-5 of the
    /// largest (the 1×1 products' rounding, `pointwise.rs`), on one and two threads.
    #[test]
    fn the_loader_runs_the_expansion_and_first_depthwise_channels_last() {
        let (model, input) = mbconv_chain();
        let mut ours = model.clone();
        declutter(&mut ours).unwrap();
        let placed = fovea_ops(&ours);
        // Whatever the CPU, the ops of a model without uint8 activations may ask for the move.
        assert!(placed.iter().all(|d| d.may_move));
        let simd = ChannelsLast::has_simd(placed[0].layer.geometry());
        let last: Vec<bool> = placed.iter().map(|d| d.last.is_some()).collect();
        assert_eq!(last, [simd, false]);
        assert_eq!(crate::infer::pointwise::replace(&mut ours).unwrap(), 2);
        let outs_last: Vec<bool> = ours
            .nodes()
            .iter()
            .filter_map(|n| n.op_as::<crate::infer::pointwise::Pointwise>())
            .map(|p| p.out_last)
            .collect();
        assert_eq!(outs_last, [simd, false]);
        let tract = f32s(&run_tensor(model.into_decluttered().unwrap(), &input).0);
        let top = tract.iter().fold(0f32, |m, v| m.max(v.abs()));
        for threads in [1, 2] {
            let (out, names) = on_threads(threads, || run_tensor(ours.clone(), &input));
            assert_eq!(names.iter().filter(|n| *n == "FoveaDepthwise").count(), 2);
            assert_eq!(out.shape(), [1, 7, 10, 10]);
            assert_close(&format!("{threads} threads"), &f32s(&out), &tract, |_| {
                1e-5 * top
            });
        }
        // With uint8 activations (a `compute`-form model) nothing moves: the integer 1×1 convs
        // read CHW only. The ops may not ask (checked on any CPU; where intrinsics run
        // `ChannelsLast` the layouts show it too).
        let (mut quantized, _) = mbconv_chain_with(true);
        declutter(&mut quantized).unwrap();
        let placed = fovea_ops(&quantized);
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|d| !d.may_move));
        let last: Vec<bool> = placed.iter().map(|d| d.last.is_some()).collect();
        assert_eq!(last, [false, false]);
    }

    /// What the kernel does not cover stays tract's: a dilated depthwise conv and a grouped
    /// conv that is not depthwise.
    #[test]
    fn dilated_and_grouped_convs_are_left_to_tract() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 8, 12, 12])).unwrap();
        let conv = |group: usize, dilation: usize| Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![3, 3],
                padding: PaddingSpec::Explicit(tvec![2, 2], tvec![2, 2]),
                dilations: Some(tvec![dilation, dilation]),
                strides: None,
                input_channels: 8,
                output_channels: 8,
            },
            kernel_fmt: KernelFormat::OIHW,
            group,
            q_params: None,
        };
        let k1 = model
            .add_const("k1", Tensor::zero::<f32>(&[8, 1, 3, 3]).unwrap())
            .unwrap();
        let k2 = model
            .add_const("k2", Tensor::zero::<f32>(&[8, 2, 3, 3]).unwrap())
            .unwrap();
        let b = model
            .add_const("b", Tensor::zero::<f32>(&[8]).unwrap())
            .unwrap();
        let y = model.wire_node("dilated", conv(8, 2), &[x, k1, b]).unwrap()[0];
        let y = model.wire_node("grouped", conv(4, 1), &[y, k2, b]).unwrap()[0];
        model.select_output_outlets(&[y]).unwrap();
        assert_eq!(replace(&mut model).unwrap(), 0);
    }
}
