//! [`super::forward_into`] for small planes: the channels in the vector lanes.
//!
//! The plane path keeps a block of output columns of one channel in registers; on the 7×7
//! planes of EfficientNet's last stage a row fills less than its narrowest (8-column) block and
//! the per-block bookkeeping outweighs the arithmetic (B0 at 224 px: 1152 channels of 7×7 under
//! a 5×5 kernel, 1.4 M multiply-adds, took 0.6 ms, 2.3 G/s). Here a block of [`L`] channels is
//! staged as one zero-padded `[rows][cols][L]` image, so each tap of an output pixel is one
//! full-width product for `L` channels, and [`P`] output pixels of a row stay in registers
//! across all taps.
//!
//! The arithmetic is the plane path's: each output starts from its channel's bias and adds one
//! rounded product per tap in row-major kernel order, taps over the padding adding `w·0`. Only
//! which outputs share a register differs, so the values are equal bit for bit (tested in
//! `super`).
use std::mem::MaybeUninit;

use multiversion::multiversion;
use rayon::prelude::*;

use super::{Geometry, Kernel, Spread};

/// Channels per block: one AVX-512 register, two AVX2 or four NEON ones.
const L: usize = 16;

/// Output pixels of a row kept in registers: eight 512-bit accumulators on x86_64; four (of
/// 128-bit NEON's 32 registers, 16) elsewhere, so that the weight and the staged values fit
/// beside them.
#[cfg(target_arch = "x86_64")]
const P: usize = 8;
#[cfg(not(target_arch = "x86_64"))]
const P: usize = 4;

/// Whether [`forward_into`] is the faster path for `geo`: output rows of at most 8 columns.
/// Measured one thread, B0's layers at 224 px (docs/PERFORMANCE.md): the 7×7 outputs take a
/// third to a half of the plane path's time; at 14×14 neither path is ahead.
pub(super) fn suits(geo: &Geometry) -> bool {
    geo.ow <= 8
}

/// The staged block: `rows × cols` pixels of `L` lanes, the padded input extended to whole
/// register blocks of output columns.
struct Staged {
    rows: usize,
    cols: usize,
}

impl Staged {
    fn new(geo: &Geometry) -> Self {
        Staged {
            rows: (geo.oh - 1) * geo.sh + geo.kh,
            cols: (geo.ow.div_ceil(P) * P - 1) * geo.sw + geo.kw,
        }
    }

    fn len(&self) -> usize {
        self.rows * self.cols * L
    }

    /// Stages the `planes` (one per lane, at most `L`, each `[h, w]`) into `buf`, zero
    /// elsewhere (padding, margins and the lanes past the last plane). Input rows and columns
    /// past the staged ones (a "valid" stride-2 conv's last, which no output reads) stay out.
    fn fill<'a>(&self, planes: impl Iterator<Item = &'a [f32]>, geo: &Geometry, buf: &mut [f32]) {
        buf.fill(0.0);
        let (rows, cols) = self.image(geo);
        for (l, plane) in planes.enumerate() {
            for (iy, row) in plane.chunks_exact(geo.w).take(rows).enumerate() {
                let start = ((iy + geo.ph) * self.cols + geo.pw) * L + l;
                for (d, &v) in buf[start..].iter_mut().step_by(L).zip(&row[..cols]) {
                    *d = v;
                }
            }
        }
    }

    /// How many input rows and columns the staging holds: all of them, but for those past
    /// the last staged row or column.
    fn image(&self, geo: &Geometry) -> (usize, usize) {
        (
            geo.h.min(self.rows.saturating_sub(geo.ph)),
            geo.w.min(self.cols.saturating_sub(geo.pw)),
        )
    }
}

/// A layer's weights and bias in the blocks' layout: per block of [`L`] channels the weights
/// `[taps][L]` and the bias `[L]`, zero past the last channel. Built once per layer by
/// [`super::Prepared`] (the device), or per call by [`super::forward_into`].
#[derive(Debug, Clone)]
pub(super) struct LaneWeights {
    wt: Vec<f32>,
    bt: Vec<f32>,
}

impl LaneWeights {
    /// `w` `[c, kh·kw]` and the bias `[c]` (none is zero) of `geo`'s layer.
    pub(super) fn new(w: &[f32], bias: Option<&[f32]>, geo: &Geometry) -> Self {
        let taps = geo.kh * geo.kw;
        let blocks = geo.c.div_ceil(L);
        let mut wt = vec![0.0f32; blocks * taps * L];
        let mut bt = vec![0.0f32; blocks * L];
        for (b, (wtb, btb)) in wt
            .chunks_exact_mut(taps * L)
            .zip(bt.chunks_exact_mut(L))
            .enumerate()
        {
            let channels = (geo.c - b * L).min(L);
            for (l, wc) in w[b * L * taps..]
                .chunks_exact(taps)
                .take(channels)
                .enumerate()
            {
                for (d, &v) in wtb[l..].iter_mut().step_by(L).zip(wc) {
                    *d = v;
                }
                btb[l] = bias.map_or(0.0, |v| v[b * L + l]);
            }
        }
        LaneWeights { wt, bt }
    }
}

