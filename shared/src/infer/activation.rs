//! ReLU6 fused into fovea's convolutions: [`fuse`] folds the `Max(·, 0)` then `Min(·, 6)` that
//! tract makes of ONNX's `Clip(0, 6)` into the [`Depthwise`], [`Pointwise`] or [`DenseConv`] op
//! before it, which then clamps its outputs while they are in cache.
//!
//! Why: EfficientNet-Lite's activation is ReLU6 after every expansion and depthwise conv.
//! tract fuses it into its own matrix products, but after fovea's ops it ran as 22 separate
//! passes over the activations: 1.61 ms of a 15.2 ms Lite0 run at 224 px on one thread
//! (`OptBinChain(Max+Min)`, `edge/examples/node_profile.rs`); onnxruntime fuses it into its
//! convolutions.
//!
//! The values are the clamp's: `min(max(x, 0), 6)`, exact in f32, as tract's chain computes it
//! (tested below against tract's, value for value).
//!
//! (SiLU, B0's activation, is not fused: fused into the same ops with tract's own SiLU kernel
//! it took longer than the separate pass, docs/PERFORMANCE.md.)
use multiversion::multiversion;
use tract_core::internal::*;
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::math::{Max, Min};

use super::dense_conv::DenseConv;
use super::depthwise::Depthwise;
use super::int8_pointwise::Int8Pointwise;
use super::pointwise::Pointwise;

/// An activation a fovea op applies to its own outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `min(max(x, 0), 6)` (`f32::clamp`; a NaN stays NaN).
    Relu6,
}

impl Activation {
    /// Applies the activation to `values` in place.
    pub fn apply(self, values: &mut [f32]) {
        match self {
            Activation::Relu6 => relu6(values),
        }
    }

    /// The activation of one value (the 1×1 op's bias pass applies it as it adds the bias).
    #[inline(always)]
    pub fn of(self, v: f32) -> f32 {
        match self {
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }
}

/// `min(max(x, 0), 6)` in place, compiled for AVX-512, AVX2 and NEON besides the baseline and
/// picked at run time (as the 1×1 op's bias pass, `pointwise.rs`): Lite0's depthwise convs,
/// which then clamped each block's planes through this, took 1.90 / 1.89 / 2.16 ms against 2.25
/// / 1.92 / 2.32 built for the baseline (`node_profile`, one thread, binaries alternated). The
/// channels-last depthwise kernel now clamps in registers before it stores
/// (`depthwise::ChannelsLast::forward_into_planes`); the NCHW paths still pass through this.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn relu6(values: &mut [f32]) {
    values
        .iter_mut()
        .for_each(|v| *v = Activation::Relu6.of(*v))
}

/// The only reader of `outlet` (none if it has several, or is a model output).
pub(super) fn only_reader(model: &TypedModel, outlet: OutletId) -> TractResult<Option<&TypedNode>> {
    let successors = &model.node(outlet.node).outputs[outlet.slot].successors;
    if successors.len() != 1 || model.output_outlets()?.contains(&outlet) {
        return Ok(None);
    }
    Ok(Some(model.node(successors[0].node)))
}

/// Whether `node` is the binary op `B` of its first input and a constant scalar `value`.
fn is_bin_with<B: tract_core::ops::binary::BinMiniOp>(
    model: &TypedModel,
    node: &TypedNode,
    value: f32,
) -> TractResult<bool> {
    let Some(bin) = node.op_as::<TypedBinOp>() else {
        return Ok(false);
    };
    if !bin.0.is::<B>() || bin.1.is_some() || node.inputs.len() != 2 {
        return Ok(false);
    }
    let other = model.outlet_fact(node.inputs[1])?;
    Ok(other.konst.as_ref().is_some_and(|k| {
        k.len() == 1
            && k.datum_type() == f32::datum_type()
            && k.try_as_plain_ram()
                .ok()
                .and_then(|r| r.as_slice::<f32>().ok().map(|s| s[0] == value))
                .unwrap_or(false)
    }))
}

/// Folds every `Max(·, 0)` → `Min(·, 6)` pair that alone reads a [`Depthwise`], [`Pointwise`] or
/// [`DenseConv`] output into that op as [`Activation::Relu6`]; returns how many.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let conv = model.node(id);
        let op: Box<dyn TypedOp> = if let Some(d) = conv.op_as::<Depthwise>() {
            Box::new(d.with_activation(Activation::Relu6))
        } else if let Some(p) = conv.op_as::<Pointwise>() {
            Box::new(p.with_activation(Activation::Relu6))
        } else if let Some(p) = conv.op_as::<DenseConv>() {
            Box::new(p.with_activation(Activation::Relu6))
        } else if let Some(p) = conv.op_as::<Int8Pointwise>() {
            Box::new(p.with_activation(Activation::Relu6))
        } else {
            continue;
        };
        let Some(max) = only_reader(model, OutletId::new(id, 0))? else {
            continue;
        };
        if max.inputs[0] != OutletId::new(id, 0) || !is_bin_with::<Max>(model, max, 0.0)? {
            continue;
        }
        let Some(min) = only_reader(model, OutletId::new(max.id, 0))? else {
            continue;
        };
        if !is_bin_with::<Min>(model, min, 6.0)? {
            continue;
        }
        let mut patch = TypedModelPatch::new("fovea fused ReLU6");
        let inputs = patch.taps(model, &conv.inputs)?;
        let y = patch.wire_node(&conv.name, op, &inputs)?[0];
        patch.shunt_outside(model, OutletId::new(min.id, 0), y)?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

