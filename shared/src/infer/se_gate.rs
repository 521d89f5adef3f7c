//! Squeeze-excitation's gate folded into the 1×1 projection after it: [`fold`] rewires every
//! `Mul` of an activation by a per-channel gate (`[.., C, 1, 1]`) whose only reader is fovea's
//! [`Pointwise`] into that op, which takes the gate as a second input and scales its weights'
//! columns instead of the activation: `W·(diag(g)·x) = (W·diag(g))·x`, `C_out·C_in` products per
//! run in place of `C_in·H·W`, and no pass over the activation. Where the op's product runs on
//! the channel lanes (`channel_lanes.rs`) it scales the weights so too where they are fewer
//! than the input's values (`C_out < H·W`: the 14×14 projections, on AVX-512), else the input,
//! as the product packs it (a pass it makes anyway: B0's 7×7 projections, on AVX-512 or AVX2):
//! `x·g` rounded, as tract's `Mul`.
//!
//! Why: every MBConv block of B0 ends in `x·g` before its projection. tract runs it as
//! `OptMulByScalar`, one pass over the block's expanded activation: B0's 16 gate `Mul`s took
//! 0.44 ms of a 13.3 ms run at 224 px on one thread (`edge/examples/node_profile.rs`, two
//! runs), blocks 0–2's alone 170 µs; onnxruntime's 0.36 ms. Folded, blocks 0–10's projections
//! (the ones fovea's op runs at 224 px) took what they took before, 2.04 against
//! 2.02–2.04 ms, and the `Mul`s left 0.13 ms (docs/PERFORMANCE.md). tract's own products keep
//! their weights packed at load, so the `Mul`s before them stay.
//!
//! The values are the product's within its rounding, not tract's bit for bit: each term is
//! `(w·g)·x` rounded where tract rounds `w·(x·g)` (tested below against the sum in f64, as the
//! 1×1 op's own test bounds it, with one more rounding per term).
use tract_core::internal::*;
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::math::Mul;

use super::activation::only_reader;
use super::pointwise::Pointwise;

/// Folds every per-channel `Mul` that alone feeds a [`Pointwise`] into it (see the module
/// doc); returns how many.
pub fn fold(model: &mut TypedModel) -> TractResult<usize> {
    let mut folded = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Pointwise>() else {
            continue;
        };
        if conv.gated || node.inputs.len() != 1 {
            continue;
        }
        let Some((x, gate)) = gated_input(model, node.inputs[0], &conv.input)? else {
            continue;
        };
        let op = conv.with_gate();
        let mut patch = TypedModelPatch::new("fovea squeeze-excitation gate");
        let inputs = patch.taps(model, &[x, gate])?;
        let y = patch.wire_node(&node.name, op, &inputs)?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), y)?;
        patch.apply(model)?;
        folded += 1;
    }
    Ok(folded)
}

