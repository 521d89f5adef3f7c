//! The 1×1 product into channels-last pixels with the output channels in the vector lanes
//! (AVX-512): what fovea's 1×1 op runs an expansion on whose output `ChangeAxes` turned
//! channels-last for the depthwise conv after it (`pointwise.rs`, `out_last`), fused with that
//! conv or not ([`super::expand_depthwise`]), where the output channels are a multiple of 16
//! (every expansion of B0 and Lite0 up to 14×14).
//!
//! Why: gemm ran those products at about 70 % of this CPU's FMA peak (it packs both operands
//! on every call) and their outputs then took a second pass for the bias and ReLU6. Here a
//! block of 4 pixels keeps 96 output channels each in registers (24 accumulators) across the
//! input channels: per input channel, one row of the transposed weights (prepared once, at
//! load) and one broadcast input per pixel; the bias and ReLU6 are applied in registers before
//! the single store, already channels-last. `node_profile`, Lite0 at 224 px, one thread:
//! 24 → 144 on 56² 253–264 → 199–203 µs, the 28² and 14² expansions 160–180 → 140–152 and
//! 316–324 → 281–285.
//!
//! The values are gemm's: each output's sum runs over the input channels in order, one fused
//! multiply-add each from zero, then the bias is added and the clamp applied, as
//! `pointwise::tile_product` does (tested bit for bit against it; on a single pixel gemm's
//! matrix-vector path sums in another order, both within the sum's rounding).
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::activation::Activation;

/// Whether this CPU runs a product into `c_out` channels here: AVX-512 and `c_out` a multiple
/// of 16.
pub(super) fn covers(c_out: usize) -> bool {
    c_out > 0 && c_out.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f")
}

/// Output channels per register block: 6 vectors of 16.
const GROUP: usize = 96;

/// Pixels per register block (6 vectors each: 24 accumulators).
const PIXELS: usize = 4;

/// The weight matrices (values) from which [`pixels`] runs group by group over every pixel
/// rather than pixel block by block over every group: 64 Ki (256 KiB). B0's and Lite0's 7×7
/// expansions (192 → 1152, 884 KiB of weights, 49 pixels) took 263–285 µs pixel block by pixel
/// block, that is 13 reads of their weights from L3, and 242–248 group by group (tract: 270–295
/// plus 7 for its packing), `node_profile`, Lite0, one thread; 112 → 672 on 14×14 alike either
/// way (270–298 µs), the smaller ones unmeasured the other way.
const WEIGHTS_BY_GROUP: usize = 64 * 1024;

/// `out[p·c_out + o] = act(Σ_i wt[i·c_out + o]·x[i·x_stride + p] + b[o])` for the `cols`
/// pixels `p` of `out` (`out.len() / c_out`), on the calling thread. `wt` is the weight matrix
/// transposed, `[c_in, c_out]`. Blocks of 4 pixels by groups of 96 output channels (the last
/// group 16 to 96), pixel block by pixel block or, for large weights, group by group.
///
/// # Panics
/// If [`covers`] does not hold for `c_out`, or a slice's length does not match.
pub(super) fn pixels(
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    c_out: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    out: &mut [f32],
) {
    assert!(covers(c_out), "channel lanes: {c_out} output channels");
    let c_in = wt.len() / c_out;
    let cols = out.len() / c_out;
    assert!(
        wt.len() == c_in * c_out
            && out.len() == cols * c_out
            && bias.is_none_or(|b| b.len() == c_out)
            && (cols == 0 || (c_in > 0 && x.len() >= (c_in - 1) * x_stride + cols)),
        "channel lanes: sizes"
    );
    let relu6 = match act {
        Some(Activation::Relu6) => true,
        None => false,
    };
    // SAFETY: AVX-512F is present (`covers`); the lengths are checked above and every span
    // lies inside `cols` and `c_out`.
    unsafe {
        if c_in * c_out >= WEIGHTS_BY_GROUP {
            // Each group of output channels over every pixel: the weights read once.
            for (o0, v) in groups(c_out) {
                span(v, x, x_stride, wt, c_out, bias, relu6, out, (o0, 0, cols));
            }
        } else {
            // Each block of pixels over every group: its inputs read once.
            for p0 in (0..cols).step_by(PIXELS) {
                let hi = (p0 + PIXELS).min(cols);
                for (o0, v) in groups(c_out) {
                    span(v, x, x_stride, wt, c_out, bias, relu6, out, (o0, p0, hi));
                }
            }
        }
    }
}

