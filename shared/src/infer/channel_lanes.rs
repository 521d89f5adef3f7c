//! The 1×1 product with the output channels in the vector lanes (AVX-512's 16 or AVX2's 8,
//! `crate::vector`), into channels-last pixels or into planes: what fovea's 1×1 op runs an
//! expansion on whose output `ChangeAxes` turned channels-last for the depthwise conv after it
//! (`pointwise.rs`, `out_last`), fused with that conv or not ([`super::expand_depthwise`]), and
//! every 1×1 conv on planes under 14×14 (`pointwise::PLANES_ON_LANES_BELOW`: the 7×7 stage's
//! projections and head conv, squeeze-excitation's gate on the input included) and, on
//! AVX-512, on 14×14 (the 14×14 projections), where the output channels are a multiple of the
//! lanes.
//!
//! Why: gemm ran those products at about 70 % of this CPU's FMA peak (it packs both operands
//! on every call) and their outputs then took a second pass for the bias and ReLU6. Here a
//! block of pixels keeps a group of output channels each in registers across the input
//! channels (AVX-512: 8 pixels × 48 channels, 24 of its 32 registers; AVX2: 6 pixels × 16
//! channels, 12 of its 16): per input channel, one row of the group's weights (arranged group
//! by group once, at load: [`arrange`]) and one broadcast input per pixel; the bias and ReLU6
//! are applied in registers before the single store, already channels-last. `node_profile`,
//! Lite0 at 224 px, one thread, AVX-512 (then 4 pixels × 96 channels): 24 → 144 on 56²
//! 253–264 → 199–203 µs, the 28² and 14² expansions 160–180 → 140–152 and 316–324 → 281–285;
//! AVX2: 112 → 672 on 14² 375–393 → 342–383, block 1's fused expansion and depthwise conv
//! 1288 → 823–934. On 7×7 planes tract kept the products (gemm packs the weights on every call
//! there) and packed their input on every call, 40 µs of the 1152 → 192 projections' 340 on
//! one thread, and that packing ran on one thread of two; here: 323–331 µs with the planes
//! written from each block's tile (AVX2, docs/PERFORMANCE.md).
//!
//! The values are gemm's: each output's sum runs over the input channels in order, one fused
//! multiply-add each from zero, then the bias is added and the clamp applied, as
//! `pointwise::tile_product` does (tested bit for bit against it and against that sum by hand;
//! on a single pixel gemm's matrix-vector path sums in another order, and over 1152 input
//! channels gemm splits the sum into blocks: both within the sum's rounding). A gate scales the
//! input first, rounded, as tract's `Mul` before its product.
use std::ops::Range;

use super::activation::Activation;
use super::pointwise::Weights;
use crate::channel_blocks::{self, BLOCK};
use crate::vector::{Avx2, Avx512, Task, Vector, run_widest, widest_lanes};

/// Whether this CPU runs a product into `c_out` channels here: AVX-512 or AVX2, and `c_out` a
/// multiple of the vector's lanes.
pub(super) fn covers(c_out: usize) -> bool {
    widest_lanes().is_some_and(|l| c_out > 0 && c_out.is_multiple_of(l))
}

/// Vectors of output channels per register block: 3 with 32 registers (AVX-512: 48 channels),
/// 2 with 16 (AVX2: 16 channels).
fn group_vectors<V: Vector>() -> usize {
    if V::REGISTERS >= 32 { 3 } else { 2 }
}

/// Pixels per register block: 8 with 32 registers (AVX-512: 24 sums), 6 with 16 (AVX2: 12
/// sums), the rest for a row of weights and the broadcast input. AVX2 with 3 vectors × 4
/// pixels (the same 12 sums) compiled to a loop that moved its sums between registers every
/// step and spilled one: 112 → 672 on 14×14 took 705 µs against gemm's 378 (`node_profile`,
/// Lite0, one thread); gemm's own AVX2 kernel is 2 vectors × 6 columns too. AVX-512 ran 4
/// pixels × 6 vectors until 8 × 3 (the same 24 sums; each weight read from L2 serves twice the
/// pixels) measured faster on every 7×7 conv, AMD EPYC with AVX-512, `pointwise_layers`,
/// minimum of 60, two rounds alternated: 672 → 192 145–154 → 136–138 µs, 192 → 1152 224–243 →
/// 219–220, 1152 → 192 242–243 → 222, 1152 → 320 368–369 → 349, 320 → 1280 390–391 → 384–385
/// (tract's own 132–147, 226–248, 219–221, 350–351, 397–398); 6 pixels × 4 vectors gained less
/// in a run of its own (1152 → 192 232 µs where 8 × 3 took 223).
fn block_pixels<V: Vector>() -> usize {
    if V::REGISTERS >= 32 { 8 } else { 6 }
}

