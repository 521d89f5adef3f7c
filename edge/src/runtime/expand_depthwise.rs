//! MBConv's expansion and depthwise convolution in one op, band by band: [`ExpandDepthwise`]
//! runs fovea's 1×1 expansion ([`Pointwise`]), its activation (SiLU or ReLU6) and fovea's
//! depthwise conv ([`Depthwise`]) on bands of output rows, so the expanded tensor is never
//! written whole; [`fuse`] puts it in place of such chains whose expanded tensor is larger than
//! one band.
//!
//! Why: the expanded tensors of EfficientNet's early blocks do not fit in a core's cache (B0's
//! block 1: 96 × 112×112 f32, 4.8 MB). Unfused, the expansion wrote it out, tract's SiLU read
//! and wrote it, and the depthwise conv read it again to stage its planes: `node_profile` of B0
//! at 224 px on one thread put that layer's expansion at 1044 µs in the network against
//! 563–613 µs alone (`pointwise_layers`), its SiLU at 354 µs and its depthwise conv at 644 µs,
//! against onnxruntime's 507 + 470 + 395. Here each band's expanded rows (at most
//! [`BAND_VALUES`] values) are made, activated and convolved while they are in cache.
//!
//! The values are the unfused ops', bit for bit: the band's product is gemm's on the band's
//! columns (each output's sum over the input channels in the same order for any column range),
//! SiLU is tract's own kernel (`Func::Silu`, the one tract's `Silu` node runs), ReLU6 the same
//! clamp, and the depthwise conv [`shared::depthwise::forward_into`] on the band's rows with the
//! padding the band sees (each output the same bias and taps in the same order). Tested below
//! against the unfused chain, value for value. The input rows two bands share (the kernel's
//! overlap) are expanded once per band. Bands split over tract's executor pool as the other
//! fovea ops do.
use std::mem::MaybeUninit;

use rayon::prelude::*;
use shared::depthwise::{Geometry, Spread, forward_into};
use tract_core::internal::*;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::nn::Silu;
use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_linalg::routines::Func;

use super::activation::only_reader;
use super::depthwise::Depthwise;
use super::pointwise::{Dims, Pointwise, SharedOut, tile_product};

/// Expanded values per band (512 KiB of f32): a band's expanded rows, its staged depthwise
/// planes and its output stay within the 1 MiB L2 of the cores measured.
pub const BAND_VALUES: usize = 1 << 17;

/// A 1×1 expansion, an optional SiLU and a depthwise conv, computed band by band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandDepthwise {
    expand: Pointwise,
    /// Whether tract's SiLU runs between the expansion and the depthwise conv.
    silu: bool,
    depthwise: Depthwise,
    /// Output rows per band.
    band_rows: usize,
}

impl Op for ExpandDepthwise {
    fn name(&self) -> StaticName {
        "FoveaExpandDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = self.expand.info()?;
        info.push(format!("SiLU: {}", self.silu));
        info.extend(self.depthwise.info()?);
        info.push(format!("{} output rows per band", self.band_rows));
        Ok(info)
    }

    op_as_typed_op!();
}

