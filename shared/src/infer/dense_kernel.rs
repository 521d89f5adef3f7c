//! fovea's k×k convolution ([`super::dense_conv`]) computed directly on intrinsics
//! ([`Vector`]: AVX-512's 16 lanes or AVX2's 8), band by band of output rows: the band's input
//! rows staged once, zero-padded and split into column phases at stride `sw` ([`stage`]), then
//! a block of `R` output channels × `N` vectors of output columns of one output row kept in
//! registers across every tap (`C_in·kh·kw` of them), each tap `N` loads of staged input and
//! `R` broadcast weights for `R·N` fused multiply-adds; the bias and the clamp in registers
//! before the one store into the output planes.
//!
//! Why: the unfolded input's way (`dense_conv::unfold`, then the product on gemm) writes and
//! reads back `C_in·kh·kw` values per output column (27 for EfficientNet's stem) and gemm packs
//! both operands on every call: B0's and Lite0's stem (3 → 32, 3×3, stride 2, 224 px) took
//! 386–389 µs alone and 459–521 in one-thread Lite0 runs on this AVX2 EPYC, against
//! onnxruntime's 275 in an earlier profile (`edge/examples/stem_layer.rs`, minimum of 300;
//! `node_profile`; docs/PERFORMANCE.md). Directly: 339–345 µs alone.
//!
//! The values are the unfolded way's bit for bit: each output's sum runs over the taps in
//! ONNX's kernel order (channel, row, column) from zero, one fused multiply-add each, as
//! gemm's kernels sum its `k` axis (on x86_64 and aarch64 alike, which keeps the two builds'
//! outputs equal), then the bias is added and the clamp applied (tested below against
//! `unfold` and `band_product`).
use std::ops::Range;

use crate::depthwise::{Geometry, phase_spans, stage_row};
use crate::vector::{Task, Vector, run_widest, widest_lanes};

/// Whether this CPU runs the kernel: AVX-512F, or AVX2 with FMA.
pub(super) fn available() -> bool {
    widest_lanes().is_some()
}

/// Output channels per register block, at most (each one broadcast weight a tap).
const R: usize = 6;
/// Vectors of output columns per register block, at most (each one load a tap): `R·N` = 12
/// sums, 2 inputs and a broadcast weight, 15 of AVX2's 16 registers. 4 channels × 3 vectors
/// (all 16) spilled a sum to the stack every tap: the stem 570–576 µs against 374 (`stem_layer`,
/// minimum of 300, before the even split below and the staging's stride-2 copy).
const N: usize = 2;

/// A band's staged input: `[C_in, rows, sw, width]`, as the depthwise staging lays out a plane
/// (`crate::depthwise::phase_spans`): value `(c, r, p, q)` the zero-padded input
/// `x[c, oys.start·sh + r − ph, q·sw + p − pw]` (0 outside the image), `width` covering whole
/// vectors of output columns plus the taps' reach, so that every block's loads lie inside.
struct Staged<'a> {
    buf: &'a [f32],
    rows: usize,
    width: usize,
}

/// Stages the input rows that output rows `oys` read into `buf` (cleared first) for vectors of
/// `lanes`, row by row with the depthwise staging's copy (`crate::depthwise::stage_row`);
/// returns the layout.
fn stage<'a>(
    x: &[f32],
    g: &Geometry,
    oys: &Range<usize>,
    lanes: usize,
    buf: &'a mut Vec<f32>,
) -> Staged<'a> {
    let rows = (oys.len() - 1) * g.sh + g.kh;
    let width = g.ow.div_ceil(lanes) * lanes + (g.kw - 1) / g.sw;
    let spans = phase_spans(g, width);
    let staged_row = g.sw * width;
    buf.clear();
    buf.resize(g.c * rows * staged_row, 0.0);
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        for r in 0..rows {
            let iy = (oys.start * g.sh + r).wrapping_sub(g.ph);
            if iy < g.h {
                let dst = &mut buf[(c * rows + r) * staged_row..][..staged_row];
                stage_row(&plane[iy * g.w..][..g.w], &spans, g.sw, dst);
            }
        }
    }
    Staged {
        buf: &buf[..],
        rows,
        width,
    }
}

