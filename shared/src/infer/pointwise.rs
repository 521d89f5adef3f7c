//! fovea's 1×1 convolution inside tract: an op running the product `y = W·x + b` on the `gemm`
//! crate, and [`replace`], the model patch that puts it in place of tract's decluttered 1×1
//! convs (an `EinSum` `IHW,OI->OHW` and the `Add` of its bias) before tract optimizes the model.
//!
//! Why: the matrix products of EfficientNet's 1×1 convs were half of a B0 run in tract 0.23.9
//! (`OptMatMul` 51 % and its activation packing 4.8 % of 23.4 ms, one thread). Per layer at
//! 224 px, one thread, best of 30 (the temporary program of docs/PERFORMANCE.md): gemm 0.19 took
//! 245 vs 470 µs for 32→16 on 112×112, 748 vs 1120 for 16→96, 259 vs 534 for 24→144 on 56×56,
//! 174 vs 235 for 480→80 on 14×14 — and lost on 7×7 (192→1152: 290 vs 240; 320→1280: 530 vs
//! 423). gemm has no pre-packed operand: it packs the weights on every call, which tract does
//! once at load, and that packing weighs as `1/(H·W)` against the product. So convs whose
//! weight matrix is no larger than the input (`C_out ≤ H·W`) take this op, and from 14×14
//! (196 pixels) on all do: with the weights packed once per call (one column tile per thread,
//! `product`) gemm beat tract on every B0 14×14 layer, 80→480 150 vs 171 µs and 112→672 289 vs
//! 312 (`edge/examples/pointwise_layers.rs`, medians of 100), where three cache-sized tiles
//! had tied (167, 314). On 7×7 planes the products run on `channel_lanes.rs` where it runs
//! and `C_out` is a multiple of its lanes (192 → 1152: 242–248 µs against tract's 270–295 plus
//! its packing, AVX-512; the projections and head conv 1152 → 192, 320 → 1280 into planes,
//! AVX2: docs/PERFORMANCE.md); elsewhere they stay tract's. On AVX-512 the products on 14×14
//! planes run there too (`PLANES_ON_AVX512_UP_TO`: the 14×14 projections), and gemm's into
//! planes of few output channels (a multiple of 8 up to 40: the 112×112 to 28×28 projections)
//! run on `pixel_lanes.rs`, the pixels in the vector lanes.
//!
//! The values are a matrix product's, not tract's bit for bit: gemm associates each output's
//! sum differently from tract's kernels (tested below within a bound from the sum's magnitude;
//! the exported B0 and Lite0 were compared by hand, docs/PERFORMANCE.md). The bias is added
//! after the sum, as tract does. The output is written column tile by column tile, each tile
//! small enough to stay in cache while its bias is added. Threads follow tract's executor: one
//! thread under the default single-thread executor, the executor's rayon pool under
//! `Executor::multithread`. An expansion whose output tract's `ChangeAxes` turned
//! channels-last for the depthwise conv after it (`super::depthwise`) is taken too: the same
//! gemm product with the output's strides swapped (`out_last`), its bias `[1, 1, C_out]`; where
//! its output channels are a multiple of the lanes of the CPU's AVX-512 (16) or AVX2 (8) it runs
//! on `channel_lanes.rs` instead (the channels in the vector lanes, the weights arranged group
//! by group at load: the same values).
//! A projection whose input squeeze-excitation's gate scales channel by channel takes the gate
//! as a second input (`gated`, placed by [`super::se_gate`]) and runs on `W·diag(g)`. On two
//! threads and more the head conv (on the channel lanes into 7×7 planes, more output channels
//! than input ones) splits its output channels over the threads rather than its pixels
//! (`by_channel_runs`): the same values.
use std::mem::MaybeUninit;
use std::sync::Arc;

use multiversion::multiversion;
use rayon::prelude::*;
use tract_core::internal::*;
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::einsum::EinSum;
use tract_core::ops::math::Add;
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::activation::Activation;
#[cfg(target_arch = "x86_64")]
use super::channel_lanes::Layout;
use crate::shared_out::SharedOut;

/// A 1×1 convolution with constant weights and an optional constant bias, on a CHW input of
/// one image to a `[C_out, H, W]` output (either with leading axes of size 1).
#[derive(Debug, Clone)]
pub struct Pointwise {
    /// The input's shape: `[.., C_in, H, W]`, any leading axes of size 1.
    pub(super) input: TVec<usize>,
    /// The output's shape: `[.., C_out, H, W]`, any leading axes of size 1.
    pub(super) output: TVec<usize>,
    c_out: usize,
    /// The weights, as the product reads them.
    kernel: Kernel,
    /// `[C_out]`.
    pub(super) bias: Option<Arc<[f32]>>,
    /// Applied to the outputs after the bias, tile by tile ([`super::activation::fuse`]).
    activation: Option<Activation>,
    /// Whether the output is channels-last, `[.., H, W, C_out]`: where tract's `ChangeAxes`
    /// moved the channels of the depthwise conv's input ([`super::depthwise`]) back to this
    /// expansion.
    pub(super) out_last: bool,
    /// Whether a second input, `[.., C_in, 1, 1]`, scales the input's channels first
    /// (squeeze-excitation's gate, [`super::se_gate`]): the product then runs on gemm on the
    /// weights with column `i` scaled by `g[i]`, or on the lanes on the input's row `i` scaled
    /// by `g[i]` as it is packed.
    pub(super) gated: bool,
}

/// A 1×1 convolution's weights, `W` (`[C_out, C_in]`), held once, in the form its product reads.
#[derive(Debug, Clone)]
enum Kernel {
    /// Row-major: gemm's operand, and `pixel_lanes.rs`'s.
    Rows(Arc<[f32]>),
    /// Arranged group by group (`channel_lanes::arrange`), where the product runs with the
    /// output channels in the vector lanes (`channel_lanes.rs`: x86_64 with AVX-512 or AVX2,
    /// `C_out` a multiple of their 16 or 8 lanes; a channels-last output, or planes of fewer than
    /// [`PLANES_ON_LANES_BELOW`] pixels, or on AVX-512 of up to [`PLANES_ON_AVX512_UP_TO`]). The
    /// row-major copy is not kept beside it: with both, `edge screen`'s peak RSS on a B0 bundle
    /// was 63.4–63.9 MiB, with this alone 53.5–54.6.
    #[cfg(target_arch = "x86_64")]
    Lanes(Arc<[f32]>),
}

impl Kernel {
    /// The values, in this form's order.
    fn values(&self) -> &[f32] {
        match self {
            Kernel::Rows(w) => w,
            #[cfg(target_arch = "x86_64")]
            Kernel::Lanes(wt) => wt,
        }
    }
}

/// A product's weights: `W` row-major for gemm, or arranged for the lanes with the gate that
/// scales the input's channels first.
#[derive(Clone, Copy)]
pub(super) enum Operand<'a> {
    /// `[C_out, C_in]`, row-major (a gate already folded in).
    Rows(&'a [f32]),
    /// Arranged for `channel_lanes.rs`.
    #[cfg(target_arch = "x86_64")]
    Lanes(Weights<'a>),
}

impl Operand<'_> {
    /// How many weights.
    fn len(&self) -> usize {
        match self {
            Operand::Rows(w) => w.len(),
            #[cfg(target_arch = "x86_64")]
            Operand::Lanes(l) => l.wt.len(),
        }
    }
}

impl PartialEq for Pointwise {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.input == other.input
            && self.output == other.output
            && self.c_out == other.c_out
            && std::mem::discriminant(&self.kernel) == std::mem::discriminant(&other.kernel)
            && bits(self.kernel.values()) == bits(other.kernel.values())
            && self.bias.as_deref().map(bits) == other.bias.as_deref().map(bits)
            && self.activation == other.activation
            && self.out_last == other.out_last
            && self.gated == other.gated
    }
}

impl Eq for Pointwise {}

impl Pointwise {
    /// This op with `activation` applied to its outputs.
    pub fn with_activation(&self, activation: Activation) -> Self {
        Pointwise {
            activation: Some(activation),
            ..self.clone()
        }
    }

