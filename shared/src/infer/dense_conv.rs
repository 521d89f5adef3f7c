//! fovea's k×k convolution (group 1) inside tract — EfficientNet's stem, 3→32 channels, 3×3,
//! stride 2 — and [`replace`], the model patch that puts it in place of tract's `Conv` node:
//! band by band of output rows, the band's input unfolded into a `C_in·kh·kw × rows·ow`
//! matrix (im2col), then the product of the `C_out × C_in·kh·kw` weights with it on gemm, as
//! fovea's 1×1 convs ([`super::pointwise`]). A band's unfolded input and output (256 KiB) stay
//! in L2 between the two; unfolding the whole input first (1.35 MB for B0's stem at 224 px)
//! made the op 0.67–0.89 ms in one-thread B0 and Lite0 runs (0.34 ms alone, `stem_layer`); in
//! bands 0.58–0.69 ms (docs/PERFORMANCE.md). Where AVX-512 or AVX2 runs, each band is computed
//! directly instead (`dense_kernel.rs`: the band's input rows staged, a block of output
//! channels × columns in registers across the taps; the stem alone 386–389 → 339–345 µs,
//! `stem_layer`, same values bit for bit); elsewhere (the boards' aarch64) it is unfolded.
//!
//! Why: tract 0.23.9 runs the stem as its own im2col and matrix product, 0.83 ms of a 15.2 ms
//! B0 run at 224 px on one thread, against onnxruntime's 0.30 ms for the same conv
//! (`edge/examples/node_profile.rs` beside onnxruntime's profiler, docs/PERFORMANCE.md).
//!
//! The values are a matrix product's, not tract's bit for bit: each output is the bias plus a
//! sum of `C_in·kh·kw` products, associated as gemm does (tested below within a bound from the
//! sum's magnitude, as tract's own outputs). Threads follow tract's executor, as the 1×1 op.
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

use crate::depthwise::Geometry;
use rayon::prelude::*;
use tract_core::internal::*;
use tract_core::ops::cnn::Conv;
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::activation::Activation;
use super::conv_patch::{ConvParts, replace_convs};
use super::pointwise::{Dims, band_product};
use crate::shared_out::SharedOut;

/// A k×k convolution with constant weights and bias, group 1, dilation 1, NCHW at batch 1 or
/// CHW.
#[derive(Debug, Clone)]
pub struct DenseConv {
    /// The unfolding: `geo.c` is `C_in` (each input plane is read under every tap, as a
    /// depthwise conv reads its own), `n` is 1.
    geo: Geometry,
    /// Whether the tensors carry the batch axis (NCHW) or not (CHW).
    batched: bool,
    c_out: usize,
    /// `[C_out, C_in·kh·kw]`, row-major (ONNX's OIHW kernel, flattened).
    weights: Arc<[f32]>,
    /// `[C_out]`.
    bias: Arc<[f32]>,
    /// Applied to the outputs after the bias ([`super::activation::fuse`]).
    activation: Option<Activation>,
}

impl PartialEq for DenseConv {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.geo == other.geo
            && self.batched == other.batched
            && self.c_out == other.c_out
            && bits(&self.weights) == bits(&other.weights)
            && bits(&self.bias) == bits(&other.bias)
            && self.activation == other.activation
    }
}

impl Eq for DenseConv {}

impl DenseConv {
    /// This op with `activation` applied to its outputs.
    pub fn with_activation(&self, activation: Activation) -> Self {
        DenseConv {
            activation: Some(activation),
            ..self.clone()
        }
    }

    /// The unfolding (`geo.c` is `C_in`) and the output channels.
    pub(super) fn geometry(&self) -> (&Geometry, usize) {
        (&self.geo, self.c_out)
    }

    /// The input's shape.
    pub(super) fn input_shape(&self) -> Vec<usize> {
        self.shape(self.geo.c, self.geo.h, self.geo.w)
    }

