//! Element-wise loops and lane sums of fovea's own kernels compiled for the CPU they run on,
//! and an `exp` those loops can vectorize. The loops that make a new vector write it straight
//! into fresh memory (no zero-fill first).
//!
//! The host binary targets baseline x86-64 (SSE2) so it runs on any workstation; a loop the
//! compiler vectorizes there uses 4 lanes. These helpers are compiled again for AVX-512,
//! AVX2+FMA and NEON and pick the best version at run time (`multiversion`); the closure they
//! take is inlined into each version. Element-wise values are computed exactly as the plain
//! loop would, and sums in eight lanes added in a fixed order (no further reassociation, no
//! fused multiply-adds), so results do not depend on the version picked.
use std::mem::MaybeUninit;

use multiversion::multiversion;
use rayon::prelude::*;
// Lanes of the sums here: eight independent partial sums, so the loops vectorize (a single
// running `f32` sum is a serial dependency the compiler may not reorder).
use shared::lane_sum::LANES;

/// A new vector `y` with `y[k] = f_i(src[k])`, where `i = k / chunk` is the index of the
/// `chunk`-element run `k` falls in (the last run may be shorter) and `f_i = per_chunk(i)`: a
/// per-plane affine map passes `chunk = H·W`, a plain element-wise map any `chunk` (it only
/// sets how the work splits over threads). The output is written once, straight into fresh
/// memory: no zero-fill before the loop (`vec![0.0; n]` is a `memset` of the whole
/// activation, 5.7 % of a B0 training step in `perf`).
pub fn map_new<F, G>(src: &[f32], chunk: usize, per_chunk: F) -> Vec<f32>
where
    F: Fn(usize) -> G + Sync,
    G: Fn(f32) -> f32,
{
    let mut y = Vec::with_capacity(src.len());
    y.spare_capacity_mut()[..src.len()]
        .par_chunks_mut(chunk.max(1))
        .zip(src.par_chunks(chunk.max(1)))
        .enumerate()
        .for_each(|(i, (d, s))| map_uninit(s, d, per_chunk(i)));
    // SAFETY: the chunks above cover `0..src.len()` exactly once (`par_chunks_mut` of that
    // range, zipped with source chunks of the same lengths) and `map_uninit` writes every
    // element of its `dst` (it asserts the lengths match); a panic in any of them propagates
    // out of `for_each` before this line, dropping `y` with length 0.
    unsafe { y.set_len(src.len()) };
    y
}

/// A new vector `y` with `y[k] = f_i(a[k], b[k])`, chunks as in [`map_new`].
pub fn zip_map_new<F, G>(a: &[f32], b: &[f32], chunk: usize, per_chunk: F) -> Vec<f32>
where
    F: Fn(usize) -> G + Sync,
    G: Fn(f32, f32) -> f32,
{
    assert_eq!(a.len(), b.len(), "zip_map_new: lengths");
    let mut y = Vec::with_capacity(a.len());
    y.spare_capacity_mut()[..a.len()]
        .par_chunks_mut(chunk.max(1))
        .zip(a.par_chunks(chunk.max(1)).zip(b.par_chunks(chunk.max(1))))
        .enumerate()
        .for_each(|(i, (d, (a, b)))| zip_map_uninit(a, b, d, per_chunk(i)));
    // SAFETY: as in `map_new`: the chunks cover `0..a.len()` once and `zip_map_uninit`
    // writes every element of its `dst`.
    unsafe { y.set_len(a.len()) };
    y
}

/// [`zip_map_new`] that also returns, per chunk `i`, `(Σ y, Σ y · (a − m_i))` over the chunk,
/// where `per_chunk(i)` gives `(f_i, m_i)`: the values and both sums in one pass over `a` and
/// `b` (the sums read `y` while it is still in registers or L1, not from memory again).
pub fn zip_map_new_sums<F, G>(
    a: &[f32],
    b: &[f32],
    chunk: usize,
    per_chunk: F,
) -> (Vec<f32>, Vec<(f32, f32)>)
where
    F: Fn(usize) -> (G, f32) + Sync,
    G: Fn(f32, f32) -> f32,
{
    assert_eq!(a.len(), b.len(), "zip_map_new_sums: lengths");
    let mut y = Vec::with_capacity(a.len());
    let sums = y.spare_capacity_mut()[..a.len()]
        .par_chunks_mut(chunk.max(1))
        .zip(a.par_chunks(chunk.max(1)).zip(b.par_chunks(chunk.max(1))))
        .enumerate()
        .map(|(i, (d, (a, b)))| {
            let (f, m) = per_chunk(i);
            zip_map_uninit_sums(a, b, d, m, f)
        })
        .collect();
    // SAFETY: as in `map_new`: the chunks cover `0..a.len()` once and `zip_map_uninit_sums`
    // writes every element of its `dst`.
    unsafe { y.set_len(a.len()) };
    (y, sums)
}

