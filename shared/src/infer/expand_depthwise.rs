//! An MBConv's expansion and depthwise conv in one op, band by band: [`ExpandDepthwise`] runs
//! fovea's 1×1 expansion ([`Pointwise`], channels-last output) on the few input rows a band of
//! depthwise output rows reads, into a buffer that stays in cache, and the depthwise conv
//! ([`Depthwise`]'s channels-last form) on that buffer, writing the band's rows of its planes
//! — or, where the 1×1 projection after it joins (Lite0's blocks: no squeeze-excitation reads
//! the whole layer first), into a second buffer of the band's rows, which the projection
//! (`Pointwise::planes_of`) reads, writing the band's rows of its own planes; [`fuse`] puts
//! it in place of the pair (or the three) where the expanded tensor is large.
//!
//! Why: the expanded tensor of an early MBConv block does not fit a core's cache (B0's and
//! Lite0's block 1: 112×112×96 values, 4.6 MiB; blocks 2 and 3: 56×56×144, 1.7 MiB), so the
//! expansion wrote it out to memory and the depthwise conv read it back: Lite0's block-1
//! depthwise conv took 400–490 µs run after the expansion and 189 µs run on an input already in
//! cache (`node_profile`, `WARM=FoveaDepthwise`, one thread), against onnxruntime's 216. The
//! projection read the depthwise conv's planes (1.2 MiB in block 1, 1.7 MiB in block 2) back
//! the same way: Lite0's block-1 projection 162–170 µs after the op, 126 warm
//! (`WARM=FoveaPointwise`), block 2's 232–244 against 189. With it joined in Lite0's blocks 1
//! to 3, a whole inference took 0.5–1.7 % less at one thread (both plans in one process, runs
//! alternated); end to end, over onnxruntime, 0.996 → 0.983 at one thread and 1.006 → 1.015 at
//! two (medians of 15 and 23 rounds), but in one process the projection run after the op
//! instead took 0.9–4.3 % longer at two threads in 9 of 10 rounds (docs/PERFORMANCE.md): the
//! join gains there too. All of Lite0's blocks joined took 0.3–0.5 % less again at one thread
//! (re-measured later: −0.30 to +0.34 %) and 8–12 % more at two end to end: a 7×7 or 14×14
//! layer's rows split in two runs expand the rows they share twice (a 5×5 conv's 7 output rows
//! read 6 and 5 of 7 input rows).
//!
//! The values are the two ops' own, bit for bit: each expanded pixel is the same gemm product
//! (one pixel's sum does not depend on which pixels share its call), and the depthwise kernel
//! reads the band as it reads the image (tested below against the unfused pair). The rows the
//! bands share (a `k×k` kernel at stride `s` reads `k − s` rows twice) are carried over, not
//! recomputed. Where the expansion runs on the channel lanes the band is expanded in blocks of
//! 16 channels (`[⌈c/16⌉, rows, w, 16]`, `channel_lanes::laid_out`), not channels-last, so the
//! depthwise kernel reads each block's rows as one run: Lite0's block 1, the two layouts
//! alternated call by call, its depthwise part 203–247 → 168–214 µs a call, the op 15–34 µs
//! faster in five prints of six, 1 slower in one (docs/PERFORMANCE.md). Threads follow tract's
//! executor: the output rows split into one run of bands per thread, each with its own buffer
//! (the first band of each run expands its shared rows again).
use tract_core::internal::*;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::nn::Silu;
use tract_linalg::routines::Func;

use super::activation::only_reader;
use super::depthwise::Depthwise;
use super::pointwise::Pointwise;
use super::row_runs::over_runs;
use crate::channel_blocks;
use crate::depthwise::{ChannelsLast, Planes};
use crate::shared_out::SharedOut;

/// A buffer's target size, in values: the input rows a band reads (384 KiB), so that the band
/// stays in a core's cache (1 MiB of L2 on this machine's AMD EPYC; 512 KiB–1 MiB on the
/// boards' Cortex-A cores) between its expansion and its depthwise conv.
const BAND_VALUES: usize = 96 * 1024;