    /// This op with a second input scaling the input's channels ([`Self::gated`]).
    pub(super) fn with_gate(&self) -> Self {
        Pointwise {
            gated: true,
            ..self.clone()
        }
    }

    /// `(C_in, H·W)`.
    pub(super) fn dims(&self) -> (usize, usize) {
        let r = self.input.len();
        (self.input[r - 3], self.input[r - 2] * self.input[r - 1])
    }

    /// The output channels.
    pub(super) fn c_out(&self) -> usize {
        self.c_out
    }

    /// The weights, `[C_out, C_in]` row-major, unless they are arranged for the lanes.
    pub(super) fn rows(&self) -> Option<&[f32]> {
        match &self.kernel {
            Kernel::Rows(w) => Some(w),
            #[cfg(target_arch = "x86_64")]
            Kernel::Lanes(_) => None,
        }
    }

    /// This op with its weights arranged for `channel_lanes.rs` in place of the row-major ones,
    /// where the lanes run its product ([`runs_on_lanes`]); else unchanged.
    fn on_lanes(self) -> Self {
        let (c_in, hw) = self.dims();
        let wt = match self.rows() {
            Some(w) if runs_on_lanes(self.c_out, hw, self.out_last) => {
                arranged(w, c_in, self.c_out)
            }
            _ => None,
        };
        match wt {
            #[cfg(target_arch = "x86_64")]
            Some(wt) => Pointwise {
                kernel: Kernel::Lanes(wt),
                ..self
            },
            _ => self,
        }
    }

    /// Pixels `j0 ..` of this (ungated) op's output, channels-last, into `out` (whole pixels of
    /// `C_out` values, as many as it holds), on the calling thread: fovea's expansion and
    /// depthwise conv in one op runs the expansion band by band through this
    /// ([`super::expand_depthwise`]).
    ///
    /// # Panics
    /// If the op is gated, `x` is not its input's size or the pixels run past the image.
    // Off x86_64 the weights are row-major alone: the match has one arm there.
    #[cfg_attr(
        not(target_arch = "x86_64"),
        allow(clippy::infallible_destructuring_match)
    )]
    pub(super) fn pixels_last(&self, x: &[f32], j0: usize, out: &mut [f32]) {
        let (c_in, hw) = self.dims();
        let cols = out.len() / self.c_out.max(1);
        assert!(
            !self.gated
                && x.len() == c_in * hw
                && out.len() == cols * self.c_out
                && j0 + cols <= hw
                && c_in > 0,
            "pointwise pixels: {cols} from {j0} of {hw}"
        );
        if cols == 0 {
            return;
        }
        let w = match &self.kernel {
            Kernel::Rows(w) => w,
            #[cfg(target_arch = "x86_64")]
            Kernel::Lanes(wt) => {
                let (bias, act) = (self.bias.as_deref(), self.activation);
                let wt = Weights { wt, gate: None };
                return super::channel_lanes::pixels(&x[j0..], hw, wt, self.c_out, bias, act, out);
            }
        };
        let d = Dims {
            c_in,
            c_out: self.c_out,
            hw: cols,
        };
        // SAFETY: x's columns j0 .. j0 + cols of its c_in rows (stride hw) lie inside it and
        // `out` holds those columns' c_out values each (asserted); `out` is borrowed mutably.
        unsafe {
            tile_product(
                x.as_ptr().add(j0),
                hw,
                w,
                self.bias.as_deref(),
                self.activation,
                d,
                out.as_mut_ptr(),
                (1, self.c_out),
                gemm::Parallelism::None,
            )
        }
    }

    /// Whether [`pixels_blocked`](Self::pixels_blocked) runs: the product runs on the channel
    /// lanes (x86_64 with AVX-512 or AVX2, weights arranged at load).
    pub(super) fn writes_blocks(&self) -> bool {
        match self.kernel {
            Kernel::Rows(_) => false,
            #[cfg(target_arch = "x86_64")]
            Kernel::Lanes(_) => !self.gated,
        }
    }

    /// [`pixels_last`](Self::pixels_last)'s `cols` pixels from `j0` in blocks of 16 channels
    /// instead (`channel_lanes::laid_out`): channel `o` of pixel `p` at `out[(o / 16)·block +
    /// p·16 + o % 16]`, the blocks' lanes past `C_out` not written.
    ///
    /// # Panics
    /// Unless [`writes_blocks`](Self::writes_blocks), or if `x` is not the input's size, the
    /// pixels run past the image, `block < 16·cols` or `out` is too short for the blocks.
    pub(super) fn pixels_blocked(
        &self,
        x: &[f32],
        j0: usize,
        out: &mut [f32],
        block: usize,
        cols: usize,
    ) {
        let (c_in, hw) = self.dims();
        let span = crate::channel_blocks::span(self.c_out, block, cols);
        assert!(
            self.writes_blocks()
                && x.len() == c_in * hw
                && j0 + cols <= hw
                && span.is_some_and(|span| cols == 0 || out.len() >= span),
            "pointwise pixels in blocks: {cols} from {j0} of {hw}, blocks {block} apart"
        );
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Lanes(wt) = &self.kernel {
            let (bias, act) = (self.bias.as_deref(), self.activation);
            let wt = Weights { wt, gate: None };
            let tile = (out.as_mut_ptr(), Layout::Blocked(block), cols);
            // SAFETY: `out` holds every block's `cols` pixels (asserted) and is borrowed
            // mutably.
            unsafe {
                super::channel_lanes::laid_out(&x[j0..], hw, wt, self.c_out, bias, act, tile)
            };
        }
    }

    /// `cols` pixels of this (ungated, planes-out) op's output from input planes of its own:
    /// `x`'s `C_in` rows `x_stride` apart in, the `C_out` rows `out_stride` apart from `out`
    /// out, on the calling thread. Each output is the one [`EvalOp::eval`] writes for its pixel
    /// (a pixel's sum does not depend on which pixels share the call). fovea's MBConv in one op
    /// runs its projection band by band through this ([`super::expand_depthwise`]).
    ///
    /// # Safety
    /// `out` must be valid for writes at `o·out_stride + j` (`o < C_out`, `j < cols`), touched
    /// by no other thread meanwhile.
    ///
    /// # Panics
    /// If the op is gated or writes channels-last, or `x` lacks a value the pixels read.
    pub(super) unsafe fn planes_of(
        &self,
        (x, x_stride): (&[f32], usize),
        cols: usize,
        (out, out_stride): (*mut f32, usize),
    ) {
        let (c_in, _) = self.dims();
        assert!(
            !self.gated
                && !self.out_last
                && c_in > 0
                && cols <= x_stride
                && cols <= out_stride
                && (cols == 0 || x.len() >= (c_in - 1) * x_stride + cols),
            "pointwise planes: {cols} pixels, rows {x_stride} and {out_stride} apart"
        );
        if cols == 0 {
            return;
        }
        let w = match &self.kernel {
            Kernel::Rows(w) => Operand::Rows(w),
            #[cfg(target_arch = "x86_64")]
            Kernel::Lanes(wt) => Operand::Lanes(Weights { wt, gate: None }),
        };
        let d = Dims {
            c_in,
            c_out: self.c_out,
            hw: cols,
        };
        let (bias, act) = (self.bias.as_deref(), self.activation);
        // SAFETY: `x` holds the pixels' c_in rows (asserted); the caller's contract covers
        // `out`.
        unsafe {
            planes_tile(
                (x, x_stride),
                w,
                bias,
                act,
                d,
                (out, out_stride),
                gemm::Parallelism::None,
            )
        }
    }
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "FoveaPointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (c_in, hw) = self.dims();
        Ok(vec![format!(
            "{c_in}→{} on {hw} pixels, bias: {}, gated: {}, then {:?}",
            self.c_out,
            self.bias.is_some(),
            self.gated,
            self.activation
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let (c_in, hw) = self.dims();
        let gate = if self.gated {
            let g = inputs[1].try_as_plain_ram()?.as_slice::<f32>()?;
            ensure!(
                g.len() == c_in,
                "FoveaPointwise: gate of {} values",
                g.len()
            );
            Some(g)
        } else {
            None
        };
        // On gemm, W·(diag(g)·x) as (W·diag(g))·x: C_out·C_in products instead of C_in·H·W. On
        // the lanes (arranged weights) so too where the weights are fewer than the input's
        // values (C_out < H·W: the 14×14 projections, whose product reads its input unpacked),
        // else the gate scales the input as it is packed (the 7×7 projections: packed anyway).
        let mut scaled = Vec::new();
        let weights = match (&self.kernel, gate) {
            (Kernel::Rows(w), Some(g)) => {
                // Row by row, so the compiler vectorizes the products (a `flat_map` over the
                // rows did not: B0's 672 → 112 projections took 90 µs longer gated than after
                // tract's `Mul`).
                scaled.reserve(w.len());
                for row in w.chunks_exact(c_in) {
                    scaled.extend(row.iter().zip(g).map(|(w, g)| w * g));
                }
                Operand::Rows(&scaled)
            }
            (Kernel::Rows(w), None) => Operand::Rows(w),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Lanes(wt), Some(g)) if self.c_out < hw => {
                super::channel_lanes::scale_inputs(wt, g, self.c_out, &mut scaled);
                Operand::Lanes(Weights {
                    wt: &scaled,
                    gate: None,
                })
            }
            #[cfg(target_arch = "x86_64")]
            (Kernel::Lanes(wt), gate) => Operand::Lanes(Weights { wt, gate }),
        };
        // SAFETY: `product` writes every element before the tensor is read.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&self.output)? };
        let len = y.len();
        // SAFETY: the tensor holds `len` f32s in one plain allocation; as `MaybeUninit<f32>`
        // (f32's layout) they may be written before they are initialized.
        let out =
            unsafe { std::slice::from_raw_parts_mut(y.as_ptr_mut_unchecked::<f32>().cast(), len) };
        let dims = Dims {
            c_in,
            c_out: self.c_out,
            hw,
        };
        let bias = self.bias.as_deref();
        let act = self.activation;
        let out_last = self.out_last;
        let mut run = |parallel| product(x, weights, bias, act, dims, out_last, parallel, out);
        match current_tract_executor() {
            Executor::SingleThread => run(false),
            Executor::MultiThread(pool) => pool.install(|| run(true)),
            _ => run(true),
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (c_in, _) = self.dims();
        let gate_fits = |g: &TypedFact| {
            g.datum_type == f32::datum_type()
                && g.shape.as_concrete().map(|s| s.iter().product()) == Some(c_in)
        };
        ensure!(
            inputs.len() == 1 + self.gated as usize
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&self.input[..])
                && inputs[1..].iter().all(|g| gate_fits(g)),
            "FoveaPointwise expects f32 {:?}{}, got {inputs:?}",
            self.input,
            if self.gated { " and its gate" } else { "" }
        );
        Ok(tvec!(f32::fact(&*self.output)))
    }

    as_op!();
}

