//! The plane path's inner loop ([`super::convolve`]'s) on intrinsics, one register of output
//! columns of one channel ([`Vector`]: 16 lanes of AVX-512 or 8 of AVX2) per accumulator.
//!
//! The portable loop is left to the compiler's vectorizer, which keeps its accumulators in
//! registers only while the loops over them are unrolled: with four 16-lane accumulators it did,
//! and B0's 14×14 layers ran at 13 G multiply-adds/s (`perf` put the time on the adds waiting
//! for their products, plus a bounds check per row and tap); with eight it did not, and they
//! spilled to the stack. Here the block is an explicit array of registers: `V` vectors of
//! output columns on each of `R` output rows, seven or eight accumulators, each tap one
//! broadcast weight and `V·R` products.
//!
//! The arithmetic is the portable loop's: each output starts from its channel's bias and adds
//! one rounded product then one rounded sum per tap, in row-major kernel order
//! ([`Vector::mul`] then [`Vector::add`]), so the values are equal bit for bit (tested in
//! `super`).
use std::mem::MaybeUninit;

use super::{Geometry, Staging};
use crate::vector::{Task, Vector};

/// The register block on `V`: `(B, R)`, `B = LANES·n` output columns (`n` vectors: the fewest
/// blocks of at most 8 vectors that cover the row, split evenly) of `R` output rows:
/// `R = ⌊8 / n⌋`, but 7 for one-vector rows, so that 14×14 and 7×7 planes are whole blocks on
/// AVX-512. Evenly: AVX2's 112-column rows are two blocks of 7 vectors, not 8 + 6 (16 columns
/// past the row on every row); on AVX-512 the rows up to 128 columns (all of EfficientNet's at
/// 224 px) get the blocks they had before this was generic.
pub(super) fn block<V: Vector>(ow: usize) -> (usize, usize) {
    let vectors = ow.max(1).div_ceil(V::LANES);
    let n = vectors.div_ceil(vectors.div_ceil(8));
    let r = if n == 1 { 7 } else { 8 / n };
    (V::LANES * n, r)
}

/// One output plane `yp` from its staged input plane `buf`, the channel's weights `wc` and its
/// bias, on the blocks of [`block`] (which `stage` was laid out for).
///
/// # Panics
/// If `V` does not run on this CPU, or the lengths or the staging are not the plane's.
pub(super) fn convolve<V: Vector>(
    buf: &[f32],
    wc: &[f32],
    bias: f32,
    geo: &Geometry,
    stage: &Staging,
    yp: &mut [MaybeUninit<f32>],
) {
    assert!(V::available(), "depthwise: the plane kernel's vector");
    let plane = Plane {
        buf,
        wc,
        bias,
        geo,
        stage,
        yp,
    };
    // SAFETY (each arm): `V` runs here (asserted); `blocks` checks the rest.
    unsafe {
        match block::<V>(geo.ow).0 / V::LANES {
            1 => V::run(Blocks::<1, 7>(plane)),
            2 => V::run(Blocks::<2, 4>(plane)),
            3 => V::run(Blocks::<3, 2>(plane)),
            4 => V::run(Blocks::<4, 2>(plane)),
            5 => V::run(Blocks::<5, 1>(plane)),
            6 => V::run(Blocks::<6, 1>(plane)),
            7 => V::run(Blocks::<7, 1>(plane)),
            _ => V::run(Blocks::<8, 1>(plane)),
        }
    }
}

/// [`convolve`]'s arguments.
struct Plane<'a, 'y> {
    buf: &'a [f32],
    wc: &'a [f32],
    bias: f32,
    geo: &'a Geometry,
    stage: &'a Staging,
    yp: &'y mut [MaybeUninit<f32>],
}

/// [`blocks`] of `N` vectors × `R` rows, run with a vector's target features.
struct Blocks<'a, 'y, const N: usize, const R: usize>(Plane<'a, 'y>);

impl<const N: usize, const R: usize> Task for Blocks<'_, '_, N, R> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY: the caller's (`V` available).
        unsafe { blocks::<V, N, R>(self.0) }
    }
}

/// [`convolve`] in blocks of `N` vectors × `R` rows. Inlined into [`Vector::run`], which
/// enables the vector's target features.
///
/// # Safety
/// `V`'s instructions run here.
#[inline(always)]
unsafe fn blocks<V: Vector, const N: usize, const R: usize>(p: Plane) {
    let Plane {
        buf,
        wc,
        bias,
        geo,
        stage,
        yp,
    } = p;
    assert_eq!(yp.len(), geo.out_plane(), "depthwise: output plane length");
    assert_eq!(wc.len(), stage.taps.len(), "depthwise: taps");
    assert_eq!(
        block::<V>(geo.ow),
        (V::LANES * N, R),
        "depthwise: staged for another block"
    );
    let width = V::LANES * N;
    let reach = stage.taps.iter().max().copied().unwrap_or(0);
    // Copied out, so that the stores through `yp` do not make the loops read them again.
    let (oh, ow, step, taps) = (geo.oh, geo.ow, stage.step, &stage.taps[..]);
    // SAFETY (the block): `V` runs here (the caller's); every pointer is inside `buf` or `yp`
    // (below).
    unsafe {
        let b = V::splat(bias);
        for oy in (0..oh).step_by(R) {
            for start in (0..ow).step_by(width) {
                let origin = oy * step + start;
                // The furthest value this block reads; the staging extends rows and columns to
                // whole blocks, so this holds for every block of a plane it was laid out for.
                assert!(
                    origin + reach + (R - 1) * step + width <= buf.len(),
                    "depthwise: block outside the staged plane"
                );
                let mut acc = [[b; N]; R];
                for (&wv, &tap) in wc.iter().zip(taps) {
                    let w = V::splat(wv);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let at = origin + tap + r * step;
                        for (v, a) in acc.iter_mut().enumerate() {
                            // `at + LANES·(v + 1) ≤ origin + reach + (R − 1)·step + width`,
                            // inside `buf` by the assert above.
                            let x = V::load(buf.as_ptr().add(at + V::LANES * v));
                            *a = a.add(w.mul(x));
                        }
                    }
                }
                let n = width.min(ow - start);
                for (rr, acc) in acc.iter().enumerate().take(oh - oy) {
                    let row = &mut yp[(oy + rr) * ow + start..][..n];
                    let out = row.as_mut_ptr().cast::<f32>();
                    for (v, a) in acc.iter().enumerate().take(n.div_ceil(V::LANES)) {
                        // Lanes `LANES·v .. LANES·v + lanes` of `row`, inside it; a partial
                        // vector masked to them.
                        let lanes = (n - V::LANES * v).min(V::LANES);
                        if lanes == V::LANES {
                            a.store(out.add(V::LANES * v));
                        } else {
                            a.store_masked(out.add(V::LANES * v), V::mask(lanes));
                        }
                    }
                }
            }
        }
    }
}
