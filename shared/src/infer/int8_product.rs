//! The integer product under fovea's int8 1×1 convolution ([`super::int8_pointwise`]): each
//! pixel's channels quantized to uint8 as they are packed, multiplied with int8 weights into
//! exact i32 sums, and only the sums scaled back to f32.
//!
//! Layout: pixels go in blocks of 16 ([`LANES`], one 512-bit vector of i32 sums), channels in
//! groups of 4; a block's group is 16 words of 4 uint8 each (pixel `l`'s 4 channels in word `l`),
//! and a block's groups follow each other. The weights of 8 output channels ([`ROWS`]) are, per
//! group, 8 words of 4 int8. One step of the kernel is then a `u8·i8` dot product of 4 channels
//! per lane: AVX-512 VNNI's `vpdpbusd`, 64 multiply-adds in one instruction, where the f32 kernels
//! do 16. The kernel keeps 8 rows × 2 blocks of sums (16 vectors) in registers.
//!
//! On aarch64 the same layout feeds two NEON kernels. Arm has no `u8·i8` dot product before
//! Armv8.6, so both flip each level's top bit (`q − 128`, an int8) and the offsets put `128·Σw`
//! back: Armv8.2's `sdot` (Cortex-A55, A76 and later; written as inline assembly, its intrinsic is
//! not stable in Rust 1.95) adds 16 products per instruction, where an f32 `fmla` adds 4; Armv8.0's
//! `smull`/`smlal`/`sadalp` (every aarch64 CPU, the Cortex-A53 and A72 included) multiplies into
//! i16 and adds pairs into i32. x86 CPUs without VNNI widen the levels and weights to i16 and
//! add pairs of products into i32 with AVX2's `vpmaddwd`; elsewhere (armv7, x86 without AVX2)
//! the sums come from a portable loop. Neither Arm kernel's speed is measured on a board yet.
//! The f32 values that leave here are computed from the sums by one expression on every target,
//! so all kernels give the same values bit for bit (tested below, the Arm kernels under
//! qemu-aarch64, whose CPU has `sdot`: `scripts/build-edge-arm.sh` runs these tests with
//! `--profile device --target aarch64-unknown-linux-gnu`).
//!
//! Exactness: a sum of `C_in` products of a uint8 and an int8 is below 2³¹ for `C_in` up to
//! 66 313 (255·127·C_in), far above EfficientNet's widest 1×1 input (B7: 3 840); with the
//! flipped int8 levels (|q − 128| ≤ 128, |w| ≤ 128) up to 131 071.
use std::mem::MaybeUninit;

use multiversion::multiversion;
use rayon::prelude::*;

use super::activation::Activation;
use super::fake_quant::level;
use crate::shared_out::SharedOut;

/// Pixels per block: the i32 lanes of a 512-bit vector.
pub(super) const LANES: usize = 16;
/// Output channels per step of the kernel.
pub(super) const ROWS: usize = 8;
/// Bytes of packed input a tile aims at (this CPU's L1 data cache is 32 KiB).
const TILE_BYTES: usize = 32 << 10;

/// An int8 weight matrix `[C_out, C_in]` as the kernel reads it, with what turns its sums into
/// the convolution's outputs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Int8Weights {
    c_in: usize,
    c_out: usize,
    /// `C_in / 4`, rounded up.
    groups: usize,
    /// `[C_out / ROWS (rounded up)][groups][ROWS]`, each word 4 int8 (channels `4g .. 4g + 4`,
    /// the first in the low byte); padding channels and rows are 0.
    words: Vec<u32>,
    /// Per output channel: `z' · Σ w`, what the input's zero point adds to the sum.
    offsets: Vec<i32>,
    /// Per output channel: `(z' − 128) · Σ w`, the same for the signed kernels, whose sums are
    /// of `(q − 128) · w` (see [`Kernel::signed`]).
    signed_offsets: Vec<i32>,
    /// Whether a level is −128: two products of such a weight with an input of −128 overflow
    /// an i16, so the Armv8.0 kernel then widens every product (see `sums_neon`).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    has_min_level: bool,
    /// Per output channel: the input's scale times the weights' scale.
    scales: Vec<f32>,
    /// Per output channel (zeros without a bias).
    bias: Vec<f32>,
}

impl Eq for Int8Weights {}