/// The sizes of one product: `W` is `c_out × c_in`, `x` is `c_in × hw`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    pub(super) hw: usize,
}

/// A product's weights on the channel lanes (`channel_lanes.rs`): `wt`, `[C_out, C_in]` as
/// `channel_lanes::arrange` lays it out, and the gate that scales the input's channels first,
/// if any.
#[derive(Clone, Copy)]
#[cfg(target_arch = "x86_64")]
pub(super) struct Weights<'a> {
    /// The arranged weights.
    pub(super) wt: &'a [f32],
    /// `[C_in]`, or none.
    pub(super) gate: Option<&'a [f32]>,
}

/// Output values per column tile: 64 Ki f32 (256 KiB), so a tile is still in cache when its
/// bias is added.
const TILE_VALUES: usize = 1 << 16;

/// Planes of fewer pixels than this (7×7 at 224 px) run their product on `channel_lanes.rs`
/// into planes, where it runs and `C_out` is a multiple of its lanes, with the weights arranged
/// once at load: gemm packs the weights on every call and lost to tract on them, and tract's
/// own product packs the input on every call and hardly gains from a second thread there.
pub(super) const PLANES_ON_LANES_BELOW: usize = 196;

/// On AVX-512, planes of up to this many pixels (14×14 at 224 px) run there too. Lite0's
/// 14×14 projections (`node_profile`, two rounds alternated, one thread then two; gemm →
/// lanes, the lanes' weights group by group from 512 KiB, [`super::channel_lanes`]): 240 → 80
/// 90–96 → 79–84 µs and 54–60 → 42, 480 → 80 154–161 → 141–148 and 93–101 → 74–77, 480 → 112
/// 214 → 197–198 and 128–134 → 104, 672 → 112 297–314 → 269–277 and 171–182 → 138–143. B0's
/// are gated (squeeze-excitation): with the gate scaling the input as the product packs it
/// (196 pixels × up to 672 channels) they lost on one thread (240 → 80 99–100 → 120 µs, 480 →
/// 80 174–195 → 207–209, 672 → 112 320–321 → 345–351), with it scaling the weights, as on
/// gemm (`Pointwise::eval`), they gained (docs/PERFORMANCE.md). AVX2 keeps planes under 196
/// pixels: the lanes into planes on 14×14 measured mixed there.
const PLANES_ON_AVX512_UP_TO: usize = 196;