/// The blocks a product's `cols` pixels split into: as few as blocks of at most `step` pixels
/// ([`block_pixels`]) allow, their sizes differing by one at most, the larger ones first — 49
/// pixels on AVX2 in 4 blocks of 6 and 5 of 5, not 8 of 6 and one alone, which ran its input
/// channels on two sums (one per vector of channels) and so at the fused multiply-add's
/// latency rather than its throughput. The 7×7 convs so (`edge/examples/pointwise_layers.rs`,
/// minimum of 60, three rounds alternated, AVX2): 672 → 192 160 → 154 µs, 192 → 1152 256–257 →
/// 243, 1152 → 192 269–270 → 260–261, 1152 → 320 422–423 → 404–407, 320 → 1280 454–455 →
/// 431–433.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Blocks {
    count: usize,
    /// The smaller blocks' size.
    size: usize,
    /// How many blocks have `size + 1` pixels.
    larger: usize,
}

impl Blocks {
    fn new(cols: usize, step: usize) -> Self {
        let count = cols.div_ceil(step);
        let size = cols.checked_div(count).unwrap_or(0);
        Blocks {
            count,
            size,
            larger: cols - size * count,
        }
    }

    /// Block `b`'s first pixel and its pixels.
    fn at(&self, b: usize) -> (usize, usize) {
        let p0 = b * self.size + b.min(self.larger);
        (p0, self.size + usize::from(b < self.larger))
    }
}

/// The weight matrices (values) from which [`pixels`] runs group by group over every pixel rather
/// than pixel block by block over every group: 64 Ki (256 KiB) on AVX2, and on AVX-512
/// ([`weights_by_group`]) 128 Ki (512 KiB, half its L2). B0's and Lite0's 7×7 expansions
/// (192 → 1152, 884 KiB of weights, 49 pixels) took 263–285 µs pixel block by pixel block, that is
/// 13 reads of their weights from L3 (blocks of 4 pixels then), and 242–248 group by group (tract:
/// 270–295 plus 7 for its packing), `node_profile`, Lite0, one thread, AVX-512; 112 → 672 on 14×14
/// alike either way (270–298 µs), the smaller ones unmeasured the other way. Group by group, the
/// input is packed block by block of pixels first ([`pack`]): each group read it as rows 196 bytes
/// apart (a 7×7 plane), from L2; packed, the 7×7 expansions took 280–299 µs against 338–362
/// (`node_profile`, Lite0, one thread, AVX2, alternated).
const WEIGHTS_BY_GROUP: usize = 64 * 1024;

/// [`WEIGHTS_BY_GROUP`] for `V`: twice as many with blocks of 8 pixels (AVX-512,
/// [`block_pixels`]), whose weight rows each serve 8 pixels. There, Lite0's products with 64–128
/// Ki weights ran faster pixel block by block over every group (`node_profile`, two rounds
/// alternated, one thread then two, 64 → 128 Ki): the 14×14 expansions 112 → 672 (73.5 Ki,
/// channels-last) 285–295 → 272–277 µs and 147–157 → 140–148, 672 → 192 on 7×7 (126 Ki, into
/// planes) 151–154 → 139–141 and 78–82 → 79; on 14×14 planes, 672 → 112 (73.5 Ki) 326–328 µs
/// group by group and 263 not (`pointwise_layers`, minimum of 60). Group by group still: the
/// 7×7 stage's 192 → 1152, 1152 → 192, 1152 → 320, 320 → 1280.
fn weights_by_group<V: Vector>() -> usize {
    if block_pixels::<V>() >= 8 {
        2 * WEIGHTS_BY_GROUP
    } else {
        WEIGHTS_BY_GROUP
    }
}

/// `out[p·c_out + o] = act(Σ_i w[o, i]·x[i·x_stride + p] + b[o])` for the `cols` pixels `p`
/// of `out` (`out.len() / c_out`), on the calling thread. `weights.wt` is the weight matrix
/// `w` as [`arrange`] lays it out; `weights.gate`, if any, scales `x`'s rows first. Blocks of
/// pixels ([`block_pixels`]) by groups of output channels (the last group one vector to a whole
/// group), pixel block by pixel block or, for large weights, group by group.
///
/// # Panics
/// If [`covers`] does not hold for `c_out`, or a slice's length does not match.
pub(super) fn pixels(
    x: &[f32],
    x_stride: usize,
    weights: Weights,
    c_out: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    out: &mut [f32],
) {
    let cols = out.len() / c_out.max(1);
    assert!(out.len() == cols * c_out, "channel lanes: output length");
    let operands = Operands::new((x, x_stride), weights, c_out, (bias, act), Layout::Last);
    // SAFETY: `out` holds the cols·c_out values written (asserted) and is borrowed mutably.
    unsafe { run(operands, out.as_mut_ptr(), cols) }
}

