//! Element-wise loops of fovea's own kernels compiled for the CPU they run on.
//!
//! The host binary targets baseline x86-64 (SSE2) so it runs on any workstation; a loop the
//! compiler vectorizes there uses 4 lanes. These helpers are compiled again for AVX-512,
//! AVX2+FMA and NEON and pick the best version at run time (`multiversion`); the closure they
//! take is inlined into each version. Values are computed exactly as the plain loop would
//! (no reassociation), so results do not depend on the version picked.
use multiversion::multiversion;

/// `dst[k] = f(src[k])`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn map_into<F: Fn(f32) -> f32>(src: &[f32], dst: &mut [f32], f: F) {
    assert_eq!(src.len(), dst.len(), "map_into: lengths");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

/// `x[k] = f(x[k])`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn map_in_place<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}

/// `dst[k] = f(a[k], b[k])`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn zip_map_into<F: Fn(f32, f32) -> f32>(a: &[f32], b: &[f32], dst: &mut [f32], f: F) {
    assert!(
        a.len() == dst.len() && b.len() == dst.len(),
        "zip_map_into: lengths"
    );
    for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
        *d = f(a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each helper equals its plain loop on a length that is not a multiple of any vector
    /// width, NaN included.
    #[test]
    fn helpers_equal_the_plain_loops() {
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.75 - 9.0).chain([f32::NAN]).collect();
        let f = |v: f32| v.clamp(0.0, 6.0) * 2.0 + 1.0;
        let mut y = vec![0.0; x.len()];
        map_into(&x, &mut y, f);
        let mut z = x.clone();
        map_in_place(&mut z, f);
        let mut w = vec![0.0; x.len()];
        zip_map_into(&x, &y, &mut w, |a, b| a * b - 1.0);
        for k in 0..x.len() {
            let want = f(x[k]);
            assert_eq!(y[k].to_bits(), want.to_bits(), "map_into[{k}]");
            assert_eq!(z[k].to_bits(), want.to_bits(), "map_in_place[{k}]");
            let want = x[k] * want - 1.0;
            assert_eq!(w[k].to_bits(), want.to_bits(), "zip_map_into[{k}]");
        }
        assert_eq!(y[3], 1.0, "clamped below: 2·0 + 1");
        assert_eq!(y[30], 13.0, "clamped above: 2·6 + 1");
    }
}
