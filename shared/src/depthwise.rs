//! A depthwise 2-D convolution (`groups == in == out` channels, NCHW, dilation 1, zero
//! padding) and its two gradients, as direct loops over contiguous `f32` slices.
//!
//! `y[n,c,oy,ox] = Σ_{i,j} w[c,i,j] · x[n,c, oy·sh + i − ph, ox·sw + j − pw]` (terms outside the
//! input are zero). [`forward`] first stages each input plane zero-padded and, at stride 2, split
//! into its even and odd columns, so that every kernel tap reads a contiguous run for any
//! stride; it then keeps a block of output columns in registers across all `kh·kw` taps and
//! stores it once. Outputs of at most 8 columns go to `depthwise/lanes.rs` instead (16
//! channels in the vector lanes; the same sums in the same order). On x86_64 CPUs with AVX-512
//! or AVX2 the plane path convolves with intrinsics (`depthwise/plane_kernel.rs`: larger
//! register blocks; again the same sums in the same order), and with AVX-512 stages with them
//! (`depthwise/avx512.rs`: masked row copies). [`ChannelsLast`] runs the
//! same layer on channels-last tensors (`depthwise/channels_last.rs`: no staging; the same
//! values). [`forward_with`] adds a
//! per-channel bias and runs on one thread or on rayon's: the host trains with [`forward`], the
//! device runs [`forward_with`] inside tract in place of tract's own depthwise op
//! (`shared/src/infer/depthwise.rs`), whose values it reproduces. burn 0.22.1's depthwise path
//! instead adds each tap into the output plane in memory, and at stride 2 in scalar code (a strided gather): `perf` put it at 28 % of a
//! frozen-backbone Lite0 step, mostly scalar adds. The inner loop is compiled for AVX-512,
//! AVX2+FMA and NEON besides the baseline and picked at run time (`multiversion`).
//!
//! For an upstream gradient `g = ∂L/∂y`:
//!
//! - `∂L/∂w[c,i,j] = Σ_{n,oy,ox} g[n,c,oy,ox] · x[n,c, oy·sh + i − ph, ox·sw + j − pw]`
//! - `∂L/∂x[n,c,iy,ix] = Σ` over the `(oy, i)`, `(ox, j)` with `iy = oy·sh + i − ph`,
//!   `ix = ox·sw + j − pw` of `g[n,c,oy,ox] · w[c,i,j]`.
//!
//! burn 0.22's generic backward computes the weight gradient with one dense convolution per
//! channel (a loop over `groups`, each slicing both tensors and writing its slice back) and the
//! input gradient as a grouped transposed convolution. Here both read or write the same staged
//! layout as the forward pass, so each tap is a contiguous dot product (weight) or `a·x + y`
//! (input) at either stride, and the work splits over channels (weight) or planes (input) with
//! rayon. Only the end padding decides the output size, which the caller passes through `oh`,
//! `ow`.
use std::mem::MaybeUninit;

use multiversion::multiversion;

#[cfg(target_arch = "x86_64")]
mod avx512;
mod channels_last;
mod lanes;
#[cfg(target_arch = "x86_64")]
mod plane_kernel;
#[cfg(all(feature = "infer", target_arch = "x86_64"))]
mod staged_band;
pub use channels_last::ChannelsLast;
#[cfg(feature = "infer")]
pub(crate) use channels_last::Planes;
use lanes::LaneWeights;
use rayon::prelude::*;
#[cfg(all(feature = "infer", target_arch = "x86_64"))]
pub(crate) use staged_band::StagedBand;

#[cfg(target_arch = "x86_64")]
use crate::vector::{Avx2, Avx512, Vector};

/// Shapes and geometry of one depthwise convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Batch size.
    pub n: usize,
    /// Channels (= groups).
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Stride along the height.
    pub sh: usize,
    /// Stride along the width.
    pub sw: usize,
    /// Padding before the first row.
    pub ph: usize,
    /// Padding before the first column.
    pub pw: usize,
}

impl Geometry {
    /// Elements of one input plane.
    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    /// Elements of one output plane.
    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
}

/// `y`, shape `[n, c, oh, ow]`, from the input `x` `[n, c, h, w]` and the weight `w`
/// `[c, 1, kh, kw]`, the planes spread over rayon's threads.
pub fn forward(x: &[f32], w: &[f32], geo: &Geometry) -> Vec<f32> {
    forward_with(x, w, None, geo, Spread::Rayon)
}

/// How [`forward_with`] runs its planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Spread {
    /// One plane after another on the calling thread.
    Serial,
    /// Planes (on `ChannelsLast`, runs of rows or blocks of channels; on the plane path, runs
    /// of rows for one image at stride 1 on planes of ≥ 196 pixels, x86_64 with `infer`) spread
    /// over the current rayon pool (the global one outside `install`).
    Rayon,
}

/// [`forward`] with a per-channel `bias` (`[c]`; none is zero) and a choice of threads.
///
/// Each output starts from its channel's bias and adds `w·x` tap by tap in row-major kernel
/// order, one rounded product and one rounded sum per tap (no fused multiply-add): the
/// arithmetic of tract 0.23's `DepthWise` op, so the device's outputs equal tract's own
/// (`shared::infer::depthwise` tests that). Taps over the padding add `w·0`, which changes
/// no value (at most the sign of a zero).
pub fn forward_with(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    geo: &Geometry,
    spread: Spread,
) -> Vec<f32> {
    let len = geo.n * geo.c * geo.out_plane();
    let mut y = Vec::with_capacity(len);
    forward_into(
        x,
        w,
        bias,
        geo,
        spread,
        &mut y.spare_capacity_mut()[..len],
        &|_| {},
    );
    // SAFETY: `forward_into` wrote every element of `y[..len]`.
    unsafe { y.set_len(len) };
    y
}

/// [`forward_with`] into `y` (`[n, c, oh, ow]`, possibly uninitialized): every element is
/// written, so the caller may treat `y` as initialized once this returns (the device writes
/// into the tensor tract hands on, with no copy). `then` runs on each finished run of output
/// planes (one plane, one thread's run of a plane's rows where the plane path splits rows —
/// x86_64 with `infer`, one image at stride 1, planes of ≥ 196 pixels, two threads and more —
/// or up to 16 planes on the small-plane path) on the thread that wrote it, while it is in
/// cache: the device clamps ReLU6 there. `&|_| {}` for nothing.
pub fn forward_into(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    geo: &Geometry,
    spread: Spread,
    y: &mut [MaybeUninit<f32>],
    then: &(dyn Fn(&mut [f32]) + Sync),
) {
    let taps = geo.kh * geo.kw;
    check_lengths(x, y, geo);
    assert_eq!(w.len(), geo.c * taps, "depthwise: weight length");
    if let Some(b) = bias {
        assert_eq!(b.len(), geo.c, "depthwise: bias length");
    }
    // No batch, no channels or empty planes: nothing to write.
    if y.is_empty() {
        return;
    }
    if lanes::suits(geo) {
        let weights = LaneWeights::new(w, bias, geo);
        lanes::forward_into(x, &weights, geo, spread, Kernel::best(), y, then);
    } else {
        planes_into(x, w, bias, geo, spread, Kernel::best(), y, then);
    }
}

