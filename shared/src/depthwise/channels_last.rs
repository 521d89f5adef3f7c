//! The depthwise convolution on a channels-last input `[n, h, w, c]`, its output `[n, oh, ow,
//! c]` or in planes `[n, c, oh, ow]` (what the device runs, `shared::infer::depthwise`), the
//! weights of each block of 16 channels contiguous (`[⌈c/16⌉, kh·kw, 16]`: a block's taps are
//! one run of memory; tap-major `[kh·kw, c]` put each of a block's taps a row of `c` floats
//! apart, and Lite0's 7×7 layers ran 7–44 µs slower each, docs/PERFORMANCE.md). Channels sit
//! in the vector lanes as they lie in memory, so no plane is staged: the NCHW paths copy every
//! input plane into a padded (at stride 2, phase-split) or 16-channel-interleaved buffer
//! first, which `perf` put at most of B0's stride-2 layers' time (docs/PERFORMANCE.md).
//! onnxruntime runs its convolutions in a blocked channels-inner layout (NCHWc) for the same
//! reason.
//!
//! The arithmetic is [`super::forward_with`]'s: each output starts from its channel's bias and
//! adds one rounded product then one rounded sum per tap, in row-major kernel order, taps over
//! the padding adding `w·0`; so the values equal the NCHW paths' (and tract's) bit for bit
//! (tested below). On x86_64 CPUs with AVX-512 or AVX2 the square 3×3 and 5×5 kernels at
//! strides 1 and 2 (EfficientNet's) run on intrinsics (`channels_last/kernel.rs`): one register
//! of channels (16 or 8) by up to 8 output columns in registers, each input vector of a kernel
//! row loaded once for all the columns and taps that read it; every other geometry and CPU runs
//! the portable loop, vectorized over the channels by the compiler.
use std::mem::MaybeUninit;

use multiversion::multiversion;

use rayon::prelude::*;

use super::{Geometry, Spread};
use crate::channel_blocks::{self, BLOCK};
use crate::shared_out::SharedOut;
use crate::thread_rows;

#[cfg(target_arch = "x86_64")]
mod kernel;
#[cfg(target_arch = "x86_64")]
use crate::vector::{Avx2, Avx512, Vector};

/// Where channel `c0`'s weight of the first tap lies in the blocked weights of a layer of
/// `taps` taps (`[⌈c/16⌉, taps, 16]`, `crate::channel_blocks`; the next tap's `BLOCK` on).
fn weight_at(c0: usize, taps: usize) -> usize {
    channel_blocks::at(c0, taps * BLOCK)
}