    /// Output rows `oys` of every output channel, written at `out` by `dense_kernel.rs`, on
    /// the calling thread; `buf` holds the band's staged input between calls.
    ///
    /// # Safety
    /// As `dense_kernel::band`'s: the kernel runs on this CPU (`dense_kernel::available`) and
    /// `out` is valid for those writes, which no other thread touches meanwhile.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn rows_into(
        &self,
        x: &[f32],
        oys: Range<usize>,
        buf: &mut Vec<f32>,
        out: super::dense_kernel::Out,
    ) {
        let layer = super::dense_kernel::Layer {
            geo: &self.geo,
            weights: &self.weights,
            bias: &self.bias,
            relu6: match self.activation {
                Some(Activation::Relu6) => true,
                None => false,
            },
        };
        // SAFETY: the caller's.
        unsafe { super::dense_kernel::band(x, layer, oys, buf, out) }
    }

    /// The input's (`c`, `h`, `w`) or output's shape.
    fn shape(&self, c: usize, h: usize, w: usize) -> Vec<usize> {
        if self.batched {
            vec![1, c, h, w]
        } else {
            vec![c, h, w]
        }
    }

    /// Rows of the unfolded input: `C_in·kh·kw`.
    fn taps(&self) -> usize {
        self.geo.c * self.geo.kh * self.geo.kw
    }
}

impl Op for DenseConv {
    fn name(&self) -> StaticName {
        "FoveaDenseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?} → {} channels, then {:?}",
            self.geo, self.c_out, self.activation
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DenseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let g = &self.geo;
        let hw = g.oh * g.ow;
        // SAFETY: every band writes its rows of every output plane before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.shape(self.c_out, g.oh, g.ow))? };
        if y.len() == 0 {
            return Ok(tvec!(y.into_tvalue()));
        }
        // SAFETY: the tensor holds c_out·oh·ow f32s in one plain allocation, which the bands
        // write through this pointer (as `MaybeUninit`, before anything reads them).
        let out = SharedOut(unsafe { y.as_ptr_mut_unchecked::<f32>() });
        let threads = match current_tract_executor() {
            Executor::MultiThread(pool) => pool.current_num_threads().max(1),
            _ => 1,
        };
        let rows = band_rows(self.taps() + self.c_out, g.ow, g.oh, threads);
        let band = |b: usize| {
            let oy = b * rows..((b + 1) * rows).min(g.oh);
            let cols = oy.len() * g.ow;
            #[cfg(target_arch = "x86_64")]
            if super::dense_kernel::available() {
                // SAFETY: the CPU runs the kernel (checked); the band writes its rows of each
                // of the c_out planes of `y`, which no other band writes.
                return SCRATCH.with(|s| unsafe {
                    let at = super::dense_kernel::Out {
                        at: out.at(oy.start * g.ow),
                        plane: hw,
                        row: g.ow,
                    };
                    self.rows_into(x, oy, &mut s.borrow_mut(), at)
                });
            }
            SCRATCH.with(|s| {
                let mut buf = s.borrow_mut();
                buf.clear();
                buf.reserve(self.taps() * cols);
                unfold(
                    x,
                    g,
                    oy.clone(),
                    &mut buf.spare_capacity_mut()[..self.taps() * cols],
                );
                // SAFETY: `unfold` wrote every one of these elements.
                unsafe { buf.set_len(self.taps() * cols) };
                let d = Dims {
                    c_in: self.taps(),
                    c_out: self.c_out,
                    hw: cols,
                };
                // SAFETY: the band's output columns oy.start·ow .. + cols of each of the
                // c_out planes (stride hw) lie inside `y`, and no other band writes them.
                unsafe {
                    band_product(
                        &buf,
                        &self.weights,
                        Some(&self.bias),
                        self.activation,
                        d,
                        out.at(oy.start * g.ow),
                        hw,
                    )
                };
            });
        };
        let bands = g.oh.div_ceil(rows);
        match current_tract_executor() {
            Executor::MultiThread(pool) if threads > 1 => {
                pool.install(|| (0..bands).into_par_iter().for_each(band))
            }
            _ => (0..bands).for_each(band),
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

/// Values (unfolded input and output) a band holds: 64 Ki f32 (256 KiB), so both stay in L2
/// between the unfolding and the product.
const BAND_VALUES: usize = 1 << 16;

/// Output rows per band: as many as keep `per_column` values a column within
/// [`BAND_VALUES`], then evened out so the bands are a multiple of `threads` (at least one
/// row).
fn band_rows(per_column: usize, ow: usize, oh: usize, threads: usize) -> usize {
    let rows = (BAND_VALUES / (per_column * ow).max(1)).clamp(1, oh.max(1));
    let bands = oh.div_ceil(rows).div_ceil(threads) * threads;
    oh.div_ceil(bands).max(1)
}

impl TypedOp for DenseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let g = &self.geo;
        let expected = self.shape(g.c, g.h, g.w);
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&expected[..]),
            "FoveaDenseConv expects f32 {expected:?}, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(self.shape(self.c_out, g.oh, g.ow))))
    }

