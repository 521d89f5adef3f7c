//! Deterministic inputs for the op benchmarks (`pointwise_layers`, `stem_layer`), included by
//! path: the same linear congruential draw as `shared::infer`'s op tests (`depthwise::tests::
//! values`, crate-private there).

/// Deterministic values in [-1, 1).
pub fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}