/// The expanded tensors [`fuse`] takes: at least this many values (2 MiB, twice a core's L2
/// here), or half as many before a stride-1 depthwise conv. B0's and Lite0's block 1 (1.2 M
/// values, stride 2) gained; blocks 2 and 3 (56×56×144, 452 K; 3×3 stride 1 and 5×5 stride 2)
/// did not at first (`node_profile`, one thread, three alternating rounds of each model: block
/// 1's expansion and depthwise conv 961–1172 → 680–767 µs in Lite0, 1072–1121 → 942–960 in B0
/// with its SiLU; block 2 538–572 → 535–556 and block 3 396–404 → 411–443 in Lite0, B0's
/// 574–601 → 618–643 and 502–541 → 558–561). Once `ChannelsLast` ran in bands that keep its
/// input in L1, block 2 gained too (Lite0 700–764 → 522–542 µs, B0 796–847 → 721–735) and
/// block 3 still did not (Lite0 406–452 → 405–485, B0 571–586 → 560–634). With the projection
/// joined (Lite0) half as many suffice: blocks 1 to 3 (module doc).
const MIN_EXPANDED: usize = 512 * 1024;

/// fovea's expansion (`expand`, an ungated [`Pointwise`] with a channels-last output) and the
/// depthwise conv that reads it (`depthwise`, channels-last input, planes out) in one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandDepthwise {
    expand: Pointwise,
    /// Whether tract's SiLU (B0's activation, `x·σ(x)`) runs on the expanded values between
    /// the two: tract's own kernel for its `Silu` op, on each band's new rows.
    silu: bool,
    depthwise: Depthwise,
    /// The 1×1 projection that reads the depthwise conv's planes, where it runs in this op
    /// too (ungated, planes out: Lite0's blocks 1 to 3, not B0's, whose squeeze-excitation
    /// reads the whole layer first): each band's depthwise rows go into a buffer and the
    /// projection reads them from there.
    project: Option<Pointwise>,
    /// Output rows per band.
    band: usize,
}

impl ExpandDepthwise {
    /// The pair in one op (tract's SiLU between them when `silu`), or `None` unless `expand` is
    /// an ungated 1×1 op with a channels-last output of one image and `depthwise` reads that
    /// output channels-last.
    pub fn new(expand: &Pointwise, silu: bool, depthwise: &Depthwise) -> Option<Self> {
        let last = depthwise.channels_last()?;
        let g = last.geometry();
        let (_, hw) = expand.dims();
        if !expand.out_last || expand.gated || g.n != 1 || expand.c_out() != g.c || hw != g.h * g.w
        {
            return None;
        }
        // Input rows of a band of `b` output rows: (b − 1)·s + k.
        let rows = (BAND_VALUES / (g.w * g.c).max(1)).max(g.kh);
        let band = ((rows - g.kh) / g.sh + 1).clamp(1, g.oh.max(1));
        Some(ExpandDepthwise {
            expand: expand.clone(),
            silu,
            depthwise: depthwise.clone(),
            project: None,
            band,
        })
    }

    /// This op with `project` run on the depthwise conv's outputs, or `None` unless `project`
    /// is an ungated 1×1 op with a planes output whose input is the depthwise conv's output.
    pub fn with_projection(&self, project: &Pointwise) -> Option<Self> {
        let g = self.last().geometry();
        if !project.projects_planes(g.c, g.oh * g.ow) {
            return None;
        }
        Some(ExpandDepthwise {
            project: Some(project.clone()),
            ..self.clone()
        })
    }

    /// The op's output's shape: the projection's, else the depthwise conv's.
    fn output_shape(&self) -> Vec<usize> {
        match &self.project {
            Some(p) => p.output.to_vec(),
            None => self.depthwise.output_shape(),
        }
    }

    /// How many 1×1 convs it runs: the expansion, and the projection if it joined.
    pub fn pointwise_convs(&self) -> usize {
        1 + self.project.is_some() as usize
    }

    /// This op with bands of `rows` output rows (at least 1).
    pub fn with_band(&self, rows: usize) -> Self {
        ExpandDepthwise {
            band: rows.max(1),
            ..self.clone()
        }
    }