impl Int8Weights {
    /// `w` (`[C_out, C_in]` row-major) with one scale per row (`row_scales`), for inputs
    /// dequantized as `(q − x_zero) · x_scale`, plus `bias`.
    pub(super) fn new(
        w: &[i8],
        c_out: usize,
        c_in: usize,
        row_scales: &[f32],
        (x_scale, x_zero): (f32, i32),
        bias: Option<&[f32]>,
    ) -> Self {
        assert!(
            w.len() == c_out * c_in
                && row_scales.len() == c_out
                && bias.is_none_or(|b| b.len() == c_out)
                && c_in > 0,
            "int8 weights: sizes {c_out}×{c_in}"
        );
        let groups = c_in.div_ceil(4);
        let row_blocks = c_out.div_ceil(ROWS);
        let mut words = vec![0u32; row_blocks * groups * ROWS];
        for o in 0..c_out {
            for i in 0..c_in {
                let at = ((o / ROWS) * groups + i / 4) * ROWS + o % ROWS;
                words[at] |= u32::from(w[o * c_in + i] as u8) << (8 * (i % 4));
            }
        }
        let row_sums: Vec<i32> = (0..c_out)
            .map(|o| w[o * c_in..][..c_in].iter().map(|&v| i32::from(v)).sum())
            .collect();
        Int8Weights {
            c_in,
            c_out,
            groups,
            words,
            offsets: row_sums.iter().map(|s| x_zero * s).collect(),
            signed_offsets: row_sums.iter().map(|s| (x_zero - 128) * s).collect(),
            has_min_level: w.contains(&i8::MIN),
            scales: row_scales.iter().map(|s| x_scale * s).collect(),
            bias: bias.map_or_else(|| vec![0.0; c_out], <[f32]>::to_vec),
        }
    }

    /// `(C_in, C_out)`.
    pub(super) fn dims(&self) -> (usize, usize) {
        (self.c_in, self.c_out)
    }
}

/// How the input is quantized: tract's `QuantizeLinearU8` multiplier (1 / ONNX's scale) and
/// zero point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Quantize {
    pub(super) scale: f32,
    pub(super) zero_point: f32,
}

/// Which kernel computes the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// AVX-512 VNNI's `vpdpbusd`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Vnni,
    /// Armv8.2's dot product `sdot` (Cortex-A55, A76 and later; not the A53 or A72).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    Sdot,
    /// Armv8.0 NEON, which every aarch64 CPU has: widening multiplies into i16, added pairwise
    /// into i32 (`smull`, `smlal`, `sadalp`).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    Neon,
    /// AVX2's `vpmaddwd` on the levels and weights widened to i16 (x86 without VNNI).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// The portable loop.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            return Kernel::Vnni;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        #[cfg(target_arch = "aarch64")]
        return if std::arch::is_aarch64_feature_detected!("dotprod") {
            Kernel::Sdot
        } else {
            Kernel::Neon
        };
        #[allow(unreachable_code)]
        Kernel::Portable
    }

    /// The kernel's name as `edge bench` prints it: `vnni`, `avx2`, `sdot`, `neon` or
    /// `portable`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kernel::Vnni => "vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Sdot => "sdot",
            Kernel::Neon => "neon",
            Kernel::Portable => "portable",
        }
    }

    /// Whether the kernel multiplies `q − 128` (an int8) instead of the uint8 level `q`: Arm
    /// has no `u8 · i8` dot product before Armv8.6, so its kernels flip each level's top bit,
    /// and [`Int8Weights`]'s `signed_offsets` put the `128 · Σ w` back.
    fn signed(self) -> bool {
        matches!(self, Kernel::Sdot | Kernel::Neon)
    }
}