/// One layer's weights and bias with what [`forward_into`] derives from them per call done
/// once: the small-plane path's channel blocks (a transpose of the weights, 14 % of a 1152 ×
/// 7×7 layer's time under a 5×5 kernel in `cargo bench -p fovea-shared --bench depthwise`).
/// The device keeps one per layer ([`forward_prepared_into`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    geo: Geometry,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
    lanes: Option<LaneWeights>,
}

impl Prepared {
    /// `w` `[c, kh·kw]` and the bias `[c]` (none is zero) of the layer `geo`.
    ///
    /// # Panics
    /// If a length does not match `geo`.
    pub fn new(w: &[f32], bias: Option<&[f32]>, geo: &Geometry) -> Self {
        assert_eq!(w.len(), geo.c * geo.kh * geo.kw, "depthwise: weight length");
        if let Some(b) = bias {
            assert_eq!(b.len(), geo.c, "depthwise: bias length");
        }
        Prepared {
            geo: *geo,
            w: w.to_vec(),
            bias: bias.map(<[f32]>::to_vec),
            lanes: lanes::suits(geo).then(|| LaneWeights::new(w, bias, geo)),
        }
    }

    /// The layer.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The weights `[c, kh·kw]`.
    pub fn weights(&self) -> &[f32] {
        &self.w
    }

    /// The bias `[c]`, if any.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }
}

/// [`forward_into`] with the layer's [`Prepared`] weights: the same values, bit for bit.
pub fn forward_prepared_into(
    x: &[f32],
    layer: &Prepared,
    spread: Spread,
    y: &mut [MaybeUninit<f32>],
    then: &(dyn Fn(&mut [f32]) + Sync),
) {
    let Some(weights) = &layer.lanes else {
        return forward_into(x, &layer.w, layer.bias(), &layer.geo, spread, y, then);
    };
    let geo = &layer.geo;
    check_lengths(x, y, geo);
    if !y.is_empty() {
        lanes::forward_into(x, weights, geo, spread, Kernel::best(), y, then);
    }
}

/// Panics unless `x` is `[n, c, h, w]` and `y` `[n, c, oh, ow]` of `geo`.
fn check_lengths(x: &[f32], y: &[MaybeUninit<f32>], geo: &Geometry) {
    assert_eq!(
        x.len(),
        geo.n * geo.c * geo.in_plane(),
        "depthwise: input length"
    );
    assert_eq!(
        y.len(),
        geo.n * geo.c * geo.out_plane(),
        "depthwise: output length"
    );
}

/// `y` once every element has been written.
///
/// # Safety
/// Every element of `y` must be initialized.
unsafe fn written(y: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and the caller promises the values.
    unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// [`forward_into`] a plane at a time (its checks of the lengths have run): each plane staged
/// ([`Staging`]) and convolved in register blocks of output columns ([`convolve`]).
#[allow(clippy::too_many_arguments)]
fn planes_into(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    geo: &Geometry,
    spread: Spread,
    kernel: Kernel,
    y: &mut [MaybeUninit<f32>],
    then: &(dyn Fn(&mut [f32]) + Sync),
) {
    #[cfg(all(feature = "infer", target_arch = "x86_64"))]
    if by_rows(geo, spread, kernel) {
        return rows_into(x, w, bias, geo, y, then);
    }
    let taps = geo.kh * geo.kw;
    let stage = Staging::new(geo, kernel);
    let plane_job = |buf: &mut Vec<f32>, (plane, yp): (usize, &mut [MaybeUninit<f32>])| {
        let c = plane % geo.c;
        let b = bias.map_or(0.0, |b| b[c]);
        let xp = &x[plane * geo.in_plane()..][..geo.in_plane()];
        let wc = &w[c * taps..][..taps];
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                if geo.sw <= 2 {
                    // SAFETY: `Kernel::Avx512` is only chosen where the CPU has AVX-512.
                    unsafe { avx512::fill(&stage, xp, geo, buf) };
                } else {
                    stage.fill(xp, geo, buf);
                }
                plane_kernel::convolve::<Avx512>(buf, wc, b, geo, &stage, yp);
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                stage.fill(xp, geo, buf);
                plane_kernel::convolve::<Avx2>(buf, wc, b, geo, &stage, yp);
            }
            Kernel::Portable => {
                stage.fill(xp, geo, buf);
                convolve(buf, wc, b, geo, &stage, yp)
            }
        }
        // SAFETY: `convolve` wrote every element of the plane (below).
        then(unsafe { written(yp) });
    };
    // The chunks of one output plane cover `y` exactly once, and `convolve` writes every
    // element of its plane: its blocks step through the rows by `R` (the last block's rows cut
    // at `oh`) and the columns by `B` (the last block cut at `ow`), each block writing its whole
    // (cut) extent. A panic propagates to the caller.
    match spread {
        Spread::Serial => {
            let mut buf = vec![0.0f32; stage.len()];
            y.chunks_mut(geo.out_plane())
                .enumerate()
                .for_each(|job| plane_job(&mut buf, job));
        }
        Spread::Rayon => y
            .par_chunks_mut(geo.out_plane())
            .enumerate()
            .for_each_init(|| vec![0.0f32; stage.len()], plane_job),
    }
}

/// Whether [`planes_into`] splits the output rows rather than the planes over rayon's threads:
/// one image (the device's batch; training batches keep the planes), stride 1, planes of at
/// least [`channels_last::ROWS_FROM`] pixels, two threads and more, the best kernel (the one
/// [`StagedBand`] runs). B0's block 0 is such a layer: its depthwise conv reads the stem's
/// planes, which the stem writes band by band of rows, and the projection after it splits its
/// pixels; split by planes, each thread's share of the projection's input had been written by
/// both cores (the projection took 201 µs at two threads, 87 with its input warm, 166 at one).
///
/// Measured (B0 at 224 px, two threads, an Intel Xeon with AVX-512, 2026-12-07; one binary with
/// and without the split by an environment switch, rounds alternated): `edge bench` 8.63 → 8.52
/// ms (medians of 30 rounds, faster in 21); per node (`node_profile`, two rounds) block 0's
/// projection 188–239 → 144–149 µs, the conv itself 137–152 → 148–158 and the SiLU after it
/// 70–71 → 81–85.
#[cfg(all(feature = "infer", target_arch = "x86_64"))]
fn by_rows(geo: &Geometry, spread: Spread, kernel: Kernel) -> bool {
    spread == Spread::Rayon
        && geo.n == 1
        && geo.sh == 1
        && geo.sw == 1
        && geo.oh * geo.ow >= channels_last::ROWS_FROM
        && kernel == Kernel::best()
        && rayon::current_num_threads() > 1
}

