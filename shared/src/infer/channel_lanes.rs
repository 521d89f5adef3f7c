//! The 1×1 product into channels-last pixels with the output channels in the vector lanes
//! (AVX-512's 16 or AVX2's 8, `crate::vector`): what fovea's 1×1 op runs an expansion on whose
//! output `ChangeAxes` turned channels-last for the depthwise conv after it (`pointwise.rs`,
//! `out_last`), fused with that conv or not ([`super::expand_depthwise`]), where the output
//! channels are a multiple of the lanes (every expansion of B0 and Lite0 up to 14×14).
//!
//! Why: gemm ran those products at about 70 % of this CPU's FMA peak (it packs both operands
//! on every call) and their outputs then took a second pass for the bias and ReLU6. Here a
//! block of pixels keeps a group of output channels each in registers across the input
//! channels (AVX-512: 4 pixels × 96 channels, 24 of its 32 registers; AVX2: 6 pixels × 16
//! channels, 12 of its 16): per input channel, one row of the group's weights (arranged group
//! by group once, at load: [`arrange`]) and one broadcast input per pixel; the bias and ReLU6
//! are applied in registers before the single store, already channels-last. `node_profile`,
//! Lite0 at 224 px, one thread, AVX-512: 24 → 144 on 56² 253–264 → 199–203 µs, the 28² and 14²
//! expansions 160–180 → 140–152 and 316–324 → 281–285; AVX2: 112 → 672 on 14² 375–393 →
//! 342–383, block 1's fused expansion and depthwise conv 1288 → 823–934.
//!
//! The values are gemm's: each output's sum runs over the input channels in order, one fused
//! multiply-add each from zero, then the bias is added and the clamp applied, as
//! `pointwise::tile_product` does (tested bit for bit against it; on a single pixel gemm's
//! matrix-vector path sums in another order, both within the sum's rounding).
use super::activation::Activation;
use crate::vector::{Avx2, Avx512, Task, Vector};

/// The lanes of the vector this CPU runs the product on: AVX-512's 16, else AVX2's 8, else
/// none.
fn lanes() -> Option<usize> {
    if Avx512::available() {
        Some(Avx512::LANES)
    } else if Avx2::available() {
        Some(Avx2::LANES)
    } else {
        None
    }
}

/// Whether this CPU runs a product into `c_out` channels here: AVX-512 or AVX2, and `c_out` a
/// multiple of the vector's lanes.
pub(super) fn covers(c_out: usize) -> bool {
    lanes().is_some_and(|l| c_out > 0 && c_out.is_multiple_of(l))
}

/// Vectors of output channels per register block: 6 with 32 registers (AVX-512: 96 channels),
/// 2 with 16 (AVX2: 16 channels).
fn group_vectors<V: Vector>() -> usize {
    if V::REGISTERS >= 32 { 6 } else { 2 }
}

/// Pixels per register block: 4 with 32 registers (AVX-512: 24 sums), 6 with 16 (AVX2: 12
/// sums), the rest for a row of weights and the broadcast input. AVX2 with 3 vectors × 4
/// pixels (the same 12 sums) compiled to a loop that moved its sums between registers every
/// step and spilled one: 112 → 672 on 14×14 took 705 µs against gemm's 378 (`node_profile`,
/// Lite0, one thread); gemm's own AVX2 kernel is 2 vectors × 6 columns too.
fn block_pixels<V: Vector>() -> usize {
    if V::REGISTERS >= 32 { 4 } else { 6 }
}

/// The weight matrices (values) from which [`pixels`] runs group by group over every pixel
/// rather than pixel block by block over every group: 64 Ki (256 KiB). B0's and Lite0's 7×7
/// expansions (192 → 1152, 884 KiB of weights, 49 pixels) took 263–285 µs pixel block by pixel
/// block, that is 13 reads of their weights from L3, and 242–248 group by group (tract: 270–295
/// plus 7 for its packing), `node_profile`, Lite0, one thread, AVX-512; 112 → 672 on 14×14
/// alike either way (270–298 µs), the smaller ones unmeasured the other way.
const WEIGHTS_BY_GROUP: usize = 64 * 1024;