/// `out = act(scale · (W · (q(x) − z')) + b)`, `out` row-major `C_out × hw`, every element
/// written, for `x` row-major `C_in × hw`. Pixel tiles (and, when there are fewer tiles than
/// twice the threads, ranges of output channels) split over rayon's current pool when
/// `parallel`.
#[allow(clippy::too_many_arguments)]
pub(super) fn product(
    x: &[f32],
    hw: usize,
    quantize: Quantize,
    w: &Int8Weights,
    act: Option<Activation>,
    kernel: Kernel,
    parallel: bool,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(
        x.len() == w.c_in * hw && out.len() == w.c_out * hw,
        "int8 product: {}×{} weights, {hw} pixels, {} inputs, {} outputs",
        w.c_out,
        w.c_in,
        x.len(),
        out.len()
    );
    if out.is_empty() {
        return;
    }
    let blocks = hw.div_ceil(LANES);
    // An even number of blocks per tile (the kernel takes two at a time).
    let tile_blocks = (TILE_BYTES / (w.groups * 4 * LANES))
        .clamp(2, 64)
        .min(blocks.next_multiple_of(2))
        & !1;
    let tiles = blocks.div_ceil(tile_blocks);
    let row_blocks = w.c_out.div_ceil(ROWS);
    let threads = if parallel {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    // Only a pool splits rows: each part packs its tile again.
    let row_parts = if parallel && tiles < 2 * threads {
        (2 * threads).div_ceil(tiles).min(row_blocks)
    } else {
        1
    };
    let dst = SharedOut(out.as_mut_ptr().cast::<f32>());
    let item = |i: usize, buf: &mut Vec<u32>| {
        let (t, part) = (i / row_parts, i % row_parts);
        let first = t * tile_blocks;
        let n = tile_blocks.min(blocks - first).next_multiple_of(2);
        buf.resize(n * w.groups * LANES, 0);
        pack(x, w.c_in, hw, quantize, first, n, buf);
        let rows = part * row_blocks / row_parts..(part + 1) * row_blocks / row_parts;
        // SAFETY: items cover disjoint (pixel tile × row range) parts of `out` (c_out·hw
        // values, asserted), so no two write the same element.
        unsafe { tile(buf, w, first, n, rows, hw, act, kernel, dst) };
    };
    let items = tiles * row_parts;
    if parallel && items > 1 {
        (0..items)
            .into_par_iter()
            .for_each_init(Vec::new, |buf, i| item(i, buf));
    } else {
        let mut buf = Vec::new();
        (0..items).for_each(|i| item(i, &mut buf));
    }
}

/// Packs blocks `first .. first + n` of `x` quantized (see the module doc for the layout):
/// `buf[(b·groups + g)·LANES + l]` holds pixel `(first + b)·LANES + l`'s channels `4g .. 4g + 4`;
/// pixels past `hw` and channels past `c_in` are 0.
#[multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2+fma", "aarch64+neon"))]
fn pack(x: &[f32], c_in: usize, hw: usize, q: Quantize, first: usize, n: usize, buf: &mut [u32]) {
    let groups = c_in.div_ceil(4);
    // The level is an integer in 0 ..= 255, so adding 2²³ puts it in the low bits of the f32's
    // mantissa: taking it from there vectorizes to plain integer ops, where `as u32` (a
    // saturating conversion) made this loop the run's slowest (`perf`: 19 % of B0's `compute`
    // form, over the kernel's 11 %).
    let byte = |v: f32| (level(v, q.scale, q.zero_point) + 8_388_608.0).to_bits() & 0xff;
    for g in 0..groups {
        let full = 4 * g + 4 <= c_in;
        for b in 0..n {
            let p = (first + b) * LANES;
            let dst = &mut buf[(b * groups + g) * LANES..][..LANES];
            if full && p + LANES <= hw {
                let row = |c: usize| &x[(4 * g + c) * hw + p..][..LANES];
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                for l in 0..LANES {
                    dst[l] = byte(r0[l]) | byte(r1[l]) << 8 | byte(r2[l]) << 16 | byte(r3[l]) << 24;
                }
            } else {
                for (l, d) in dst.iter_mut().enumerate() {
                    *d = (0..4)
                        .filter(|c| 4 * g + c < c_in && p + l < hw)
                        .map(|c| byte(x[(4 * g + c) * hw + p + l]) << (8 * c))
                        .fold(0, |a, v| a | v);
                }
            }
        }
    }
}

/// The outputs of one packed tile (`n` blocks from block `first`) for the row blocks `rows`.
///
/// # Safety
/// `out` must be valid for writes of `c_out·hw` values, none of which another thread touches
/// in these rows and pixels meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    buf: &[u32],
    w: &Int8Weights,
    first: usize,
    n: usize,
    rows: std::ops::Range<usize>,
    hw: usize,
    act: Option<Activation>,
    kernel: Kernel,
    out: SharedOut,
) {
    let g = w.groups;
    let mut sums = [[0i32; 2 * LANES]; ROWS];
    for rb in rows {
        let weights = &w.words[rb * g * ROWS..][..g * ROWS];
        for pair in (0..n).step_by(2) {
            let a = &buf[pair * g * LANES..][..2 * g * LANES];
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Vnni` comes from `Kernel::detect` (or a test on a CPU that has it).
                Kernel::Vnni => unsafe { sums_vnni(a, weights, g, &mut sums) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Avx2` comes from `Kernel::detect` (or a test on a CPU that has it).
                Kernel::Avx2 => unsafe { sums_avx2(a, weights, g, &mut sums) },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: `Sdot` comes from `Kernel::detect` (or a test on a CPU that has it).
                Kernel::Sdot => unsafe { sums_sdot(a, weights, g, &mut sums) },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: every aarch64 CPU has NEON.
                Kernel::Neon => unsafe {
                    if w.has_min_level {
                        sums_neon::<false>(a, weights, g, &mut sums)
                    } else {
                        sums_neon::<true>(a, weights, g, &mut sums)
                    }
                },
                _ => sums_portable(a, weights, g, &mut sums),
            }
            let offsets = if kernel.signed() {
                &w.signed_offsets
            } else {
                &w.offsets
            };
            // The pair's first block holds pixels (only the padding block after it may not).
            let p = (first + pair) * LANES;
            let cols = (hw - p).min(2 * LANES);
            for (r, row_sums) in sums.iter().enumerate() {
                let o = rb * ROWS + r;
                if o >= w.c_out {
                    break;
                }
                // SAFETY: row o's pixels p .. p + cols lie inside `out` (o < c_out, p + cols
                // ≤ hw); the caller's contract gives this thread those elements. `finish`
                // writes all `cols` of them before the slice is made.
                let dst = unsafe {
                    let at = out.at(o * hw + p);
                    finish(row_sums, offsets[o], w.scales[o], w.bias[o], at, cols);
                    std::slice::from_raw_parts_mut(at, cols)
                };
                if let Some(a) = act {
                    a.apply(dst);
                }
            }
        }
    }
}

