//! Calibration observers: the range `[lo, hi]` an activation tensor is quantized over.
//!
//! - MinMax: the smallest and largest value seen over the calibration set (onnxruntime's
//!   `MinMax`, TensorRT's "max");
//! - Percentile(p): the (100 − p)-th and p-th percentiles of every value seen, from a 2048-bin
//!   histogram over the MinMax range (a second pass), so a few outliers do not stretch the
//!   step of every other value (onnxruntime's `Percentile` is the symmetric |x| variant).
//!
//! The range always includes 0, so zero (padding, ReLU's floor) is exactly representable.

/// Which range a tensor is quantized over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observer {
    /// Smallest and largest value seen.
    MinMax,
    /// The (100 − p)-th and p-th percentiles, p in (50, 100].
    Percentile(f64),
}

/// Bins of the percentile histogram.
pub const BINS: usize = 2048;

/// A closed value range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower end (≤ 0).
    pub lo: f32,
    /// Upper end (≥ 0).
    pub hi: f32,
}

/// Running min and max of the values observed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    lo: f32,
    hi: f32,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax {
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }
}

impl MinMax {
    /// Takes in a batch of values (NaNs are ignored).
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    /// The range seen, widened to include 0; `None` before any finite value.
    pub fn range(&self) -> Option<Range> {
        (self.lo <= self.hi).then(|| Range {
            lo: self.lo.min(0.0),
            hi: self.hi.max(0.0),
        })
    }
}

/// A fixed-range histogram of the values observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    lo: f32,
    hi: f32,
    counts: Vec<u64>,
}

impl Histogram {
    /// [`BINS`] equal bins over `range`.
    pub fn new(range: Range) -> Self {
        Histogram {
            lo: range.lo,
            hi: range.hi,
            counts: vec![0; BINS],
        }
    }

    fn bin(&self, v: f32) -> usize {
        let width = (self.hi - self.lo).max(f32::MIN_POSITIVE);
        (((v - self.lo) / width * BINS as f32) as usize).min(BINS - 1)
    }

    /// Takes in a batch of values (clamped into the range; NaNs are ignored).
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            if !v.is_nan() {
                let b = self.bin(v.clamp(self.lo, self.hi));
                self.counts[b] += 1;
            }
        }
    }

    /// The value below which a fraction `q` of the observations lie, interpolated inside the
    /// bin that holds it.
    pub fn quantile(&self, q: f64) -> f32 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return self.lo;
        }
        let target = q.clamp(0.0, 1.0) * total as f64;
        let width = (self.hi - self.lo) as f64 / BINS as f64;
        let mut below = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 && (below + c) as f64 >= target {
                let inside = ((target - below as f64) / c as f64).clamp(0.0, 1.0);
                return (self.lo as f64 + (i as f64 + inside) * width) as f32;
            }
            below += c;
        }
        self.hi
    }

    /// The range between the (100 − p)-th and p-th percentiles, widened to include 0.
    pub fn percentile_range(&self, p: f64) -> Range {
        let q = p / 100.0;
        Range {
            lo: self.quantile(1.0 - q).min(0.0),
            hi: self.quantile(q).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_includes_zero_and_ignores_nan() {
        let mut m = MinMax::default();
        assert_eq!(m.range(), None);
        m.observe(&[0.5, f32::NAN, 2.0]);
        m.observe(&[1.0]);
        assert_eq!(m.range(), Some(Range { lo: 0.0, hi: 2.0 }));
        m.observe(&[-3.0]);
        assert_eq!(m.range(), Some(Range { lo: -3.0, hi: 2.0 }));
    }

    /// 0, 1, …, 2047 in a 2048-bin histogram over [0, 2048]: one value per bin, so the q-th
    /// quantile is q · 2048 (numpy.percentile of the same values, linear interpolation, gives
    /// 2047·q: the histogram places each value's mass across its bin, not at its left edge).
    #[test]
    fn quantiles_of_a_uniform_sample() {
        let values: Vec<f32> = (0..2048).map(|v| v as f32).collect();
        let mut h = Histogram::new(Range {
            lo: 0.0,
            hi: 2048.0,
        });
        h.observe(&values);
        assert_eq!(h.quantile(0.5), 1024.0);
        assert_eq!(h.quantile(0.25), 512.0);
        assert_eq!(h.quantile(1.0), 2048.0);
        let r = h.percentile_range(99.0);
        assert!((r.hi - 2027.52).abs() < 1e-3, "{r:?}");
        assert_eq!(r.lo, 0.0);
    }

    /// One outlier among 10 000 values in [−1, 1]: MinMax stretches to it, the 99.9th
    /// percentile does not.
    #[test]
    fn percentile_ignores_a_rare_outlier() {
        let mut values: Vec<f32> = (0..10_000).map(|i| (i as f32 / 5000.0) - 1.0).collect();
        values.push(100.0);
        let mut m = MinMax::default();
        m.observe(&values);
        let full = m.range().unwrap();
        assert_eq!(full.hi, 100.0);
        let mut h = Histogram::new(full);
        h.observe(&values);
        let r = h.percentile_range(99.9);
        // Bins are 101/2048 ≈ 0.049 wide: the 99.9th percentile of the bulk (≈ 0.998) lands
        // within a bin of 1.
        assert!(
            (r.hi - 1.0).abs() < 0.05 && (r.lo + 1.0).abs() < 0.05,
            "{r:?}"
        );
    }
}
