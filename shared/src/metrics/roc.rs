//! ROC curve and area under it: binary, and one-vs-rest macro for graded labels.

use serde::{Deserialize, Serialize};

use super::{MetricsError, check_both_classes, check_finite, check_labels, check_same_len};

/// The full ROC curve, one point per distinct score, as scikit-learn's
/// `roc_curve(labels, scores, drop_intermediate=False)`.
///
/// Point `i` is the operating point "positive iff `score >= thresholds[i]`". The first
/// point is `(0, 0)` at threshold `+∞`; thresholds then decrease through every distinct
/// score down to the smallest, where `(fpr, tpr) = (1, 1)`.
///
/// In JSON the `+∞` threshold is written as `null` (JSON has no infinity) and read back
/// as `+∞`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rate (1 − specificity) at each threshold, non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rate (sensitivity) at each threshold, non-decreasing.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds, `thresholds[0] = +∞`.
    #[serde(with = "infinite_as_null")]
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Builds the curve from binary labels (`true` = positive) and scores.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`], [`MetricsError::NonFinite`],
    /// [`MetricsError::OneClassOnly`] (also for empty input).
    pub fn new(labels: &[bool], scores: &[f64]) -> Result<Self, MetricsError> {
        check_same_len("labels", labels.len(), "scores", scores.len())?;
        check_finite(scores)?;
        let (positives, negatives) = check_both_classes(labels)?;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

        let mut curve = Self {
            fpr: vec![0.0],
            tpr: vec![0.0],
            thresholds: vec![f64::INFINITY],
        };
        let (mut tp, mut fp) = (0usize, 0usize);
        for (k, &i) in order.iter().enumerate() {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // Emit a point once all samples tied at this score are counted.
            let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last_of_tie {
                curve.fpr.push(fp as f64 / negatives as f64);
                curve.tpr.push(tp as f64 / positives as f64);
                curve.thresholds.push(scores[i]);
            }
        }
        Ok(curve)
    }

    /// Area under the curve by the trapezoidal rule (scikit-learn's `auc(fpr, tpr)`);
    /// equal to [`auc`] up to rounding.
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
            .sum()
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (Mann–Whitney U / (n₊ n₋)). Equal to scikit-learn's
/// `roc_auc_score(labels, scores)`. O(n log n).
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::NonFinite`],
/// [`MetricsError::OneClassOnly`] (also for empty input).
pub fn auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    check_same_len("labels", labels.len(), "scores", scores.len())?;
    check_finite(scores)?;
    let (positives, negatives) = check_both_classes(labels)?;
    let ranks = midranks(scores);
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    let m = positives as f64;
    Ok((rank_sum - m * (m + 1.0) / 2.0) / (m * negatives as f64))
}

/// One-vs-rest AUC of each class: class `c` positive, all others negative, ranked by
/// column `c` of `scores`.
///
/// `scores` is row-major, `y_true.len()` rows of `n_classes` columns (a model's softmax
/// output as it comes). Columns need not sum to one.
///
/// # Errors
/// [`MetricsError::InvalidParameter`] when `n_classes < 2`;
/// [`MetricsError::LengthMismatch`] when `scores.len() != y_true.len() * n_classes`;
/// [`MetricsError::LabelOutOfRange`]; [`MetricsError::NonFinite`];
/// [`MetricsError::ClassAbsent`] when a class never occurs in `y_true` (its AUC is
/// undefined, as in scikit-learn).
pub fn auc_ovr(
    y_true: &[usize],
    scores: &[f64],
    n_classes: usize,
) -> Result<Vec<f64>, MetricsError> {
    if n_classes < 2 {
        return Err(MetricsError::InvalidParameter {
            name: "n_classes",
            reason: "one-vs-rest AUC needs at least 2 classes",
        });
    }
    check_same_len(
        "scores",
        scores.len(),
        "y_true × n_classes",
        y_true.len() * n_classes,
    )?;
    check_labels(y_true, n_classes)?;
    check_finite(scores)?;
    (0..n_classes)
        .map(|c| {
            let labels: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
            let column: Vec<f64> = scores.iter().skip(c).step_by(n_classes).copied().collect();
            auc(&labels, &column).map_err(|e| match e {
                MetricsError::OneClassOnly { .. } => MetricsError::ClassAbsent { class: c },
                other => other,
            })
        })
        .collect()
}

/// Unweighted mean of [`auc_ovr`] over the classes: scikit-learn's
/// `roc_auc_score(y_true, scores, multi_class="ovr", average="macro")`.
///
/// # Errors
/// Those of [`auc_ovr`].
pub fn auc_ovr_macro(
    y_true: &[usize],
    scores: &[f64],
    n_classes: usize,
) -> Result<f64, MetricsError> {
    let per_class = auc_ovr(y_true, scores, n_classes)?;
    Ok(per_class.iter().sum::<f64>() / n_classes as f64)
}

