//! An activation's uint8 round trip in one pass: [`FakeQuant`] computes what tract's
//! `QuantizeLinearU8` then `DequantizeLinearF32` compute, f32 to f32, and [`fuse`] puts it in
//! place of each such pair.
//!
//! Why: `host quantize --mode compute` rounds every convolution's input to its uint8 levels
//! (QuantizeLinear → DequantizeLinear in the ONNX). tract 0.23.9 keeps both ops (its own folding
//! looks at DequantizeLinear → … → QuantizeLinear chains, not this order) and runs its quantize
//! one scalar value at a time: `node_profile` of B0's `compute` form at 224 px, one thread, put
//! the 81 `QuantizeLinearU8` nodes at 24.8 ms and the 81 `DequantizeLinearF32` at 3.1 ms of a
//! 46 ms inference (block 1's 96 × 112×112 quantize alone 4.5 ms).
//!
//! The values are tract's: `q = clamp(round_ties_even(x · s) + z, 0, 255)` with tract's `s` (the
//! reciprocal of ONNX's scale, as tract stores it) and `y = (q − z') · s'` with the
//! DequantizeLinear's `s'`, `z'`; a NaN gives `q = z` as tract's cast does. The rounding is done
//! in f32 by adding and subtracting 1.5·2²³, exact round-half-to-even below 2²² in magnitude (any
//! larger `x · s` clamps to 0 or 255 whichever way it rounds), so the loop vectorizes on every
//! target without `round` instructions. One difference: where `x · s` comes within the zero point
//! of 2³¹ (an infinite activation, a zero point above 0), tract's integer addition overflows
//! (as its `quantize_linear_f32_u8` reads: wrapping to `q = 0` where overflow checks are off,
//! panicking where they are on; not exercised by the tests); here `q` saturates to 255,
//! as ONNX's QuantizeLinear defines.
//! Tested below against tract's pair, value for value, ties and both clamps included.
use std::mem::MaybeUninit;

use multiversion::multiversion;
use rayon::prelude::*;
use tract_core::internal::*;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearU8};
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::activation::only_reader;

/// Values per chunk when the pool splits a tensor.
const CHUNK: usize = 1 << 16;

/// `QuantizeLinearU8 { scale: s, zero_point: z }` then `DequantizeLinearF32 { scale: s', zero_point: z' }`.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeQuant {
    /// tract's quantize multiplier (1 / ONNX's scale).
    scale: f32,
    zero_point: u8,
    dq_scale: f32,
    dq_zero_point: i32,
}

impl Eq for FakeQuant {}

/// `1.5 · 2²³`: adding then subtracting it rounds an f32 of magnitude below 2²² to the nearest
/// integer, ties to even (the default rounding of the addition).
const ROUNDER: f32 = 12_582_912.0;

impl FakeQuant {
    /// `ys[i]` from `xs[i]` (equal lengths).
    fn apply(&self, xs: &[f32], ys: &mut [MaybeUninit<f32>]) {
        round_trip(
            xs,
            ys,
            self.scale,
            f32::from(self.zero_point),
            self.dq_scale,
            self.dq_zero_point as f32,
        )
    }
}

/// [`FakeQuant::apply`]'s loop, compiled for the wide vector units too and picked at run time.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn round_trip(xs: &[f32], ys: &mut [MaybeUninit<f32>], s: f32, z: f32, s_out: f32, z_out: f32) {
    for (x, y) in xs.iter().zip(ys) {
        // q and z' are small integers, exact in f32: the same product as tract's.
        y.write((level(*x, s, z) - z_out) * s_out);
    }
}

/// tract's `QuantizeLinearU8` of `x` (multiplier `s`, zero point `z`): the uint8 level, as an
/// f32 in `0 ..= 255`. fovea's int8 1×1 conv quantizes its input with this too
/// (`int8_product.rs`), and `edge/examples/layer_diff.rs` reads levels with it.
#[inline(always)]
pub fn level(x: f32, s: f32, z: f32) -> f32 {
    let v = x * s;
    let q = ((v + ROUNDER) - ROUNDER + z).clamp(0.0, 255.0);
    // A NaN quantizes to the zero point (tract's `as i32` of a NaN is 0).
    if v.is_nan() { z } else { q }
}

