//! fovea's int8 1×1 convolution: [`Int8Pointwise`] runs a quantized model's
//! `QuantizeLinear → DequantizeLinear → 1×1 Conv` (what `host quantize --mode compute` writes
//! for every conv) as one op that quantizes its input to uint8 and multiplies it with the conv's
//! int8 weights in integers (`super::int8_product`); [`replace`] puts it in place of each such
//! chain in tract's decluttered model, before the f32 ops are placed.
//!
//! Why: tract 0.23.9 runs the chain as written, in f32: the weights dequantized at load (fovea
//! folds them, [`crate::onnx::dequant`]), the activations rounded to their uint8 levels and
//! back ([`super::fake_quant`]), then an f32 product. So the `compute` form cost fp32's time,
//! never less, and the int8 model bought nothing but a smaller file.
//!
//! Which weights: the folded weights tract holds are `fl(q · s)` for int8 `q` and one scale `s`
//! per output channel, with `max |q| = 127` (the host quantizes each channel symmetrically on
//! its largest weight). `int8_rows` recovers `q` and `s` from them and takes a conv only if
//! `fl(q · s)` gives back every weight bit for bit; an fp32 model's weights never pass, and
//! neither would a channel quantized on anything but its largest weight (then the conv stays
//! f32, not wrong).
//!
//! The values: the input's uint8 levels are tract's (`fake_quant::level`, tested against
//! tract's QuantizeLinearU8), the sums of products are exact integers, and each output is
//! `(Σ q_w·q_x − z'·Σ q_w) · (s' · s_w) + b` in f32, where tract computes `Σ fl(w · x) + b` in f32:
//! the same value up to the rounding of an f32 sum (tested below against tract's chain within
//! that bound, and the sums bit for bit against an i64 reference).
//!
//! Only CHW layouts are taken (as [`super::pointwise`]); tract keeps the model CHW on every
//! target since fovea's depthwise op is placed during the declutter
//! ([`super::depthwise::declutter`]; before, on aarch64, a 64 px Lite0's 1×1 convs went
//! channels-last, 21 of 22, and stayed f32). A whole model's outputs can move by more than one
//! conv's rounding: an f32 sum on the other side of a uint8 rounding boundary moves that
//! activation a whole level in the next quantize (B0 224: logits 8e-4 from tract's f32 chain;
//! Lite0: 4.5e-2 of 7.4), which is why `host quantize`'s gate scores a model with this op in
//! place ([`super::plan`]). `edge/examples/layer_diff.rs` shows it layer by layer: the first
//! divergence from tract's chain is one value one level off, its f32 sums within 1.6e-4 of a
//! step of each other, which later layers spread (docs/PERFORMANCE.md, 2026-12-04).
use std::mem::MaybeUninit;
use std::sync::Arc;

use tract_core::internal::*;
use tract_core::ops::einsum::EinSum;
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::activation::{Activation, only_reader};
use super::int8_product::{Int8Weights, Kernel, LANES, Quantize, product};

/// An int8 1×1 convolution of a CHW input of one image (f32, quantized inside) to a
/// `[C_out, H, W]` f32 output (either with leading axes of size 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Pointwise {
    /// The input's shape: `[.., C_in, H, W]`, any leading axes of size 1.
    input: TVec<usize>,
    /// The output's shape: `[.., C_out, H, W]`, any leading axes of size 1.
    output: TVec<usize>,
    quantize: Quantize,
    weights: Arc<Int8Weights>,
    /// Applied to the outputs after the bias ([`super::activation::fuse`]).
    activation: Option<Activation>,
    kernel: Kernel,
}

impl Eq for Int8Pointwise {}

impl Int8Pointwise {
    /// This op with `activation` applied to its outputs.
    pub fn with_activation(&self, activation: Activation) -> Self {
        Int8Pointwise {
            activation: Some(activation),
            ..self.clone()
        }
    }

    /// `H·W`.
    fn pixels(&self) -> usize {
        let r = self.input.len();
        self.input[r - 2] * self.input[r - 1]
    }
}

