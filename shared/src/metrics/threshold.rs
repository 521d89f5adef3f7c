//! Choosing the operating threshold that reaches a target sensitivity.
//!
//! Screening programmes fix sensitivity first (e.g. ≥ 90 % for referable retinopathy)
//! and take the best specificity that allows; that means the highest threshold whose
//! sensitivity still meets the target.

use serde::{Deserialize, Serialize};

use super::{MetricsError, RocCurve};

/// One point of a ROC curve: a threshold and the rates it gives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Samples with `score >= threshold` are called positive.
    pub threshold: f64,
    /// True-positive rate at this threshold.
    pub sensitivity: f64,
    /// True-negative rate (1 − false-positive rate) at this threshold.
    pub specificity: f64,
}

impl RocCurve {
    /// The operating point with the highest threshold whose sensitivity is at least
    /// `target`; `None` when no point reaches it (`target > 1` or NaN).
    ///
    /// Equivalent to numpy's `thr[np.argmax(tpr >= target)]` on scikit-learn's
    /// `roc_curve(..., drop_intermediate=False)`. A `target <= 0` gives the `+∞` point.
    pub fn point_for_sensitivity(&self, target: f64) -> Option<OperatingPoint> {
        let i = self.tpr.iter().position(|&t| t >= target)?;
        Some(OperatingPoint {
            threshold: self.thresholds[i],
            sensitivity: self.tpr[i],
            specificity: 1.0 - self.fpr[i],
        })
    }
}

/// The highest threshold whose sensitivity (positive iff `score >= threshold`) is at least
/// `target`, with the specificity it buys. The threshold is always one of the scores.
///
/// Sensitivity only changes at observed scores, so the answer is one of the
/// [`RocCurve`] thresholds; it always exists because the smallest score gives
/// sensitivity 1.
///
/// # Errors
/// [`MetricsError::InvalidParameter`] unless `0 < target <= 1`; otherwise those of
/// [`RocCurve::new`].
pub fn threshold_for_sensitivity(
    labels: &[bool],
    scores: &[f64],
    target: f64,
) -> Result<OperatingPoint, MetricsError> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(MetricsError::InvalidParameter {
            name: "target sensitivity",
            reason: "must lie in (0, 1]",
        });
    }
    let curve = RocCurve::new(labels, scores)?;
    Ok(curve
        .point_for_sensitivity(target)
        .expect("the last ROC point has sensitivity 1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::BinaryCounts;
    use crate::metrics::testdata::{BIN_LABELS, BIN_SCORES};

    // from sklearn.metrics import roc_curve
    // y, s = <BIN_LABELS, BIN_SCORES as in roc.rs>
    // fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    // for target in (0.5, 0.8, 6/7, 1.0):
    //     i = np.argmax(tpr >= target); print(target, thr[i], tpr[i], 1 - fpr[i])
    // 0.5                0.7   0.5714285714285714  0.9411764705882353
    // 0.8                0.4   0.8571428571428571  0.5882352941176471
    // 0.8571428571428571 0.4   0.8571428571428571  0.5882352941176471
    // 1.0                0.35  1.0                 0.5294117647058824
    #[test]
    fn matches_argmax_over_sklearn_roc_curve() {
        let cases = [
            (0.5, 0.7, 0.5714285714285714, 0.9411764705882353),
            (0.8, 0.4, 0.8571428571428571, 0.5882352941176471),
            (6.0 / 7.0, 0.4, 0.8571428571428571, 0.5882352941176471),
            (1.0, 0.35, 1.0, 0.5294117647058824),
        ];
        for (target, thr, sens, spec) in cases {
            let p = threshold_for_sensitivity(&BIN_LABELS, &BIN_SCORES, target).unwrap();
            assert_eq!(p.threshold, thr, "target {target}");
            assert!(
                (p.sensitivity - sens).abs() <= 1e-12,
                "target {target}: {p:?}"
            );
            assert!(
                (p.specificity - spec).abs() <= 1e-12,
                "target {target}: {p:?}"
            );
        }
    }

    #[test]
    fn threshold_reproduces_its_sensitivity_when_applied() {
        let p = threshold_for_sensitivity(&BIN_LABELS, &BIN_SCORES, 0.8).unwrap();
        let c = BinaryCounts::from_scores(&BIN_LABELS, &BIN_SCORES, p.threshold).unwrap();
        assert_eq!(c.sensitivity().unwrap().estimate, p.sensitivity);
        assert_eq!(c.specificity().unwrap().estimate, p.specificity);
        // Any higher threshold falls short of the target.
        let above = BIN_SCORES
            .iter()
            .copied()
            .filter(|&s| s > p.threshold)
            .fold(f64::INFINITY, f64::min);
        let c = BinaryCounts::from_scores(&BIN_LABELS, &BIN_SCORES, above).unwrap();
        assert!(c.sensitivity().unwrap().estimate < 0.8);
    }

    #[test]
    fn rejects_targets_outside_unit_interval() {
        for target in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                threshold_for_sensitivity(&BIN_LABELS, &BIN_SCORES, target),
                Err(MetricsError::InvalidParameter { .. })
            ));
        }
        let curve = RocCurve::new(&BIN_LABELS, &BIN_SCORES).unwrap();
        assert_eq!(curve.point_for_sensitivity(1.5), None);
        assert_eq!(
            curve.point_for_sensitivity(0.0).unwrap().threshold,
            f64::INFINITY
        );
    }
}
