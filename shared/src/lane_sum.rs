//! `Σ f(v)` over a slice in eight independent partial sums, compiled for AVX-512, AVX2+FMA and
//! NEON besides the baseline and picked at run time (`multiversion`).
//!
//! A single running `f32` sum is a serial dependency the compiler may not reorder, so it stays
//! scalar; eight lanes vectorize. The lanes are added in a fixed order, so the value does not
//! depend on the version picked. The host trains with it (squeeze-excitation's plane means,
//! BatchNorm's statistics: `host/src/model/net/simd.rs` re-exports it) and the device's
//! plane-sum op runs it inside tract (`shared/src/infer/plane_sum.rs`), so both take the same
//! means.
use multiversion::multiversion;

/// Partial sums.
pub const LANES: usize = 8;

/// `Σ f(v)` over `p`: lane `k` sums the values at `k, k + 8, …`, the lanes are then added in
/// order, and the values past the last whole group of eight are summed apart and added last.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn sum_map<F: Fn(f32) -> f32>(p: &[f32], f: F) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = p.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for ch in chunks {
        for k in 0..LANES {
            acc[k] += f(ch[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order the doc states, by hand: 1..=19 in lanes of 8 then a tail of 3.
    #[test]
    fn sums_in_eight_lanes_then_the_tail() {
        let p: Vec<f32> = (1..=19).map(|v| v as f32).collect();
        assert_eq!(sum_map(&p, |v| v), 190.0);
        assert_eq!(sum_map(&p, |v| v * v), 2470.0);
        // An order that shows: 1e8 (ulp 8) and fifteen ones. Lane 0 is 1e8 + 1 = 1e8, lanes
        // 1–7 are 2 each; added in lane order from lane 0 each 2 rounds away, so the sum is
        // 1e8 (lanes 1–7 summed first would give 1e8 + 14, rounded to 1e8 + 16).
        let mut q = vec![1.0f32; 16];
        q[0] = 1e8;
        assert_eq!(sum_map(&q, |v| v), 1e8);
        assert_ne!(1e8f32 + 14.0, 1e8);
        assert_eq!(sum_map(&[], |v| v), 0.0);
    }
}
