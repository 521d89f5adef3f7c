//! The stem and the depthwise conv that reads it in one op, band by band: [`StemDepthwise`]
//! runs fovea's k×k conv ([`DenseConv`], on `dense_kernel.rs`) on the output rows a band of
//! the depthwise conv reads, writing them straight into the depthwise plane path's staged
//! layout (`crate::depthwise::StagedBand`: zero-padded rows, nothing staged again), then the
//! depthwise conv ([`Depthwise`]'s plane path) on that buffer while it is in cache — and,
//! where the 1×1 projection after it joins (Lite0's block 0: no squeeze-excitation reads the
//! whole layer first), its rows into a second buffer, which the projection
//! (`Pointwise::planes_of`) reads, writing the band's rows of its own planes. [`fuse`] puts it
//! in place of the pair (or the three).
//!
//! Why: the stem's output (32×112×112 at 224 px, 1.6 MiB) and the depthwise conv's do not fit
//! a core's L2 (1 MiB here), so the stem wrote its output to memory, the depthwise conv read it
//! back plane by plane and staged each plane zero-padded before convolving it, and the
//! projection read the depthwise conv's planes back again (`node_profile`, Lite0: block 0's
//! projection 112–122 µs at two threads after the depthwise conv, 66–75 with its input warm,
//! docs/PERFORMANCE.md). Here a band's rows stay in L2 from the stem to the projection; at two
//! threads each thread runs its own half of the image through all three. A whole Lite0
//! inference took 1.5–3.5 % less at one thread and 1.2–3.6 % less at two (two plans in one
//! process, whole runs alternated, eight rounds each, every round faster; docs/PERFORMANCE.md).
//! The band's size did not matter: 7, 13, 20 or 28 rows within ±1.0 % of each other at two
//! threads. B0's stem and block 0 (tract's SiLU after each, run on the band) fused so did not
//! gain (its squeeze-excitation then reads the layer cold): within −0.70..+0.51 % at one
//! thread, −1.46..+0.13 % at two; B0 is left unfused (the op does not take a SiLU).
//!
//! The values are the three ops' own, bit for bit: each stem output is the same sum
//! (`dense_kernel.rs` computes it the same way whichever layout it stores to), the depthwise
//! conv runs the plane path's kernel on the same staged values, and the projection is the
//! unfused op's product (tested below against the unfused ops). The rows the bands share (a
//! `k×k` kernel reads `k − 1` rows twice) are carried over, not recomputed, except at the
//! start of each thread's run of bands. Only where `dense_kernel.rs` runs (x86_64 with AVX-512
//! or AVX2) and the depthwise conv has stride 1; elsewhere nothing is fused.
use tract_core::internal::*;

use super::activation::only_reader;
use super::dense_conv::DenseConv;
use super::depthwise::Depthwise;
use super::pointwise::Pointwise;
#[cfg(target_arch = "x86_64")]
use super::row_runs::over_runs;
use crate::depthwise::Geometry;
#[cfg(target_arch = "x86_64")]
use crate::depthwise::StagedBand;
#[cfg(target_arch = "x86_64")]
use crate::shared_out::SharedOut;

/// A band's target size, in values: its staged stem rows and its depthwise rows (384 KiB),
/// so that they stay in a core's L2 (1 MiB on this machine's AMD EPYC; 512 KiB–1 MiB on the
/// boards' Cortex-A cores) from the stem to the projection.
#[cfg(target_arch = "x86_64")]
const BAND_VALUES: usize = 96 * 1024;

/// fovea's stem ([`DenseConv`]) and the stride-1 depthwise conv that reads its planes, in one
/// op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StemDepthwise {
    stem: DenseConv,
    depthwise: Depthwise,
    /// The 1×1 projection that reads the depthwise conv's planes, where it runs in this op
    /// too (ungated, planes out: Lite0's block 0, not B0's).
    project: Option<Pointwise>,
    /// Output rows per band.
    band: usize,
}

