//! The square 3×3 and 5×5 kernels at strides 1 and 2 on intrinsics, one register of channels
//! ([`Vector`]: 16 lanes of AVX-512 or 8 of AVX2) by up to 8 output columns, each input vector
//! of a kernel row loaded once for all the columns and taps that read it.
//!
//! The layer's slices, output and channel range reach [`block`] one argument at a time: bundled
//! in a struct passed by value they ran slower (`cargo bench -p fovea-shared --bench
//! depthwise`, two alternating rounds: channels-last 1.25 / 1.25 → 1.43 / 1.47 ms, planes out
//! 1.53 / 1.47 → 1.60 / 1.62); [`Span`] only carries them to [`blocks`], which unpacks them.
use super::{Geometry, Output, Span, weight_at};
use crate::channel_blocks::BLOCK;
use crate::vector::{Task, Vector};

/// Whether [`image()`] runs `geo`: a square 3×3 or 5×5 kernel at the same stride 1 or 2 on both
/// axes.
pub(super) fn covers(geo: &Geometry) -> bool {
    geo.kh == geo.kw && matches!(geo.kh, 3 | 5) && geo.sh == geo.sw && matches!(geo.sh, 1 | 2)
}

/// The span's outputs on `V`: a layer [`covers`] takes, `chans.0` a multiple of 16 and
/// `chans.1` one too or `c`.
///
/// # Safety
/// As [`super::Kernel`]'s.
///
/// # Panics
/// If `V` does not run on this CPU, [`covers`] does not hold, or the ranges are not inside the
/// layer.
pub(super) unsafe fn image<V: Vector>(span: &Span) {
    let (g, chans, oys) = (span.g, span.chans, span.oys);
    assert!(covers(g) && V::available());
    assert!(chans.0.is_multiple_of(16) && chans.0 < chans.1 && chans.1 <= g.c);
    assert!(oys.0 <= oys.1 && oys.1 <= g.oh);
    // SAFETY: `V` runs here (asserted); the rest is the caller's.
    unsafe {
        match (g.kh, g.sh) {
            (3, 1) => V::run(Rows::<3, 1>(span)),
            (3, 2) => V::run(Rows::<3, 2>(span)),
            (5, 1) => V::run(Rows::<5, 1>(span)),
            _ => V::run(Rows::<5, 2>(span)),
        }
    }
}

/// [`rows`] of a `K×K` kernel at stride `S`, run with a vector's target features.
struct Rows<'a, const K: usize, const S: usize>(&'a Span<'a>);

impl<const K: usize, const S: usize> Task for Rows<'_, K, S> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY: the caller's (`image`'s contract, `V` available).
        unsafe { rows::<V, K, S>(self.0) }
    }
}

/// Every output row in blocks of 8 columns, the last block overlapping the one before where 8
/// does not divide the row (its shared outputs are computed twice, to the same values); a row
/// of fewer than 8 columns is one block of its width. Inlined into [`Vector::run`], which
/// enables the vector's target features.
///
/// With 16 registers, not 32 (AVX2), the 5×5 and stride-2 kernels take blocks of 4 columns
/// (a kernel row's inputs 8 to 11 vectors, not 12 to 19); the 3×3 stride-1 kernels keep 8.
/// `cargo bench -p fovea-shared --bench depthwise`, AVX2 EPYC, B0's layers channels-last in,
/// planes out (the NCHW path 3.53–3.66 ms in the same runs): 8 columns everywhere, 144 × 56²
/// 5×5 stride 2 took 353 µs and 240 × 28² 5×5 369; 4 columns for 5×5 and stride 2, 2.36 ms in
/// all (those two layers 191–194 and 253–258 µs); 4 columns everywhere 2.50 ms (3×3 stride 1,
/// 144 × 56²: 280 → 328 µs).
///
/// # Safety
/// `V`'s instructions run here; the rest as [`image()`]'s.
#[inline(always)]
unsafe fn rows<V: Vector, const K: usize, const S: usize>(span: &Span) {
    // SAFETY (each call): the caller's.
    unsafe {
        match span.g.ow {
            8.. if V::REGISTERS < 32 && (K == 5 || S == 2) => blocks::<V, K, S, 4>(span),
            8.. => blocks::<V, K, S, 8>(span),
            7 => blocks::<V, K, S, 7>(span),
            6 => blocks::<V, K, S, 6>(span),
            5 => blocks::<V, K, S, 5>(span),
            4 => blocks::<V, K, S, 4>(span),
            3 => blocks::<V, K, S, 3>(span),
            2 => blocks::<V, K, S, 2>(span),
            _ => blocks::<V, K, S, 1>(span),
        }
    }
}