impl Op for Int8Pointwise {
    fn name(&self) -> StaticName {
        "FoveaInt8Pointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (c_in, c_out) = self.weights.dims();
        Ok(vec![format!(
            "{c_in}→{c_out} on {} pixels, uint8 input x·{} + {}, {:?} kernel, then {:?}",
            self.pixels(),
            self.quantize.scale,
            self.quantize.zero_point,
            self.kernel,
            self.activation
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Int8Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        // SAFETY: `product` writes every element before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.output)? };
        let len = y.len();
        // SAFETY: the tensor holds `len` f32s in one plain allocation; as `MaybeUninit<f32>`
        // (f32's layout) they may be written before they are initialized.
        let out: &mut [MaybeUninit<f32>] =
            unsafe { std::slice::from_raw_parts_mut(y.as_ptr_mut_unchecked::<f32>().cast(), len) };
        let hw = self.pixels();
        let (w, q, act, k) = (&*self.weights, self.quantize, self.activation, self.kernel);
        match current_tract_executor() {
            Executor::SingleThread => product(x, hw, q, w, act, k, false, out),
            Executor::MultiThread(pool) => pool.install(|| product(x, hw, q, w, act, k, true, out)),
            _ => product(x, hw, q, w, act, k, true, out),
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for Int8Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&self.input[..]),
            "FoveaInt8Pointwise expects f32 {:?}, got {inputs:?}",
            self.input
        );
        Ok(tvec!(f32::fact(&*self.output)))
    }

    as_op!();
}

/// The int8 levels and per-row scales of the `[C_out, C_in]` weights `w`, if every row is
/// `fl(q · s)` for int8 `q` with `max |q| = 127` (or all zeros), bit for bit.
pub(super) fn int8_rows(w: &[f32], c_in: usize) -> Option<(Vec<i8>, Vec<f32>)> {
    let mut levels = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.len() / c_in.max(1));
    for row in w.chunks(c_in) {
        if !row.iter().all(|v| v.is_finite()) {
            return None;
        }
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        if max == 0.0 {
            levels.extend(std::iter::repeat_n(0, row.len()));
            scales.push(0.0);
            continue;
        }
        // `max / 127` may land one f32 step off the scale the levels were made with.
        let guess = max / 127.0;
        let exact = |s: f32| {
            row.iter().all(|&v| {
                let q = (v / s).round();
                q.abs() <= 127.0 && q * s == v
            })
        };
        let s = [guess, guess.next_down(), guess.next_up()]
            .into_iter()
            .find(|&s| exact(s))?;
        levels.extend(row.iter().map(|&v| (v / s).round() as i8));
        scales.push(s);
    }
    Some((levels, scales))
}

/// The kernel this CPU runs the integer 1×1 convs with (what [`replace`] puts in each op):
/// `vnni` (AVX-512 VNNI), `sdot` (Armv8.2), `neon` (Armv8.0) or `portable` (anything else).
/// `edge bench` prints it, so a board's timing says which kernel it timed.
pub fn kernel_name() -> &'static str {
    Kernel::detect().name()
}