/// `out[p·c_out + o] = act(Σ_i w[o, i]·x[i·x_stride + p] + b[o])` for the `cols` pixels `p`
/// of `out` (`out.len() / c_out`), on the calling thread. `wt` is the weight matrix `w` as
/// [`arrange`] lays it out. Blocks of pixels ([`block_pixels`]) by groups of output
/// channels (the last group one vector to a whole group), pixel block by pixel block or, for
/// large weights, group by group.
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
    let product = Product {
        operands: Operands {
            x,
            x_stride,
            wt,
            c_out,
            bias,
            relu6,
        },
        out,
    };
    // SAFETY: the vector is available (`covers`, checked first); the lengths are checked
    // above.
    unsafe {
        if Avx512::available() {
            Avx512::run(product)
        } else {
            Avx2::run(product)
        }
    }
}

/// [`pixels`]' checked arguments, run with a vector's target features.
struct Product<'a> {
    operands: Operands<'a>,
    out: &'a mut [f32],
}

/// The product's operands (as [`pixels`] takes them; `relu6` for its `act`).
#[derive(Clone, Copy)]
struct Operands<'a> {
    x: &'a [f32],
    x_stride: usize,
    wt: &'a [f32],
    c_out: usize,
    bias: Option<&'a [f32]>,
    relu6: bool,
}

impl Task for Product<'_> {
    type Output = ();

    /// # Safety
    /// `V` runs; `c_out` a multiple of its lanes and the lengths [`pixels`] checks.
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let Product { operands, out } = self;
        let c_out = operands.c_out;
        let c_in = operands.wt.len() / c_out;
        let cols = out.len() / c_out;
        // SAFETY: the caller's; every span lies inside `cols` and `c_out`.
        unsafe {
            if c_in * c_out >= WEIGHTS_BY_GROUP {
                // Each group of output channels over every pixel: the weights read once.
                for (o0, v) in groups::<V>(c_out) {
                    span::<V>(v, operands, out, (o0, 0, cols));
                }
            } else {
                // Each block of pixels over every group: its inputs read once.
                let step = block_pixels::<V>();
                for p0 in (0..cols).step_by(step) {
                    let hi = (p0 + step).min(cols);
                    for (o0, v) in groups::<V>(c_out) {
                        span::<V>(v, operands, out, (o0, p0, hi));
                    }
                }
            }
        }
    }
}

/// `w` (`[c_out, c_in]`) as [`pixels`] reads it, group by group of output channels
/// ([`groups`], on the vector this CPU runs): the group from channel `o0`, `g` wide, at
/// `o0·c_in`, `[c_in, g]` (each input channel's weights for the group contiguous), so a block
/// reads its group's weights front to back. `None` where [`covers`] does not hold. Read as one
/// `[c_in, c_out]` transpose, each step of a block jumped `4·c_out` bytes (a 7×7 expansion's
/// 4.6 KiB): `node_profile`, Lite0, one thread, AVX2, two rounds alternated, 192 → 1152 on
/// 7² 351–368 → 330–339 µs, 112 → 672 on 14² 342–372 → 326–331.
pub(super) fn arrange(w: &[f32], c_in: usize, c_out: usize) -> Option<Vec<f32>> {
    if !covers(c_out) || w.len() != c_in * c_out {
        return None;
    }
    let group = if Avx512::available() {
        group_vectors::<Avx512>() * Avx512::LANES
    } else {
        group_vectors::<Avx2>() * Avx2::LANES
    };
    let mut wt = vec![0.0f32; c_in * c_out];
    for o0 in (0..c_out).step_by(group) {
        let g = group.min(c_out - o0);
        for (k, row) in w[o0 * c_in..][..g * c_in].chunks_exact(c_in).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                wt[o0 * c_in + i * g + k] = v;
            }
        }
    }
    Some(wt)
}

/// The groups of output channels, `(first, vectors)`: [`group_vectors`] each, the last one to
/// as many.
fn groups<V: Vector>(c_out: usize) -> impl Iterator<Item = (usize, usize)> {
    let group = group_vectors::<V>() * V::LANES;
    (0..c_out)
        .step_by(group)
        .map(move |o0| (o0, (c_out - o0).min(group) / V::LANES))
}

