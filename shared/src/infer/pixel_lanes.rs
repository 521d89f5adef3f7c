//! The 1×1 product with the pixels in the vector lanes (AVX-512's 16, `crate::vector`), planes
//! in and planes out: what fovea's 1×1 op runs into few output planes on AVX-512 where gemm
//! would (`pointwise.rs`, [`covers`]: the projections of the 112×112 to 28×28 stages).
//!
//! Why: on these products gemm's micro-kernel (pixels in its vectors, output channels in its 6
//! columns) loads and stores its tile of sums around short sums (32 terms for block 0's projection
//! 32 → 16 on 112×112), with gemm's packing of its operands and the bias's second pass over the
//! output around that (which of these costs most: not measured). Here a vector of pixels keeps
//! every output channel of a pass in registers across the input channels: per input channel, one
//! load of the input's pixels and one broadcast weight per output channel (the weights, a few KiB,
//! stay in L1), each output's sum a fused multiply-add per input channel; the bias and ReLU6 are
//! applied in registers before the single store into the output's plane. Numbers:
//! [`MOST_CHANNELS`]. AVX2 keeps gemm (not measured there).
//!
//! The values are gemm's where gemm sums in order (on two pixels and more over up to 320 input
//! channels: `pointwise::tests`): each output's sum runs over the input channels in order, one
//! fused multiply-add each from zero, then the bias is added and the clamp applied.
use super::activation::Activation;
use crate::vector::{Avx512, Task, Vector};

/// The most output channels a product runs here with. `pointwise_layers` (minimum of 60, B0's
/// layers, AVX-512, gemm's binary then this one, two rounds alternated): 32 → 16 on 112×112
/// 132–134 → 114–115 µs (onnxruntime's, in Lite0: 119–121), 96 → 24 on 56×56 132–133 → 126, 144 →
/// 24 on 56×56 196 → 187, 144 → 40 on 28×28 81–82 → 78, 240 → 40 on 28×28 133–141 → 130–136;
/// in the model (`node_profile`, B0, one binary with this path switched by the environment,
/// two rounds alternated) B0's block-0 projection 146–161 → 120–121 µs. Passes of 24 channels
/// (24 sums in registers) ran 96 → 24 in 292–294 µs; not tried above 40 channels.
const MOST_CHANNELS: usize = 40;

/// Output channels per pass, all in registers: 16, the last pass of a product 8
/// ([`covers`]: a multiple of 8).
const PASS: usize = 16;

/// Whether this CPU runs a product into `c_out` planes here: AVX-512, and `c_out` a multiple of
/// 8 up to [`MOST_CHANNELS`].
pub(super) fn covers(c_out: usize) -> bool {
    Avx512::available() && c_out > 0 && c_out.is_multiple_of(8) && c_out <= MOST_CHANNELS
}

/// `out[o·out_stride + p] = act(Σ_i w[o·c_in + i]·x[i·x_stride + p] + b[o])` for the `cols`
/// pixels `p` and `c_out` output channels `o`, on the calling thread; `w` row-major
/// `[c_out, c_in]`.
///
/// # Safety
/// `out` valid for writes at `o·out_stride + p` (`o < c_out`, `p < cols`) that no other thread
/// touches meanwhile.
///
/// # Panics
/// If [`covers`] does not hold for `c_out`, or a slice's length does not match.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn planes(
    x: &[f32],
    x_stride: usize,
    w: &[f32],
    c_out: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    (out, out_stride, cols): (*mut f32, usize, usize),
) {
    assert!(covers(c_out), "pixel lanes: {c_out} output channels");
    let c_in = w.len() / c_out;
    assert!(
        w.len() == c_in * c_out
            && c_in > 0
            && bias.is_none_or(|b| b.len() == c_out)
            && cols <= out_stride
            && (cols == 0 || x.len() >= (c_in - 1) * x_stride + cols),
        "pixel lanes: sizes"
    );
    let product = Product {
        x,
        x_stride,
        w,
        c_in,
        c_out,
        bias,
        relu6: matches!(act, Some(Activation::Relu6)),
        out,
        out_stride,
        cols,
    };
    // SAFETY: AVX-512 is available (`covers`); the lengths are checked above, `out` is the
    // caller's.
    unsafe { Avx512::run(product) }
}

