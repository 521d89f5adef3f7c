//! The depthwise convolution on a channels-last input `[n, h, w, c]`, its output `[n, oh, ow,
//! c]` or in planes `[n, c, oh, ow]` (what the device runs, `shared::infer::depthwise`), the
//! weights of each tap `[c]` contiguous. Channels sit in the vector lanes as they lie in
//! memory, so no plane is staged: the NCHW paths copy every input plane into a
//! padded (at stride 2, phase-split) or 16-channel-interleaved buffer first, which `perf` put at
//! most of B0's stride-2 layers' time (docs/PERFORMANCE.md). onnxruntime runs its convolutions
//! in a blocked channels-inner layout (NCHWc) for the same reason.
//!
//! The arithmetic is [`super::forward_with`]'s: each output starts from its channel's bias and
//! adds one rounded product then one rounded sum per tap, in row-major kernel order, taps over
//! the padding adding `w·0`; so the values equal the NCHW paths' (and tract's) bit for bit
//! (tested below). On x86_64 CPUs with AVX-512 the square 3×3 and 5×5 kernels at strides 1 and 2
//! (EfficientNet's) run on intrinsics: 16 channels by up to 8 output columns in registers, each
//! input vector of a kernel row loaded once for all the columns and taps that read it; every
//! other geometry and CPU runs the portable loop, vectorized over the channels by the compiler.
use std::mem::MaybeUninit;

use multiversion::multiversion;

use rayon::prelude::*;

use super::{Geometry, Spread};
use crate::shared_out::SharedOut;

/// A layer's weights `[kh·kw, c]` and bias `[c]` in the channels-last order.
#[derive(Debug, Clone)]
pub struct ChannelsLast {
    geo: Geometry,
    /// `[kh·kw, c]`: tap-major, the channels of each tap contiguous.
    w: Vec<f32>,
    /// `[c]`, zero without a bias.
    bias: Vec<f32>,
}

impl ChannelsLast {
    /// `w` `[c, kh·kw]` (the NCHW weight `[c, 1, kh, kw]`) and the bias `[c]` (none is zero)
    /// of the layer `geo`.
    ///
    /// # Panics
    /// If a length does not match `geo`.
    pub fn new(w: &[f32], bias: Option<&[f32]>, geo: &Geometry) -> Self {
        let taps = geo.kh * geo.kw;
        assert_eq!(w.len(), geo.c * taps, "depthwise: weight length");
        if let Some(b) = bias {
            assert_eq!(b.len(), geo.c, "depthwise: bias length");
        }
        let mut wt = vec![0.0; w.len()];
        for (ch, taps_of) in w.chunks_exact(taps.max(1)).enumerate() {
            for (t, &v) in taps_of.iter().enumerate() {
                wt[t * geo.c + ch] = v;
            }
        }
        ChannelsLast {
            geo: *geo,
            w: wt,
            bias: bias.map_or_else(|| vec![0.0; geo.c], <[f32]>::to_vec),
        }
    }

    /// The layer.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// `y` `[n, oh, ow, c]` (possibly uninitialized; every element is written) from `x`
    /// `[n, h, w, c]`, on the calling thread.
    ///
    /// # Panics
    /// If a length does not match the layer.
    pub fn forward_into(&self, x: &[f32], y: &mut [MaybeUninit<f32>]) {
        self.run(x, y, Path::best(&self.geo), false, Spread::Serial, &|_| {});
    }

    /// [`forward_into`](Self::forward_into) with the output in planes, `[n, c, oh, ow]`, and
    /// a choice of threads (blocks of 16 channels spread over rayon's): the device's MBConv
    /// reads a channels-last input (its expansion writes one) and hands the planes on to the
    /// rest of tract's CHW graph. `then` runs on each finished block's planes on the thread
    /// that wrote them, as [`super::forward_into`]'s does.
    ///
    /// # Panics
    /// If a length does not match the layer.
    pub fn forward_into_planes(
        &self,
        x: &[f32],
        y: &mut [MaybeUninit<f32>],
        spread: Spread,
        then: &(dyn Fn(&mut [f32]) + Sync),
    ) {
        self.run(x, y, Path::best(&self.geo), true, spread, then);
    }