/// The groups of output channels, `(first, vectors of 16)`: [`GROUP`] channels each, the last
/// 16 to [`GROUP`].
fn groups(c_out: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..c_out)
        .step_by(GROUP)
        .map(move |o0| (o0, (c_out - o0).min(GROUP) / 16))
}

/// Output channels `o0 .. o0 + 16·v` (`v` of 1 to 6) of pixels `lo .. hi`: blocks of
/// [`PIXELS`], the pixels left over one at a time.
///
/// # Safety
/// AVX-512F; `hi ≤ cols`, `o0 + 16·v ≤ c_out` and the lengths [`pixels`] checks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn span(
    v: usize,
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    c_out: usize,
    bias: Option<&[f32]>,
    relu6: bool,
    out: &mut [f32],
    (o0, lo, hi): (usize, usize, usize),
) {
    // SAFETY (each arm): the caller's.
    unsafe {
        match v {
            6 => span_of::<6>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
            5 => span_of::<5>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
            4 => span_of::<4>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
            3 => span_of::<3>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
            2 => span_of::<2>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
            _ => span_of::<1>(x, x_stride, wt, c_out, bias, relu6, out, (o0, lo, hi)),
        }
    }
}

/// [`span`] with `V` vectors.
///
/// # Safety
/// As [`span`]'s.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn span_of<const V: usize>(
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    c_out: usize,
    bias: Option<&[f32]>,
    relu6: bool,
    out: &mut [f32],
    (o0, lo, hi): (usize, usize, usize),
) {
    let full = lo + (hi - lo) / PIXELS * PIXELS;
    // SAFETY (both): the caller's; the blocks lie inside `lo .. hi`.
    unsafe {
        for p0 in (lo..full).step_by(PIXELS) {
            block::<V, PIXELS>(x, x_stride, wt, c_out, bias, relu6, out, (o0, p0));
        }
        for p0 in full..hi {
            block::<V, 1>(x, x_stride, wt, c_out, bias, relu6, out, (o0, p0));
        }
    }
}

/// Output channels `o0 .. o0 + 16·V` of pixels `p0 .. p0 + P`: `P·V` accumulators from zero,
/// one fused multiply-add per input channel each, then the bias and the clamp, stored once.
///
/// # Safety
/// AVX-512F; `p0 + P ≤ cols`, `o0 + 16·V ≤ c_out` and the lengths [`pixels`] checks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const V: usize, const P: usize>(
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    c_out: usize,
    bias: Option<&[f32]>,
    relu6: bool,
    out: &mut [f32],
    (o0, p0): (usize, usize),
) {
    let c_in = wt.len() / c_out;
    // SAFETY: every read is inside `wt` (row i < c_in, channels o0 .. o0 + 16·V), `x`
    // (i·x_stride + p, p < cols) or `bias`, every write inside `out` (pixel p < cols), by the
    // caller's bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; P];
        for i in 0..c_in {
            let row = wt.as_ptr().add(i * c_out + o0);
            let w: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(row.add(16 * v)));
            let xi = x.as_ptr().add(i * x_stride + p0);
            for (p, acc) in acc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*xi.add(p));
                for (a, &wv) in acc.iter_mut().zip(&w) {
                    *a = _mm512_fmadd_ps(wv, xb, *a);
                }
            }
        }
        let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
        for (p, acc) in acc.iter().enumerate() {
            let dst = out.as_mut_ptr().add((p0 + p) * c_out + o0);
            for (v, &a) in acc.iter().enumerate() {
                let mut a = a;
                if let Some(b) = bias {
                    a = _mm512_add_ps(a, _mm512_loadu_ps(b.as_ptr().add(o0 + 16 * v)));
                }
                if relu6 {
                    // max(0, a) then min(6, ·) return `a` where it is NaN, as `f32::clamp`.
                    a = _mm512_min_ps(six, _mm512_max_ps(zero, a));
                }
                _mm512_storeu_ps(dst.add(16 * v), a);
            }
        }
    }
}