impl StemDepthwise {
    /// The pair in one op, or `None` unless `depthwise` reads `stem`'s planes (one image, not
    /// channels-last) at stride 1 and `dense_kernel.rs` runs on this CPU.
    pub fn new(stem: &DenseConv, depthwise: &Depthwise) -> Option<Self> {
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (stem, depthwise);
            None
        }
        #[cfg(target_arch = "x86_64")]
        {
            let (s, c_out) = stem.geometry();
            let g = depthwise.layer().geometry();
            if !super::dense_kernel::available()
                || depthwise.channels_last().is_some()
                || g.n != 1
                || (g.c, g.h, g.w) != (c_out, s.oh, s.ow)
                || (g.sh, g.sw) != (1, 1)
            {
                return None;
            }
            let width = StagedBand::new(g, 1)?.width();
            let band = (BAND_VALUES / (g.c * (width + g.ow)).max(1)).clamp(1, g.oh.max(1));
            Some(StemDepthwise {
                stem: stem.clone(),
                depthwise: depthwise.clone(),
                project: None,
                band,
            })
        }
    }

    /// This op with `project` run on the depthwise conv's outputs, or `None` unless `project`
    /// is an ungated 1×1 op with a planes output whose input is the depthwise conv's output.
    pub fn with_projection(&self, project: &Pointwise) -> Option<Self> {
        let g = self.geometry();
        if !project.projects_planes(g.c, g.oh * g.ow) {
            return None;
        }
        Some(StemDepthwise {
            project: Some(project.clone()),
            ..self.clone()
        })
    }

    /// This op with bands of `rows` output rows (at least 1).
    pub fn with_band(&self, rows: usize) -> Self {
        StemDepthwise {
            band: rows.max(1),
            ..self.clone()
        }
    }

    /// How many 1×1 convs it runs: the projection, if it joined.
    pub fn pointwise_convs(&self) -> usize {
        self.project.is_some() as usize
    }

    /// The depthwise conv's layer.
    fn geometry(&self) -> &Geometry {
        self.depthwise.layer().geometry()
    }

    /// The op's output's shape: the projection's, else the depthwise conv's.
    fn output_shape(&self) -> Vec<usize> {
        match &self.project {
            Some(p) => p.output.to_vec(),
            None => self.depthwise.output_shape(),
        }
    }

    /// Output rows `oys.0 .. oys.1`, band by band, into the planes at `y` (the projection's
    /// where it runs here, else the depthwise conv's), on the calling thread.
    ///
    /// # Safety
    /// `dense_kernel.rs` runs on this CPU ([`StemDepthwise::new`] checked it); `y` must be
    /// valid for writes of the op's outputs (`[c, oh, ow]`), these rows of them touched by no
    /// other thread meanwhile.
    #[cfg(target_arch = "x86_64")]
    unsafe fn rows(&self, x: &[f32], oys: (usize, usize), y: SharedOut) {
        let g = *self.geometry();
        let layer = self.depthwise.layer();
        let taps = g.kh * g.kw;
        let full = StagedBand::new(&g, self.band).expect("new checked the stride");
        let (width, stride) = (full.width(), full.plane_len());
        // The staged stem rows of each plane, `stride` values apart; zero wherever the stem
        // writes nothing (the padding columns, and rows past the image, zeroed below).
        let mut staged = vec![0.0f32; g.c * stride];
        let mut stem_buf = Vec::new();
        // Where the projection runs here, the depthwise conv's planes of a band, `[c, band,
        // ow]`, for it to read.
        let plane = self.band * g.ow;
        let mut mid = vec![
            0.0f32;
            if self.project.is_some() {
                g.c * plane
            } else {
                0
            }
        ];
        // Image rows `held.0 .. held.1` are staged, image row `r` at staged row `r − base`.
        let (mut held, mut base) = ((0, 0), 0isize);
        for oy in (oys.0..oys.1).step_by(self.band) {
            let band = (oy, (oy + self.band).min(oys.1));
            let short;
            let sb = if band.1 - band.0 == self.band {
                &full
            } else {
                short = StagedBand::new(&g, band.1 - band.0).expect("stride 1");
                &short
            };
            // Staged row `i` holds image row `new_base + i`; the band reads `rows` of them.
            let new_base = band.0 as isize - g.ph as isize;
            let rows = band.1 - band.0 + g.kh - 1;
            let lo = new_base.max(0) as usize;
            let hi = ((new_base + rows as isize).max(0) as usize).clamp(lo, g.h.max(lo));
            // Rows the last band staged and this one reads move to the front.
            let from = if held.0 <= lo && lo < held.1 {
                let (src, dst) = (
                    (lo as isize - base) as usize,
                    (lo as isize - new_base) as usize,
                );
                let n = held.1.min(hi) - lo;
                for p in (0..g.c).map(|c| c * stride) {
                    staged.copy_within(p + src * width..p + (src + n) * width, p + dst * width);
                }
                lo + n
            } else {
                lo
            };
            // Rows outside the image read zeros.
            for i in (0..rows).filter(|&i| {
                let r = new_base + i as isize;
                r < 0 || r >= g.h as isize
            }) {
                for p in (0..g.c).map(|c| c * stride) {
                    staged[p + i * width..][..width].fill(0.0);
                }
            }
            if from < hi {
                let at = super::dense_kernel::Out {
                    at: staged
                        .as_mut_ptr()
                        .wrapping_add((from as isize - new_base) as usize * width + g.pw),
                    plane: stride,
                    row: width,
                };
                // SAFETY: the kernel runs here (the caller's); stem rows from .. hi of every
                // channel land at staged rows from − new_base .. hi − new_base (fewer than
                // the band's `rows`) of its plane, columns pw .. pw + w, inside `staged`,
                // which is this call's alone.
                unsafe { self.stem.rows_into(x, from..hi, &mut stem_buf, at) };
            }
            (held, base) = ((lo, hi), new_base);
            let cols = (band.1 - band.0) * g.ow;
            let bias = layer.bias();
            for c in 0..g.c {
                // Into `mid`'s rows of the plane, or the op's output plane's rows of the band.
                let yp = match self.project {
                    Some(_) => mid[c * plane..][..cols].as_mut_ptr(),
                    // SAFETY: the band's rows of plane c lie inside the output (the caller's).
                    None => unsafe { y.at(c * g.oh * g.ow + band.0 * g.ow) },
                };
                // SAFETY: `yp` holds `cols` values this call alone writes (`mid` is its own,
                // and the caller's contract covers `y`'s rows of the band); as
                // `MaybeUninit<f32>`, f32's layout.
                let yp = unsafe { std::slice::from_raw_parts_mut(yp.cast(), cols) };
                let wc = &layer.weights()[c * taps..][..taps];
                let b = bias.map_or(0.0, |b| b[c]);
                sb.convolve(&staged[c * stride..][..sb.plane_len()], wc, b, yp);
                if let Some(a) = self.depthwise.activation() {
                    // SAFETY: `convolve` wrote every one of these values.
                    a.apply(unsafe { &mut *(yp as *mut [_] as *mut [f32]) });
                }
            }
            if let Some(project) = &self.project {
                // SAFETY: `mid` holds the band's depthwise rows just written; the caller's
                // contract covers `y`'s rows of the band.
                unsafe {
                    project.planes_of((&mid, plane), cols, (y.at(band.0 * g.ow), g.oh * g.ow))
                };
            }
        }
    }
}