/// The layer's constants: `weights` `[C_out, C_in·kh·kw]` (ONNX's OIHW kernel, flattened),
/// `bias` `[C_out]`, and whether the outputs are clamped to `[0, 6]`.
#[derive(Clone, Copy)]
pub(super) struct Layer<'a> {
    /// The unfolding (`geo.c` is `C_in`).
    pub geo: &'a Geometry,
    /// `[C_out, C_in·kh·kw]`.
    pub weights: &'a [f32],
    /// `[C_out]`.
    pub bias: &'a [f32],
    /// ReLU6 after the bias.
    pub relu6: bool,
}

/// Where [`band`] writes: output `o` of row `oy`, column `ox` at `at + o·plane + (oy −
/// oys.start)·row + ox` (the layer's planes: `plane = oh·ow`, `row = ow`, `at` at row
/// `oys.start`; `infer::stem_depthwise` writes into the depthwise plane path's staged rows).
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub at: *mut f32,
    /// Values between two output channels' rows.
    pub plane: usize,
    /// Values between two consecutive output rows of a channel.
    pub row: usize,
}

/// Output rows `oys` of every output plane of `layer` from the input planes `x` (CHW), on the
/// calling thread, written at `out` ([`Out`]); `buf` holds the band's staged input between
/// calls.
///
/// # Safety
/// [`available`]; `out` valid for those writes, which no other thread touches meanwhile.
///
/// # Panics
/// If `x`, the weights or the bias do not have the layer's sizes, or `oys` is empty or runs
/// past the output.
pub(super) unsafe fn band(
    x: &[f32],
    layer: Layer,
    oys: Range<usize>,
    buf: &mut Vec<f32>,
    out: Out,
) {
    let g = layer.geo;
    let taps = g.c * g.kh * g.kw;
    let c_out = layer.bias.len();
    assert!(
        x.len() == g.c * g.h * g.w
            && layer.weights.len() == c_out * taps
            && !oys.is_empty()
            && oys.end <= g.oh
            && g.ow > 0
            && g.sw > 0
            && out.row >= g.ow,
        "dense kernel: sizes {g:?}, rows {oys:?}, {c_out} output channels"
    );
    let lanes = widest_lanes().expect("dense kernel: no vector on this CPU");
    let staged = stage(x, g, &oys, lanes, buf);
    let rows = Rows {
        staged,
        layer,
        oys,
        out,
    };
    // SAFETY: the vector is available (the caller's, and `lanes` above); `rows` as checked
    // above.
    unsafe { run_widest(rows) }
}

/// [`band`]'s staged input and arguments, run with a vector's target features.
struct Rows<'a> {
    staged: Staged<'a>,
    layer: Layer<'a>,
    oys: Range<usize>,
    out: Out,
}

impl Task for Rows<'_> {
    type Output = ();

    /// # Safety
    /// `V` runs; `out` as [`band`]'s caller gives it.
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let Rows {
            staged,
            layer,
            oys,
            out,
        } = self;
        let g = layer.geo;
        let c_out = layer.bias.len();
        let vectors = g.ow.div_ceil(V::LANES);
        // Each tap's staged value for an output's first row and column, in ONNX's kernel order,
        // computed once: with a division per tap in the block's loop the stem took 654 µs.
        let (rows, width) = (staged.rows, staged.width);
        let offsets: Vec<usize> = (0..g.c)
            .flat_map(|c| (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| (c, ky, kx))))
            .map(|(c, ky, kx)| ((c * rows + ky) * g.sw + kx % g.sw) * width + kx / g.sw)
            .collect();
        for oy in oys.clone() {
            let at = Block {
                staged: &staged,
                offsets: &offsets,
                layer,
                row: (oy - oys.start) * g.sh,
                out: Out {
                    at: out.at.wrapping_add((oy - oys.start) * out.row),
                    ..out
                },
            };
            // Blocks of channels split evenly: 32 as 6, 6, 5, 5, 5, 5 (10 sums or more in each
            // block), not five of 6 and one of 2, whose four sums wait on each other's latency.
            let blocks = c_out.div_ceil(R);
            for b in 0..blocks {
                let o0 = b * (c_out / blocks) + b.min(c_out % blocks);
                let r = c_out / blocks + usize::from(b < c_out % blocks);
                for v0 in (0..vectors).step_by(N) {
                    let n = (vectors - v0).min(N);
                    // SAFETY (each arm): the caller's; channels o0 .. o0 + r and vectors
                    // v0 .. v0 + n lie inside the layer's.
                    unsafe {
                        match (r, n) {
                            (6, 2) => at.block::<V, 6, 2>(o0, v0),
                            (6, _) => at.block::<V, 6, 1>(o0, v0),
                            (5, 2) => at.block::<V, 5, 2>(o0, v0),
                            (5, _) => at.block::<V, 5, 1>(o0, v0),
                            (4, 2) => at.block::<V, 4, 2>(o0, v0),
                            (4, _) => at.block::<V, 4, 1>(o0, v0),
                            (3, 2) => at.block::<V, 3, 2>(o0, v0),
                            (3, _) => at.block::<V, 3, 1>(o0, v0),
                            (2, 2) => at.block::<V, 2, 2>(o0, v0),
                            (2, _) => at.block::<V, 2, 1>(o0, v0),
                            (_, 2) => at.block::<V, 1, 2>(o0, v0),
                            (_, _) => at.block::<V, 1, 1>(o0, v0),
                        }
                    }
                }
            }
        }
    }
}

