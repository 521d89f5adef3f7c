//! Channels in blocks of 16: a layout `[⌈c/16⌉, …, 16]` in which each block of 16 channels
//! lies apart from the others, `stride` values from one block to the next, and channel `ch`
//! of a block's first item at `(ch / 16)·stride + ch % 16`. `depthwise::ChannelsLast` holds its
//! weights so (`[⌈c/16⌉, taps, 16]`) and reads a band's input rows so (`[⌈c/16⌉, rows, w, 16]`),
//! which fovea's expansion writes through `infer::channel_lanes` for the fused op
//! (`infer::expand_depthwise`): one definition, so writer and reader agree.

/// Channels per block: one AVX-512 register of f32 (two of AVX2).
pub(crate) const BLOCK: usize = 16;

/// How many blocks `c` channels take (the last partial where 16 does not divide `c`).
pub(crate) fn count(c: usize) -> usize {
    c.div_ceil(BLOCK)
}

/// Where channel `ch` of a block's first item lies, the blocks `stride` values apart.
#[inline(always)]
pub(crate) fn at(ch: usize, stride: usize) -> usize {
    (ch / BLOCK) * stride + ch % BLOCK
}

/// The values `items` items of `c` channels span in blocks `stride` apart (every block's items
/// `16` values each, the last block's from its start), or `None` where the blocks overlap
/// (`stride < 16·items`).
pub(crate) fn span(c: usize, stride: usize, items: usize) -> Option<usize> {
    (stride >= BLOCK * items).then(|| count(c).saturating_sub(1) * stride + BLOCK * items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: 40 channels are 3 blocks; channel 37 of blocks 100 apart is block 2's lane 5,
    /// at 205; 40 channels × 3 items in blocks 48 apart span 2·48 + 48 = 144 values, and blocks
    /// 47 apart overlap.
    #[test]
    fn places_by_hand() {
        assert_eq!(count(40), 3);
        assert_eq!(count(16), 1);
        assert_eq!(at(37, 100), 205);
        assert_eq!(at(8, 100), 8);
        assert_eq!(span(40, 48, 3), Some(144));
        assert_eq!(span(40, 47, 3), None);
    }
}
