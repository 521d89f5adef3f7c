//! The depthwise staging loops in AVX-512 intrinsics, for x86_64 CPUs that have it: the plane
//! path's ([`fill`]; its inner loop is `depthwise/plane_kernel.rs`, on any [`crate::vector`])
//! and the small-plane path's (`depthwise/lanes.rs`: [`lanes_fill`], [`lanes_convolve`]).
//!
//! The arithmetic is the portable loops': each output starts from its channel's bias and adds
//! one rounded product then one rounded sum per tap, in row-major kernel order
//! (`_mm512_mul_ps` then `_mm512_add_ps`; Rust never fuses them), so the values are equal bit
//! for bit (tested in `super`).
use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_loadu_ps,
    _mm512_mask_i32gather_ps, _mm512_mask_i32scatter_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_mullo_epi32, _mm512_permutex2var_epi32,
    _mm512_set1_epi32, _mm512_setr_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
};
use std::mem::MaybeUninit;

use super::{Geometry, Staging};

/// The first `lanes` (at most 16) of 16.
fn mask(lanes: usize) -> __mmask16 {
    (((1u32 << lanes) - 1) & 0xffff) as __mmask16
}

/// [`Staging::fill`] at stride 1 or 2: each run of a staged row in 16-lane loads and stores,
/// masked only at the run's end ([`load`], [`store`]); at stride 2 [`fill_pairs`]. This
/// replaced a `memcpy` call per run and a scalar split: `perf` of B0's 480-channel 14×14 layers
/// put 34 % of their time in `memcpy` for these runs of 14 values; masked loads and stores
/// everywhere then cost B0's stride-2 layer most of its staging time (docs/PERFORMANCE.md).
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fill(stage: &Staging, xp: &[f32], geo: &Geometry, buf: &mut [f32]) {
    assert!(geo.sw <= 2, "depthwise: AVX-512 staging at stride 1 or 2");
    let rows = stage.rows.saturating_sub(geo.ph);
    if geo.sw == 2 {
        // SAFETY: the caller's promise of AVX-512F.
        return unsafe { fill_pairs(stage, xp, geo, rows, buf) };
    }
    let [(q0, first, count)] = stage.spans[..] else {
        panic!("depthwise: stride 1 stages one phase");
    };
    for (iy, src) in xp.chunks_exact(geo.w).take(rows).enumerate() {
        let run = &mut buf[(iy + geo.ph) * stage.width..][q0..q0 + count];
        let src = &src[first..];
        for (k, out) in run.chunks_mut(16).enumerate() {
            // SAFETY: the caller's promise of AVX-512F.
            unsafe { store(out, load(src, 16 * k)) };
        }
    }
}

/// [`fill`] at stride 2: each 32 values of a row loaded once and split by two permutes, its
/// even columns to one phase's run and its odd ones to the other's (a phase with no image
/// columns, as when the padding is as wide as the image, gets none). B0's 96 × 112² stride-2
/// layer (`cargo bench --bench depthwise`, one run each): 388 µs with masked loads and stores
/// and a pass over the row per phase (each value loaded twice, the second time one value off
/// the cache lines), 318 with plain ones, 276 with this (docs/PERFORMANCE.md).
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
unsafe fn fill_pairs(stage: &Staging, xp: &[f32], geo: &Geometry, rows: usize, buf: &mut [f32]) {
    let [a, b] = stage.spans[..] else {
        panic!("depthwise: stride 2 stages two phases");
    };
    // Position q of phase p holds padded column 2q + p, so the phases start at input columns 0
    // and 1 (in some order; a phase with no image column starts past the row's end): the one
    // that starts at 0 takes the evens.
    assert!(
        a.1.min(b.1) == 0 && a.1.abs_diff(b.1) == 1,
        "depthwise: stride-2 phases {a:?}, {b:?}"
    );
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let picks = [a, b].map(|(_, first, _)| if first == 0 { evens } else { odds });
    let chunks = a.2.max(b.2).div_ceil(16);
    for (iy, row) in xp.chunks_exact(geo.w).take(rows).enumerate() {
        let staged = &mut buf[(iy + geo.ph) * 2 * stage.width..][..2 * stage.width];
        let (phase0, phase1) = staged.split_at_mut(stage.width);
        let mut runs = [&mut phase0[a.0..a.0 + a.2], &mut phase1[b.0..b.0 + b.2]];
        for k in 0..chunks {
            // SAFETY: the caller's promise of AVX-512F.
            let (lo, hi) = unsafe { (load(row, 32 * k), load(row, 32 * k + 16)) };
            for (run, &pick) in runs.iter_mut().zip(&picks) {
                let Some(out) = run.get_mut(16 * k..).filter(|out| !out.is_empty()) else {
                    continue;
                };
                let v = _mm512_castsi512_ps(_mm512_permutex2var_epi32(
                    _mm512_castps_si512(lo),
                    pick,
                    _mm512_castps_si512(hi),
                ));
                // SAFETY: the caller's promise of AVX-512F.
                unsafe { store(out, v) };
            }
        }
    }
}