/// `dst[k] = f(a[k], b[k])`, every element written, and `(Σ dst, Σ dst · (a − m))` in eight
/// lanes. Blocks of 64 values are computed into a stack array first by a plain loop (which
/// the compiler vectorizes whole, an `exp` in `f` included; computed inside the lane sums the
/// `exp` was left half scalar), then stored and summed from there.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn zip_map_uninit_sums<F: Fn(f32, f32) -> f32>(
    a: &[f32],
    b: &[f32],
    dst: &mut [MaybeUninit<f32>],
    m: f32,
    f: F,
) -> (f32, f32) {
    const BLOCK: usize = 64;
    assert!(
        a.len() == dst.len() && b.len() == dst.len(),
        "zip_map_new_sums: lengths"
    );
    let mut sy = [0.0f32; LANES];
    let mut sya = [0.0f32; LANES];
    for ((ab, bb), db) in a
        .chunks(BLOCK)
        .zip(b.chunks(BLOCK))
        .zip(dst.chunks_mut(BLOCK))
    {
        // Past the end of a short last block both stay 0 and add nothing.
        let mut y = [0.0f32; BLOCK];
        let mut am = [0.0f32; BLOCK];
        for (((y, am), &a), &b) in y.iter_mut().zip(am.iter_mut()).zip(ab).zip(bb) {
            *y = f(a, b);
            *am = a - m;
        }
        for (d, &v) in db.iter_mut().zip(&y) {
            d.write(v);
        }
        for (yc, ac) in y.chunks_exact(LANES).zip(am.chunks_exact(LANES)) {
            for k in 0..LANES {
                sy[k] += yc[k];
                sya[k] += yc[k] * ac[k];
            }
        }
    }
    (sy.iter().sum(), sya.iter().sum())
}

/// A new vector of `len` values, `value(i)` over the whole `i`-th `chunk`-element run (the
/// last may be shorter): a per-plane broadcast, written once into fresh memory like
/// [`map_new`].
pub fn splat_new<F: Fn(usize) -> f32 + Sync>(len: usize, chunk: usize, value: F) -> Vec<f32> {
    let mut y = Vec::with_capacity(len);
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, d)| splat_uninit(d, value(i)));
    // SAFETY: the chunks cover `0..len` exactly once and `splat_uninit` writes every element
    // of its `dst`; a panic propagates out of `for_each` before this line.
    unsafe { y.set_len(len) };
    y
}

/// `Σ f(v)` over a plane in eight partial sums: shared with the device, which takes its
/// squeeze-excitation means with it.
pub use shared::lane_sum::sum_map;

/// `Σ g · (x − m)` in eight partial sums (`m = 0`: the dot product).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn dot_centred(g: &[f32], x: &[f32], m: f32) -> f32 {
    assert_eq!(g.len(), x.len(), "dot_centred: lengths");
    let mut acc = [0.0f32; LANES];
    let n = g.len() / LANES * LANES;
    for (gc, xc) in g[..n].chunks_exact(LANES).zip(x[..n].chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += gc[k] * (xc[k] - m);
        }
    }
    let tail: f32 = g[n..].iter().zip(&x[n..]).map(|(g, x)| g * (x - m)).sum();
    acc.iter().sum::<f32>() + tail
}

/// `dst[k] = v` for every element.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn splat_uninit(dst: &mut [MaybeUninit<f32>], v: f32) {
    for d in dst.iter_mut() {
        d.write(v);
    }
}

/// `dst[k] = f(src[k])`, every element of `dst` written.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn map_uninit<F: Fn(f32) -> f32>(src: &[f32], dst: &mut [MaybeUninit<f32>], f: F) {
    assert_eq!(src.len(), dst.len(), "map_new: lengths");
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(f(s));
    }
}

/// `x[k] = f(x[k])`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn map_in_place<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}

/// `dst[k] = f(a[k], b[k])`, every element of `dst` written.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn zip_map_uninit<F: Fn(f32, f32) -> f32>(
    a: &[f32],
    b: &[f32],
    dst: &mut [MaybeUninit<f32>],
    f: F,
) {
    assert!(
        a.len() == dst.len() && b.len() == dst.len(),
        "zip_map_new: lengths"
    );
    for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
        d.write(f(a, b));
    }
}

