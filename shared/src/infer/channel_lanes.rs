//! The 1×1 product into channels-last pixels with the output channels in the vector lanes
//! (AVX-512): what fovea's expansion and depthwise conv in one op runs its expansion on
//! ([`super::expand_depthwise`]), where the expansion has few input channels and a multiple of
//! 16 output channels (B0's and Lite0's blocks 1 and 2: 16 → 96, 24 → 144).
//!
//! Why: there gemm ran its product at about 70 % of this CPU's FMA peak and its output then
//! took a second pass for the bias and ReLU6. Here each pixel's `C_out` outputs are `C_out/16`
//! vectors, a block of pixels keeps them all in registers across the `C_in` steps (one weight
//! row of `C_out` values and one broadcast input per pixel each), and the bias and ReLU6 are
//! applied in registers before the single store, already channels-last.
//!
//! The values are gemm's: each output's sum runs over the input channels in order, one fused
//! multiply-add each from zero, then the bias is added and the clamp applied, as
//! `pointwise::tile_product` does (tested below bit for bit against it).
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::activation::Activation;

/// Whether this CPU runs a product into `c_out` channels here: AVX-512 and `c_out` a multiple
/// of 16 no larger than 192.
pub(super) fn covers(c_out: usize) -> bool {
    c_out > 0
        && c_out.is_multiple_of(16)
        && c_out <= 192
        && std::arch::is_x86_feature_detected!("avx512f")
}

/// `out[p·c_out + o] = act(Σ_i wt[i·c_out + o]·x[i·x_stride + p] + b[o])` for the `cols`
/// pixels `p` of `out` (`out.len() / c_out`), on the calling thread. `wt` is the weight matrix
/// transposed, `[c_in, c_out]`.
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
    // SAFETY: AVX-512F is present (`covers`); the lengths are checked above.
    unsafe {
        match c_out / 16 {
            1 => run::<1, 8>(x, x_stride, wt, bias, relu6, out),
            2 => run::<2, 8>(x, x_stride, wt, bias, relu6, out),
            3 => run::<3, 8>(x, x_stride, wt, bias, relu6, out),
            4 => run::<4, 6>(x, x_stride, wt, bias, relu6, out),
            5 => run::<5, 4>(x, x_stride, wt, bias, relu6, out),
            6 => run::<6, 4>(x, x_stride, wt, bias, relu6, out),
            7 => run::<7, 3>(x, x_stride, wt, bias, relu6, out),
            8 => run::<8, 3>(x, x_stride, wt, bias, relu6, out),
            9 => run::<9, 2>(x, x_stride, wt, bias, relu6, out),
            10 => run::<10, 2>(x, x_stride, wt, bias, relu6, out),
            11 => run::<11, 2>(x, x_stride, wt, bias, relu6, out),
            _ => run::<12, 2>(x, x_stride, wt, bias, relu6, out),
        }
    }
}

/// [`pixels`] with `V` vectors of 16 output channels, `P` pixels per register block (`V·P ≤
/// 24` accumulators), the pixels left over one at a time.
///
/// # Safety
/// AVX-512F; the lengths [`pixels`] checks.
#[target_feature(enable = "avx512f")]
unsafe fn run<const V: usize, const P: usize>(
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    bias: Option<&[f32]>,
    relu6: bool,
    out: &mut [f32],
) {
    let c_out = 16 * V;
    let cols = out.len() / c_out;
    let full = cols - cols % P;
    // SAFETY (both): AVX-512F (this function's); pixels `p0 ..` of the block lie inside
    // `cols`.
    unsafe {
        for p0 in (0..full).step_by(P) {
            block::<V, P>(x, x_stride, wt, bias, relu6, out, p0);
        }
        for p0 in full..cols {
            block::<V, 1>(x, x_stride, wt, bias, relu6, out, p0);
        }
    }
}

/// Pixels `p0 .. p0 + P` of [`pixels`]: `P·V` accumulators from zero, one fused multiply-add
/// per input channel each, then the bias and the clamp, stored once.
///
/// # Safety
/// AVX-512F; `p0 + P ≤ cols` and the lengths [`pixels`] checks.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const V: usize, const P: usize>(
    x: &[f32],
    x_stride: usize,
    wt: &[f32],
    bias: Option<&[f32]>,
    relu6: bool,
    out: &mut [f32],
    p0: usize,
) {
    let c_out = 16 * V;
    let c_in = wt.len() / c_out;
    // SAFETY: every read is inside `wt` (row i < c_in of c_out values), `x` (i·x_stride + p,
    // p < cols) or `bias`, every write inside `out` (pixel p < cols), by the caller's bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; P];
        for i in 0..c_in {
            let row = wt.as_ptr().add(i * c_out);
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
            let dst = out.as_mut_ptr().add((p0 + p) * c_out);
            for (v, &a) in acc.iter().enumerate() {
                let mut a = a;
                if let Some(b) = bias {
                    a = _mm512_add_ps(a, _mm512_loadu_ps(b.as_ptr().add(16 * v)));
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