/// One output row's values from its sums: `(sum − offset) · scale + bias`, the same
/// expression (no fused multiply-add) on every target. Writes the first `cols` (≤ 32) values through `dst`, which may point at uninitialized memory.
///
/// # Safety
/// `dst` must be valid for writes of `cols` f32s.
#[inline]
unsafe fn finish(
    sums: &[i32; 2 * LANES],
    offset: i32,
    scale: f32,
    bias: f32,
    dst: *mut f32,
    cols: usize,
) {
    for (l, &s) in sums[..cols].iter().enumerate() {
        // SAFETY: l < cols, inside what the caller gives.
        unsafe { dst.add(l).write((s - offset) as f32 * scale + bias) };
    }
}

/// Sums of two blocks (`a`: block 0's groups then block 1's) with 8 rows of weights
/// (`w[g·ROWS + r]`), over `groups` groups, by `vpdpbusd`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn sums_vnni(a: &[u32], w: &[u32], groups: usize, sums: &mut [[i32; 2 * LANES]; ROWS]) {
    use std::arch::x86_64::*;
    assert!(a.len() == 2 * groups * LANES && w.len() == groups * ROWS);
    let mut acc = [[_mm512_setzero_si512(); 2]; ROWS];
    for g in 0..groups {
        // SAFETY: both loads read 16 words inside `a` (asserted length).
        let (a0, a1) = unsafe {
            (
                _mm512_loadu_si512(a.as_ptr().add(g * LANES).cast()),
                _mm512_loadu_si512(a.as_ptr().add((groups + g) * LANES).cast()),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_epi32(w[g * ROWS + r] as i32);
            acc[0] = _mm512_dpbusd_epi32(acc[0], a0, b);
            acc[1] = _mm512_dpbusd_epi32(acc[1], a1, b);
        }
    }
    for (row, acc) in sums.iter_mut().zip(acc) {
        // SAFETY: each row holds 32 i32, two vectors' worth.
        unsafe {
            _mm512_storeu_si512(row.as_mut_ptr().cast(), acc[0]);
            _mm512_storeu_si512(row.as_mut_ptr().add(LANES).cast(), acc[1]);
        }
    }
}