/// The first `out.len().min(16)` lanes of `v` into `out`: a plain store where all 16 fit, a
/// masked one at a run's end.
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store(out: &mut [f32], v: __m512) {
    if out.len() >= 16 {
        // SAFETY: `out[..16]` is inside `out`.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
    } else {
        // SAFETY: masked to `out`'s length.
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), mask(out.len()), v) };
    }
}

/// The 16 values of `src` from `at`, zero past its end: a plain load where all 16 are inside, a
/// masked one at the end (`perf` of B0's stride-2 staging, when every load and store was
/// masked: 25 % of its samples on the two instructions after the masked loads, 23 % on the
/// masked store).
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load(src: &[f32], at: usize) -> __m512 {
    if at + 16 <= src.len() {
        // SAFETY: `src[at .. at + 16]` is inside `src`.
        unsafe { _mm512_loadu_ps(src.as_ptr().add(at)) }
    } else {
        // SAFETY: masked to the values of `src` from `at` (none past its end).
        unsafe {
            _mm512_maskz_loadu_ps(
                mask(src.len().saturating_sub(at).min(16)),
                src.as_ptr().add(at.min(src.len())),
            )
        }
    }
}

/// Output pixels of a row [`lanes_convolve`] keeps in registers (the small-plane path's `P` on
/// x86_64, which its staging is laid out for).
const LANE_PIXELS: usize = 8;

/// The small-plane path's staging (`depthwise/lanes.rs`): the first `image.0` rows and
/// `image.1` columns (those the staging holds) of the `planes` (at most 16) planes of `xs`
/// (`[planes, h, w]`) gathered into the lanes of `buf` (`[..][cols][16]`), one 16-lane gather
/// per pixel, the lanes past `planes` zero. Writes the image's positions only: the
/// rest of `buf` must be zero (a fresh buffer, or one only this has written). The portable
/// staging stored lane by lane, a quarter of the 7×7 layers' time in `perf`.
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn lanes_fill(
    xs: &[f32],
    planes: usize,
    geo: &Geometry,
    (rows, image_cols): (usize, usize),
    cols: usize,
    buf: &mut [f32],
) {
    let in_plane = geo.h * geo.w;
    assert!(
        planes <= 16 && xs.len() == planes * in_plane,
        "depthwise: lanes staging of {planes} planes"
    );
    assert!(
        i32::try_from(16 * in_plane).is_ok()
            && rows <= geo.h
            && image_cols <= geo.w
            && geo.pw + image_cols <= cols,
        "depthwise: lanes staging geometry"
    );
    assert!(
        ((geo.ph + rows) * cols) * 16 <= buf.len() || rows == 0,
        "depthwise: lanes staging buffer"
    );
    let offsets = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(in_plane as i32),
    );
    let m = mask(planes);
    for iy in 0..rows {
        for ix in 0..image_cols {
            // SAFETY: lane l < planes reads xs[l·in_plane + iy·w + ix], inside `xs` (asserted
            // length); the other lanes are masked off and read nothing.
            let v = unsafe {
                _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    m,
                    offsets,
                    xs.as_ptr().add(iy * geo.w + ix),
                )
            };
            let at = ((iy + geo.ph) * cols + ix + geo.pw) * 16;
            // SAFETY: `at + 16 ≤ ((ph + rows)·cols)·16 ≤ buf.len()` (asserted: ix + pw < cols).
            unsafe { _mm512_storeu_ps(buf.as_mut_ptr().add(at), v) };
        }
    }
}