/// [`planes`]' checked arguments, run with a vector's target features.
struct Product<'a> {
    x: &'a [f32],
    x_stride: usize,
    w: &'a [f32],
    c_in: usize,
    c_out: usize,
    bias: Option<&'a [f32]>,
    relu6: bool,
    out: *mut f32,
    out_stride: usize,
    cols: usize,
}

impl Task for Product<'_> {
    type Output = ();

    /// # Safety
    /// `V` runs; the lengths [`planes`] checks.
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY (each arm): the caller's; `c_out` is a multiple of 8 (`covers`), so every
        // pass has 16 or 8 channels.
        unsafe {
            for o0 in (0..self.c_out).step_by(PASS) {
                match (self.c_out - o0).min(PASS) {
                    16 => self.pass::<V, 16>(o0),
                    _ => self.pass::<V, 8>(o0),
                }
            }
        }
    }
}

impl Product<'_> {
    /// Output channels `o0 .. o0 + M` of every pixel, a vector of pixels at a time (the last
    /// masked).
    ///
    /// # Safety
    /// As [`Task::run`]'s; `o0 + M ≤ c_out`.
    #[inline(always)]
    unsafe fn pass<V: Vector, const M: usize>(&self, o0: usize) {
        let full = self.cols / V::LANES * V::LANES;
        // SAFETY: the caller's; every vector lies inside `cols`.
        unsafe {
            for p in (0..full).step_by(V::LANES) {
                self.pixels::<V, M, false>(o0, p);
            }
            if full < self.cols {
                self.pixels::<V, M, true>(o0, full);
            }
        }
    }

    /// Output channels `o0 .. o0 + M` of the vector of pixels from `p` (the `cols − p` left
    /// of it where `MASKED`): `M` sums from zero, one fused multiply-add per input channel
    /// each, then the bias and the clamp, stored once.
    ///
    /// # Safety
    /// As [`Self::pass`]'s; `p + LANES ≤ cols` unless `MASKED`.
    #[inline(always)]
    unsafe fn pixels<V: Vector, const M: usize, const MASKED: bool>(&self, o0: usize, p: usize) {
        let c_in = self.c_in;
        // SAFETY: every read is inside `x` (row i < c_in, pixels p .. p + LANES or the mask's
        // within `cols`), `w` (row o0 + o < c_out) or `bias`, every write inside the caller's
        // `out` (plane o0 + o, pixels within `cols`).
        unsafe {
            // The first `cols − p` lanes (fewer than LANES where masked).
            let mask = MASKED.then(|| V::mask(self.cols - p));
            let mut acc = [V::zero(); M];
            let w = self.w.as_ptr().add(o0 * c_in);
            let x = self.x.as_ptr().add(p);
            for i in 0..c_in {
                let xi = x.add(i * self.x_stride);
                let xv = match mask {
                    Some(m) => V::load_masked(xi, m),
                    None => V::load(xi),
                };
                for (o, a) in acc.iter_mut().enumerate() {
                    *a = V::splat(*w.add(o * c_in + i)).mul_add(xv, *a);
                }
            }
            for (o, &a) in acc.iter().enumerate() {
                let mut a = a;
                if let Some(b) = self.bias {
                    a = a.add(V::splat(b[o0 + o]));
                }
                if self.relu6 {
                    a = a.relu6();
                }
                let dst = self.out.add((o0 + o) * self.out_stride + p);
                match mask {
                    Some(m) => a.store_masked(dst, m),
                    None => a.store(dst),
                }
            }
        }
    }
}