impl EvalOp for ExpandDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let g = *self.depthwise.layer().geometry();
        let silu = if self.silu {
            Some(Func::Silu.ew_f32()?)
        } else {
            None
        };
        // SAFETY: the bands write every element (below) before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.depthwise.output_shape())? };
        let dst = SharedOut(unsafe { y.as_ptr_mut_unchecked::<f32>() });
        let bands = g.oh.div_ceil(self.band_rows);
        let job = |bufs: &mut Buffers, band: usize| -> TractResult<()> {
            // SAFETY: band `band` writes output rows band·band_rows .. of each channel only,
            // inside `y` ([`ExpandDepthwise::band`]); no two bands share a row.
            unsafe { self.band(x, band, silu.as_deref(), bufs, dst) }
        };
        let parallel = |_: ()| {
            (0..bands)
                .into_par_iter()
                .try_for_each_init(Buffers::default, job)
        };
        match current_tract_executor() {
            Executor::SingleThread => {
                let mut bufs = Buffers::default();
                (0..bands).try_for_each(|b| job(&mut bufs, b))?
            }
            Executor::MultiThread(pool) => pool.install(|| parallel(()))?,
            _ => parallel(())?,
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

/// One thread's scratch: a band's expanded rows and its depthwise output.
#[derive(Default)]
struct Buffers {
    expanded: Vec<f32>,
    out: Vec<MaybeUninit<f32>>,
}

impl ExpandDepthwise {
    /// Output rows `band·band_rows ..` (cut at the output's height) of every channel, written
    /// into `dst`.
    ///
    /// # Safety
    /// `dst` must be the output (`c × oh × ow` f32 values) and no other thread may write these
    /// rows meanwhile; `x` is the input, `c_in × h × w` (checked by tract against
    /// [`TypedOp::output_facts`]).
    unsafe fn band(
        &self,
        x: &[f32],
        band: usize,
        silu: Option<&dyn tract_linalg::element_wise::ElementWise<f32>>,
        bufs: &mut Buffers,
        dst: SharedOut,
    ) -> TractResult<()> {
        let layer = self.depthwise.layer();
        let g = *layer.geometry();
        let (c_in, hw) = self.expand.dims();
        let o0 = band * self.band_rows;
        let rows_out = self.band_rows.min(g.oh - o0);
        // Input rows this band's outputs read, padding included, then clipped to the image.
        let top = (o0 * g.sh) as isize - g.ph as isize;
        let bottom = ((o0 + rows_out - 1) * g.sh + g.kh) as isize - g.ph as isize;
        let first = top.max(0) as usize;
        let end = (bottom.max(0) as usize).min(g.h).max(first);
        let rows_in = end - first;
        let dims = Dims {
            c_in,
            c_out: g.c,
            hw: rows_in * g.w,
        };
        bufs.expanded.resize(g.c * dims.hw, 0.0);
        let expanded = &mut bufs.expanded[..g.c * dims.hw];
        // SAFETY: the input's rows first..end of each of its c_in channels lie inside `x`
        // (rows of g.w values, channels hw apart; end ≤ h); `expanded` holds c_out rows of
        // dims.hw values and is this thread's own.
        unsafe {
            tile_product(
                x.as_ptr().add(first * g.w),
                hw,
                self.expand.weights(),
                self.expand.bias(),
                self.expand.activation(),
                dims,
                expanded.as_mut_ptr(),
                dims.hw,
                gemm::Parallelism::None,
            )
        };
        if let Some(silu) = silu {
            silu.run(expanded)?;
        }
        let geo = Geometry {
            n: 1,
            h: rows_in,
            oh: rows_out,
            ph: (first as isize - top) as usize,
            ..g
        };
        let plane = rows_out * g.ow;
        bufs.out.resize(g.c * plane, MaybeUninit::uninit());
        let out = &mut bufs.out[..g.c * plane];
        let act = self.depthwise.activation();
        let then = |p: &mut [f32]| {
            if let Some(a) = act {
                a.apply(p)
            }
        };
        forward_into(
            expanded,
            layer.weights(),
            layer.bias(),
            &geo,
            Spread::Serial,
            out,
            &then,
        );
        for (c, rows) in out.chunks_exact(plane).enumerate() {
            // SAFETY: `forward_into` wrote every value of `out`; channel c's rows o0 .. o0 +
            // rows_out lie inside the output (the caller's contract).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    rows.as_ptr().cast::<f32>(),
                    dst.at((c * g.oh + o0) * g.ow),
                    plane,
                )
            };
        }
        Ok(())
    }
}

impl TypedOp for ExpandDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let expanded = self.expand.output_facts(inputs)?;
        self.depthwise.output_facts(&[&expanded[0]])
    }

    as_op!();
}

/// Output rows per band for `g`: as many as keep a band's expanded rows within `band_values`,
/// at least one.
fn band_rows(g: &Geometry, band_values: usize) -> usize {
    let rows_in = band_values / (g.c * g.w).max(1);
    (rows_in.saturating_sub(g.kh) / g.sh + 1).min(g.oh).max(1)
}

/// Replaces every [`Pointwise`] → (tract's SiLU) → [`Depthwise`] chain of `model` whose
/// expanded tensor holds more than [`BAND_VALUES`] values (batch 1, each link read by the next
/// alone, the shapes agreeing) with one [`ExpandDepthwise`]; returns how many. Runs after
/// [`super::activation::fuse`], so ReLU6 is already inside both ops.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    fuse_within(model, BAND_VALUES)
}