#[cfg(test)]
pub(in crate::infer) mod tests {
    use super::*;
    use crate::infer::dense_conv::tests::wire_dense;
    use crate::infer::depthwise::tests::{values, wire_depthwise, wire_pointwise};
    use crate::infer::pointwise::tests::{f32s, run_tensor};
    use crate::infer::{dense_conv, depthwise, pointwise};
    use tract_core::ops::math::{max, min};

    /// Wires `Clip(0, 6)` as tract's ONNX front end does: `Max` with 0 then `Min` with 6, the
    /// bounds broadcast to the input's rank.
    pub(in crate::infer) fn relu6(model: &mut TypedModel, x: OutletId, seed: u32) -> OutletId {
        let bound = |v: f32| tract_ndarray::ArrayD::from_elem(vec![1, 1, 1, 1], v).into_tensor();
        let lo = model.add_const(format!("lo{seed}"), bound(0.0)).unwrap();
        let hi = model.add_const(format!("hi{seed}"), bound(6.0)).unwrap();
        let m = model
            .wire_node(format!("max{seed}"), max(), &[x, lo])
            .unwrap()[0];
        model
            .wire_node(format!("min{seed}"), min(), &[m, hi])
            .unwrap()[0]
    }

    /// A stem and an MBConv-shaped chain with ReLU6 (Lite's): a 3×3 conv 3→5 on 20×20, ReLU6,
    /// 1×1 expand 5→24 (C_out ≤ H·W, so fovea's), ReLU6, depthwise 3×3 stride 2, ReLU6, 1×1
    /// project. The three ReLU6 fold into the op before them, none of tract's `Max`/`Min` is
    /// left, and the output agrees with tract's to its sums' rounding (the input scaled so that
    /// some values pass 6 and some fall below 0).
    #[test]
    fn relu6_folds_into_fovea_ops_and_the_output_equals_tracts() {
        let (cin, c, side) = (5, 24, 20);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, 3, side, side]))
            .unwrap();
        let x = wire_dense(&mut model, x, (3, cin, side, side, 3, 1, 1, 1, true), 8);
        let x = relu6(&mut model, x, 9);
        let e = wire_pointwise(&mut model, x, cin, c, 1);
        let e = relu6(&mut model, e, 2);
        let d = wire_depthwise(&mut model, e, (c, side, side, 3, 2, 0, 1, true), 3);
        let d = relu6(&mut model, d, 4);
        let y = wire_pointwise(&mut model, d, c, 7, 6);
        model.select_output_outlets(&[y]).unwrap();
        let scaled: Vec<f32> = values(3 * side * side, 99)
            .iter()
            .map(|v| v * 8.0)
            .collect();
        let input = tract_ndarray::ArrayD::from_shape_vec(vec![1, 3, side, side], scaled)
            .unwrap()
            .into_tensor();
        let decluttered = model.clone().into_decluttered().unwrap();

        // As the loader does (`model::decluttered`): fovea's depthwise op placed during the
        // declutter (on aarch64 tract's own declutter moves the channels last).
        let mut ours = model;
        depthwise::declutter(&mut ours).unwrap();
        let placed = ours
            .nodes()
            .iter()
            .filter(|n| n.op_is::<depthwise::Depthwise>());
        assert_eq!(placed.count(), 1);
        assert!(pointwise::replace(&mut ours).unwrap() >= 1);
        assert_eq!(dense_conv::replace(&mut ours).unwrap(), 1);
        assert_eq!(fuse(&mut ours).unwrap(), 3);
        let (tract, _) = run_tensor(decluttered, &input);
        let (fovea, names) = run_tensor(ours, &input);
        assert!(
            !names.iter().any(|n| n.contains("Max") || n.contains("Min")),
            "{names:?}"
        );
        assert_eq!(tract.shape(), fovea.shape());
        let (t, f) = (f32s(&tract), f32s(&fovea));
        // The stem and the expand are gemm's (their sums within rounding of tract's,
        // `dense_conv.rs`, `pointwise.rs`), so the chain's outputs agree to that rounding, not
        // bit for bit.
        for (k, (a, b)) in t.iter().zip(&f).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                "y[{k}]: tract {a}, fovea {b}"
            );
        }
    }

    /// The clamp itself, by hand: below 0, inside, above 6, the bounds.
    #[test]
    fn relu6_clamps_to_zero_and_six() {
        let mut v = [-3.5f32, -0.0, 0.0, 2.25, 6.0, 6.5, 1e9];
        Activation::Relu6.apply(&mut v);
        assert_eq!(v, [0.0, 0.0, 0.0, 2.25, 6.0, 6.0, 6.0]);
    }
}