/// [`planes_into`] by runs of output rows (`crate::thread_rows`), one per thread of rayon's
/// pool, each over every plane: a plane's rows of the run staged zero-padded into the thread's
/// buffer as [`StagedBand`] lays them out (the input rows the run reads, by the plane path's
/// [`stage_row`]; zero rows above and below the image), then convolved by the plane path's
/// kernel, so the values are that path's bit for bit (tested).
#[cfg(all(feature = "infer", target_arch = "x86_64"))]
fn rows_into(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    geo: &Geometry,
    y: &mut [MaybeUninit<f32>],
    then: &(dyn Fn(&mut [f32]) + Sync),
) {
    let taps = geo.kh * geo.kw;
    let (in_plane, out_plane, ow) = (geo.in_plane(), geo.out_plane(), geo.ow);
    let out = crate::shared_out::SharedOut(y.as_mut_ptr().cast::<f32>());
    crate::thread_rows::runs(geo.oh, rayon::current_num_threads()).for_each(|(r0, r1)| {
        let Some(band) = StagedBand::new(geo, r1 - r0) else {
            unreachable!("depthwise rows: stride 1 (`by_rows`)");
        };
        let width = band.width();
        let spans = phase_spans(geo, width);
        // Zeroed once: every plane writes the same positions (the image's), so the padding
        // rows and columns stay zero from plane to plane, as in the plane path's buffer.
        let mut staged = vec![0.0f32; band.plane_len()];
        for plane in 0..geo.n * geo.c {
            let c = plane % geo.c;
            // Staged row i is input row r0 + i − ph (stride 1), staged as the plane path stages
            // its rows (`stage_row`: the columns no output reads left out).
            for i in 0..r1 - r0 + geo.kh - 1 {
                if let Some(iy) = (r0 + i).checked_sub(geo.ph).filter(|&iy| iy < geo.h) {
                    let src = &x[plane * in_plane + iy * geo.w..][..geo.w];
                    stage_row(src, &spans, 1, &mut staged[i * width..][..width]);
                }
            }
            // SAFETY: rows r0 .. r1 of this plane lie inside `y` (`check_lengths`: n·c planes
            // of oh·ow), and the runs are disjoint, so no other thread touches them.
            let rows = unsafe {
                std::slice::from_raw_parts_mut(
                    out.at(plane * out_plane + r0 * ow)
                        .cast::<MaybeUninit<f32>>(),
                    (r1 - r0) * ow,
                )
            };
            let b = bias.map_or(0.0, |b| b[c]);
            band.convolve(&staged, &w[c * taps..][..taps], b, rows);
            // SAFETY: `convolve` wrote every element of the run's rows.
            then(unsafe { written(rows) });
        }
    });
}

/// Which inner loop runs the plane path; its register block shapes the staging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AVX-512 intrinsics: staging in `depthwise/avx512.rs`, the plane path's inner loop in
    /// `depthwise/plane_kernel.rs` on 16 lanes; on x86_64 CPUs that have it.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 intrinsics: the portable staging, the plane path's inner loop in
    /// `depthwise/plane_kernel.rs` on 8 lanes (the small-plane path's portable loop); on
    /// x86_64 CPUs that have AVX2 and FMA and not AVX-512.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The compiler-vectorized loop ([`convolve`]), everywhere.
    Portable,
}

impl Kernel {
    /// The fastest this CPU runs.
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if Avx512::available() {
            return Kernel::Avx512;
        } else if Avx2::available() {
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    /// Its register block for output rows of `ow` columns: `(B, R)`.
    fn block(self, ow: usize) -> (usize, usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => plane_kernel::block::<Avx512>(ow),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => plane_kernel::block::<Avx2>(ow),
            Kernel::Portable => block(ow),
        }
    }
}

/// The register block of [`convolve`]: `(B, R)`, `B` output columns of `R` output rows kept in
/// registers across all taps. `B` is the smallest of 8, 16, 32 that covers the row, else 64;
/// `R` makes `B·R` at least 64 (four AVX-512 or eight AVX2 accumulators: enough independent
/// sums to hide the add latency on the small planes of the late stages too).
fn block(ow: usize) -> (usize, usize) {
    match ow {
        0..=8 => (8, 8),
        9..=16 => (16, 4),
        17..=32 => (32, 2),
        _ => (64, 1),
    }
}

/// The staged input plane: zero-padded rows, each split into `sw` column phases of `width`
/// values (phase `p` holds padded columns `p, p + sw, p + 2·sw, …`), so tap `(i, j)` of output
/// `(oy, ox)` reads phase `j mod sw`, position `ox + j / sw` of row `oy·sh + i`. Rows and
/// columns extend to whole register blocks (zeros past the image), so blocks read in bounds.
struct Staging {
    rows: usize,
    phases: usize,
    width: usize,
    /// Per phase: the first position inside the image, the input column it holds, and how
    /// many positions are inside (the same for every row).
    spans: Vec<(usize, usize, usize)>,
    /// Per kernel tap `(i, j)`, row-major: where its run for output `(0, 0)` starts in the
    /// staged plane (row `i`, phase `j mod sw`, position `j / sw`); output `(oy, ox)` adds
    /// `oy · step + ox`.
    taps: Vec<usize>,
    /// Staged values between the runs of two consecutive output rows (`sh` staged rows).
    step: usize,
}

impl Staging {
    fn new(geo: &Geometry, kernel: Kernel) -> Self {
        let (b, r) = kernel.block(geo.ow);
        let width = geo.ow.div_ceil(b) * b + (geo.kw - 1) / geo.sw;
        let spans = phase_spans(geo, width);
        let taps = (0..geo.kh)
            .flat_map(|i| (0..geo.kw).map(move |j| (i, j)))
            .map(|(i, j)| (i * geo.sw + j % geo.sw) * width + j / geo.sw)
            .collect();
        Staging {
            rows: (geo.oh.div_ceil(r) * r - 1) * geo.sh + geo.kh,
            phases: geo.sw,
            width,
            spans,
            taps,
            step: geo.sh * geo.sw * width,
        }
    }

    fn len(&self) -> usize {
        self.rows * self.phases * self.width
    }