/// The input rows one block of 16 channels reads for a band of output rows, in bytes: a band
/// runs channel block by channel block, so each input vector comes from L1 (32 KiB on this
/// machine's AMD EPYC and on Cortex-A72/A76) for every output row that reads it. Rows over the
/// whole width, channel blocks innermost (before), read each input vector from L2 once per
/// kernel row (B0's 144 channels on 56×56: 96 KiB between two reads of a row). `cargo bench -p
/// fovea-shared --bench depthwise` (AVX-512): B0's layers channels-last in, planes out 1.48 →
/// 1.36 ms (16 KiB 1.38, 48 KiB 1.37, no bands 1.40); 144 channels on 56×56 202 → 179 µs, 240
/// on 28×28 167 → 138; channels-last out 1.25 → 1.29.
const L1_BAND_BYTES: usize = 24 * 1024;

/// [`rows`] with blocks of `B ≤ ow` columns, in bands of output rows (`L1_BAND_BYTES` for
/// 16 channels; a vector of fewer lanes reads fewer bytes per row, so its bands are as many
/// rows).
#[inline(always)]
unsafe fn blocks<V: Vector, const K: usize, const S: usize, const B: usize>(span: &Span) {
    let &Span {
        x,
        input,
        w,
        bias,
        g,
        y,
        out,
        relu6,
        chans,
        oys,
        row0,
    } = span;
    // The geometry copied out: read through the span, its fields were loaded again after
    // every store through `y` (which the compiler cannot tell apart from them), and B0's
    // layers took 2.72 ms against 2.36 (`cargo bench -p fovea-shared --bench depthwise`).
    let geo = *g;
    let g = &geo;
    // Output rows in bands whose input rows' 16 channels fit in L1; each block of channels
    // runs over the whole band before the next.
    let rows_in = (L1_BAND_BYTES / (g.w * 64).max(1)).max(K);
    let band = (rows_in - K) / S + 1;
    for oy0 in (oys.0..oys.1).step_by(band) {
        for c0 in (chans.0..chans.1).step_by(V::LANES) {
            for oy in oy0..(oy0 + band).min(oys.1) {
                for start in (0..g.ow).step_by(B) {
                    let ox = start.min(g.ow - B);
                    // SAFETY: `V` runs (the caller's); `block` reads and writes inside `x`,
                    // `w`, `bias`, `y` (its contract: `ox + B ≤ ow`, `oy < oh`, `c0 < c`;
                    // channel `c0` of the first input pixel held at `input.at(c0)`).
                    unsafe {
                        let xc = (x.as_ptr().add(input.at(c0)), input.pixel);
                        let dst = (y, out);
                        if g.c - c0 >= V::LANES {
                            block::<V, K, S, B, true>(xc, w, bias, g, dst, oy, ox, c0, relu6, row0);
                        } else {
                            block::<V, K, S, B, false>(
                                xc, w, bias, g, dst, oy, ox, c0, relu6, row0,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Outputs `ox0 .. ox0 + B` of row `oy`, channels `c0 .. c0 + LANES` (`FULL`) or `c0 .. c`:
/// the bias, then per kernel row the `(B − 1)·S + K` input vectors it reads (zero outside the
/// image), each loaded once, and per tap one weight vector and `B` products and sums. Loads
/// and stores are masked only in the last, partial block of channels (a masked store was the
/// hottest instruction of the NCHW staging, `depthwise/avx512.rs`). The loops run over
/// constants, so the compiler unrolls them and keeps both arrays in registers (AVX2's 16
/// registers hold the 8 sums and reload the inputs a 5×5 kernel's 12 to 19 do not fit).
///
/// # Safety
/// `V`'s instructions run; `ox0 + B ≤ ow`, `oy < oh`, `c0 + LANES ≤ c` when `FULL`, else `c0 <
/// c`; `w`, `bias`, `y` of the lengths `ChannelsLast::run` checks; `x.0` channel `c0` of the
/// first input pixel held (row `row0`), its pixels `x.1` values apart, at least the rows this
/// output row reads.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<V: Vector, const K: usize, const S: usize, const B: usize, const FULL: bool>(
    (x, pixel): (*const f32, usize),
    w: &[f32],
    bias: &[f32],
    g: &Geometry,
    (y, out): (*mut f32, Output),
    oy: usize,
    ox0: usize,
    c0: usize,
    relu6: bool,
    row0: usize,
) {
    let c = g.c;
    // SAFETY (all loads and stores below): masked to the channels `c0 ..` that exist; the
    // pixel offsets are inside the image (checked against `h`, `w` before each load) or the
    // output block (the caller's bounds).
    unsafe {
        let mask = V::mask(if FULL { 0 } else { c - c0 });
        let load = |p: *const f32| {
            if FULL {
                V::load(p)
            } else {
                V::load_masked(p, mask)
            }
        };
        let mut acc = [load(bias.as_ptr().add(c0)); B];
        let weights = w.as_ptr().add(weight_at(c0, K * K));
        let ix0 = (ox0 * S) as isize - g.pw as isize;
        // The kernel row's input columns that lie in the image: `lo .. hi` of `0 .. n`.
        let n = (B - 1) * S + K;
        let lo = (-ix0).max(0) as usize;
        let hi = (g.w as isize - ix0).clamp(0, n as isize) as usize;
        for i in 0..K {
            let iy = (oy * S + i) as isize - g.ph as isize;
            let mut inp = [V::zero(); 24];
            if (0..g.h as isize).contains(&iy) {
                let row = x.add((iy as usize - row0) * g.w * pixel);
                #[allow(clippy::needless_range_loop)] // unrolled over a constant `n`
                for k in 0..n {
                    if (lo..hi).contains(&k) {
                        inp[k] = load(row.offset((ix0 + k as isize) * pixel as isize));
                    }
                }
            }
            for j in 0..K {
                let wv = load(weights.add((i * K + j) * BLOCK));
                for (b, a) in acc.iter_mut().enumerate() {
                    *a = a.add(wv.mul(inp[b * S + j]));
                }
            }
        }
        if relu6 {
            acc = acc.map(|a| a.relu6());
        }
        let dst = y.add(out.at(g, c0, oy, ox0));
        match out {
            Output::Planes { plane, .. } if FULL && B == 8 => {
                V::store_planes(std::array::from_fn(|b| acc[b % B]), dst, plane);
            }
            Output::Planes { plane, .. } => {
                // Through a tile on the stack: lane `k` of column `b` is channel `c0 + k`'s
                // output `b` of the block, contiguous in its plane.
                let mut tile = [[0.0f32; 16]; B];
                for (t, a) in tile.iter_mut().zip(acc) {
                    a.store(t.as_mut_ptr());
                }
                for k in 0..if FULL { V::LANES } else { c - c0 } {
                    for (b, t) in tile.iter().enumerate() {
                        *dst.add(k * plane + b) = t[k];
                    }
                }
            }
            Output::Last => {
                for (b, a) in acc.into_iter().enumerate() {
                    if FULL {
                        a.store(dst.add(b * c));
                    } else {
                        a.store_masked(dst.add(b * c), mask);
                    }
                }
            }
        }
    }
}