    /// The input rows `lo .. hi` that output rows `oys.0 .. oys.1` read (those inside the
    /// image; none for no rows).
    pub fn input_rows(&self, oys: (usize, usize)) -> (usize, usize) {
        let g = &self.geo;
        if oys.0 >= oys.1 {
            return (0, 0);
        }
        let lo = (oys.0 * g.sh).saturating_sub(g.ph).min(g.h);
        let hi = ((oys.1 - 1) * g.sh + g.kh).saturating_sub(g.ph).min(g.h);
        (lo, hi.max(lo))
    }

    /// Output rows `oys.0 .. oys.1` of a one-image layer, in planes `[c, oh, ow]` at `y`, from
    /// `x`, the image's input rows from `row0` on (`[rows, w, c]`, at least those
    /// [`input_rows`](Self::input_rows) names), on the calling thread; then `then` on each
    /// channel's new rows. fovea's expansion and depthwise conv in one op runs its layer band
    /// by band through this (`infer::expand_depthwise`).
    ///
    /// # Safety
    /// `y` must be valid for writes of the layer's `c·oh·ow` outputs, the rows `oys` of them
    /// touched by no other thread meanwhile.
    ///
    /// # Panics
    /// If the layer has more than one image, `oys` is not inside `0 .. oh`, or `x` lacks a row
    /// the band reads.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))]
    pub(crate) unsafe fn band_into_planes(
        &self,
        x: &[f32],
        row0: usize,
        oys: (usize, usize),
        y: SharedOut,
        then: &dyn Fn(&mut [f32]),
    ) {
        // SAFETY: the caller's.
        unsafe { self.band_with(Path::best(&self.geo), x, row0, oys, y, then) }
    }

    /// [`band_into_planes`](Self::band_into_planes) on `path`.
    ///
    /// # Safety
    /// As [`band_into_planes`](Self::band_into_planes)'s.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))]
    unsafe fn band_with(
        &self,
        path: Path,
        x: &[f32],
        row0: usize,
        oys: (usize, usize),
        y: SharedOut,
        then: &dyn Fn(&mut [f32]),
    ) {
        let g = &self.geo;
        assert!(
            g.n == 1 && oys.0 <= oys.1 && oys.1 <= g.oh,
            "depthwise band: rows {oys:?}"
        );
        let (lo, hi) = self.input_rows(oys);
        let row = g.w * g.c;
        assert!(
            oys.0 == oys.1 || (row0 <= lo && x.len() >= (hi - row0) * row),
            "depthwise band: rows {oys:?} read input rows {lo} .. {hi}, given {} from {row0}",
            x.len() / row.max(1)
        );
        if oys.0 == oys.1 || g.c == 0 {
            return;
        }
        // SAFETY: `x` holds the rows the band reads (asserted); the caller's contract covers
        // `y`.
        unsafe {
            let image = path.kernel();
            image(
                x,
                &self.w,
                &self.bias,
                g,
                y.at(0),
                true,
                (0, g.c),
                oys,
                row0,
            );
            let plane = g.oh * g.ow;
            for ch in 0..g.c {
                then(std::slice::from_raw_parts_mut(
                    y.at(ch * plane + oys.0 * g.ow),
                    (oys.1 - oys.0) * g.ow,
                ));
            }
        }
    }