    /// The phase-`p` run of staged row `r`.
    fn row<'a>(&self, buf: &'a [f32], r: usize, p: usize) -> &'a [f32] {
        &buf[(r * self.phases + p) * self.width..][..self.width]
    }

    /// The phase-`p` run of staged row `r`, to write.
    fn row_mut<'a>(&self, buf: &'a mut [f32], r: usize, p: usize) -> &'a mut [f32] {
        &mut buf[(r * self.phases + p) * self.width..][..self.width]
    }

    /// The inverse of [`Staging::fill`] on the image: `dst` `[h, w]` from the staged values at
    /// the input's positions (padding and block margins dropped).
    fn unfill(&self, buf: &[f32], geo: &Geometry, dst: &mut [f32]) {
        for iy in 0..geo.h {
            let r = iy + geo.ph;
            if r >= self.rows {
                dst[iy * geo.w..][..geo.w].fill(0.0);
                continue;
            }
            let out = &mut dst[iy * geo.w..][..geo.w];
            for (p, &(q0, first, count)) in self.spans.iter().enumerate() {
                let run = &self.row(buf, r, p)[q0..q0 + count];
                match geo.sw {
                    1 => out[first..first + count].copy_from_slice(run),
                    sw => out[first..]
                        .iter_mut()
                        .step_by(sw)
                        .zip(run)
                        .for_each(|(d, v)| *d = *v),
                }
            }
        }
    }

    /// Stage one input plane `xp` `[h, w]` into `buf`: writes the image's positions only, so
    /// `buf` must be zero everywhere else (a fresh `vec![0.0; len]`, or one only this has
    /// written: the positions are the same for every plane of a geometry). Zeroing the
    /// padding and margins again for every plane was 6 % of the forward pass in `perf`.
    fn fill(&self, xp: &[f32], geo: &Geometry, buf: &mut [f32]) {
        // Rows past the staged ones (a "valid" convolution's last rows no output reads) stay out.
        let rows = self.rows.saturating_sub(geo.ph);
        let staged_row = self.phases * self.width;
        for (iy, src) in xp.chunks_exact(geo.w).take(rows).enumerate() {
            let staged = &mut buf[(iy + geo.ph) * staged_row..][..staged_row];
            stage_row(src, &self.spans, geo.sw, staged);
        }
    }
}

/// Per column phase `p` of a row staged `width` values a phase (position `q` of phase `p`
/// holds padded column `q·sw + p`, input column `q·sw + p − pw`): the first position inside the
/// image, the input column it holds, and how many positions are inside. The depthwise staging
/// and fovea's k×k conv (`infer/dense_kernel.rs`) stage rows so.
pub(crate) fn phase_spans(geo: &Geometry, width: usize) -> Vec<(usize, usize, usize)> {
    (0..geo.sw)
        .map(|p| {
            let q0 = geo.pw.saturating_sub(p).div_ceil(geo.sw).min(width);
            let first = q0 * geo.sw + p - geo.pw;
            let count = if first < geo.w {
                ((geo.w - 1 - first) / geo.sw + 1).min(width - q0)
            } else {
                0
            };
            (q0, first, count)
        })
        .collect()
}

/// One input row `src` into its staged phases `dst` (`sw` runs of `dst.len() / sw` values,
/// laid out by [`phase_spans`]' `spans`): writes the image's positions only.
pub(crate) fn stage_row(src: &[f32], spans: &[(usize, usize, usize)], sw: usize, dst: &mut [f32]) {
    let width = dst.len() / sw.max(1);
    for (dst, &(q0, first, count)) in dst.chunks_exact_mut(width).zip(spans) {
        let run = &mut dst[q0..q0 + count];
        match sw {
            1 => run.copy_from_slice(&src[first..first + count]),
            2 => every_second(&src[first..], run),
            sw => run
                .iter_mut()
                .zip(src[first..].iter().step_by(sw))
                .for_each(|(d, v)| *d = *v),
        }
    }
}

/// `dst[k] = src[2·k]` for every `k` of `dst` (`src` holds at least `2·dst.len() − 1`
/// values). Over pairs rather than `step_by(2)`, which compiled to one scalar load per value:
/// the stride-2 staging was a quarter of the forward pass in `perf`.
fn every_second(src: &[f32], dst: &mut [f32]) {
    let pairs = dst.len().min(src.len() / 2);
    for (d, pair) in dst[..pairs].iter_mut().zip(src.chunks_exact(2)) {
        *d = pair[0];
    }
    if let Some(last) = dst.get_mut(pairs) {
        *last = src[2 * pairs];
    }
}

/// One output plane from its staged input plane, the channel's `kh·kw` weights and its bias.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn convolve(
    buf: &[f32],
    wc: &[f32],
    bias: f32,
    geo: &Geometry,
    stage: &Staging,
    yp: &mut [MaybeUninit<f32>],
) {
    match block(geo.ow) {
        (8, _) => convolve_blocks::<8, 8>(buf, wc, bias, geo, stage, yp),
        (16, _) => convolve_blocks::<16, 4>(buf, wc, bias, geo, stage, yp),
        (32, _) => convolve_blocks::<32, 2>(buf, wc, bias, geo, stage, yp),
        _ => convolve_blocks::<64, 1>(buf, wc, bias, geo, stage, yp),
    }
}

/// [`convolve`] with blocks of `B` output columns × `R` output rows.
#[inline(always)]
fn convolve_blocks<const B: usize, const R: usize>(
    buf: &[f32],
    wc: &[f32],
    bias: f32,
    geo: &Geometry,
    stage: &Staging,
    yp: &mut [MaybeUninit<f32>],
) {
    assert_eq!(yp.len(), geo.out_plane(), "depthwise: output plane length");
    assert_eq!(wc.len(), stage.taps.len(), "depthwise: taps");
    for oy in (0..geo.oh).step_by(R) {
        for start in (0..geo.ow).step_by(B) {
            let origin = oy * stage.step + start;
            let mut acc = [[bias; B]; R];
            for (&wv, &tap) in wc.iter().zip(&stage.taps) {
                let at = &buf[origin + tap..];
                for (rr, acc) in acc.iter_mut().enumerate() {
                    let run = &at[rr * stage.step..][..B];
                    for (a, v) in acc.iter_mut().zip(run) {
                        *a += wv * v;
                    }
                }
            }
            let n = B.min(geo.ow - start);
            for (rr, acc) in acc.iter().enumerate().take(geo.oh - oy) {
                let row = &mut yp[(oy + rr) * geo.ow + start..][..n];
                for (d, &v) in row.iter_mut().zip(&acc[..n]) {
                    d.write(v);
                }
            }
        }
    }
}