impl Op for StemDepthwise {
    fn name(&self) -> StaticName {
        "FoveaStemDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (s, c_out) = self.stem.geometry();
        Ok(vec![format!(
            "stem {s:?} → {c_out}, then {:?}, then {:?}{}; bands of {} rows",
            self.geometry(),
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

impl EvalOp for StemDepthwise {
    op_out_of_plan!();

    #[cfg(not(target_arch = "x86_64"))]
    fn eval(&self, _ctx: &EvalContext, _inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        bail!("FoveaStemDepthwise runs only where fovea's k×k kernel does (x86_64)")
    }

    #[cfg(target_arch = "x86_64")]
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let oh = self.geometry().oh;
        // SAFETY: the bands write every output row (0 .. oh, every channel) before the tensor
        // is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.output_shape())? };
        let out = SharedOut(y.as_ptr_mut::<f32>()?);
        // SAFETY: `new` checked that the kernel runs here; `y` holds the op's outputs; the runs
        // of rows are disjoint, so no two threads write the same element.
        over_runs(oh, |run| {
            unsafe { self.rows(x, run, out) };
            Ok(())
        })?;
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for StemDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let expected = self.stem.input_shape();
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&expected[..]),
            "FoveaStemDepthwise expects f32 {expected:?}, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// Puts [`StemDepthwise`] in place of every fovea k×k conv whose only reader is a fovea
/// stride-1 depthwise conv reading its planes, with the 1×1 projection after the depthwise
/// conv where it is that conv's only reader (ungated: Lite0's block 0, not B0's, whose stem is
/// read by SiLU); returns how many. Run after [`super::activation::fuse`], so the ops carry
/// their ReLU6.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(depthwise) = node.op_as::<Depthwise>() else {
            continue;
        };
        let source = node.inputs[0];
        let stem_node = model.node(source.node);
        let Some(stem) = stem_node.op_as::<DenseConv>() else {
            continue;
        };
        if only_reader(model, source)?.is_none() {
            continue;
        }
        let Some(mut op) = StemDepthwise::new(stem, depthwise) else {
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
        let mut patch = TypedModelPatch::new("fovea stem and depthwise conv");
        let x = patch.tap_model(model, stem_node.inputs[0])?;
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
    use crate::infer::dense_conv::tests::wire_dense;
    use crate::infer::depthwise::tests::{values, wire_depthwise, wire_pointwise};
    use crate::infer::pointwise::tests::{f32s, on_threads, run_tensor};
    use crate::infer::{activation, dense_conv, depthwise, pointwise};

    /// A stem 3 → `c` (3×3, stride 2, TF's "same": 0 before, 1 after) on a `1×3×h×w` input,
    /// ReLU6, a stride-1 `k×k` depthwise conv (padding `k/2` on both sides), ReLU6 and a 1×1
    /// projection to `c_proj` channels; with `shared`, the depthwise conv's output is the
    /// model's too. Decluttered as the loader does, fovea's ops placed and the ReLU6 fused;
    /// and an input for it.
    fn chain(
        c: usize,
        (h, w): (usize, usize),
        k: usize,
        c_proj: usize,
        shared: bool,
    ) -> (TypedModel, Tensor) {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 3, h, w])).unwrap();
        let s = wire_dense(&mut model, x, (3, c, h, w, 3, 2, 0, 1, true), 1);
        let s = relu6(&mut model, s, 2);
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let d = wire_depthwise(&mut model, s, (c, oh, ow, k, 1, k / 2, k / 2, true), 3);
        let d = relu6(&mut model, d, 4);
        let y = wire_pointwise(&mut model, d, c, c_proj, 6);
        let outputs = if shared { vec![d, y] } else { vec![y] };
        model.select_output_outlets(&outputs).unwrap();
        depthwise::declutter(&mut model).unwrap();
        depthwise::replace(&mut model).unwrap();
        pointwise::replace(&mut model).unwrap();
        dense_conv::replace(&mut model).unwrap();
        activation::fuse(&mut model).unwrap();
        let input = tract_ndarray::ArrayD::from_shape_vec(vec![1, 3, h, w], values(3 * h * w, 7))
            .unwrap()
            .into_tensor();
        (model, input)
    }

    /// `model`'s fused ops with bands of `rows`.
    fn with_bands(mut model: TypedModel, rows: usize) -> TypedModel {
        for node in model.nodes.iter_mut() {
            if let Some(op) = node.op_as::<StemDepthwise>() {
                node.op = Box::new(op.with_band(rows));
            }
        }
        model
    }

    /// Where fovea's k×k kernel runs (x86_64 with AVX-512 or AVX2), the stem, the depthwise
    /// conv and the projection after it become one op and its outputs equal the three ops' bit
    /// for bit; where the depthwise conv's output is read elsewhere too, the pair alone, its
    /// outputs the two ops'. 32 channels (the stem's) and 24 (a partial block of the stem's
    /// channels and of the projection's lanes), 3×3 and 5×5 depthwise kernels (one and two
    /// padding rows read as zeros at both ends), square and odd sides; the projection on the
    /// pixel lanes (16, 24 channels where AVX-512 runs) and on gemm (5); bands of 1, 2, 3, 7
    /// and all rows, on one and two threads (two runs of bands, each staging its shared rows
    /// itself). Elsewhere nothing is fused.
    #[test]
    fn equals_the_stem_then_the_depthwise_conv_bit_for_bit() {
        // (c, input side, depthwise kernel, projected to, the depthwise conv read elsewhere)
        let cases = [
            (32, (64, 64), 3, 16, false),
            (24, (37, 45), 5, 5, false),
            (32, (30, 27), 3, 24, true),
            (24, (26, 26), 5, 16, true),
        ];
        #[cfg(target_arch = "x86_64")]
        let kernel = crate::infer::dense_kernel::available();
        #[cfg(not(target_arch = "x86_64"))]
        let kernel = false;
        for (c, side, k, c_proj, shared) in cases {
            let what = format!("{c} channels, {side:?}, {k}×{k}, to {c_proj}, shared {shared}");
            let (model, input) = chain(c, side, k, c_proj, shared);
            let mut fused = model.clone();
            assert_eq!(fuse(&mut fused).unwrap(), kernel as usize, "{what}");
            if !kernel {
                continue;
            }
            let op = fused
                .nodes()
                .iter()
                .find_map(|n| n.op_as::<StemDepthwise>())
                .unwrap();
            assert_eq!(op.project.is_some(), !shared, "{what}");
            let oh = side.0.div_ceil(2);
            for threads in [1, 2] {
                let (want, names) = on_threads(threads, || run_tensor(model.clone(), &input));
                assert!(!names.iter().any(|n| n == "FoveaStemDepthwise"));
                for rows in [1, 2, 3, 7, oh] {
                    let (got, names) = on_threads(threads, || {
                        run_tensor(with_bands(fused.clone(), rows), &input)
                    });
                    assert!(names.iter().any(|n| n == "FoveaStemDepthwise"), "{what}");
                    assert_eq!(got.shape(), want.shape());
                    let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{what}, bands of {rows}, {threads} threads"
                    );
                }
            }
        }
    }
}