    as_op!();
}

thread_local! {
    /// A band's unfolded input, kept between bands and inferences by each thread that runs
    /// them (27 × 1008 values for B0's stem at 224 px).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Writes the unfolded input of output rows `oys` into `cols` (`C_in·kh·kw` rows of
/// `oys.len()·ow`): row `(c·kh + ky)·kw + kx`, column `(oy − oys.start)·ow + ox` holds
/// `x[c, oy·sh + ky − ph, ox·sw + kx − pw]`, 0 outside the image. Every element is written.
pub fn unfold(x: &[f32], g: &Geometry, oys: Range<usize>, cols: &mut [MaybeUninit<f32>]) {
    let hw = oys.len() * g.ow;
    assert!(
        x.len() == g.c * g.h * g.w
            && cols.len() == g.c * g.kh * g.kw * hw
            && hw > 0
            && oys.end <= g.oh,
        "unfold: sizes {g:?}, rows {oys:?}"
    );
    let row = |(r, dst): (usize, &mut [MaybeUninit<f32>])| {
        let (c, ky, kx) = (r / (g.kh * g.kw), r / g.kw % g.kh, r % g.kw);
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        // Output columns whose input column lies inside the image: ox·sw + kx − pw ∈ [0, w).
        let lo = g.pw.saturating_sub(kx).div_ceil(g.sw).min(g.ow);
        let hi = (g.w + g.pw)
            .saturating_sub(kx)
            .div_ceil(g.sw)
            .clamp(lo, g.ow);
        for (oy, out) in oys.clone().zip(dst.chunks_exact_mut(g.ow)) {
            let iy = (oy * g.sh + ky).wrapping_sub(g.ph);
            if iy >= g.h {
                out.fill(MaybeUninit::new(0.0));
                continue;
            }
            let src = &plane[iy * g.w..][..g.w];
            out[..lo].fill(MaybeUninit::new(0.0));
            out[hi..].fill(MaybeUninit::new(0.0));
            if lo == hi {
                continue;
            }
            let first = lo * g.sw + kx - g.pw;
            let inside = &mut out[lo..hi];
            if g.sw == 1 {
                for (o, &v) in inside.iter_mut().zip(&src[first..]) {
                    o.write(v);
                }
            } else {
                // Whole strides of the source (the last one may be cut at the row's end): an
                // exact chunking LLVM turns into vector shuffles, where `step_by` stayed scalar.
                let n = inside.len();
                let (whole, last) = if first + n * g.sw <= g.w {
                    (n, None)
                } else {
                    (n - 1, Some(src[first + (n - 1) * g.sw]))
                };
                let strided = &src[first..first + whole * g.sw];
                if g.sw == 2 {
                    for (o, s) in inside.iter_mut().zip(strided.chunks_exact(2)) {
                        o.write(s[0]);
                    }
                } else {
                    for (o, s) in inside.iter_mut().zip(strided.chunks_exact(g.sw)) {
                        o.write(s[0]);
                    }
                }
                if let Some(v) = last {
                    inside[n - 1].write(v);
                }
            }
        }
    };
    cols.chunks_mut(hw).enumerate().for_each(row);
}

/// Replaces every k×k (k > 1 on either axis) group-1 convolution of the decluttered `model`
/// that [`DenseConv`] covers, with at most as many output channels as output pixels (the
/// rule of the 1×1 op: gemm packs the weights on every call), with it; returns how many.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    replace_convs(model, covered)
}