    /// Whether this CPU runs `geo` on intrinsics (else on the portable loop, which has not
    /// been measured against the NCHW paths).
    pub fn has_simd(geo: &Geometry) -> bool {
        Path::best(geo) != Path::Portable
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        x: &[f32],
        y: &mut [MaybeUninit<f32>],
        path: Path,
        planes: bool,
        spread: Spread,
        then: &(dyn Fn(&mut [f32]) + Sync),
    ) {
        let g = &self.geo;
        assert_eq!(x.len(), g.n * g.h * g.w * g.c, "depthwise: input length");
        assert_eq!(y.len(), g.n * g.oh * g.ow * g.c, "depthwise: output length");
        if y.is_empty() {
            return;
        }
        let (image_in, image_out) = (g.h * g.w * g.c, g.oh * g.ow * g.c);
        for (xi, yi) in x
            .chunks_exact(image_in.max(1))
            .zip(y.chunks_exact_mut(image_out))
        {
            let out = SharedOut(yi.as_mut_ptr().cast::<f32>());
            // Channels `range.0 .. range.1` of this image.
            let channels = |range: (usize, usize)| {
                // SAFETY: `yi` holds the image's outputs (asserted lengths); each call writes
                // only its own channels' (planes or lanes), a range no other call has.
                unsafe {
                    let image = path.kernel();
                    image(
                        xi,
                        &self.w,
                        &self.bias,
                        g,
                        out.at(0),
                        planes,
                        range,
                        (0, g.oh),
                        0,
                    );
                    if planes {
                        // These channels' planes, contiguous and just written.
                        let plane = g.oh * g.ow;
                        let len = (range.1 - range.0) * plane;
                        then(std::slice::from_raw_parts_mut(out.at(range.0 * plane), len));
                    }
                }
            };
            match spread {
                Spread::Rayon => (0..g.c.div_ceil(16))
                    .into_par_iter()
                    .for_each(|k| channels((k * 16, (k * 16 + 16).min(g.c)))),
                _ => channels((0, g.c)),
            }
        }
    }
}

/// Which loop runs a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// AVX-512 intrinsics ([`avx512`]), for the geometries it covers on CPUs that have it.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// The compiler-vectorized loop ([`portable`]), everywhere.
    Portable,
}

/// A path's loop over output rows and channels of one image: `(x, w, bias, geometry, y,
/// planes out, channels, output rows, x's first row)`, as [`avx512::image`] takes them.
type Kernel = unsafe fn(
    &[f32],
    &[f32],
    &[f32],
    &Geometry,
    *mut f32,
    bool,
    (usize, usize),
    (usize, usize),
    usize,
);

impl Path {
    /// The loop this path runs.
    fn kernel(self) -> Kernel {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => avx512::image,
            Path::Portable => portable,
        }
    }

    fn best(geo: &Geometry) -> Self {
        #[cfg(target_arch = "x86_64")]
        if avx512::covers(geo) && std::arch::is_x86_feature_detected!("avx512f") {
            return Path::Avx512;
        }
        let _ = geo;
        Path::Portable
    }
}