/// [`pixels`] into planes or blocks of channels through a raw output, as `layout` says:
/// [`Layout::Planes`] `out[o·plane + p] = act(Σ_i w[o, i]·x[i·x_stride + p] + b[o])` for pixels
/// `p < cols`, a 1×1 conv whose output is `[C_out, H, W]` (each block's sums go out through a
/// tile of the block, value by value; the input channels' loop is long where this runs, 7×7 and
/// 14×14 planes); [`Layout::Blocked`] `out[(o / 16)·block + p·16 + o % 16]`, each block of 16
/// channels' pixels one run of 16 values a pixel, the blocks `block` values apart (`⌈c_out /
/// 16⌉` blocks, the last partial where 16 does not divide `c_out`, its unused lanes not
/// written): fovea's expansion and depthwise conv in one op expands its band so
/// (`super::expand_depthwise`).
///
/// # Safety
/// `out` valid for writes at those places (`o < c_out`, `p < cols`) that no other thread
/// touches meanwhile.
///
/// # Panics
/// As [`pixels`]; if `cols > plane` or `16·cols > block`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn laid_out(
    x: &[f32],
    x_stride: usize,
    weights: Weights,
    c_out: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    (out, layout, cols): (*mut f32, Layout, usize),
) {
    let fits = match layout {
        Layout::Last => true,
        Layout::Planes(plane) => cols <= plane,
        Layout::Blocked(block) => BLOCK * cols <= block,
    };
    assert!(fits, "channel lanes: {cols} pixels into {layout:?}");
    let operands = Operands::new((x, x_stride), weights, c_out, (bias, act), layout);
    // SAFETY: the caller's.
    unsafe { run(operands, out, cols) }
}

/// [`pixels`] or [`laid_out`]: `cols` pixels into `out` as `operands.layout` says.
///
/// # Safety
/// `out` valid for those writes, which no other thread touches meanwhile.
unsafe fn run(operands: Operands, out: *mut f32, cols: usize) {
    let c_out = operands.c_out;
    assert!(covers(c_out), "channel lanes: {c_out} output channels");
    let (x, x_stride, wt) = (operands.x, operands.x_stride, operands.wt);
    let c_in = wt.len() / c_out;
    assert!(
        wt.len() == c_in * c_out
            && operands.bias.is_none_or(|b| b.len() == c_out)
            && operands.gate.is_none_or(|g| g.len() == c_in)
            && (cols == 0 || (c_in > 0 && x.len() >= (c_in - 1) * x_stride + cols)),
        "channel lanes: sizes"
    );
    let product = Product {
        operands,
        out,
        cols,
    };
    // SAFETY: the vector is available (`covers`, checked first); the lengths are checked
    // above, `out` is the caller's.
    unsafe { run_widest(product) }
}

/// Where the product writes output channel `o` of pixel `p`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// `out[p·c_out + o]`: channels-last pixels.
    Last,
    /// `out[o·plane + p]`: planes `plane` values apart.
    Planes(usize),
    /// `out[(o / 16)·block + p·16 + o % 16]`: blocks of 16 channels, `block` values apart
    /// (`crate::channel_blocks`).
    Blocked(usize),
}

/// Where a block of output channels `o0 ..` goes, outside planes: pixel `p` of its `v`-th
/// vector at `p·step + at[v]`.
#[inline(always)]
fn places<V: Vector, const N: usize>(
    layout: Layout,
    c_out: usize,
    o0: usize,
) -> (usize, [usize; N]) {
    match layout {
        Layout::Blocked(block) => (
            BLOCK,
            std::array::from_fn(|v| channel_blocks::at(o0 + V::LANES * v, block)),
        ),
        Layout::Last | Layout::Planes(_) => (c_out, std::array::from_fn(|v| o0 + V::LANES * v)),
    }
}