    fn last(&self) -> &ChannelsLast {
        self.depthwise
            .channels_last()
            .expect("ExpandDepthwise::new checked the channels-last form")
    }

    /// Output rows `oys.0 .. oys.1`, band by band, into the planes at `y` (the projection's
    /// where it runs here, else the depthwise conv's), on the calling thread.
    ///
    /// # Safety
    /// `y` must be valid for writes of the op's outputs (`[c, oh, ow]`), these rows of them
    /// touched by no other thread meanwhile.
    unsafe fn rows(&self, x: &[f32], oys: (usize, usize), y: SharedOut) -> TractResult<()> {
        let last = self.last();
        let g = last.geometry();
        let row = g.w * g.c;
        let relu6 = self.depthwise.relu6();
        // A band reads at most (band − 1)·s + k input rows: in blocks of 16 channels where
        // the expansion writes them (`blocked`), else channels-last, as one block.
        let rows = (self.band - 1) * g.sh + g.kh;
        let blocked = self.expand.writes_blocks();
        let (blocks, per_row) = if blocked {
            (channel_blocks::count(g.c), g.w * channel_blocks::BLOCK)
        } else {
            (1, row)
        };
        let block = rows * per_row;
        // Allocated (and zeroed) on each call: kept per thread across calls instead, the
        // buffers made a whole Lite0 inference 1.3–1.9 % slower at one thread
        // (docs/PERFORMANCE.md).
        let mut buf = vec![0.0f32; blocks * block];
        // Where the projection runs here, the depthwise conv's planes of a band, `[c, band,
        // ow]`, for it to read.
        let plane = self.band * g.ow;
        let mid_len = if self.project.is_some() {
            g.c * plane
        } else {
            0
        };
        let mut mid = vec![0.0f32; mid_len];
        // Input rows `held.0 .. held.1` are in `buf`, from the start of each block.
        let mut held = (0, 0);
        for oy in (oys.0..oys.1).step_by(self.band) {
            let band = (oy, (oy + self.band).min(oys.1));
            let (lo, hi) = last.input_rows(band);
            // Rows the last band expanded and this one reads move to the front.
            let from = if held.0 <= lo && lo < held.1 {
                for b in (0..blocks).map(|b| b * block) {
                    let kept = b + (lo - held.0) * per_row..b + (held.1 - held.0) * per_row;
                    buf.copy_within(kept, b);
                }
                held.1
            } else {
                lo
            };
            let fresh = (from - lo) * per_row..(hi - lo) * per_row;
            if blocked {
                let cols = (hi - from) * g.w;
                let out = &mut buf[fresh.start..];
                self.expand.pixels_blocked(x, from * g.w, out, block, cols);
            } else {
                self.expand
                    .pixels_last(x, from * g.w, &mut buf[fresh.clone()]);
            }
            if self.silu {
                for b in (0..blocks).map(|b| b * block) {
                    Func::Silu
                        .ew_f32()?
                        .run(&mut buf[b + fresh.start..b + fresh.end])?;
                }
            }
            held = (lo, hi);
            let input = if blocked {
                (&buf[..], Some(block))
            } else {
                (&buf[..(hi - lo) * row], None)
            };
            // Into the op's planes, or where the projection runs here into `mid`'s rows.
            let out = match self.project {
                Some(_) => Planes {
                    at: SharedOut(mid.as_mut_ptr()),
                    plane,
                    row0: band.0,
                },
                None => Planes {
                    at: y,
                    plane: g.oh * g.ow,
                    row0: 0,
                },
            };
            // SAFETY: `buf` holds the input rows lo .. hi the band reads; `mid` the band's rows
            // of each plane (at most `band` rows, `plane` values apart) and is this call's
            // alone; the caller's contract covers `y`'s rows of the band.
            unsafe { last.band_into_planes(input, lo, band, out, relu6) };
            if let Some(project) = &self.project {
                let cols = (band.1 - band.0) * g.ow;
                // SAFETY: as above; `mid` holds the band's depthwise rows just written.
                unsafe {
                    project.planes_of((&mid, plane), cols, (y.at(band.0 * g.ow), g.oh * g.ow))
                };
            }
        }
        Ok(())
    }
}