/// `out = act(W·x (+ b per row))`, row-major `c_out × hw` (`hw × c_out` when `out_last`),
/// every element written; column tiles split over rayon's current pool when `parallel` (a
/// single tile splits inside gemm instead). On `Operand::Lanes` (`W` arranged and the gate that
/// scales the input, if any) the product runs on `channel_lanes.rs`, channels-last or into
/// planes; on `Operand::Rows`, on gemm.
#[allow(clippy::too_many_arguments)]
pub(super) fn product(
    x: &[f32],
    w: Operand,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    out_last: bool,
    parallel: bool,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(
        x.len() == d.c_in * d.hw
            && w.len() == d.c_out * d.c_in
            && out.len() == d.c_out * d.hw
            && bias.is_none_or(|b| b.len() == d.c_out)
            && d.c_in > 0,
        "pointwise product: sizes {d:?}"
    );
    if out.is_empty() {
        return;
    }
    // Tiles of equal width, as many as a multiple of the pool's threads: one tile per thread
    // left for the last round made the 2-thread runs of 1×1 convs with 2 or 3 cache-sized tiles
    // (e.g. 144→24 on 56×56: 2730 + 406 columns) hardly faster than one thread.
    let threads = if parallel {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    #[cfg(target_arch = "x86_64")]
    if let Operand::Lanes(wt) = w
        && threads > 1
        && !out_last
        && d.hw < PLANES_ON_LANES_BELOW
        && d.c_out > d.c_in
    {
        return by_channel_runs(x, wt, bias, act, d, threads, out);
    }
    // Cache-sized tiles, except where the weights have more rows than such a tile has columns
    // (B0's 14×14 expansions: 672 rows, 97 columns): gemm packs the weights on every call, and
    // that packing outweighed the cache there (112 → 672 on 14×14 in three tiles 314 µs, in
    // one 289, `edge/examples/pointwise_layers.rs`): one tile per thread.
    let cols = (TILE_VALUES / d.c_out).max(64);
    let tiles = if d.c_out >= cols {
        threads
    } else {
        d.hw.div_ceil(cols)
    };
    let tile = d.hw.div_ceil(tiles.div_ceil(threads) * threads);
    let tiles = d.hw.div_ceil(tile);
    let dst = SharedOut(out.as_mut_ptr().cast::<f32>());
    // SAFETY: the tiles are disjoint column ranges of `out`, which holds c_out·hw values
    // (asserted), so no two calls write the same element.
    let column = |t: usize, inner| unsafe {
        column_tile(x, w, bias, act, d, t * tile, tile, dst, out_last, inner)
    };
    if parallel && tiles > 1 {
        (0..tiles)
            .into_par_iter()
            .for_each(|t| column(t, gemm::Parallelism::None));
    } else {
        let inner = if parallel {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        (0..tiles).for_each(|t| column(t, inner));
    }
}

/// [`product`] into planes on the channel lanes, its output channels split over the pool's
/// `threads` threads in runs of whole groups (`channel_lanes::group_runs`), each thread every
/// pixel of its run's channels: where a product has more output channels than input ones on
/// planes under [`PLANES_ON_LANES_BELOW`] (the head conv, 320 → 1280 on 7×7), whose weights
/// (1.6 MB) each thread otherwise streamed whole for its half of the 49 pixels. Each output is
/// the same sum either way (the runs are products of their own on the same kernel), so the
/// values are the split by pixels' bit for bit (`tests`).
///
/// Why (B0 and Lite0 at 224 px, two threads, an Intel Xeon with AVX-512, 2026-12-07; `edge
/// bench` of one binary with and without the split by an environment switch, rounds
/// alternated): whole inferences B0 8.84 → 8.72 ms and Lite0 5.50 → 5.39 (medians of 30
/// rounds, faster in 21 and 23 of them); with the 7×7 projections' channels split too the head
/// conv took 279–291 → 206–246 µs (`node_profile`, two rounds) but the projections (1152 → 192,
/// more input channels than output: each thread packs the whole 1152 × 49 input) 156–163 →
/// 167–183, and the whole inference 1.020 (B0) and 1.000 (Lite0) of the head's split alone (30
/// rounds). Split so, the 7×7 expansions' channels-last outputs ran 1.018 / 1.015 of the pixel
/// split's time and the 14×14 projections 1.061 / 1.103 (20 rounds each); docs/PERFORMANCE.md.
#[cfg(target_arch = "x86_64")]
fn by_channel_runs(
    x: &[f32],
    wt: Weights,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    threads: usize,
    out: &mut [MaybeUninit<f32>],
) {
    let dst = SharedOut(out.as_mut_ptr().cast::<f32>());
    super::channel_lanes::group_runs(d.c_out, threads)
        .into_par_iter()
        .for_each(|run| {
            let weights = Weights {
                wt: &wt.wt[run.start * d.c_in..run.end * d.c_in],
                gate: wt.gate,
            };
            let b = bias.map(|b| &b[run.clone()]);
            // SAFETY: the run's planes `start .. end` (hw values each) lie inside `out`, which
            // holds c_out·hw values (`product` asserts), and the runs are disjoint, so no two
            // threads write the same element; `x` holds c_in rows of hw pixels (asserted).
            unsafe {
                let planes = (dst.at(run.start * d.hw), Layout::Planes(d.hw), d.hw);
                super::channel_lanes::laid_out(x, d.hw, weights, run.len(), b, act, planes)
            }
        });
}

/// Columns `j0 .. j0 + tile` (clipped to `hw`) of `out = act(W·x (+ b))`, channels-last when
/// `out_last`.
///
/// # Safety
/// `out.0` must be valid for writes of `c_out·hw` values, `j0 < hw`, and no other thread may
/// touch these columns meanwhile; the slices' sizes are as `product` asserts.
#[allow(clippy::too_many_arguments)]
// Off x86_64 the weights are row-major alone: the match has one arm there.
#[cfg_attr(
    not(target_arch = "x86_64"),
    allow(clippy::infallible_destructuring_match)
)]
unsafe fn column_tile(
    x: &[f32],
    w: Operand,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    j0: usize,
    tile: usize,
    out: SharedOut,
    out_last: bool,
    parallelism: gemm::Parallelism,
) {
    let cols = tile.min(d.hw - j0);
    if !out_last {
        // SAFETY: the tile's columns j0 .. j0 + cols of each of the c_out planes (hw apart)
        // lie inside `out` (the caller's contract, which no other thread touches), its input
        // columns inside `x` (the sizes `product` asserts).
        return unsafe {
            let tile = Dims { hw: cols, ..d };
            planes_tile(
                (&x[j0..], d.hw),
                w,
                bias,
                act,
                tile,
                (out.at(j0), d.hw),
                parallelism,
            )
        };
    }
    let w = match w {
        Operand::Rows(w) => w,
        #[cfg(target_arch = "x86_64")]
        Operand::Lanes(wt) => {
            // SAFETY: channels-last, the tile's `cols` pixels of `c_out` values are contiguous
            // and inside `out` (the caller's contract, which no other thread touches).
            let tile =
                unsafe { std::slice::from_raw_parts_mut(out.at(j0 * d.c_out), cols * d.c_out) };
            return super::channel_lanes::pixels(&x[j0..], d.hw, wt, d.c_out, bias, act, tile);
        }
    };
    // SAFETY: x's columns j0 .. j0 + cols of c_in rows (stride hw) lie inside `x` (asserted
    // by `product`); the caller's contract covers `out`'s (channel `o` of pixel `j` at `o +
    // j·c_out` from the tile's first).
    unsafe {
        tile_product(
            x.as_ptr().add(j0),
            d.hw,
            w,
            bias,
            act,
            Dims { hw: cols, ..d },
            out.at(j0 * d.c_out),
            (1, d.c_out),
            parallelism,
        )
    }
}

/// `d.hw` pixels of `out = act(W·x (+ b))` into planes: `x`'s `c_in` rows `x_stride` apart,
/// output row `o` at `out + o·out_stride`. On AVX-512 few output channels of row-major
/// weights run on `pixel_lanes.rs`, arranged weights on `channel_lanes.rs`, the rest on gemm.
///
/// # Safety
/// `x` must hold the pixels' `c_in` rows, `out` be valid for writes at `o·out_stride + j`
/// (`o < c_out`, `j < d.hw`) that no other thread touches meanwhile.
// Off x86_64 the weights are row-major alone: the match has one arm there.
#[cfg_attr(
    not(target_arch = "x86_64"),
    allow(clippy::infallible_destructuring_match)
)]
unsafe fn planes_tile(
    (x, x_stride): (&[f32], usize),
    w: Operand,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    (out, out_stride): (*mut f32, usize),
    parallelism: gemm::Parallelism,
) {
    let w = match w {
        #[cfg(target_arch = "x86_64")]
        Operand::Rows(w) if super::pixel_lanes::covers(d.c_out) => {
            // SAFETY: the caller's.
            return unsafe {
                super::pixel_lanes::planes(
                    x,
                    x_stride,
                    w,
                    d.c_out,
                    bias,
                    act,
                    (out, out_stride, d.hw),
                )
            };
        }
        Operand::Rows(w) => w,
        #[cfg(target_arch = "x86_64")]
        Operand::Lanes(wt) => {
            // SAFETY: the caller's.
            return unsafe {
                let tile = (out, Layout::Planes(out_stride), d.hw);
                super::channel_lanes::laid_out(x, x_stride, wt, d.c_out, bias, act, tile)
            };
        }
    };
    // SAFETY: the caller's (output `o` of column `j` at `o·out_stride + j`).
    unsafe {
        tile_product(
            x.as_ptr(),
            x_stride,
            w,
            bias,
            act,
            d,
            out,
            (out_stride, 1),
            parallelism,
        )
    }
}

/// `out = act(W·x (+ b per row))` for one band of columns that has its own input matrix:
/// `x` is `c_in × hw` (row-major, `d.hw` columns), the output's `c_out` rows of `d.hw` values
/// lie `out_stride` apart from `out`. One thread. fovea's k×k conv unfolds its input band by
/// band and runs each band through this ([`super::dense_conv`]).
///
/// # Safety
/// `out` must be valid for writes at `o·out_stride + j` for `o < c_out`, `j < d.hw`, and no
/// other thread may touch those elements meanwhile.
pub(super) unsafe fn band_product(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    out: *mut f32,
    out_stride: usize,
) {
    assert!(
        x.len() == d.c_in * d.hw
            && w.len() == d.c_out * d.c_in
            && bias.is_none_or(|b| b.len() == d.c_out)
            && d.c_in > 0
            && d.hw <= out_stride,
        "band product: sizes {d:?}, output stride {out_stride}"
    );
    if d.hw == 0 || d.c_out == 0 {
        return;
    }
    // SAFETY: x holds c_in rows of d.hw (asserted); the caller's contract covers `out`'s.
    unsafe {
        tile_product(
            x.as_ptr(),
            d.hw,
            w,
            bias,
            act,
            d,
            out,
            (out_stride, 1),
            gemm::Parallelism::None,
        )
    }
}