/// One image's output rows `rows.0 .. rows.1`, channels `lo .. hi`: for each output pixel,
/// the bias then every tap's `w·x` over the channels (`x` = 0 over the padding); `x` holds the
/// image's input rows from `row0` on.
///
/// # Safety
/// As [`avx512::image`]'s.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
unsafe fn portable(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    g: &Geometry,
    y: *mut f32,
    planes: bool,
    (lo, hi): (usize, usize),
    rows: (usize, usize),
    row0: usize,
) {
    let c = g.c;
    let mut acc = vec![0.0f32; hi - lo];
    for oy in rows.0..rows.1 {
        for ox in 0..g.ow {
            acc.copy_from_slice(&bias[lo..hi]);
            for i in 0..g.kh {
                let iy = (oy * g.sh + i).checked_sub(g.ph).filter(|&iy| iy < g.h);
                for j in 0..g.kw {
                    let ix = (ox * g.sw + j).checked_sub(g.pw).filter(|&ix| ix < g.w);
                    let wv = &w[(i * g.kw + j) * c + lo..][..hi - lo];
                    match iy.zip(ix) {
                        Some((iy, ix)) => {
                            let xv = &x[((iy - row0) * g.w + ix) * c + lo..][..hi - lo];
                            for ((a, &wk), &xk) in acc.iter_mut().zip(wv).zip(xv) {
                                *a += wk * xk;
                            }
                        }
                        None => {
                            for (a, &wk) in acc.iter_mut().zip(wv) {
                                *a += wk * 0.0;
                            }
                        }
                    }
                }
            }
            // SAFETY: inside the image's outputs, these channels' (the caller's contract).
            unsafe {
                if planes {
                    let plane = g.oh * g.ow;
                    for (k, &a) in acc.iter().enumerate() {
                        *y.add((lo + k) * plane + oy * g.ow + ox) = a;
                    }
                } else {
                    let at = (oy * g.ow + ox) * c + lo;
                    for (k, &a) in acc.iter().enumerate() {
                        *y.add(at + k) = a;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The square 3×3 and 5×5 kernels at strides 1 and 2 in AVX-512 intrinsics.
    //!
    //! The functions take the layer's slices, output and channel range one argument at a time:
    //! bundled in a struct passed by value they ran slower (`cargo bench -p fovea-shared --bench
    //! depthwise`, two alternating rounds: channels-last 1.25 / 1.25 → 1.43 / 1.47 ms, planes
    //! out 1.53 / 1.47 → 1.60 / 1.62).
    use super::Geometry;
    use std::arch::x86_64::{
        __m512, __mmask16, _mm256_castpd_ps, _mm256_storeu_ps, _mm512_add_ps, _mm512_castps_pd,
        _mm512_castps512_ps256, _mm512_extractf64x4_pd, _mm512_loadu_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_permutex2var_ps, _mm512_setr_epi32,
        _mm512_setzero_ps, _mm512_shuffle_ps, _mm512_storeu_ps, _mm512_unpackhi_ps,
        _mm512_unpacklo_ps,
    };

    /// Whether [`image`] runs `geo`: a square 3×3 or 5×5 kernel at the same stride 1 or 2 on
    /// both axes.
    pub(super) fn covers(geo: &Geometry) -> bool {
        geo.kh == geo.kw && matches!(geo.kh, 3 | 5) && geo.sh == geo.sw && matches!(geo.sh, 1 | 2)
    }

    /// Output rows `oys.0 .. oys.1` of one image of a layer [`covers`] takes, channels
    /// `chans.0 .. chans.1` (`chans.0` a multiple of 16, `chans.1` one too or `c`); `x` holds
    /// the image's input rows from `row0` on.
    ///
    /// # Safety
    /// `y` valid for writes of the image's `oh·ow·c` outputs, those of these rows and channels
    /// touched by no other thread meanwhile; `w`, `bias` of the lengths `ChannelsLast::run`
    /// checks; `x` holding every input row those output rows read (`ChannelsLast::band_into_planes`
    /// or a whole image).
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn image(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        g: &Geometry,
        y: *mut f32,
        planes: bool,
        chans: (usize, usize),
        oys: (usize, usize),
        row0: usize,
    ) {
        assert!(covers(g) && std::arch::is_x86_feature_detected!("avx512f"));
        assert!(chans.0.is_multiple_of(16) && chans.0 < chans.1 && chans.1 <= g.c);
        assert!(oys.0 <= oys.1 && oys.1 <= g.oh);
        // SAFETY: AVX-512F is present (asserted); the rest is the caller's.
        unsafe {
            match (g.kh, g.sh) {
                (3, 1) => rows::<3, 1>(x, w, bias, g, y, planes, chans, oys, row0),
                (3, 2) => rows::<3, 2>(x, w, bias, g, y, planes, chans, oys, row0),
                (5, 1) => rows::<5, 1>(x, w, bias, g, y, planes, chans, oys, row0),
                _ => rows::<5, 2>(x, w, bias, g, y, planes, chans, oys, row0),
            }
        }
    }

    /// Every output row in blocks of 8 columns, the last block overlapping the one before
    /// where 8 does not divide the row (its shared outputs are computed twice, to the same
    /// values); a row of fewer than 8 columns is one block of its width.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const K: usize, const S: usize>(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        g: &Geometry,
        y: *mut f32,
        planes: bool,
        chans: (usize, usize),
        oys: (usize, usize),
        row0: usize,
    ) {
        // SAFETY (both calls): AVX-512F (this function's feature).
        unsafe {
            match g.ow {
                8.. => blocks::<K, S, 8>(x, w, bias, g, y, planes, chans, oys, row0),
                7 => blocks::<K, S, 7>(x, w, bias, g, y, planes, chans, oys, row0),
                6 => blocks::<K, S, 6>(x, w, bias, g, y, planes, chans, oys, row0),
                5 => blocks::<K, S, 5>(x, w, bias, g, y, planes, chans, oys, row0),
                4 => blocks::<K, S, 4>(x, w, bias, g, y, planes, chans, oys, row0),
                3 => blocks::<K, S, 3>(x, w, bias, g, y, planes, chans, oys, row0),
                2 => blocks::<K, S, 2>(x, w, bias, g, y, planes, chans, oys, row0),
                _ => blocks::<K, S, 1>(x, w, bias, g, y, planes, chans, oys, row0),
            }
        }
    }

    /// The input rows one block of 16 channels reads for a band of output rows, in bytes: a
    /// band runs channel block by channel block, so each input vector comes from L1 (32 KiB on
    /// this machine's AMD EPYC and on Cortex-A72/A76) for every output row that reads it.
    /// Rows over the whole width, channel blocks innermost (before), read each input vector
    /// from L2 once per kernel row (B0's 144 channels on 56×56: 96 KiB between two reads of a
    /// row). `cargo bench -p fovea-shared --bench depthwise`: B0's layers channels-last in,
    /// planes out 1.48 → 1.36 ms (16 KiB 1.38, 48 KiB 1.37, no bands 1.40); 144 channels on
    /// 56×56 202 → 179 µs, 240 on 28×28 167 → 138; channels-last out 1.25 → 1.29.
    const L1_BAND_BYTES: usize = 24 * 1024;

    /// [`rows`] with blocks of `B ≤ ow` columns, in bands of output rows (`L1_BAND_BYTES`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn blocks<const K: usize, const S: usize, const B: usize>(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        g: &Geometry,
        y: *mut f32,
        planes: bool,
        chans: (usize, usize),
        oys: (usize, usize),
        row0: usize,
    ) {
        // Output rows in bands whose input rows' 16 channels fit in L1; each block of 16
        // channels runs over the whole band before the next.
        let rows_in = (L1_BAND_BYTES / (g.w * 64).max(1)).max(K);
        let band = (rows_in - K) / S + 1;
        for oy0 in (oys.0..oys.1).step_by(band) {
            for c0 in (chans.0..chans.1).step_by(16) {
                for oy in oy0..(oy0 + band).min(oys.1) {
                    for start in (0..g.ow).step_by(B) {
                        let ox = start.min(g.ow - B);
                        // SAFETY: AVX-512F (the caller's); `block` reads and writes inside `x`,
                        // `w`, `bias`, `y` (its contract: `ox + B ≤ ow`, `oy < oh`, `c0 < c`).
                        unsafe {
                            if g.c - c0 >= 16 {
                                block::<K, S, B, true>(x, w, bias, g, y, oy, ox, c0, planes, row0);
                            } else {
                                block::<K, S, B, false>(x, w, bias, g, y, oy, ox, c0, planes, row0);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes 8 output columns × 16 channels (`acc[b]`: column `b`, lane `k` channel `k`) into
    /// 16 planes: channel `k`'s 8 values at `out + k·plane`. An 8×8 transpose in each 256-bit
    /// half (channels 0–7 and 8–15) by unpacks and shuffles within 128-bit lanes, then a
    /// two-source permute of the 128-bit lanes; 16 stores of 8 values.
    ///
    /// # Safety
    /// AVX-512F; `out + k·plane .. + 8` writable for `k < 16`.
    #[inline(always)]
    unsafe fn store_planes(acc: [__m512; 8], out: *mut f32, plane: usize) {
        // SAFETY: the caller's.
        unsafe {
            let [r0, r1, r2, r3, r4, r5, r6, r7] = acc;
            let (t0, t1) = (_mm512_unpacklo_ps(r0, r1), _mm512_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm512_unpacklo_ps(r2, r3), _mm512_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm512_unpacklo_ps(r4, r5), _mm512_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm512_unpacklo_ps(r6, r7), _mm512_unpackhi_ps(r6, r7));
            // Per 128-bit lane: u0 = columns 0–3 of element 0 (lane's first), u1 element 1, …
            let u0 = _mm512_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm512_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm512_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm512_shuffle_ps::<0xEE>(t1, t3);
            let v0 = _mm512_shuffle_ps::<0x44>(t4, t6);
            let v1 = _mm512_shuffle_ps::<0xEE>(t4, t6);
            let v2 = _mm512_shuffle_ps::<0x44>(t5, t7);
            let v3 = _mm512_shuffle_ps::<0xEE>(t5, t7);
            // 128-bit lanes [a0, b0, a2, b2] (channels j, j + 8) and [a1, b1, a3, b3] (j + 4,
            // j + 12).
            let even = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
            let odd = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
            for (j, (u, v)) in [(u0, v0), (u1, v1), (u2, v2), (u3, v3)]
                .into_iter()
                .enumerate()
            {
                for (k, idx) in [(j, even), (j + 4, odd)] {
                    let o = _mm512_permutex2var_ps(u, idx, v);
                    let lo = _mm512_castps512_ps256(o);
                    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(o)));
                    _mm256_storeu_ps(out.add(k * plane), lo);
                    _mm256_storeu_ps(out.add((k + 8) * plane), hi);
                }
            }
        }
    }

    /// Outputs `ox0 .. ox0 + B` of row `oy`, channels `c0 .. c0 + 16` (`FULL`) or `c0 .. c`:
    /// the bias, then per kernel row the `(B − 1)·S + K` input vectors it reads (zero outside
    /// the image), each loaded once, and per tap one weight vector and `B` products and sums.
    /// Loads and stores are masked only in the last, partial block of channels (a masked
    /// store was the hottest instruction of the NCHW staging, `depthwise/avx512.rs`). The
    /// loops run over constants, so the compiler unrolls them and keeps both arrays in
    /// registers.
    ///
    /// # Safety
    /// AVX-512F; `ox0 + B ≤ ow`, `oy < oh`, `c0 + 16 ≤ c` when `FULL`, else `c0 < c`; `w`,
    /// `bias`, `y` of the lengths `ChannelsLast::run` checks, `x` the image's input rows from
    /// `row0` on, at least those this output row reads.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn block<const K: usize, const S: usize, const B: usize, const FULL: bool>(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        g: &Geometry,
        y: *mut f32,
        oy: usize,
        ox0: usize,
        c0: usize,
        planes: bool,
        row0: usize,
    ) {
        let c = g.c;
        let mask: __mmask16 = if FULL { 0xffff } else { (1 << (c - c0)) - 1 };
        // SAFETY: AVX-512F (the caller's); `p .. p + 16` readable when FULL, else the lanes of
        // `mask`.
        let load = |p: *const f32| unsafe {
            if FULL {
                _mm512_loadu_ps(p)
            } else {
                _mm512_maskz_loadu_ps(mask, p)
            }
        };
        // SAFETY (all loads and stores below): masked to the channels `c0 ..` that exist; the
        // pixel offsets are inside the image (checked against `h`, `w` before each load) or
        // the output block (the caller's bounds).
        unsafe {
            let mut acc = [load(bias.as_ptr().add(c0)); B];
            let ix0 = (ox0 * S) as isize - g.pw as isize;
            // The kernel row's input columns that lie in the image: `lo .. hi` of `0 .. n`.
            let n = (B - 1) * S + K;
            let lo = (-ix0).max(0) as usize;
            let hi = (g.w as isize - ix0).clamp(0, n as isize) as usize;
            for i in 0..K {
                let iy = (oy * S + i) as isize - g.ph as isize;
                let mut inp = [_mm512_setzero_ps(); 24];
                if (0..g.h as isize).contains(&iy) {
                    let row = x.as_ptr().add((iy as usize - row0) * g.w * c + c0);
                    #[allow(clippy::needless_range_loop)] // unrolled over a constant `n`
                    for k in 0..n {
                        if (lo..hi).contains(&k) {
                            inp[k] = load(row.offset((ix0 + k as isize) * c as isize));
                        }
                    }
                }
                for j in 0..K {
                    let wv: __m512 = load(w.as_ptr().add((i * K + j) * c + c0));
                    for (b, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(wv, inp[b * S + j]));
                    }
                }
            }
            if planes && FULL && B == 8 {
                let plane = g.oh * g.ow;
                let out = y.add(c0 * plane + oy * g.ow + ox0);
                store_planes(std::array::from_fn(|b| acc[b % B]), out, plane);
            } else if planes {
                // Through a tile on the stack: lane `k` of column `b` is channel `c0 + k`'s
                // output `b` of the block, contiguous in its plane.
                let mut tile = [[0.0f32; 16]; B];
                for (t, a) in tile.iter_mut().zip(acc) {
                    _mm512_storeu_ps(t.as_mut_ptr(), a);
                }
                let plane = g.oh * g.ow;
                let out = y.add(c0 * plane + oy * g.ow + ox0);
                for k in 0..if FULL { 16 } else { c - c0 } {
                    for (b, t) in tile.iter().enumerate() {
                        *out.add(k * plane + b) = t[k];
                    }
                }
            } else {
                let out = y.add((oy * g.ow + ox0) * c + c0);
                for (b, a) in acc.into_iter().enumerate() {
                    if FULL {
                        _mm512_storeu_ps(out.add(b * c), a);
                    } else {
                        _mm512_mask_storeu_ps(out.add(b * c), mask, a);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::forward_with;
    use super::super::tests::values;
    use super::*;

    /// The paths this CPU runs for `geo`.
    fn paths(geo: &Geometry) -> Vec<Path> {
        #[cfg(target_arch = "x86_64")]
        if avx512::covers(geo) && std::arch::is_x86_feature_detected!("avx512f") {
            return vec![Path::Portable, Path::Avx512];
        }
        let _ = geo;
        vec![Path::Portable]
    }

    /// `[n, a, b, c]` from `[n, c, a, b]`.
    fn to_last(v: &[f32], n: usize, c: usize, plane: usize) -> Vec<f32> {
        let mut out = vec![0.0; v.len()];
        for i in 0..n {
            for ch in 0..c {
                for p in 0..plane {
                    out[(i * plane + p) * c + ch] = v[(i * c + ch) * plane + p];
                }
            }
        }
        out
    }

    /// Each path's outputs equal the NCHW kernel's (the values tract's own depthwise op gives,
    /// `shared::infer::depthwise`) bit for bit: B0's kinds of layer (3×3 and 5×5, strides 1
    /// and 2, TF's "same" padding with the extra row and column at the end), channel counts
    /// that fill 16 lanes, leave a partial block or stay under one, outputs of 1 to 13 columns
    /// (every block width), a batch of 2, symmetric and no padding, a kernel the intrinsics do
    /// not cover (3×5), and no bias.
    #[test]
    fn equals_the_nchw_kernel_bit_for_bit() {
        // (c, h, w, kh, kw, s, TF "same" padding (else none), bias)
        let cases = [
            (32, 13, 13, 3, 3, 1, true, true),
            (48, 14, 14, 5, 5, 2, true, true),
            (37, 9, 12, 3, 3, 2, false, true),
            (20, 7, 7, 5, 5, 1, true, true),
            (5, 6, 1, 3, 3, 2, true, true),
            (17, 8, 3, 5, 5, 1, true, false),
            (16, 11, 23, 3, 3, 1, false, true),
            (24, 6, 9, 3, 5, 1, true, true),
            (40, 14, 14, 3, 3, 2, true, true),
        ];
        for (c, h, w, kh, kw, s, same, with_bias) in cases {
            // "same": ⌈side / s⌉ outputs, half the padding before (the extra one after);
            // none: the outputs that fit.
            let size = |side: usize, k: usize| {
                if same {
                    let out = side.div_ceil(s);
                    (out, ((out - 1) * s + k).saturating_sub(side) / 2)
                } else {
                    ((side - k) / s + 1, 0)
                }
            };
            let ((oh, ph), (ow, pw)) = (size(h, kh), size(w, kw));
            let geo = Geometry {
                n: 2,
                c,
                h,
                w,
                kh,
                kw,
                oh,
                ow,
                sh: s,
                sw: s,
                ph,
                pw,
            };
            let x = values(geo.n * c * h * w, 11);
            let wt = values(c * kh * kw, 12);
            let bias = values(c, 13);
            let bias = with_bias.then_some(&bias[..]);
            let nchw = forward_with(&x, &wt, bias, &geo, Spread::Serial);
            let want: Vec<u32> = to_last(&nchw, geo.n, c, oh * ow)
                .iter()
                .map(|v| v.to_bits())
                .collect();
            let layer = ChannelsLast::new(&wt, bias, &geo);
            let xl = to_last(&x, geo.n, c, h * w);
            let want_planes: Vec<u32> = nchw.iter().map(|v| v.to_bits()).collect();
            for path in paths(&geo) {
                for (planes, want, spread) in [
                    (false, &want, Spread::Serial),
                    (true, &want_planes, Spread::Serial),
                    (true, &want_planes, Spread::Rayon),
                ] {
                    let mut y = vec![MaybeUninit::new(f32::NAN); want.len()];
                    layer.run(&xl, &mut y, path, planes, spread, &|_| {});
                    // SAFETY: initialized above (NaN), then written.
                    let got: Vec<u32> = y
                        .iter()
                        .map(|v| unsafe { v.assume_init() }.to_bits())
                        .collect();
                    assert_eq!(
                        &got, want,
                        "{geo:?} {path:?}, planes out {planes}, {spread:?}"
                    );
                }
            }
        }
    }

    /// One image run band by band (`band_into_planes`, each band given only the input rows
    /// it reads) equals the whole image in planes bit for bit, on each path: bands of 1, 2, 3
    /// and all output rows, 3×3 and 5×5 kernels at strides 1 and 2 with TF's "same" padding
    /// (the extra row after) and without padding, a partial block of channels; `then` sees
    /// each channel's new rows once.
    #[test]
    fn bands_equal_the_whole_image() {
        // (c, side, k, s, padding before, outputs)
        let cases = [
            (20, 11, 3, 2, 0, 6),
            (32, 12, 3, 1, 1, 12),
            (17, 13, 5, 2, 1, 7),
            (16, 9, 5, 1, 2, 9),
            (24, 10, 3, 1, 0, 8),
        ];
        for (c, side, k, s, pad, out) in cases {
            let geo = Geometry {
                n: 1,
                c,
                h: side,
                w: side,
                kh: k,
                kw: k,
                oh: out,
                ow: out,
                sh: s,
                sw: s,
                ph: pad,
                pw: pad,
            };
            let x = values(c * side * side, 21);
            let wt = values(c * k * k, 22);
            let bias = values(c, 23);
            let layer = ChannelsLast::new(&wt, Some(&bias), &geo);
            let row = side * c;
            for path in paths(&geo) {
                let mut whole = vec![MaybeUninit::new(f32::NAN); c * out * out];
                layer.run(&x, &mut whole, path, true, Spread::Serial, &|_| {});
                // SAFETY: initialized above (NaN), then written.
                let want: Vec<u32> = whole
                    .iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect();
                for band in [1, 2, 3, out] {
                    let mut y = vec![f32::NAN; c * out * out];
                    let seen = std::sync::atomic::AtomicUsize::new(0);
                    let count = |p: &mut [f32]| {
                        seen.fetch_add(p.len(), std::sync::atomic::Ordering::Relaxed);
                    };
                    for oy in (0..out).step_by(band) {
                        let oys = (oy, (oy + band).min(out));
                        let (lo, hi) = layer.input_rows(oys);
                        // SAFETY: `y` holds the layer's outputs; one thread.
                        unsafe {
                            layer.band_with(
                                path,
                                &x[lo * row..hi * row],
                                lo,
                                oys,
                                SharedOut(y.as_mut_ptr()),
                                &count,
                            )
                        };
                    }
                    let got: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want, "{geo:?} {path:?}, bands of {band}");
                    assert_eq!(seen.into_inner(), c * out * out, "{geo:?}: rows seen");
                }
            }
        }
    }

    /// A 3×3 stride-1 layer by hand: one channel, a 3×3 image 1..9, all-ones weights, bias
    /// 0.5, padding 1: each output is 0.5 plus the sum of its 3×3 neighbourhood (corners 4
    /// values, edges 6, centre 9).
    #[test]
    fn a_hand_computed_layer() {
        let geo = Geometry {
            n: 1,
            c: 1,
            h: 3,
            w: 3,
            kh: 3,
            kw: 3,
            oh: 3,
            ow: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
        };
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let layer = ChannelsLast::new(&[1.0; 9], Some(&[0.5]), &geo);
        for path in paths(&geo) {
            let mut y = vec![MaybeUninit::new(f32::NAN); 9];
            layer.run(&x, &mut y, path, false, Spread::Serial, &|_| {});
            // SAFETY: initialized above (NaN), then written.
            let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
            // 1+2+4+5 = 12, 1+2+3+4+5+6 = 21, 2+3+5+6 = 16, 1+2+4+5+7+8 = 27, 45, …
            assert_eq!(
                y,
                [12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5],
                "{path:?}"
            );
        }
    }
}