impl Op for ExpandDepthwise {
    fn name(&self) -> StaticName {
        "FoveaExpandDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (c_in, _) = self.expand.dims();
        Ok(vec![format!(
            "{c_in}→{} expanded{}, then {:?}, then {:?}{}; bands of {} rows",
            self.expand.c_out(),
            if self.silu { ", SiLU" } else { "" },
            self.last().geometry(),
            self.depthwise.activation(),
            match &self.project {
                Some(p) => format!(", then projected to {}", p.c_out()),
                None => String::new(),
            },
            self.band
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for ExpandDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let oh = self.last().geometry().oh;
        // SAFETY: the bands write every output row (0 .. oh, every channel) before the tensor
        // is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.output_shape())? };
        let out = SharedOut(y.as_ptr_mut::<f32>()?);
        // SAFETY: `y` holds the op's outputs (the projection's or the depthwise conv's planes);
        // the runs of rows are disjoint, so no two threads write the same element.
        over_runs(oh, |run| unsafe { self.rows(x, run, out) })?;
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for ExpandDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&self.expand.input[..]),
            "FoveaExpandDepthwise expects f32 {:?}, got {inputs:?}",
            self.expand.input
        );
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// Puts [`ExpandDepthwise`] in place of every fovea expansion whose only reader is a fovea
/// depthwise conv reading it channels-last (directly, or through tract's `Silu` as its only
/// reader), with the 1×1 projection after the depthwise conv where it is that conv's only
/// reader (ungated: Lite0's blocks, not B0's), where the expanded tensor has at least 512 Ki
/// values (2 MiB: block 1 at 224 px), or 256 Ki before a stride-1 conv or with the projection
/// (blocks 2 and, in Lite0, 3); returns how many. Run after [`super::activation::fuse`], so
/// the ops carry their ReLU6.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    fuse_where(model, |values, stride, projected| {
        values >= MIN_EXPANDED || ((projected || stride == 1) && values >= MIN_EXPANDED / 2)
    })
}