/// A layer's weights and bias `[c]` in the channels-last order.
#[derive(Debug, Clone)]
pub struct ChannelsLast {
    geo: Geometry,
    /// `[⌈c/16⌉, kh·kw, 16]`: per block of 16 channels, tap-major, the block's channels of
    /// each tap contiguous, so one block's weights are one run of memory.
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
        let mut wt = vec![0.0; channel_blocks::count(geo.c) * taps * BLOCK];
        for (ch, taps_of) in w.chunks_exact(taps.max(1)).enumerate() {
            for (t, &v) in taps_of.iter().enumerate() {
                wt[weight_at(ch, taps) + t * BLOCK] = v;
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
        self.run(x, y, Path::best(&self.geo), false, Spread::Serial, false);
    }

    /// [`forward_into`](Self::forward_into) with the output in planes, `[n, c, oh, ow]`, and a
    /// choice of threads (runs of output rows for planes of 196 pixels and more, else blocks of 16
    /// channels, spread over rayon's): the device's MBConv reads a channels-last input (its
    /// expansion writes one) and hands the planes on to the rest of tract's CHW graph. With `relu6`
    /// each output is clamped to `0 ..= 6` (as `f32::clamp`: a NaN stays NaN) in registers, before
    /// it is stored.
    ///
    /// # Panics
    /// If a length does not match the layer.
    pub fn forward_into_planes(
        &self,
        x: &[f32],
        y: &mut [MaybeUninit<f32>],
        spread: Spread,
        relu6: bool,
    ) {
        self.run(x, y, Path::best(&self.geo), true, spread, relu6);
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

    /// Output rows `oys.0 .. oys.1` of a one-image layer, in planes at `y` (the layer's `[c,
    /// oh, ow]`, or a band's rows: [`Planes`]), from `x`, the image's input rows from `row0` on
    /// (`[rows, w, c]`, at least those [`input_rows`](Self::input_rows) names), on the calling
    /// thread, clamped to `0 ..= 6` with `relu6` (as
    /// [`forward_into_planes`](Self::forward_into_planes)). With `blocked`, `Some(block)`, the
    /// rows are in blocks of 16 channels instead, `[⌈c/16⌉, rows, w, 16]` with the blocks
    /// `block` values apart (`block ≥ rows·w·16`). fovea's expansion and depthwise conv in one
    /// op runs its layer band by band through this (`infer::expand_depthwise`).
    ///
    /// # Safety
    /// `y` must be valid for writes of the rows `oys` of its `c` planes, touched by no other
    /// thread meanwhile.
    ///
    /// # Panics
    /// If the layer has more than one image, `oys` is not inside `0 .. oh`, or `x` lacks a row
    /// the band reads.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))]
    pub(crate) unsafe fn band_into_planes(
        &self,
        (x, blocked): (&[f32], Option<usize>),
        row0: usize,
        oys: (usize, usize),
        y: Planes,
        relu6: bool,
    ) {
        let path = Path::best(&self.geo);
        // SAFETY: the caller's.
        unsafe { self.band_with(path, (x, blocked), row0, oys, y, relu6) }
    }

    /// [`band_into_planes`](Self::band_into_planes) on `path`.
    ///
    /// # Safety
    /// As [`band_into_planes`](Self::band_into_planes)'s.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))]
    unsafe fn band_with(
        &self,
        path: Path,
        (x, blocked): (&[f32], Option<usize>),
        row0: usize,
        oys: (usize, usize),
        y: Planes,
        relu6: bool,
    ) {
        let g = &self.geo;
        assert!(
            g.n == 1
                && oys.0 <= oys.1
                && oys.1 <= g.oh
                && y.row0 <= oys.0
                && (oys.1 - y.row0) * g.ow <= y.plane,
            "depthwise band: rows {oys:?} into planes of {} values from row {}",
            y.plane,
            y.row0
        );
        let (lo, hi) = self.input_rows(oys);
        // The input's layout, and how many values it needs for rows row0 .. hi: whole
        // pixels, or every block's rows (the blocks far enough apart to hold them).
        let rows = hi.saturating_sub(row0) * g.w;
        let (input, needs) = match blocked {
            Some(block) => {
                let pixel = BLOCK;
                // Blocks that overlap need more than any input holds.
                let needs = channel_blocks::span(g.c, block, rows).unwrap_or(usize::MAX);
                (Input { pixel, block }, needs)
            }
            None => (Input::last(g.c), rows * g.c),
        };
        assert!(
            oys.0 == oys.1 || (row0 <= lo && x.len() >= needs),
            "depthwise band: rows {oys:?} read input rows {lo} .. {hi} from {row0}: {} values \
             given, {needs} needed ({blocked:?})",
            x.len()
        );
        if oys.0 == oys.1 || g.c == 0 {
            return;
        }
        // SAFETY: `x` holds the rows the band reads (asserted); the caller's contract covers
        // `y`.
        unsafe {
            path.kernel()(&Span {
                x,
                input,
                w: &self.w,
                bias: &self.bias,
                g,
                y: y.at.at(0),
                out: Output::Planes {
                    plane: y.plane,
                    row0: y.row0,
                },
                relu6,
                chans: (0, g.c),
                oys,
                row0,
            });
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
        relu6: bool,
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
            // Channels `range.0 .. range.1` of this image's output rows `oys.0 .. oys.1`.
            let span = |range: (usize, usize), oys: (usize, usize)| {
                // SAFETY: `yi` holds the image's outputs (asserted lengths); each call writes
                // only its own channels' of its own rows (planes or lanes), which no other call
                // writes.
                unsafe {
                    path.kernel()(&Span {
                        x: xi,
                        input: Input::last(g.c),
                        w: &self.w,
                        bias: &self.bias,
                        g,
                        y: out.at(0),
                        out: if planes {
                            Output::Planes {
                                plane: g.oh * g.ow,
                                row0: 0,
                            }
                        } else {
                            Output::Last
                        },
                        relu6,
                        chans: range,
                        oys,
                        row0: 0,
                    });
                }
            };
            let channels = |range: (usize, usize)| span(range, (0, g.oh));
            match spread {
                Spread::Rayon if g.oh * g.ow >= ROWS_FROM => {
                    thread_rows::runs(g.oh, rayon::current_num_threads())
                        .for_each(|oys| span((0, g.c), oys))
                }
                Spread::Rayon => (0..channel_blocks::count(g.c))
                    .into_par_iter()
                    .for_each(|k| channels((k * BLOCK, (k * BLOCK + BLOCK).min(g.c)))),
                _ => channels((0, g.c)),
            }
        }
    }
}

/// Output planes of at least this many pixels (14×14 at 224 px) split over [`Spread::Rayon`]'s
/// threads as one run of output rows each (all channels), smaller ones as blocks of 16 channels:
/// the 1×1 convs before and after split their pixels too (one run per thread on 14×14 planes,
/// cache-sized tiles on larger ones), so that by rows a thread reads more of what it wrote itself —
/// which worker takes which share is not pinned, though (docs/PERFORMANCE.md). On an Intel Xeon
/// with AVX-512 (2026-12-07), two threads, `node_profile` with this switched by the environment (a
/// temporary build), whole inferences, ms: channel blocks against rows from 784 pixels (28×28),
/// Lite0 6.07/5.77, 5.92/5.63, 5.59/5.42, B0 8.86/8.75, 9.29/9.15, 9.53/8.74; rows from 784 against
/// from 196, Lite0 5.82/5.58, 5.84/5.65, 5.58/5.72, B0 8.87/8.45, 9.01/8.77, 8.32/8.23; from 196
/// against every plane (7×7 too), Lite0 5.54/5.54, 5.67/5.75, 5.68/5.69, B0 8.95/9.11, 8.92/8.85,
/// 8.75/9.18. Per node the figures moved from run to run (Lite0's block 4, 28×28 × 240 channels:
/// its conv 184–203 µs by channel blocks, 112–133 by rows in those runs, 128–166 in later ones); at
/// 7×7 rows were slower (block 12's conv 46–47 → 53–54). On the AMD EPYC of earlier sessions rows
/// were slower on 14×14 (docs/PERFORMANCE.md); not timed there since.
pub(super) const ROWS_FROM: usize = 196;

/// Which loop runs a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// AVX-512 intrinsics ([`kernel`] on 16 lanes), for the geometries it covers on CPUs
    /// that have it.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 intrinsics ([`kernel`] on 8 lanes), for the same geometries on CPUs that have it
    /// and not AVX-512.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The compiler-vectorized loop ([`portable`]), everywhere.
    Portable,
}

/// Where channel `ch` of the input's pixel `p` (counted from the first row held) lies:
/// `channel_blocks::at(ch, block) + p·pixel`. Channels-last, `block` is 16 and `pixel` is `c`;
/// in blocks of 16 channels, `pixel` is 16.
#[derive(Clone, Copy, Debug)]
struct Input {
    pixel: usize,
    block: usize,
}

impl Input {
    /// Channels-last pixels of `c` channels.
    fn last(c: usize) -> Self {
        Input {
            pixel: c,
            block: BLOCK,
        }
    }