/// [`sums_vnni`]'s sums on AVX2, which has no `u8 · i8` dot product into i32: each word's even
/// and odd bytes are widened to i16 (the levels with zeros, the weights with their sign) and
/// `vpmaddwd` adds each pair's two products into an i32 lane, exactly — AVX2's `vpmaddubsw`
/// would saturate a pair's sum in i16 (255 · 127 · 2 > 32 767). A quarter of the two blocks (8
/// pixels) at a time keeps its 8 rows of sums in registers, the weights widened again for each
/// quarter. Before it, x86 CPUs without VNNI ran the portable loop, which the compiler did not
/// vectorize: B0's `compute` form took 137–159 ms against fp32's 16 (`edge bench`, one thread,
/// AVX2 EPYC; 112 → 672 on 14² 5.5 ms against 0.35), with it 19–30 ms (Lite0 141–149 → 17–18).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sums_avx2(a: &[u32], w: &[u32], groups: usize, sums: &mut [[i32; 2 * LANES]; ROWS]) {
    use std::arch::x86_64::*;
    assert!(a.len() == 2 * groups * LANES && w.len() == groups * ROWS);
    let even_bytes = _mm256_set1_epi32(0x00ff_00ff);
    // Quarter q: pixels 8q .. 8q + 8 of the 32, block q / 2's lanes from 8·(q % 2).
    for q in 0..4 {
        let at = (q / 2) * groups * LANES + (q % 2) * 8;
        let mut acc = [_mm256_setzero_si256(); ROWS];
        for g in 0..groups {
            // SAFETY: 8 words of block q / 2's group g, inside `a` (asserted length).
            let x = unsafe { _mm256_loadu_si256(a.as_ptr().add(at + g * LANES).cast()) };
            let (even, odd) = (_mm256_and_si256(x, even_bytes), _mm256_srli_epi16(x, 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let wb = _mm256_set1_epi32(w[g * ROWS + r] as i32);
                let w_even = _mm256_srai_epi16(_mm256_slli_epi16(wb, 8), 8);
                let w_odd = _mm256_srai_epi16(wb, 8);
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(even, w_even));
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(odd, w_odd));
            }
        }
        for (row, acc) in sums.iter_mut().zip(acc) {
            // SAFETY: 8 i32 of a row of 32, from 8q.
            unsafe { _mm256_storeu_si256(row.as_mut_ptr().add(8 * q).cast(), acc) };
        }
    }
}

/// `sums_vnni`'s sums of `(q − 128) · w` by Armv8.2's `sdot`: each of a block's four
/// 128-bit quarters (4 pixels × 4 channels) against one row's 4 weights, taken from a lane of
/// the weight register, adds 16 products into the quarter's 4 i32 lanes. The kernel keeps
/// 8 rows × 2 quarters (16 vectors) of sums in registers and goes over the groups four times.
///
/// # Safety
/// The CPU must have the dot-product extension (`dotprod`).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sums_sdot(a: &[u32], w: &[u32], groups: usize, sums: &mut [[i32; 2 * LANES]; ROWS]) {
    use std::arch::aarch64::*;
    use std::arch::asm;
    assert!(a.len() == 2 * groups * LANES && w.len() == groups * ROWS);
    let flip = vdupq_n_u8(0x80);
    // Quarters 2h and 2h + 1 of the 8 (4 per block, 2 blocks): pixels 8h .. 8h + 8.
    for h in 0..4 {
        let at = (h / 2) * groups * LANES + (h % 2) * 8;
        let mut acc = [[vdupq_n_s32(0); 2]; ROWS];
        for g in 0..groups {
            // SAFETY: 8 words of block h / 2's group g (inside `a`), and the group's 8 weights
            // (inside `w`): both lengths asserted.
            let (x0, x1, w0, w1) = unsafe {
                let x = a.as_ptr().add(at + g * LANES);
                let w = w.as_ptr().add(g * ROWS);
                (
                    vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x.cast()), flip)),
                    vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x.add(4).cast()), flip)),
                    vld1q_s8(w.cast()),
                    vld1q_s8(w.add(4).cast()),
                )
            };
            macro_rules! rows {
                ($($r:literal: $w:ident[$lane:literal]),*) => {$(
                    for (acc, x) in acc[$r].iter_mut().zip([x0, x1]) {
                        // SAFETY: `sdot` (by element) only reads and writes these registers;
                        // the CPU has it (this function's contract).
                        unsafe {
                            asm!(
                                "sdot {acc:v}.4s, {x:v}.16b, {w:v}.4b[{lane}]",
                                acc = inout(vreg) *acc,
                                x = in(vreg) x,
                                w = in(vreg) $w,
                                lane = const $lane,
                                options(pure, nomem, nostack),
                            )
                        }
                    }
                )*};
            }
            rows!(0: w0[0], 1: w0[1], 2: w0[2], 3: w0[3], 4: w1[0], 5: w1[1], 6: w1[2], 7: w1[3]);
        }
        for (row, acc) in sums.iter_mut().zip(acc) {
            // SAFETY: pixels 8h .. 8h + 8 of a row of 32.
            unsafe {
                vst1q_s32(row.as_mut_ptr().add(8 * h), acc[0]);
                vst1q_s32(row.as_mut_ptr().add(8 * h + 4), acc[1]);
            }
        }
    }
}