/// Output channels `o0 .. o0 + LANES·v` (`v` of 1 to [`group_vectors`]) of pixels `lo .. hi`.
///
/// # Safety
/// `V` runs; `hi ≤ cols`, `o0 + LANES·v ≤ c_out` and the lengths [`pixels`] checks.
#[inline(always)]
unsafe fn span<V: Vector>(
    v: usize,
    args: Operands,
    out: &mut [f32],
    (o0, lo, hi): (usize, usize, usize),
) {
    // SAFETY (each arm): the caller's. With 16 registers (AVX2) a group has at most 2 vectors:
    // the arms of 3 to 6 never run.
    unsafe {
        match v {
            6 if V::REGISTERS >= 32 => span_of::<V, 6>(args, out, (o0, lo, hi)),
            5 if V::REGISTERS >= 32 => span_of::<V, 5>(args, out, (o0, lo, hi)),
            4 if V::REGISTERS >= 32 => span_of::<V, 4>(args, out, (o0, lo, hi)),
            3 if V::REGISTERS >= 32 => span_of::<V, 3>(args, out, (o0, lo, hi)),
            2 => span_of::<V, 2>(args, out, (o0, lo, hi)),
            _ => span_of::<V, 1>(args, out, (o0, lo, hi)),
        }
    }
}

/// [`span`] with `N` vectors: blocks of [`block_pixels`], the pixels left over one at a time.
/// (The last block overlapping the one before instead, so that no pixel is left alone, was no
/// faster: Lite0's 192 → 1152 on 49 pixels 340–356 → 354–383 µs on AVX2, two rounds.)
///
/// # Safety
/// As [`span`]'s.
#[inline(always)]
unsafe fn span_of<V: Vector, const N: usize>(
    args: Operands,
    out: &mut [f32],
    (o0, lo, hi): (usize, usize, usize),
) {
    let step = block_pixels::<V>();
    let full = lo + (hi - lo) / step * step;
    // SAFETY (both): the caller's; the blocks lie inside `lo .. hi`.
    unsafe {
        for p0 in (lo..full).step_by(step) {
            if V::REGISTERS >= 32 {
                block::<V, N, 4>(args, out, (o0, p0));
            } else {
                block::<V, N, 6>(args, out, (o0, p0));
            }
        }
        for p0 in full..hi {
            block::<V, N, 1>(args, out, (o0, p0));
        }
    }
}

/// Output channels `o0 .. o0 + LANES·N` of pixels `p0 .. p0 + P`: `P·N` accumulators from
/// zero, one fused multiply-add per input channel each, then the bias and the clamp, stored
/// once.
///
/// # Safety
/// `V` runs; `p0 + P ≤ cols`, `o0 + LANES·N ≤ c_out` and the lengths [`pixels`] checks.
#[inline(always)]
unsafe fn block<V: Vector, const N: usize, const P: usize>(
    Operands {
        x,
        x_stride,
        wt,
        c_out,
        bias,
        relu6,
    }: Operands,
    out: &mut [f32],
    (o0, p0): (usize, usize),
) {
    let c_in = wt.len() / c_out;
    // SAFETY: every read is inside `wt` (row i < c_in, channels o0 .. o0 + LANES·N), `x`
    // (i·x_stride + p, p < cols) or `bias`, every write inside `out` (pixel p < cols), by the
    // caller's bounds.
    unsafe {
        let mut acc = [[V::zero(); N]; P];
        // The group's weights (`arrange`): `[c_in, LANES·N]` from `o0·c_in`.
        let group = wt.as_ptr().add(o0 * c_in);
        for i in 0..c_in {
            let row = group.add(i * N * V::LANES);
            let w: [V; N] = std::array::from_fn(|v| V::load(row.add(V::LANES * v)));
            let xi = x.as_ptr().add(i * x_stride + p0);
            for (p, acc) in acc.iter_mut().enumerate() {
                let xb = V::splat(*xi.add(p));
                for (a, &wv) in acc.iter_mut().zip(&w) {
                    *a = wv.mul_add(xb, *a);
                }
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            let dst = out.as_mut_ptr().add((p0 + p) * c_out + o0);
            for (v, &a) in acc.iter().enumerate() {
                let mut a = a;
                if let Some(b) = bias {
                    a = a.add(V::load(b.as_ptr().add(o0 + V::LANES * v)));
                }
                if relu6 {
                    a = a.relu6();
                }
                a.store(dst.add(V::LANES * v));
            }
        }
    }
}

/// Whether this CPU should run a product into `c_out` channels here, read from the CPU's
/// features directly rather than through [`covers`], for the tests that check an op took the
/// lanes where it should: AVX-512F and `c_out` a multiple of 16, else AVX2 with FMA and a
/// multiple of 8.
#[cfg(test)]
pub(super) fn expected(c_out: usize) -> bool {
    if std::arch::is_x86_feature_detected!("avx512f") {
        c_out.is_multiple_of(16)
    } else {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && c_out.is_multiple_of(8)
    }
}