/// `∂L/∂w`, shape `[c, kh, kw]` (the weight's `[c, 1, kh, kw]` flattened), from the input `x`
/// `[n, c, h, w]` and the output gradient `g` `[n, c, oh, ow]`.
pub fn weight_grad(x: &[f32], g: &[f32], geo: &Geometry) -> Vec<f32> {
    assert_eq!(
        x.len(),
        geo.n * geo.c * geo.in_plane(),
        "depthwise: input length"
    );
    assert_eq!(
        g.len(),
        geo.n * geo.c * geo.out_plane(),
        "depthwise: gradient length"
    );
    let taps = geo.kh * geo.kw;
    let mut out = vec![0.0f32; geo.c * taps];
    if geo.out_plane() == 0 {
        return out;
    }
    let stage = Staging::new(geo, Kernel::Portable);
    out.par_chunks_mut(taps).enumerate().for_each_init(
        || vec![0.0f32; stage.len()],
        |buf, (c, dw)| {
            for n in 0..geo.n {
                let plane = n * geo.c + c;
                stage.fill(&x[plane * geo.in_plane()..][..geo.in_plane()], geo, buf);
                let gp = &g[plane * geo.out_plane()..][..geo.out_plane()];
                for i in 0..geo.kh {
                    taps_grad(buf, gp, geo, &stage, i, &mut dw[i * geo.kw..][..geo.kw]);
                }
            }
        },
    );
    out
}

/// Adds the weight gradient of kernel row `i` of one plane to `dw_row` (`kw` taps): the
/// products of `gp`'s rows with the staged rows `oy·sh + i`, all `kw` taps of a row at once.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn taps_grad(
    buf: &[f32],
    gp: &[f32],
    geo: &Geometry,
    stage: &Staging,
    i: usize,
    dw_row: &mut [f32],
) {
    match geo.kw {
        3 => taps_grad_block::<3>(buf, gp, geo, stage, i, 0, dw_row),
        5 => taps_grad_block::<5>(buf, gp, geo, stage, i, 0, dw_row),
        kw => {
            (0..kw).for_each(|j| taps_grad_block::<1>(buf, gp, geo, stage, i, j, &mut dw_row[j..]))
        }
    }
}

/// [`taps_grad`] for taps `j0 .. j0 + K` of row `i`: every 16-column block of a `g` row is
/// loaded once and multiplied into `K` accumulators of 16 lanes (`K·16` independent sums: the
/// per-tap dot product this replaces, one call per output row and tap, reread `g` `kh·kw`
/// times and was 5 % of a B0 step with as much again in call overhead).
#[inline(always)]
fn taps_grad_block<const K: usize>(
    buf: &[f32],
    gp: &[f32],
    geo: &Geometry,
    stage: &Staging,
    i: usize,
    j0: usize,
    dw: &mut [f32],
) {
    const L: usize = 16;
    const HALF: usize = L / 2;
    let mut acc = [[0.0f32; L]; K];
    let full = geo.ow / L * L;
    for oy in 0..geo.oh {
        let grow = &gp[oy * geo.ow..][..geo.ow];
        let r = oy * geo.sh + i;
        for start in (0..full).step_by(L) {
            let gv = &grow[start..start + L];
            for (k, acc) in acc.iter_mut().enumerate() {
                let j = j0 + k;
                let run = &stage.row(buf, r, j % geo.sw)[start + j / geo.sw..][..L];
                for ((a, g), v) in acc.iter_mut().zip(gv).zip(run) {
                    *a += g * v;
                }
            }
        }
        // The rest of the row in blocks of 8, `g` zero-padded: the staged row extends to a
        // whole register block (a multiple of 8) past `ow`, so the runs stay in bounds.
        for start in (full..geo.ow).step_by(HALF) {
            // Built lane by lane, not by `copy_from_slice`: that became a `memcpy` call whose
            // narrow stores the vector load then waited on (27 % of this function in `perf`).
            let gv: [f32; HALF] =
                std::array::from_fn(|l| grow.get(start + l).copied().unwrap_or(0.0));
            for (k, acc) in acc.iter_mut().enumerate() {
                let j = j0 + k;
                let run = &stage.row(buf, r, j % geo.sw)[start + j / geo.sw..][..HALF];
                for ((a, g), v) in acc.iter_mut().zip(&gv).zip(run) {
                    *a += g * v;
                }
            }
        }
    }
    for (d, acc) in dw.iter_mut().zip(&acc) {
        *d += acc.iter().sum::<f32>();
    }
}

/// `∂L/∂x`, shape `[n, c, h, w]`, from the weight `w` `[c, 1, kh, kw]` and the output gradient
/// `g` `[n, c, oh, ow]`: each tap adds `w · g` into the staged layout [`forward`] reads (a
/// contiguous run for any stride), then the staged plane goes back to `[h, w]`, padding
/// dropped.
pub fn input_grad(w: &[f32], g: &[f32], geo: &Geometry) -> Vec<f32> {
    let taps = geo.kh * geo.kw;
    assert_eq!(w.len(), geo.c * taps, "depthwise: weight length");
    assert_eq!(
        g.len(),
        geo.n * geo.c * geo.out_plane(),
        "depthwise: gradient length"
    );
    if geo.sh == 1 && geo.sw == 1 && geo.ph < geo.kh && geo.pw < geo.kw {
        return input_grad_stride_one(w, g, geo);
    }
    let mut out = vec![0.0f32; geo.n * geo.c * geo.in_plane()];
    if geo.in_plane() == 0 || geo.out_plane() == 0 {
        return out;
    }
    let stage = Staging::new(geo, Kernel::Portable);
    out.par_chunks_mut(geo.in_plane())
        .enumerate()
        .for_each_init(
            || vec![0.0f32; stage.len()],
            |buf, (plane, dx)| {
                let c = plane % geo.c;
                let gp = &g[plane * geo.out_plane()..][..geo.out_plane()];
                buf.fill(0.0);
                scatter(buf, &w[c * taps..][..taps], gp, geo, &stage);
                stage.unfill(buf, geo, dx);
            },
        );
    out
}

/// At stride 1 the input gradient is itself a depthwise convolution: of `g` with each kernel
/// turned 180°, padded by `k − 1 − p` before, output `h × w`
/// (`∂x[iy, ix] = Σ w[i, j] · g[iy + p − i, ix + p − j]`, and `i ↦ k − 1 − i` makes that a
/// correlation). So it runs on [`forward`]'s register blocks instead of one pass per tap.
fn input_grad_stride_one(w: &[f32], g: &[f32], geo: &Geometry) -> Vec<f32> {
    let taps = geo.kh * geo.kw;
    let turned: Vec<f32> = w
        .chunks_exact(taps)
        .flat_map(|wc| wc.iter().rev().copied())
        .collect();
    let transposed = Geometry {
        h: geo.oh,
        w: geo.ow,
        oh: geo.h,
        ow: geo.w,
        ph: geo.kh - 1 - geo.ph,
        pw: geo.kw - 1 - geo.pw,
        ..*geo
    };
    forward(g, &turned, &transposed)
}