/// The small-plane path's convolution (`depthwise/lanes.rs`): one block's output planes `yb`
/// (`[planes ≤ 16, oh, ow]`) from `buf` (staged by [`lanes_fill`], `rows × cols` pixels of 16
/// lanes), the weights `wb` `[taps][16]` and the bias `bb` `[16]`; [`LANE_PIXELS`] pixels of a
/// row in registers across all taps, each finished pixel scattered to its planes in one
/// masked store (the portable loop stored lane by lane, a fifth of its time).
///
/// # Safety
/// The CPU must have AVX-512F (`crate::vector::Avx512::available`).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn lanes_convolve(
    buf: &[f32],
    wb: &[f32],
    bb: &[f32],
    geo: &Geometry,
    rows: usize,
    cols: usize,
    yb: &mut [MaybeUninit<f32>],
) {
    const P: usize = LANE_PIXELS;
    let out_plane = geo.oh * geo.ow;
    let planes = yb.len() / out_plane;
    let taps = geo.kh * geo.kw;
    assert!(
        planes <= 16 && yb.len() == planes * out_plane && i32::try_from(16 * out_plane).is_ok(),
        "depthwise: lanes block of {planes} planes"
    );
    assert!(
        wb.len() == taps * 16 && bb.len() == 16,
        "depthwise: lanes weights"
    );
    // The furthest staged value a block reads: row (oh − 1)·sh + kh − 1, pixel
    // (⌈ow / P⌉·P − 1)·sw + kw − 1, all 16 lanes.
    assert!(
        (geo.oh - 1) * geo.sh + geo.kh <= rows
            && (geo.ow.div_ceil(P) * P - 1) * geo.sw + geo.kw <= cols
            && rows * cols * 16 <= buf.len(),
        "depthwise: lanes staging too small"
    );
    let offsets = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(out_plane as i32),
    );
    let m = mask(planes);
    // SAFETY: `bb` holds 16 values (asserted).
    let bias = unsafe { _mm512_loadu_ps(bb.as_ptr()) };
    let step = geo.sw * 16;
    for oy in 0..geo.oh {
        for ox0 in (0..geo.ow).step_by(P) {
            let mut acc = [bias; P];
            for i in 0..geo.kh {
                let row = ((oy * geo.sh + i) * cols + ox0 * geo.sw) * 16;
                for j in 0..geo.kw {
                    // SAFETY: tap (i, j)'s 16 weights, inside `wb` (asserted length).
                    let w = unsafe { _mm512_loadu_ps(wb.as_ptr().add((i * geo.kw + j) * 16)) };
                    for (p, a) in acc.iter_mut().enumerate() {
                        // SAFETY: pixel (ox0 + p)·sw + j of staged row oy·sh + i, inside the
                        // staging (the assert above bounds the furthest one).
                        let x =
                            unsafe { _mm512_loadu_ps(buf.as_ptr().add(row + j * 16 + p * step)) };
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(w, x));
                    }
                }
            }
            let at = oy * geo.ow + ox0;
            for (p, a) in acc.iter().enumerate().take(geo.ow - ox0) {
                // SAFETY: lane l < planes writes yb[l·out_plane + at + p], inside `yb`
                // (at + p < out_plane); the other lanes are masked off.
                unsafe {
                    _mm512_mask_i32scatter_ps::<4>(
                        yb.as_mut_ptr().add(at + p).cast(),
                        m,
                        offsets,
                        *a,
                    )
                };
            }
        }
    }
}
