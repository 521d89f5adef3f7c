//! Classification metrics with confidence intervals, checked against scikit-learn.
//!
//! Everything here is plain arithmetic over labels and scores, so the training host and
//! the screening device report the same numbers for the same predictions:
//!
//! | concept | file | scikit-learn peer |
//! |---|---|---|
//! | confusion matrix, accuracy, per-class and macro precision/recall/F1 | [`confusion`] | `confusion_matrix`, `precision_recall_fscore_support(zero_division=0)` |
//! | quadratic weighted kappa | [`kappa`] | `cohen_kappa_score(weights="quadratic")` |
//! | Wilson score interval | [`interval`] | statsmodels `proportion_confint(method="wilson")` |
//! | sensitivity, specificity, PPV, NPV at a threshold | [`binary`] | `confusion_matrix(y, s >= t)` |
//! | ROC curve, AUC (binary and one-vs-rest macro) | [`roc`] | `roc_curve(drop_intermediate=False)`, `roc_auc_score` |
//! | DeLong 95 % interval of the AUC | [`delong`] | DeLong et al. 1988 (Sun & Xu 2014 algorithm) |
//! | threshold reaching a target sensitivity | [`threshold`] | first `roc_curve` threshold with `tpr >= target` |
//! | expected calibration error, reliability bins | [`calibration`] | numpy reference in the tests |
//!
//! Conventions shared by every function:
//! - binary labels are `bool` (`true` = positive, e.g. referable retinopathy); class labels
//!   are `usize` in `0..n_classes`;
//! - a score is called positive at threshold `t` iff `score >= t` (scikit-learn's rule);
//! - scores must be finite; inputs that pair up must have equal lengths;
//! - all intervals are two-sided 95 % ([`Z_95`]).
//!
//! Result types derive `Serialize`/`Deserialize` so evaluation reports are written as JSON.

pub mod binary;
pub mod calibration;
pub mod confusion;
pub mod delong;
pub mod error;
pub mod interval;
pub mod kappa;
pub mod roc;
pub mod threshold;

#[cfg(test)]
mod testdata;

pub use binary::BinaryCounts;
pub use calibration::{Calibration, ReliabilityBin, expected_calibration_error};
pub use confusion::ConfusionMatrix;
pub use delong::auc_delong;
pub use error::MetricsError;
pub use interval::{Interval, Z_95, wilson};
pub use kappa::quadratic_weighted_kappa;
pub use roc::{RocCurve, auc, auc_ovr, auc_ovr_macro};
pub use threshold::{OperatingPoint, threshold_for_sensitivity};

/// Fails unless two paired inputs have the same length.
pub(crate) fn check_same_len(
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<(), MetricsError> {
    if left == right {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch {
            left_name,
            left,
            right_name,
            right,
        })
    }
}

/// Fails on the first score that is NaN or infinite.
pub(crate) fn check_finite(scores: &[f64]) -> Result<(), MetricsError> {
    match scores.iter().position(|s| !s.is_finite()) {
        None => Ok(()),
        Some(index) => Err(MetricsError::NonFinite {
            index,
            value: scores[index],
        }),
    }
}

/// Fails on the first class label that is not below `n_classes`.
pub(crate) fn check_labels(labels: &[usize], n_classes: usize) -> Result<(), MetricsError> {
    match labels.iter().position(|&l| l >= n_classes) {
        None => Ok(()),
        Some(index) => Err(MetricsError::LabelOutOfRange {
            index,
            label: labels[index],
            n_classes,
        }),
    }
}

/// Fails unless both positives and negatives are present.
pub(crate) fn check_both_classes(labels: &[bool]) -> Result<(usize, usize), MetricsError> {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        Err(MetricsError::OneClassOnly {
            positives,
            negatives,
        })
    } else {
        Ok((positives, negatives))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_name_the_offending_input() {
        assert_eq!(
            check_same_len("labels", 3, "scores", 2),
            Err(MetricsError::LengthMismatch {
                left_name: "labels",
                left: 3,
                right_name: "scores",
                right: 2
            })
        );
        assert!(matches!(
            check_finite(&[0.1, f64::NAN, 0.3]),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            check_labels(&[0, 4, 5], 5),
            Err(MetricsError::LabelOutOfRange {
                index: 2,
                label: 5,
                n_classes: 5
            })
        );
        assert_eq!(
            check_both_classes(&[true, true]),
            Err(MetricsError::OneClassOnly {
                positives: 2,
                negatives: 0
            })
        );
        assert_eq!(check_both_classes(&[true, false, false]), Ok((1, 2)));
    }
}