impl<'a> Operands<'a> {
    /// The operands of [`pixels`] or [`laid_out`], unpacked.
    fn new(
        (x, x_stride): (&'a [f32], usize),
        Weights { wt, gate }: Weights<'a>,
        c_out: usize,
        (bias, act): (Option<&'a [f32]>, Option<Activation>),
        layout: Layout,
    ) -> Self {
        Operands {
            x,
            x_stride,
            wt,
            c_out,
            bias,
            relu6: match act {
                Some(Activation::Relu6) => true,
                None => false,
            },
            layout,
            gate,
            packed: false,
        }
    }
}

/// [`run`]'s checked arguments, run with a vector's target features: `cols` pixels into
/// `out`.
struct Product<'a> {
    operands: Operands<'a>,
    out: *mut f32,
    cols: usize,
}

/// The product's operands (as [`pixels`] takes them; `relu6` for its `act`) and the output's
/// layout.
#[derive(Clone, Copy)]
struct Operands<'a> {
    x: &'a [f32],
    x_stride: usize,
    wt: &'a [f32],
    c_out: usize,
    bias: Option<&'a [f32]>,
    relu6: bool,
    layout: Layout,
    /// `[C_in]`: scales input channel `i` by `gate[i]` (squeeze-excitation's gate) as the input
    /// is packed, before the product (`x·g` rounded, then the sums, as tract's `Mul` before its
    /// product).
    gate: Option<&'a [f32]>,
    /// Whether `x` is packed by blocks of [`block_pixels`] ([`pack`]) rather than `[c_in,
    /// x_stride]`.
    packed: bool,
}

impl Task for Product<'_> {
    type Output = ();

    /// # Safety
    /// `V` runs; `c_out` a multiple of its lanes and the lengths [`run`] checks.
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY: the caller's.
        unsafe {
            match self.operands.layout {
                Layout::Last | Layout::Blocked(_) => self.spans::<V, false>(),
                Layout::Planes(_) => self.spans::<V, true>(),
            }
        }
    }
}

impl Product<'_> {
    /// The product in spans of pixels by groups of channels, stored channels-last or into
    /// planes (`PLANES`, a constant so that the blocks' loops compile apart: with the layout
    /// matched in the loop Lite0's 7×7 expansions took twice as long, `node_profile`).
    ///
    /// # Safety
    /// As [`Task::run`]'s; `PLANES` as the layout.
    #[inline(always)]
    unsafe fn spans<V: Vector, const PLANES: bool>(self) {
        let Product {
            operands,
            out,
            cols,
        } = self;
        let c_out = operands.c_out;
        let c_in = operands.wt.len() / c_out;
        let by_group = c_in * c_out >= weights_by_group::<V>();
        let blocks = Blocks::new(cols, block_pixels::<V>());
        if !by_group && operands.gate.is_none() {
            // SAFETY: the caller's.
            unsafe { blocks_by_pixels::<V, PLANES>(operands, out, blocks) };
            return;
        }
        // Packed block by block of pixels (and gated) where groups run over every pixel or a
        // gate scales the input. (The buffer is taken out of the thread's cell, not used inside
        // `with`'s closure: a closure does not inherit the target features, and the blocks
        // compiled in it ran 50 times slower.)
        let mut buf = PACKED.take();
        pack::<V>(&operands, c_in, blocks, &mut buf);
        let packed = Operands {
            x: &buf,
            gate: None,
            packed: true,
            ..operands
        };
        // SAFETY: the caller's; every span lies inside `cols` and `c_out`.
        unsafe {
            if by_group {
                // Each group of output channels over every pixel: the weights read once, the
                // next group's prefetched meanwhile ([`Ahead`]).
                let mut all = groups::<V>(c_out).peekable();
                while let Some((o0, v)) = all.next() {
                    let next = all
                        .peek()
                        .map(|&(o1, v1)| &packed.wt[o1 * c_in..][..v1 * V::LANES * c_in]);
                    span::<V, PLANES>(v, packed, out, (o0, blocks, 0..blocks.count), next);
                }
            } else {
                blocks_by_pixels::<V, PLANES>(packed, out, blocks);
            }
        }
        PACKED.set(buf);
    }
}

/// Each block of pixels (`blocks`, of the product's pixels) over every group of output
/// channels: its inputs read once.
///
/// # Safety
/// As [`Product::spans`]'.
#[inline(always)]
unsafe fn blocks_by_pixels<V: Vector, const PLANES: bool>(
    args: Operands,
    out: *mut f32,
    blocks: Blocks,
) {
    // SAFETY: the caller's; every span lies inside `cols` and `c_out`.
    unsafe {
        for b in 0..blocks.count {
            for (o0, v) in groups::<V>(args.c_out) {
                span::<V, PLANES>(v, args, out, (o0, blocks, b..b + 1), None);
            }
        }
    }
}

/// Rows [`pack`] takes at a time: their pixels stay in L1 while it writes each block's share.
/// Lite0's 1152 → 192 on 7×7 (`pointwise_layers`, minimum of 100, two rounds): 201 µs packing
/// block by block over every row, 207 row by row over every block, 198 with 8, 16 or 32 rows
/// at a time.
const PACK_ROWS: usize = 16;