    /// Where channel `ch` of the first pixel lies (`ch` a multiple of the lanes).
    #[inline(always)]
    fn at(self, ch: usize) -> usize {
        channel_blocks::at(ch, self.block)
    }
}

/// Planes of a layer's outputs at `at`: output `(ch, oy, ox)` at `ch·plane + (oy − row0)·ow +
/// ox`. The layer's `[c, oh, ow]` is `plane = oh·ow` from row 0; a band of output rows `[c,
/// rows, ow]` from row `row0` is `plane = rows·ow`.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "infer"), allow(dead_code))]
pub(crate) struct Planes {
    pub(crate) at: SharedOut,
    pub(crate) plane: usize,
    pub(crate) row0: usize,
}

/// How a [`Span`]'s outputs lie from its `y`.
#[derive(Clone, Copy, Debug)]
enum Output {
    /// Channels-last, the image's `[oh, ow, c]`.
    Last,
    /// Planes, output `(ch, oy, ox)` at `ch·plane + (oy − row0)·ow + ox` ([`Planes`]).
    Planes { plane: usize, row0: usize },
}

impl Output {
    /// Where output `(ch, oy, ox)` of layer `g` lies from the span's `y`.
    #[inline(always)]
    fn at(self, g: &Geometry, ch: usize, oy: usize, ox: usize) -> usize {
        match self {
            Output::Last => (oy * g.ow + ox) * g.c + ch,
            Output::Planes { plane, row0 } => ch * plane + (oy - row0) * g.ow + ox,
        }
    }
}

/// One call of a path's loop: output rows `oys.0 .. oys.1`, channels `chans.0 .. chans.1` of
/// one image.
struct Span<'a> {
    /// The image's input rows from `row0` on, laid out as `input` says: at least those the
    /// output rows read.
    x: &'a [f32],
    input: Input,
    /// `[⌈c/16⌉, kh·kw, 16]` ([`ChannelsLast`]'s).
    w: &'a [f32],
    /// `[c]`.
    bias: &'a [f32],
    g: &'a Geometry,
    /// The image's outputs, as `out` lays them out.
    y: *mut f32,
    out: Output,
    /// Whether each output is clamped to `0 ..= 6` before it is stored.
    relu6: bool,
    chans: (usize, usize),
    oys: (usize, usize),
    row0: usize,
}