/// 1-based ranks of `values` in ascending order, ties sharing the mean of their ranks.
pub(crate) fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Serde for thresholds: non-finite values as JSON `null`, `null` read back as `+∞`.
mod infinite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|&v| v.is_finite().then_some(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Option<f64>>::deserialize(d)?;
        Ok(values
            .into_iter()
            .map(|v| v.unwrap_or(f64::INFINITY))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{BIN_LABELS, BIN_SCORES, Y_TRUE, probs_flat};

    fn assert_all_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g == w || (g - w).abs() <= tol, "[{i}]: {g} vs {w}");
        }
    }

    // import numpy as np
    // from sklearn.metrics import roc_curve, roc_auc_score
    // y = np.array([1,0,0,1,0,0,0,1,0,0,1,0,0,0,1,0,0,1,0,0,0,1,0,0])
    // s = np.array([0.9,0.1,0.4,0.35,0.8,0.4,0.2,0.7,0.05,0.6,0.4,0.3,0.55,0.1,0.8,0.25,
    //               0.15,0.65,0.4,0.3,0.5,0.95,0.2,0.35])
    // fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    // print(fpr.tolist(), tpr.tolist(), thr.tolist(), roc_auc_score(y, s))
    // (sklearn 1.9.1, numpy 2.4.6)
    const FPR: [f64; 17] = [
        0.0,
        0.0,
        0.0,
        0.058823529411764705,
        0.058823529411764705,
        0.058823529411764705,
        0.11764705882352941,
        0.17647058823529413,
        0.23529411764705882,
        0.4117647058823529,
        0.47058823529411764,
        0.5882352941176471,
        0.6470588235294118,
        0.7647058823529411,
        0.8235294117647058,
        0.9411764705882353,
        1.0,
    ];
    const TPR: [f64; 17] = [
        0.0,
        0.14285714285714285,
        0.2857142857142857,
        0.42857142857142855,
        0.5714285714285714,
        0.7142857142857143,
        0.7142857142857143,
        0.7142857142857143,
        0.7142857142857143,
        0.8571428571428571,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    const THR: [f64; 17] = [
        f64::INFINITY,
        0.95,
        0.9,
        0.8,
        0.7,
        0.65,
        0.6,
        0.55,
        0.5,
        0.4,
        0.35,
        0.3,
        0.25,
        0.2,
        0.15,
        0.1,
        0.05,
    ];
    const AUC: f64 = 0.8697478991596638;

    #[test]
    fn roc_curve_matches_sklearn_with_ties() {
        let curve = RocCurve::new(&BIN_LABELS, &BIN_SCORES).unwrap();
        assert_all_close(&curve.fpr, &FPR, 1e-15);
        assert_all_close(&curve.tpr, &TPR, 1e-15);
        assert_eq!(curve.thresholds, THR.to_vec());
        assert!((curve.auc() - AUC).abs() <= 1e-12, "{}", curve.auc());
    }

    #[test]
    fn rank_auc_matches_sklearn_roc_auc_score() {
        let a = auc(&BIN_LABELS, &BIN_SCORES).unwrap();
        assert!((a - AUC).abs() <= 1e-12, "{a}");
        // Reversing the scores mirrors the AUC.
        let neg: Vec<f64> = BIN_SCORES.iter().map(|s| -s).collect();
        assert!((auc(&BIN_LABELS, &neg).unwrap() - (1.0 - AUC)).abs() <= 1e-12);
    }

    #[test]
    fn midranks_average_ties() {
        assert_eq!(
            midranks(&[0.5, 0.1, 0.5, 0.9, 0.5]),
            vec![3.0, 1.0, 3.0, 5.0, 3.0]
        );
    }

    // from sklearn.metrics import roc_auc_score
    // y_true = np.array([1,1,0,4,2,3,1,0,4,2,2,1,0,3,2,0,0,0,0,1,0,1,2,0,4,3,0,2,0,0])
    // P = <the 30×5 PROBS table in testdata.rs>
    // roc_auc_score(y_true, P, multi_class='ovr', average='macro')  -> 0.9612654320987655
    // [roc_auc_score(y_true == c, P[:, c]) for c in range(5)]
    //   -> [0.9768518518518519, 0.920138888888889, 0.9340277777777778, 0.9753086419753086, 1.0]
    #[test]
    fn one_vs_rest_matches_sklearn() {
        let probs = probs_flat();
        let per_class = auc_ovr(&Y_TRUE, &probs, 5).unwrap();
        assert_all_close(
            &per_class,
            &[
                0.9768518518518519,
                0.920138888888889,
                0.9340277777777778,
                0.9753086419753086,
                1.0,
            ],
            1e-12,
        );
        let m = auc_ovr_macro(&Y_TRUE, &probs, 5).unwrap();
        assert!((m - 0.9612654320987655).abs() <= 1e-12, "{m}");
    }

    #[test]
    fn rejects_undefined_input() {
        assert_eq!(
            auc(&[true, true], &[0.1, 0.2]),
            Err(MetricsError::OneClassOnly {
                positives: 2,
                negatives: 0
            })
        );
        assert_eq!(
            RocCurve::new(&[], &[]),
            Err(MetricsError::OneClassOnly {
                positives: 0,
                negatives: 0
            })
        );
        assert!(matches!(
            auc(&[true, false], &[0.1, f64::INFINITY]),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
        // Class 2 never occurs among the true labels.
        let probs = [0.7, 0.2, 0.1, 0.2, 0.7, 0.1, 0.5, 0.3, 0.2];
        assert_eq!(
            auc_ovr(&[0, 1, 0], &probs, 3),
            Err(MetricsError::ClassAbsent { class: 2 })
        );
        assert!(matches!(
            auc_ovr(&[0, 1, 0], &probs[..8], 3),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            auc_ovr(&[0, 3, 0], &probs, 3),
            Err(MetricsError::LabelOutOfRange { index: 1, .. })
        ));
    }

    #[test]
    fn json_writes_infinite_threshold_as_null_and_reads_it_back() {
        let curve = RocCurve::new(&[true, false, true], &[0.9, 0.3, 0.3]).unwrap();
        let json = serde_json::to_string(&curve).unwrap();
        assert_eq!(
            json,
            r#"{"fpr":[0.0,0.0,1.0],"tpr":[0.0,0.5,1.0],"thresholds":[null,0.9,0.3]}"#
        );
        let back: RocCurve = serde_json::from_str(&json).unwrap();
        assert_eq!(back, curve);
    }
}