/// `out = act(W·x (+ b))` for `d.hw` columns: x's `c_in` rows `x_stride` apart, output `o` of
/// column `j` at `o·rs + j·cs` (`(stride, 1)` for rows of planes, `(1, c_out)`
/// channels-last).
///
/// # Safety
/// `x` must be valid for reads at `i·x_stride + j` (`i < c_in`, `j < d.hw`), `out` for
/// writes at `o·rs + j·cs` (`o < c_out`) that no other thread touches meanwhile; `w` holds
/// `c_out·c_in` values and `bias` `c_out`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_product(
    x: *const f32,
    x_stride: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    d: Dims,
    out: *mut f32,
    (rs, cs): (usize, usize),
    parallelism: gemm::Parallelism,
) {
    let cols = d.hw;
    // SAFETY: dst (output `o` of column `j` at `o·rs + j·cs`) and rhs (row stride x_stride) are
    // as the caller's contract gives them; lhs is W (row stride c_in); gemm writes dst without
    // reading it (read_dst false) and computes 1·W·x.
    unsafe {
        gemm::gemm(
            d.c_out,
            cols,
            d.c_in,
            out,
            cs as isize,
            rs as isize,
            false,
            w.as_ptr(),
            1,
            d.c_in as isize,
            x,
            1,
            x_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    if bias.is_none() && act.is_none() {
        return;
    }
    if rs == 1 {
        // SAFETY: channels-last, the tile's `cols` pixels of `c_out` values are contiguous,
        // inside the caller's `out` and just written.
        let tile = unsafe { std::slice::from_raw_parts_mut(out, cols * d.c_out) };
        finish_pixels(tile, d.c_out, bias, act);
        return;
    }
    for o in 0..d.c_out {
        // SAFETY: row o's `cols` values lie inside the caller's `out` and were just written.
        let row = unsafe { std::slice::from_raw_parts_mut(out.add(o * rs), cols) };
        finish_row(row, bias.map(|b| b[o]), act);
    }
}

/// Adds `bias` to every value of `row` (one output channel's), then applies `act`. Compiled
/// for AVX-512, AVX2 and NEON besides the baseline and picked at run time: built for x86-64's
/// baseline, this pass (SSE's four lanes) was a fifth of B0's block-1 expansion, 100 of 530 µs;
/// dispatched, that layer took 501 against 565 µs, block 2's expansion 234 against 246
/// (`edge/examples/pointwise_layers.rs`, medians of 100).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn finish_row(row: &mut [f32], bias: Option<f32>, act: Option<Activation>) {
    match (bias, act) {
        (Some(b), Some(a)) => row.iter_mut().for_each(|v| *v = a.of(*v + b)),
        (Some(b), None) => row.iter_mut().for_each(|v| *v += b),
        (None, Some(a)) => a.apply(row),
        (None, None) => {}
    }
}

/// [`finish_row`] for channels-last pixels: `tile` holds whole pixels of `c_out` values,
/// channel `o` of each gets `bias[o]`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn finish_pixels(tile: &mut [f32], c_out: usize, bias: Option<&[f32]>, act: Option<Activation>) {
    let Some(b) = bias else {
        return finish_row(tile, None, act);
    };
    for px in tile.chunks_exact_mut(c_out) {
        match act {
            Some(a) => px.iter_mut().zip(b).for_each(|(v, b)| *v = a.of(*v + b)),
            None => px.iter_mut().zip(b).for_each(|(v, b)| *v += b),
        }
    }
}

/// Replaces every 1×1 convolution of the decluttered `model` that [`Pointwise`] covers and
/// that it runs faster than tract (see the module doc: `C_out ≤ H·W`, 196 pixels and more, or
/// any size on the channel lanes) with it, folding the bias `Add` that follows; returns how
/// many.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    replace_where(model, |_c_in, c_out, hw, lanes| {
        c_out <= hw || hw >= 196 || lanes
    })
}

/// [`replace`] with the choice of convs left to `take(C_in, C_out, H·W, lanes)`, `lanes`
/// telling whether the product would run on `channel_lanes.rs` (a channels-last output or
/// planes under 14×14, on an AVX-512 or AVX2 CPU, `C_out` a multiple of its lanes; on AVX-512
/// also on 14×14). The per-layer benchmark, `edge/examples/pointwise_layers.rs`, times every
/// layer both ways.
pub fn replace_where(
    model: &mut TypedModel,
    take: impl Fn(usize, usize, usize, bool) -> bool,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(einsum) = node.op_as::<EinSum>() else {
            continue;
        };
        let Some((op, bias_add)) = covered(model, node, einsum, &take)? else {
            continue;
        };
        let op = op.on_lanes();
        let mut patch = TypedModelPatch::new("fovea pointwise");
        let x = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(&node.name, op, &[x])?[0];
        let replaced_outlet = OutletId::new(bias_add.unwrap_or(id), 0);
        patch.shunt_outside(model, replaced_outlet, y)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

impl Pointwise {
    /// Whether this op can run as a fused op's projection (`Pointwise::planes_of`) on `c`
    /// planes of `hw` pixels: ungated, its input those planes, its output planes.
    pub(super) fn projects_planes(&self, c: usize, hw: usize) -> bool {
        !self.out_last && !self.gated && self.dims() == (c, hw)
    }
}

/// The fovea 1×1 op that alone reads `outlet` (see [`super::activation::only_reader`]), and
/// its output: the projection a fused op may take in (`expand_depthwise`, `stem_depthwise`).
pub(super) fn only_reader_of(
    model: &TypedModel,
    outlet: OutletId,
) -> TractResult<Option<(&Pointwise, OutletId)>> {
    Ok(super::activation::only_reader(model, outlet)?
        .and_then(|n| Some((n.op_as::<Pointwise>()?, OutletId::new(n.id, 0)))))
}

/// The [`Pointwise`] equal to `einsum` at `node` (and to the bias `Add` after it, whose node
/// is returned too), if it covers it and `take` takes it; its weights row-major
/// ([`Pointwise::rows`]; [`Pointwise::on_lanes`] arranges them where the lanes run it). fovea's
/// int8 1×1 conv reads the same convs through this ([`super::int8_pointwise`]).
pub(super) fn covered(
    model: &TypedModel,
    node: &TypedNode,
    einsum: &EinSum,
    take: &impl Fn(usize, usize, usize, bool) -> bool,
) -> TractResult<Option<(Pointwise, Option<usize>)>> {
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let (x, w, y) = (
        model.outlet_fact(node.inputs[0])?,
        model.outlet_fact(node.inputs[1])?,
        model.outlet_fact(OutletId::new(node.id, 0))?,
    );
    let (Some(input), Some(kernel), Some(output)) =
        (x.shape.as_concrete(), &w.konst, y.shape.as_concrete())
    else {
        return Ok(None);
    };
    let (r, ro) = (input.len(), output.len());
    if x.datum_type != f32::datum_type()
        || kernel.datum_type() != f32::datum_type()
        || kernel.rank() != 2
        || r < 3
        || ro < 3
        || input[..r - 3]
            .iter()
            .chain(&output[..ro - 3])
            .any(|&d| d != 1)
    {
        return Ok(None);
    }
    let out_last = if is_pointwise(&einsum.axes, r, ro, false) {
        false
    } else if is_pointwise(&einsum.axes, r, ro, true) {
        true
    } else {
        return Ok(None);
    };
    let (c_out, c_in) = (kernel.shape()[0], kernel.shape()[1]);
    let hw = input[r - 2] * input[r - 1];
    if c_in != input[r - 3] || c_in == 0 {
        return Ok(None);
    }
    if !take(c_in, c_out, hw, runs_on_lanes(c_out, hw, out_last)) {
        return Ok(None);
    }
    let weights: Arc<[f32]> = kernel.try_as_plain_ram()?.as_slice::<f32>()?.into();
    let (bias, bias_add) = match bias_after(model, node, c_out, out_last)? {
        Some((b, add)) => (Some(b), Some(add)),
        None => (None, None),
    };
    let op = Pointwise {
        input: input.into(),
        output: output.into(),
        c_out,
        kernel: Kernel::Rows(weights),
        bias,
        activation: None,
        out_last,
        gated: false,
    };
    Ok(Some((op, bias_add)))
}

/// Whether the product of a 1×1 conv into `c_out` channels on `hw` pixels (channels-last when
/// `out_last`) runs on `channel_lanes.rs`: a channels-last output, planes of fewer than
/// [`PLANES_ON_LANES_BELOW`] pixels or, on AVX-512, of up to [`PLANES_ON_AVX512_UP_TO`]; and
/// this CPU covers `c_out` there.
fn runs_on_lanes(c_out: usize, hw: usize, out_last: bool) -> bool {
    let small = hw < PLANES_ON_LANES_BELOW;
    let up_to = hw <= PLANES_ON_AVX512_UP_TO;
    #[cfg(target_arch = "x86_64")]
    return {
        use crate::vector::{Avx512, Vector};
        let planes = small || (up_to && Avx512::available());
        (out_last || planes) && super::channel_lanes::covers(c_out)
    };
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (c_out, out_last, small, up_to);
        false
    }
}