/// The [`DenseConv`] equal to `conv` at `node`, if it covers it.
fn covered(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<DenseConv>> {
    let Some(parts) = ConvParts::of(model, node, conv)? else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let (c_in, c_out) = (conv.input_channels(), conv.output_channels());
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    let chw = parts.chw;
    if conv.group != 1
        || kh * kw < 2
        || parts.n != 1
        || chw[0] != c_in
        || parts.kernel.shape() != [c_out, c_in, kh, kw]
    {
        return Ok(None);
    }
    let pads = spec.computed_padding(&chw[1..]);
    let (oh, ow) = (pads[0].convoluted, pads[1].convoluted);
    if c_out == 0 || c_out > oh * ow {
        return Ok(None);
    }
    let Some(bias) = parts.bias_per_channel(c_out)? else {
        return Ok(None);
    };
    Ok(Some(DenseConv {
        batched: parts.batched,
        geo: Geometry {
            n: 1,
            c: c_in,
            h: chw[1],
            w: chw[2],
            kh,
            kw,
            oh,
            ow,
            sh: spec.stride(0),
            sw: spec.stride(1),
            ph: pads[0].pad_before,
            pw: pads[1].pad_before,
        },
        c_out,
        weights: parts.kernel.try_as_plain_ram()?.as_slice::<f32>()?.into(),
        bias: bias.into(),
        activation: None,
    }))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::infer::depthwise::tests::{ConvShape, values, wire_conv};
    use crate::infer::pointwise::tests::{assert_within_sum_rounding, on_threads, run};

    /// One k×k conv: `(C_in, C_out, h, w, k, stride, padding before, after, batched)`.
    pub(in crate::infer) type Case = (usize, usize, usize, usize, usize, usize, usize, usize, bool);

    /// Wires tract's group-1 `Conv` of `case` on `x` in `model` (weights and bias from `seed`);
    /// returns its output.
    pub(in crate::infer) fn wire_dense(
        model: &mut TypedModel,
        x: OutletId,
        case: Case,
        seed: u32,
    ) -> OutletId {
        let (c_in, c_out, _, _, k, stride, before, after, batched) = case;
        let shape = ConvShape {
            c_in,
            c_out,
            group: 1,
            k,
            stride,
            pads: (before, after),
            batched,
        };
        wire_conv(model, x, shape, &format!("dc{seed}"), seed)
    }

    // EfficientNet's stem (3→32, 3×3, stride 2, TF "same": 0 before, 1 after) on a plane of
    // four bands (64×64 outputs: 17 rows a band at 27 + 32 values a column, evened to 16) and
    // of one (two at two threads);
    // symmetric padding on odd, non-square sides; a 5×5 at stride 1; a "valid" stride-2 conv
    // whose last input row and column no output reads; without and with the batch axis.
    const CASES: [Case; 5] = [
        (3, 32, 128, 128, 3, 2, 0, 1, true),
        (3, 16, 17, 23, 3, 2, 1, 1, false),
        (4, 8, 9, 12, 5, 1, 2, 2, true),
        (2, 6, 8, 11, 3, 2, 0, 0, false),
        (3, 32, 30, 30, 3, 2, 0, 1, false),
    ];

    /// Each output is the convolution by its definition (f64) within the rounding of an f32
    /// sum of `C_in·k² + 1` terms, `(C_in·k² + 2)·ε·(|b| + Σ|w·x|)`; so are tract's own
    /// outputs (a tap read from the wrong row, column or channel, or a dropped padding zero
    /// that reads a neighbour instead, is off by far more). One thread and two.
    #[test]
    fn equals_the_convolution_within_the_rounding_of_its_sum() {
        for (i, case) in CASES.into_iter().enumerate() {
            let (ci, co, h, w, k, s, before, _, batched) = case;
            let shape = if batched {
                vec![1, ci, h, w]
            } else {
                vec![ci, h, w]
            };
            let seed = 20 * i as u32;
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact(&shape)).unwrap();
            let y = wire_dense(&mut model, x, case, seed);
            model.select_output_outlets(&[y]).unwrap();
            let decluttered = model.into_decluttered().unwrap();
            let xs = values(ci * h * w, seed + 7);
            let input = tract_ndarray::ArrayD::from_shape_vec(shape, xs.clone())
                .unwrap()
                .into_tensor();
            let (weights, bias) = (values(co * ci * k * k, seed), values(co, seed + 1));
            let oshape = decluttered
                .outlet_fact(decluttered.outputs[0])
                .unwrap()
                .shape
                .as_concrete()
                .unwrap()
                .to_vec();
            let (oh, ow) = (oshape[oshape.len() - 2], oshape[oshape.len() - 1]);
            for threads in [1, 2] {
                let what = format!("{case:?}, {threads} threads");
                let mut patched = decluttered.clone();
                assert_eq!(replace(&mut patched).unwrap(), 1, "{what}");
                let ((tract, _), (ours, names)) = on_threads(threads, || {
                    (run(decluttered.clone(), &input), run(patched, &input))
                });
                assert!(
                    names.iter().any(|n| n == "FoveaDenseConv"),
                    "{what}: {names:?}"
                );
                assert!(!names.iter().any(|n| n == "Im2col"), "{what}: {names:?}");
                assert_eq!(ours.len(), co * oh * ow, "{what}");
                for o in 0..co {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut terms = Vec::new();
                            for c in 0..ci {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let (iy, ix) = (
                                            (oy * s + ky) as isize - before as isize,
                                            (ox * s + kx) as isize - before as isize,
                                        );
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        let wv = weights[((o * ci + c) * k + ky) * k + kx];
                                        let xv = xs[(c * h + iy as usize) * w + ix as usize];
                                        terms.push(wv as f64 * xv as f64);
                                    }
                                }
                            }
                            let at = (o * oh + oy) * ow + ox;
                            let got = [("fovea", ours[at]), ("tract", tract[at])];
                            let what = format!("{what}: y[{o}, {oy}, {ox}]");
                            assert_within_sum_rounding(&what, got, bias[o], &terms);
                        }
                    }
                }
            }
        }
    }

    /// Depthwise convs (group = channels) and convs with more output channels than output
    /// pixels stay out; a 1×1 `Conv` is not this op's either (tract's declutter makes it a
    /// product, [`super::super::pointwise`]).
    #[test]
    fn only_dense_convs_with_few_channels_are_taken() {
        let taken = |case: Case| {
            let (ci, _, h, w, ..) = case;
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact([1, ci, h, w])).unwrap();
            let y = wire_dense(&mut model, x, case, 1);
            model.select_output_outlets(&[y]).unwrap();
            replace(&mut model).unwrap()
        };
        assert_eq!(
            taken((3, 16, 8, 8, 3, 2, 0, 1, true)),
            1,
            "16 channels on 4×4"
        );
        assert_eq!(
            taken((3, 17, 8, 8, 3, 2, 0, 1, true)),
            0,
            "17 channels on 4×4"
        );
        assert_eq!(taken((3, 8, 8, 8, 1, 1, 0, 0, true)), 0, "1×1");
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 8, 9, 9])).unwrap();
        let y = crate::infer::depthwise::tests::wire_depthwise(
            &mut model,
            x,
            (8, 9, 9, 3, 1, 1, 1, true),
            2,
        );
        model.select_output_outlets(&[y]).unwrap();
        assert_eq!(replace(&mut model).unwrap(), 0, "depthwise");
    }
}