/// [`fuse`] with the choice left to `take(values of the expanded tensor, the depthwise conv's
/// stride, whether the projection joins)`.
pub fn fuse_where(
    model: &mut TypedModel,
    take: impl Fn(usize, usize, bool) -> bool,
) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(depthwise) = node.op_as::<Depthwise>() else {
            continue;
        };
        let mut source = node.inputs[0];
        let mut silu = false;
        let between = model.node(source.node);
        if between
            .op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<Silu>())
            && only_reader(model, source)?.is_some()
        {
            silu = true;
            source = between.inputs[0];
        }
        let expansion = model.node(source.node);
        let Some(expand) = expansion.op_as::<Pointwise>() else {
            continue;
        };
        if only_reader(model, source)?.is_none() {
            continue;
        }
        let Some(mut op) = ExpandDepthwise::new(expand, silu, depthwise) else {
            continue;
        };
        // The projection after, where it reads the depthwise conv alone.
        let mut last = OutletId::new(id, 0);
        if let Some((project, out)) = super::pointwise::only_reader_of(model, last)?
            && let Some(with) = op.with_projection(project)
        {
            op = with;
            last = out;
        }
        let (_, hw) = expand.dims();
        let projected = op.project.is_some();
        if !take(hw * expand.c_out(), op.last().geometry().sh, projected) {
            continue;
        }
        let mut patch = TypedModelPatch::new("fovea expansion and depthwise conv");
        let x = patch.tap_model(model, expansion.inputs[0])?;
        let y = patch.wire_node(&node.name, op, &[x])?[0];
        patch.shunt_outside(model, last, y)?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::activation::tests::relu6;
    use crate::infer::depthwise::tests::{Case, values, wire_depthwise, wire_pointwise};
    use crate::infer::pointwise::tests::{f32s, on_threads, run_tensor};
    use crate::infer::{activation, depthwise, pointwise};
    use tract_core::ops::math::mul;
    use tract_core::ops::nn::sigmoid;

    /// An expansion 6 → `c` of a `1×6×side×side` input, then ReLU6 (`Clip(0, 6)` as tract's
    /// ONNX front end wires it) or SiLU (`x·σ(x)`), the depthwise conv `case`, and a 1×1
    /// projection to `c_proj` channels; decluttered as the loader does, fovea's 1×1 ops placed
    /// and the ReLU6 fused; and an input for it.
    fn chain(silu: bool, case: Case, c_proj: usize) -> (TypedModel, Tensor) {
        let (c, side) = (case.0, case.1);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, 6, side, side]))
            .unwrap();
        let e = wire_pointwise(&mut model, x, 6, c, 1);
        let e = if silu {
            let s = model.wire_node("sig", sigmoid(), &[e]).unwrap()[0];
            model.wire_node("silu", mul(), &[e, s]).unwrap()[0]
        } else {
            relu6(&mut model, e, 2)
        };
        let d = wire_depthwise(&mut model, e, case, 3);
        let y = wire_pointwise(&mut model, d, c, c_proj, 6);
        model.select_output_outlets(&[y]).unwrap();
        depthwise::declutter(&mut model).unwrap();
        pointwise::replace(&mut model).unwrap();
        activation::fuse(&mut model).unwrap();
        let input = tract_ndarray::ArrayD::from_shape_vec(
            vec![1, 6, side, side],
            values(6 * side * side, 7),
        )
        .unwrap()
        .into_tensor();
        (model, input)
    }

    /// `model`'s fused ops with bands of `rows`.
    fn with_bands(mut model: TypedModel, rows: usize) -> TypedModel {
        for node in model.nodes.iter_mut() {
            if let Some(op) = node.op_as::<ExpandDepthwise>() {
                node.op = Box::new(op.with_band(rows));
            }
        }
        model
    }

    /// Where the depthwise conv reads the expansion channels-last (x86_64 with AVX-512 or AVX2),
    /// the pair and the projection after it become one op and its outputs equal the three ops'
    /// bit for bit (the projection on gemm, on AVX-512's pixel lanes and on the channel
    /// lanes, where the CPU runs them): ReLU6 and SiLU
    /// between them, 3×3 and 5×5 kernels at strides 1 and 2 with TF's "same" padding, 24 channels
    /// (on AVX-512 a partial block of 16: gemm's product, the band channels-last; on AVX2 the
    /// lanes, the band in blocks of 16 channels, the last partial) and 32, 48, 96, 144 (the
    /// product with the channels in the lanes, `channel_lanes.rs`, 1 to 6 pixels per register
    /// block and the pixels left over, the band in blocks), bands of 1, 2, 3 and all rows, on
    /// one and two threads (two runs of bands, each expanding its shared rows itself).
    /// Elsewhere nothing is fused.
    #[test]
    fn equals_the_expansion_then_the_depthwise_conv_bit_for_bit() {
        // (c, h, w, k, s, padding before, after, batched)
        let cases: [Case; 7] = [
            (48, 20, 20, 3, 2, 0, 1, true),
            (24, 18, 18, 5, 1, 2, 2, true),
            (24, 19, 19, 5, 2, 2, 2, true),
            (32, 16, 16, 3, 1, 1, 1, true),
            (96, 13, 13, 3, 1, 1, 1, true),
            (144, 13, 13, 3, 2, 0, 1, true),
            (32, 15, 15, 5, 1, 2, 2, true),
        ];
        for (n, case) in cases.into_iter().enumerate() {
            let silu = n % 2 == 1;
            // The projection on gemm (5 channels), on AVX-512 the pixel lanes (24), the
            // channel lanes (32 on these small planes, where the CPU runs them).
            let c_proj = [5, 24, 32][n % 3];
            let (model, input) = chain(silu, case, c_proj);
            let simd = model
                .nodes()
                .iter()
                .filter_map(|n| n.op_as::<Depthwise>())
                .any(|d| d.channels_last().is_some());
            let mut fused = model.clone();
            assert_eq!(
                fuse_where(&mut fused, |_, _, _| true).unwrap(),
                simd as usize,
                "{case:?}"
            );
            if !simd {
                continue;
            }
            let op = fused
                .nodes()
                .iter()
                .find_map(|n| n.op_as::<ExpandDepthwise>())
                .unwrap();
            assert_eq!(op.silu, silu, "{case:?}");
            let project = op.project.as_ref().expect("the projection joined");
            assert_eq!(project.c_out(), c_proj, "{case:?}");
            // The 32-channel projections (on planes of 100 and 49 pixels) run on the channel
            // lanes wherever the CPU has them.
            #[cfg(target_arch = "x86_64")]
            if c_proj == 32 {
                assert_eq!(
                    project.rows().is_none(),
                    crate::infer::channel_lanes::expected(32),
                    "{case:?}"
                );
            }
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                op.expand.rows().is_none(),
                crate::infer::channel_lanes::expected(case.0),
                "{case:?}"
            );
            for threads in [1, 2] {
                let (want, names) = on_threads(threads, || run_tensor(model.clone(), &input));
                assert!(!names.iter().any(|n| n == "FoveaExpandDepthwise"));
                for rows in [1, 2, 3, case.1] {
                    let (got, names) = on_threads(threads, || {
                        run_tensor(with_bands(fused.clone(), rows), &input)
                    });
                    assert!(names.iter().any(|n| n == "FoveaExpandDepthwise"));
                    assert_eq!(got.shape(), want.shape());
                    let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{case:?}, SiLU {silu}, bands of {rows}, {threads} threads"
                    );
                }
            }
        }
    }

    /// [`fuse`] takes blocks 1 and 2 (16 → 96 on 112×112, 1.2 M expanded values, 3×3 stride 2;
    /// 24 → 144 on 56×56, 452 K, 3×3 stride 1) and, where the projection joins them (Lite0's
    /// blocks; here the depthwise conv's output read by nothing else), block 3 (the same
    /// expansion, 5×5 stride 2), not block 4's size (40 → 240 on 28×28, 188 K, 3×3 stride 1),
    /// where the CPU reads channels-last at all; the projection joins wherever the op is
    /// placed and nothing else reads the depthwise conv (B0's squeeze-excitation does).
    #[test]
    fn the_default_rule_takes_blocks_1_to_3_with_their_projection() {
        // (C_in, C, side, kernel, stride, padding before, after, fused with the projection,
        // without)
        let cases = [
            (16, 96, 112, 3, 2, 0, 1, (1, 1)),
            (24, 144, 56, 3, 1, 1, 1, (1, 1)),
            (24, 144, 56, 5, 2, 1, 2, (1, 0)),
            (40, 240, 28, 3, 1, 1, 1, (0, 0)),
        ];
        for ((c_in, c, side, k, s, before, after, (with, alone)), shared) in cases
            .into_iter()
            .flat_map(|case| [(case, false), (case, true)])
        {
            let mut model = TypedModel::default();
            let x = model
                .add_source("x", f32::fact([1, c_in, side, side]))
                .unwrap();
            let e = wire_pointwise(&mut model, x, c_in, c, 1);
            let d = wire_depthwise(&mut model, e, (c, side, side, k, s, before, after, true), 3);
            // A projection after, as in the models (tract then drops the batch axis); with
            // `shared`, the depthwise conv's output is the model's too.
            let y = wire_pointwise(&mut model, d, c, 8, 6);
            let outputs = if shared { vec![y, d] } else { vec![y] };
            model.select_output_outlets(&outputs).unwrap();
            depthwise::declutter(&mut model).unwrap();
            pointwise::replace(&mut model).unwrap();
            let want = if shared { alone } else { with };
            let simd = model
                .nodes()
                .iter()
                .filter_map(|n| n.op_as::<Depthwise>())
                .any(|d| d.channels_last().is_some());
            assert_eq!(
                fuse(&mut model).unwrap(),
                want * simd as usize,
                "{c_in}→{c}, {k}×{k} stride {s}, the depthwise conv read elsewhere too: {shared}"
            );
            let projected = model
                .nodes()
                .iter()
                .filter_map(|n| n.op_as::<ExpandDepthwise>())
                .any(|op| op.project.is_some());
            assert_eq!(
                projected,
                simd && !shared && want == 1,
                "{c_in}→{c}, {k}×{k} stride {s}"
            );
        }
    }
}