/// The taps of one plane's input gradient added into the staged layout.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn scatter(buf: &mut [f32], wc: &[f32], gp: &[f32], geo: &Geometry, stage: &Staging) {
    for oy in 0..geo.oh {
        let grow = &gp[oy * geo.ow..][..geo.ow];
        for i in 0..geo.kh {
            for j in 0..geo.kw {
                let wv = wc[i * geo.kw + j];
                let run = &mut stage.row_mut(buf, oy * geo.sh + i, j % geo.sw)[j / geo.sw..];
                for (d, s) in run[..geo.ow].iter_mut().zip(grow) {
                    *d += wv * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definitions above as plain loops over every (output, tap) pair, in f64: `(∂w, ∂x, y)`.
    fn reference(
        x: &[f32],
        w: &[f32],
        g: &[f32],
        geo: &Geometry,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut dw = vec![0.0f64; geo.c * geo.kh * geo.kw];
        let mut dx = vec![0.0f64; x.len()];
        let mut y = vec![0.0f64; g.len()];
        for n in 0..geo.n {
            for c in 0..geo.c {
                for oy in 0..geo.oh {
                    for ox in 0..geo.ow {
                        let yi = ((n * geo.c + c) * geo.oh + oy) * geo.ow + ox;
                        let gv = f64::from(g[yi]);
                        for i in 0..geo.kh {
                            for j in 0..geo.kw {
                                let iy = (oy * geo.sh + i) as isize - geo.ph as isize;
                                let ix = (ox * geo.sw + j) as isize - geo.pw as isize;
                                if iy < 0 || ix < 0 || iy >= geo.h as isize || ix >= geo.w as isize
                                {
                                    continue;
                                }
                                let xi =
                                    ((n * geo.c + c) * geo.h + iy as usize) * geo.w + ix as usize;
                                let wi = (c * geo.kh + i) * geo.kw + j;
                                dw[wi] += gv * f64::from(x[xi]);
                                dx[xi] += gv * f64::from(w[wi]);
                                y[yi] += f64::from(w[wi]) * f64::from(x[xi]);
                            }
                        }
                    }
                }
            }
        }
        (dw, dx, y)
    }

    /// The kernels this CPU runs: the portable loop, and the AVX-512 and AVX2 ones where it
    /// has them.
    fn kernels() -> Vec<Kernel> {
        #[allow(unused_mut)] // pushed to on x86_64 only
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if Avx512::available() {
                kernels.push(Kernel::Avx512);
            }
            if Avx2::available() {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels
    }

    /// Deterministic values in [−1, 1).
    pub(super) fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn check(geo: Geometry) {
        let x = values(geo.n * geo.c * geo.h * geo.w, 1);
        let w = values(geo.c * geo.kh * geo.kw, 2);
        let g = values(geo.n * geo.c * geo.oh * geo.ow, 3);
        let (dw_ref, dx_ref, y_ref) = reference(&x, &w, &g, &geo);
        let dw = weight_grad(&x, &g, &geo);
        let dx = input_grad(&w, &g, &geo);
        let y = forward(&x, &w, &geo);
        assert_eq!(y.len(), y_ref.len());
        for (k, (a, b)) in y.iter().zip(&y_ref).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{geo:?}: y[{k}] {a} vs {b}"
            );
        }
        // With a bias, one thread and the pool: the definition plus the bias, and the same
        // values either way (each plane's arithmetic does not depend on the thread).
        let bias = values(geo.c, 4);
        let serial = forward_with(&x, &w, Some(&bias), &geo, Spread::Serial);
        let pooled = forward_with(&x, &w, Some(&bias), &geo, Spread::Rayon);
        assert_eq!(serial, pooled, "{geo:?}: serial vs rayon");
        for (k, (a, b)) in serial.iter().zip(&y_ref).enumerate() {
            let b = b + f64::from(bias[(k / (geo.oh * geo.ow)) % geo.c]);
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{geo:?}: biased y[{k}] {a} vs {b}"
            );
        }
        for (k, (a, b)) in dw.iter().zip(&dw_ref).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{geo:?}: dw[{k}] {a} vs {b}"
            );
        }
        for (k, (a, b)) in dx.iter().zip(&dx_ref).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{geo:?}: dx[{k}] {a} vs {b}"
            );
        }
    }

    /// TF "SAME" output size and (before) padding for one axis.
    fn same(size: usize, k: usize, s: usize) -> (usize, usize) {
        let out = size.div_ceil(s);
        let total = ((out - 1) * s + k).saturating_sub(size);
        (out, total / 2)
    }

    #[test]
    fn output_and_gradients_match_the_definition_for_efficientnet_geometries() {
        // k3/k5, stride 1/2, even and odd sizes (asymmetric TF padding at stride 2 on even
        // sizes), a width that is not a multiple of the 8-lane dot product or of the forward's
        // register blocks.
        for (h, w, k, s) in [
            (8, 8, 3, 1),
            (8, 8, 3, 2),
            (9, 13, 3, 2),
            (7, 19, 5, 1),
            (12, 12, 5, 2),
            (1, 1, 3, 1),
            (2, 3, 5, 2),
            // Output rows of 16 (one block exactly), 30 (block 32), 40 and 75 (block 64, one
            // and two blocks, the second partial).
            (3, 16, 3, 1),
            (4, 30, 3, 1),
            (5, 40, 3, 1),
            (6, 150, 5, 2),
        ] {
            let (oh, ph) = same(h, k, s);
            let (ow, pw) = same(w, k, s);
            check(Geometry {
                n: 2,
                c: 3,
                h,
                w,
                kh: k,
                kw: k,
                oh,
                ow,
                sh: s,
                sw: s,
                ph,
                pw,
            });
        }
    }

    /// One image at stride 1 with planes of at least 196 pixels, on pools of two and three
    /// threads, splits its output rows (`by_rows`: uneven runs on three) and equals the plane
    /// path on one thread bit for bit, `then` included (it runs on each run of rows): 3×3 with
    /// padding 1 on 16×16, 5×5 with padding 2 on 15×17 (runs that start and end inside the
    /// padding), "valid" 3×3 on 17×16 (15×14 out, no padding rows), and 3×3 with padding 1 on
    /// 20×40 cut to 10 output columns (the staged rows narrower than the input's: columns no
    /// output reads are left out, which a plain copy of each row got wrong).
    #[cfg(all(feature = "infer", target_arch = "x86_64"))]
    #[test]
    fn the_row_split_equals_the_plane_path_bit_for_bit() {
        let geos = [
            (5, 16, 16, 3, 1, 16, 16),
            (3, 15, 17, 5, 2, 15, 17),
            (2, 17, 16, 3, 0, 15, 14),
            (2, 20, 40, 3, 1, 20, 10),
        ];
        let then = |p: &mut [f32]| p.iter_mut().for_each(|v| *v = v.clamp(-0.5, 0.5));
        for (c, h, w, k, pad, oh, ow) in geos {
            let geo = Geometry {
                n: 1,
                c,
                h,
                w,
                kh: k,
                kw: k,
                oh,
                ow,
                sh: 1,
                sw: 1,
                ph: pad,
                pw: pad,
            };
            let x = values(c * h * w, 5);
            let wt = values(c * k * k, 6);
            let bias = values(c, 7);
            let run = |spread| {
                let mut y = vec![MaybeUninit::new(f32::NAN); c * oh * ow];
                forward_into(&x, &wt, Some(&bias), &geo, spread, &mut y, &then);
                // SAFETY: initialized (NaN), then written.
                y.iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect::<Vec<u32>>()
            };
            let serial = run(Spread::Serial);
            for threads in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    assert!(
                        by_rows(&geo, Spread::Rayon, Kernel::best()),
                        "{geo:?}: {threads} threads by rows"
                    );
                    assert_eq!(run(Spread::Rayon), serial, "{geo:?}, {threads} threads");
                });
            }
        }
    }

    #[test]
    fn output_and_gradients_match_the_definition_with_symmetric_and_no_padding() {
        // timm's symmetric k/2 padding at stride 2 on an even size (one output row fewer
        // reaches the end), and "valid" (no padding) with a non-square kernel.
        check(Geometry {
            n: 1,
            c: 4,
            h: 10,
            w: 10,
            kh: 3,
            kw: 3,
            oh: 5,
            ow: 5,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
        });
        check(Geometry {
            n: 3,
            c: 2,
            h: 6,
            w: 11,
            kh: 3,
            kw: 5,
            oh: 4,
            ow: 7,
            sh: 1,
            sw: 1,
            ph: 0,
            pw: 0,
        });
    }

    /// The small-plane path ([`lanes`]) gives the plane path's values bit for bit (the same
    /// sums in the same order): 7×7 and smaller outputs, 3×3 and 5×5, stride 1 and 2, channel
    /// counts that fill its 16-lane blocks, leave one partial and stay under one, a batch of 2,
    /// on one thread and rayon's, with its portable loop and (where the CPU has it) AVX-512.
    #[test]
    fn the_small_plane_path_equals_the_plane_path_bit_for_bit() {
        for (c, h, w, k, s) in [
            (40, 7, 7, 5, 1),
            (16, 14, 14, 5, 2),
            (33, 7, 7, 3, 1),
            (5, 9, 13, 3, 2),
            (17, 1, 1, 5, 1),
            (48, 8, 3, 3, 1),
        ] {
            let (oh, ph) = same(h, k, s);
            let (ow, pw) = same(w, k, s);
            let geo = Geometry {
                n: 2,
                c,
                h,
                w,
                kh: k,
                kw: k,
                oh,
                ow,
                sh: s,
                sw: s,
                ph,
                pw,
            };
            assert!(lanes::suits(&geo), "{geo:?}");
            let x = values(geo.n * c * h * w, 5);
            let wt = values(c * k * k, 6);
            let bias = values(c, 7);
            let len = geo.n * c * oh * ow;
            let run = |lanes: Option<Kernel>, spread| {
                let mut y = vec![MaybeUninit::new(f32::NAN); len];
                if let Some(kernel) = lanes {
                    lanes::forward_into(
                        &x,
                        &LaneWeights::new(&wt, Some(&bias), &geo),
                        &geo,
                        spread,
                        kernel,
                        &mut y,
                        &|_| {},
                    );
                } else {
                    planes_into(
                        &x,
                        &wt,
                        Some(&bias),
                        &geo,
                        spread,
                        Kernel::Portable,
                        &mut y,
                        &|_| {},
                    );
                }
                // SAFETY: initialized above (NaN), then written.
                y.iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect::<Vec<_>>()
            };
            let planes = run(None, Spread::Serial);
            assert!(
                planes.iter().all(|b| !f32::from_bits(*b).is_nan()),
                "{geo:?}"
            );
            let kernels = kernels();
            if kernels.len() == 1 {
                eprintln!("SKIPPED: this CPU has no AVX-512; only the portable lanes loop ran");
            }
            for kernel in kernels {
                for spread in [Spread::Serial, Spread::Rayon] {
                    let lanes = run(Some(kernel), spread);
                    assert_eq!(lanes, planes, "{geo:?} {kernel:?} {spread:?}");
                }
            }
            // No channels (a small plane, so the lanes path's geometry): nothing to write, no
            // panic (its blocks of `c·oh·ow` values per sample would be empty chunks).
            let none = Geometry { c: 0, ..geo };
            assert!(forward_with(&[], &[], None, &none, Spread::Rayon).is_empty());
        }
    }

    /// The intrinsics' inner loops (AVX-512's 16 lanes, AVX2's 8) give the portable loop's
    /// values bit for bit (the same sums in the same order) on every block shape they have: one
    /// to eight vectors per row, rows cut short and column blocks cut short, stride 1 and 2,
    /// 3×3 and 5×5, a batch of 2.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_intrinsics_loops_equal_the_portable_loop_bit_for_bit() {
        let kernels = kernels();
        if kernels.len() == 1 {
            eprintln!("SKIPPED: this CPU has neither AVX-512 nor AVX2; no loop to test runs");
            return;
        }
        for (c, h, w, k, s) in [
            (5, 14, 14, 5, 1),
            (3, 28, 28, 5, 2),
            (4, 28, 28, 3, 1),
            (2, 56, 56, 3, 1),
            (3, 112, 112, 3, 2),
            (2, 112, 112, 3, 1),
            (3, 9, 13, 3, 2),
            (2, 7, 19, 5, 1),
            (2, 5, 40, 3, 1),
            (2, 4, 45, 3, 1),
            (2, 6, 150, 5, 2),
            (2, 3, 300, 3, 1),
            (3, 1, 1, 3, 1),
            (2, 2, 3, 5, 2),
            // One input column, padded on both sides: at stride 2 one phase holds no image
            // column (the staging's `fill_pairs` writes only the other).
            (2, 3, 1, 3, 2),
        ] {
            let (oh, ph) = same(h, k, s);
            let (ow, pw) = same(w, k, s);
            let geo = Geometry {
                n: 2,
                c,
                h,
                w,
                kh: k,
                kw: k,
                oh,
                ow,
                sh: s,
                sw: s,
                ph,
                pw,
            };
            let x = values(geo.n * c * h * w, 8);
            let wt = values(c * k * k, 9);
            let bias = values(c, 10);
            let len = geo.n * c * oh * ow;
            let run = |kernel, spread| {
                let mut y = vec![MaybeUninit::new(f32::NAN); len];
                planes_into(&x, &wt, Some(&bias), &geo, spread, kernel, &mut y, &|_| {});
                // SAFETY: initialized above (NaN), then written.
                y.iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect::<Vec<_>>()
            };
            let portable = run(Kernel::Portable, Spread::Serial);
            assert!(
                portable.iter().all(|b| !f32::from_bits(*b).is_nan()),
                "{geo:?}"
            );
            for &kernel in &kernels[1..] {
                for spread in [Spread::Serial, Spread::Rayon] {
                    let got = run(kernel, spread);
                    assert_eq!(got, portable, "{kernel:?} {geo:?} {spread:?}");
                }
            }
        }
    }

    /// `forward_into`'s `then` sees every output exactly once, after it is written: doubling
    /// in `then` doubles every value of the plain forward, on the plane path (14×14) and the
    /// small-plane path (7×7), one thread and rayon's.
    #[test]
    fn then_sees_every_output_once() {
        for (c, side) in [(20, 14), (20, 7)] {
            let (oh, ph) = same(side, 3, 1);
            let geo = Geometry {
                n: 2,
                c,
                h: side,
                w: side,
                kh: 3,
                kw: 3,
                oh,
                ow: oh,
                sh: 1,
                sw: 1,
                ph,
                pw: ph,
            };
            let x = values(geo.n * c * side * side, 11);
            let wt = values(c * 9, 12);
            let plain = forward_with(&x, &wt, None, &geo, Spread::Serial);
            for spread in [Spread::Serial, Spread::Rayon] {
                let mut y = vec![MaybeUninit::new(f32::NAN); plain.len()];
                let double = |v: &mut [f32]| v.iter_mut().for_each(|v| *v *= 2.0);
                forward_into(&x, &wt, None, &geo, spread, &mut y, &double);
                for (k, (v, p)) in y.iter().zip(&plain).enumerate() {
                    // SAFETY: initialized (NaN) above, then written.
                    let v = unsafe { v.assume_init() };
                    assert_eq!(v, 2.0 * p, "{geo:?} {spread:?}: y[{k}]");
                }
            }
        }
    }

    /// A "valid" stride-2 conv whose last input row and column no output reads (18 input
    /// rows, 8 outputs reading 17): the staging leaves them out instead of writing past its
    /// rows (it panicked), on the small-plane path (8×8 out, both loops) and the plane path
    /// (19×19 out from 40).
    #[test]
    fn valid_stride_two_convs_with_an_unread_last_row_and_column() {
        for (c, side, out) in [(20, 18, 8), (3, 40, 19)] {
            let geo = Geometry {
                n: 1,
                c,
                h: side,
                w: side,
                kh: 3,
                kw: 3,
                oh: out,
                ow: out,
                sh: 2,
                sw: 2,
                ph: 0,
                pw: 0,
            };
            check(geo);
            if lanes::suits(&geo) {
                let x = values(c * side * side, 13);
                let wt = values(c * 9, 14);
                let mut plane = vec![MaybeUninit::new(f32::NAN); c * out * out];
                planes_into(
                    &x,
                    &wt,
                    None,
                    &geo,
                    Spread::Serial,
                    Kernel::Portable,
                    &mut plane,
                    &|_| {},
                );
                for kernel in kernels() {
                    let mut y = vec![MaybeUninit::new(f32::NAN); c * out * out];
                    lanes::forward_into(
                        &x,
                        &LaneWeights::new(&wt, None, &geo),
                        &geo,
                        Spread::Serial,
                        kernel,
                        &mut y,
                        &|_| {},
                    );
                    // SAFETY: both initialized (NaN) above, then written.
                    let bits = |v: &[MaybeUninit<f32>]| {
                        v.iter()
                            .map(|v| unsafe { v.assume_init() }.to_bits())
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(bits(&y), bits(&plane), "{geo:?} {kernel:?}");
                }
            }
        }
    }

    #[test]
    fn an_out_of_bounds_tap_contributes_nothing() {
        // A 1×1 input under a 5×5 kernel with padding 2: only the centre tap sees the pixel.
        let geo = Geometry {
            n: 1,
            c: 1,
            h: 1,
            w: 1,
            kh: 5,
            kw: 5,
            oh: 1,
            ow: 1,
            sh: 1,
            sw: 1,
            ph: 2,
            pw: 2,
        };
        let dw = weight_grad(&[3.0], &[2.0], &geo);
        let mut expected = vec![0.0; 25];
        expected[12] = 6.0;
        assert_eq!(dw, expected);
        let w: Vec<f32> = (0..25).map(|v| v as f32).collect();
        assert_eq!(input_grad(&w, &[2.0], &geo), vec![24.0]);
        assert_eq!(forward(&[3.0], &w, &geo), vec![36.0]);
    }

    /// [`forward_prepared_into`] equals [`forward_into`] bit for bit, on the small-plane path
    /// (7×7 outputs, 5×5, a partial channel block; with and without a bias) and the plane path
    /// (14×14, stride 2), one thread and rayon; the prepared weights and bias read back.
    #[test]
    fn prepared_weights_give_forward_intos_values() {
        let cases = [
            (40, 7, 7, 5, 1, 2, true),
            (19, 9, 9, 3, 1, 1, false),
            (8, 28, 28, 3, 2, 0, true),
        ];
        for (i, &(c, h, w, k, s, p, with_bias)) in cases.iter().enumerate() {
            let oh = (h + 2 * p - k) / s + 1;
            let geo = Geometry {
                n: 1,
                c,
                h,
                w,
                kh: k,
                kw: k,
                oh,
                ow: oh,
                sh: s,
                sw: s,
                ph: p,
                pw: p,
            };
            let seed = 40 + i as u32;
            let (x, wt, bias) = (
                values(c * h * w, seed),
                values(c * k * k, seed + 1),
                values(c, seed + 2),
            );
            let bias = with_bias.then_some(&bias[..]);
            let layer = Prepared::new(&wt, bias, &geo);
            assert_eq!(layer.weights(), &wt[..]);
            assert_eq!(layer.bias(), bias);
            assert_eq!(layer.geometry(), &geo);
            assert_eq!(layer.lanes.is_some(), lanes::suits(&geo), "{geo:?}");
            for spread in [Spread::Serial, Spread::Rayon] {
                let run = |prepared: bool| {
                    let mut y = vec![MaybeUninit::new(f32::NAN); c * oh * oh];
                    if prepared {
                        forward_prepared_into(&x, &layer, spread, &mut y, &|_| {});
                    } else {
                        forward_into(&x, &wt, bias, &geo, spread, &mut y, &|_| {});
                    }
                    // SAFETY: initialized (NaN) above, then written.
                    y.iter()
                        .map(|v| unsafe { v.assume_init() }.to_bits())
                        .collect::<Vec<_>>()
                };
                let (plain, prepared) = (run(false), run(true));
                assert!(
                    plain.iter().all(|b| !f32::from_bits(*b).is_nan()),
                    "{geo:?}"
                );
                assert_eq!(plain, prepared, "{geo:?}, {spread:?}");
            }
        }
    }
}