/// `sums_vnni`'s sums of `(q − 128) · w` by Armv8.0 NEON: `smull` multiplies a quarter of a
/// block (4 pixels × 4 channels, int8) by one row's 4 weights (repeated) into 8 i16 products
/// per half, `smlal` adds the next group's products to them when `PAIR` (then each i16 holds
/// two products, at most 2 · 128 · 127 = 32 512: `PAIR` needs weights above −128), and `sadalp`
/// adds neighbouring i16s into i32 sums, two per pixel (channels 0 + 1 and 2 + 3), which one
/// `addp` per 4 pixels joins at the end.
///
/// # Safety
/// The CPU must have NEON (every aarch64 CPU has).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
#[inline(never)] // its own symbol, for scripts/arm-int8-loops.sh (as the sdot and VNNI ones are)
unsafe fn sums_neon<const PAIR: bool>(
    a: &[u32],
    w: &[u32],
    groups: usize,
    sums: &mut [[i32; 2 * LANES]; ROWS],
) {
    use std::arch::aarch64::*;
    assert!(a.len() == 2 * groups * LANES && w.len() == groups * ROWS);
    let flip = vdupq_n_u8(0x80);
    // SAFETY (every load below): `x` reads 4 words of a block's group g (g < groups, inside
    // `a`), `w` one word of group g's 8 (inside `w`); lengths asserted. NEON is part of
    // every aarch64 CPU.
    let x = |at: usize| unsafe {
        vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a.as_ptr().add(at).cast()), flip))
    };
    let wr = |g: usize, r: usize| unsafe {
        vreinterpretq_s8_u32(vld1q_dup_u32(w.as_ptr().add(g * ROWS + r)))
    };
    // Quarters 2h and 2h + 1 (pixels 8h .. 8h + 8), rows 4v .. 4v + 4.
    for h in 0..4 {
        let at = (h / 2) * groups * LANES + (h % 2) * 8;
        for v in 0..2 {
            // Per row and quarter, pixels 0–1 and 2–3 of the quarter.
            let mut acc = [[[vdupq_n_s32(0); 2]; 2]; 4];
            // Groups g and, when `two`, g + 1 (a constant in each loop below).
            let mut step = |g: usize, two: bool| {
                let xs = [x(at + g * LANES), x(at + g * LANES + 4)];
                let ys = if two {
                    [x(at + (g + 1) * LANES), x(at + (g + 1) * LANES + 4)]
                } else {
                    xs
                };
                for (r, acc) in acc.iter_mut().enumerate() {
                    let wg = wr(g, 4 * v + r);
                    let wh = if two { wr(g + 1, 4 * v + r) } else { wg };
                    for ((acc, xg), xh) in acc.iter_mut().zip(xs).zip(ys) {
                        let mut lo = vmull_s8(vget_low_s8(xg), vget_low_s8(wg));
                        let mut hi = vmull_high_s8(xg, wg);
                        if two {
                            lo = vmlal_s8(lo, vget_low_s8(xh), vget_low_s8(wh));
                            hi = vmlal_high_s8(hi, xh, wh);
                        }
                        acc[0] = vpadalq_s16(acc[0], lo);
                        acc[1] = vpadalq_s16(acc[1], hi);
                    }
                }
            };
            let pairs = if PAIR { groups / 2 } else { 0 };
            for p in 0..pairs {
                step(2 * p, true);
            }
            for g in 2 * pairs..groups {
                step(g, false);
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = &mut sums[4 * v + r];
                for (q, acc) in acc.iter().enumerate() {
                    // SAFETY: pixels 8h + 4q .. 8h + 4q + 4 of a row of 32.
                    unsafe {
                        vst1q_s32(
                            row.as_mut_ptr().add(8 * h + 4 * q),
                            vpaddq_s32(acc[0], acc[1]),
                        )
                    };
                }
            }
        }
    }
}