/// `e^x` in arithmetic a loop vectorizes (no branches, no calls): `2^n · e^r` with
/// `n = round(x · log2 e)`, `r = x − n ln 2` (ln 2 in two parts, Cody–Waite) and `e^r` by its
/// degree-7 Taylor polynomial on `|r| ≤ ln 2 / 2` (truncation below 6e-9 relative); `2^n` built
/// from its exponent bits. `x` is clamped to [−87.3, 88.8] first: above, the result is +∞
/// (`n = 128` makes the exponent field all ones); below, the smallest normal `2^−126` times
/// `e^r` instead of a subnormal or zero. NaN stays NaN. Within 3 ulps of the exact value on
/// the clamp range (test below).
///
/// Hand-written because the crates measured did not help: libm's `expf` (a call per element)
/// was 12.5 % of a B0 training step in `perf`, and `wide` 1.7's `f32x8::exp` (SSE-wide on the
/// baseline target, not inlined) took the same 12.4 %.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.8);
    let n = (x * LOG2_E).round_ties_even();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 / 5040.0 + r * (1.0 / 40320.0);
    let p = 1.0 / 720.0 + r * p;
    let p = 1.0 / 120.0 + r * p;
    let p = 1.0 / 24.0 + r * p;
    let p = 1.0 / 6.0 + r * p;
    let p = 0.5 + r * p;
    let p = 1.0 + r * p;
    let p = 1.0 + r * p;
    // n ∈ [−126, 128] on the clamp range, so the biased exponent is in [1, 255].
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each helper equals its plain loop on a length that is not a multiple of any vector
    /// width, NaN included, with the per-chunk function picked by the right chunk index
    /// (chunks of 5: the last one holds 3 values).
    #[test]
    fn helpers_equal_the_plain_loops() {
        let x: Vec<f32> = (0..37)
            .map(|i| i as f32 * 0.75 - 9.0)
            .chain([f32::NAN])
            .collect();
        let f = |v: f32| v.clamp(0.0, 6.0) * 2.0 + 1.0;
        let y = map_new(&x, 5, |i| move |v| f(v) + i as f32);
        let mut z = x.clone();
        map_in_place(&mut z, f);
        let w = zip_map_new(&x, &y, 5, |i| move |a, b| a * b - i as f32);
        assert_eq!((y.len(), w.len()), (x.len(), x.len()));
        for k in 0..x.len() {
            let i = (k / 5) as f32;
            let want = f(x[k]) + i;
            assert_eq!(y[k].to_bits(), want.to_bits(), "map_new[{k}]");
            assert_eq!(z[k].to_bits(), f(x[k]).to_bits(), "map_in_place[{k}]");
            let want = x[k] * want - i;
            assert_eq!(w[k].to_bits(), want.to_bits(), "zip_map_new[{k}]");
        }
        assert_eq!(y[3], 1.0, "clamped below: 2·0 + 1, chunk 0");
        assert_eq!(y[30], 19.0, "clamped above: 2·6 + 1, chunk 6");
        assert!(map_new(&[], 4, |_| |v| v).is_empty());
        // With the chunk sums: chunk 1 holds x[5..10] = [−5.25, −4.5, −3.75, −3, −2.25] and
        // y = 2x there; Σ y = −37.5; Σ y · (x − 1) = 2 Σ x² − 2 Σ x = 2 · 75.9375 + 37.5 = 189.375.
        let (u, sums) = zip_map_new_sums(&x, &y, 5, |i| (move |a: f32, _: f32| 2.0 * a, i as f32));
        assert_eq!(u.len(), x.len());
        for k in 0..x.len() {
            assert_eq!(
                u[k].to_bits(),
                (2.0 * x[k]).to_bits(),
                "zip_map_new_sums[{k}]"
            );
        }
        assert_eq!(sums.len(), 8);
        assert_eq!(sums[1], (-37.5, 189.375));
        let s = splat_new(11, 4, |i| i as f32 - 0.5);
        assert_eq!(
            s,
            [-0.5, -0.5, -0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5]
        );
    }

    /// The sums on 19 values (two full lanes of 8 and a tail of 3): 1 + 2 + … + 19 = 190;
    /// Σ v² = 19·20·39/6 = 2470; Σ v · (v − 10) = 2470 − 1900 = 570.
    #[test]
    fn sums_by_hand() {
        let v: Vec<f32> = (1..=19).map(|i| i as f32).collect();
        assert_eq!(sum_map(&v, |x| x), 190.0);
        assert_eq!(sum_map(&v, |x| x * x), 2470.0);
        assert_eq!(dot_centred(&v, &v, 10.0), 570.0);
        assert_eq!(dot_centred(&v, &v, 0.0), 2470.0);
    }

    /// [`exp`] against f64 over [−87, 88] in steps of 1/64: within 3 ulps (relative 3.6e-7);
    /// the clamp ends: +∞ above, the smallest normal range below, NaN kept.
    #[test]
    fn exp_is_within_three_ulps() {
        for i in -87 * 64..=88 * 64 {
            let x = i as f32 / 64.0;
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            assert!(
                (got - want).abs() <= 3.6e-7 * want,
                "exp({x}) = {got} vs {want}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(-100.0), exp(-87.3));
        assert!(exp(-100.0) > 0.0 && exp(-100.0) < 1.3e-38);
        assert!(exp(f32::NAN).is_nan());
    }
}