/// `y` `[n, c, oh, ow]` from `x` `[n, c, h, w]` and the layer's [`LaneWeights`], as
/// [`super::forward_into`] (whose checks of the lengths have run).
pub(super) fn forward_into(
    x: &[f32],
    weights: &LaneWeights,
    geo: &Geometry,
    spread: Spread,
    kernel: Kernel,
    y: &mut [MaybeUninit<f32>],
    then: &(dyn Fn(&mut [f32]) + Sync),
) {
    let taps = geo.kh * geo.kw;
    let (wt, bt) = (&weights.wt, &weights.bt);
    assert_eq!(
        wt.len(),
        geo.c.div_ceil(L) * taps * L,
        "lane weights for {geo:?}"
    );
    let stage = Staged::new(geo);
    let (in_plane, out_plane) = (geo.h * geo.w, geo.oh * geo.ow);
    // Job `(n, b)` writes output planes `b·L ..` of sample `n`: a contiguous chunk of `y`, and
    // every element of it (`convolve` covers each row's columns in blocks of `P`, the last
    // cut at `ow`, for every lane below the chunk's plane count).
    let job = |buf: &mut Vec<f32>, n: usize, (b, yb): (usize, &mut [MaybeUninit<f32>])| {
        let first = n * geo.c + b * L;
        let planes = yb.len() / out_plane;
        let xs = &x[first * in_plane..][..planes * in_plane];
        let wb = &wt[b * taps * L..][..taps * L];
        let bb = &bt[b * L..][..L];
        match kernel {
            // SAFETY: `Kernel::Avx512` is only chosen where the CPU has AVX-512; its staging
            // writes the image's positions only, and `buf` is used by it alone (zero elsewhere).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe {
                let (rows, cols) = stage.image(geo);
                super::avx512::lanes_fill(xs, planes, geo, (rows, cols), stage.cols, buf);
                super::avx512::lanes_convolve(buf, wb, bb, geo, stage.rows, stage.cols, yb);
            },
            // The portable loop, on AVX2 too (no scatter for `lanes_convolve`'s stores).
            _ => {
                stage.fill(xs.chunks_exact(in_plane), geo, buf);
                convolve(buf, wb, bb, geo, &stage, yb);
            }
        }
        // SAFETY: `convolve` wrote every element of the chunk (above).
        then(unsafe { super::written(yb) });
    };
    let sample = geo.c * out_plane;
    match spread {
        Spread::Serial => {
            let mut buf = vec![0.0f32; stage.len()];
            for (n, ys) in y.chunks_mut(sample).enumerate() {
                for chunk in ys.chunks_mut(L * out_plane).enumerate() {
                    job(&mut buf, n, chunk);
                }
            }
        }
        Spread::Rayon => y.par_chunks_mut(sample).enumerate().for_each(|(n, ys)| {
            ys.par_chunks_mut(L * out_plane).enumerate().for_each_init(
                || vec![0.0f32; stage.len()],
                |buf, chunk| job(buf, n, chunk),
            )
        }),
    }
}

/// One block's output planes `yb` (`[planes ≤ L, oh, ow]`) from its staged input, weights
/// `wb` `[taps][L]` and bias `bb` `[L]`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn convolve(
    buf: &[f32],
    wb: &[f32],
    bb: &[f32],
    geo: &Geometry,
    stage: &Staged,
    yb: &mut [MaybeUninit<f32>],
) {
    let out_plane = geo.oh * geo.ow;
    let planes = yb.len() / out_plane;
    let bias: [f32; L] = bb.try_into().expect("a block's bias has L lanes");
    let step = geo.sw * L;
    let span = (P - 1) * step + L;
    for oy in 0..geo.oh {
        for ox0 in (0..geo.ow).step_by(P) {
            let mut acc = [bias; P];
            for i in 0..geo.kh {
                let row = &buf[((oy * geo.sh + i) * stage.cols + ox0 * geo.sw) * L..];
                for j in 0..geo.kw {
                    let wv: [f32; L] = wb[(i * geo.kw + j) * L..][..L].try_into().unwrap();
                    let win = &row[j * L..][..span];
                    for (p, acc) in acc.iter_mut().enumerate() {
                        let xv: [f32; L] = win[p * step..][..L].try_into().unwrap();
                        *acc = madd(*acc, wv, xv);
                    }
                }
            }
            // Out through a copy: `acc` itself is only ever indexed by constants, so it stays
            // in registers (reading it by plane below would have kept it in memory throughout).
            let done = acc;
            let cols = P.min(geo.ow - ox0);
            let at = oy * geo.ow + ox0;
            for (l, yp) in yb.chunks_exact_mut(out_plane).take(planes).enumerate() {
                for (p, d) in yp[at..at + cols].iter_mut().enumerate() {
                    d.write(done[p][l]);
                }
            }
        }
    }
}

/// `a + w·x` lane by lane: one rounded product, then one rounded sum (no fused multiply-add).
/// By value, on whole arrays, so that the compiler turns each call into one vector product and
/// one vector sum over the lanes (with references into the loops above it built gathers
/// across the pixels instead).
#[inline(always)]
fn madd(a: [f32; L], w: [f32; L], x: [f32; L]) -> [f32; L] {
    std::array::from_fn(|l| a[l] + w[l] * x[l])
}