/// Replaces every f32 `QuantizeLinearU8` → `DequantizeLinearF32` → 1×1 conv (tract's
/// decluttered `EinSum` and its bias `Add`, as [`super::pointwise`] reads them) on a plane of
/// at least `LANES` (16) pixels whose weights are int8 levels (`int8_rows`) with one
/// [`Int8Pointwise`]; returns how many.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    let kernel = Kernel::detect();
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some((q_node, q, dq_node, dq)) = super::fake_quant::pair_at(model, id)? else {
            continue;
        };
        let Some(conv) = only_reader(model, OutletId::new(dq_node.id, 0))? else {
            continue;
        };
        let Some(einsum) = conv.op_as::<EinSum>() else {
            continue;
        };
        if conv.inputs[0] != OutletId::new(dq_node.id, 0) {
            continue;
        }
        let take = |_c_in, _c_out, hw, _lanes| hw >= LANES;
        let Some((pointwise, bias_add)) = super::pointwise::covered(model, conv, einsum, &take)?
        else {
            continue;
        };
        if pointwise.out_last {
            continue; // CHW outputs only
        }
        let (input, output) = (&pointwise.input, &pointwise.output);
        let (c_in, c_out) = (input[input.len() - 3], output[output.len() - 3]);
        let Some(rows) = pointwise.rows() else {
            continue;
        };
        let Some((levels, scales)) = int8_rows(rows, c_in) else {
            continue;
        };
        let weights = Int8Weights::new(
            &levels,
            c_out,
            c_in,
            &scales,
            (dq.scale, dq.zero_point),
            pointwise.bias.as_deref(),
        );
        let op = Int8Pointwise {
            input: input.clone(),
            output: output.clone(),
            quantize: Quantize {
                scale: q.scale,
                zero_point: f32::from(q.zero_point),
            },
            weights: Arc::new(weights),
            activation: None,
            kernel,
        };
        let mut patch = TypedModelPatch::new("fovea int8 pointwise");
        let x = patch.tap_model(model, q_node.inputs[0])?;
        let y = patch.wire_node(&conv.name, op, &[x])?[0];
        let replaced_outlet = OutletId::new(bias_add.unwrap_or(conv.id), 0);
        patch.shunt_outside(model, replaced_outlet, y)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::activation;
    use crate::infer::depthwise::tests::values;
    use crate::infer::int8_product::tests::{int8_levels, levels};
    use crate::infer::pointwise::tests::{assert_within_sum_rounding, on_threads, run};
    use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_core::ops::math::{max, min};
    use tract_core::ops::nn::DataFormat;
    use tract_core::ops::quant::{DequantizeLinearF32, quantize_linear_u8};

    /// The input's quantization in these tests: ONNX scale 1/40, zero point 90.
    const Q: (f32, u8) = (40.0, 90);

    /// What a `compute` export is made of, decluttered (CHW, as tract declutters a batch-1
    /// model): `x → QuantizeLinear → DequantizeLinear
    /// → 1×1 Conv` with f32 weights `fl(q · s)` (`q` int8, one scale per output channel) and a
    /// bias, then ReLU6 when `relu6`; the input (values that clamp at both ends), the f32
    /// weights and the bias.
    fn model(
        (c_in, c_out, h, w): (usize, usize, usize, usize),
        weights: Vec<f32>,
        relu6: bool,
        seed: u32,
    ) -> (TypedModel, Tensor, Vec<f32>) {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([c_in, h, w])).unwrap();
        let u = model
            .wire_node("q", quantize_linear_u8(Q.0, Q.1), &[x])
            .unwrap()[0];
        let dq = DequantizeLinearF32::new(1.0 / Q.0, i32::from(Q.1));
        let d = model.wire_node("dq", dq, &[u]).unwrap()[0];
        let k = tract_ndarray::ArrayD::from_shape_vec(vec![c_out, c_in, 1, 1], weights)
            .unwrap()
            .into_tensor();
        let k = model.add_const("k", k).unwrap();
        let b = model
            .add_const("b", tensor1(&values(c_out, seed + 1)))
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::CHW,
                kernel_shape: tvec![1, 1],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: c_in,
                output_channels: c_out,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model.wire_node("pw", conv, &[d, k, b]).unwrap()[0];
        if relu6 {
            let bound = |v: f32| tract_ndarray::ArrayD::from_elem(vec![1, 1, 1], v).into_tensor();
            let lo = model.add_const("lo", bound(0.0)).unwrap();
            let hi = model.add_const("hi", bound(6.0)).unwrap();
            let m = model.wire_node("max", max(), &[y, lo]).unwrap()[0];
            y = model.wire_node("min", min(), &[m, hi]).unwrap()[0];
        }
        model.select_output_outlets(&[y]).unwrap();
        let x: Vec<f32> = values(c_in * h * w, seed + 2)
            .iter()
            .map(|v| v * 5.0)
            .collect();
        let input = tract_ndarray::ArrayD::from_shape_vec(vec![c_in, h, w], x)
            .unwrap()
            .into_tensor();
        let bias = values(c_out, seed + 1);
        (model.into_decluttered().unwrap(), input, bias)
    }

    /// Int8 weights as a `compute` export's folded weights: `fl(q · s)` per output channel.
    fn int8_weights(c_out: usize, c_in: usize, seed: u32) -> (Vec<f32>, Vec<i8>) {
        let mut q = int8_levels(c_out * c_in, seed);
        for o in 0..c_out {
            q[o * c_in] = if o % 2 == 0 { 127 } else { -127 };
        }
        let w = (0..c_out * c_in)
            .map(|k| f32::from(q[k]) * (0.003 + 0.0007 * (k / c_in) as f32))
            .collect();
        (w, q)
    }

    /// The chain becomes one `FoveaInt8Pointwise` (no quantize, dequantize or f32 product
    /// left) whose outputs, and tract's own from the unpatched chain, are each within the
    /// rounding of an f32 sum of the exact value `b + Σ w·x̂` (x̂ the input's dequantized
    /// levels, computed by hand); with ReLU6 folded in too (the clamp moves no value further from
    /// the clamped exact one). One thread and two.
    #[test]
    fn the_chain_becomes_one_op_within_the_rounding_of_tracts_sum() {
        for (k, (dims, relu6)) in [((16, 24, 10, 10), false), ((37, 8, 7, 9), true)]
            .into_iter()
            .enumerate()
        {
            let (c_in, c_out, h, w) = dims;
            let hw = h * w;
            let (weights, _) = int8_weights(c_out, c_in, 10 * k as u32);
            let (decluttered, input, bias) = model(dims, weights.clone(), relu6, 10 * k as u32);
            let mut ours = decluttered.clone();
            assert_eq!(replace(&mut ours).unwrap(), 1, "{dims:?}");
            assert_eq!(activation::fuse(&mut ours).unwrap(), usize::from(relu6));
            let x = input.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
            let q = Quantize {
                scale: Q.0,
                zero_point: f32::from(Q.1),
            };
            let qx = levels(x, q);
            assert!(
                qx.contains(&0) && qx.contains(&255),
                "the input clamps at both ends"
            );
            let dequantized: Vec<f64> = qx
                .iter()
                .map(|&v| ((v - i64::from(Q.1)) as f32 * (1.0 / Q.0)) as f64)
                .collect();
            for threads in [1, 2] {
                let what = format!("{dims:?}, ReLU6 {relu6}, {threads} threads");
                let ((tract, tract_ops), (fovea, ops)) = on_threads(threads, || {
                    (run(decluttered.clone(), &input), run(ours.clone(), &input))
                });
                assert!(
                    tract_ops.iter().any(|n| n.contains("QuantizeLinear")),
                    "{tract_ops:?}"
                );
                assert!(
                    ops.iter().any(|n| n == "FoveaInt8Pointwise"),
                    "{what}: {ops:?}"
                );
                assert!(
                    !ops.iter().any(|n| n.contains("Quantize")
                        || n.contains("MatMul")
                        || n.contains("Max")
                        || n == "FoveaPointwise"),
                    "{what}: {ops:?}"
                );
                for o in 0..c_out {
                    for p in 0..hw {
                        let terms: Vec<f64> = (0..c_in)
                            .map(|i| weights[o * c_in + i] as f64 * dequantized[i * hw + p])
                            .collect();
                        let at = o * hw + p;
                        let exact = bias[o] as f64 + terms.iter().sum::<f64>();
                        // Clamping moves the exact value and both results alike, never apart.
                        let (t, f, b) = if relu6 && !(0.0..=6.0).contains(&exact) {
                            let c = exact.clamp(0.0, 6.0) as f32;
                            assert_eq!((tract[at], fovea[at]), (c, c), "{what}: y[{o}, {p}]");
                            continue;
                        } else {
                            (tract[at], fovea[at], bias[o])
                        };
                        let got = [("fovea", f), ("tract", t)];
                        assert_within_sum_rounding(&format!("{what}: y[{o}, {p}]"), got, b, &terms);
                    }
                }
            }
        }
    }

    /// An fp32 model's weights (not int8 levels), a plane smaller than a block of 16 pixels,
    /// and a dequantized input that something else reads too: the chain stays tract's.
    #[test]
    fn chains_it_does_not_cover_stay_tracts() {
        let floats = values(8 * 16, 5);
        let (mut m, ..) = model((16, 8, 6, 6), floats, false, 1);
        assert_eq!(replace(&mut m).unwrap(), 0, "f32 weights");
        let (w, _) = int8_weights(8, 16, 2);
        let (mut m, ..) = model((16, 8, 3, 5), w.clone(), false, 1);
        assert_eq!(replace(&mut m).unwrap(), 0, "15 pixels");
        let (mut m, ..) = model((16, 8, 4, 4), w, false, 1);
        let dq = m.node_by_name("dq").unwrap().id;
        let out = m.output_outlets().unwrap()[0];
        m.select_output_outlets(&[out, OutletId::new(dq, 0)])
            .unwrap();
        assert_eq!(
            replace(&mut m).unwrap(),
            0,
            "the dequantized input is an output too"
        );
    }

    /// The levels and scales by hand: a row made from levels with ±127 comes back exactly; a
    /// row of zeros has scale 0; a row whose largest level is not 127, a weight off its level by
    /// one f32 step, and a non-finite weight are refused.
    #[test]
    fn int8_rows_recovers_levels_only_where_they_are_exact() {
        let s = 0.013_f32;
        let row: Vec<f32> = [127i8, -3, 0, -127, 64]
            .iter()
            .map(|&q| f32::from(q) * s)
            .collect();
        let mut w = row.clone();
        w.extend([0.0; 5]);
        let (levels, scales) = int8_rows(&w, 5).unwrap();
        assert_eq!(levels, [127, -3, 0, -127, 64, 0, 0, 0, 0, 0]);
        assert_eq!(scales[1], 0.0);
        assert!(
            row.iter()
                .zip(&levels)
                .all(|(&v, &q)| f32::from(q) * scales[0] == v)
        );
        let short: Vec<f32> = [100i8, -3, 5].iter().map(|&q| f32::from(q) * s).collect();
        assert_eq!(int8_rows(&short, 3), None, "largest level 100");
        let mut off = row.clone();
        off[1] = off[1].next_up();
        assert_eq!(int8_rows(&off, 5), None, "one weight off by one step");
        let mut inf = row;
        inf[2] = f32::INFINITY;
        assert_eq!(int8_rows(&inf, 5), None, "an infinite weight");
    }
}
