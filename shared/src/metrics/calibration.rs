//! Expected calibration error and the reliability diagram it summarises.
//!
//! Guo et al. (2017), "On Calibration of Modern Neural Networks": split predictions into
//! equal-width confidence bins and average |accuracy − mean confidence| weighted by bin size.

use serde::{Deserialize, Serialize};

use super::{MetricsError, check_same_len};

/// One equal-width confidence bin of a reliability diagram, covering `(lo, hi]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive; the first bin also takes confidence exactly 0).
    pub lo: f64,
    /// Upper edge (inclusive).
    pub hi: f64,
    /// Number of predictions in the bin.
    pub count: usize,
    /// Mean confidence of the bin's predictions; `None` for an empty bin.
    pub mean_confidence: Option<f64>,
    /// Fraction of the bin's predictions that were correct; `None` for an empty bin.
    pub accuracy: Option<f64>,
}

/// Expected calibration error with its reliability bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// `Σ_b (n_b / n) · |accuracy_b − mean_confidence_b|`, in `[0, 1]`.
    pub ece: f64,
    /// All `n_bins` bins in increasing order, empty ones included.
    pub bins: Vec<ReliabilityBin>,
}

/// Expected calibration error of `confidences` (the probability the model gave its
/// prediction) against whether each prediction was `correct`.
///
/// Bins are equal-width over `(0, 1]`: bin `k` covers `(k/n_bins, (k+1)/n_bins]`, and a
/// confidence of exactly 0 joins bin 0. This is numpy's
/// `np.digitize(conf, np.arange(1, n_bins) / n_bins, right=True)`.
///
/// For a binary screening model use the positive-class probability as confidence and
/// "label is positive" as correct to get the calibration of the risk score itself.
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`],
/// [`MetricsError::OutsideUnitInterval`] for a confidence outside `[0, 1]` or NaN,
/// [`MetricsError::InvalidParameter`] when `n_bins == 0`.
pub fn expected_calibration_error(
    confidences: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Result<Calibration, MetricsError> {
    check_same_len("confidences", confidences.len(), "correct", correct.len())?;
    if confidences.is_empty() {
        return Err(MetricsError::Empty("predictions"));
    }
    if n_bins == 0 {
        return Err(MetricsError::InvalidParameter {
            name: "n_bins",
            reason: "must be at least 1",
        });
    }
    if let Some(index) = confidences.iter().position(|c| !(0.0..=1.0).contains(c)) {
        return Err(MetricsError::OutsideUnitInterval {
            index,
            value: confidences[index],
        });
    }

    let edge = |k: usize| k as f64 / n_bins as f64;
    let mut count = vec![0usize; n_bins];
    let mut conf_sum = vec![0.0; n_bins];
    let mut hits = vec![0usize; n_bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        let b = bin_of(c, n_bins, edge);
        count[b] += 1;
        conf_sum[b] += c;
        hits[b] += usize::from(ok);
    }

    let total = confidences.len() as f64;
    let mut ece = 0.0;
    let bins = (0..n_bins)
        .map(|b| {
            let (mean_confidence, accuracy) = if count[b] == 0 {
                (None, None)
            } else {
                let n = count[b] as f64;
                let (conf, acc) = (conf_sum[b] / n, hits[b] as f64 / n);
                ece += n / total * (acc - conf).abs();
                (Some(conf), Some(acc))
            };
            ReliabilityBin {
                lo: edge(b),
                hi: edge(b + 1),
                count: count[b],
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    Ok(Calibration { ece, bins })
}

/// Index of the bin `(edge(k), edge(k+1)]` holding `c`, comparing against the same edges
/// the bins report (a multiply-and-ceil guess can land one bin off at an edge).
fn bin_of(c: f64, n_bins: usize, edge: impl Fn(usize) -> f64) -> usize {
    let mut b = ((c * n_bins as f64).ceil() as usize).clamp(1, n_bins) - 1;
    while b > 0 && c <= edge(b) {
        b -= 1;
    }
    while b + 1 < n_bins && c > edge(b + 1) {
        b += 1;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{PROBS, Y_PRED, Y_TRUE, bools};

    // Reference: a direct numpy implementation of the stated convention.
    // import numpy as np
    // def ece(conf, correct, n_bins):
    //     conf = np.asarray(conf, float); correct = np.asarray(correct, float)
    //     b = np.digitize(conf, np.arange(1, n_bins) / n_bins, right=True)
    //     total, bins = 0.0, []
    //     for k in range(n_bins):
    //         sel = b == k
    //         if sel.any():
    //             total += sel.sum() / len(conf) * abs(correct[sel].mean() - conf[sel].mean())
    //             bins.append((k, int(sel.sum()), conf[sel].mean(), correct[sel].mean()))
    //     return total, bins

    // conf = P.max(1)  (max of each PROBS row; 0.30, 0.70 and 0.80 sit on bin edges)
    // correct = [t == p for t, p in zip(y_true, y_pred)]
    // ece(conf, correct, 10) -> 0.19599999999999995, bins (k, count, conf, acc):
    // (2, 1, 0.3, 0.0) (3, 3, 0.34, 0.6666666666666666) (4, 7, 0.45000000000000007, 0.5714285714285714)
    // (5, 5, 0.552, 0.6) (6, 5, 0.658, 1.0) (7, 5, 0.758, 1.0) (8, 3, 0.8333333333333334, 1.0)
    // (9, 1, 0.91, 1.0)
    #[test]
    fn ten_bins_match_numpy_reference() {
        let conf: Vec<f64> = PROBS
            .iter()
            .map(|r| r.iter().copied().fold(0.0, f64::max))
            .collect();
        let correct: Vec<bool> = Y_TRUE.iter().zip(&Y_PRED).map(|(t, p)| t == p).collect();
        let cal = expected_calibration_error(&conf, &correct, 10).unwrap();
        assert!(
            (cal.ece - 0.19599999999999995).abs() <= 1e-12,
            "{}",
            cal.ece
        );
        assert_eq!(cal.bins.len(), 10);
        let want: [(usize, usize, f64, f64); 8] = [
            (2, 1, 0.3, 0.0),
            (3, 3, 0.34, 0.6666666666666666),
            (4, 7, 0.45000000000000007, 0.5714285714285714),
            (5, 5, 0.552, 0.6),
            (6, 5, 0.658, 1.0),
            (7, 5, 0.758, 1.0),
            (8, 3, 0.8333333333333334, 1.0),
            (9, 1, 0.91, 1.0),
        ];
        for (k, n, c, a) in want {
            let bin = &cal.bins[k];
            assert_eq!(bin.count, n, "bin {k}");
            assert!((bin.mean_confidence.unwrap() - c).abs() <= 1e-12, "bin {k}");
            assert!((bin.accuracy.unwrap() - a).abs() <= 1e-12, "bin {k}");
        }
        for k in [0, 1] {
            assert_eq!(cal.bins[k].count, 0);
            assert_eq!(cal.bins[k].mean_confidence, None);
        }
        assert_eq!((cal.bins[2].lo, cal.bins[2].hi), (0.2, 0.3));
    }

    // conf2 = [0.0, 0.2, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0, 1.0, 0.95, 0.1, 0.65]
    // cor2  = [0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1]
    // ece(conf2, cor2, 5) -> 0.27499999999999997, bins:
    // (0, 4, 0.125, 0.25) (1, 1, 0.4, 0.0) (2, 2, 0.55, 1.0) (3, 2, 0.7250000000000001, 1.0)
    // (4, 3, 0.9833333333333334, 0.6666666666666666)
    #[test]
    fn edges_zero_and_one_follow_the_stated_convention() {
        let conf = [0.0, 0.2, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0, 1.0, 0.95, 0.1, 0.65];
        let correct = bools(&[0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1]);
        let cal = expected_calibration_error(&conf, &correct, 5).unwrap();
        assert!(
            (cal.ece - 0.27499999999999997).abs() <= 1e-12,
            "{}",
            cal.ece
        );
        let counts: Vec<usize> = cal.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![4, 1, 2, 2, 3]);
        let acc: Vec<f64> = cal.bins.iter().map(|b| b.accuracy.unwrap()).collect();
        let want = [0.25, 0.0, 1.0, 1.0, 0.6666666666666666];
        for (g, w) in acc.iter().zip(want) {
            assert!((g - w).abs() <= 1e-12, "{acc:?}");
        }
        assert!((cal.bins[3].mean_confidence.unwrap() - 0.7250000000000001).abs() <= 1e-12);
    }

    #[test]
    fn perfectly_calibrated_bins_have_zero_error() {
        // Confidence 0.75 right 3 times out of 4, confidence 0.25 right once out of 4.
        let conf = [0.75, 0.75, 0.75, 0.75, 0.25, 0.25, 0.25, 0.25];
        let correct = bools(&[1, 1, 1, 0, 1, 0, 0, 0]);
        let cal = expected_calibration_error(&conf, &correct, 4).unwrap();
        assert_eq!(cal.ece, 0.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            expected_calibration_error(&[0.5, 1.2], &[true, false], 10),
            Err(MetricsError::OutsideUnitInterval { index: 1, .. })
        ));
        assert!(matches!(
            expected_calibration_error(&[f64::NAN], &[true], 10),
            Err(MetricsError::OutsideUnitInterval { index: 0, .. })
        ));
        assert_eq!(
            expected_calibration_error(&[], &[], 10),
            Err(MetricsError::Empty("predictions"))
        );
        assert!(matches!(
            expected_calibration_error(&[0.5], &[true], 0),
            Err(MetricsError::InvalidParameter { name: "n_bins", .. })
        ));
    }

    #[test]
    fn bin_of_respects_edges() {
        let edge = |k: usize| k as f64 / 10.0;
        assert_eq!(bin_of(0.0, 10, edge), 0);
        assert_eq!(bin_of(0.1, 10, edge), 0);
        assert_eq!(bin_of(0.3, 10, edge), 2);
        assert_eq!(bin_of(0.30000000000000004, 10, edge), 3);
        assert_eq!(bin_of(0.7, 10, edge), 6);
        assert_eq!(bin_of(1.0, 10, edge), 9);
    }
}