thread_local! {
    /// The input packed by [`pack`], kept between calls by each thread that runs them.
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The input's pixels of its `c_in` rows (`x_stride` apart) into `buf`, each row scaled by
/// the gate's value where there is a gate, block by block (`blocks`, of at most `step` =
/// [`block_pixels`] pixels): pixel `k` of block `b` in row `i` at `(b·c_in + i)·step + k`, so
/// that a block reads its inputs front to back. A smaller block's missing pixels hold whatever
/// follows it in the row (the block never reads them): each row's `step` values are copied
/// whole where the input holds them, as one vector rather than a copy of the block's size.
/// [`PACK_ROWS`] rows at a time, block by block.
fn pack<V: Vector>(args: &Operands, c_in: usize, blocks: Blocks, buf: &mut Vec<f32>) {
    let step = block_pixels::<V>(); // a constant: the whole rows copy as fixed-size moves
    let len = blocks.count * c_in * step;
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let x = args.x;
    for i0 in (0..c_in).step_by(PACK_ROWS) {
        for b in 0..blocks.count {
            let (p0, size) = blocks.at(b);
            let dst = &mut buf[(b * c_in + i0) * step..][..(c_in - i0).min(PACK_ROWS) * step];
            for (i, dst) in (i0..).zip(dst.chunks_exact_mut(step)) {
                let at = i * args.x_stride + p0;
                match (args.gate, x.get(at..at + step)) {
                    (None, Some(src)) => dst.copy_from_slice(src),
                    (Some(g), Some(src)) => {
                        dst.iter_mut().zip(src).for_each(|(d, v)| *d = v * g[i])
                    }
                    (gate, None) => {
                        // The input's last row: the block's own pixels (× 1 without a gate,
                        // exact).
                        let src = &x[at..at + size];
                        let g = gate.map_or(1.0, |g| g[i]);
                        dst.iter_mut().zip(src).for_each(|(d, v)| *d = v * g);
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
    let group = group_width();
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

/// `c_out`'s output channels as up to `parts` runs of whole groups ([`group_width`]), each
/// boundary the group boundary nearest its even share; the runs are disjoint, in order, and
/// together cover `0 .. c_out`. The arranged weights ([`arrange`]) of a run are the slice
/// `start·c_in .. end·c_in`, laid out as a product of the run's channels alone lays them out
/// (its groups are the whole product's), so a run is a product of its own (`pointwise.rs`
/// splits the head conv's output channels so over the threads).
pub(super) fn group_runs(c_out: usize, parts: usize) -> Vec<Range<usize>> {
    let group = group_width();
    let groups = c_out.div_ceil(group);
    let mut runs = Vec::new();
    let mut o0 = 0;
    for k in 1..=parts.max(1) {
        let o1 = if k == parts.max(1) {
            c_out
        } else {
            let nearest = (c_out * k / parts + group / 2) / group;
            (nearest.min(groups) * group).clamp(o0, c_out)
        };
        if o1 > o0 {
            runs.push(o0..o1);
        }
        o0 = o1;
    }
    runs
}

/// The output channels of a whole group on the vector this CPU runs ([`group_vectors`] ×
/// lanes): 48 on AVX-512, 16 on AVX2.
fn group_width() -> usize {
    if Avx512::available() {
        group_vectors::<Avx512>() * Avx512::LANES
    } else {
        group_vectors::<Avx2>() * Avx2::LANES
    }
}

/// `wt` ([`arrange`]'s `[c_out, c_in]` weights) with input channel `i`'s weights scaled by
/// `gate[i]`, into `out`: the arranged `W·diag(g)`, for a gate that scales the weights rather
/// than the input (`pointwise.rs`, where the weights are fewer than the input's values).
///
/// # Panics
/// If `wt` is not `gate.len() · c_out` values.
pub(super) fn scale_inputs(wt: &[f32], gate: &[f32], c_out: usize, out: &mut Vec<f32>) {
    let c_in = gate.len();
    assert_eq!(wt.len(), c_in * c_out, "channel lanes: weights to scale");
    out.clear();
    out.reserve(wt.len());
    let group = group_width();
    for o0 in (0..c_out).step_by(group) {
        let g = group.min(c_out - o0);
        for (row, &s) in wt[o0 * c_in..][..g * c_in].chunks_exact(g).zip(gate) {
            out.extend(row.iter().map(|w| w * s));
        }
    }
}

/// The groups of output channels, `(first, vectors)`: [`group_vectors`] each, the last one to
/// as many.
fn groups<V: Vector>(c_out: usize) -> impl Iterator<Item = (usize, usize)> {
    let group = group_vectors::<V>() * V::LANES;
    (0..c_out)
        .step_by(group)
        .map(move |o0| (o0, (c_out - o0).min(group) / V::LANES))
}

/// Output channels `o0 .. o0 + LANES·v` (`v` of 1 to [`group_vectors`]) of the pixels of
/// `blocks`' blocks `range`, prefetching `next` (the next group's weights, if any: [`Ahead`]).
///
/// # Safety
/// `V` runs; `blocks` splits `cols` pixels, `range` lies in its blocks, `o0 + LANES·v ≤ c_out`
/// and the lengths [`pixels`] checks.
#[inline(always)]
unsafe fn span<V: Vector, const PLANES: bool>(
    v: usize,
    args: Operands,
    out: *mut f32,
    (o0, blocks, range): (usize, Blocks, Range<usize>),
    next: Option<&[f32]>,
) {
    let at = (o0, blocks, range);
    // SAFETY (each arm): the caller's. A group has at most `group_vectors` vectors: the arm of
    // 3 runs on AVX-512 alone.
    unsafe {
        match v {
            3 if group_vectors::<V>() >= 3 => span_of::<V, 3, PLANES>(args, out, at, next),
            2 => span_of::<V, 2, PLANES>(args, out, at, next),
            _ => span_of::<V, 1, PLANES>(args, out, at, next),
        }
    }
}

/// [`span`] with `N` vectors, block by block ([`Blocks`]: no pixel left alone on its own sums;
/// the last block overlapping the one before instead was no faster, Lite0's 192 → 1152 on 49
/// pixels 340–356 → 354–383 µs on AVX2, two rounds).
///
/// # Safety
/// As [`span`]'s.
#[inline(always)]
unsafe fn span_of<V: Vector, const N: usize, const PLANES: bool>(
    args: Operands,
    out: *mut f32,
    (o0, blocks, range): (usize, Blocks, Range<usize>),
    next: Option<&[f32]>,
) {
    let wide = block_pixels::<V>() >= 8; // AVX-512's blocks, else 6 pixels (AVX2)
    let c_in = args.wt.len() / args.c_out;
    let first = range.start;
    // SAFETY (each arm): the caller's; block `b` lies in `cols` and has `size` pixels (at most
    // `block_pixels`, so the arms of 7 and 8 run on AVX-512 alone).
    unsafe {
        for b in range {
            let (p0, size) = blocks.at(b);
            let ahead = match next {
                Some(w) if b > first => Ahead::share(w, c_in, b - first - 1),
                _ => Ahead::NONE,
            };
            let at = (o0, p0, b, ahead);
            match size {
                8 if wide => block::<V, N, 8, PLANES>(args, out, at),
                7 if wide => block::<V, N, 7, PLANES>(args, out, at),
                6 => block::<V, N, 6, PLANES>(args, out, at),
                5 => block::<V, N, 5, PLANES>(args, out, at),
                4 => block::<V, N, 4, PLANES>(args, out, at),
                3 => block::<V, N, 3, PLANES>(args, out, at),
                2 => block::<V, N, 2, PLANES>(args, out, at),
                _ => block::<V, N, 1, PLANES>(args, out, at),
            }
        }
    }
}

/// What a block prefetches as it runs: the next group's weights, [`Ahead::VALUES`] a step of
/// the input channels (`step`) from `from`, a 64-byte line every [`Ahead::STEPS_A_LINE`]
/// steps; nothing where `step` is 0.
///
/// Why: group by group, a group's first block reads the group's weights from beyond L2 (an
/// inference passes every weight through the caches once) and the blocks after it from L2.
/// Lite0's 1152 → 192 in the model (`node_profile`, one thread, AVX-512, the second group's
/// blocks timed inside the op, eight runs): its first block 12.6–17.5 µs, the others 6.8–7.3
/// (the FMA peak's 6.7); with the next group's weights prefetched by the blocks after the first
/// (`prefetchnta`, a line every second step, two runs) 7.6–7.7 and 7.3–7.5. `prefetcht1` on
/// every step slowed the others to 7.5–8.3 µs, `prefetcht2` every second step to 8.1–8.4; the
/// first group's weights prefetched as [`pack`] ran doubled its time (14–16 → 33–34 µs) and
/// left that group as slow. Lite0's ten 7×7 1×1 convs summed 2578–2612 → 2374–2447 µs
/// (medians, three rounds alternated).
///
/// The hint is `prefetcht1` (into L2), not the `prefetchnta` measured above: on an Intel Xeon with
/// AVX-512 (2026-12-07) the products took two thirds as long again with `prefetchnta`. Lite0's ten
/// 7×7 1×1 convs summed 3838–3905 µs a one-thread inference with it and 2227–2409 with
/// `prefetcht0`, `t1` or `t2` (`node_profile`, runs of 100 alternated, two with `prefetchnta`, five
/// of each other; the three within the runs' spread), the whole inference 10.43–10.80 → 8.51–9.09
/// ms. On the AMD EPYC `prefetcht1` a line every second step was not timed (every step: above).
#[derive(Clone, Copy)]
struct Ahead {
    from: *const f32,
    step: usize,
}

impl Ahead {
    /// Values of the next group's weights a block prefetches per input channel: 8, so that a
    /// group of 48 channels (AVX-512) takes the six blocks after the first of a 7×7 plane, and
    /// one of 16 (AVX2) two.
    const VALUES: usize = 8;
    /// Steps per 64-byte line of [`Self::VALUES`] f32 each: a prefetch on every second step.
    const STEPS_A_LINE: usize = 64 / (4 * Self::VALUES);
    const NONE: Ahead = Ahead {
        from: std::ptr::null(),
        step: 0,
    };

    /// The `k`-th block's share of `next` (the next group's weights, `c_in` rows): the values
    /// from `k·VALUES·c_in`, or nothing once `next` is covered.
    fn share(next: &[f32], c_in: usize, k: usize) -> Ahead {
        match next.get(k * Self::VALUES * c_in..) {
            Some(rest) if !rest.is_empty() => Ahead {
                from: rest.as_ptr(),
                step: Self::VALUES,
            },
            _ => Ahead::NONE,
        }
    }

    /// Prefetches step `i`'s line, on one step in [`Self::STEPS_A_LINE`] (a hint: it reads
    /// nothing the program sees and never faults, so a step past the weights' end is
    /// harmless).
    #[inline(always)]
    #[allow(clippy::pointers_in_nomem_asm_block)] // a prefetch reads nothing (its SAFETY)
    fn fetch(self, i: usize) {
        if self.step > 0 && i % Self::STEPS_A_LINE == Self::STEPS_A_LINE - 1 {
            let p = self.from.wrapping_add(i * self.step);
            // SAFETY: `prefetcht1` only hints the cache; `nomem` (it changes no memory the
            // program reads) keeps the block's sums in registers, where `readonly` or
            // `_mm_prefetch` made LLVM store them to the stack every step.
            unsafe {
                std::arch::asm!(
                    "prefetcht1 [{p}]",
                    p = in(reg) p,
                    options(nostack, nomem, preserves_flags)
                );
            }
        }
    }
}

/// The most values a block holds: 8 pixels × 48 channels (AVX-512), 6 × 16 (AVX2).
const TILE: usize = 384;

/// Output channels `o0 .. o0 + LANES·N` of pixels `p0 .. p0 + P`, block `b` ([`Blocks`]):
/// `P·N` accumulators from zero, one fused multiply-add per input channel each, then the bias
/// and the clamp, stored once.
///
/// # Safety
/// `V` runs; `p0 + P ≤ cols`, block `b` of the packed input (if packed) starts at `p0`,
/// `o0 + LANES·N ≤ c_out` and the lengths [`pixels`] checks.
#[inline(always)]
unsafe fn block<V: Vector, const N: usize, const P: usize, const PLANES: bool>(
    Operands {
        x,
        x_stride,
        wt,
        c_out,
        bias,
        relu6,
        layout,
        gate: _,
        packed,
    }: Operands,
    out: *mut f32,
    (o0, p0, b, ahead): (usize, usize, usize, Ahead),
) {
    let c_in = wt.len() / c_out;
    // Where the block's inputs start and how far apart its rows are.
    let (first, row_step) = if packed {
        let step = block_pixels::<V>();
        (b * c_in * step, step)
    } else {
        (p0, x_stride)
    };
    assert!(
        P * N * V::LANES <= TILE,
        "channel lanes: block larger than its tile"
    );
    // SAFETY: every read is inside `wt` (row i < c_in, channels o0 .. o0 + LANES·N), `x`
    // (i·x_stride + p, p < cols; packed, pixel p's block of `step` pixels, which `pack` laid
    // out whole) or `bias`, every write inside `out` (pixel p < cols, channel < c_out) or
    // `tile` (P·N·LANES ≤ TILE values), by the caller's bounds.
    unsafe {
        let mut acc = [[V::zero(); N]; P];
        // The group's weights (`arrange`): `[c_in, LANES·N]` from `o0·c_in`.
        let group = wt.as_ptr().add(o0 * c_in);
        for i in 0..c_in {
            ahead.fetch(i);
            let row = group.add(i * N * V::LANES);
            let w: [V; N] = std::array::from_fn(|v| V::load(row.add(V::LANES * v)));
            let xi = x.as_ptr().add(first + i * row_step);
            for (p, acc) in acc.iter_mut().enumerate() {
                let xb = V::splat(*xi.add(p));
                for (a, &wv) in acc.iter_mut().zip(&w) {
                    *a = wv.mul_add(xb, *a);
                }
            }
        }
        // Into planes, the block goes channels-last into `tile` first, then out value by
        // value (stored lane by lane into the planes from inside this loop, the sums stayed
        // on the stack: Lite0's 1152 → 192 on 7×7 took 714–730 µs against 311–321).
        let mut tile = [0.0f32; TILE];
        let (dst, stride, at) = if PLANES {
            let at = std::array::from_fn(|v| V::LANES * v);
            (tile.as_mut_ptr(), N * V::LANES, at)
        } else {
            let (step, at) = places::<V, N>(layout, c_out, o0);
            (out.add(p0 * step), step, at)
        };
        for (p, acc) in acc.iter().enumerate() {
            for (v, &a) in acc.iter().enumerate() {
                let mut a = a;
                if let Some(b) = bias {
                    a = a.add(V::load(b.as_ptr().add(o0 + V::LANES * v)));
                }
                if relu6 {
                    a = a.relu6();
                }
                a.store(dst.add(p * stride + at[v]));
            }
        }
        if let (true, Layout::Planes(plane)) = (PLANES, layout) {
            for (p, px) in tile[..P * stride].chunks_exact(stride).enumerate() {
                for (k, &y) in px.iter().enumerate() {
                    *out.add((o0 + k) * plane + p0 + p) = y;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand, for the group this CPU runs: 1280 channels in two runs split at the group
    /// boundary nearest 640 (groups of 48: 13·48 = 624; of 16: 640), in three nearest 426 and
    /// 853 (48: 432 and 864; 16: 432 and 848); 48 channels in two (48: one group, one run; 16:
    /// 24 rounds up to 32); one part, or none, is one run; no channels, no runs.
    #[test]
    fn group_runs_split_at_the_nearest_group_boundary() {
        let wide = group_width() == 48;
        assert!(wide || group_width() == 16, "group of {}", group_width());
        let runs = |c_out, parts| -> Vec<(usize, usize)> {
            group_runs(c_out, parts)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect()
        };
        if wide {
            assert_eq!(runs(1280, 2), [(0, 624), (624, 1280)]);
            assert_eq!(runs(1280, 3), [(0, 432), (432, 864), (864, 1280)]);
            assert_eq!(runs(48, 2), [(0, 48)]);
        } else {
            assert_eq!(runs(1280, 2), [(0, 640), (640, 1280)]);
            assert_eq!(runs(1280, 3), [(0, 432), (432, 848), (848, 1280)]);
            assert_eq!(runs(48, 2), [(0, 32), (32, 48)]);
        }
        assert_eq!(runs(1280, 1), [(0, 1280)]);
        assert_eq!(runs(1280, 0), [(0, 1280)]);
        assert_eq!(runs(0, 2), []);
    }

    /// By hand: 49 pixels (a 7×7 plane) in blocks of at most 6 are 9 blocks, 4 of 6 then 5 of
    /// 5; 196 are 31 of 6 then 2 of 5; 49 in blocks of at most 8 (AVX-512) are 7 of 7; 196 in
    /// blocks of at most 8 are 21 of 8 then 4 of 7; 49 in blocks of at most 4 are 10 of 4 then 3
    /// of 3; 2 pixels one block; none, no block. The blocks are consecutive and end at `cols`.
    #[test]
    fn blocks_split_the_pixels_evenly() {
        let sizes = |cols: usize, step: usize| {
            let blocks = Blocks::new(cols, step);
            let mut next = 0;
            let sizes = (0..blocks.count)
                .map(|b| {
                    let (p0, size) = blocks.at(b);
                    assert_eq!(p0, next, "{cols} in blocks of {step}: block {b}");
                    next += size;
                    size
                })
                .collect::<Vec<_>>();
            assert_eq!(next, cols, "{cols} in blocks of {step}: the end");
            sizes
        };
        let runs = |runs: &[(usize, usize)]| {
            runs.iter()
                .flat_map(|&(n, size)| std::iter::repeat_n(size, n))
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(49, 6), runs(&[(4, 6), (5, 5)]));
        assert_eq!(sizes(196, 6), runs(&[(31, 6), (2, 5)]));
        assert_eq!(sizes(49, 8), runs(&[(7, 7)]));
        assert_eq!(sizes(196, 8), runs(&[(21, 8), (4, 7)]));
        assert_eq!(sizes(49, 4), runs(&[(10, 4), (3, 3)]));
        assert_eq!(sizes(2, 6), [2]);
        assert_eq!(sizes(0, 6), Vec::<usize>::new());
        assert_eq!(sizes(3137, 6).iter().sum::<usize>(), 3137);
    }
}