/// [`fuse`] with bands of at most `band_values` expanded values.
fn fuse_within(model: &mut TypedModel, band_values: usize) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(expand) = node.op_as::<Pointwise>() else {
            continue;
        };
        let Some(mut next) = only_reader(model, OutletId::new(id, 0))? else {
            continue;
        };
        let silu = next
            .op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<Silu>() && e.1.is_none());
        if silu {
            let Some(after) = only_reader(model, OutletId::new(next.id, 0))? else {
                continue;
            };
            next = after;
        }
        let Some(depthwise) = next.op_as::<Depthwise>() else {
            continue;
        };
        let g = *depthwise.layer().geometry();
        let expanded = model.outlet_fact(OutletId::new(id, 0))?;
        if g.n != 1
            || g.c * g.h * g.w <= band_values
            || expanded.shape.as_concrete() != Some(&depthwise.input_shape()[..])
        {
            continue;
        }
        let op = ExpandDepthwise {
            expand: expand.clone(),
            silu,
            depthwise: depthwise.clone(),
            band_rows: band_rows(&g, band_values),
        };
        let mut patch = TypedModelPatch::new("fovea expansion and depthwise in bands");
        let inputs = patch.taps(model, &node.inputs)?;
        let y = patch.wire_node(&next.name, op, &inputs)?[0];
        patch.shunt_outside(model, OutletId::new(next.id, 0), y)?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::depthwise::tests::{ConvShape, values, wire_conv, wire_depthwise};
    use crate::runtime::{activation, depthwise, pointwise};
    use tract_core::ops::math::mul;
    use tract_core::ops::nn::sigmoid;
    use tract_linalg::multithread::multithread_tract_scope;

    /// Runs `model` optimized on `input`; returns the output's values and the plan's op names.
    fn run(model: TypedModel, input: &Tensor) -> (Vec<f32>, Vec<String>) {
        let m = model.into_optimized().unwrap();
        let names = m
            .nodes()
            .iter()
            .map(|n| n.op().name().to_string())
            .collect();
        let out = m
            .into_runnable()
            .unwrap()
            .run(tvec!(input.clone().into()))
            .unwrap();
        let values = out[0]
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec();
        (values, names)
    }

    /// tract's 1×1 `Conv` `c_in → c` with a bias on `x`, CHW (as tract leaves a batch-1
    /// model's convs after its declutter: then fovea's 1×1 op folds the bias).
    fn wire_expansion(model: &mut TypedModel, x: OutletId, c_in: usize, c: usize) -> OutletId {
        let shape = ConvShape {
            c_in,
            c_out: c,
            group: 1,
            k: 1,
            stride: 1,
            pads: (0, 0),
            batched: false,
        };
        wire_conv(model, x, shape, "expand", 1)
    }

    /// An expansion `c_in → c` on `side × side` (CHW), SiLU as tract's ONNX front end wires it
    /// (`x · sigmoid(x)`, which tract's declutter makes its `Silu`), then a depthwise conv
    /// `(k, stride, padding before, after)`.
    fn chain(c_in: usize, c: usize, side: usize, dw: (usize, usize, usize, usize)) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([c_in, side, side]))
            .unwrap();
        let e = wire_expansion(&mut model, x, c_in, c);
        let s = model.wire_node("sig", sigmoid(), &[e]).unwrap()[0];
        let e = model.wire_node("silu", mul(), &[e, s]).unwrap()[0];
        let (k, s, before, after) = dw;
        let y = wire_depthwise(
            &mut model,
            e,
            (c, side, side, k, s, before, after, false),
            3,
        );
        model.select_output_outlets(&[y]).unwrap();
        model.into_decluttered().unwrap()
    }

    /// The unfused fovea chain (expansion, tract's SiLU, depthwise) and the fused op give the
    /// same values, bit for bit, on one and two threads: B0's block-1 geometry (3×3 stride 2, TF
    /// "same" padding 0 before and 1 after) and block-2's (3×3 stride 1, 1 and 1) at sizes with
    /// several bands and a cut last band, and a 5×5 stride-2 layer whose first band reads
    /// padding rows (2 before).
    #[test]
    fn bands_equal_the_unfused_ops_value_for_value() {
        let cases = [
            (16, 96, 40, (3, 2, 0, 1)),
            (24, 144, 33, (3, 1, 1, 1)),
            (24, 144, 37, (5, 2, 2, 2)),
        ];
        for (i, &(c_in, c, side, dw)) in cases.iter().enumerate() {
            let mut unfused = chain(c_in, c, side, dw);
            assert_eq!(depthwise::replace(&mut unfused).unwrap(), 1);
            assert_eq!(pointwise::replace(&mut unfused).unwrap(), 1);
            let mut fused = unfused.clone();
            // Bands of a few rows, as B0's 112×112 layer gets at BAND_VALUES.
            assert_eq!(
                fuse_within(&mut fused, 24 * side * c / 4).unwrap(),
                1,
                "case {i}"
            );
            let g = fused
                .nodes()
                .iter()
                .find_map(|n| n.op_as::<ExpandDepthwise>())
                .unwrap();
            let bands = g.depthwise.layer().geometry().oh.div_ceil(g.band_rows);
            assert!(bands >= 4, "case {i}: {bands} bands");
            let input = tract_ndarray::ArrayD::from_shape_vec(
                vec![c_in, side, side],
                values(c_in * side * side, 40 + i as u32),
            )
            .unwrap()
            .into_tensor();
            for threads in [1, 2] {
                let executor = match threads {
                    1 => Executor::SingleThread,
                    n => Executor::multithread(n),
                };
                let ((want, unfused_ops), (got, fused_ops)) =
                    multithread_tract_scope(executor, || {
                        (run(unfused.clone(), &input), run(fused.clone(), &input))
                    });
                assert!(unfused_ops.iter().any(|n| n == "Silu"), "{unfused_ops:?}");
                assert!(
                    fused_ops.iter().any(|n| n == "FoveaExpandDepthwise")
                        && !fused_ops
                            .iter()
                            .any(|n| n == "Silu" || n == "FoveaDepthwise"),
                    "{fused_ops:?}"
                );
                assert_eq!(want.len(), got.len());
                let differ = want.iter().zip(&got).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differ, 0,
                    "case {i}, {threads} threads: {differ} values differ"
                );
            }
        }
    }

    /// Lite's chain: ReLU6 inside both fovea ops ([`activation::fuse`]) stays inside the fused
    /// op, value for value.
    #[test]
    fn relu6_chains_fuse_with_their_clamps() {
        let (c_in, c, side) = (16, 96, 40);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([c_in, side, side]))
            .unwrap();
        let relu6 = |model: &mut TypedModel, x: OutletId, seed: u32| {
            let lo = model
                .add_const(format!("lo{seed}"), tensor3(&[[[0f32]]]))
                .unwrap();
            let hi = model
                .add_const(format!("hi{seed}"), tensor3(&[[[6f32]]]))
                .unwrap();
            let m = model
                .wire_node(format!("max{seed}"), tract_core::ops::math::max(), &[x, lo])
                .unwrap()[0];
            model
                .wire_node(format!("min{seed}"), tract_core::ops::math::min(), &[m, hi])
                .unwrap()[0]
        };
        let e = wire_expansion(&mut model, x, c_in, c);
        let e = relu6(&mut model, e, 1);
        let d = wire_depthwise(&mut model, e, (c, side, side, 3, 2, 0, 1, false), 3);
        let y = relu6(&mut model, d, 2);
        model.select_output_outlets(&[y]).unwrap();
        let mut unfused = model.into_decluttered().unwrap();
        depthwise::replace(&mut unfused).unwrap();
        pointwise::replace(&mut unfused).unwrap();
        assert_eq!(activation::fuse(&mut unfused).unwrap(), 2);
        let mut fused = unfused.clone();
        assert_eq!(fuse(&mut fused).unwrap(), 1);
        // Scaled so that some values pass 6 and some fall below 0.
        let input = tract_ndarray::ArrayD::from_shape_vec(
            vec![c_in, side, side],
            values(c_in * side * side, 7)
                .into_iter()
                .map(|v| v * 8.0)
                .collect(),
        )
        .unwrap()
        .into_tensor();
        let (want, _) = run(unfused, &input);
        let (got, ops) = run(fused, &input);
        assert!(ops.iter().any(|n| n == "FoveaExpandDepthwise"), "{ops:?}");
        assert!(want.contains(&6.0) && want.contains(&0.0));
        let differ = want.iter().zip(&got).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{differ} of {} values differ", want.len());
    }

    /// Chains whose expanded tensor fits in one band stay unfused (nothing to gain), as do
    /// expansions read by more than the depthwise conv.
    #[test]
    fn small_or_shared_expansions_stay_unfused() {
        let mut small = chain(16, 96, 12, (3, 2, 0, 1));
        depthwise::replace(&mut small).unwrap();
        pointwise::replace(&mut small).unwrap();
        assert_eq!(fuse(&mut small).unwrap(), 0);

        let (c_in, c, side) = (16, 96, 40);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([c_in, side, side]))
            .unwrap();
        let e = wire_expansion(&mut model, x, c_in, c);
        let d = wire_depthwise(&mut model, e, (c, side, side, 3, 1, 1, 1, false), 3);
        model.select_output_outlets(&[d, e]).unwrap();
        let mut shared = model.into_decluttered().unwrap();
        depthwise::replace(&mut shared).unwrap();
        pointwise::replace(&mut shared).unwrap();
        assert_eq!(fuse(&mut shared).unwrap(), 0);
    }
}