/// A path's loop over one [`Span`].
///
/// # Safety
/// `y` valid for writes of the image's outputs, those of the span's rows and channels touched
/// by no other thread meanwhile; `w`, `bias` of the lengths `ChannelsLast::run` checks.
type Kernel = unsafe fn(&Span);

impl Path {
    /// The loop this path runs.
    fn kernel(self) -> Kernel {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => kernel::image::<Avx512>,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => kernel::image::<Avx2>,
            Path::Portable => portable,
        }
    }

    fn best(geo: &Geometry) -> Self {
        #[cfg(target_arch = "x86_64")]
        if kernel::covers(geo) {
            if Avx512::available() {
                return Path::Avx512;
            }
            if Avx2::available() {
                return Path::Avx2;
            }
        }
        let _ = geo;
        Path::Portable
    }
}

/// A span's outputs pixel by pixel: the bias then every tap's `w·x` over the channels (`x` =
/// 0 over the padding).
///
/// # Safety
/// As [`Kernel`]'s.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
unsafe fn portable(span: &Span) {
    let &Span {
        x,
        input,
        w,
        bias,
        g,
        y,
        out,
        relu6,
        chans: (lo, hi),
        oys: rows,
        row0,
    } = span;
    let taps = g.kh * g.kw;
    assert!(lo.is_multiple_of(BLOCK), "depthwise: channels from {lo}");
    for oy in rows.0..rows.1 {
        for ox in 0..g.ow {
            for c0 in (lo..hi).step_by(BLOCK) {
                let m = (hi - c0).min(BLOCK);
                let mut acc = [0.0f32; BLOCK];
                let acc = &mut acc[..m];
                acc.copy_from_slice(&bias[c0..c0 + m]);
                let wb = &w[weight_at(c0, taps)..];
                for i in 0..g.kh {
                    let iy = (oy * g.sh + i).checked_sub(g.ph).filter(|&iy| iy < g.h);
                    for j in 0..g.kw {
                        let ix = (ox * g.sw + j).checked_sub(g.pw).filter(|&ix| ix < g.w);
                        let wv = &wb[(i * g.kw + j) * BLOCK..][..m];
                        match iy.zip(ix) {
                            Some((iy, ix)) => {
                                let p = (iy - row0) * g.w + ix;
                                let xv = &x[input.at(c0) + p * input.pixel..][..m];
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
                if relu6 {
                    acc.iter_mut().for_each(|a| *a = a.clamp(0.0, 6.0));
                }
                for (k, &a) in acc.iter().enumerate() {
                    // SAFETY: inside the span's outputs, these channels' (the caller's
                    // contract).
                    unsafe { *y.add(out.at(g, c0 + k, oy, ox)) = a };
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
        if kernel::covers(geo) {
            let avx512 = Avx512::available().then_some(Path::Avx512);
            let avx2 = Avx2::available().then_some(Path::Avx2);
            return [Some(Path::Portable), avx512, avx2]
                .into_iter()
                .flatten()
                .collect();
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
    /// not cover (3×5), and no bias; channels-last out, planes out on the calling thread and
    /// over pools of 2 and 3 threads (planes of at least [`ROWS_FROM`] pixels by runs of rows,
    /// the rest by blocks of channels).
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
            // Planes of at least `ROWS_FROM` pixels: split by rows over the threads.
            (24, 16, 16, 3, 3, 1, true, true),
            (21, 29, 31, 5, 5, 2, true, true),
        ];
        let (mut clamped_both_ways, mut by_rows) = (false, false);
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
            by_rows |= oh * ow >= ROWS_FROM;
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
            // Inputs in -8 .. 8 (a power-of-two scale: exact), so that outputs pass both of
            // ReLU6's bounds.
            let x: Vec<f32> = values(geo.n * c * h * w, 11)
                .iter()
                .map(|v| v * 8.0)
                .collect();
            let wt = values(c * kh * kw, 12);
            let bias = values(c, 13);
            let bias = with_bias.then_some(&bias[..]);
            let nchw = forward_with(&x, &wt, bias, &geo, Spread::Serial);
            let layer = ChannelsLast::new(&wt, bias, &geo);
            let xl = to_last(&x, geo.n, c, h * w);
            for relu6 in [false, true] {
                let act = |v: f32| if relu6 { v.clamp(0.0, 6.0) } else { v };
                let nchw: Vec<f32> = nchw.iter().map(|&v| act(v)).collect();
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                let want = bits(&to_last(&nchw, geo.n, c, oh * ow));
                let want_planes = bits(&nchw);
                for path in paths(&geo) {
                    for (planes, want, spread, threads) in [
                        (false, &want, Spread::Serial, 1),
                        (true, &want_planes, Spread::Serial, 1),
                        (true, &want_planes, Spread::Rayon, 2),
                        (true, &want_planes, Spread::Rayon, 3),
                    ] {
                        let mut y = vec![MaybeUninit::new(f32::NAN); want.len()];
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        pool.install(|| layer.run(&xl, &mut y, path, planes, spread, relu6));
                        // SAFETY: initialized above (NaN), then written.
                        let got: Vec<u32> = y
                            .iter()
                            .map(|v| unsafe { v.assume_init() }.to_bits())
                            .collect();
                        assert_eq!(
                            &got, want,
                            "{geo:?} {path:?}, planes out {planes}, {spread:?} on {threads} \
                             threads, relu6 {relu6}"
                        );
                    }
                }
                clamped_both_ways |= relu6 && nchw.contains(&0.0) && nchw.contains(&6.0);
            }
        }
        assert!(
            clamped_both_ways,
            "no case's outputs reached both of ReLU6's bounds"
        );
        assert!(by_rows, "no case's planes split by rows");
    }

    /// One image run band by band (`band_into_planes`, each band given only the input rows
    /// it reads) equals the whole image in planes bit for bit, on each path: bands of 1, 2, 3
    /// and all output rows, 3×3 and 5×5 kernels at strides 1 and 2 with TF's "same" padding
    /// (the extra row after) and without padding, a partial block of channels; with and
    /// without ReLU6; the band's input rows channels-last and in blocks of 16 channels (as
    /// `infer::expand_depthwise` expands them); the outputs into the layer's planes and into
    /// a band's rows of each plane (`[c, band, ow]`, as `infer::expand_depthwise` hands them to
    /// the projection), which writes nothing between its planes.
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
            let x: Vec<f32> = values(c * side * side, 21)
                .iter()
                .map(|v| v * 8.0)
                .collect();
            let wt = values(c * k * k, 22);
            let bias = values(c, 23);
            let layer = ChannelsLast::new(&wt, Some(&bias), &geo);
            let row = side * c;
            for (path, relu6) in paths(&geo)
                .into_iter()
                .flat_map(|p| [(p, false), (p, true)])
            {
                let mut whole = vec![MaybeUninit::new(f32::NAN); c * out * out];
                layer.run(&x, &mut whole, path, true, Spread::Serial, relu6);
                // SAFETY: initialized above (NaN), then written.
                let want: Vec<u32> = whole
                    .iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect();
                for (band, blocked) in [1, 2, 3, out]
                    .into_iter()
                    .flat_map(|b| [(b, false), (b, true)])
                {
                    let mut y = vec![f32::NAN; c * out * out];
                    // The same bands into a band's planes, `[c, band, out]` 3 values apart
                    // (NaN between them, which must stay), then copied into the layer's.
                    let plane = band * out + 3;
                    let mut parts = vec![f32::NAN; c * out * out];
                    for oy in (0..out).step_by(band) {
                        let oys = (oy, (oy + band).min(out));
                        let (lo, hi) = layer.input_rows(oys);
                        let rows = &x[lo * row..hi * row];
                        // In blocks of 16 channels, 16 values more than the rows' apart (the
                        // lanes past `c` and the gaps NaN, which no output may read).
                        let block = (hi - lo) * side * BLOCK + BLOCK;
                        let mut in_blocks = vec![f32::NAN; channel_blocks::count(c) * block];
                        for (i, &v) in rows.iter().enumerate() {
                            let (p, ch) = (i / c, i % c);
                            in_blocks[channel_blocks::at(ch, block) + p * BLOCK] = v;
                        }
                        let input = if blocked {
                            (&in_blocks[..], Some(block))
                        } else {
                            (rows, None)
                        };
                        let mut part = vec![f32::NAN; c * plane];
                        // SAFETY: `y` holds the layer's outputs, `part` the band's rows of
                        // each plane; one thread.
                        let whole = Planes {
                            at: SharedOut(y.as_mut_ptr()),
                            plane: out * out,
                            row0: 0,
                        };
                        let band_rows = Planes {
                            at: SharedOut(part.as_mut_ptr()),
                            plane,
                            row0: oy,
                        };
                        unsafe {
                            layer.band_with(path, input, lo, oys, whole, relu6);
                            layer.band_with(path, input, lo, oys, band_rows, relu6);
                        };
                        let rows = (oys.1 - oys.0) * out;
                        for (ch, values) in part.chunks(plane).enumerate() {
                            assert!(values[rows..].iter().all(|v| v.is_nan()), "{geo:?} {oys:?}");
                            parts[(ch * out + oy) * out..][..rows].copy_from_slice(&values[..rows]);
                        }
                    }
                    for (what, y) in [("planes", &y), ("bands' planes", &parts)] {
                        let got: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(
                            got, want,
                            "{geo:?} {path:?}, relu6 {relu6}, bands of {band}, in blocks \
                             {blocked}, into the {what}"
                        );
                    }
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
            layer.run(&x, &mut y, path, false, Spread::Serial, false);
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