/// If `outlet` is a `Mul` of a tensor of shape `input` by a gate of shape `[.., C, 1, 1]`
/// (`C = input[r − 3]`, leading axes 1) read by nothing else: its two inputs, the tensor's
/// first.
fn gated_input(
    model: &TypedModel,
    outlet: OutletId,
    input: &[usize],
) -> TractResult<Option<(OutletId, OutletId)>> {
    let mul = model.node(outlet.node);
    let is_mul = mul
        .op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<Mul>() && b.1.is_none());
    if !is_mul || mul.inputs.len() != 2 || only_reader(model, outlet)?.is_none() {
        return Ok(None);
    }
    let r = input.len();
    let is_gate = |shape: &[usize]| {
        let g = shape.len();
        g >= 3
            && g <= r
            && shape[g - 3] == input[r - 3]
            && shape[g - 2..] == [1, 1]
            && shape[..g - 3].iter().all(|&d| d == 1)
    };
    for k in 0..2 {
        let (a, b) = (mul.inputs[k], mul.inputs[1 - k]);
        let (fa, fb) = (model.outlet_fact(a)?, model.outlet_fact(b)?);
        let f32_both = fa.datum_type == f32::datum_type() && fb.datum_type == f32::datum_type();
        if f32_both
            && fa.shape.as_concrete() == Some(input)
            && fb.shape.as_concrete().is_some_and(is_gate)
        {
            return Ok(Some((a, b)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::depthwise::tests::{values, wire_pointwise};
    use crate::infer::pointwise;
    use crate::infer::pointwise::tests::{
        assert_within_sum_rounding, f32s, on_threads, run_inputs,
    };
    use tract_core::ops::math::mul;

    /// `(C_in, C_out, h, w)`.
    type Case = (usize, usize, usize, usize);

    /// A decluttered model of `y = conv1×1(x · g)` (NCHW, tract's `Conv` with a bias; `x` and
    /// the gate `g`, `[1, C_in, 1, 1]`, its two inputs), its weights and bias, and the inputs.
    fn model(case: Case, seed: u32) -> (TypedModel, Vec<f32>, Vec<f32>, Tensor, Tensor) {
        let (ci, co, h, w) = case;
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, ci, h, w])).unwrap();
        let g = model.add_source("g", f32::fact([1, ci, 1, 1])).unwrap();
        let xg = model.wire_node("se.out", mul(), &[x, g]).unwrap()[0];
        let y = wire_pointwise(&mut model, xg, ci, co, seed);
        model.select_output_outlets(&[y]).unwrap();
        let tensor = |shape: Vec<usize>, seed| {
            let len = shape.iter().product();
            tract_ndarray::ArrayD::from_shape_vec(shape, values(len, seed))
                .unwrap()
                .into_tensor()
        };
        (
            model.into_decluttered().unwrap(),
            values(co * ci, seed),
            values(co, seed + 1),
            tensor(vec![1, ci, h, w], seed + 2),
            tensor(vec![1, ci, 1, 1], seed + 3),
        )
    }

    /// Runs `model` optimized on `x` and `g`; its output and the optimized model's op names.
    fn run(model: TypedModel, x: &Tensor, g: &Tensor) -> (Vec<f32>, Vec<String>) {
        let (out, names) = run_inputs(model, tvec!(x.clone().into(), g.clone().into()));
        (f32s(&out), names)
    }

    // A projection of many channels onto few (block 1's, 96 → 24, on a smaller plane), few
    // onto many, many onto few on a plane of 25 pixels (on the channel lanes on AVX-512 or
    // AVX2) and on 14×14 (B0's 14×14 projections, on the lanes on AVX-512; the gate scaling the
    // weights on the lanes as on gemm, the weights being fewer than the input), and onto more
    // channels than a 7×7 plane has pixels (B0's 7×7 projections: taken where the product runs
    // on the channel lanes into planes, its input packed, the gate then scaling the input;
    // skipped elsewhere).
    const CASES: [Case; 5] = [
        (96, 24, 40, 40),
        (8, 40, 9, 7),
        (200, 16, 5, 5),
        (96, 112, 14, 14),
        (1152, 64, 7, 7),
    ];

    /// The gate is folded (no `Mul` left, one gated 1×1 op), and each output is the product in
    /// f64 within the rounding of an f32 sum of `C_in + 1` terms with one more rounding per
    /// term, `(C_in + 3)·ε·(|b| + Σ|w·g·x|)`; so are tract's own outputs (a gate applied to
    /// the output channels, or not at all, is off by far more). On one thread and on two.
    #[test]
    fn the_gated_projection_equals_the_product_within_its_rounding() {
        for (i, case) in CASES.into_iter().enumerate() {
            let (ci, co, h, w) = case;
            let hw = h * w;
            #[cfg(target_arch = "x86_64")]
            let lanes = crate::infer::channel_lanes::expected(co);
            #[cfg(not(target_arch = "x86_64"))]
            let lanes = false;
            if co > hw && !lanes {
                eprintln!("{case:?}: no channel lanes on this CPU, the conv stays tract's");
                continue;
            }
            let (decluttered, weights, bias, x, g) = model(case, 20 * i as u32);
            let mut patched = decluttered.clone();
            assert_eq!(pointwise::replace(&mut patched).unwrap(), 1, "{case:?}");
            assert_eq!(fold(&mut patched).unwrap(), 1, "{case:?}");
            let (xv, gv) = (f32s(&x), f32s(&g));
            for threads in [1, 2] {
                let what = format!("{case:?}, {threads} threads");
                let ((tract, _), (ours, names)) = on_threads(threads, || {
                    (
                        run(decluttered.clone(), &x, &g),
                        run(patched.clone(), &x, &g),
                    )
                });
                assert!(
                    !names.iter().any(|n| n.contains("Mul")),
                    "{what}: {names:?}"
                );
                assert_eq!(
                    names.iter().filter(|n| *n == "FoveaPointwise").count(),
                    1,
                    "{what}: {names:?}"
                );
                assert_eq!(ours.len(), co * hw, "{what}");
                for o in 0..co {
                    for j in 0..hw {
                        // One more term than there are: the bound of the helper counts
                        // `terms + 2` roundings, the scaling adds one per term.
                        let mut terms: Vec<f64> = (0..ci)
                            .map(|c| {
                                weights[o * ci + c] as f64 * gv[c] as f64 * xv[c * hw + j] as f64
                            })
                            .collect();
                        terms.push(0.0);
                        let at = o * hw + j;
                        assert_within_sum_rounding(
                            &format!("{what}: y[{o}, {j}]"),
                            [("fovea", ours[at]), ("tract", tract[at])],
                            bias[o],
                            &terms,
                        );
                    }
                }
            }
        }
    }

    /// A `Mul` whose output another node reads too stays tract's (the folded op would leave
    /// that reader without its input), and so does a `Mul` by a tensor that is not a
    /// per-channel gate.
    #[test]
    fn only_a_gate_read_by_the_projection_alone_is_folded() {
        // The gated activation is also a model output.
        let (mut m, ..) = model((16, 8, 6, 6), 1);
        let gated = m.node_by_name("se.out").unwrap().id;
        let mut outputs = m.output_outlets().unwrap().to_vec();
        outputs.push(OutletId::new(gated, 0));
        m.select_output_outlets(&outputs).unwrap();
        assert_eq!(pointwise::replace(&mut m).unwrap(), 1);
        assert_eq!(fold(&mut m).unwrap(), 0);

        // A per-pixel factor, `[1, 1, h, w]`.
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, 16, 6, 6])).unwrap();
        let g = m.add_source("g", f32::fact([1, 1, 6, 6])).unwrap();
        let xg = m.wire_node("se.out", mul(), &[x, g]).unwrap()[0];
        let y = wire_pointwise(&mut m, xg, 16, 8, 1);
        m.select_output_outlets(&[y]).unwrap();
        let mut m = m.into_decluttered().unwrap();
        assert_eq!(pointwise::replace(&mut m).unwrap(), 1);
        assert_eq!(fold(&mut m).unwrap(), 0);
    }
}