/// `w` (`[c_out, c_in]`) arranged for `channel_lanes.rs` (`channel_lanes::arrange`), where it
/// runs a product into `c_out` channels on this CPU; `None` elsewhere.
fn arranged(w: &[f32], c_in: usize, c_out: usize) -> Option<Arc<[f32]>> {
    #[cfg(target_arch = "x86_64")]
    return super::channel_lanes::arrange(w, c_in, c_out).map(Into::into);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, c_in, c_out);
        None
    }
}

/// Whether `axes` is `[..] I H W, O I -> [..] O H W` for an input of rank `rank` and an
/// output of rank `out_rank`: the product of a `[C_out, C_in]` matrix with each pixel's
/// channels, leading axes (of size 1, checked by the caller) carried or summed away.
fn is_pointwise(axes: &AxesMapping, rank: usize, out_rank: usize, out_last: bool) -> bool {
    let (lead, out_lead) = (rank - 3, out_rank - 3);
    // Where C_out and H sit in the output.
    let (co, h) = if out_last {
        (out_lead + 2, out_lead)
    } else {
        (out_lead, out_lead + 1)
    };
    let expected = |a: &Axis| -> bool {
        let at = |v: &TVec<TVec<usize>>, i: usize| v.get(i).cloned().unwrap_or_default();
        let (x, w, y) = (at(&a.inputs, 0), at(&a.inputs, 1), at(&a.outputs, 0));
        match (x.as_slice(), w.as_slice(), y.as_slice()) {
            ([i], [1], []) => *i == lead, // C_in, summed
            ([], [0], [o]) => *o == co,   // C_out
            ([i], [], [o]) if *i > lead && *o >= out_lead => *i - lead - 1 + h == *o, // H, W
            ([i], [], []) => *i < lead,   // a leading unit axis summed away
            ([i], [], [o]) => *i < lead && *o < out_lead, // or carried
            ([], [], [o]) => *o < out_lead, // or added
            _ => false,
        }
    };
    axes.iter_all_axes().all(expected)
        && axes
            .iter_all_axes()
            .filter(|a| a.inputs[0].len() == 1)
            .count()
            == rank
        && axes
            .iter_all_axes()
            .filter(|a| a.outputs[0].len() == 1)
            .count()
            == out_rank
}

