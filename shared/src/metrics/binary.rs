//! Binary screening counts at one operating point: sensitivity, specificity, PPV and NPV
//! with Wilson intervals.

use serde::{Deserialize, Serialize};

use super::{Interval, MetricsError, check_finite, check_same_len, wilson};

/// The four cells of a binary confusion matrix (positive = referable disease).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BinaryCounts {
    /// Positives called positive.
    pub tp: usize,
    /// Negatives called positive (false alarms).
    pub fp: usize,
    /// Negatives called negative.
    pub tn: usize,
    /// Positives called negative (missed disease). Serialised as `"fn"`.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl BinaryCounts {
    /// Tallies true labels against binary predictions.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`].
    pub fn from_predictions(labels: &[bool], predicted: &[bool]) -> Result<Self, MetricsError> {
        check_same_len("labels", labels.len(), "predicted", predicted.len())?;
        let mut c = Self::default();
        for (&truth, &called) in labels.iter().zip(predicted) {
            match (truth, called) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        Ok(c)
    }

    /// Tallies true labels against scores, calling a sample positive iff
    /// `score >= threshold` (scikit-learn's rule, matching [`super::RocCurve`] thresholds).
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`], [`MetricsError::NonFinite`] for a NaN or infinite
    /// score.
    pub fn from_scores(
        labels: &[bool],
        scores: &[f64],
        threshold: f64,
    ) -> Result<Self, MetricsError> {
        check_same_len("labels", labels.len(), "scores", scores.len())?;
        check_finite(scores)?;
        let called: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
        Self::from_predictions(labels, &called)
    }

    /// Number of samples.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Sensitivity (recall, true-positive rate) `tp / (tp + fn)` with its Wilson interval.
    ///
    /// # Errors
    /// [`MetricsError::Empty`] when there are no positive samples.
    pub fn sensitivity(&self) -> Result<Interval, MetricsError> {
        proportion(self.tp, self.tp + self.fn_, "positive samples")
    }

    /// Specificity (true-negative rate) `tn / (tn + fp)` with its Wilson interval.
    ///
    /// # Errors
    /// [`MetricsError::Empty`] when there are no negative samples.
    pub fn specificity(&self) -> Result<Interval, MetricsError> {
        proportion(self.tn, self.tn + self.fp, "negative samples")
    }

    /// Positive predictive value (precision) `tp / (tp + fp)` with its Wilson interval,
    /// treating the number of positive calls as fixed. Depends on prevalence: it only
    /// transfers to a population with the same prevalence as the evaluation set.
    ///
    /// # Errors
    /// [`MetricsError::Empty`] when nothing was called positive.
    pub fn ppv(&self) -> Result<Interval, MetricsError> {
        proportion(self.tp, self.tp + self.fp, "positive calls")
    }

    /// Negative predictive value `tn / (tn + fn)` with its Wilson interval (see
    /// [`Self::ppv`] about prevalence).
    ///
    /// # Errors
    /// [`MetricsError::Empty`] when nothing was called negative.
    pub fn npv(&self) -> Result<Interval, MetricsError> {
        proportion(self.tn, self.tn + self.fn_, "negative calls")
    }
}

fn proportion(k: usize, n: usize, what: &'static str) -> Result<Interval, MetricsError> {
    if n == 0 {
        return Err(MetricsError::Empty(what));
    }
    wilson(k, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{BIN_LABELS, BIN_SCORES};

    // import numpy as np
    // from sklearn.metrics import confusion_matrix
    // from statsmodels.stats.proportion import proportion_confint
    // y = [1,0,0,1,0,0,0,1,0,0,1,0,0,0,1,0,0,1,0,0,0,1,0,0]
    // s = np.array([0.9,0.1,0.4,0.35,0.8,0.4,0.2,0.7,0.05,0.6,0.4,0.3,0.55,0.1,0.8,0.25,
    //               0.15,0.65,0.4,0.3,0.5,0.95,0.2,0.35])
    // tn, fp, fn, tp = confusion_matrix(y, s >= 0.4).ravel()   -> tp 6, fp 7, tn 10, fn 1
    // proportion_confint(6, 7, method='wilson')    -> (0.4868721707256809, 0.9743203756552563)
    // proportion_confint(10, 17, method='wilson')  -> (0.3600544264299978, 0.7838894320978518)
    #[test]
    fn counts_and_intervals_at_a_tied_threshold() {
        // 0.4 is a tied score (one positive, three negatives): all four are called positive.
        let c = BinaryCounts::from_scores(&BIN_LABELS, &BIN_SCORES, 0.4).unwrap();
        assert_eq!(
            c,
            BinaryCounts {
                tp: 6,
                fp: 7,
                tn: 10,
                fn_: 1
            }
        );
        assert_eq!(c.total(), 24);
        let sens = c.sensitivity().unwrap();
        assert_eq!(sens.estimate, 6.0 / 7.0);
        assert!((sens.lo - 0.4868721707256809).abs() <= 1e-12);
        assert!((sens.hi - 0.9743203756552563).abs() <= 1e-12);
        let spec = c.specificity().unwrap();
        assert_eq!(spec.estimate, 10.0 / 17.0);
        assert!((spec.lo - 0.3600544264299978).abs() <= 1e-12);
        assert!((spec.hi - 0.7838894320978518).abs() <= 1e-12);
        assert_eq!(c.ppv().unwrap().estimate, 6.0 / 13.0);
        assert_eq!(c.npv().unwrap().estimate, 10.0 / 11.0);
    }

    #[test]
    fn missing_class_is_an_error_not_a_zero() {
        let c = BinaryCounts::from_predictions(&[false, false], &[false, true]).unwrap();
        assert_eq!(
            c.sensitivity(),
            Err(MetricsError::Empty("positive samples"))
        );
        assert_eq!(c.specificity().unwrap().estimate, 0.5);
        assert!(matches!(
            BinaryCounts::from_scores(&[true], &[f64::NAN], 0.5),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
    }

    #[test]
    fn json_names_the_false_negatives_fn() {
        let c = BinaryCounts {
            tp: 1,
            fp: 2,
            tn: 3,
            fn_: 4,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"tp":1,"fp":2,"tn":3,"fn":4}"#);
        assert_eq!(serde_json::from_str::<BinaryCounts>(&json).unwrap(), c);
    }
}