/// One output row's blocks: its first staged row (`row`, of the band's) and where its output
/// row starts in channel 0 (`out.at`).
struct Block<'a> {
    staged: &'a Staged<'a>,
    /// Each tap's staged value for the band's first output row and column.
    offsets: &'a [usize],
    layer: Layer<'a>,
    row: usize,
    out: Out,
}

impl Block<'_> {
    /// Output channels `o0 .. o0 + RB` of output columns `LANES·v0 ..` (`NB` vectors, the last
    /// one masked at the row's end): `RB·NB` sums from zero, one fused multiply-add per tap in
    /// ONNX's kernel order, then the bias and the clamp, stored once.
    ///
    /// # Safety
    /// `V` runs; `o0 + RB ≤ C_out`, `v0 + NB` vectors cover no more than the row's; `out` as
    /// [`band`]'s caller gives it.
    #[inline(always)]
    unsafe fn block<V: Vector, const RB: usize, const NB: usize>(&self, o0: usize, v0: usize) {
        let Layer {
            geo: g,
            weights,
            bias,
            relu6,
        } = self.layer;
        let (rows, width) = (self.staged.rows, self.staged.width);
        let taps = g.c * g.kh * g.kw;
        let col = v0 * V::LANES;
        // The furthest staged value a load reads: the last channel's, the block's last row
        // (`row + kh − 1`), its last phase and column (`col + NB·LANES + (kw − 1)/sw`).
        assert!(
            (((g.c - 1) * rows + self.row + g.kh - 1) * g.sw + g.sw - 1) * width
                + col
                + NB * V::LANES
                + (g.kw - 1) / g.sw
                <= self.staged.buf.len()
                && col + NB * V::LANES <= width,
            "dense kernel: block outside the staged rows"
        );
        // SAFETY: every load lies inside the staged rows (asserted), every weight inside
        // `weights` (o0 + RB ≤ C_out, t < taps) and bias; the stores are the output's row,
        // columns below `ow`, which the caller gives.
        unsafe {
            let mut acc = [[V::zero(); NB]; RB];
            let w = weights.as_ptr().add(o0 * taps);
            let origin = self.staged.buf.as_ptr().add(self.row * g.sw * width + col);
            for (t, &offset) in self.offsets.iter().enumerate() {
                let src = origin.add(offset);
                let xs: [V; NB] = std::array::from_fn(|v| V::load(src.add(v * V::LANES)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let wv = V::splat(*w.add(r * taps + t));
                    for (a, &xv) in acc.iter_mut().zip(&xs) {
                        *a = wv.mul_add(xv, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let b = V::splat(bias[o0 + r]);
                let dst = self.out.at.add((o0 + r) * self.out.plane + col);
                for (v, &a) in acc.iter().enumerate() {
                    let mut a = a.add(b);
                    if relu6 {
                        a = a.relu6();
                    }
                    let left = g.ow - col - v * V::LANES;
                    if left >= V::LANES {
                        a.store(dst.add(v * V::LANES));
                    } else {
                        a.store_masked(dst.add(v * V::LANES), V::mask(left));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;
    use crate::infer::activation::Activation;
    use crate::infer::dense_conv::unfold;
    use crate::infer::depthwise::tests::values;
    use crate::infer::pointwise::{Dims, band_product};

    /// `(C_in, C_out, h, w, kh, kw, stride, padding before (rows, columns))`.
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        (usize, usize),
    );

    /// The geometry of `case` (output sides from the padding after = before, or TF's "same"
    /// for the stem's first case).
    fn geometry((c, _, h, w, kh, kw, s, (ph, pw)): Case, after: (usize, usize)) -> Geometry {
        Geometry {
            n: 1,
            c,
            h,
            w,
            kh,
            kw,
            oh: (h + ph + after.0 - kh) / s + 1,
            ow: (w + pw + after.1 - kw) / s + 1,
            sh: s,
            sw: s,
            ph,
            pw,
        }
    }

    /// The kernel's output planes equal the unfolded input's product on gemm (`unfold`, then
    /// `band_product`, the op's other way) bit for bit, band by band, with and without ReLU6:
    /// the stem at 224 px (3 → 32, 3×3, stride 2, 0 before and 1 after), channels not a
    /// multiple of the block's 4 and columns not of the lanes (a 5×5 at stride 1 on 37 columns,
    /// 4 → 7), a 3×2 kernel at stride 3 with padding on both sides (the phases' reach), one
    /// column (bands of 4: a band of one output, `n = 1`, gemm sums as a matrix-vector product,
    /// in another order). A tap read from the wrong row, column, phase or channel, a sum in
    /// another order, or a store past the row (into the next row's outputs) fails it.
    #[test]
    fn equals_the_unfolded_product_bit_for_bit() {
        if !available() {
            eprintln!("SKIPPED: dense kernel: this CPU has neither AVX-512F nor AVX2 with FMA");
            return;
        }
        let cases: [(Case, (usize, usize), usize); 5] = [
            ((3, 32, 224, 224, 3, 3, 2, (0, 0)), (1, 1), 13),
            ((4, 7, 19, 37, 5, 5, 1, (2, 2)), (2, 2), 4),
            ((2, 5, 17, 23, 3, 2, 3, (1, 1)), (1, 1), 2),
            ((3, 9, 12, 1, 3, 3, 1, (1, 1)), (1, 1), 4),
            ((1, 4, 9, 30, 3, 3, 2, (1, 1)), (1, 1), 3),
        ];
        for (i, (case, after, band_rows)) in cases.into_iter().enumerate() {
            let g = geometry(case, after);
            let c_out = case.1;
            let taps = g.c * g.kh * g.kw;
            let seed = 40 + 3 * i as u32;
            let x = values(g.c * g.h * g.w, seed);
            let weights = values(c_out * taps, seed + 1);
            let bias = values(c_out, seed + 2);
            let plane = g.oh * g.ow;
            for relu6 in [false, true] {
                let layer = Layer {
                    geo: &g,
                    weights: &weights,
                    bias: &bias,
                    relu6,
                };
                let (mut kernel, mut reference) = (vec![f32::NAN; c_out * plane], vec![0.0; 0]);
                reference.resize(c_out * plane, f32::NAN);
                let mut buf = Vec::new();
                for start in (0..g.oh).step_by(band_rows) {
                    let oys = start..(start + band_rows).min(g.oh);
                    // SAFETY: the CPU runs the kernel (checked above); the band writes its rows
                    // of the `c_out` planes of `kernel`.
                    unsafe {
                        let out = Out {
                            at: kernel.as_mut_ptr().add(oys.start * g.ow),
                            plane,
                            row: g.ow,
                        };
                        band(&x, layer, oys.clone(), &mut buf, out);
                    }
                    let cols = oys.len() * g.ow;
                    let mut unfolded = vec![MaybeUninit::new(0.0f32); taps * cols];
                    unfold(&x, &g, oys.clone(), &mut unfolded);
                    let unfolded: Vec<f32> = unfolded
                        .iter()
                        .map(|v| unsafe { v.assume_init() })
                        .collect();
                    let d = Dims {
                        c_in: taps,
                        c_out,
                        hw: cols,
                    };
                    // SAFETY: the band's columns of each of the c_out planes lie inside
                    // `reference`.
                    unsafe {
                        band_product(
                            &unfolded,
                            &weights,
                            Some(&bias),
                            relu6.then_some(Activation::Relu6),
                            d,
                            reference.as_mut_ptr().add(oys.start * g.ow),
                            plane,
                        )
                    };
                }
                for (j, (k, r)) in kernel.iter().zip(&reference).enumerate() {
                    assert_eq!(
                        k.to_bits(),
                        r.to_bits(),
                        "case {i}, relu6 {relu6}: output {j} (channel {}, row {}, column {}): \
                         {k} against {r}",
                        j / plane,
                        j % plane / g.ow,
                        j % g.ow
                    );
                }
            }
        }
    }
}
