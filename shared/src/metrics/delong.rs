//! DeLong 95 % confidence interval of a ROC AUC.
//!
//! DeLong, DeLong & Clarke-Pearson (1988), *Biometrics* 44:837: the AUC is a two-sample
//! U-statistic, whose variance follows from its structural components
//! `V₁₀(xᵢ)` (how many negatives positive `i` beats) and `V₀₁(yⱼ)` (how many positives beat
//! negative `j`). Computed with the midrank algorithm of Sun & Xu (2014), *IEEE Signal
//! Processing Letters* 21:1389, in O(n log n) instead of DeLong's O(n₊ n₋) pair loop.

use super::roc::midranks;
use super::{Interval, MetricsError, Z_95, check_both_classes, check_finite, check_same_len};

/// The AUC with its DeLong 95 % interval, `auc ± Z_95 · √var`, clipped to `[0, 1]`.
///
/// The estimate equals [`super::auc`] (scikit-learn's `roc_auc_score`).
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::NonFinite`],
/// [`MetricsError::OneClassOnly`], and [`MetricsError::TooFew`] when there are fewer than
/// two positives or two negatives (the sample variances need two values each).
pub fn auc_delong(labels: &[bool], scores: &[f64]) -> Result<Interval, MetricsError> {
    let (auc, variance) = auc_and_variance(labels, scores)?;
    let half = Z_95 * variance.sqrt();
    Ok(Interval {
        estimate: auc,
        lo: (auc - half).max(0.0),
        hi: (auc + half).min(1.0),
    })
}

/// The AUC and DeLong's estimate of its variance.
fn auc_and_variance(labels: &[bool], scores: &[f64]) -> Result<(f64, f64), MetricsError> {
    check_same_len("labels", labels.len(), "scores", scores.len())?;
    check_finite(scores)?;
    let (m, n) = check_both_classes(labels)?;
    for (what, got) in [("positive samples", m), ("negative samples", n)] {
        if got < 2 {
            return Err(MetricsError::TooFew { what, need: 2, got });
        }
    }
    let split = |want: bool| -> Vec<f64> {
        labels
            .iter()
            .zip(scores)
            .filter(|(l, _)| **l == want)
            .map(|(_, s)| *s)
            .collect()
    };
    let (pos, neg) = (split(true), split(false));
    let (rank_pos, rank_neg) = (midranks(&pos), midranks(&neg));
    let rank_all = midranks(&[pos.as_slice(), neg.as_slice()].concat());
    let (mf, nf) = (m as f64, n as f64);

    // Combined rank minus within-class rank = how many of the other class lie below
    // (ties counting one half).
    let v10: Vec<f64> = (0..m).map(|i| (rank_all[i] - rank_pos[i]) / nf).collect();
    let v01: Vec<f64> = (0..n)
        .map(|j| 1.0 - (rank_all[m + j] - rank_neg[j]) / mf)
        .collect();
    let auc = v10.iter().sum::<f64>() / mf;
    let variance = sample_variance(&v10) / mf + sample_variance(&v01) / nf;
    Ok((auc, variance))
}

/// Unbiased sample variance (`ddof = 1`); needs at least two values.
fn sample_variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{BIN_LABELS, BIN_SCORES, PROBS, Y_TRUE, bools};

    // The references below use DeLong's original O(n₊ n₋) definition, independent of the
    // midrank algorithm under test:
    // import numpy as np
    // def delong(y, s):
    //     X, Y = s[y == 1], s[y == 0]; m, n = len(X), len(Y)
    //     psi = (X[:, None] > Y[None, :]) + 0.5 * (X[:, None] == Y[None, :])
    //     auc = psi.mean()
    //     var = psi.mean(1).var(ddof=1) / m + psi.mean(0).var(ddof=1) / n
    //     z = 1.959963984540054
    //     return auc, var, auc - z * np.sqrt(var), auc + z * np.sqrt(var)

    // y = np.array([0,1,0,0,1,0,1,0,0,0,1,0,1,0,0,1,0,0,1,0,0,0,1,0,1,0,0,1,0,0])
    // s = np.array([0.2,0.6,0.5,0.1,0.4,0.7,0.9,0.3,0.5,0.2,0.5,0.6,0.3,0.4,0.1,0.8,0.6,0.2,
    //               0.7,0.4,0.3,0.8,0.6,0.5,0.2,0.1,0.4,0.5,0.9,0.3])
    // delong(y, s) -> (0.685, 0.010357894736842104, 0.48552712941188386, 0.8844728705881162)
    // sklearn.metrics.roc_auc_score(y, s) -> 0.6849999999999999
    #[test]
    fn mediocre_classifier_heavy_ties_matches_pairwise_delong() {
        let y = bools(&[
            0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0,
            0,
        ]);
        let s = [
            0.2, 0.6, 0.5, 0.1, 0.4, 0.7, 0.9, 0.3, 0.5, 0.2, 0.5, 0.6, 0.3, 0.4, 0.1, 0.8, 0.6,
            0.2, 0.7, 0.4, 0.3, 0.8, 0.6, 0.5, 0.2, 0.1, 0.4, 0.5, 0.9, 0.3,
        ];
        let (auc, var) = auc_and_variance(&y, &s).unwrap();
        assert!((auc - 0.685).abs() <= 1e-12, "{auc}");
        assert!((var - 0.010357894736842104).abs() <= 1e-12, "{var}");
        let iv = auc_delong(&y, &s).unwrap();
        assert!((iv.lo - 0.48552712941188386).abs() <= 1e-9, "{iv:?}");
        assert!((iv.hi - 0.8844728705881162).abs() <= 1e-9, "{iv:?}");
    }

    // y = BIN_LABELS, s = BIN_SCORES (as in roc.rs)
    // delong(y, s) -> (0.8697478991596639, 0.006368723960172303, 0.713334374062344, 1.026...)
    // so the upper bound is clipped to 1.
    #[test]
    fn good_classifier_interval_is_clipped_at_one() {
        let (auc, var) = auc_and_variance(&BIN_LABELS, &BIN_SCORES).unwrap();
        assert!((auc - 0.8697478991596639).abs() <= 1e-12, "{auc}");
        assert!((var - 0.006368723960172303).abs() <= 1e-12, "{var}");
        let iv = auc_delong(&BIN_LABELS, &BIN_SCORES).unwrap();
        assert!((iv.lo - 0.713334374062344).abs() <= 1e-9, "{iv:?}");
        assert_eq!(iv.hi, 1.0);
        assert_eq!(iv.estimate, auc);
    }

    // Grade 0 vs rest on column 0 of PROBS (ties at 0.31, 0.05, 0.03):
    // delong(y_true == 0, P[:, 0])
    //   -> (0.9768518518518519, 0.00046924400137907774, 0.934395032515549, 1.019...)
    #[test]
    fn one_vs_rest_column_matches_pairwise_delong() {
        let y: Vec<bool> = Y_TRUE.iter().map(|&t| t == 0).collect();
        let s: Vec<f64> = PROBS.iter().map(|row| row[0]).collect();
        let (auc, var) = auc_and_variance(&y, &s).unwrap();
        assert!((auc - 0.9768518518518519).abs() <= 1e-12, "{auc}");
        assert!((var - 0.00046924400137907774).abs() <= 1e-12, "{var}");
        let iv = auc_delong(&y, &s).unwrap();
        assert!((iv.lo - 0.934395032515549).abs() <= 1e-9, "{iv:?}");
        assert_eq!(iv.hi, 1.0);
    }

    #[test]
    fn needs_two_of_each_class() {
        assert_eq!(
            auc_delong(&[true, false, false], &[0.9, 0.1, 0.2]),
            Err(MetricsError::TooFew {
                what: "positive samples",
                need: 2,
                got: 1
            })
        );
        assert!(matches!(
            auc_delong(&[false, false], &[0.9, 0.1]),
            Err(MetricsError::OneClassOnly { .. })
        ));
    }
}