impl Op for FakeQuant {
    fn name(&self) -> StaticName {
        "FoveaFakeQuant".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "uint8: x·{} + {}, back: (q − {})·{}",
            self.scale, self.zero_point, self.dq_zero_point, self.dq_scale
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for FakeQuant {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        // SAFETY: `apply` writes every element before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(inputs[0].shape())? };
        let len = y.len();
        // SAFETY: the tensor holds `len` f32s in one plain allocation; as `MaybeUninit<f32>`
        // (f32's layout) they may be written before they are initialized.
        let out =
            unsafe { std::slice::from_raw_parts_mut(y.as_ptr_mut_unchecked::<f32>().cast(), len) };
        let parallel = |out: &mut [MaybeUninit<f32>]| {
            out.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .for_each(|(o, i)| self.apply(i, o))
        };
        match current_tract_executor() {
            Executor::MultiThread(pool) if len > CHUNK => pool.install(|| parallel(out)),
            _ => self.apply(x, out),
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for FakeQuant {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == f32::datum_type(),
            "FoveaFakeQuant expects one f32 input, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// Replaces every f32 `QuantizeLinearU8` whose output only a `DequantizeLinearF32` reads with one
/// [`FakeQuant`]; returns how many.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some((node, q, dq_node, dq)) = pair_at(model, id)? else {
            continue;
        };
        let op = FakeQuant {
            scale: q.scale,
            zero_point: q.zero_point,
            dq_scale: dq.scale,
            dq_zero_point: dq.zero_point,
        };
        let mut patch = TypedModelPatch::new("fovea uint8 round trip");
        let input = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(&dq_node.name, op, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(dq_node.id, 0), y)?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

/// The nodes and ops of an f32 `QuantizeLinearU8` at node `id` whose output only a
/// `DequantizeLinearF32` reads (what [`fuse`] and fovea's int8 1×1 conv look for).
#[allow(clippy::type_complexity)]
pub(super) fn pair_at(
    model: &TypedModel,
    id: usize,
) -> TractResult<
    Option<(
        &TypedNode,
        &QuantizeLinearU8,
        &TypedNode,
        &DequantizeLinearF32,
    )>,
> {
    let node = model.node(id);
    let Some(q) = node
        .op_as::<ElementWiseOp>()
        .and_then(|e| e.0.downcast_ref::<QuantizeLinearU8>())
    else {
        return Ok(None);
    };
    if model.outlet_fact(node.inputs[0])?.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let Some(dq_node) = only_reader(model, OutletId::new(id, 0))? else {
        return Ok(None);
    };
    Ok(dq_node
        .op_as::<DequantizeLinearF32>()
        .map(|dq| (node, q, dq_node, dq)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::pointwise::tests::{on_threads, run};
    use tract_core::ops::quant::quantize_linear_u8;

    /// tract's QuantizeLinearU8 → DequantizeLinearF32 on `x` (1-D), and the same
    /// model after [`fuse`]; returns both outputs and the fused plan's op names.
    fn both(x: &[f32], q: (f32, u8), dq: (f32, i32)) -> (Vec<f32>, Vec<f32>, Vec<String>) {
        let mut model = TypedModel::default();
        let s = model.add_source("x", f32::fact([x.len()])).unwrap();
        let u = model
            .wire_node("q", quantize_linear_u8(q.0, q.1), &[s])
            .unwrap()[0];
        let y = model
            .wire_node("dq", DequantizeLinearF32::new(dq.0, dq.1), &[u])
            .unwrap()[0];
        model.select_output_outlets(&[y]).unwrap();
        let input = tensor1(x);
        let (want, tract_ops) = run(model.clone(), &input);
        assert!(
            tract_ops.iter().any(|n| n.contains("QuantizeLinearU8")),
            "{tract_ops:?}"
        );
        let mut fused = model;
        assert_eq!(fuse(&mut fused).unwrap(), 1);
        let (got, ops) = run(fused, &input);
        (want, got, ops)
    }

    fn assert_bits(what: &str, want: &[f32], got: &[f32]) {
        let differ: Vec<_> = want
            .iter()
            .zip(got)
            .enumerate()
            .filter(|(_, (a, b))| a.to_bits() != b.to_bits())
            .take(3)
            .collect();
        assert!(differ.is_empty(), "{what}: first differences {differ:?}");
    }

    /// Value for value against tract's pair: halves that round to even both ways (x·s = k + ½
    /// exactly), values that clamp at 0 and at 255, a NaN, and a spread of ordinary values, with
    /// the zero points of an asymmetric range (z = 37) and of a ReLU6 output (z = 0); on one
    /// and two threads (more values than a chunk, so the pool splits them).
    #[test]
    fn equals_tracts_quantize_dequantize_pair_value_for_value() {
        // ONNX scale 1/16 → tract's multiplier 16: x = (k + ½)/16 is exact, and so is x·16.
        let mut x: Vec<f32> = (-600..600).map(|k| (k as f32 + 0.5) / 16.0).collect();
        x.extend([-1e6, -300.0, 1e6, 300.0, 0.0, -0.0, f32::NAN, 1e-8, -1e-8]);
        let mut state = 5u32;
        x.extend((0..3 * CHUNK).map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 40.0 - 15.0
        }));
        for (q, dq) in [((16.0, 37u8), (0.0625, 37)), ((42.5, 0), (1.0 / 42.5, 0))] {
            for threads in [1, 2] {
                let (want, got, ops) = on_threads(threads, || both(&x, q, dq));
                assert!(
                    ops.iter().any(|n| n == "FoveaFakeQuant")
                        && !ops.iter().any(|n| n.contains("QuantizeLinear")),
                    "{ops:?}"
                );
                assert_bits(&format!("{q:?} {dq:?}, {threads} threads"), &want, &got);
            }
        }
        // The cases reach both clamps and halves rounded down and up to even (by hand: q = 0,
        // 255, 37 + 0, 37 + 2, 37 + 2).
        let (want, got, _) = both(
            &[-1e6, 1e6, 0.5 / 16.0, 1.5 / 16.0, 2.5 / 16.0],
            (16.0, 37),
            (0.0625, 37),
        );
        assert_eq!(want, [-37.0 * 0.0625, 218.0 * 0.0625, 0.0, 0.125, 0.125]);
        assert_bits("by hand", &want, &got);
    }

    /// A QuantizeLinear read by anything but one DequantizeLinear stays tract's.
    #[test]
    fn a_quantize_without_its_dequantize_stays_tracts() {
        let mut model = TypedModel::default();
        let s = model.add_source("x", f32::fact([8])).unwrap();
        let u = model
            .wire_node("q", quantize_linear_u8(20.0, 3), &[s])
            .unwrap()[0];
        let y = model
            .wire_node("dq", DequantizeLinearF32::new(0.05, 3), &[u])
            .unwrap()[0];
        model.select_output_outlets(&[y, u]).unwrap();
        assert_eq!(fuse(&mut model).unwrap(), 0);
    }
}