/// The constant bias added to `node`'s output by its only successor, an `Add` of a `[C_out,
/// 1, 1]` constant (as tract's declutter wires a 1×1 conv's bias; `[1, 1, C_out]` for a
/// channels-last output), and that `Add`'s node.
fn bias_after(
    model: &TypedModel,
    node: &TypedNode,
    c_out: usize,
    out_last: bool,
) -> TractResult<Option<(Arc<[f32]>, usize)>> {
    let [succ] = node.outputs[0].successors.as_slice() else {
        return Ok(None);
    };
    if model.outputs.contains(&OutletId::new(node.id, 0)) {
        return Ok(None);
    }
    let add = model.node(succ.node);
    let is_add = add.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>());
    if !is_add || add.inputs.len() != 2 {
        return Ok(None);
    }
    let other = add.inputs[1 - succ.slot];
    let fact = model.outlet_fact(other)?;
    let Some(b) = &fact.konst else {
        return Ok(None);
    };
    let own = model.outlet_fact(OutletId::new(node.id, 0))?;
    // `[C_out, 1, 1]` (`[1, 1, C_out]` channels-last), behind a batch axis of 1 where the
    // output keeps one (Lite0's head conv, `[1, 1280, 7, 7]`).
    let (batch, per_pixel) = b.shape().split_at(b.rank().saturating_sub(3));
    if b.datum_type() != f32::datum_type()
        || per_pixel
            != if out_last {
                [1, 1, c_out]
            } else {
                [c_out, 1, 1]
            }
        || batch.iter().any(|&d| d != 1)
        || model.outlet_fact(OutletId::new(add.id, 0))?.shape != own.shape
    {
        return Ok(None);
    }
    Ok(Some((
        b.try_as_plain_ram()?.as_slice::<f32>()?.into(),
        add.id,
    )))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::infer::depthwise::tests::values;
    use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_core::ops::nn::DataFormat;
    use tract_linalg::multithread::multithread_tract_scope;

    /// One 1×1 conv: `(C_in, C_out, h, w, batched input, bias)`.
    type Case = (usize, usize, usize, usize, bool, bool);

    /// A decluttered model of tract's 1×1 `Conv` of `case` (weights and input from `seed`), the
    /// input tensor, and the weights and bias.
    fn model(case: Case, seed: u32) -> (TypedModel, Tensor, Vec<f32>, Vec<f32>) {
        let (ci, co, h, w, batched, with_bias) = case;
        let shape = if batched {
            vec![1, ci, h, w]
        } else {
            vec![ci, h, w]
        };
        let weights = values(co * ci, seed);
        let bias = if with_bias {
            values(co, seed + 1)
        } else {
            vec![0.0; co]
        };
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(&shape)).unwrap();
        let k = tract_ndarray::ArrayD::from_shape_vec(vec![co, ci, 1, 1], weights.clone())
            .unwrap()
            .into_tensor();
        let k = model.add_const("k", k).unwrap();
        let b = model.add_const("b", tensor1(&bias)).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: if batched {
                    DataFormat::NCHW
                } else {
                    DataFormat::CHW
                },
                kernel_shape: tvec![1, 1],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: ci,
                output_channels: co,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let y = model.wire_node("pw", conv, &[x, k, b]).unwrap()[0];
        model.select_output_outlets(&[y]).unwrap();
        let input = tract_ndarray::ArrayD::from_shape_vec(shape, values(ci * h * w, seed + 2))
            .unwrap()
            .into_tensor();
        (model.into_decluttered().unwrap(), input, weights, bias)
    }

    /// Runs `model` optimized on `input`; returns its first output and the optimized model's
    /// op names (the op tests read which ops were placed).
    pub(in crate::infer) fn run_tensor(model: TypedModel, input: &Tensor) -> (Tensor, Vec<String>) {
        run_inputs(model, tvec!(input.clone().into()))
    }

    /// [`run_tensor`] for a model of several inputs.
    pub(in crate::infer) fn run_inputs(
        model: TypedModel,
        inputs: TVec<TValue>,
    ) -> (Tensor, Vec<String>) {
        let m = model.into_optimized().unwrap();
        let names = m
            .nodes()
            .iter()
            .map(|n| n.op().name().to_string())
            .collect();
        let out = m.into_runnable().unwrap().run(inputs).unwrap();
        (out[0].clone().into_tensor(), names)
    }

    /// Runs `f` under tract's executor on `threads` threads (1: its single-thread executor), as
    /// `edge --threads` sets it.
    pub(in crate::infer) fn on_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
        let executor = match threads {
            1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        multithread_tract_scope(executor, f)
    }

    /// [`run_tensor`]'s output as values.
    pub(in crate::infer) fn run(model: TypedModel, input: &Tensor) -> (Vec<f32>, Vec<String>) {
        let (out, names) = run_tensor(model, input);
        (f32s(&out), names)
    }

    /// A tensor's f32 values.
    pub(in crate::infer) fn f32s(t: &Tensor) -> Vec<f32> {
        t.try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    /// Asserts each of `got` within the rounding of an f32 sum of the bias and `terms` of the
    /// f64 sum: `(terms + 2)·ε·(|b| + Σ|t|)`.
    pub(in crate::infer) fn assert_within_sum_rounding(
        what: &str,
        got: [(&str, f32); 2],
        bias: f32,
        terms: &[f64],
    ) {
        let exact = bias as f64 + terms.iter().sum::<f64>();
        let size = bias.abs() as f64 + terms.iter().map(|t| t.abs()).sum::<f64>();
        let bound = (terms.len() + 2) as f64 * f32::EPSILON as f64 * size;
        for (who, v) in got {
            let err = (v as f64 - exact).abs();
            assert!(
                err <= bound,
                "{what}: {who} {v}, exact {exact}, off {err:e} > {bound:e}"
            );
        }
    }

    // Planes of one column tile and of several (C_out 96 on 900 pixels: tiles of 682 columns,
    // the last one partial; C_out 1000, more rows than a cache-sized tile's 65 columns: one tile
    // per thread, 501 + 500 columns on two), single pixels' worth of channels (C_in 3) and many
    // (C_in 200), with and without the batch axis and the bias.
    const CASES: [Case; 5] = [
        (16, 96, 30, 30, false, true),
        (32, 16, 9, 11, true, true),
        (3, 1000, 13, 77, false, true),
        (200, 24, 12, 12, false, false),
        (7, 40, 8, 8, true, true),
    ];

    /// Each output is the product in f64 within the rounding of an f32 sum of `C_in + 1`
    /// terms, `(C_in + 2)·ε·(|b| + Σ|w·x|)`; so are tract's own outputs (a bias left out, or
    /// the weights read transposed, is off by far more). Checked on one thread and on two.
    #[test]
    fn equals_the_product_within_the_rounding_of_its_sum() {
        for (i, case) in CASES.into_iter().enumerate() {
            let (ci, co, h, w, ..) = case;
            let hw = h * w;
            let (decluttered, input, weights, bias) = model(case, 10 * i as u32);
            let x = input.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
            for threads in [1, 2] {
                let what = format!("{case:?}, {threads} threads");
                let mut patched = decluttered.clone();
                assert_eq!(replace(&mut patched).unwrap(), 1, "{what}");
                let ((tract, _), (ours, names)) = on_threads(threads, || {
                    (run(decluttered.clone(), &input), run(patched, &input))
                });
                assert!(
                    names.iter().any(|n| n == "FoveaPointwise"),
                    "{what}: {names:?}"
                );
                assert!(!names.iter().any(|n| n == "OptMatMul"), "{what}: {names:?}");
                assert_eq!(ours.len(), co * hw, "{what}");
                for o in 0..co {
                    for j in 0..hw {
                        let terms: Vec<f64> = (0..ci)
                            .map(|c| weights[o * ci + c] as f64 * x[c * hw + j] as f64)
                            .collect();
                        let at = o * hw + j;
                        let got = [("fovea", ours[at]), ("tract", tract[at])];
                        assert_within_sum_rounding(
                            &format!("{what}: y[{o}, {j}]"),
                            got,
                            bias[o],
                            &terms,
                        );
                    }
                }
            }
        }
    }

    /// Convs with more output channels than pixels on planes under 14×14 (B0's 7×7 stage: gemm
    /// repacks the larger weight matrix on every call and lost to tract there) stay tract's,
    /// unless their product runs on the channel lanes into planes (`C_out` a multiple of the
    /// lanes of this CPU's AVX-512 or AVX2); from 196 pixels on (B0's 14×14 expansions) they
    /// are taken, on the lanes at 196 pixels on AVX-512, on gemm from 197 on. An op on the lanes
    /// holds its weights arranged alone, not row-major beside them (`Kernel::Lanes` quotes what
    /// that cost B0's peak RSS); one on gemm, row-major.
    #[test]
    fn convs_with_more_channels_than_pixels_stay_tracts_on_small_planes() {
        let rows_held = |m: &TypedModel| -> Vec<bool> {
            let ops = m.nodes().iter().filter_map(|n| n.op_as::<Pointwise>());
            ops.map(|op| op.rows().is_some()).collect()
        };
        let lanes = |c_out: usize| {
            #[cfg(target_arch = "x86_64")]
            return super::super::channel_lanes::expected(c_out);
            #[cfg(not(target_arch = "x86_64"))]
            return {
                let _ = c_out;
                false
            };
        };
        for (case, what) in [
            ((8, 60, 7, 7, false, true), "60 channels on 49 pixels"),
            ((8, 64, 7, 7, false, true), "64 channels on 49 pixels"),
            ((8, 200, 13, 15, false, true), "200 channels on 195 pixels"),
            (
                (8, 1280, 7, 7, true, true),
                "1280 channels on 49 pixels, batched",
            ),
        ] {
            let (mut m, ..) = model(case, 1);
            let taken = usize::from(lanes(case.1));
            assert_eq!(replace(&mut m).unwrap(), taken, "{what}");
            assert_eq!(rows_held(&m), vec![false; taken], "{what}");
        }
        assert!(!lanes(60), "60 channels are no multiple of 8");
        let (mut m, ..) = model((8, 49, 7, 7, false, true), 1);
        assert_eq!(replace(&mut m).unwrap(), 1, "C_out = H·W is taken");
        assert_eq!(rows_held(&m), [true], "49 channels run on gemm");
        // 196 pixels: on the lanes on AVX-512 (400 channels are 25 vectors of 16), else gemm.
        let (mut m, ..) = model((8, 400, 14, 14, false, true), 1);
        assert_eq!(replace(&mut m).unwrap(), 1, "196 pixels");
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        assert_eq!(
            rows_held(&m),
            [!avx512],
            "planes of 196 pixels, AVX-512: {avx512}"
        );
        let (mut m, ..) = model((8, 400, 15, 14, false, true), 1);
        assert_eq!(replace(&mut m).unwrap(), 1, "210 pixels");
        assert_eq!(rows_held(&m), [true], "planes of 210 pixels run on gemm");
    }

    /// A product's input for the bit-for-bit tests, `[c_in, hw]`: scaled so that ReLU6 clamps
    /// at both ends.
    #[cfg(target_arch = "x86_64")] // the lanes' tests alone
    fn inputs(c_in: usize, hw: usize) -> Vec<f32> {
        values(c_in * hw, 2).iter().map(|v| 8.0 * v).collect()
    }

    /// Each output by hand, as bits: the sum over the input channels in order from zero, one
    /// fused multiply-add each (`f32::mul_add`), then the bias, then the clamp; channels-last
    /// where `out_last`, else planes.
    #[cfg(target_arch = "x86_64")] // the lanes' tests alone
    fn in_order_sums(
        w: &[f32],
        x: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        Dims { c_in, c_out, hw }: Dims,
        out_last: bool,
    ) -> Vec<u32> {
        let mut want = vec![0u32; c_out * hw];
        for o in 0..c_out {
            for j in 0..hw {
                let mut sum = 0.0f32;
                for i in 0..c_in {
                    sum = w[o * c_in + i].mul_add(x[i * hw + j], sum);
                }
                let y = bias.map_or(sum, |b| sum + b[o]);
                let y = act.map_or(y, |a| a.of(y));
                want[if out_last { j * c_out + o } else { o * hw + j }] = y.to_bits();
            }
        }
        want
    }

    /// [`product`]'s output as bits, into a buffer of NaNs.
    #[cfg(target_arch = "x86_64")] // the lanes' tests alone
    fn run_product(
        x: &[f32],
        w: Operand,
        bias: Option<&[f32]>,
        act: Option<Activation>,
        d: Dims,
        out_last: bool,
        parallel: bool,
    ) -> Vec<u32> {
        let mut out = vec![MaybeUninit::new(f32::NAN); d.c_out * d.hw];
        product(x, w, bias, act, d, out_last, parallel, &mut out);
        // SAFETY: initialized (NaN), then written.
        out.iter()
            .map(|v| unsafe { v.assume_init() }.to_bits())
            .collect()
    }

    /// The product with the output channels in the vector lanes (`channel_lanes.rs`, where this
    /// CPU runs it), channels-last and into planes, equals each output's sum by hand bit for
    /// bit: over the input channels in order from zero, one fused multiply-add each, then the
    /// bias, then the clamp; and so does the row-major operand's product, on two pixels and
    /// more over up to 320 input channels (gemm's; into planes of 16, 32 and 40 channels on
    /// AVX-512 the pixel lanes', `pixel_lanes.rs`). Output channels 16 to 1280 (AVX-512: one
    /// to 27 groups of 48, the last partial for 16, 32 and 1280), 1 to 3137 pixels (blocks of
    /// up to 8 or 6, even in size), input channels 3 to 1152 (the large weights run group by
    /// group on the packed input), with and without bias and ReLU6, one thread and pools of
    /// two and three (column tiles; into planes of under 196 pixels with more output channels
    /// than input ones — 320 → 1280 and 40 → 96 on 49, and the small cases — runs of whole
    /// groups of output channels, `by_channel_runs`); channels-last, also in blocks of 16
    /// channels (`channel_lanes::laid_out`), each value at its place and nothing else written.
    /// AVX2 CPUs run it on 8 lanes (groups of 16 channels, so every case but 40 fills them
    /// and 40 ends in a group of one vector; 40 is AVX2's alone); where the CPU has neither no
    /// op gets the arranged weights (and the lanes are x86_64's alone).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_channel_lanes_product_sums_in_order_bit_for_bit() {
        // (C_in, C_out, pixels, bias, ReLU6)
        let cases = [
            (16, 96, 3137, true, true),
            (24, 144, 61, true, false),
            (40, 240, 784, false, true),
            (112, 672, 196, true, true),
            (7, 16, 2, true, true),
            (3, 32, 5, false, false),
            (9, 48, 1, true, false),
            (5, 40, 9, true, true),
            (1152, 192, 49, true, false),
            (320, 1280, 49, true, true),
            (40, 96, 49, false, true),
        ];
        for (c_in, c_out, hw, with_bias, relu6) in cases {
            let w = values(c_out * c_in, 1);
            let wt = arranged(&w, c_in, c_out);
            assert_eq!(
                wt.is_some(),
                super::super::channel_lanes::expected(c_out),
                "{c_out}"
            );
            let Some(wt) = wt else {
                eprintln!("{c_in}→{c_out}: this CPU has no channel lanes for {c_out}, skipped");
                continue;
            };
            let x = inputs(c_in, hw);
            let b = values(c_out, 3);
            let bias = with_bias.then_some(&b[..]);
            let act = relu6.then_some(Activation::Relu6);
            let d = Dims { c_in, c_out, hw };
            for out_last in [true, false] {
                let run = |w: Operand, parallel: bool| {
                    run_product(&x, w, bias, act, d, out_last, parallel)
                };
                let want = in_order_sums(&w, &x, bias, act, d, out_last);
                let what = format!("{c_in}→{c_out} on {hw}, channels last: {out_last}");
                let rows = run(Operand::Rows(&w), false);
                // gemm sums so too on two pixels and more over a sum short enough that it does
                // not split it into blocks (1152 terms it does, and adds the blocks' sums); on
                // one pixel it runs a matrix-vector path that sums in another order. (Into few
                // planes on AVX-512 the row-major weights run on the pixel lanes instead.)
                if hw > 1 && c_in <= 320 {
                    assert_eq!(rows, want, "{what}: row-major (gemm or pixel lanes)");
                }
                let lanes = Operand::Lanes(Weights {
                    wt: &wt,
                    gate: None,
                });
                assert_eq!(run(lanes, false), want, "{what}");
                for threads in [2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let pooled = pool.install(|| run(lanes, true));
                    assert_eq!(pooled, want, "{what}, {threads} threads");
                }
                if out_last {
                    // In blocks of 16 channels (the fused expansion's band,
                    // `expand_depthwise`), 16 values more than the pixels' apart: each value at
                    // its place, and nothing written elsewhere (NaN stays).
                    let block = 16 * hw + 16;
                    let mut out = vec![f32::NAN; crate::channel_blocks::count(c_out) * block];
                    let wt = Weights {
                        wt: &wt,
                        gate: None,
                    };
                    // SAFETY: `out` holds every block's `hw` pixels; one thread.
                    unsafe {
                        let out = (out.as_mut_ptr(), Layout::Blocked(block), hw);
                        super::super::channel_lanes::laid_out(&x, hw, wt, c_out, bias, act, out)
                    };
                    let placed: Vec<u32> = (0..hw * c_out)
                        .map(|i| {
                            let (p, o) = (i / c_out, i % c_out);
                            out[crate::channel_blocks::at(o, block) + p * 16].to_bits()
                        })
                        .collect();
                    assert_eq!(placed, want, "{what}, in blocks of 16");
                    let written = out.iter().filter(|v| !v.is_nan()).count();
                    assert_eq!(
                        written,
                        hw * c_out,
                        "{what}, in blocks of 16: values written"
                    );
                }
            }
        }
    }

    /// Into planes, few output channels on large planes run with the pixels in the vector lanes
    /// on AVX-512 (`pixel_lanes.rs`: multiples of 8 up to 40) and equal each output's sum by
    /// hand bit for bit: over the input channels in order from zero, one fused multiply-add
    /// each, then the bias, then the clamp. Passes of 16 and 8 channels (8, 16, 24, 40),
    /// pixels a multiple of the 16 lanes and not (the last vector masked; 5 pixels masked
    /// alone), 1 to 1152 input channels, with and without bias and ReLU6, one thread and a
    /// pool of two (column tiles). Elsewhere (AVX2, 48 channels) the rows run on gemm, which
    /// sums so too over up to 320 input channels: the same assertion.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_pixel_lanes_product_sums_in_order_bit_for_bit() {
        // (C_in, C_out, pixels, bias, ReLU6)
        let cases = [
            (32, 16, 12544, true, false),
            (96, 24, 3136, true, true),
            (144, 40, 784, false, false),
            (240, 40, 197, true, true),
            (3, 8, 5, true, true),
            (1, 16, 33, false, true),
            (1152, 16, 20, true, false),
            (64, 48, 100, true, false),
        ];
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        for (c_in, c_out, hw, with_bias, relu6) in cases {
            let lanes = avx512 && c_out % 8 == 0 && c_out <= 40;
            assert_eq!(super::super::pixel_lanes::covers(c_out), lanes, "{c_out}");
            if !lanes && c_in > 320 {
                eprintln!("{c_in}→{c_out}: on gemm here, which splits this sum; skipped");
                continue;
            }
            let w = values(c_out * c_in, 1);
            let x = inputs(c_in, hw);
            let b = values(c_out, 3);
            let bias = with_bias.then_some(&b[..]);
            let act = relu6.then_some(Activation::Relu6);
            let d = Dims { c_in, c_out, hw };
            let want = in_order_sums(&w, &x, bias, act, d, false);
            let rows = Operand::Rows(&w);
            let run = |parallel| run_product(&x, rows, bias, act, d, false, parallel);
            let what = format!("{c_in}→{c_out} on {hw}, pixel lanes: {lanes}");
            assert_eq!(run(false), want, "{what}");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            assert_eq!(pool.install(|| run(true)), want, "{what}, two threads");
        }
    }

    /// The bias `Add` is folded into the op: none is left in the patched model, and the
    /// output is the model's output; so where the output keeps its batch axis and the bias is
    /// `[1, C_out, 1, 1]` (a head conv before the pooling: it stayed a separate pass of tract's
    /// on Lite0's head, 316 µs, `node_profile`).
    #[test]
    fn the_bias_add_is_folded() {
        for (case, seed) in [
            ((16, 96, 30, 30, false, true), 3),
            ((16, 96, 30, 30, true, true), 4),
        ] {
            let (mut m, ..) = model(case, seed);
            let adds = |m: &TypedModel| m.nodes().iter().filter(|n| n.op().name() == "Add").count();
            assert_eq!(adds(&m), 1, "{case:?}");
            replace(&mut m).unwrap();
            let m = m.into_decluttered().unwrap();
            assert_eq!(adds(&m), 0, "{case:?}");
            assert_eq!(m.node(m.outputs[0].node).op().name(), "FoveaPointwise");
        }
    }
}