/// [`sums_vnni`]'s sums by a portable loop.
#[multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2+fma", "aarch64+neon"))]
#[inline(never)] // its own symbol, for scripts/arm-int8-loops.sh
fn sums_portable(a: &[u32], w: &[u32], groups: usize, sums: &mut [[i32; 2 * LANES]; ROWS]) {
    for row in sums.iter_mut() {
        row.fill(0);
    }
    for g in 0..groups {
        for (r, row) in sums.iter_mut().enumerate() {
            let wb = w[g * ROWS + r].to_le_bytes().map(|b| i32::from(b as i8));
            for (j, s) in row.iter_mut().enumerate() {
                let word = a[((j / LANES) * groups + g) * LANES + j % LANES];
                let ab = word.to_le_bytes().map(i32::from);
                *s += ab[0] * wb[0] + ab[1] * wb[1] + ab[2] * wb[2] + ab[3] * wb[3];
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::infer::depthwise::tests::values;

    /// tract's uint8 level of each of `x`, computed independently of `fake_quant::level`'s
    /// rounding trick: `clamp(round_ties_even(x·s) + z, 0, 255)`, a NaN at `z`.
    pub(in crate::infer) fn levels(x: &[f32], q: Quantize) -> Vec<i64> {
        x.iter()
            .map(|&v| {
                let t = v * q.scale;
                if t.is_nan() {
                    q.zero_point as i64
                } else {
                    (t.round_ties_even() + q.zero_point).clamp(0.0, 255.0) as i64
                }
            })
            .collect()
    }

    /// Int8 weights from `seed`: `c_out × c_in` levels in −127 ..= 127.
    pub(in crate::infer) fn int8_levels(len: usize, seed: u32) -> Vec<i8> {
        values(len, seed)
            .iter()
            .map(|v| (v * 127.49).round() as i8)
            .collect()
    }

    /// The product by hand: i64 sums of `(q_x − z') · q_w`, each then scaled and biased as
    /// `finish` does.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        hw: usize,
        q: Quantize,
        w: &[i8],
        (c_out, c_in): (usize, usize),
        row_scales: &[f32],
        (xs, xz): (f32, i32),
        bias: &[f32],
    ) -> Vec<f32> {
        let qx = levels(x, q);
        let mut y = vec![0.0; c_out * hw];
        for o in 0..c_out {
            for p in 0..hw {
                let sum: i64 = (0..c_in)
                    .map(|i| i64::from(w[o * c_in + i]) * (qx[i * hw + p] - i64::from(xz)))
                    .sum();
                y[o * hw + p] = sum as f32 * (xs * row_scales[o]) + bias[o];
            }
        }
        y
    }

    /// Bit for bit the hand-computed product, on every kernel this CPU runs ([`kernels`]), on one
    /// thread and split over two: channel counts that fill groups of 4 and that do not (3, 37, 18:
    /// an odd number of groups, which the NEON kernel takes in pairs), planes of one partial block
    /// (17 pixels) up to many tiles (1 000, whose last block is partial), output channels short of
    /// a row block (5) and many (96), inputs that clamp at 0 and at 255, and a NaN (quantized to
    /// the zero point).
    #[test]
    fn sums_equal_the_hand_computed_product_bit_for_bit() {
        let cases = [
            (3, 5, 17),
            (16, 96, 400),
            (37, 24, 49),
            (18, 8, 33),
            (96, 16, 1000),
            (1152, 40, 49),
        ];
        let kernels = kernels();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (k, (c_in, c_out, hw)) in cases.into_iter().enumerate() {
            let seed = 7 * k as u32;
            let mut x: Vec<f32> = values(c_in * hw, seed).iter().map(|v| v * 3.0).collect();
            x[hw / 2] = f32::NAN;
            let q = Quantize {
                scale: 60.0,
                zero_point: 100.0,
            };
            let w = int8_levels(c_out * c_in, seed + 1);
            let scales: Vec<f32> = values(c_out, seed + 2)
                .iter()
                .map(|v| 0.01 + v.abs() / 50.0)
                .collect();
            let bias = values(c_out, seed + 3);
            let dq = (1.0 / 60.0, 100);
            let packed = Int8Weights::new(&w, c_out, c_in, &scales, dq, Some(&bias));
            let want = reference(&x, hw, q, &w, (c_out, c_in), &scales, dq, &bias);
            let qx = levels(&x, q);
            assert!(
                qx.contains(&0) && qx.contains(&255),
                "the case reaches both clamps"
            );
            for &kernel in &kernels {
                for parallel in [false, true] {
                    let mut out = vec![MaybeUninit::new(f32::NAN); c_out * hw];
                    let mut run = || product(&x, hw, q, &packed, None, kernel, parallel, &mut out);
                    if parallel {
                        pool.install(run)
                    } else {
                        run()
                    }
                    let what = format!("{c_in}→{c_out} on {hw}, {kernel:?}, parallel {parallel}");
                    assert_bits(&want, &out, &what);
                }
            }
        }
    }

    /// Every kernel this CPU runs: the portable loop, and VNNI and AVX2, AVX2, or `sdot` and
    /// NEON where the CPU has them (the aarch64 ones run under qemu-aarch64, whose CPU has
    /// `sdot`).
    fn kernels() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        match Kernel::detect() {
            Kernel::Portable => {
                eprintln!(
                    "this CPU has no AVX-512 VNNI, AVX2 or NEON: only the portable kernel is tested"
                )
            }
            Kernel::Vnni => kernels.extend([Kernel::Vnni, Kernel::Avx2]),
            Kernel::Sdot => kernels.extend([Kernel::Sdot, Kernel::Neon]),
            other => kernels.push(other),
        }
        kernels
    }

    /// `got` holds `want`'s values bit for bit.
    fn assert_bits(want: &[f32], got: &[MaybeUninit<f32>], what: &str) {
        assert_eq!(want.len(), got.len(), "{what}");
        for (at, (a, b)) in want.iter().zip(got).enumerate() {
            let b = unsafe { b.assume_init() };
            assert!(
                a.to_bits() == b.to_bits(),
                "{what}: y[{at}] want {a}, got {b}"
            );
        }
    }

    /// Weights at −128 against inputs at level 0 (−128 once the Arm kernels flip the top bit):
    /// each product is 16 384, and two of them in one i16 (the NEON kernel's pairing) would
    /// overflow to −32 768. Every kernel gives the hand-computed sums: row 0 all −128,
    /// `Σ (0 − 3) · (−128) = 16 · 384 = 6 144`, then ·0.5 + 1 = 3 073; row 1 alternates −128
    /// and 127, `8 · 384 + 8 · (−381) = 24`, 13.
    #[test]
    fn weights_at_minus_128_do_not_overflow() {
        let (c_in, c_out, hw) = (16, 2, 32);
        let x = vec![-10.0; c_in * hw];
        let q = Quantize {
            scale: 1.0,
            zero_point: 3.0,
        };
        let mut w = vec![-128i8; c_in];
        w.extend((0..c_in).map(|i| if i % 2 == 0 { -128i8 } else { 127 }));
        let dq = (1.0, 3);
        let packed = Int8Weights::new(&w, c_out, c_in, &[0.5, 0.5], dq, Some(&[1.0, 1.0]));
        let want: Vec<f32> = [3073.0, 13.0]
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, hw))
            .collect();
        assert_eq!(
            want,
            reference(&x, hw, q, &w, (c_out, c_in), &[0.5, 0.5], dq, &[1.0, 1.0])
        );
        for kernel in kernels() {
            let mut out = vec![MaybeUninit::new(f32::NAN); c_out * hw];
            product(&x, hw, q, &packed, None, kernel, false, &mut out);
            assert_bits(&want, &out, &format!("{kernel:?}"));
        }
    }

    /// With ReLU6 the outputs are the product's, clamped to 0 ..= 6.
    #[test]
    fn relu6_clamps_the_outputs() {
        let (c_in, c_out, hw) = (8, 8, 64);
        let x: Vec<f32> = values(c_in * hw, 3).iter().map(|v| v * 2.0).collect();
        let q = Quantize {
            scale: 50.0,
            zero_point: 128.0,
        };
        let w = int8_levels(c_out * c_in, 4);
        let scales = vec![0.02; c_out];
        let dq = (0.02, 128);
        let packed = Int8Weights::new(&w, c_out, c_in, &scales, dq, None);
        let want = reference(&x, hw, q, &w, (c_out, c_in), &scales, dq, &[0.0; 8]);
        let mut out = vec![MaybeUninit::new(f32::NAN); c_out * hw];
        product(
            &x,
            hw,
            q,
            &packed,
            Some(Activation::Relu6),
            Kernel::detect(),
            false,
            &mut out,
        );
        assert!(want.iter().any(|&v| v < 0.0) && want.iter().any(|&v| v > 6.0));
        for (a, b) in want.iter().zip(&out) {
            assert_eq!(a.clamp(0.0, 6.0), unsafe { b.assume_init() });
        }
    }
}
